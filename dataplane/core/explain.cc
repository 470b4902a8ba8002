#include "dataplane/core/explain.h"

#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/trace.h"

namespace onramp::dp {

Result<FlowExplanation> explain_flow(const TableSpec& spec, const FlowQuery& query) {
  auto built = ForwardingTable::build(spec, 1);
  if (!built.ok()) return built.status().prefixed("building the table");
  const ForwardingTable& table = **built;
  FlowTrace t = trace_flow(table, query);
  FlowExplanation out;
  out.steps = std::move(t.steps);
  if (t.listener >= 0) {
    const Listener& l = table.listener(t.listener);
    out.listener = l.name;
    if (t.endpoint >= 0)
      out.endpoint = FlowExplanation::Endpoint{.address = l.endpoints[t.endpoint].address,
                                               .mode = l.endpoints[t.endpoint].mode};
  }
  return out;
}

}  // namespace onramp::dp
