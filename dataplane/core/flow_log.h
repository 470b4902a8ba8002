// Flow logs on the fast path: a worker's record of a sampled flow at its
// start, at the end of each capture window, and at its end (TCP FIN or RST,
// idle expiry, eviction), put on a bounded single-producer single-consumer
// ring that the control side drains. Enqueue or count the loss: a full ring
// never blocks forwarding. Knows nothing of DPDK (the ring is a plain array
// with two indexes, so the core stays testable without EAL).
//
// State per logged flow lives beside the flow table, indexed by its slot, and
// only when the dataplane runs with flow logs (FlowLog exists): one cache line
// per slot and one bit, read only for flows in the sample.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/ip_address.h"
#include "dataplane/core/flow_table.h"

namespace onramp::dp {

enum class FlowLogEvent : uint8_t { start = 0, window = 1, end = 2 };
// Why a flow's end record was written.
enum class FlowEndReason : uint8_t { none = 0, fin = 1, rst = 2, idle = 3, evicted = 4 };

const char* to_string(FlowLogEvent e);
const char* to_string(FlowEndReason r);

// One record. Counts cover the flow's packets since its previous record (a
// start record: its first packet), so the records of a flow add up to its
// whole; its capture window runs from the previous record (first_ms) to the
// last packet counted (last_ms). Times are on the worker's millisecond clock
// (now_ms of PacketProcessor, wraps); the reader turns them into wall time.
struct FlowLogRecord {
  IpAddress client;
  IpAddress vip;
  // The endpoint's address, when has_endpoint: a record written where the
  // flow's endpoint is not at hand (idle expiry, eviction) has none, and the
  // reader finds it by endpoint_id in the table then in force.
  IpAddress endpoint;
  uint64_t bytes = 0;  // IP bytes (header and payload) as the client sent them
  uint32_t packets = 0;
  uint32_t first_ms = 0;  // the window's start: the previous record, or the first packet
  uint32_t last_ms = 0;   // the last packet counted
  uint32_t listener_id = 0;
  uint32_t endpoint_id = 0;
  uint16_t client_port = 0;
  uint16_t vip_port = 0;
  uint8_t proto = 0;
  FlowLogEvent event = FlowLogEvent::start;
  FlowEndReason reason = FlowEndReason::none;
  bool has_endpoint = false;
};

// A bounded ring of records with one writer (a worker) and one reader (the
// thread that drains it). Capacity is a power of two.
class FlowLogRing {
 public:
  explicit FlowLogRing(uint32_t capacity);
  FlowLogRing(const FlowLogRing&) = delete;
  FlowLogRing& operator=(const FlowLogRing&) = delete;

  // Writer: false when the ring is full (nothing written).
  bool push(const FlowLogRecord& r) {
    const uint32_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_cache_ == mask_ + 1) {
      // Acquire: the reader's release store of tail_ follows its reads of
      // the slots it freed, so they are not overwritten under it.
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head - tail_cache_ == mask_ + 1) return false;
    }
    slots_[head & mask_] = r;
    // Release: the slot's contents are visible before the reader sees head.
    head_.store(head + 1, std::memory_order_release);
    return true;
  }
  // Reader: moves up to `max` records into out; returns how many.
  size_t pop(FlowLogRecord* out, size_t max);
  uint32_t capacity() const { return mask_ + 1; }

 private:
  uint32_t mask_;
  std::unique_ptr<FlowLogRecord[]> slots_;
  alignas(64) std::atomic<uint32_t> head_{0};  // next slot to write; the writer's
  uint32_t tail_cache_ = 0;                    // the writer's last look at tail_
  alignas(64) std::atomic<uint32_t> tail_{0};  // next slot to read; the reader's
};

// Loss and volume of one worker's flow logs. Single writer (relaxed load +
// store, as LcoreStats), any reader.
struct FlowLogStats {
  std::atomic<uint64_t> records{0};       // put on the ring
  std::atomic<uint64_t> dropped{0};       // lost to a full ring
  std::atomic<uint64_t> logged_flows{0};  // flows sampled (start records tried)

