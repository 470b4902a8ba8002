// Test XDP program for net_af_xdp's xdp_prog= devarg: steers IPv4 packets for
// one VIP (VIP_V4, host byte order, set at compile time) to the AF_XDP socket
// of the receiving queue and passes everything else to the kernel. It stands
// in for onramp's own steering program in the veth test, to show that host
// traffic stays in the kernel when the NIC is shared.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef VIP_V4
#error "build with -DVIP_V4=0x..."
#endif

// DPDK's net_af_xdp looks this map up by name and puts each queue's socket
// at the queue's index.
struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} xsks_map SEC(".maps");

SEC("xdp")
int xdp_vip_steer(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;
  struct iphdr* ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end || ip->daddr != bpf_htonl(VIP_V4)) return XDP_PASS;
  // No socket on this queue: let the kernel have it rather than drop it.
  return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
