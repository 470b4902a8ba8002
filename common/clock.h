// Time as a parameter: code that waits or measures takes a Clock, so the
// daemons run on the real steady clock and their tests move a FakeClock by
// hand instead of sleeping.
#pragma once

#include <chrono>
#include <mutex>

namespace onramp {

class Clock {
 public:
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual time_point now() const = 0;
};

// std::chrono::steady_clock.
class RealClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
};

// The process's one real clock; the default wherever a Clock is taken.
inline Clock& real_clock() {
  static RealClock clock;
  return clock;
}

// A clock that stands still until a test advances it. Starts at an arbitrary
// fixed point well after the epoch, so "now - interval" never underflows.
// Safe to read from one thread while another advances it.
class FakeClock final : public Clock {
 public:
  FakeClock() = default;
  explicit FakeClock(time_point start) : now_(start) {}

  time_point now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  void advance(duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
  }
  void set(time_point t) {
    std::lock_guard lock(mu_);
    now_ = t;
  }

 private:
  mutable std::mutex mu_;
  time_point now_ = time_point(std::chrono::hours(24));  // guarded by mu_
};

}  // namespace onramp
