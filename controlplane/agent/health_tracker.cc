#include "controlplane/agent/health_tracker.h"

#include <algorithm>

#include "common/text.h"

namespace onramp::agent {

HealthTracker::HealthTracker(uint32_t healthy_threshold, uint32_t unhealthy_threshold,
                             double rtt_alpha)
    : healthy_threshold_(std::max<uint32_t>(1, healthy_threshold)),
      unhealthy_threshold_(std::max<uint32_t>(1, unhealthy_threshold)),
      alpha_(rtt_alpha > 0 && rtt_alpha <= 1 ? rtt_alpha : 0.3) {}

void HealthTracker::set_thresholds(uint32_t healthy_threshold, uint32_t unhealthy_threshold) {
  healthy_threshold_ = std::max<uint32_t>(1, healthy_threshold);
  unhealthy_threshold_ = std::max<uint32_t>(1, unhealthy_threshold);
}

bool HealthTracker::record(const Status& result, double rtt_ms, int64_t now_unix_ms) {
  const bool success = result.ok();
  if (consecutive_ > 0 && success == last_success_)
    ++consecutive_;
  else
    consecutive_ = 1;
  last_success_ = success;

  if (success) {
    last_error_.clear();
    if (rtt_ms >= 0) {
      last_rtt_ms_ = rtt_ms;
      smoothed_rtt_ms_ =
          smoothed_rtt_ms_ < 0 ? rtt_ms : alpha_ * rtt_ms + (1 - alpha_) * smoothed_rtt_ms_;
    }
  } else {
    last_error_ = printable(result.message(), kMaxErrorBytes);
  }

  // The verdict moves only when the streak of the opposite outcome reaches
  // its threshold; a first verdict needs the same streak.
  uint32_t needed = success ? healthy_threshold_ : unhealthy_threshold_;
  bool differs = !known_ || healthy_ != success;
  if (differs && consecutive_ >= needed) {
    known_ = true;
    healthy_ = success;
    last_change_ms_ = now_unix_ms;
    return true;
  }
  return false;
}

}  // namespace onramp::agent
