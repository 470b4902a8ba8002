#include "dataplane/core/relay.h"

#include <cstring>

#include "dataplane/core/net_headers.h"

namespace onramp::dp {
namespace {

// Adjusts a checksum field for a 16-bit-aligned span that changed from `old`
// to `now` (RFC 1624, word by word).
uint16_t adjust_span(uint16_t checksum, const uint8_t* old, const uint8_t* now, uint32_t len) {
  for (uint32_t i = 0; i < len; i += 2)
    checksum = checksum_adjust(checksum, load_be16(old + i), load_be16(now + i));
  return checksum;
}

}  // namespace

bool relay_forward(PacketBuf& pkt, const ParsedPacket& p, const ForwardingTable& table,
                   const MacAddress& next_hop, const MacAddress& port_mac, DropReason& reason) {
  // The relay keeps no fragment trains: the ingress never fragments what it
  // sends a relay (it splits the client's packet before encapsulating).
  if (p.fragment) {
    reason = DropReason::relay_malformed;
    return false;
  }
  if (!table.is_relay_peer(p.src)) {
    reason = DropReason::relay_unknown_peer;
    return false;
  }
  const bool v4 = p.family == 4;
  const uint32_t ip_len = v4 ? kIpv4HeaderLen : kIpv6HeaderLen;
  const uint32_t inner_off = p.l4_offset + kUdpHeaderLen;
  const uint32_t end = p.l3_offset + p.ip_len;
  // GUE variant 1: the payload is an IP packet of the endpoint's family, the
  // relay's own, with a header the ingress writes (no IPv4 options, no
  // IPv6 extension headers), filling the datagram exactly.
  if (inner_off + ip_len > end || load_be16(pkt.data + p.l4_offset + 4) != end - p.l4_offset) {
    reason = DropReason::relay_malformed;
    return false;
  }
  uint8_t* inner = pkt.data + inner_off;
  const uint32_t inner_len = end - inner_off;
  uint8_t proto;
  uint8_t* src;
  uint8_t* ttl;
  IpAddress dst;
  if (v4) {
    if (inner[0] != 0x45 || load_be16(inner + 2) != inner_len ||
        (load_be16(inner + 6) & 0x3fff) != 0) {
      reason = DropReason::relay_malformed;
      return false;
    }
    proto = inner[9];
    ttl = inner + 8;
    src = inner + 12;
    dst = IpAddress::from_v4(inner + 16);
  } else {
    if ((inner[0] >> 4) != 6 || kIpv6HeaderLen + load_be16(inner + 4) != inner_len) {
      reason = DropReason::relay_malformed;
      return false;
    }
    proto = inner[6];
    ttl = inner + 7;
    src = inner + 8;
    dst = IpAddress::from_v6(inner + 24);
  }
  // The packet the ingress built for the endpoint: IP-in-IP, or UDP (GUE)
  // with its whole header.
  const uint8_t* l4 = inner + ip_len;
  const bool udp = proto == kProtoUdp;
  if (!(proto == kProtoIpip || proto == kProtoIpv6 || udp) ||
      (udp && (inner_len < ip_len + kUdpHeaderLen || load_be16(l4 + 4) != inner_len - ip_len))) {
    reason = DropReason::relay_malformed;
    return false;
  }
  // Its source is the ingress that sent it: a peer cannot make this PoP
  // carry another's traffic under its name.
  if (const IpAddress from = v4 ? IpAddress::from_v4(src) : IpAddress::from_v6(src);
      !(from == p.src)) {
    reason = DropReason::relay_source_mismatch;
    return false;
  }
  // Addressed to a PoP (this one or a peer): relaying a relay. One hop only.
  if (table.is_tunnel_source(dst) || table.is_relay_peer(dst)) {
    reason = DropReason::relay_nested;
    return false;
  }
  if (!table.is_relay_target(dst, udp ? ForwardingMode::gue : ForwardingMode::ipip,
                             udp ? load_be16(l4 + 2) : 0)) {
    reason = DropReason::relay_not_endpoint;
    return false;
  }
  if (*ttl <= 1) {
    reason = DropReason::relay_ttl_exceeded;
    return false;
  }

  // Checks done: the packet changes from here on.
  const uint8_t* own = v4 ? table.tunnel_v4() : table.tunnel_v6();
  const uint32_t addr_len = v4 ? 4 : 16;
  uint8_t old_src[16];
  std::memcpy(old_src, src, addr_len);
  std::memcpy(src, own, addr_len);
  if (v4) {
    // TTL shares a word with the protocol.
    const uint16_t old_word = load_be16(ttl);
    --*ttl;
    uint16_t c = checksum_adjust(load_be16(inner + 10), old_word, load_be16(ttl));
    store_be16(inner + 10, adjust_span(c, old_src, own, addr_len));
  } else {
    --*ttl;  // IPv6 has no header checksum
  }
  if (udp) {
    // The source is in the UDP pseudo-header. Over IPv4 a zero checksum
    // means none and stays so; over IPv6 it is never zero.
    uint8_t* check = inner + ip_len + 6;
    if (const uint16_t c = load_be16(check); c != 0 || !v4) {
      const uint16_t n = adjust_span(c, old_src, own, addr_len);
      store_be16(check, n ? n : 0xffff);
    }
  }
  // Outer IP + UDP off: the L2 header moves up to the inner packet.
  const uint32_t l2_len = p.l3_offset;
  const uint32_t strip = inner_off - l2_len;
  uint8_t* frame = inner - l2_len;
  std::memmove(frame, pkt.data, l2_len);
  std::memcpy(frame, next_hop.data(), 6);
  std::memcpy(frame + 6, port_mac.data(), 6);
  pkt.data = frame;
  pkt.headroom += strip;
  pkt.len = l2_len + inner_len;
  return true;
}

}  // namespace onramp::dp
