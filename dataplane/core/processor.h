// The per-lcore packet pipeline: parse, classify, flow lookup, endpoint choice,
// rewrite. It owns its lcore's flow table and counters and touches nothing
// shared but the (immutable) forwarding table. Knows nothing of DPDK: it takes
// PacketBufs and returns one Action per packet.
#pragma once

#include <atomic>
#include <cstdint>

#include "dataplane/core/drop_reason.h"
#include "dataplane/core/flow_table.h"
#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/packet_buf.h"

namespace onramp::dp {

// Per-lcore totals. Single writer (relaxed load + store), any reader.
struct LcoreStats {
  std::atomic<uint64_t> rx_packets{0};
  std::atomic<uint64_t> rx_bytes{0};
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> echo_replies{0};
  std::atomic<uint64_t> icmp_errors_forwarded{0};
  std::atomic<uint64_t> new_flows{0};
  // Existing flows whose endpoint left the table or became unhealthy, sent
  // to a new endpoint.
  std::atomic<uint64_t> flows_moved{0};
  std::atomic<uint64_t> drops[kDropReasonCount]{};

  static void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t dropped() const {
    uint64_t n = 0;
    for (const auto& d : drops) n += d.load(std::memory_order_relaxed);
    return n;
  }
};

class PacketProcessor {
 public:
  static constexpr uint16_t kMaxBurst = 64;

  PacketProcessor(unsigned lcore, uint32_t flow_capacity) : lcore_(lcore), flows_(flow_capacity) {}

  // Processes up to kMaxBurst packets that arrived on a port whose MAC is
  // port_mac. now_ms: a millisecond clock (wraps), for idle timeouts.
  void process_burst(ForwardingTable& table, PacketBuf* pkts, Action* actions, uint16_t n,
                     const MacAddress& port_mac, uint32_t now_ms);

  void count_drop(DropReason r, uint64_t n = 1) {
    LcoreStats::bump(stats_.drops[static_cast<int>(r)], n);
  }
  // A packet the shell dropped before the core saw it (it still counts as
  // received, so the books balance).
  void count_unprocessed(uint32_t bytes, DropReason r) {
    LcoreStats::bump(stats_.rx_packets);
    LcoreStats::bump(stats_.rx_bytes, bytes);
    count_drop(r);
  }
  // A packet process_burst sent on (forward or reply) that the TX queue then
  // refused: it becomes a tx_full drop, so forwarded + replies + drops
  // always add up to what was received.
  void count_tx_refused(Action a) {
    auto& sent = a == Action::reply ? stats_.echo_replies : stats_.forwarded;
    sent.store(sent.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    count_drop(DropReason::tx_full);
  }
  const LcoreStats& stats() const { return stats_; }
  const FlowTable& flows() const { return flows_; }
  unsigned lcore() const { return lcore_; }

 private:
  unsigned lcore_;
  FlowTable flows_;
  LcoreStats stats_;
};

}  // namespace onramp::dp
