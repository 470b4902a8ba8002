// The relay hop: a PoP forwarding over the backbone for another. A relayed
// packet arrives as GUE from a peer PoP's tunnel address to this PoP's, and
// holds the packet that PoP built for an endpoint; the relay takes the outer
// headers off, makes itself the packet's source and sends it on. It keeps
// nothing per flow: every packet carries all the relay needs.
#pragma once

#include "dataplane/core/drop_reason.h"
#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/packet_buf.h"
#include "dataplane/core/parser.h"

namespace onramp::dp {

// Whether a packet that is not to a VIP is one for the relay hop: UDP to
// this PoP's tunnel address (of its family) on the relay port, at a PoP that
// relays for some peer (a PoP without relay_peers is no relay, and such a
// packet is non_vip there as any other).
inline bool is_relay_bound(const ParsedPacket& p, const ForwardingTable& table) {
  if (p.l4_proto != kProtoUdp || p.dst_port != table.relay_port() ||
      table.spec().relay_peers.empty())
    return false;
  const auto& own = p.family == 4 ? table.spec().tunnel_source_v4 : table.spec().tunnel_source_v6;
  return own && p.dst == *own;
}

// Forwards a relay-bound packet (is_relay_bound) to the endpoint its inner
// packet is addressed to: outer IP + UDP removed, inner source set to this
// PoP's tunnel address (checksums adjusted), TTL / hop limit decremented,
// MACs set to port_mac -> the next hop. Returns false with `reason` (one of
// the relay_* drop reasons) and the packet unchanged when it is refused.
bool relay_forward(PacketBuf& pkt, const ParsedPacket& p, const ForwardingTable& table,
                   const MacAddress& next_hop, const MacAddress& port_mac, DropReason& reason);

}  // namespace onramp::dp
