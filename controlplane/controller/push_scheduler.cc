#include "controlplane/controller/push_scheduler.h"

#include <algorithm>

#include "common/log.h"

namespace onramp::ctl {

PushTimer::PushTimer(duration debounce, duration max_delay, duration flush_interval, time_point now)
    : debounce_(debounce),
      max_delay_(std::max(max_delay, debounce)),
      flush_interval_(flush_interval),
      next_flush_(now + flush_interval) {}

void PushTimer::changed(time_point now) {
  if (!pending_) first_change_ = now;
  last_change_ = now;
  pending_ = true;
}

PushTimer::time_point PushTimer::push_due() const {
  // Leading edge: the first change after a quiet spell goes at once.
  if (first_change_ >= last_push_ + debounce_) return first_change_;
  return std::min(last_change_ + debounce_, first_change_ + max_delay_);
}

PushTimer::time_point PushTimer::next_wake() const {
  return pending_ ? std::min(next_flush_, push_due()) : next_flush_;
}

PushScheduler::PushScheduler(PopRegistry& registry, std::chrono::milliseconds debounce,
                             std::chrono::milliseconds max_delay,
                             std::chrono::milliseconds flush_interval, const Clock& clock)
    : PushScheduler(Actions{.push = [&registry] { registry.push_all(); },
                            .flush = [&registry] { return registry.flush(); }},
                    debounce, max_delay, flush_interval, clock) {}

PushScheduler::PushScheduler(Actions actions, std::chrono::milliseconds debounce,
                             std::chrono::milliseconds max_delay,
                             std::chrono::milliseconds flush_interval, const Clock& clock)
    : actions_(std::move(actions)),
      clock_(clock),
      timer_(debounce, max_delay, flush_interval, clock.now()),
      thread_([this] { run(); }) {}

PushScheduler::~PushScheduler() { stop(); }

void PushScheduler::config_changed() {
  std::lock_guard lock(mu_);
  timer_.changed(clock_.now());
  cv_.notify_one();
}

void PushScheduler::clock_advanced() {
  std::lock_guard lock(mu_);
  cv_.notify_one();
}

void PushScheduler::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void PushScheduler::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    auto now = clock_.now();
    if (timer_.pending() && (timer_.push_due() <= now || stopping_)) {
      timer_.push_started(now);
      lock.unlock();
      actions_.push();
      lock.lock();
      timer_.pushed(clock_.now());
      continue;
    }
    if (now >= timer_.flush_due() || stopping_) {
      lock.unlock();
      if (Status s = actions_.flush(); !s.ok())
        log::error("cannot save PoP records", {{"error", s.message()}});
      lock.lock();
      timer_.flushed(clock_.now());
      if (stopping_ && !timer_.pending()) return;
      continue;
    }
    // Sleeps for what the clock says is left. A fake clock does not move by
    // itself: its owner calls clock_advanced(), which wakes this wait.
    cv_.wait_for(lock, timer_.next_wake() - now);
  }
}

}  // namespace onramp::ctl
