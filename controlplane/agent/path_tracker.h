// One PoP-to-PoP path as this PoP's mesh probes measure it (docs/routing.md
// "Relaying over the backbone"): a smoothed RTT, the jitter between
// consecutive samples and the loss over a window of recent probes. Pure
// logic without clocks or sockets; the mesh prober feeds it one outcome per
// probe, a reply or a timeout.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

#include "common/clock.h"

namespace onramp::agent {

class PathTracker {
 public:
  // `window` probes (at least 1) count for the loss; `rtt_alpha` is the
  // weight of the newest RTT in the moving average, in (0, 1].
  explicit PathTracker(size_t window = 30, double rtt_alpha = 0.3);

  void record_reply(double rtt_ms);
  void record_loss();

  // Negative until a reply came.
  double smoothed_rtt_ms() const { return smoothed_rtt_ms_; }
  double last_rtt_ms() const { return last_rtt_ms_; }
  // RFC 3550 6.4.1: J += (|D| - J) / 16 over consecutive replies' RTTs.
  double jitter_ms() const { return jitter_ms_; }
  // Lost probes, percent of the decided ones in the window; 0 with none.
  double loss_percent() const;
  // Probes decided in the window.
  uint32_t decided() const { return static_cast<uint32_t>(outcomes_.size()); }

 private:
  void push(bool replied);

  size_t window_;
  double alpha_;
  std::deque<bool> outcomes_;  // oldest first; true: a reply came
  uint32_t lost_ = 0;          // false entries in outcomes_
  double smoothed_rtt_ms_ = -1;
  double last_rtt_ms_ = -1;
  double jitter_ms_ = 0;
};

// Whether a path still answers, decided fast: the loss window takes many
// probes to say a path is gone, a relay must be left within a second. A
// probe is missed once it goes unanswered for `miss_after` (the prober's
// "late": a few RTTs, well under the loss timeout); the path is down once
// the `down_after` oldest probes since the newest reply are all missed, and
// up again at the next reply. One lost probe is one miss, then a reply to
// the next: never down with down_after >= 2.
class PathLiveness {
 public:
  // `down_after` 0: never down.
  explicit PathLiveness(uint32_t down_after = 3) : down_after_(down_after) {}

  // A probe left (sequence numbers increase with time).
  void sent(uint64_t seq, Clock::time_point at);
  // A reply to `seq`: it and every earlier probe are settled, the path is
  // up. True when down() changed.
  bool replied(uint64_t seq);
  // Counts the misses at `now`. True when down() changed.
  bool check(Clock::time_point now, std::chrono::nanoseconds miss_after);
  bool down() const { return down_; }
  // When check may next find a new miss; time_point::max() with none due.
  Clock::time_point next_miss(std::chrono::nanoseconds miss_after) const;

 private:
  uint32_t down_after_;
  // Probes since the newest reply, oldest first: (seq, sent).
  std::deque<std::pair<uint64_t, Clock::time_point>> unanswered_;
  size_t missed_ = 0;  // the oldest entries of unanswered_ found missed
  bool down_ = false;
};

}  // namespace onramp::agent
