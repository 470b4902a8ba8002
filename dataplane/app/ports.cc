#include "dataplane/app/ports.h"

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace onramp::dp {
namespace {

constexpr unsigned kMbufCache = 256;

Status port_error(uint16_t port, const char* what, int rc) {
  return error("port " + std::to_string(port) + ": " + what + " failed: " + rte_strerror(-rc));
}

}  // namespace

Result<std::vector<PortInfo>> setup_ports(const Options& opts, uint16_t queues, int skip) {
  uint16_t n_ports = rte_eth_dev_count_avail();
  if (skip >= 0) --n_ports;
  const bool exception = skip >= 0;
  const auto tx_queues = static_cast<uint16_t>(queues + (exception ? 1 : 0));
  if (n_ports == 0)
    return error(
        "no DPDK port: bind a NIC to vfio-pci or add one with --vdev (see docs/deployment.md)");
  std::vector<PortInfo> ports;

  // One mbuf pool per NUMA socket, sized for every queue's ring plus bursts
  // in flight.
  std::map<int, rte_mempool*> pools;
  unsigned per_port =
      queues * (opts.rx_descriptors + opts.tx_descriptors + 2u * opts.burst) + kMbufCache;
  // The exception path holds buffers in its rings and its port's queues.
  const unsigned exception_mbufs = exception ? queues * opts.exception_ring + 2048u : 0u;
  unsigned mbufs = std::max({8191u, per_port * n_ports + exception_mbufs, opts.mbufs});

  uint16_t port;
  RTE_ETH_FOREACH_DEV(port) {
    if (port == skip) continue;
    int socket = rte_eth_dev_socket_id(port);
    if (socket < 0) socket = 0;
    rte_mempool*& pool = pools[socket];
    if (!pool) {
      std::string name = "onramp_mbufs_" + std::to_string(socket);
      pool = rte_pktmbuf_pool_create(name.c_str(), mbufs, kMbufCache, 0,
                                     static_cast<uint16_t>(RTE_PKTMBUF_HEADROOM + opts.mbuf_size),
                                     socket);
      if (!pool)
        return error("cannot allocate " + std::to_string(mbufs) + " mbufs on socket " +
                     std::to_string(socket) + ": " + rte_strerror(rte_errno) +
                     " (give the EAL more memory with -m, or hugepages)");
    }

    rte_eth_dev_info info;
    int rc = rte_eth_dev_info_get(port, &info);
    if (rc != 0) return port_error(port, "dev_info_get", rc);
    if (queues > info.max_rx_queues || queues > info.max_tx_queues)
      return error("port " + std::to_string(port) + " (" + info.driver_name + ") has " +
                   std::to_string(info.max_rx_queues) + " RX queues, " + std::to_string(queues) +
                   " worker lcores need one each");
    // An AF_XDP port has exactly the queues of its queue_count devarg, each
    // a socket the steering program sends its queue's packets to. A queue
    // no worker polls would hold its packets: one worker per queue.
    if (std::strcmp(info.driver_name, "net_af_xdp") == 0 && info.max_rx_queues != queues)
      return error("port " + std::to_string(port) + " (net_af_xdp) has queue_count=" +
                   std::to_string(info.max_rx_queues) + " but there are " + std::to_string(queues) +
                   " worker lcores: give it one queue per worker (queue_count=N in its --vdev)");
    if (tx_queues > info.max_tx_queues)
      return error("port " + std::to_string(port) + " (" + info.driver_name + ") has " +
                   std::to_string(info.max_tx_queues) + " TX queues; the workers and the " +
                   "exception path need " + std::to_string(tx_queues) +
                   " (net_pcap: give tx_iface once more)");

    rte_eth_conf conf{};
    if (queues > 1) {
      uint64_t hf =
          (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
      if (hf != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = hf;
      }
    }
    rc = rte_eth_dev_configure(port, queues, tx_queues, &conf);
    if (rc != 0) return port_error(port, "configure", rc);
    uint16_t rxd = opts.rx_descriptors;
    uint16_t txd = opts.tx_descriptors;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
    if (rc != 0) return port_error(port, "adjust descriptors", rc);
    for (uint16_t q = 0; q < queues; ++q) {
      rc = rte_eth_rx_queue_setup(port, q, rxd, socket, nullptr, pool);
      if (rc != 0) return port_error(port, "rx queue setup", rc);
    }
    for (uint16_t q = 0; q < tx_queues; ++q) {
      rc = rte_eth_tx_queue_setup(port, q, txd, socket, nullptr);
      if (rc != 0) return port_error(port, "tx queue setup", rc);
    }
    rc = rte_eth_dev_start(port);
    if (rc != 0) return port_error(port, "start", rc);
    if (opts.promiscuous) rte_eth_promiscuous_enable(port);

    PortInfo pi{.id = port,
                .name = {},
                .mac = {},
                .driver = info.driver_name,
                .if_index = info.if_index,
                .pool = pool};
    char name[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_get_name_by_port(port, name) == 0) pi.name = name;
    rte_ether_addr mac;
    rte_eth_macaddr_get(port, &mac);
    std::memcpy(pi.mac.data(), mac.addr_bytes, 6);
    ports.push_back(std::move(pi));
  }
  return ports;
}

void stop_ports(const std::vector<PortInfo>& ports) {
  for (const auto& p : ports) {
    rte_eth_dev_stop(p.id);
    rte_eth_dev_close(p.id);
  }
}

}  // namespace onramp::dp
