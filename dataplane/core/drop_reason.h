// Why the fast path dropped a packet. One counter per reason per lcore; the
// names appear in stats output and docs, so keep them stable.
#pragma once

#include <cstdint>

namespace onramp::dp {

// X(name, description)
#define ONRAMP_DROP_REASONS(X)                                                              \
  X(truncated_ethernet, "frame shorter than an Ethernet header")                            \
  X(truncated_vlan, "802.1Q tag cut short")                                                 \
  X(too_many_vlan_tags, "more than two 802.1Q/802.1ad tags")                                \
  X(non_ip, "not IPv4 or IPv6 (ARP, LLDP, ...)")                                            \
  X(truncated_ipv4, "IPv4 header cut short")                                                \
  X(truncated_ipv6, "IPv6 header cut short")                                                \
  X(bad_ip_version, "IP version field disagrees with the EtherType")                        \
  X(bad_ipv4_ihl, "IPv4 header length below 20 bytes")                                      \
  X(bad_ip_length, "IP length field beyond the frame or below the header")                  \
  X(truncated_ipv6_ext, "IPv6 extension header cut short")                                  \
  X(too_many_ipv6_ext, "more IPv6 extension headers than the parser walks")                 \
  X(truncated_l4, "TCP/UDP/ICMP header cut short")                                          \
  X(bad_tcp_offset, "TCP data offset below 20 bytes or beyond the packet")                  \
  X(non_vip, "destination is not a VIP")                                                    \
  X(no_listener, "VIP without a listener for this protocol and port")                       \
  X(own_tunnel_source, "from this PoP's own tunnel source: its traffic came back (a loop)") \
  X(fragment, "IP fragment to a VIP of a protocol other than TCP/UDP (no ports)")           \
  X(fragment_tiny, "first fragment without its whole TCP/UDP header (RFC 1858)")            \
  X(fragment_overlap,                                                                       \
    "fragment overlapping bytes already seen of its datagram, or after such a one")         \
  X(fragment_oversized, "fragment reaching beyond 65535 bytes of datagram")                 \
  X(fragment_no_first, "later fragment whose first was not seen, or whose train timed out") \
  X(fragment_scattered, "fragment leaving more holes in its datagram than a train tracks")  \
  X(icmp_unsupported, "ICMP to a VIP other than echo, frag-needed or packet-too-big")       \
  X(icmp_inner_malformed, "ICMP error quoting a header that is cut short or not ours")      \
  X(no_endpoint, "listener has no endpoint that can take a new flow")                       \
  X(too_big, "too big after encapsulation; neither answered nor split (an ICMP error)")     \
  X(too_big_rate_limited, "too big; its client is over its rate of ICMP errors back")       \
  X(fragment_no_buffer, "too big, no DF; no buffer left for its fragments")                 \
  X(no_headroom, "buffer lacks headroom for the outer headers")                             \
  X(oversized_frame, "frame larger than one packet buffer (raise --mbuf-size)")             \
  X(tx_full, "transmit queue full")                                                         \
  X(relay_unknown_peer, "relayed packet from a PoP not in relay_peers")                     \
  X(relay_malformed, "relayed packet without a whole IPIP/GUE packet in its GUE")           \
  X(relay_source_mismatch, "relayed packet whose inner source is not its sender")           \
  X(relay_nested, "relayed packet whose inner packet goes to a PoP (relay of a relay)")     \
  X(relay_not_endpoint, "relayed packet to no endpoint of this PoP's table")                \
  X(relay_ttl_exceeded, "relayed packet whose inner TTL / hop limit is 1 or 0")             \
  X(exception_ring_full, "for the kernel, but the worker's exception ring was full")        \
  X(next_hop_unresolved, "the next hop's MAC is not known yet (neighbour learning)")

enum class DropReason : uint8_t {
#define ONRAMP_DROP_ENUM(name, desc) name,
  ONRAMP_DROP_REASONS(ONRAMP_DROP_ENUM)
#undef ONRAMP_DROP_ENUM
      count
};

constexpr int kDropReasonCount = static_cast<int>(DropReason::count);

inline const char* drop_reason_name(DropReason r) {
  switch (r) {
#define ONRAMP_DROP_NAME(name, desc) \
  case DropReason::name:             \
    return #name;
    ONRAMP_DROP_REASONS(ONRAMP_DROP_NAME)
#undef ONRAMP_DROP_NAME
    case DropReason::count:
      break;
  }
  return "unknown";
}

inline const char* drop_reason_description(DropReason r) {
  switch (r) {
#define ONRAMP_DROP_DESC(name, desc) \
  case DropReason::name:             \
    return desc;
    ONRAMP_DROP_REASONS(ONRAMP_DROP_DESC)
#undef ONRAMP_DROP_DESC
    case DropReason::count:
      break;
  }
  return "unknown";
}

}  // namespace onramp::dp
