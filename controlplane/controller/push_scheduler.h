// Coalesces configuration changes into pushes. A mutation after a quiet
// spell (no push for `debounce`) is pushed at once: an isolated change, an
// operator draining an endpoint, reaches every PoP without waiting. Any
// mutation that follows within `debounce` of a push is held until no further
// mutation came for `debounce` (but never longer than `max_delay` after the
// first held one), then pushed with the rest: a burst costs at most two
// pushes. A push has the registry recompute and send every connected PoP's
// table once. The scheduler also flushes PoP records to the store once a
// second, so ACKs and heartbeats never wait on a disk sync. Time comes from
// an injected Clock: tests drive it with a FakeClock instead of sleeping.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/status.h"
#include "controlplane/controller/pop_registry.h"

namespace onramp::ctl {

// When pushes and flushes are due, as plain arithmetic on the times it is
// given: no thread and no clock of its own, so tests step it by hand.
class PushTimer {
 public:
  using time_point = Clock::time_point;
  using duration = Clock::duration;

  PushTimer(duration debounce, duration max_delay, duration flush_interval, time_point now);

  // A mutation was committed at `now`.
  void changed(time_point now);
  bool pending() const { return pending_; }
  // When the pending push is due: at once after a quiet spell, otherwise
  // `debounce` after the last change but no later than `max_delay` after the
  // first held one. Only meaningful while pending().
  time_point push_due() const;
  time_point flush_due() const { return next_flush_; }
  // The earliest of the two.
  time_point next_wake() const;

  // A push starts: changes from now on wait for the next one, and count as
  // following this push. And it ends: the quiet spell starts.
  void push_started(time_point now) {
    pending_ = false;
    last_push_ = now;
  }
  void pushed(time_point now) { last_push_ = now; }
  void flushed(time_point now) { next_flush_ = now + flush_interval_; }

 private:
  const duration debounce_, max_delay_, flush_interval_;
  bool pending_ = false;
  time_point first_change_{}, last_change_{};
  time_point last_push_{};  // the clock's epoch: none yet
  time_point next_flush_;
};

class PushScheduler {
 public:
  // What a push and a flush do: the registry's push_all() and flush().
  struct Actions {
    std::function<void()> push;
    std::function<Status()> flush;
  };

  PushScheduler(PopRegistry& registry, std::chrono::milliseconds debounce,
                std::chrono::milliseconds max_delay,
                std::chrono::milliseconds flush_interval = std::chrono::seconds(1),
                const Clock& clock = real_clock());
  PushScheduler(Actions actions, std::chrono::milliseconds debounce,
                std::chrono::milliseconds max_delay,
                std::chrono::milliseconds flush_interval = std::chrono::seconds(1),
                const Clock& clock = real_clock());
  ~PushScheduler();

  // A mutation was committed. Never blocks.
  void config_changed();
  // A fake clock moved: look again at what is due. Real clocks need not call
  // it.
  void clock_advanced();
  // Pushes anything pending, flushes PoP records, and stops the thread.
  void stop();

 private:
  void run();

  const Actions actions_;
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  PushTimer timer_;        // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace onramp::ctl
