#include "dataplane/core/encap.h"

#include <cstring>

#include "dataplane/core/net_headers.h"

namespace onramp::dp {

void prepare_encap(Endpoint& ep, const TableSpec& spec) {
  ep.outer_header.fill(0);
  uint8_t* h = ep.outer_header.data();
  if (ep.v4) {
    // Version 4, IHL 5, TTL 64; TOS, length, DF, protocol and checksum are
    // the packet's. Identification stays 0: DF is set, or the packet is
    // never fragmented by us.
    h[0] = 0x45;
    h[8] = 64;
    std::memcpy(h + 12, spec.tunnel_source_v4->v4(), 4);
    std::memcpy(h + 16, ep.address.v4(), 4);
    ep.outer_addr_sum = checksum_partial(h + 12, 8);
    ep.outer_sum = checksum_partial(h, kIpv4HeaderLen);
  } else {
    h[7] = 64;  // hop limit
    std::memcpy(h + 8, spec.tunnel_source_v6->v6(), 16);
    std::memcpy(h + 24, ep.address.v6(), 16);
    ep.outer_addr_sum = checksum_partial(h + 8, 32);
    ep.outer_sum = ep.outer_addr_sum;
  }
  // The relay hop's header: from the same tunnel source (the relay has the
  // endpoint's family), to the relay; per packet as above.
  ep.relay_header.fill(0);
  if (!ep.relay) return;
  h = ep.relay_header.data();
  if (ep.v4) {
    h[0] = 0x45;
    h[8] = 64;
    std::memcpy(h + 12, spec.tunnel_source_v4->v4(), 4);
    std::memcpy(h + 16, ep.relay->v4(), 4);
    ep.relay_addr_sum = checksum_partial(h + 12, 8);
    ep.relay_sum = checksum_partial(h, kIpv4HeaderLen);
  } else {
    h[6] = kProtoUdp;
    h[7] = 64;
    std::memcpy(h + 8, spec.tunnel_source_v6->v6(), 16);
    std::memcpy(h + 24, ep.relay->v6(), 16);
    ep.relay_addr_sum = checksum_partial(h + 8, 32);
    ep.relay_sum = ep.relay_addr_sum;
  }
}

}  // namespace onramp::dp
