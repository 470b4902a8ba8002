#include "controlplane/cli/args.h"

#include <algorithm>
#include <charconv>

#include "common/ip_address.h"

namespace onramp::cli {
namespace {

// A decimal port 1..65535 (or 0..65535 when `allow_zero`).
bool parse_port(std::string_view s, uint32_t& out, bool allow_zero = false) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return false;
  if (v > 65535 || (v == 0 && !allow_zero)) return false;
  out = v;
  return true;
}

}  // namespace

const std::vector<std::string> kProtocolNames = {"tcp", "udp", "tcp_udp"};
const std::vector<std::string> kFlowProtocolNames = {"tcp", "udp"};
const std::vector<std::string> kAffinityNames = {"none", "source_ip"};
const std::vector<std::string> kModeNames = {"ipip", "gue"};
const std::vector<std::string> kHealthProtocolNames = {"tcp", "http", "https", "udp"};

Result<std::vector<PortSpan>> parse_port_ranges(const std::string& text) {
  std::vector<PortSpan> out;
  std::string_view rest = text;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    if (item.empty()) return error("\"" + text + "\": empty item in the port list");
    PortSpan span;
    size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      if (!parse_port(item, span.first))
        return error("\"" + std::string(item) + "\" is not a port (1..65535)");
      span.last = span.first;
    } else {
      if (!parse_port(item.substr(0, dash), span.first) ||
          !parse_port(item.substr(dash + 1), span.last))
        return error("\"" + std::string(item) +
                     "\" is not a port range (first-last, ports 1..65535)");
      if (span.first > span.last)
        return error("\"" + std::string(item) + "\": the first port is above the last");
    }
    out.push_back(span);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

std::string format_port_ranges(const google::protobuf::RepeatedPtrField<v1::PortRange>& ranges) {
  std::string s;
  for (const v1::PortRange& r : ranges) {
    if (!s.empty()) s += ',';
    s += std::to_string(r.first());
    if (r.last() != 0 && r.last() != r.first()) s += '-' + std::to_string(r.last());
  }
  return s;
}

Result<v1::PortOverride> parse_port_override(const std::string& text) {
  size_t colon = text.find(':');
  uint32_t from = 0, to = 0;
  if (colon == std::string::npos || !parse_port(std::string_view(text).substr(0, colon), from) ||
      !parse_port(std::string_view(text).substr(colon + 1), to))
    return error("\"" + text + "\" is not LISTENER_PORT:ENDPOINT_PORT (ports 1..65535)");
  v1::PortOverride out;
  out.set_listener_port(from);
  out.set_endpoint_port(to);
  return out;
}

Result<ClientAddress> parse_client(const std::string& text) {
  ClientAddress c;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return error("\"" + text + "\": missing ']'");
    c.address = text.substr(1, close - 1);
    std::string_view tail = std::string_view(text).substr(close + 1);
    if (!tail.empty() && (tail[0] != ':' || !parse_port(tail.substr(1), c.port, true)))
      return error("\"" + text + "\": expected [ADDRESS]:PORT");
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    size_t colon = text.find(':');
    c.address = text.substr(0, colon);
    if (!parse_port(std::string_view(text).substr(colon + 1), c.port, true))
      return error("\"" + text + "\": \"" + text.substr(colon + 1) + "\" is not a port (0..65535)");
  } else {
    c.address = text;  // bare IPv4, or IPv6 without a port
  }
  if (!IpAddress::parse(c.address))
    return error("\"" + c.address + "\" is not an IPv4 or IPv6 address");
  return c;
}

v1::Protocol protocol_from_name(const std::string& name) {
  if (name == "tcp") return v1::TCP;
  if (name == "udp") return v1::UDP;
  if (name == "tcp_udp") return v1::TCP_UDP;
  return v1::PROTOCOL_UNSPECIFIED;
}

v1::ClientAffinity affinity_from_name(const std::string& name) {
  return name == "source_ip" ? v1::SOURCE_IP : v1::NONE;
}

v1::ForwardingMode mode_from_name(const std::string& name) {
  return name == "gue" ? v1::ENCAP_GUE : v1::ENCAP_IPIP;
}

v1::HealthCheckProtocol health_protocol_from_name(const std::string& name) {
  if (name == "http") return v1::HEALTH_CHECK_HTTP;
  if (name == "https") return v1::HEALTH_CHECK_HTTPS;
  if (name == "udp") return v1::HEALTH_CHECK_UDP;
  return v1::HEALTH_CHECK_TCP;
}

std::string protocol_name(v1::Protocol p) {
  switch (p) {
    case v1::TCP:
      return "tcp";
    case v1::UDP:
      return "udp";
    case v1::TCP_UDP:
      return "tcp_udp";
    default:
      return "unspecified";
  }
}

std::string affinity_name(v1::ClientAffinity a) {
  return a == v1::SOURCE_IP ? "source_ip" : "none";
}

std::string mode_name(v1::ForwardingMode m) { return m == v1::ENCAP_GUE ? "gue" : "ipip"; }

std::string health_protocol_name(v1::HealthCheckProtocol p) {
  switch (p) {
    case v1::HEALTH_CHECK_HTTP:
      return "http";
    case v1::HEALTH_CHECK_HTTPS:
      return "https";
    case v1::HEALTH_CHECK_UDP:
      return "udp";
    default:
      return "tcp";  // unspecified means TCP (resources.proto)
  }
}

}  // namespace onramp::cli
