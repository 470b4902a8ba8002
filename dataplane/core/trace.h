// Explains where a flow goes under a table, step by step, with the same
// lookups the fast path makes. The dataplane's local API and the controller's
// TraceFlow both use it, so the explanation cannot drift from the forwarding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/core/flow_table.h"
#include "dataplane/core/forwarding_table.h"

namespace onramp::dp {

struct FlowQuery {
  IpAddress client;
  uint16_t client_port = 0;
  IpAddress vip;
  uint16_t port = 0;
  uint8_t l4_proto = 6;  // 6 TCP, 17 UDP
};

struct FlowTrace {
  int listener = -1;  // index, or -1
  int endpoint = -1;  // index within the listener, or -1
  uint64_t hash = 0;
  std::vector<std::string> steps;
};

// Where a new flow of `q` goes (Maglev). An established flow may still be on
// an endpoint that has since been drained; the fast path's flow table decides
// those.
FlowTrace trace_flow(const ForwardingTable& table, const FlowQuery& q);

// The flow key and its hash, as the fast path computes them.
FlowKey flow_key(const IpAddress& client, uint16_t client_port, const IpAddress& vip, uint16_t port,
                 uint8_t l4_proto, const Listener& l);

}  // namespace onramp::dp
