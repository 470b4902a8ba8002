#include "controlplane/agent/path_tracker.h"

#include <algorithm>
#include <cmath>

namespace onramp::agent {

PathTracker::PathTracker(size_t window, double rtt_alpha)
    : window_(std::max<size_t>(1, window)),
      alpha_(rtt_alpha > 0 && rtt_alpha <= 1 ? rtt_alpha : 0.3) {}

void PathTracker::push(bool replied) {
  outcomes_.push_back(replied);
  if (!replied) ++lost_;
  while (outcomes_.size() > window_) {
    if (!outcomes_.front()) --lost_;
    outcomes_.pop_front();
  }
}

void PathTracker::record_reply(double rtt_ms) {
  if (!std::isfinite(rtt_ms) || rtt_ms < 0) return;
  if (last_rtt_ms_ >= 0) jitter_ms_ += (std::fabs(rtt_ms - last_rtt_ms_) - jitter_ms_) / 16.0;
  last_rtt_ms_ = rtt_ms;
  smoothed_rtt_ms_ =
      smoothed_rtt_ms_ < 0 ? rtt_ms : alpha_ * rtt_ms + (1 - alpha_) * smoothed_rtt_ms_;
  push(true);
}

void PathTracker::record_loss() { push(false); }

double PathTracker::loss_percent() const {
  if (outcomes_.empty()) return 0;
  return 100.0 * static_cast<double>(lost_) / static_cast<double>(outcomes_.size());
}

}  // namespace onramp::agent
