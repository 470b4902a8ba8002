// A flow as an operator names it when asking where it goes ("trace"): the
// same question for the controller's TraceFlow and the dataplane's, checked
// by one function so both answer a bad question with the same words.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/ip_address.h"
#include "common/status.h"

namespace onramp {

struct FlowQuery {
  IpAddress client;
  uint16_t client_port = 0;
  IpAddress vip;
  uint16_t port = 0;
  uint8_t l4_proto = 6;  // 6 TCP, 17 UDP
};

// The fields of a trace request, as they come off the wire.
struct FlowQueryFields {
  std::string_view client_address;
  uint32_t client_port = 0;  // 0..65535
  std::string_view vip;
  uint32_t port = 0;     // 1..65535
  uint8_t l4_proto = 0;  // 6 or 17; anything else is refused
};

// The query, or an error naming the request field (client_address, vip,
// client_port, port, protocol).
Result<FlowQuery> make_flow_query(const FlowQueryFields& f);

}  // namespace onramp
