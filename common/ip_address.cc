#include "common/ip_address.h"

#include <arpa/inet.h>

#include <cstdio>

namespace onramp {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton reads up to the first NUL: "192.0.2.1\0junk" is not an address.
  if (text.size() >= INET6_ADDRSTRLEN || text.find('\0') != std::string_view::npos)
    return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  uint8_t raw[16];
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, raw) != 1) return std::nullopt;
    return from_v4(raw);
  }
  if (inet_pton(AF_INET6, buf, raw) != 1) return std::nullopt;
  return from_v6(raw);
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (is_v4()) {
    inet_ntop(AF_INET, v4(), buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, v6(), buf, sizeof buf);
  }
  return buf;
}

std::optional<MacAddress> parse_mac(std::string_view text) {
  MacAddress mac{};
  if (text.size() != 17) return std::nullopt;
  for (size_t i = 0; i < 6; ++i) {
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(text[i * 3]);
    int lo = hex(text[i * 3 + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    if (i < 5 && text[i * 3 + 2] != ':') return std::nullopt;
    mac[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return mac;
}

std::string mac_to_string(const MacAddress& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

std::optional<std::string> unusable_address_reason(const IpAddress& a) {
  if (a.is_v4()) {
    const uint8_t* b = a.v4();
    if (b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0) return "is the unspecified address";
    if (b[0] == 0) return "is in 0.0.0.0/8 (\"this network\")";
    if (b[0] == 127) return "is a loopback address";
    if (b[0] == 169 && b[1] == 254) return "is a link-local address";
    if (b[0] >= 224 && b[0] <= 239) return "is a multicast address";
    if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255) return "is the broadcast address";
    if (b[0] >= 240) return "is in 240.0.0.0/4 (reserved)";
    return std::nullopt;
  }
  const uint8_t* b = a.v6();
  static const IpAddress kZero{};
  if (a == kZero) return "is the unspecified address";
  IpAddress loop{};
  loop.bytes[15] = 1;
  if (a == loop) return "is the loopback address";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "is a link-local address";
  if (b[0] == 0xff) return "is a multicast address";
  return std::nullopt;
}

std::optional<std::string> unusable_mac_reason(const MacAddress& mac) {
  if (mac == MacAddress{}) return "is all zeros";
  if (mac[0] & 1) return "is a multicast or broadcast address";
  return std::nullopt;
}

}  // namespace onramp
