// Parsers for the values onrampctl takes on its command line: port ranges,
// port overrides, client addresses, enum names. Each returns the value or an
// error that says what is wrong with the text it was given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "onramp/v1/forwarding.pb.h"
#include "onramp/v1/resources.pb.h"

namespace onramp::cli {

struct PortSpan {
  uint32_t first = 0;
  uint32_t last = 0;  // == first for a single port
  bool operator==(const PortSpan&) const = default;
};

// "80,443,8000-8099": ports 1..65535, first <= last, no empty items. Spans
// are kept in the order given.
Result<std::vector<PortSpan>> parse_port_ranges(const std::string& text);
// The other way round; "last == 0" is a single port, as in the proto.
std::string format_port_ranges(const google::protobuf::RepeatedPtrField<v1::PortRange>& ranges);

// "80:8080" -> listener port 80 to endpoint port 8080.
Result<v1::PortOverride> parse_port_override(const std::string& text);

struct ClientAddress {
  std::string address;
  uint32_t port = 0;  // 0 when not given
};
// "198.51.100.7", "198.51.100.7:5000", "2001:db8::7", "[2001:db8::7]:5000".
Result<ClientAddress> parse_client(const std::string& text);

// The flow `trace` and `dataplane trace` ask about, as their flags give it.
struct FlowFlags {
  std::string client;  // parse_client's forms
  std::string vip;
  uint32_t port = 0;
  std::string protocol;  // tcp or udp
};

v1::Protocol protocol_from_name(const std::string& name);  // below

// Fills a TraceFlowRequest or a DataplaneTraceRequest (the same fields); the
// error names the flag.
template <typename Request>
Status fill_flow_request(const FlowFlags& f, Request& req) {
  Result<ClientAddress> client = parse_client(f.client);
  if (!client.ok()) return client.status().prefixed("--client");
  req.set_client_address(client->address);
  req.set_client_port(client->port);
  req.set_vip(f.vip);
  req.set_port(f.port);
  req.set_protocol(protocol_from_name(f.protocol));
  return ok_status();
}

// Lower-case names on the command line <-> proto enums.
v1::Protocol protocol_from_name(const std::string& name);        // tcp, udp, tcp_udp
v1::ClientAffinity affinity_from_name(const std::string& name);  // none, source_ip
v1::ForwardingMode mode_from_name(const std::string& name);      // ipip, gue
v1::HealthCheckProtocol health_protocol_from_name(
    const std::string& name);  // tcp, http, https, udp
std::string protocol_name(v1::Protocol p);
std::string affinity_name(v1::ClientAffinity a);
std::string mode_name(v1::ForwardingMode m);
std::string health_protocol_name(v1::HealthCheckProtocol p);

extern const std::vector<std::string> kProtocolNames;
extern const std::vector<std::string> kFlowProtocolNames;  // tcp, udp (traces)
extern const std::vector<std::string> kAffinityNames;
extern const std::vector<std::string> kModeNames;
extern const std::vector<std::string> kHealthProtocolNames;

}  // namespace onramp::cli
