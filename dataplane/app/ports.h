// DPDK port set-up: every probed port (PCI or vdev) gets one RX and one TX
// queue per worker lcore, RSS across them when there is more than one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/app/options.h"
#include "common/ip_address.h"

struct rte_mempool;

namespace onramp::dp {

struct PortInfo {
  uint16_t id;
  std::string name;
  MacAddress mac;
};

// Configures and starts every port. Returns "" or an error naming the port.
std::string setup_ports(const Options& opts, uint16_t queues, std::vector<PortInfo>& ports);
void stop_ports(const std::vector<PortInfo>& ports);

}  // namespace onramp::dp
