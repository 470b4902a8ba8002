// Where a new flow would go under a table given as plain values: the packet
// core's own build and lookups, behind an interface that needs only the
// common vocabulary. The controller explains flows through it (TraceFlow)
// without knowing how the fast path lays out its tables.
#pragma once

#include <memory>
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
    std::optional<IpAddress> relay;  // the relay PoP, when reached over the backbone
  };
  std::optional<Endpoint> endpoint;  // none: no listener, or no endpoint to pick
  std::vector<std::string> steps;    // as a person would explain them
};

// A table built as the dataplane builds it, kept to explain many flows: the
// build is the expensive part (Maglev tables), a trace through it is not.
class ExplainableTable;
using ExplainableTablePtr = std::shared_ptr<const ExplainableTable>;

// Builds `spec` as the dataplane would, or says why the dataplane would
// refuse it.
Result<ExplainableTablePtr> build_explainable(const TableSpec& spec);

// Traces `query` through a built table.
FlowExplanation explain_flow(const ExplainableTable& table, const FlowQuery& query);

// Both at once, for a single question.
Result<FlowExplanation> explain_flow(const TableSpec& spec, const FlowQuery& query);

}  // namespace onramp::dp
