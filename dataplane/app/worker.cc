#include "dataplane/app/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <memory>

namespace onramp::dp {

uint64_t clock_ms() {
  static const uint64_t start = rte_get_tsc_cycles();
  static const uint64_t per_ms = rte_get_tsc_hz() / 1000;
  return (rte_get_tsc_cycles() - start) / per_ms;
}

namespace {

// Hands an mbuf to the core, which needs the frame in one piece. A chained
// mbuf (a frame larger than --mbuf-size) is made contiguous when its first
// buffer has room; returns false when it has not.
bool to_packet(rte_mbuf* m, PacketBuf& pkt) {
  if (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0) return false;
  pkt.data = rte_pktmbuf_mtod(m, uint8_t*);
  pkt.len = rte_pktmbuf_data_len(m);
  pkt.headroom = rte_pktmbuf_headroom(m);
  return true;
}

// Applies what the core did to the buffer (prepended headers, trimmed
// padding) back to the mbuf.
void from_packet(rte_mbuf* m, const PacketBuf& pkt) {
  m->data_off = static_cast<uint16_t>(pkt.headroom);
  m->data_len = static_cast<uint16_t>(pkt.len);
  m->pkt_len = pkt.len;
}

// Lends mbufs for the fragments the core makes (ExtraPackets) and sends
// the committed ones after the burst they came from, on the same queue.
class MbufLender final : public ExtraPackets {
 public:
  // Fragments of one burst at most: four 64-packet bursts' worth of 5-way
  // splits; a packet whose fragments do not fit is dropped and counted.
  static constexpr uint16_t kMax = 256;

  // The pool the burst's own mbufs came from (one per NUMA socket).
  void set_pool(rte_mempool* pool) { pool_ = pool; }

  PacketBuf* alloc(uint32_t size) override {
    if (n_ == kMax || !pool_) return nullptr;
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (!m) return nullptr;
    if (rte_pktmbuf_tailroom(m) < size || rte_pktmbuf_headroom(m) < kTooBigHeadroom) {
      rte_pktmbuf_free(m);
      return nullptr;
    }
    mbufs_[n_] = m;
    bufs_[n_] = PacketBuf{rte_pktmbuf_mtod(m, uint8_t*), 0, rte_pktmbuf_headroom(m)};
    return &bufs_[n_++];
  }
  void commit() override { committed_ = n_; }
  void rollback() override {
    if (n_ > committed_) rte_pktmbuf_free_bulk(mbufs_ + committed_, n_ - committed_);
    n_ = committed_;
  }

  // Transmits what was committed; what the queue refuses is freed and
  // taken off the core's fragments_sent.
  void flush(uint16_t port, uint16_t queue, PacketProcessor& proc) {
    rollback();
    if (n_ == 0) return;
    for (uint16_t i = 0; i < n_; ++i) {
      mbufs_[i]->data_off = static_cast<uint16_t>(bufs_[i].headroom);
      mbufs_[i]->data_len = static_cast<uint16_t>(bufs_[i].len);
      mbufs_[i]->pkt_len = bufs_[i].len;
    }
    const uint16_t sent = rte_eth_tx_burst(port, queue, mbufs_, n_);
    if (sent < n_) {
      proc.count_fragments_refused(n_ - sent);
      rte_pktmbuf_free_bulk(mbufs_ + sent, n_ - sent);
    }
    n_ = committed_ = 0;
  }

