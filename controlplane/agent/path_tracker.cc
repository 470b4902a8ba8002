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

void PathLiveness::sent(uint64_t seq, Clock::time_point at) {
  unanswered_.emplace_back(seq, at);
  // A path that never answers keeps its oldest misses only as far as they
  // decide anything: down_after of them.
  constexpr size_t kKept = 256;
  if (unanswered_.size() > kKept) {
    unanswered_.pop_front();
    if (missed_) --missed_;
  }
}

bool PathLiveness::replied(uint64_t seq) {
  while (!unanswered_.empty() && unanswered_.front().first <= seq) unanswered_.pop_front();
  // What is left was sent after the reply's probe: not missed yet.
  missed_ = 0;
  bool was = down_;
  down_ = false;
  return was;
}

bool PathLiveness::check(Clock::time_point now, std::chrono::nanoseconds miss_after) {
  while (missed_ < unanswered_.size() && now - unanswered_[missed_].second >= miss_after) ++missed_;
  bool was = down_;
  down_ = down_after_ > 0 && missed_ >= down_after_;
  return was != down_;
}

Clock::time_point PathLiveness::next_miss(std::chrono::nanoseconds miss_after) const {
  if (missed_ >= unanswered_.size()) return Clock::time_point::max();
  return unanswered_[missed_].second + miss_after;
}

}  // namespace onramp::agent
