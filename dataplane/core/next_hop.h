// The next hop's MAC as learned outside the fast path (the exception
// interface's neighbour table), shared by every worker: one 64-bit word, so
// a reader sees a whole MAC or none, without a lock.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/ip_address.h"

namespace onramp::dp {

class LearnedNextHop {
 public:
  void set(const MacAddress& mac) {
    uint64_t w = kResolved;
    for (int i = 0; i < 6; ++i) w |= uint64_t{mac[i]} << (8 * i);
    // Relaxed: the word is the whole state; nothing else is published with it.
    word_.store(w, std::memory_order_relaxed);
  }
  void clear() { word_.store(0, std::memory_order_relaxed); }
  // False while unresolved; otherwise the MAC in `out`.
  bool get(MacAddress& out) const {
    const uint64_t w = word_.load(std::memory_order_relaxed);
    if (!(w & kResolved)) return false;
    for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(w >> (8 * i));
    return true;
  }

 private:
  static constexpr uint64_t kResolved = uint64_t{1} << 63;
  std::atomic<uint64_t> word_{0};
};

}  // namespace onramp::dp
