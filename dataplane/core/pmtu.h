// Path MTU at the PoP: a packet too big for its tunnel is either answered
// with an ICMP frag-needed / ICMPv6 packet-too-big (DF set, or IPv6), rate
// limited per client address, or split into IPv4 fragments before it is
// encapsulated (no DF), so the endpoint's kernel reassembles a plain datagram.
#pragma once

#include <cstdint>
#include <memory>

#include "common/ip_address.h"
#include "dataplane/core/packet_buf.h"
#include "dataplane/core/parser.h"

namespace onramp::dp {

// Token buckets for the ICMP errors the PoP sends, one per client address,
// in a direct-mapped table of fixed size: memory is bounded whatever the
// number of clients. A client whose slot another client took starts again
// with a full bucket; that is harmless, since every ICMP error answers a
// larger packet from the same client (no amplification).
class IcmpRateLimiter {
 public:
  static constexpr uint32_t kSlots = 1024;    // power of two
  static constexpr uint32_t kBurst = 10;      // errors a client may get at once
  static constexpr uint32_t kPerSecond = 10;  // then this many a second

  IcmpRateLimiter() : buckets_(std::make_unique<Bucket[]>(kSlots)) {}

  // Takes a token from `client`'s bucket; false when it is empty.
  // now_ms: a millisecond clock that may wrap.
  bool allow(const IpAddress& client, uint32_t now_ms);

 private:
  // Tokens in thousandths, so that a refill of kPerSecond a second adds
  // kPerSecond thousandths a millisecond without rounding away.
  static constexpr uint32_t kMilli = 1000;
  struct Bucket {
    uint64_t key = 0;  // hash of the address; 0: unused
    uint32_t last_ms = 0;
    uint32_t tokens = 0;  // thousandths
  };
  std::unique_ptr<Bucket[]> buckets_;
};

// The inner MTU a client must fit: the PoP's MTU less the tunnel overhead.
inline uint32_t inner_mtu(uint32_t mtu, uint32_t overhead) { return mtu - overhead; }

// Bytes of the offending packet an ICMP error quotes at most: the error,
// IP header included, stays within 576 bytes for IPv4 (RFC 1812 §4.3.2.3)
// and 1280 for IPv6 (RFC 4443 §2.4 (c)).
constexpr uint32_t kIcmpv4ErrorMax = 576;
constexpr uint32_t kIcmpv6ErrorMax = 1280;
// Headroom the error needs in front of the packet it quotes.
constexpr uint32_t kTooBigHeadroom = 40 + 8;

// Turns the packet into the ICMP error that answers it, in place: frag-needed
// (type 3 code 4) for IPv4, packet-too-big (type 2) for IPv6, announcing
// `mtu`, from the address the client sent to (the VIP), back to the MAC it
// came from, quoting the packet's start. L2 header and VLAN tags are kept.
// Returns false, leaving the packet as it was, when the headroom is short.
bool make_too_big(PacketBuf& pkt, const ParsedPacket& parsed, uint32_t mtu,
                  const MacAddress& port_mac);

// Buffers for the packets the core makes beyond those it was handed: the
// second and later fragments of a packet it splits. The DPDK shell lends
// mbufs and transmits what the core filled; tests lend plain arrays.
class ExtraPackets {
 public:
  virtual ~ExtraPackets() = default;
  // An empty buffer (len 0) with at least `size` bytes after data and
  // kTooBigHeadroom before it, owned by the lender; nullptr when none is
  // left.
  virtual PacketBuf* alloc(uint32_t size) = 0;
  // Every buffer since the last commit or rollback is final: send them.
  virtual void commit() = 0;
  // Every buffer since the last commit or rollback is given back unsent.
  virtual void rollback() = 0;
};

// Most fragments one packet is split into: a 65535-byte packet in pieces
// of 1240 (an MTU of 1280 less the largest overhead, 40) takes 53.
constexpr uint32_t kMaxFragments = 64;

// Splits the IPv4 packet `parsed` describes (not DF, not itself a fragment)
// into fragments of at most `max_len` bytes of IP packet each (RFC 791):
// the original buffer becomes the first fragment, the others are written to
// buffers from `extra` and described in `frags` (their parsed views, for
// encapsulation). Options are kept whole in the first fragment and only
// those with the copied flag in the others. Returns the number of extra
// fragments, or -1 (nothing changed, buffers rolled back by the caller)
// when `extra` runs out.
int fragment_ipv4(PacketBuf& pkt, ParsedPacket& parsed, uint32_t max_len, ExtraPackets& extra,
                  PacketBuf** frags, ParsedPacket* frag_parsed);

}  // namespace onramp::dp
