// Explains where a flow goes under a table, step by step, with the same
// lookups the fast path makes. The dataplane's local API and the controller's
// TraceFlow both use it, so the explanation cannot drift from the forwarding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/flow_query.h"
#include "dataplane/core/flow_table.h"
#include "dataplane/core/forwarding_table.h"

namespace onramp::dp {

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

// The flow key, as the fast path computes it (inline: it runs per packet).
// listener_id, affinity: the listener's (Listener::id, or PortRangeEntry's
// copy).
inline void set_flow_key(FlowKey& k, const IpAddress& client, uint16_t client_port,
                         const IpAddress& vip, uint16_t port, uint8_t l4_proto, Affinity affinity,
                         uint32_t listener_id) {
  k.client = client;
  if (affinity == Affinity::source_ip) {
    // Client and listener only: TCP and UDP of one client share the endpoint.
    k.vip = IpAddress{};
    k.set_tail(static_cast<uint16_t>(listener_id), static_cast<uint16_t>(listener_id >> 16), 0,
               FlowKind::source_ip);
  } else {
    k.vip = vip;
    k.set_tail(client_port, port, l4_proto, FlowKind::five_tuple);
  }
}
inline FlowKey flow_key(const IpAddress& client, uint16_t client_port, const IpAddress& vip,
                        uint16_t port, uint8_t l4_proto, const Listener& l) {
  FlowKey k;
  set_flow_key(k, client, client_port, vip, port, l4_proto, l.affinity, l.id);
  return k;
}

}  // namespace onramp::dp
