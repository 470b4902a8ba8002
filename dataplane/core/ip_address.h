// An IPv4 or IPv6 address in one 16-byte form (IPv4 as ::ffff:a.b.c.d), so flow
// keys, VIP lookups and endpoint identities treat both families alike.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace onramp::dp {

struct IpAddress {
  std::array<uint8_t, 16> bytes{};

  static IpAddress from_v4(const uint8_t* p) {
    IpAddress a;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::memcpy(&a.bytes[12], p, 4);
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

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

using MacAddress = std::array<uint8_t, 6>;

std::optional<MacAddress> parse_mac(std::string_view text);
std::string mac_to_string(const MacAddress& mac);

}  // namespace onramp::dp