 private:
  rte_mempool* pool_ = nullptr;
  rte_mbuf* mbufs_[kMax];
  PacketBuf bufs_[kMax];
  uint16_t n_ = 0;
  uint16_t committed_ = 0;
};

// A received burst between the core's stages.
struct InFlight {
  rte_mbuf* rx[PacketProcessor::kMaxBurst];
  PacketBuf bufs[PacketProcessor::kMaxBurst];
  Action actions[PacketProcessor::kMaxBurst];
  uint16_t slot[PacketProcessor::kMaxBurst];  // bufs index -> rx index
  uint16_t n = 0;                             // packets handed to the core
  const PortInfo* port = nullptr;
  ForwardingTable* table = nullptr;  // the table it was classified under
  int core_slot = 0;                 // its slot in the PacketProcessor
};

// Last stage of a burst, then out of the port it came in on.
// Packets for the kernel go, untouched, on the worker's exception ring.
void finish_and_send(InFlight& f, PacketProcessor& proc, MbufLender& lender, uint16_t queue,
                     uint32_t now_ms, rte_ring* exception_ring) {
  if (f.n) lender.set_pool(f.rx[f.slot[0]]->pool);
  proc.finish(f.core_slot, now_ms, &lender);
  rte_mbuf* tx[PacketProcessor::kMaxBurst];
  Action tx_action[PacketProcessor::kMaxBurst];
  rte_mbuf* exc[PacketProcessor::kMaxBurst];
  uint16_t ntx = 0, nexc = 0;
  for (uint16_t i = 0; i < f.n; ++i) {
    rte_mbuf* m = f.rx[f.slot[i]];
    if (f.actions[i] == Action::drop) {
      rte_pktmbuf_free(m);
      continue;
    }
    if (f.actions[i] == Action::exception) {
      exc[nexc++] = m;
      continue;
    }
    from_packet(m, f.bufs[i]);
    tx_action[ntx] = f.actions[i];
    tx[ntx++] = m;
  }
  uint16_t sent = ntx ? rte_eth_tx_burst(f.port->id, queue, tx, ntx) : 0;
  if (sent < ntx) {
    for (uint16_t i = sent; i < ntx; ++i) proc.count_tx_refused(tx_action[i]);
    rte_pktmbuf_free_bulk(tx + sent, ntx - sent);
  }
  lender.flush(f.port->id, queue, proc);
  if (nexc) {
    // Only set when the exception path is on: only then does the core
    // return Action::exception.
    const unsigned queued =
        rte_ring_sp_enqueue_burst(exception_ring, reinterpret_cast<void**>(exc), nexc, nullptr);
    if (queued < nexc) {
      proc.count_exception_refused(nexc - queued);
      rte_pktmbuf_free_bulk(exc + queued, nexc - queued);
    }
  }
}

}  // namespace

int worker_main(void* arg) {
  auto& w = *static_cast<WorkerContext*>(arg);
  const Options& opts = *w.opts;
  const std::vector<PortInfo>& ports = *w.ports;
  const auto queue = static_cast<uint16_t>(w.index);
  PacketProcessor& proc = *w.processor;
  // On the heap: 6 KiB of pointers and buffers would crowd the lcore's stack.
  auto lender_storage = std::make_unique<MbufLender>();
  MbufLender& lender = *lender_storage;
  // Two bursts overlap in the core (PacketProcessor::classify): while one
  // is classified, the other's flow-table lines arrive, and it is finished
  // and sent after. `pending` is the one waiting to be finished.
  InFlight flights[PacketProcessor::kSlots];
  for (int i = 0; i < PacketProcessor::kSlots; ++i) flights[i].core_slot = i;
  int next_flight = 0;
  InFlight* pending = nullptr;
  size_t next_port = 0;

  uint32_t empty_polls = 0;
  uint32_t sleep_us = 1;
  w.last_rx_ms.store(clock_ms(), std::memory_order_relaxed);
  TablePublisher& publisher = *w.publisher;
  publisher.worker_online(w.index);

  while (!w.stop->load(std::memory_order_relaxed)) {
    const uint64_t poll_start = rte_rdtsc();
    // Holding no table (no burst in flight): a publisher waiting to free
    // one may. With a burst in flight this waits for the flush below.
    if (!pending) publisher.worker_quiescent(w.index);
    // Acquire: pairs with the publisher's release store, so the whole table
    // is visible. The pointer is used until the next quiescent report.
    ForwardingTable* table = publisher.current().load(std::memory_order_acquire);
    if (pending && (pending->table != table || publisher.grace_period())) {
      // A new table: finish the burst begun under the old one, which stays
      // alive until the report at the top of the loop. (The pointer alone
      // is not enough: this loop may have seen it before the publisher
      // opened its grace period, and reported too early to count.)
      finish_and_send(*pending, proc, lender, queue, static_cast<uint32_t>(clock_ms()),
                      w.exception_ring);
      pending = nullptr;
      continue;
    }
    InFlight& f = flights[next_flight];
    uint16_t n = 0;
    for (size_t k = 0; k < ports.size() && n == 0; ++k) {
      f.port = &ports[next_port];
      next_port = next_port + 1 == ports.size() ? 0 : next_port + 1;
      n = rte_eth_rx_burst(f.port->id, queue, f.rx, opts.burst);
    }
    const uint64_t now = clock_ms();
    if (w.on_poll) w.on_poll();
    // Flow logs of flows that idled out: a slice of the flow table per
    // poll, a bigger one when there is no traffic to forward.
    proc.sweep_flow_logs(static_cast<uint32_t>(now), n ? 1 : 64);
    if (n == 0) {
      if (pending) {
        finish_and_send(*pending, proc, lender, queue, static_cast<uint32_t>(now),
                        w.exception_ring);
        pending = nullptr;
        continue;
      }
      // Adaptive idle sleep: spin a little (traffic often comes back within
      // microseconds), then sleep with exponential back-off so an idle PoP
      // or test bed does not hold a core at 100 %.
      if (opts.idle_sleep_max_us == 0 || ++empty_polls < opts.idle_spin_polls) continue;
      // Offline while asleep, so a table swap does not wait for the sleep.
      publisher.worker_offline(w.index);
      rte_delay_us_sleep(sleep_us);
      publisher.worker_online(w.index);
      w.idle_sleeps.store(w.idle_sleeps.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
      sleep_us = std::min(sleep_us * 2, opts.idle_sleep_max_us);
      continue;
    }
    f.n = 0;
    for (uint16_t i = 0; i < n; ++i) {
      if (to_packet(f.rx[i], f.bufs[f.n])) {
        f.slot[f.n++] = i;
      } else {
        proc.count_unprocessed(rte_pktmbuf_pkt_len(f.rx[i]), DropReason::oversized_frame);
        rte_pktmbuf_free(f.rx[i]);
      }
    }
    f.table = table;
    proc.classify(f.core_slot, *table, f.bufs, f.actions, f.n, f.port->mac,
                  pending ? pending->core_slot : -1);
    if (pending)
      finish_and_send(*pending, proc, lender, queue, static_cast<uint32_t>(now), w.exception_ring);
    pending = &f;
    next_flight = (next_flight + 1) % PacketProcessor::kSlots;

    // Single writer: relaxed load + store, like the packet counters.
    w.busy_cycles.store(w.busy_cycles.load(std::memory_order_relaxed) + (rte_rdtsc() - poll_start),
                        std::memory_order_relaxed);
    w.last_rx_ms.store(now, std::memory_order_relaxed);
    empty_polls = 0;
    sleep_us = 1;
  }
  if (pending)
    finish_and_send(*pending, proc, lender, queue, static_cast<uint32_t>(clock_ms()),
                    w.exception_ring);
  publisher.worker_offline(w.index);
  return 0;
}

}  // namespace onramp::dp
