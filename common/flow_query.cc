#include "common/flow_query.h"

#include <string>

#include "common/text.h"

namespace onramp {

Result<FlowQuery> make_flow_query(const FlowQueryFields& f) {
  auto client = IpAddress::parse(f.client_address);
  if (!client)
    return error("client_address: " + quote(f.client_address) + " is not an IPv4 or IPv6 address");
  auto vip = IpAddress::parse(f.vip);
  if (!vip) return error("vip: " + quote(f.vip) + " is not an IPv4 or IPv6 address");
  if (f.client_port > 65535) return error("client_port: outside 0..65535");
  if (f.port < 1 || f.port > 65535) return error("port: outside 1..65535");
  if (f.l4_proto != 6 && f.l4_proto != 17) return error("protocol: TCP or UDP");
  return FlowQuery{.client = *client,
                   .client_port = static_cast<uint16_t>(f.client_port),
                   .vip = *vip,
                   .port = static_cast<uint16_t>(f.port),
                   .l4_proto = f.l4_proto};
}

}  // namespace onramp
