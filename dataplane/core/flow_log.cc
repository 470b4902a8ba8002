#include "dataplane/core/flow_log.h"

#include <sys/mman.h>

#include <bit>
#include <new>

namespace onramp::dp {

const char* to_string(FlowLogEvent e) {
  switch (e) {
    case FlowLogEvent::start:
      return "start";
    case FlowLogEvent::window:
      return "window";
    case FlowLogEvent::end:
      return "end";
  }
  return "unknown";
}

const char* to_string(FlowEndReason r) {
  switch (r) {
    case FlowEndReason::none:
      return "";
    case FlowEndReason::fin:
      return "fin";
    case FlowEndReason::rst:
      return "rst";
    case FlowEndReason::idle:
      return "idle";
    case FlowEndReason::evicted:
      return "evicted";
  }
  return "unknown";
}

FlowLogRing::FlowLogRing(uint32_t capacity)
    : mask_(std::bit_ceil(capacity < 2 ? 2u : capacity) - 1),
      slots_(std::make_unique<FlowLogRecord[]>(mask_ + 1)) {}

size_t FlowLogRing::pop(FlowLogRecord* out, size_t max) {
  const uint32_t tail = tail_.load(std::memory_order_relaxed);
  // Acquire: pairs with the writer's release store of head_, so the slots
  // up to it are written.
  const uint32_t head = head_.load(std::memory_order_acquire);
  size_t n = head - tail;
  if (n > max) n = max;
  for (size_t i = 0; i < n; ++i) out[i] = slots_[(tail + i) & mask_];
  // Release: the slots are read before the writer may reuse them.
  tail_.store(tail + static_cast<uint32_t>(n), std::memory_order_release);
  return n;
}

FlowLog::FlowLog(uint32_t slots, uint32_t ring_size, uint32_t window_ms)
    : window_ms_(window_ms ? window_ms : kDefaultWindowMs),
      state_bytes_(sizeof(State) * (slots ? slots : 1)),
      bits_((slots + 63) / 64, 0),
      ring_(ring_size) {
  void* p = ::mmap(nullptr, state_bytes_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  state_ = static_cast<State*>(p);
}

FlowLog::~FlowLog() { ::munmap(state_, state_bytes_); }

void FlowLog::emit(const State& s, FlowLogEvent event, FlowEndReason why, uint32_t endpoint_id,
                   const IpAddress* endpoint) {
  FlowLogRecord r;
  r.client = s.client;
  r.vip = s.vip;
  if (endpoint) r.endpoint = *endpoint;
  r.has_endpoint = endpoint != nullptr;
  r.bytes = s.bytes;
  r.packets = s.packets;
  r.first_ms = s.first_ms;
  r.last_ms = s.last_ms;
  r.listener_id = s.listener_id;
  r.endpoint_id = endpoint_id;
  r.client_port = s.client_port;
  r.vip_port = s.vip_port;
  r.proto = s.proto;
  r.event = event;
  r.reason = why;
  FlowLogStats::bump(ring_.push(r) ? stats_.records : stats_.dropped);
}

void FlowLog::start(uint32_t slot, const IpAddress& client, uint16_t client_port,
                    const IpAddress& vip, uint16_t vip_port, uint8_t proto, uint32_t listener_id,
                    uint32_t endpoint_id, const IpAddress& endpoint, uint32_t bytes,
                    uint32_t now_ms) {
  State& s = state_[slot];
  s.client = client;
  s.vip = vip;
  s.bytes = bytes;
  s.packets = 1;
  s.first_ms = now_ms;
  s.last_ms = now_ms;
  s.listener_id = listener_id;
  s.client_port = client_port;
  s.vip_port = vip_port;
  s.proto = proto;
  bits_[slot / 64] |= uint64_t{1} << (slot % 64);
  FlowLogStats::bump(stats_.logged_flows);
  emit(s, FlowLogEvent::start, FlowEndReason::none, endpoint_id, &endpoint);
  // The next record counts from here.
  s.packets = 0;
  s.bytes = 0;
}

void FlowLog::packet(uint32_t slot, uint32_t endpoint_id, const IpAddress& endpoint, uint32_t bytes,
                     FlowEndReason fin_or_rst, uint32_t now_ms) {
  State& s = state_[slot];
  s.packets += 1;
  s.bytes += bytes;
  s.last_ms = now_ms;
  if (fin_or_rst != FlowEndReason::none) {
    emit(s, FlowLogEvent::end, fin_or_rst, endpoint_id, &endpoint);
    bits_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
    return;
  }
  if (now_ms - s.first_ms >= window_ms_) {
    emit(s, FlowLogEvent::window, FlowEndReason::none, endpoint_id, &endpoint);
    s.packets = 0;
    s.bytes = 0;
    s.first_ms = now_ms;
  }
}

void FlowLog::end(uint32_t slot, FlowEndReason why, uint32_t endpoint_id) {
  const State& s = state_[slot];
  emit(s, FlowLogEvent::end, why, endpoint_id, nullptr);
  bits_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
}

void FlowLog::sweep(const FlowTable& flows, uint32_t now_ms, uint32_t words) {
  const uint32_t n = static_cast<uint32_t>(bits_.size());
  for (uint32_t k = 0; k < words && k < n; ++k) {
    const uint32_t wi = sweep_word_;
    sweep_word_ = sweep_word_ + 1 == n ? 0 : sweep_word_ + 1;
    for (uint64_t word = bits_[wi]; word != 0; word &= word - 1) {
      const uint32_t slot = wi * 64 + static_cast<uint32_t>(std::countr_zero(word));
      // (A slot the table freed keeps its endpoint until it is reused.)
      if (!flows.live_slot(slot, now_ms))
        end(slot, FlowEndReason::idle, flows.value(slot).endpoint_id);
    }
  }
}

}  // namespace onramp::dp
