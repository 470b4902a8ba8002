// The endpoint-side decapsulator: an XDP program that strips the PoP's
// IP-in-IP or GUE (variant 1: UDP followed directly by the inner IP packet)
// outer headers from packets whose outer source is in an allowed PoP prefix,
// and passes the inner packet to the local stack on the same interface, so
// the application sees the client's address and answers it directly (DSR).
// Everything else is passed untouched. With port overrides, the inner
// packet's destination port is rewritten (VIP:443 -> 8443) and a TC egress
// program rewrites the source port of the replies back (8443 -> 443).
// onramp-decap loads and configures both.
// The bpf/ headers use the types linux/bpf.h brings: keep it first.
// clang-format off
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
// clang-format on
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>

#include "dataplane/decap/decap_counters.h"

struct vlan_tag {
  __be16 tci;
  __be16 proto;
};

// Up to two 802.1Q/802.1ad tags, as the PoP's parser accepts.
#define MAX_VLAN_TAGS 2
#define MAX_L2_LEN (sizeof(struct ethhdr) + MAX_VLAN_TAGS * sizeof(struct vlan_tag))

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, ONRAMP_DECAP_COUNTER_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} decap_stats SEC(".maps");

// Outer sources allowed to send tunnel packets: the PoPs' tunnel prefixes.
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, ONRAMP_DECAP_MAX_PREFIXES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct onramp_decap_lpm_v4);
  __type(value, __u8);
} allow_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, ONRAMP_DECAP_MAX_PREFIXES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct onramp_decap_lpm_v6);
  __type(value, __u8);
} allow_v6 SEC(".maps");

// This host's addresses (the loader keeps them current): a tunnel packet is
// unwrapped only when its outer destination is one of them, never for a
// packet merely passing through or sent to a broadcast or another host.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ONRAMP_DECAP_MAX_LOCAL);
  __type(key, __be32);
  __type(value, __u8);
} local_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ONRAMP_DECAP_MAX_LOCAL);
  __type(key, struct in6_addr);
  __type(value, __u8);
} local_v6 SEC(".maps");

// UDP destination ports (network byte order) that carry GUE.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ONRAMP_DECAP_MAX_GUE_PORTS);
  __type(key, __be16);
  __type(value, __u8);
} gue_ports SEC(".maps");

// Port overrides (struct onramp_decap_port_key): destination ports of
// decapsulated packets, and source ports of replies back.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ONRAMP_DECAP_MAX_PORT_OVERRIDES);
  __type(key, struct onramp_decap_port_key);
  __type(value, __be16);
} port_in SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ONRAMP_DECAP_MAX_PORT_OVERRIDES);
  __type(key, struct onramp_decap_port_key);
  __type(value, __be16);
} port_out SEC(".maps");

static __always_inline int count(__u32 counter, int verdict) {
  __u64* value = bpf_map_lookup_elem(&decap_stats, &counter);
  if (value) *value += 1;  // per-CPU slot: no other writer
  return verdict;
}

// What the outer header says; filled by the per-family parsers below.
struct tunnel {
  __u32 outer_len;   // bytes to strip after the L2 header: outer IP (+ UDP)
  __u32 inner_len;   // bytes the outer header says follow it
  __u8 inner_proto;  // IPPROTO_IPIP, IPPROTO_IPV6 or 0 (GUE: from the version nibble)
  __u8 counter;      // decap_* counter on success
};

enum parse_result {
  PARSE_TUNNEL,
  PARSE_NOT_TUNNEL,
  PARSE_NOT_ALLOWED,
  PARSE_NOT_LOCAL,
  PARSE_FRAGMENT,
  PARSE_MALFORMED
};

static __always_inline int is_gue_port(__be16 port) {
  return bpf_map_lookup_elem(&gue_ports, &port) != 0;
}

