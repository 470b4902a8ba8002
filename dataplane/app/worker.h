// The forwarding loop of one worker lcore: poll its queue on every port, run
// the packet core, transmit, and sleep adaptively when there is no traffic.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "dataplane/app/options.h"
#include "dataplane/app/ports.h"
#include "dataplane/app/table_publisher.h"
#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/processor.h"

struct rte_ring;

namespace onramp::dp {

// Milliseconds since the process started, from the TSC.
uint64_t clock_ms();

struct WorkerContext {
  unsigned index = 0;  // queue index on every port, and counter slot
  const Options* opts = nullptr;
  const std::vector<PortInfo>* ports = nullptr;
  // Publishes the table in force; the worker reports quiescent states to it
  // between bursts (index is its RCU thread id).
  TablePublisher* publisher = nullptr;
  const std::atomic<bool>* stop = nullptr;
  std::unique_ptr<PacketProcessor> processor;
  // This worker's ring to the exception path (the main lcore empties it);
  // null while the exception path is off.
  rte_ring* exception_ring = nullptr;
  std::atomic<uint64_t> last_rx_ms{0};
  std::atomic<uint64_t> idle_sleeps{0};
  // TSC cycles of the polls that received packets (receive to transmit):
  // busy_cycles / packets is the cost of a packet on this lcore.
  std::atomic<uint64_t> busy_cycles{0};
  // Called between polls when the main lcore is itself a worker.
  std::function<void()> on_poll;
};

// rte_eal_remote_launch entry point; arg is a WorkerContext.
int worker_main(void* arg);

}  // namespace onramp::dp
