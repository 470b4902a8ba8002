// A packet as the core sees it: contiguous bytes with some free headroom in
// front. The DPDK shell maps an mbuf onto this and back; tests use plain arrays.
#pragma once

#include <cstdint>

namespace onramp::dp {

struct PacketBuf {
  uint8_t* data;      // first byte of the Ethernet header
  uint32_t len;       // bytes from data
  uint32_t headroom;  // writable bytes before data
};

// What the caller does with a packet after the core is done with it.
enum class Action : uint8_t {
  drop,     // counted by reason; free it
  forward,  // encapsulated to an endpoint; transmit
  reply,    // answered at the PoP (echo reply); transmit
  // Too big for the tunnel: turned into an ICMP frag-needed / packet-too-big
  // back to the client; transmit.
  icmp_error,
  // Not for a VIP (ARP, ND, the PoP's own addresses, anything not ours) with
  // the exception path on: handed, untouched, to the kernel (docs/dataplane.md,
  // "Exception path").
  exception,
};

}  // namespace onramp::dp