static __always_inline enum parse_result parse_outer_v4(void* ip_start, void* end,
                                                        struct tunnel* t) {
  struct iphdr* ip = ip_start;
  if ((void*)(ip + 1) > end || ip->version != 4 || ip->ihl < 5) return PARSE_NOT_TUNNEL;
  __u32 ihl = ip->ihl * 4;
  __u8 proto = ip->protocol;
  int fragment = (ip->frag_off & bpf_htons(0x3fff)) != 0;  // MF or an offset
  int first = (ip->frag_off & bpf_htons(0x1fff)) == 0;
  int gue = 0;
  if (proto == IPPROTO_UDP) {
    // Only a first fragment shows its port; later ones are not ours to judge.
    if (!first) return PARSE_NOT_TUNNEL;
    struct udphdr* udp = ip_start + ihl;
    if ((void*)(udp + 1) > end || !is_gue_port(udp->dest)) return PARSE_NOT_TUNNEL;
    gue = 1;
  } else if (proto != IPPROTO_IPIP && proto != IPPROTO_IPV6) {
    return PARSE_NOT_TUNNEL;
  }
  struct onramp_decap_lpm_v4 key = {.prefixlen = 32};
  __builtin_memcpy(key.addr, &ip->saddr, 4);
  if (!bpf_map_lookup_elem(&allow_v4, &key)) return PARSE_NOT_ALLOWED;
  __be32 daddr = ip->daddr;
  if (!bpf_map_lookup_elem(&local_v4, &daddr)) return PARSE_NOT_LOCAL;
  if (fragment) return PARSE_FRAGMENT;

  __u32 total = bpf_ntohs(ip->tot_len);
  if (total < ihl || ip_start + total > end) return PARSE_MALFORMED;
  t->outer_len = ihl;
  t->inner_len = total - ihl;
  t->inner_proto = proto;
  t->counter = ONRAMP_DECAP_decap_ipip_v4;
  if (gue) {
    struct udphdr* udp = ip_start + ihl;
    if ((void*)(udp + 1) > end) return PARSE_MALFORMED;
    __u32 udp_len = bpf_ntohs(udp->len);
    if (udp_len < sizeof(*udp) || udp_len > t->inner_len) return PARSE_MALFORMED;
    t->outer_len = ihl + sizeof(*udp);
    t->inner_len = udp_len - sizeof(*udp);
    t->inner_proto = 0;
    t->counter = ONRAMP_DECAP_decap_gue_v4;
  }
  return PARSE_TUNNEL;
}

// The PoP puts the tunnel protocol (or UDP) right after the fixed IPv6
// header; outer extension headers (fragments included) are passed untouched.
static __always_inline enum parse_result parse_outer_v6(void* ip_start, void* end,
                                                        struct tunnel* t) {
  struct ipv6hdr* ip6 = ip_start;
  if ((void*)(ip6 + 1) > end || ip6->version != 6) return PARSE_NOT_TUNNEL;
  __u8 next = ip6->nexthdr;
  int gue = 0;
  if (next == IPPROTO_UDP) {
    struct udphdr* udp = (void*)(ip6 + 1);
    if ((void*)(udp + 1) > end || !is_gue_port(udp->dest)) return PARSE_NOT_TUNNEL;
    gue = 1;
  } else if (next != IPPROTO_IPIP && next != IPPROTO_IPV6) {
    return PARSE_NOT_TUNNEL;
  }
  struct onramp_decap_lpm_v6 key = {.prefixlen = 128};
  __builtin_memcpy(key.addr, &ip6->saddr, 16);
  if (!bpf_map_lookup_elem(&allow_v6, &key)) return PARSE_NOT_ALLOWED;
  struct in6_addr daddr = ip6->daddr;
  if (!bpf_map_lookup_elem(&local_v6, &daddr)) return PARSE_NOT_LOCAL;

  __u32 payload = bpf_ntohs(ip6->payload_len);
  if ((void*)(ip6 + 1) + payload > end) return PARSE_MALFORMED;
  t->outer_len = sizeof(*ip6);
  t->inner_len = payload;
  t->inner_proto = next;
  t->counter = ONRAMP_DECAP_decap_ipip_v6;
  if (gue) {
    struct udphdr* udp = (void*)(ip6 + 1);
    __u32 udp_len = bpf_ntohs(udp->len);
    if (udp_len < sizeof(*udp) || udp_len > payload) return PARSE_MALFORMED;
    t->outer_len = sizeof(*ip6) + sizeof(*udp);
    t->inner_len = udp_len - sizeof(*udp);
    t->inner_proto = 0;
    t->counter = ONRAMP_DECAP_decap_gue_v6;
  }
  return PARSE_TUNNEL;
}

