// One PoP-to-PoP path as this PoP's mesh probes measure it (docs/routing.md
// "Relaying over the backbone"): a smoothed RTT, the jitter between
// consecutive samples and the loss over a window of recent probes. Pure
// logic without clocks or sockets; the mesh prober feeds it one outcome per
// probe, a reply or a timeout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

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

}  // namespace onramp::agent
