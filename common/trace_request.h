// The controller's TraceFlowRequest and the dataplane's DataplaneTraceRequest
// ask the same question: both become a FlowQuery here, with one set of checks.
#pragma once

#include "common/flow_query.h"
#include "onramp/v1/forwarding.pb.h"

namespace onramp {

template <typename Request>
Result<FlowQuery> flow_query_from(const Request& req) {
  uint8_t l4 = req.protocol() == v1::TCP ? 6 : req.protocol() == v1::UDP ? 17 : 0;
  return make_flow_query({.client_address = req.client_address(),
                          .client_port = req.client_port(),
                          .vip = req.vip(),
                          .port = req.port(),
                          .l4_proto = l4});
}

}  // namespace onramp
