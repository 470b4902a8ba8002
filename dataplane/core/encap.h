// Encapsulation towards an endpoint: IP-in-IP (4in4, 6in6, 4in6, 6in4) or GUE
// variant 1 over UDP. Prepends the outer headers in the packet's headroom,
// keeps its L2 header (VLAN tags included) and rewrites the MACs.
#pragma once

#include <cstdint>

#include "dataplane/core/drop_reason.h"
#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/packet_buf.h"
#include "dataplane/core/parser.h"

namespace onramp::dp {

// Bytes the outer headers add for this endpoint.
inline uint32_t encap_overhead(const Endpoint& ep) {
  return (ep.v4 ? 20u : 40u) + (ep.mode == ForwardingMode::gue ? 8u : 0u);
}

// Wraps the IP packet described by `parsed` (trailing frame padding dropped)
// for `ep`. `flow_hash` feeds the GUE source port and the IPv6 flow label.
// Returns false with `reason` (too_big, no_headroom) and leaves pkt unchanged.
bool encapsulate(PacketBuf& pkt, const ParsedPacket& parsed, const Endpoint& ep,
                 const ForwardingTable& table, const MacAddress& port_mac, uint64_t flow_hash,
                 DropReason& reason);

}  // namespace onramp::dp
