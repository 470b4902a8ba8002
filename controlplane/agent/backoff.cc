#include "controlplane/agent/backoff.h"

#include <algorithm>

namespace onramp::agent {

Backoff::Backoff(Options options, uint64_t seed)
    : options_(options), nominal_ms_(static_cast<double>(options.initial.count())), rng_(seed) {}

std::chrono::milliseconds Backoff::next() {
  std::uniform_real_distribution<double> spread(1.0 - options_.jitter, 1.0 + options_.jitter);
  double max = static_cast<double>(options_.max.count());
  double delay = std::min(max, nominal_ms_ * spread(rng_));
  nominal_ms_ = std::min(max, nominal_ms_ * options_.multiplier);
  return std::chrono::milliseconds(static_cast<int64_t>(delay));
}

void Backoff::reset() { nominal_ms_ = static_cast<double>(options_.initial.count()); }

}  // namespace onramp::agent