  static void bump(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

// One worker's flow logging: the state of its sampled flows, by flow-table
// slot, and its ring.
class FlowLog {
 public:
  static constexpr uint32_t kDefaultWindowMs = 60000;
  static constexpr uint32_t kDefaultRingSize = 8192;

  // slots: the flow table's capacity.
  FlowLog(uint32_t slots, uint32_t ring_size, uint32_t window_ms);
  ~FlowLog();
  FlowLog(const FlowLog&) = delete;
  FlowLog& operator=(const FlowLog&) = delete;

  // Whether a flow of this hash is in a sample of ppm millionths: a function
  // of the hash alone, so every lcore and every PoP decides alike. Uses the
  // hash's top bits, which pick no flow-table bucket (those are the low
  // ones).
  static bool sampled(uint64_t hash, uint32_t ppm) { return ((hash >> 32) * 1000000u >> 32) < ppm; }

  bool active(uint32_t slot) const { return (bits_[slot / 64] >> (slot % 64)) & 1; }

  // A new flow was placed (FlowTable::insert): a flow still logged in that
  // slot has ended (its end record).
  void replaced(const FlowTable::Placed& placed) {
    if (active(placed.slot))
      end(placed.slot, placed.evicted ? FlowEndReason::evicted : FlowEndReason::idle,
          placed.previous_endpoint_id);
  }
  // A sampled flow with its first packet (new in `slot`, or a new TCP
  // connection of a flow the table still held): the start record.
  void start(uint32_t slot, const IpAddress& client, uint16_t client_port, const IpAddress& vip,
             uint16_t vip_port, uint8_t proto, uint32_t listener_id, uint32_t endpoint_id,
             const IpAddress& endpoint, uint32_t bytes, uint32_t now_ms);
  // A forwarded packet of the logged flow in `slot`: counted; a window
  // record when its capture window is over; the end record on FIN or RST
  // (after which the flow is no longer logged).
  void packet(uint32_t slot, uint32_t endpoint_id, const IpAddress& endpoint, uint32_t bytes,
              FlowEndReason fin_or_rst, uint32_t now_ms);
  // The flow in `slot` is gone without a packet to show for it.
  void end(uint32_t slot, FlowEndReason why, uint32_t endpoint_id);
  // Looks at the next `words` x 64 slots for logged flows the table no longer
  // holds live (idle expiry) and writes their end records.
  void sweep(const FlowTable& flows, uint32_t now_ms, uint32_t words);

  FlowLogRing& ring() { return ring_; }
  const FlowLogStats& stats() const { return stats_; }
  uint32_t window_ms() const { return window_ms_; }
  // Memory a flow slot takes for flow logs (beside FlowTable::bytes_per_flow).
  static constexpr double bytes_per_flow() { return 64.0 + 1.0 / 8; }

 private:
  struct alignas(64) State {
    IpAddress client;
    IpAddress vip;
    uint64_t bytes;
    uint32_t packets;
    uint32_t first_ms;  // the window's start
    uint32_t last_ms;
    uint32_t listener_id;
    uint16_t client_port;
    uint16_t vip_port;
    uint8_t proto;
  };
  static_assert(sizeof(State) == 64);

  void emit(const State& s, FlowLogEvent event, FlowEndReason why, uint32_t endpoint_id,
            const IpAddress* endpoint);

  uint32_t window_ms_;
  uint32_t sweep_word_ = 0;
  // Mapped, not allocated: a page is only backed once a sampled flow's slot
  // on it is written, so a dataplane whose tables log nothing pays nothing.
  State* state_;
  size_t state_bytes_;
  std::vector<uint64_t> bits_;  // one per slot: its State is a logged flow's
  FlowLogRing ring_;
  FlowLogStats stats_;
};

}  // namespace onramp::dp