// Checks the inner IP header against what the outer header announced.
// Returns the inner EtherType, or 0 when the inner packet is malformed.
static __always_inline __be16 check_inner(void* inner, void* end, const struct tunnel* t) {
  __u8* first = inner;
  if ((void*)(first + 1) > end) return 0;
  __u8 version = *first >> 4;
  if (version == 4 && (t->inner_proto == IPPROTO_IPIP || t->inner_proto == 0)) {
    struct iphdr* ip = inner;
    if ((void*)(ip + 1) > end || ip->ihl < 5) return 0;
    __u32 total = bpf_ntohs(ip->tot_len);
    if (total < ip->ihl * 4u || total > t->inner_len) return 0;
    return bpf_htons(ETH_P_IP);
  }
  if (version == 6 && (t->inner_proto == IPPROTO_IPV6 || t->inner_proto == 0)) {
    struct ipv6hdr* ip6 = inner;
    if ((void*)(ip6 + 1) > end) return 0;
    if (sizeof(*ip6) + bpf_ntohs(ip6->payload_len) > t->inner_len) return 0;
    return bpf_htons(ETH_P_IPV6);
  }
  return 0;  // version disagrees with the IPIP protocol, or a GUE header we do not speak
}

// --- port overrides ----------------------------------------------------------

// The transport header of a TCP or UDP packet starting at `ip` (an IPv4
// header, or an IPv6 header followed directly by the transport header), with
// room for the checksum field. Fills `key` with the destination (dst != 0)
// or source address and the protocol; `*l4_off` is the offset from `ip`.
// Returns 0 for anything else: other protocols, IPv6 extension headers,
// IPv4 fragments after the first (the first carries the ports, and an
// incremental checksum fix holds for the whole datagram).
static __always_inline void* find_l4(void* ip, void* end, __be16 type, int dst,
                                     struct onramp_decap_port_key* key, __u32* l4_off) {
  __u8 proto;
  __u32 off;
  if (type == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip4 = ip;
    if ((void*)(ip4 + 1) > end || ip4->ihl < 5) return 0;
    if (ip4->frag_off & bpf_htons(0x1fff)) return 0;
    proto = ip4->protocol;
    off = ip4->ihl * 4;
    key->addr[10] = 0xff;
    key->addr[11] = 0xff;
    __builtin_memcpy(&key->addr[12], dst ? &ip4->daddr : &ip4->saddr, 4);
  } else if (type == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr* ip6 = ip;
    if ((void*)(ip6 + 1) > end) return 0;
    proto = ip6->nexthdr;
    off = sizeof(*ip6);
    __builtin_memcpy(key->addr, dst ? &ip6->daddr : &ip6->saddr, 16);
  } else {
    return 0;
  }
  // TCP's checksum ends at byte 18, UDP's (the whole header) at byte 8.
  __u32 need = proto == IPPROTO_TCP ? 18 : 8;
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return 0;
  void* l4 = ip + off;
  if (l4 + need > end) return 0;
  key->protocol = proto;
  *l4_off = off;
  return l4;
}

// RFC 1624: the checksum after one 16-bit word of the summed data changed
// from `from` to `to` (HC' = ~(~HC + ~m + m')). Byte order does not matter
// to a one's-complement sum, so all three stay in network order.
static __always_inline __u16 csum_replace16(__u16 check, __u16 from, __u16 to) {
  __u32 sum = (__u16)~check;
  sum += (__u16)~from;
  sum += to;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)~sum;
}

