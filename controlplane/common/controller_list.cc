#include "controlplane/common/controller_list.h"

#include <arpa/inet.h>
#include <grpcpp/support/channel_arguments.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>

namespace onramp::cp {
namespace {

bool is_ipv4(const std::string& host) {
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr a{};
  return inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

Result<ControllerAddress> parse_entry(const std::string& entry) {
  ControllerAddress a;
  std::string port;
  if (!entry.empty() && entry[0] == '[') {
    size_t end = entry.find(']');
    if (end == std::string::npos) return error("\"" + entry + "\": no closing ]");
    a.host = entry.substr(1, end - 1);
    if (!is_ipv6(a.host)) return error("\"" + entry + "\": not an IPv6 address in brackets");
    if (end + 1 >= entry.size() || entry[end + 1] != ':')
      return error("\"" + entry + "\": no port (HOST:PORT, e.g. [2001:db8::7]:7444)");
    port = entry.substr(end + 2);
  } else {
    size_t colon = entry.rfind(':');
    if (colon == std::string::npos)
      return error("\"" + entry + "\": no port (HOST:PORT, e.g. ctl.example.net:7444)");
    a.host = entry.substr(0, colon);
    if (a.host.find(':') != std::string::npos)
      return error("\"" + entry + "\": an IPv6 address takes brackets ([2001:db8::7]:7444)");
    port = entry.substr(colon + 1);
  }
  if (a.host.empty()) return error("\"" + entry + "\": no host");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
      value > 65535)
    return error("\"" + entry + "\": the port must be 1..65535");
  a.port = std::to_string(value);
  return a;
}

}  // namespace

std::string ControllerAddress::text() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
}

Result<std::vector<ControllerAddress>> parse_controller_list(const std::string& text) {
  std::vector<ControllerAddress> list;
  if (trim(text).empty()) return error("no controller address given (HOST:PORT[,HOST:PORT...])");
  size_t from = 0;
  while (true) {
    size_t comma = text.find(',', from);
    std::string entry =
        trim(text.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
    if (entry.empty()) return error("\"" + text + "\": an empty entry between commas");
    Result<ControllerAddress> a = parse_entry(entry);
    if (!a.ok()) return a.status();
    bool twice = std::any_of(list.begin(), list.end(),
                             [&](const ControllerAddress& b) { return b.text() == a->text(); });
    if (twice) return error("\"" + a->text() + "\": given twice");
    list.push_back(*a);
    if (comma == std::string::npos) break;
    from = comma + 1;
  }
  return list;
}

Resolver system_resolver() {
  return [](const std::string& host) {
    std::vector<std::string> found;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return found;
    for (addrinfo* a = res; a; a = a->ai_next) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* addr =
          a->ai_family == AF_INET
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
          : a->ai_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr)
              : nullptr;
      if (addr && inet_ntop(a->ai_family, addr, text, sizeof(text))) found.emplace_back(text);
    }
    freeaddrinfo(res);
    return found;
  };
}

std::vector<Replica> resolve_replicas(const std::vector<ControllerAddress>& list,
                                      const Resolver& resolver) {
  std::vector<Replica> replicas;
  auto add = [&](Replica r) {
    bool seen = std::any_of(replicas.begin(), replicas.end(),
                            [&](const Replica& o) { return o.target == r.target; });
    if (!seen) replicas.push_back(std::move(r));
  };
  for (const ControllerAddress& a : list) {
    std::vector<std::string> addresses;
    bool literal = is_ipv4(a.host) || is_ipv6(a.host);
    if (literal)
      addresses.push_back(a.host);
    else
      addresses = resolver(a.host);
    if (addresses.empty()) add({.target = a.text(), .authority = a.text()});
    for (const std::string& ip : addresses) {
      std::string target = is_ipv4(ip)   ? "ipv4:" + ip + ":" + a.port
                           : is_ipv6(ip) ? "ipv6:[" + ip + "]:" + a.port
                                         : ip + ":" + a.port;
      add({.target = target, .authority = a.text(), .server_name = literal ? "" : a.host});
    }
  }
  return replicas;
}

void name_channel(grpc::ChannelArguments& args, const Replica& replica) {
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, replica.authority);
  if (!replica.server_name.empty())
    args.SetString(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, replica.server_name);
}

}  // namespace onramp::cp
