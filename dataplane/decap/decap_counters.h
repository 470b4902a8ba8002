// The counters of the decapsulation program, shared by the BPF C program and
// its C++ loader: one per-CPU array slot per name, summed by the loader. The
// names appear in onramp-decap's output and in docs/endpoint-setup.md; keep
// them stable. This header is C as well as C++: the BPF program includes it.
#pragma once

// X(name, description). "v4"/"v6" is the family of the outer header.
#define ONRAMP_DECAP_COUNTERS(X)                                                               \
  X(decap_ipip_v4, "IP-in-IP over IPv4 decapsulated, inner packet passed to the stack")        \
  X(decap_ipip_v6, "IP-in-IP over IPv6 decapsulated, inner packet passed to the stack")        \
  X(decap_gue_v4, "GUE over IPv4 decapsulated, inner packet passed to the stack")              \
  X(decap_gue_v6, "GUE over IPv6 decapsulated, inner packet passed to the stack")              \
  X(not_allowed, "tunnel packet from a source outside the allow list: passed untouched")       \
  X(not_local, "tunnel packet to an address not of this host: passed untouched")               \
  X(outer_fragment, "fragment of a tunnel packet: passed untouched (no reassembly here)")      \
  X(malformed, "tunnel packet from an allowed source, cut short or inconsistent: dropped")     \
  X(not_encapsulated, "anything else (not IP, not a tunnel protocol or port): passed")         \
  X(port_rewritten_in, "decapsulated packet to an overridden VIP port: destination rewritten") \
  X(port_rewritten_out, "reply from a VIP's endpoint port: source rewritten to the listener's")

enum onramp_decap_counter {
#define ONRAMP_DECAP_COUNTER_ENUM(name, desc) ONRAMP_DECAP_##name,
  ONRAMP_DECAP_COUNTERS(ONRAMP_DECAP_COUNTER_ENUM)
#undef ONRAMP_DECAP_COUNTER_ENUM
      ONRAMP_DECAP_COUNTER_COUNT
};

// Map and program names the loader looks up, also in a running instance
// (kernel object names are cut at 15 characters).
#define ONRAMP_DECAP_PROG_NAME "onramp_decap"
#define ONRAMP_DECAP_STATS_MAP "decap_stats"
// The TC egress program that rewrites the source port of replies.
#define ONRAMP_DECAP_REPLY_PROG_NAME "onramp_reply"

// Allow-list keys: LPM trie keys are a prefix length then the address bytes.
struct onramp_decap_lpm_v4 {
  unsigned int prefixlen;
  unsigned char addr[4];
};
struct onramp_decap_lpm_v6 {
  unsigned int prefixlen;
  unsigned char addr[16];
};

#define ONRAMP_DECAP_MAX_PREFIXES 1024
// This host's own addresses: only tunnel packets sent to one are unwrapped.
#define ONRAMP_DECAP_MAX_LOCAL 1024
#define ONRAMP_DECAP_MAX_GUE_PORTS 16

// Port overrides: a VIP (IPv4 as ::ffff:a.b.c.d), a port and a transport
// protocol. The map port_in takes (VIP, listener port) to the endpoint port
// (decapsulated packets); port_out takes (VIP, endpoint port) back to the
// listener port (replies). Ports in network byte order, as in the packet.
struct onramp_decap_port_key {
  unsigned char addr[16];
  unsigned short port;
  unsigned char protocol;  // IPPROTO_TCP or IPPROTO_UDP
  unsigned char pad;       // zero
};
#define ONRAMP_DECAP_MAX_PORT_OVERRIDES 1024
