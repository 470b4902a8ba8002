#include "dataplane/decap/prefix.h"

#include <arpa/inet.h>

#include <charconv>

namespace onramp::decap {

Result<Prefix> parse_prefix(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  const size_t slash = text.find('/');
  const std::string addr_text(text.substr(0, slash));
  Prefix p;
  if (inet_pton(AF_INET, addr_text.c_str(), p.addr.data()) == 1) {
    p.family = 4;
  } else if (inet_pton(AF_INET6, addr_text.c_str(), p.addr.data()) == 1) {
    p.family = 6;
  } else {
    return error(quoted + " is not an IPv4 or IPv6 prefix (e.g. 198.51.100.0/24, 2001:db8::/32)");
  }
  const unsigned max_len = p.family == 4 ? 32 : 128;
  unsigned len = max_len;
  if (slash != std::string_view::npos) {
    const std::string_view len_text = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
    if (len_text.empty() || ec != std::errc() || ptr != len_text.data() + len_text.size() ||
        len > max_len)
      return error(quoted + ": prefix length must be 0.." + std::to_string(max_len));
  }
  p.length = static_cast<uint8_t>(len);
  // Host bits set is most often a typo for another prefix: refuse, and say
  // which prefix the address belongs to.
  Prefix masked = p;
  const unsigned bytes = max_len / 8;
  bool host_bits = false;
  for (unsigned i = 0; i < bytes; ++i) {
    const unsigned bits_here = len >= (i + 1) * 8 ? 8 : (len > i * 8 ? len - i * 8 : 0);
    const auto mask = static_cast<uint8_t>(bits_here == 0 ? 0 : 0xff << (8 - bits_here));
    masked.addr[i] = p.addr[i] & mask;
    host_bits |= masked.addr[i] != p.addr[i];
  }
  if (host_bits) return error(quoted + " has host bits set; the prefix is " + to_string(masked));
  return p;
}

std::string to_string(const Prefix& p) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(p.family == 4 ? AF_INET : AF_INET6, p.addr.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(p.length);
}

}  // namespace onramp::decap
