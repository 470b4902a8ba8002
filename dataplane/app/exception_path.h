// The exception path: what the fast path does not forward (ARP, ND, the PoP's
// own addresses, BGP, anything not for a VIP) goes to the kernel through an
// exception interface (a DPDK vdev: net_tap, or virtio_user on vhost-net),
// and what the kernel sends on it goes out of the NIC. Workers only enqueue
// on their own ring; the main lcore moves the packets both ways, and sends
// the kernel's on a TX queue of the NIC that no worker uses.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "dataplane/app/ports.h"

struct rte_ring;
struct rte_mempool;

namespace onramp::dp {

// Counters of the main lcore's side (the workers count their enqueues in
// LcoreStats::to_exception and the ring's refusals as exception_ring_full).
struct ExceptionCounters {
  std::atomic<uint64_t> to_kernel{0};            // sent to the exception interface
  std::atomic<uint64_t> to_kernel_refused{0};    // its TX refused them: freed
  std::atomic<uint64_t> from_kernel{0};          // the kernel's, sent out of the NIC
  std::atomic<uint64_t> from_kernel_refused{0};  // the NIC's TX queue refused them
};

class ExceptionPath {
 public:
  // Probes the vdev `devargs` (e.g. "net_tap0,iface=onramp0"); its port is
  // then left out of the NIC ports (setup_ports' `skip`).
  static Result<uint16_t> probe(const std::string& devargs);
  // Starts the exception port, gives it the NIC's MAC (the kernel then
  // answers for the NIC's address and sends from it) and one ring per
  // worker of `ring_size` packets.
  // `devargs` names the kernel interface (iface=) where the driver does
  // not tell its index.
  static Result<std::unique_ptr<ExceptionPath>> start(const std::string& devargs, uint16_t port,
                                                      const PortInfo& nic, uint16_t nic_tx_queue,
                                                      unsigned workers, unsigned ring_size);
  ~ExceptionPath();
  ExceptionPath(const ExceptionPath&) = delete;
  ExceptionPath& operator=(const ExceptionPath&) = delete;

  // The ring worker `w` enqueues on (single producer, single consumer).
  rte_ring* ring(unsigned w) const { return rings_[w]; }
  // One round each way; returns the packets moved (0: idle).
  unsigned poll();

  const std::string& name() const { return name_; }
  // The kernel's index of the exception interface (0: unknown).
  int ifindex() const { return ifindex_; }
  uint16_t port() const { return port_; }
  const ExceptionCounters& counters() const { return counters_; }

 private:
  ExceptionPath() = default;
  uint16_t port_ = 0;
  uint16_t nic_port_ = 0;
  uint16_t nic_queue_ = 0;
  std::string name_;
  int ifindex_ = 0;
  std::vector<rte_ring*> rings_;
  ExceptionCounters counters_;
};

}  // namespace onramp::dp
