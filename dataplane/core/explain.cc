#include "dataplane/core/explain.h"

#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/trace.h"

namespace onramp::dp {

class ExplainableTable {
 public:
  explicit ExplainableTable(std::unique_ptr<ForwardingTable> t) : table(std::move(t)) {}
  std::unique_ptr<ForwardingTable> table;
};

Result<ExplainableTablePtr> build_explainable(const TableSpec& spec) {
  auto built = ForwardingTable::build(spec, 1);
  if (!built.ok()) return built.status().prefixed("building the table");
  return std::make_shared<const ExplainableTable>(std::move(*built));
}

FlowExplanation explain_flow(const ExplainableTable& built, const FlowQuery& query) {
  const ForwardingTable& table = *built.table;
  FlowTrace t = trace_flow(table, query);
  FlowExplanation out;
  out.steps = std::move(t.steps);
  if (t.listener >= 0) {
    const Listener& l = table.listener(t.listener);
    out.listener = l.name;
    if (t.endpoint >= 0)
      out.endpoint = FlowExplanation::Endpoint{.address = l.endpoints[t.endpoint].address,
                                               .mode = l.endpoints[t.endpoint].mode,
                                               .relay = l.endpoints[t.endpoint].relay};
  }
  return out;
}

Result<FlowExplanation> explain_flow(const TableSpec& spec, const FlowQuery& query) {
  auto built = build_explainable(spec);
  if (!built.ok()) return built.status();
  return explain_flow(**built, query);
}

}  // namespace onramp::dp
