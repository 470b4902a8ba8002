// Where a new flow would go under a table given as plain values: the packet
// core's own build and lookups, behind an interface that needs only the
// common vocabulary. The controller explains flows through it (TraceFlow)
// without knowing how the fast path lays out its tables.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/flow_query.h"
#include "common/status.h"
#include "common/table_spec.h"

namespace onramp::dp {

struct FlowExplanation {
  std::string listener;  // the matching listener's name; empty when none
  struct Endpoint {
    IpAddress address;
    ForwardingMode mode = ForwardingMode::ipip;
  };
  std::optional<Endpoint> endpoint;  // none: no listener, or no endpoint to pick
  std::vector<std::string> steps;    // as a person would explain them
};

// Builds `spec` as the dataplane would (an error if it would refuse it) and
// traces `query` through it.
Result<FlowExplanation> explain_flow(const TableSpec& spec, const FlowQuery& query);

}  // namespace onramp::dp
