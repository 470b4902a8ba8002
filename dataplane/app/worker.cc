#include "dataplane/app/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

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

}  // namespace

int worker_main(void* arg) {
  auto& w = *static_cast<WorkerContext*>(arg);
  const Options& opts = *w.opts;
  PacketProcessor& proc = *w.processor;
  rte_mbuf* rx[PacketProcessor::kMaxBurst];
  rte_mbuf* tx[PacketProcessor::kMaxBurst];
  PacketBuf bufs[PacketProcessor::kMaxBurst];
  Action actions[PacketProcessor::kMaxBurst];
  uint16_t slot[PacketProcessor::kMaxBurst];  // bufs index -> rx index
  Action tx_action[PacketProcessor::kMaxBurst];

  uint32_t empty_polls = 0;
  uint32_t sleep_us = 1;
  w.last_rx_ms.store(clock_ms(), std::memory_order_relaxed);
  TablePublisher& publisher = *w.publisher;
  publisher.worker_online(w.index);

  while (!w.stop->load(std::memory_order_relaxed)) {
    uint64_t now = clock_ms();
    // Acquire: pairs with the publisher's release store, so the whole table
    // is visible. The pointer is used until the quiescent report below.
    ForwardingTable* table = publisher.current().load(std::memory_order_acquire);
    uint32_t received = 0;
    for (const PortInfo& port : *w.ports) {
      uint16_t n = rte_eth_rx_burst(port.id, static_cast<uint16_t>(w.index), rx, opts.burst);
      if (n == 0) continue;
      received += n;
      uint16_t nb = 0;
      for (uint16_t i = 0; i < n; ++i) {
        if (to_packet(rx[i], bufs[nb])) {
          slot[nb++] = i;
        } else {
          proc.count_unprocessed(rte_pktmbuf_pkt_len(rx[i]), DropReason::oversized_frame);
          rte_pktmbuf_free(rx[i]);
        }
      }
      proc.process_burst(*table, bufs, actions, nb, port.mac, static_cast<uint32_t>(now));
      uint16_t ntx = 0;
      for (uint16_t i = 0; i < nb; ++i) {
        rte_mbuf* m = rx[slot[i]];
        if (actions[i] == Action::drop) {
          rte_pktmbuf_free(m);
          continue;
        }
        from_packet(m, bufs[i]);
        tx_action[ntx] = actions[i];
        tx[ntx++] = m;
      }
      uint16_t sent = ntx ? rte_eth_tx_burst(port.id, static_cast<uint16_t>(w.index), tx, ntx) : 0;
      if (sent < ntx) {
        for (uint16_t i = sent; i < ntx; ++i) proc.count_tx_refused(tx_action[i]);
        rte_pktmbuf_free_bulk(tx + sent, ntx - sent);
      }
    }
    // Done with `table` for this burst: a publisher waiting to free it may.
    publisher.worker_quiescent(w.index);
    if (w.on_poll) w.on_poll();
    if (received) {
      w.last_rx_ms.store(now, std::memory_order_relaxed);
      empty_polls = 0;
      sleep_us = 1;
      continue;
    }
    // Adaptive idle sleep: spin a little (traffic often comes back within
    // microseconds), then sleep with exponential back-off so an idle PoP or
    // test bed does not hold a core at 100 %.
    if (opts.idle_sleep_max_us == 0 || ++empty_polls < opts.idle_spin_polls) continue;
    // Offline while asleep, so a table swap does not wait for the sleep.
    publisher.worker_offline(w.index);
    rte_delay_us_sleep(sleep_us);
    publisher.worker_online(w.index);
    w.idle_sleeps.store(w.idle_sleeps.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
    sleep_us = std::min(sleep_us * 2, opts.idle_sleep_max_us);
  }
  publisher.worker_offline(w.index);
  return 0;
}

}  // namespace onramp::dp
