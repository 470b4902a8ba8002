#include "dataplane/core/encap.h"

#include <cstring>

#include "dataplane/core/net_headers.h"

namespace onramp::dp {
namespace {

void write_ipv4(uint8_t* h, uint32_t total_len, uint8_t tos, bool df, uint8_t proto,
                const uint8_t* src, const uint8_t* dst) {
  h[0] = 0x45;
  h[1] = tos;
  store_be16(h + 2, static_cast<uint16_t>(total_len));
  store_be16(h + 4, 0);  // identification: unused, DF or never fragmented by us
  store_be16(h + 6, df ? 0x4000 : 0);
  h[8] = 64;
  h[9] = proto;
  store_be16(h + 10, 0);
  std::memcpy(h + 12, src, 4);
  std::memcpy(h + 16, dst, 4);
  store_be16(h + 10, checksum_fold(checksum_partial(h, kIpv4HeaderLen)));
}

void write_ipv6(uint8_t* h, uint32_t payload_len, uint8_t tclass, uint32_t flow_label, uint8_t next,
                const uint8_t* src, const uint8_t* dst) {
  store_be32(h, 6u << 28 | uint32_t{tclass} << 20 | (flow_label & 0xfffff));
  store_be16(h + 4, static_cast<uint16_t>(payload_len));
  h[6] = next;
  h[7] = 64;
  std::memcpy(h + 8, src, 16);
  std::memcpy(h + 24, dst, 16);
}

}  // namespace

bool encapsulate(PacketBuf& pkt, const ParsedPacket& parsed, const Endpoint& ep,
                 const ForwardingTable& table, const MacAddress& port_mac, uint64_t flow_hash,
                 DropReason& reason) {
  const uint32_t l2_len = parsed.l3_offset;
  const uint32_t inner_len = parsed.ip_len;
  const bool gue = ep.mode == ForwardingMode::gue;
  const uint32_t outer_ip_len = ep.v4 ? kIpv4HeaderLen : kIpv6HeaderLen;
  const uint32_t overhead = outer_ip_len + (gue ? kUdpHeaderLen : 0);
  if (inner_len + overhead > table.spec().mtu) {
    reason = DropReason::too_big;
    return false;
  }
  if (pkt.headroom < overhead) {
    reason = DropReason::no_headroom;
    return false;
  }
  const uint8_t* inner_ip = pkt.data + l2_len;
  // Traffic class / TOS of the inner packet, copied to the outer header.
  const uint8_t tos =
      parsed.family == 4 ? inner_ip[1] : static_cast<uint8_t>(load_be16(inner_ip) >> 4);
  // DF follows the inner IPv4 header; an inner IPv6 packet is never fragmented
  // on the path, so its tunnel packet is not either.
  const bool df = parsed.family == 6 || (inner_ip[6] & 0x40);

  uint8_t* frame = pkt.data - overhead;
  std::memmove(frame, pkt.data, l2_len);
  std::memcpy(frame, table.spec().next_hop_mac.data(), 6);
  std::memcpy(frame + 6, port_mac.data(), 6);
  store_be16(frame + parsed.l2_ethertype_offset, ep.v4 ? kEtherTypeIpv4 : kEtherTypeIpv6);

  uint8_t* outer = frame + l2_len;
  const uint8_t inner_proto = parsed.family == 4 ? kProtoIpip : kProtoIpv6;
  const uint8_t next = gue ? kProtoUdp : inner_proto;
  const uint32_t after_ip = inner_len + (gue ? kUdpHeaderLen : 0);
  if (ep.v4) {
    write_ipv4(outer, outer_ip_len + after_ip, tos, df, next, table.tunnel_v4(), ep.address.v4());
  } else {
    write_ipv6(outer, after_ip, tos, static_cast<uint32_t>(flow_hash >> 12), next,
               table.tunnel_v6(), ep.address.v6());
  }
  if (gue) {
    uint8_t* udp = outer + outer_ip_len;
    // Source port from the flow hash, in 32768..65535: entropy for RSS/ECMP at
    // the endpoint, stable per flow.
    store_be16(udp, static_cast<uint16_t>(0x8000 | (flow_hash >> 49)));
    store_be16(udp + 2, ep.gue_port);
    store_be16(udp + 4, static_cast<uint16_t>(after_ip));
    store_be16(udp + 6, 0);
    if (!ep.v4) {
      // IPv6 requires a UDP checksum (RFC 8200 §8.1): pseudo-header + datagram.
      uint32_t sum = checksum_partial(outer + 8, 32);
      sum += after_ip + kProtoUdp;
      sum = checksum_partial(udp, after_ip, sum);
      uint16_t c = checksum_fold(sum);
      store_be16(udp + 6, c ? c : 0xffff);
    }
  }
  pkt.data = frame;
  pkt.headroom -= overhead;
  pkt.len = l2_len + overhead + inner_len;
  return true;
}

}  // namespace onramp::dp
