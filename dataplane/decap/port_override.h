// onramp-decap's port overrides as an operator types them
// ("203.0.113.10:443=8443", "[2001:db8::10]:53=5353/udp"), checked before
// they reach the BPF maps: the listener port clients connect to on a VIP,
// the port the application on this host listens on.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_address.h"
#include "common/status.h"

namespace onramp::decap {

struct PortOverride {
  IpAddress vip;
  uint16_t listener_port = 0;
  uint16_t endpoint_port = 0;
  uint8_t protocol = 0;  // IPPROTO_TCP or IPPROTO_UDP
};

// Parses VIP:LISTENER_PORT=ENDPOINT_PORT[/tcp|/udp] (an IPv6 VIP in
// brackets). Without a protocol the override holds for TCP and UDP: two
// entries. The error quotes the input and says what is wrong.
Result<std::vector<PortOverride>> parse_port_override(std::string_view text);

// Refuses a set the maps cannot hold both ways: one (VIP, listener port,
// protocol) mapped twice, or two listener ports of one VIP and protocol
// mapped to the same endpoint port (the replies could not say which).
Status check_port_overrides(const std::vector<PortOverride>& overrides);

// "203.0.113.10:443=8443/tcp"
std::string to_string(const PortOverride& o);

}  // namespace onramp::decap
