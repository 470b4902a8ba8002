#include "dataplane/decap/port_override.h"

#include <netinet/in.h>

#include <charconv>
#include <map>
#include <tuple>

namespace onramp::decap {
namespace {

bool parse_port(std::string_view text, uint16_t& port) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value < 1 ||
      value > 65535)
    return false;
  port = static_cast<uint16_t>(value);
  return true;
}

const char* protocol_name(uint8_t protocol) { return protocol == IPPROTO_TCP ? "tcp" : "udp"; }

}  // namespace

Result<std::vector<PortOverride>> parse_port_override(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  const std::string shape =
      ": expected VIP:LISTENER_PORT=ENDPOINT_PORT[/tcp|/udp], e.g. 203.0.113.10:443=8443 or "
      "[2001:db8::10]:443=8443/tcp";
  std::string_view rest = text;
  std::vector<uint8_t> protocols = {IPPROTO_TCP, IPPROTO_UDP};
  if (const size_t slash = rest.rfind('/'); slash != std::string_view::npos) {
    const std::string_view p = rest.substr(slash + 1);
    if (p == "tcp")
      protocols = {IPPROTO_TCP};
    else if (p == "udp")
      protocols = {IPPROTO_UDP};
    else
      return error(quoted + ": protocol must be tcp or udp");
    rest = rest.substr(0, slash);
  }
  const size_t equals = rest.find('=');
  if (equals == std::string_view::npos) return error(quoted + shape);
  const std::string_view endpoint_text = rest.substr(equals + 1);
  rest = rest.substr(0, equals);
  std::string_view vip_text, listener_text;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find("]:");
    if (close == std::string_view::npos) return error(quoted + shape);
    vip_text = rest.substr(1, close - 1);
    listener_text = rest.substr(close + 2);
  } else {
    const size_t colon = rest.find(':');
    if (colon == std::string_view::npos || rest.find(':', colon + 1) != std::string_view::npos)
      return error(quoted + shape + " (an IPv6 VIP goes in brackets)");
    vip_text = rest.substr(0, colon);
    listener_text = rest.substr(colon + 1);
  }
  PortOverride o;
  const std::optional<IpAddress> vip = IpAddress::parse(vip_text);
  if (!vip) return error(quoted + ": \"" + std::string(vip_text) + "\" is not an IP address");
  if (!rest.empty() && rest.front() == '[' && vip->is_v4())
    return error(quoted + ": only an IPv6 VIP goes in brackets");
  o.vip = *vip;
  if (!parse_port(listener_text, o.listener_port))
    return error(quoted + ": listener port must be 1..65535");
  if (!parse_port(endpoint_text, o.endpoint_port))
    return error(quoted + ": endpoint port must be 1..65535");
  std::vector<PortOverride> out;
  for (uint8_t protocol : protocols) {
    o.protocol = protocol;
    out.push_back(o);
  }
  return out;
}

Status check_port_overrides(const std::vector<PortOverride>& overrides) {
  using Key = std::tuple<IpAddress, uint16_t, uint8_t>;
  std::map<Key, const PortOverride*> in, out;
  for (const PortOverride& o : overrides) {
    auto [a, fresh_in] = in.emplace(Key{o.vip, o.listener_port, o.protocol}, &o);
    if (!fresh_in && a->second->endpoint_port != o.endpoint_port)
      return error("--port-override " + to_string(o) + " and " + to_string(*a->second) +
                   " map the same listener port twice");
    auto [b, fresh_out] = out.emplace(Key{o.vip, o.endpoint_port, o.protocol}, &o);
    if (!fresh_out && b->second->listener_port != o.listener_port)
      return error("--port-override " + to_string(o) + " and " + to_string(*b->second) +
                   " map two listener ports to one endpoint port: the replies could not tell "
                   "which port the client connected to");
  }
  return ok_status();
}

std::string to_string(const PortOverride& o) {
  const std::string vip = o.vip.is_v4() ? o.vip.to_string() : "[" + o.vip.to_string() + "]";
  return vip + ":" + std::to_string(o.listener_port) + "=" + std::to_string(o.endpoint_port) + "/" +
         protocol_name(o.protocol);
}

}  // namespace onramp::decap
