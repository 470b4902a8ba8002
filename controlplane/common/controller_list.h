// A list of controller replicas as operators give it to the agent and to
// onrampctl ("ctl-a:7444,ctl-b:7444,[2001:db8::7]:7444"), and each entry
// resolved to the addresses it names, so a client can move from one replica
// to the next one rather than back to the same (docs/agent.md, docs/cli.md).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace grpc {
class ChannelArguments;
}

namespace onramp::cp {

// One entry as given: a host (a name or an address, IPv6 without brackets)
// and a port.
struct ControllerAddress {
  std::string host;
  std::string port;
  // "host:port", IPv6 in brackets: what the operator wrote, in one form.
  std::string text() const;
};

// Parses "HOST:PORT[,HOST:PORT...]". Spaces around entries are ignored. An
// empty list or entry, a missing or bad port, an IPv6 address without
// brackets, or an entry given twice is an error that names the entry.
Result<std::vector<ControllerAddress>> parse_controller_list(const std::string& text);

// One replica to connect to: a gRPC target ("ipv4:192.0.2.7:7444",
// "ipv6:[2001:db8::7]:7444", or "name:7444" when the name did not resolve,
// so gRPC reports why) and the entry it came from, which TLS checks the
// controller's certificate against and logs name.
struct Replica {
  std::string target;
  std::string authority;    // ControllerAddress::text()
  std::string server_name;  // the host name of the entry; "" for an address literal
  bool operator==(const Replica&) const = default;
};

// Sets the :authority of a channel to `replica` and, for an entry given by
// name, the name its TLS certificate must carry: the channel connects to one
// address of the name but checks the name, as a channel to the name would.
void name_channel(grpc::ChannelArguments& args, const Replica& replica);

// The addresses of a host name, as text (IPv4 dotted, IPv6 without
// brackets); empty when it does not resolve.
using Resolver = std::function<std::vector<std::string>(const std::string& host)>;
// getaddrinfo: every address of the name, in the resolver's order.
Resolver system_resolver();

// Every replica the list names, in order: an address literal as it is, a
// name as each of its addresses. An address reached through two entries is
// kept once, at its first place.
std::vector<Replica> resolve_replicas(const std::vector<ControllerAddress>& list,
                                      const Resolver& resolver);

}  // namespace onramp::cp
