#include "dataplane/app/flow_log_drain.h"

#include <chrono>
#include <unordered_map>

#include "common/table_spec.h"
#include "dataplane/core/flow_log.h"
#include "dataplane/core/net_headers.h"

namespace onramp::dp {

namespace pb = onramp::v1;

size_t FlowLogDrain::drain(pb::FlowLogBatch& batch, size_t max) {
  std::lock_guard<std::mutex> guard(mu_);
  constexpr size_t kChunk = 256;
  FlowLogRecord records[kChunk];
  // The workers' clock to wall time: the same offset for the whole batch.
  const auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  const auto now = static_cast<uint32_t>(clock_ms());
  // Signed: a record stamped after `now` was read is a few ms in its future.
  auto wall = [&](uint32_t t) { return wall_ms - static_cast<int32_t>(now - t); };

  auto lock = publisher_.lock();
  const ForwardingTable& table = publisher_.table();
  batch.set_pop(table.spec().pop);
  std::unordered_map<uint32_t, size_t> listener_by_id;
  for (size_t i = 0; i < table.listeners().size(); ++i)
    listener_by_id.emplace(table.listener(i).id, i);

  size_t taken = 0;
  uint64_t dropped = 0;
  for (const WorkerContext* w : workers_) {
    FlowLog* log = w->processor->flow_log();
    if (!log) continue;
    dropped += log->stats().dropped.load(std::memory_order_relaxed);
    while (taken < max) {
      const size_t n = log->ring().pop(records, std::min(kChunk, max - taken));
      if (n == 0) break;
      taken += n;
      for (size_t k = 0; k < n; ++k) {
        const FlowLogRecord& r = records[k];
        pb::FlowLogRecord* out = batch.add_records();
        out->set_event(to_string(r.event));
        if (r.event == FlowLogEvent::end) out->set_end_reason(to_string(r.reason));
        out->set_client(r.client.to_string());
        out->set_client_port(r.client_port);
        out->set_vip(r.vip.to_string());
        out->set_vip_port(r.vip_port);
        out->set_endpoint_port(r.vip_port);
        out->set_protocol(r.proto == kProtoTcp ? "tcp" : r.proto == kProtoUdp ? "udp" : "other");
        out->set_packets(r.packets);
        out->set_bytes(r.bytes);
        out->set_start_ms(wall(r.first_ms));
        out->set_end_ms(wall(r.last_ms));
        out->set_worker(w->index);
        if (r.has_endpoint) out->set_endpoint(r.endpoint.to_string());
        auto it = listener_by_id.find(r.listener_id);
        if (it == listener_by_id.end()) continue;  // its listener is gone: unnamed
        const Listener& l = table.listener(it->second);
        auto [accelerator, listener] = split_listener_name(l.name);
        out->set_accelerator(accelerator);
        out->set_listener(listener);
        if (!r.has_endpoint)
          if (const int e = l.find_endpoint(r.endpoint_id); e >= 0)
            out->set_endpoint(l.endpoints[e].address.to_string());
      }
    }
  }
  batch.set_dropped_total(dropped);
  return taken;
}

}  // namespace onramp::dp
