#include "dataplane/app/exception_path.h"

#include <net/if.h>
#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstring>

namespace onramp::dp {
namespace {

constexpr uint16_t kBurst = 32;
constexpr uint16_t kDescriptors = 512;

void bump(std::atomic<uint64_t>& c, uint64_t n) {
  // Single writer (the main lcore): relaxed load + store.
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Sends up to n packets on (port, queue); frees and counts what it refused.
void send(uint16_t port, uint16_t queue, rte_mbuf** pkts, uint16_t n, std::atomic<uint64_t>& sent,
          std::atomic<uint64_t>& refused) {
  if (n == 0) return;
  const uint16_t ok = rte_eth_tx_burst(port, queue, pkts, n);
  bump(sent, ok);
  if (ok < n) {
    bump(refused, n - ok);
    rte_pktmbuf_free_bulk(pkts + ok, n - ok);
  }
}

}  // namespace

Result<uint16_t> ExceptionPath::probe(const std::string& devargs) {
  const std::string name = devargs.substr(0, devargs.find(','));
  if (int rc = rte_dev_probe(devargs.c_str()); rc != 0)
    return error("--exception-vdev " + devargs + ": cannot probe it: " + rte_strerror(-rc));
  uint16_t port;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port) != 0)
    return error("--exception-vdev " + devargs + ": probed, but no port is named " + name);
  return port;
}

Result<std::unique_ptr<ExceptionPath>> ExceptionPath::start(const std::string& devargs,
                                                            uint16_t port, const PortInfo& nic,
                                                            uint16_t nic_tx_queue, unsigned workers,
                                                            unsigned ring_size) {
  std::unique_ptr<ExceptionPath> x(new ExceptionPath());
  x->port_ = port;
  x->nic_port_ = nic.id;
  x->nic_queue_ = nic_tx_queue;
  char name[RTE_ETH_NAME_MAX_LEN];
  if (rte_eth_dev_get_name_by_port(port, name) == 0) x->name_ = name;
  auto fail = [&](const char* what, int rc) {
    return error("exception port " + x->name_ + ": " + what + " failed: " + rte_strerror(-rc));
  };
  rte_eth_conf conf{};
  if (int rc = rte_eth_dev_configure(port, 1, 1, &conf); rc != 0) return fail("configure", rc);
  uint16_t rxd = kDescriptors, txd = kDescriptors;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd); rc != 0)
    return fail("adjust descriptors", rc);
  int socket = rte_eth_dev_socket_id(port);
  if (socket < 0) socket = 0;
  if (int rc = rte_eth_rx_queue_setup(port, 0, rxd, socket, nullptr, nic.pool); rc != 0)
    return fail("rx queue setup", rc);
  if (int rc = rte_eth_tx_queue_setup(port, 0, txd, socket, nullptr); rc != 0)
    return fail("tx queue setup", rc);
  // The kernel's interface takes the NIC's MAC: frames to the NIC's MAC are
  // then the kernel's own, and what it sends leaves with the right source.
  rte_ether_addr mac;
  std::memcpy(mac.addr_bytes, nic.mac.data(), 6);
  if (int rc = rte_eth_dev_default_mac_addr_set(port, &mac); rc != 0)
    return fail("setting the NIC's MAC", rc);
  if (int rc = rte_eth_dev_start(port); rc != 0) return fail("start", rc);
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port, &info) == 0) x->ifindex_ = static_cast<int>(info.if_index);
  if (x->ifindex_ == 0) {
    // virtio_user: the interface its iface= names.
    const size_t at = devargs.find("iface=");
    if (at != std::string::npos) {
      const std::string iface = devargs.substr(at + 6, devargs.find(',', at) - at - 6);
      x->ifindex_ = static_cast<int>(if_nametoindex(iface.c_str()));
    }
  }
  // Multicast (IPv6 neighbour discovery, LLDP) must reach the kernel.
  rte_eth_allmulticast_enable(nic.id);
  for (unsigned w = 0; w < workers; ++w) {
    const std::string ring_name = "onramp_exc_" + std::to_string(w);
    rte_ring* r = rte_ring_create(ring_name.c_str(), ring_size, socket,
                                  RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    if (!r)
      return error("cannot create the exception ring " + ring_name + ": " +
                   rte_strerror(rte_errno));
    x->rings_.push_back(r);
  }
  return x;
}

ExceptionPath::~ExceptionPath() {
  rte_mbuf* pkts[kBurst];
  for (rte_ring* r : rings_) {
    unsigned n;
    while ((n = rte_ring_dequeue_burst(r, reinterpret_cast<void**>(pkts), kBurst, nullptr)))
      rte_pktmbuf_free_bulk(pkts, n);
    rte_ring_free(r);
  }
  rte_eth_dev_stop(port_);
  rte_eth_dev_close(port_);
}

unsigned ExceptionPath::poll() {
  rte_mbuf* pkts[kBurst];
  unsigned moved = 0;
  for (rte_ring* r : rings_) {
    const auto n = static_cast<uint16_t>(
        rte_ring_dequeue_burst(r, reinterpret_cast<void**>(pkts), kBurst, nullptr));
    send(port_, 0, pkts, n, counters_.to_kernel, counters_.to_kernel_refused);
    moved += n;
  }
  const uint16_t n = rte_eth_rx_burst(port_, 0, pkts, kBurst);
  send(nic_port_, nic_queue_, pkts, n, counters_.from_kernel, counters_.from_kernel_refused);
  return moved + n;
}

}  // namespace onramp::dp
