// Encapsulation towards an endpoint: IP-in-IP (4in4, 6in6, 4in6, 6in4) or GUE
// variant 1 over UDP, wrapped once more in GUE to a relay PoP when the
// endpoint is reached over the backbone. Prepends the outer headers in the
// packet's headroom, keeps its L2 header (VLAN tags included) and rewrites
// the MACs.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "dataplane/core/drop_reason.h"
#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/net_headers.h"
#include "dataplane/core/packet_buf.h"
#include "dataplane/core/parser.h"

namespace onramp::dp {

// The Ethernet header of every tunnel packet of a burst: to the next hop,
// from the port, with the outer EtherType. Prepared once a burst
// (PacketProcessor::classify), so that an untagged frame's header is one
// 16-byte copy instead of a move of the old header and three patches.
struct TunnelL2 {
  // [0]: outer IPv4, [1]: outer IPv6. Destination MAC, source MAC,
  // EtherType, and two bytes that the outer IP header overwrites.
  alignas(16) std::array<uint8_t, 16> untagged[2];

  TunnelL2() = default;
  TunnelL2(const MacAddress& next_hop, const MacAddress& port_mac) {
    for (int v6 = 0; v6 < 2; ++v6) {
      untagged[v6].fill(0);
      std::memcpy(untagged[v6].data(), next_hop.data(), 6);
      std::memcpy(untagged[v6].data() + 6, port_mac.data(), 6);
      store_be16(untagged[v6].data() + 12, v6 ? kEtherTypeIpv6 : kEtherTypeIpv4);
    }
  }
};

// Bytes the relay hop's IP + UDP headers add (GUE variant 1 has no header of
// its own); the relay has the endpoint's family.
inline uint32_t relay_overhead(const Endpoint& ep) { return (ep.v4 ? 20u : 40u) + 8u; }

// Bytes the outer headers add for this endpoint: its tunnel's, and the relay
// hop's when it is relayed.
inline uint32_t encap_overhead(const Endpoint& ep) {
  return (ep.v4 ? 20u : 40u) + (ep.mode == ForwardingMode::gue ? 8u : 0u) +
         (ep.relayed ? relay_overhead(ep) : 0u);
}

// Prepares the endpoint's outer header and its checksum sums (Endpoint::
// outer_header, outer_sum, outer_addr_sum); ForwardingTable::build calls it.
void prepare_encap(Endpoint& ep, const TableSpec& spec);

// Wraps the IP packet described by `parsed` (trailing frame padding dropped)
// for `ep`, addressed as `l2` says (from the port to the router the tunnel
// packets go to). `flow_hash` feeds the GUE source port and the IPv6 flow
// label.
// Returns false with `reason` (too_big, no_headroom) and leaves pkt unchanged.
namespace encap_detail {

// Writes the Ethernet header of a tunnel packet whose IP header starts at
// frame + l2_len, from the frame at `old` (the packet before this layer
// was added, frame < old): its VLAN tags kept, the MACs and the innermost
// EtherType from `l2`. Bytes past l2_len land where the outer IP header
// goes, which the caller writes next. One function for both layers (the
// endpoint's and the relay hop's), so they cannot disagree.
template <bool kOuterV4>
[[gnu::always_inline]] inline void write_l2(uint8_t* frame, const uint8_t* old, uint32_t l2_len,
                                            uint32_t ethertype_offset, const TunnelL2& l2) {
  const auto& untagged = l2.untagged[kOuterV4 ? 0 : 1];
  if (l2_len == kEthHeaderLen) {
    // Nearly every frame: nothing of the old header is kept.
    std::memcpy(frame, untagged.data(), 16);
    return;
  }
  // The L2 header is 18 or 22 bytes (up to two VLAN tags, see the parser):
  // move 22 through three registers, all loaded before any store, which is
  // safe where source and destination overlap and cheaper than a memmove
  // call.
  static_assert(kEthHeaderLen + 2 * kVlanTagLen == 22);
  uint64_t w[3];
  std::memcpy(&w[0], old, 8);
  std::memcpy(&w[1], old + 8, 8);
  std::memcpy(&w[2], old + 14, 8);
  std::memcpy(frame, &w[0], 8);
  std::memcpy(frame + 8, &w[1], 8);
  std::memcpy(frame + 14, &w[2], 8);
  std::memcpy(frame, untagged.data(), 12);
  store_be16(frame + ethertype_offset, kOuterV4 ? kEtherTypeIpv4 : kEtherTypeIpv6);
}

// The outer IP header for one endpoint, specialised at compile time for its
// family and mode (the four combinations are the only ones), as VPP's load
// balancer specialises its node function. Per packet it copies the
// endpoint's prepared header (prepare_encap) and patches what depends on the
// packet: lengths, TOS/traffic class, DF, the inner protocol, the flow label
// and the checksum, which is summed from those values and the prepared sum
// rather than read back from the header just written (a wide load of several
// narrow stores stalls until they reach the cache).
template <bool kOuterV4, bool kGue>
[[gnu::always_inline]] inline bool encap(PacketBuf& pkt, const ParsedPacket& parsed,
                                         const Endpoint& ep, const ForwardingTable& table,
                                         const TunnelL2& l2, uint64_t flow_hash,
                                         DropReason& reason) {
  constexpr uint32_t kOuterIpLen = kOuterV4 ? kIpv4HeaderLen : kIpv6HeaderLen;
  constexpr uint32_t kOverhead = kOuterIpLen + (kGue ? kUdpHeaderLen : 0);
  const uint32_t l2_len = parsed.l3_offset;
  const uint32_t inner_len = parsed.ip_len;
  if (inner_len + kOverhead > table.spec().mtu) {
    reason = DropReason::too_big;
    return false;
  }
  if (pkt.headroom < kOverhead) {
    reason = DropReason::no_headroom;
    return false;
  }
  const uint8_t* inner_ip = pkt.data + l2_len;
  const bool inner_v4 = parsed.family == 4;
  // Traffic class / TOS of the inner packet, copied to the outer header.
  const uint8_t tos = inner_v4 ? inner_ip[1] : static_cast<uint8_t>(load_be16(inner_ip) >> 4);
  // DF follows the inner IPv4 header; an inner IPv6 packet is never fragmented
  // on the path, so its tunnel packet is not either.
  const bool df = !inner_v4 || (inner_ip[6] & 0x40);

  uint8_t* frame = pkt.data - kOverhead;
  write_l2<kOuterV4>(frame, pkt.data, l2_len, parsed.l2_ethertype_offset, l2);

  uint8_t* outer = frame + l2_len;
  const uint8_t next = kGue ? kProtoUdp : (inner_v4 ? kProtoIpip : kProtoIpv6);
  const uint32_t after_ip = inner_len + (kGue ? kUdpHeaderLen : 0);
  std::memcpy(outer, ep.outer_header.data(), kOuterIpLen);
  if constexpr (kOuterV4) {
    const uint32_t total = kOuterIpLen + after_ip;
    const uint16_t flags = df ? 0x4000 : 0;
    outer[1] = tos;
    store_be16(outer + 2, static_cast<uint16_t>(total));
    store_be16(outer + 6, flags);
    outer[9] = next;
    store_be16(outer + 10, checksum_fold(ep.outer_sum + tos + total + flags + next));
  } else {
    // The outer flow label carries 20 bits of the flow hash.
    store_be32(outer,
               6u << 28 | uint32_t{tos} << 20 | (static_cast<uint32_t>(flow_hash >> 12) & 0xfffff));
    store_be16(outer + 4, static_cast<uint16_t>(after_ip));
    outer[6] = next;
  }
  if constexpr (kGue) {
    uint8_t* udp = outer + kOuterIpLen;
    // Source port from the flow hash, in 32768..65535: entropy for RSS/ECMP at
    // the endpoint, stable per flow.
    const auto sport = static_cast<uint16_t>(0x8000 | (flow_hash >> 49));
    store_be16(udp, sport);
    store_be16(udp + 2, ep.gue_port);
    store_be16(udp + 4, static_cast<uint16_t>(after_ip));
    store_be16(udp + 6, 0);  // over IPv4: no checksum (RFC 6935 allows it for tunnels)
    if constexpr (!kOuterV4) {
      // IPv6 requires a UDP checksum (RFC 8200 §8.1): pseudo-header (the
      // addresses, length, protocol), the UDP header, the inner packet.
      uint32_t sum = ep.outer_addr_sum + after_ip + kProtoUdp;
      sum += sport + ep.gue_port + after_ip;
      sum = checksum_partial(udp + kUdpHeaderLen, inner_len, sum);
      uint16_t c = checksum_fold(sum);
      store_be16(udp + 6, c ? c : 0xffff);
    }
  }
  pkt.data = frame;
  pkt.headroom -= kOverhead;
  pkt.len = l2_len + kOverhead + inner_len;
  return true;
}

// The relay hop, after encap: wraps the packet built for the endpoint (its
// outer header at l2_len) in IP + UDP to the relay's port, from the same
// tunnel source, as GUE variant 1. The caller checked MTU and headroom for
// both layers. TOS and DF follow the endpoint's outer header; the UDP
// source port carries the flow hash, as for a GUE endpoint.
template <bool kV4>
[[gnu::always_inline]] inline void wrap_for_relay(PacketBuf& pkt, const ParsedPacket& parsed,
                                                  const Endpoint& ep, const TunnelL2& l2,
                                                  uint64_t flow_hash) {
  const uint32_t l2_len = parsed.l3_offset;
  constexpr uint32_t kIpLen = kV4 ? kIpv4HeaderLen : kIpv6HeaderLen;
  constexpr uint32_t kOverhead = kIpLen + kUdpHeaderLen;
  const uint8_t* tunnel = pkt.data + l2_len;
  const uint32_t tunnel_len = pkt.len - l2_len;
  const uint8_t tos = kV4 ? tunnel[1] : static_cast<uint8_t>(load_be16(tunnel) >> 4);
  const bool df = !kV4 || (tunnel[6] & 0x40);
  uint8_t* frame = pkt.data - kOverhead;
  // The same Ethernet header as the endpoint's layer (the relay has the
  // endpoint's family, so the same EtherType).
  write_l2<kV4>(frame, pkt.data, l2_len, parsed.l2_ethertype_offset, l2);

  uint8_t* outer = frame + l2_len;
  const uint32_t after_ip = tunnel_len + kUdpHeaderLen;
  std::memcpy(outer, ep.relay_header.data(), kIpLen);
  if constexpr (kV4) {
    const uint32_t total = kIpLen + after_ip;
    const uint16_t flags = df ? 0x4000 : 0;
    outer[1] = tos;
    store_be16(outer + 2, static_cast<uint16_t>(total));
    store_be16(outer + 6, flags);
    outer[9] = kProtoUdp;
    store_be16(outer + 10, checksum_fold(ep.relay_sum + tos + total + flags + kProtoUdp));
  } else {
    store_be32(outer,
               6u << 28 | uint32_t{tos} << 20 | (static_cast<uint32_t>(flow_hash >> 12) & 0xfffff));
    store_be16(outer + 4, static_cast<uint16_t>(after_ip));
  }
  uint8_t* udp = outer + kIpLen;
  const auto sport = static_cast<uint16_t>(0x8000 | (flow_hash >> 49));
  store_be16(udp, sport);
  store_be16(udp + 2, ep.relay_port);
  store_be16(udp + 4, static_cast<uint16_t>(after_ip));
  store_be16(udp + 6, 0);  // over IPv4: none, as for GUE endpoints
  if constexpr (!kV4) {
    uint32_t sum = ep.relay_addr_sum + after_ip + kProtoUdp;
    sum += sport + ep.relay_port + after_ip;
    sum = checksum_partial(udp + kUdpHeaderLen, tunnel_len, sum);
    const uint16_t c = checksum_fold(sum);
    store_be16(udp + 6, c ? c : 0xffff);
  }
  pkt.data = frame;
  pkt.headroom -= kOverhead;
  pkt.len = l2_len + kOverhead + tunnel_len;
}

// A relayed endpoint: both layers' room checked first, so that a packet is
// left unchanged unless both fit.
template <bool kV4, bool kGue>
[[gnu::noinline]] inline bool encap_relayed(PacketBuf& pkt, const ParsedPacket& parsed,
                                            const Endpoint& ep, const ForwardingTable& table,
                                            const TunnelL2& l2, uint64_t flow_hash,
                                            DropReason& reason) {
  if (parsed.ip_len + encap_overhead(ep) > table.spec().mtu) {
    reason = DropReason::too_big;
    return false;
  }
  if (pkt.headroom < encap_overhead(ep)) {
    reason = DropReason::no_headroom;
    return false;
  }
  if (!encap<kV4, kGue>(pkt, parsed, ep, table, l2, flow_hash, reason)) return false;
  wrap_for_relay<kV4>(pkt, parsed, ep, l2, flow_hash);
  return true;
}

}  // namespace encap_detail

// Whether encapsulate reads its flow_hash for endpoint `ep`: for a GUE
// source port, an IPv6 flow label and a relay's UDP header; an IPIP tunnel
// over IPv4 carries no entropy, and any value serves
// (Encap.FlowHashIsReadExactlyWhereSaid).
inline bool uses_flow_hash(const Endpoint& ep) {
  return ep.mode == ForwardingMode::gue || !ep.v4 || ep.relayed;
}

[[gnu::always_inline]] inline bool encapsulate(PacketBuf& pkt, const ParsedPacket& parsed,
                                               const Endpoint& ep, const ForwardingTable& table,
                                               const TunnelL2& l2, uint64_t flow_hash,
                                               DropReason& reason) {
  using encap_detail::encap;
  using encap_detail::encap_relayed;
  const bool gue = ep.mode == ForwardingMode::gue;
  if (ep.relayed) {
    if (ep.v4)
      return gue ? encap_relayed<true, true>(pkt, parsed, ep, table, l2, flow_hash, reason)
                 : encap_relayed<true, false>(pkt, parsed, ep, table, l2, flow_hash, reason);
    return gue ? encap_relayed<false, true>(pkt, parsed, ep, table, l2, flow_hash, reason)
               : encap_relayed<false, false>(pkt, parsed, ep, table, l2, flow_hash, reason);
  }
  if (ep.v4)
    return gue ? encap<true, true>(pkt, parsed, ep, table, l2, flow_hash, reason)
               : encap<true, false>(pkt, parsed, ep, table, l2, flow_hash, reason);
  return gue ? encap<false, true>(pkt, parsed, ep, table, l2, flow_hash, reason)
             : encap<false, false>(pkt, parsed, ep, table, l2, flow_hash, reason);
}

}  // namespace onramp::dp
