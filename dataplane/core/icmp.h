// ICMP at the PoP: echo requests to a VIP are answered here; ICMP errors that
// quote a VIP flow (frag-needed, packet-too-big) are mapped back to that flow
// so they can follow it to its endpoint.
#pragma once

#include <cstdint>

#include "dataplane/core/flow_table.h"
#include "dataplane/core/packet_buf.h"
#include "dataplane/core/parser.h"

namespace onramp::dp {

inline bool is_echo_request(const ParsedPacket& p) {
  return (p.family == 4 && p.l4_proto == 1 && p.icmp_type == 8) ||
         (p.family == 6 && p.l4_proto == 58 && p.icmp_type == 128);
}

inline bool is_path_mtu_error(const ParsedPacket& p) {
  return (p.family == 4 && p.l4_proto == 1 && p.icmp_type == 3 && p.icmp_code == 4) ||
         (p.family == 6 && p.l4_proto == 58 && p.icmp_type == 2);
}

// Turns an echo request into its reply in place, back to the sender's MAC.
void make_echo_reply(PacketBuf& pkt, const ParsedPacket& parsed, const MacAddress& port_mac);

// The flow an ICMP error is about, seen from the client: the quoted packet
// went VIP -> client (the endpoint's direct reply), so swap its ends.
// Returns false when the quote is cut short or not TCP/UDP.
bool quoted_flow(const PacketBuf& pkt, const ParsedPacket& parsed, ParsedPacket& flow);

}  // namespace onramp::dp
