// DPDK port set-up: every probed port (PCI or vdev) gets one RX and one TX
// queue per worker lcore, RSS across them when there is more than one; with
// the exception path on, one TX queue more, the main lcore's (queue index
// `queues`), and the exception interface's own port left out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/ip_address.h"
#include "common/status.h"
#include "dataplane/app/options.h"

struct rte_mempool;

namespace onramp::dp {

struct PortInfo {
  uint16_t id;
  std::string name;
  MacAddress mac;
  std::string driver;           // e.g. net_af_xdp, net_ice
  unsigned if_index = 0;        // the kernel interface, for ports on one (0: none)
  rte_mempool* pool = nullptr;  // its RX queues' buffers
};

// Configures and starts every port. Returns them, or an error naming the
// port.
// `skip`: a port set up elsewhere (the exception interface), or -1.
Result<std::vector<PortInfo>> setup_ports(const Options& opts, uint16_t queues, int skip = -1);
void stop_ports(const std::vector<PortInfo>& ports);

}  // namespace onramp::dp
