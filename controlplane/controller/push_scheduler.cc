#include "controlplane/controller/push_scheduler.h"

#include "common/log.h"

namespace onramp::ctl {

using Clock = std::chrono::steady_clock;

PushScheduler::PushScheduler(PopRegistry& registry, std::chrono::milliseconds debounce,
                             std::chrono::milliseconds max_delay,
                             std::chrono::milliseconds flush_interval)
    : registry_(registry),
      debounce_(debounce),
      max_delay_(std::max(max_delay, debounce)),
      flush_interval_(flush_interval),
      thread_([this] { run(); }) {}

PushScheduler::~PushScheduler() { stop(); }

void PushScheduler::config_changed() {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  if (!pending_) first_change_ = now;
  last_change_ = now;
  pending_ = true;
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
  auto next_flush = Clock::now() + flush_interval_;
  std::unique_lock lock(mu_);
  for (;;) {
    auto now = Clock::now();
    bool push_due = false;
    auto wake = next_flush;
    if (pending_) {
      // Leading edge: the first change after a quiet spell goes at once.
      auto due = first_change_ >= last_push_ + debounce_
                     ? first_change_
                     : std::min(last_change_ + debounce_, first_change_ + max_delay_);
      if (due <= now || stopping_)
        push_due = true;
      else
        wake = std::min(wake, due);
    }
    if (push_due) {
      pending_ = false;
      lock.unlock();
      registry_.push_all();
      lock.lock();
      last_push_ = Clock::now();
      continue;
    }
    if (now >= next_flush || stopping_) {
      lock.unlock();
      if (Status s = registry_.flush(); !s.ok())
        log::error("cannot save PoP records", {{"error", s.message()}});
      lock.lock();
      next_flush = Clock::now() + flush_interval_;
      if (stopping_ && !pending_) return;
      continue;
    }
    cv_.wait_until(lock, wake);
  }
}

}  // namespace onramp::ctl