// Rewrites the destination port of the decapsulated packet at `ip` when
// (VIP, port, protocol) is overridden, fixing its checksum. The port and the
// checksum change together, so the one's-complement sum of the segment is
// unchanged: a CHECKSUM_COMPLETE the driver computed stays right.
static __always_inline void rewrite_inner_dport(void* ip, void* end, __be16 type) {
  struct onramp_decap_port_key key = {};
  __u32 l4_off;
  struct udphdr* l4 = find_l4(ip, end, type, 1, &key, &l4_off);
  if (!l4) return;
  key.port = l4->dest;
  __be16* to = bpf_map_lookup_elem(&port_in, &key);
  if (!to) return;
  __be16 from = l4->dest;
  __be16 port = *to;
  if (key.protocol == IPPROTO_TCP) {
    __u16* check = (void*)l4 + 16;
    if ((void*)(check + 1) > end) return;  // find_l4 checked; the verifier wants to see it
    *check = csum_replace16(*check, from, port);
  } else if (l4->check) {
    // UDP: 0 means "no checksum" (IPv4) and stays 0; a computed 0 is sent
    // as 0xffff (RFC 768).
    __u16 check = csum_replace16(l4->check, from, port);
    l4->check = check ? check : 0xffff;
  }
  l4->dest = port;
  count(ONRAMP_DECAP_port_rewritten_in, 0);
}

SEC("xdp")
int onramp_decap(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end) return count(ONRAMP_DECAP_not_encapsulated, XDP_PASS);
  __be16 proto = eth->h_proto;
  __u32 l2_len = sizeof(*eth);
#pragma unroll
  for (int i = 0; i < MAX_VLAN_TAGS; i++) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    struct vlan_tag* tag = data + l2_len;
    if ((void*)(tag + 1) > end) return count(ONRAMP_DECAP_not_encapsulated, XDP_PASS);
    proto = tag->proto;
    l2_len += sizeof(*tag);
  }

  struct tunnel t = {};
  enum parse_result r;
  if (proto == bpf_htons(ETH_P_IP))
    r = parse_outer_v4(data + l2_len, end, &t);
  else if (proto == bpf_htons(ETH_P_IPV6))
    r = parse_outer_v6(data + l2_len, end, &t);
  else
    r = PARSE_NOT_TUNNEL;
  switch (r) {
    case PARSE_TUNNEL:
      break;
    case PARSE_NOT_ALLOWED:
      return count(ONRAMP_DECAP_not_allowed, XDP_PASS);
    case PARSE_NOT_LOCAL:
      return count(ONRAMP_DECAP_not_local, XDP_PASS);
    case PARSE_FRAGMENT:
      return count(ONRAMP_DECAP_outer_fragment, XDP_PASS);
    // A tunnel packet from a PoP that cannot be unwrapped: this host has no
    // other decapsulator, so the stack could do nothing better with it.
    case PARSE_MALFORMED:
      return count(ONRAMP_DECAP_malformed, XDP_DROP);
    default:
      return count(ONRAMP_DECAP_not_encapsulated, XDP_PASS);
  }

  // Bound the offsets for the verifier: L2 at most 22, outer IPv4 60 + 8.
  __u32 outer_len = t.outer_len & 0x7f;
  void* inner = data + l2_len + outer_len;
  __be16 inner_type = check_inner(inner, end, &t);
  if (!inner_type) return count(ONRAMP_DECAP_malformed, XDP_DROP);

  // Keep the L2 header (MACs, VLAN tags), drop the outer headers after it.
  // The inner IP header (at least 20 bytes) follows, so MAX_L2_LEN bytes
  // are in the frame whatever the tag count.
  __u8 l2[MAX_L2_LEN];
  if (data + MAX_L2_LEN > end) return count(ONRAMP_DECAP_malformed, XDP_DROP);
  __builtin_memcpy(l2, data, MAX_L2_LEN);
  if (bpf_xdp_adjust_head(ctx, (int)outer_len)) return count(ONRAMP_DECAP_malformed, XDP_DROP);
  data = (void*)(long)ctx->data;
  end = (void*)(long)ctx->data_end;
  if (data + MAX_L2_LEN > end) return count(ONRAMP_DECAP_malformed, XDP_DROP);
  if (l2_len == sizeof(struct ethhdr)) {
    __builtin_memcpy(data, l2, sizeof(struct ethhdr) - 2);
    *(__be16*)(data + sizeof(struct ethhdr) - 2) = inner_type;
  } else if (l2_len == sizeof(struct ethhdr) + sizeof(struct vlan_tag)) {
    __builtin_memcpy(data, l2, sizeof(struct ethhdr) + sizeof(struct vlan_tag) - 2);
    *(__be16*)(data + sizeof(struct ethhdr) + sizeof(struct vlan_tag) - 2) = inner_type;
  } else {
    __builtin_memcpy(data, l2, MAX_L2_LEN - 2);
    *(__be16*)(data + MAX_L2_LEN - 2) = inner_type;
  }
  rewrite_inner_dport(data + (l2_len & 0x1f), end, inner_type);
  return count(t.counter, XDP_PASS);
}

