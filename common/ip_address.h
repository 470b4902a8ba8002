// An IPv4 or IPv6 address in one 16-byte form (IPv4 as ::ffff:a.b.c.d), so flow
// keys, VIP lookups and endpoint identities treat both families alike.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace onramp {

struct IpAddress {
  std::array<uint8_t, 16> bytes{};

  static IpAddress from_v4(const uint8_t* p) {
    IpAddress a;
#ifdef __SSE2__
    // One 16-byte store: the parser writes addresses and the flow key reads
    // them back whole, and a wide load of several narrow stores stalls.
    int32_t v;
    std::memcpy(&v, p, 4);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(a.bytes.data()),
                     _mm_set_epi32(v, static_cast<int32_t>(0xffff0000u), 0, 0));
#else
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::memcpy(&a.bytes[12], p, 4);
#endif
    return a;
  }
  static IpAddress from_v6(const uint8_t* p) {
    IpAddress a;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
  }
  // Accepts dotted-quad IPv4 or any RFC 4291 textual IPv6.
  static std::optional<IpAddress> parse(std::string_view text);

  bool is_v4() const {
    static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(bytes.data(), kPrefix, 12) == 0;
  }
  const uint8_t* v4() const { return &bytes[12]; }
  const uint8_t* v6() const { return bytes.data(); }
  std::string to_string() const;

  // Two word compares, no memcmp call: this runs per packet.
  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    uint64_t x[2], y[2];
    std::memcpy(x, a.bytes.data(), 16);
    std::memcpy(y, b.bytes.data(), 16);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
  }
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

// Addresses that can never be a VIP, an endpoint or a tunnel source: the
// unspecified address and "this network" (0.0.0.0/8), loopback, link-local
// (169.254.0.0/16, fe80::/10), multicast, and 240.0.0.0/4 with the broadcast
// address. The reason as a phrase ("is a link-local address"), or nullopt.
std::optional<std::string> unusable_address_reason(const IpAddress& a);

using MacAddress = std::array<uint8_t, 6>;

// A next hop's MAC must be a unicast address: not all zeros, and not
// multicast or broadcast (the group bit of the first octet). The reason as
// a phrase, or nullopt.
std::optional<std::string> unusable_mac_reason(const MacAddress& mac);

std::optional<MacAddress> parse_mac(std::string_view text);
std::string mac_to_string(const MacAddress& mac);

}  // namespace onramp
