// Allow-list prefixes as an operator types them ("198.51.100.0/24",
// "2001:db8:f1::/48", or a bare address for one host), checked before they
// reach the BPF maps.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace onramp::decap {

struct Prefix {
  int family = 0;                  // 4 or 6
  std::array<uint8_t, 16> addr{};  // network byte order; IPv4 uses the first 4
  uint8_t length = 0;              // prefix length in bits
};

// Parses `text`. Returns the prefix, or an error that quotes the input and
// says what is wrong (host bits set, length out of range, not an address).
Result<Prefix> parse_prefix(std::string_view text);

std::string to_string(const Prefix& p);

}  // namespace onramp::decap
