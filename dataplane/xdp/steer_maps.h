// The keys of the XDP steering program's maps (dataplane/xdp/steer.bpf.c),
// shared by the program and the dataplane that fills them. Addresses and
// ports in network byte order.
#pragma once

#include <linux/types.h>

#define ONRAMP_STEER_MAX_ADDRESSES 65536
#define ONRAMP_STEER_MAX_UDP 256

struct onramp_steer_v4 {
  __be32 addr;
};

struct onramp_steer_v6 {
  __u8 addr[16];
};

struct onramp_steer_udp_v4 {
  __be32 addr;
  __be16 port;
  __u16 pad;  // zero
};

struct onramp_steer_udp_v6 {
  __u8 addr[16];
  __be16 port;
  __u16 pad;  // zero
};
