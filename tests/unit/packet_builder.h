// Builds test frames byte by byte, independently of the code under test
// (checksums included), so tests compare against a second implementation.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/ip_address.h"

namespace onramp::test {

using Bytes = std::vector<uint8_t>;

inline void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

inline uint16_t inet_checksum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (n & 1) sum += p[n - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

inline IpAddress ip(const char* text) { return *IpAddress::parse(text); }

// Ethernet header with optional VLAN tags.
inline Bytes ether(uint16_t ethertype, std::initializer_list<uint16_t> vlans = {}) {
  Bytes b = {0x02, 0x70, 0x63, 0x61, 0x70, 0x00, 0x02, 0, 0, 0, 0, 0x01};
  for (uint16_t v : vlans) {
    put16(b, 0x8100);
    put16(b, v);
  }
  put16(b, ethertype);
  return b;
}

inline Bytes tcp(uint16_t sport, uint16_t dport, uint8_t flags = 0x02) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  b.insert(b.end(), {0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0});
  return b;
}

inline Bytes udp(uint16_t sport, uint16_t dport, size_t payload = 4) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put16(b, static_cast<uint16_t>(8 + payload));
  put16(b, 0);
  b.insert(b.end(), payload, 0xab);
  return b;
}

// IPv4 header (with options, padded to 4 bytes) + payload.
inline Bytes ipv4(const char* src, const char* dst, uint8_t proto, const Bytes& payload,
                  const Bytes& options = {}, uint16_t frag = 0x4000) {
  Bytes b;
  size_t ihl = 20 + (options.size() + 3) / 4 * 4;
  b.push_back(static_cast<uint8_t>(0x40 | ihl / 4));
  b.push_back(0);
  put16(b, static_cast<uint16_t>(ihl + payload.size()));
  put16(b, 0x1234);
  put16(b, frag);
  b.push_back(64);
  b.push_back(proto);
  put16(b, 0);
  auto s = ip(src), d = ip(dst);
  b.insert(b.end(), s.v4(), s.v4() + 4);
  b.insert(b.end(), d.v4(), d.v4() + 4);
  b.insert(b.end(), options.begin(), options.end());
  b.resize(ihl, 0);
  uint16_t c = inet_checksum(b.data(), ihl);
  b[10] = static_cast<uint8_t>(c >> 8);
  b[11] = static_cast<uint8_t>(c);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// IPv6 header + extension headers (each given whole) + payload. `first_next`
// is the Next Header of the fixed header.
inline Bytes ipv6(const char* src, const char* dst, uint8_t first_next, const Bytes& rest) {
  Bytes b = {0x60, 0, 0, 0};
  put16(b, static_cast<uint16_t>(rest.size()));
  b.push_back(first_next);
  b.push_back(64);
  auto s = ip(src), d = ip(dst);
  b.insert(b.end(), s.v6(), s.v6() + 16);
  b.insert(b.end(), d.v6(), d.v6() + 16);
  b.insert(b.end(), rest.begin(), rest.end());
  return b;
}

inline Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace onramp::test
