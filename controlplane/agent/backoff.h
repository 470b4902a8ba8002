// Jittered exponential backoff for reconnecting to the controller: each delay
// doubles up to a ceiling, and is spread by +-jitter so that a controller
// restart does not bring every PoP back in the same millisecond.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace onramp::agent {

class Backoff {
 public:
  struct Options {
    std::chrono::milliseconds initial{100};
    std::chrono::milliseconds max{10000};
    double multiplier = 2.0;
    double jitter = 0.2;  // each delay is the nominal one times [1 - jitter, 1 + jitter]
  };

  explicit Backoff(Options options, uint64_t seed = std::random_device{}());

  // The delay before the next attempt; never above options.max.
  std::chrono::milliseconds next();
  // After a session that worked: start again from options.initial.
  void reset();

 private:
  Options options_;
  double nominal_ms_;
  std::mt19937_64 rng_;
};

}  // namespace onramp::agent