// The replies' side of a port override, on the interface the replies leave
// by (TC egress, clsact): a TCP or UDP packet from (VIP, endpoint port) gets
// the listener port back as its source port, so the client sees the port it
// connected to. Ethernet frames without VLAN tags in the data (attach to the
// VLAN interface itself on a tagged network); everything else passes as is.
SEC("tc")
int onramp_reply(struct __sk_buff* skb) {
  const __be16 type = skb->protocol;
  if (type != bpf_htons(ETH_P_IP) && type != bpf_htons(ETH_P_IPV6)) return TC_ACT_OK;
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end || eth->h_proto != type) return TC_ACT_OK;

  struct onramp_decap_port_key key = {};
  __u32 l4_off;
  struct udphdr* l4 = find_l4(eth + 1, end, type, 0, &key, &l4_off);
  if (!l4) {
    // The stack builds its headers in the linear part, so this is almost
    // always "not TCP/UDP". Only when the packet goes on past the linear
    // part, pull the longest headers (Ethernet, IPv4 with options, TCP to
    // its checksum) and look again: pulling every packet would copy the
    // head of each cloned TCP segment.
    const __u32 want = sizeof(struct ethhdr) + 60 + 18;
    if (skb->len <= (__u32)(end - data) || (__u32)(end - data) >= want) return TC_ACT_OK;
    if (bpf_skb_pull_data(skb, skb->len < want ? skb->len : want)) return TC_ACT_OK;
    data = (void*)(long)skb->data;
    end = (void*)(long)skb->data_end;
    eth = data;
    if ((void*)(eth + 1) > end) return TC_ACT_OK;
    l4 = find_l4(eth + 1, end, type, 0, &key, &l4_off);
    if (!l4) return TC_ACT_OK;
  }
  key.port = l4->source;
  __be16* to = bpf_map_lookup_elem(&port_out, &key);
  if (!to) return TC_ACT_OK;
  const __be16 from = l4->source;
  const __be16 port = *to;
  const __u32 at = sizeof(struct ethhdr) + (l4_off & 0x7f);
  // The helper knows the skb's checksum state: with CHECKSUM_PARTIAL (the
  // NIC finishes the sum) it leaves the field alone, as it must.
  __u64 flags = sizeof(port);
  __u32 check_at = at + offsetof(struct udphdr, check);
  if (key.protocol == IPPROTO_TCP) {
    check_at = at + 16;
  } else {
    flags |= BPF_F_MARK_MANGLED_0;  // UDP: 0 stays 0, a computed 0 becomes 0xffff
  }
  if (bpf_l4_csum_replace(skb, check_at, from, port, flags)) return TC_ACT_OK;
  if (bpf_skb_store_bytes(skb, at + offsetof(struct udphdr, source), &port, sizeof(port), 0))
    return TC_ACT_OK;
  return count(ONRAMP_DECAP_port_rewritten_out, TC_ACT_OK);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
