// The dataplane's counters: collected once into a DataplaneStats message
// (what the local API returns), and rendered as text for people and JSON for
// tests (docs/dataplane.md lists every field).
#pragma once

#include <string>
#include <vector>

#include "dataplane/app/ports.h"
#include "dataplane/app/table_publisher.h"
#include "dataplane/app/worker.h"
#include "onramp/v1/dataplane.pb.h"

namespace onramp::dp {

struct StatsSources {
  const TablePublisher* publisher;
  const std::vector<PortInfo>* ports;
  const std::vector<WorkerContext*>* workers;
};

// Sums every lcore's counters, the retired tables' included.
onramp::v1::DataplaneStats collect_stats(const StatsSources& in);

std::string stats_text(const onramp::v1::DataplaneStats& s);
std::string stats_json(const onramp::v1::DataplaneStats& s, const std::string& flows_json);

// Every live flow and its endpoint (at exit, when workers have stopped).
std::string flows_text(const StatsSources& in);
std::string flows_json(const StatsSources& in);

}  // namespace onramp::dp
