// The dataplane's counters as people and tests read them: a text report and
// a JSON document (docs/dataplane.md lists every field).
#pragma once

#include <string>
#include <vector>

#include "dataplane/app/ports.h"
#include "dataplane/app/worker.h"
#include "dataplane/core/forwarding_table.h"

namespace onramp::dp {

struct StatsInput {
  const ForwardingTable* table;
  const std::vector<PortInfo>* ports;
  const std::vector<WorkerContext*>* workers;
  uint32_t now_ms;
  bool with_flows;
};

std::string stats_text(const StatsInput& in);
std::string stats_json(const StatsInput& in);

}  // namespace onramp::dp
