// One endpoint's health as this PoP sees it: rise/fall thresholds over
// consecutive probe results, and a smoothed RTT (docs/design.md "Routing"). Pure logic
// without clocks or sockets; the prober feeds it one result per attempt.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace onramp::agent {

class HealthTracker {
 public:
  // Thresholds are clamped to at least 1. `rtt_alpha` is the weight of the
  // newest RTT in the moving average, in (0, 1].
  HealthTracker(uint32_t healthy_threshold, uint32_t unhealthy_threshold, double rtt_alpha = 0.3);

  // Records one attempt: ok, or the reason it failed. `rtt_ms` counts only
  // when it succeeded. Returns true when the verdict (known or healthy)
  // changed.
  bool record(const Status& result, double rtt_ms, int64_t now_unix_ms);

  // New thresholds (the plan changed them): the streak and verdict stay.
  void set_thresholds(uint32_t healthy_threshold, uint32_t unhealthy_threshold);

  // False until healthy_threshold successes or unhealthy_threshold failures
  // in a row have given a first verdict.
  bool known() const { return known_; }
  bool healthy() const { return healthy_; }
  // Results in a row with the same outcome as the latest one.
  uint32_t consecutive() const { return consecutive_; }
  // When the verdict last changed (the first verdict included), Unix ms; 0:
  // no verdict yet.
  int64_t last_change_ms() const { return last_change_ms_; }
  // Exponentially weighted moving average of successful RTTs, and the latest
  // one; negative until a probe succeeded.
  double smoothed_rtt_ms() const { return smoothed_rtt_ms_; }
  double last_rtt_ms() const { return last_rtt_ms_; }
  // The latest failure's reason, printable, cut to kMaxErrorBytes (a
  // reason can quote what an endpoint sent); empty once a probe succeeds
  // again. Reports of the largest configuration stay far below the gRPC
  // message limit this way.
  static constexpr size_t kMaxErrorBytes = 256;
  const std::string& last_error() const { return last_error_; }

 private:
  uint32_t healthy_threshold_;
  uint32_t unhealthy_threshold_;
  double alpha_;
  bool known_ = false;
  bool healthy_ = false;
  bool last_success_ = false;
  uint32_t consecutive_ = 0;
  int64_t last_change_ms_ = 0;
  double smoothed_rtt_ms_ = -1;
  double last_rtt_ms_ = -1;
  std::string last_error_;
};

}  // namespace onramp::agent
