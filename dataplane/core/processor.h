// The per-lcore packet pipeline: parse, classify, flow lookup, endpoint choice,
// rewrite. It owns its lcore's flow table and counters and touches nothing
// shared but the (immutable) forwarding table. Knows nothing of DPDK: it takes
// PacketBufs and returns one Action per packet.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "dataplane/core/drop_reason.h"
#include "dataplane/core/flow_table.h"
#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/packet_buf.h"
#include "dataplane/core/parser.h"

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
  // Bursts that can be in flight at once (see classify).
  static constexpr int kSlots = 2;

  // keep_flow_keys: keep each flow's key, so that flows can be listed
  // (FlowTable::for_each_live), at 40 bytes a flow.
  PacketProcessor(unsigned lcore, uint32_t flow_capacity, bool keep_flow_keys = false)
      : lcore_(lcore), flows_(flow_capacity, keep_flow_keys) {}

  // Processes up to kMaxBurst packets that arrived on a port whose MAC is
  // port_mac. now_ms: a millisecond clock (wraps), for idle timeouts.
  // The three stages below, one after the other.
  void process_burst(ForwardingTable& table, PacketBuf* pkts, Action* actions, uint16_t n,
                     const MacAddress& port_mac, uint32_t now_ms) {
    classify(0, table, pkts, actions, n, port_mac);
    match(0);
    finish(0, now_ms);
  }

  // The same in three stages, so that the DPDK worker can overlap two
  // bursts: classify(next, ..., previous) then finish(previous). Each
  // flow-table line then has a burst's worth of work to arrive in, and the
  // prefetches are spread over that work rather than issued together (the
  // core tracks only so many misses at once; a prefetch beyond that stalls).
  //
  // Stage one: parse and classify the burst, build and hash its flow keys,
  // prefetch their flow-table buckets; echo requests are answered here.
  // `slot` (0..kSlots-1) holds the burst's state until finish; pkts,
  // actions, table and port_mac must stay valid until then. With
  // also_match >= 0, stage two of the burst in that slot runs in the same
  // loop, a packet of it after each packet of this one.
  void classify(int slot, ForwardingTable& table, PacketBuf* pkts, Action* actions, uint16_t n,
                const MacAddress& port_mac, int also_match = -1);
  // Stage two: with the flows' first buckets in cache, prefetch what stage
  // three will read (the second bucket, the endpoint, the Maglev slot).
  void match(int slot);
  // Stage three: look the flows up, place new ones, encapsulate (after
  // stage two, if that has not run). Every action of the burst is final
  // after this.
  void finish(int slot, uint32_t now_ms);

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
  // What stage one learns about a packet for the later stages.
  struct Work {
    ParsedPacket parsed;
    FlowKey key;
    uint64_t hash;
    uint32_t idle_ms;
    uint32_t first_slot;  // stage two: the flow's slot in its first bucket, or kNone
    uint16_t listener;
    bool icmp_error;  // an ICMP error following its flow: no new flow state
  };
  // One burst between its stages. Lives in the processor, allocated once:
  // nothing per burst is zeroed or allocated.
  struct Burst {
    Work work[kMaxBurst];
    uint16_t pending[kMaxBurst];  // packets that go on to stages two and three
    uint16_t n_pending = 0;
    bool matched = false;  // stage two done
    ForwardingTable* table = nullptr;
    PacketBuf* pkts = nullptr;
    Action* actions = nullptr;
    const MacAddress* port_mac = nullptr;
  };

  void peek(Burst& b, uint16_t j);

  unsigned lcore_;
  FlowTable flows_;
  LcoreStats stats_;
  std::unique_ptr<Burst[]> bursts_ = std::make_unique<Burst[]>(kSlots);
};

}  // namespace onramp::dp
