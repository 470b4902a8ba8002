// onramp's XDP steering program for net_af_xdp ports: a packet for the
// dataplane (to a VIP, or UDP to one of the PoP's own addresses on a steered
// port, such as relayed GUE to its tunnel address) goes to the AF_XDP socket
// of the queue it arrived on; everything else (ARP, neighbour discovery,
// BGP, ssh, ping to the host) goes on to the kernel. The dataplane fills the
// maps from the forwarding table in force (dataplane/xdp/steering.h).
// clang-format off
#include <linux/bpf.h>  // first: libbpf's helper declarations use its types
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
// clang-format on
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include "dataplane/xdp/steer_maps.h"

// net_af_xdp looks this map up by name and puts each queue's socket at the
// queue's index; 64 queues at most.
struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} xsks_map SEC(".maps");

// Every packet to these addresses, fragments included (the destination is in
// every fragment). Values are unused.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ONRAMP_STEER_MAX_ADDRESSES);
  __type(key, struct onramp_steer_v4);
  __type(value, __u8);
} vips_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ONRAMP_STEER_MAX_ADDRESSES);
  __type(key, struct onramp_steer_v6);
  __type(value, __u8);
} vips_v6 SEC(".maps");

// UDP to an address and port (the tunnel address on the relay port): only
// whole packets and first fragments carry the port.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ONRAMP_STEER_MAX_UDP);
  __type(key, struct onramp_steer_udp_v4);
  __type(value, __u8);
} udp_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ONRAMP_STEER_MAX_UDP);
  __type(key, struct onramp_steer_udp_v6);
  __type(value, __u8);
} udp_v6 SEC(".maps");

struct vlan_tag {
  __be16 tci;
  __be16 proto;
};

static __always_inline int to_socket(struct xdp_md* ctx) {
  // No socket on this queue (fewer sockets than queues): the kernel gets the
  // packet rather than lose it.
  return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

static __always_inline int steer_v4(struct xdp_md* ctx, struct iphdr* ip, void* end) {
  if ((void*)(ip + 1) > end) return XDP_PASS;
  struct onramp_steer_v4 vip = {.addr = ip->daddr};
  if (bpf_map_lookup_elem(&vips_v4, &vip)) return to_socket(ctx);
  // Ports only in a whole packet or a first fragment.
  if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x1fff)) != 0) return XDP_PASS;
  if (ip->ihl < 5) return XDP_PASS;
  struct udphdr* udp = (void*)ip + ip->ihl * 4;
  if ((void*)(udp + 1) > end) return XDP_PASS;
  struct onramp_steer_udp_v4 key = {.addr = ip->daddr, .port = udp->dest};
  if (bpf_map_lookup_elem(&udp_v4, &key)) return to_socket(ctx);
  return XDP_PASS;
}

static __always_inline int steer_v6(struct xdp_md* ctx, struct ipv6hdr* ip, void* end) {
  if ((void*)(ip + 1) > end) return XDP_PASS;
  struct onramp_steer_v6 vip;
  __builtin_memcpy(vip.addr, &ip->daddr, 16);
  if (bpf_map_lookup_elem(&vips_v6, &vip)) return to_socket(ctx);
  // Relayed packets carry no extension headers: UDP right after the header.
  if (ip->nexthdr != IPPROTO_UDP) return XDP_PASS;
  struct udphdr* udp = (void*)(ip + 1);
  if ((void*)(udp + 1) > end) return XDP_PASS;
  struct onramp_steer_udp_v6 key = {.port = udp->dest};
  __builtin_memcpy(key.addr, &ip->daddr, 16);
  if (bpf_map_lookup_elem(&udp_v6, &key)) return to_socket(ctx);
  return XDP_PASS;
}

SEC("xdp")
int onramp_steer(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end) return XDP_PASS;
  __be16 proto = eth->h_proto;
  void* l3 = eth + 1;
  // Up to two VLAN tags (802.1Q, 802.1ad), as the dataplane parses them.
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    struct vlan_tag* tag = l3;
    if ((void*)(tag + 1) > end) return XDP_PASS;
    proto = tag->proto;
    l3 = tag + 1;
  }
  if (proto == bpf_htons(ETH_P_IP)) return steer_v4(ctx, l3, end);
  if (proto == bpf_htons(ETH_P_IPV6)) return steer_v6(ctx, l3, end);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
