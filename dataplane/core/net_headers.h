// Wire formats the fast path reads and writes, and byte-order helpers.
// The core does not include DPDK headers, so these are our own definitions;
// every multi-byte field is in network byte order.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace onramp::dp {

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint16_t kEtherTypeVlan = 0x8100;
constexpr uint16_t kEtherTypeQinQ = 0x88a8;

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoIpip = 4;  // IPv4 in IP
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIpv6 = 41;  // IPv6 in IP
constexpr uint8_t kProtoIcmpv6 = 58;

constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kIcmpDestUnreachable = 3;
constexpr uint8_t kIcmpCodeFragNeeded = 4;
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmpv6PacketTooBig = 2;
constexpr uint8_t kIcmpv6EchoRequest = 128;
constexpr uint8_t kIcmpv6EchoReply = 129;

constexpr uint32_t kEthHeaderLen = 14;
constexpr uint32_t kVlanTagLen = 4;
constexpr uint32_t kIpv4HeaderLen = 20;
constexpr uint32_t kIpv6HeaderLen = 40;
constexpr uint32_t kUdpHeaderLen = 8;
constexpr uint32_t kTcpHeaderLen = 20;
// TCP header flags (byte 13).
constexpr uint8_t kTcpFlagFin = 0x01;
constexpr uint8_t kTcpFlagSyn = 0x02;
constexpr uint8_t kTcpFlagRst = 0x04;
constexpr uint8_t kTcpFlagAck = 0x10;
constexpr uint32_t kIcmpHeaderLen = 8;

inline uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t load_be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline void store_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// One's-complement sum of a byte range, added to `sum`, not yet folded; the
// same, modulo 0xffff, as the sum of its big-endian 16-bit words (an odd last
// byte is padded with a zero). Reads 8 bytes at a time in host order: the
// one's-complement sum of byte-swapped words is the byte-swapped sum
// (RFC 1071 §2(B)), so one swap at the end gives the big-endian sum.
inline uint32_t checksum_partial(const uint8_t* p, uint32_t len, uint32_t sum = 0) {
  uint64_t acc = 0;
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    acc += (v >> 32) + (v & 0xffffffff);
  }
  if (len >= 4) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    acc += v;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    acc += v;
    p += 2;
    len -= 2;
  }
  if (len) {
    uint8_t pad[2] = {p[0], 0};
    uint16_t v;
    std::memcpy(&v, pad, 2);
    acc += v;
  }
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  auto folded = static_cast<uint16_t>(acc);
  if constexpr (std::endian::native == std::endian::little) folded = __builtin_bswap16(folded);
  return sum + folded;
}

inline uint16_t checksum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// RFC 1624 incremental update: a 16-bit word of the covered data changed from
// old_word to new_word; returns the new checksum field value.
inline uint16_t checksum_adjust(uint16_t checksum, uint16_t old_word, uint16_t new_word) {
  uint32_t sum = static_cast<uint16_t>(~checksum) +
                 static_cast<uint32_t>(static_cast<uint16_t>(~old_word)) + new_word;
  return checksum_fold(sum);
}

}  // namespace onramp::dp
