// The push scheduler on a FakeClock: when a change is pushed at once, when
// a burst is held and pushed together, and when PoP records are flushed,
// without sleeping.
#include "controlplane/controller/push_scheduler.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <vector>

#include "common/clock.h"

namespace onramp::ctl::test {
namespace {

using namespace std::chrono_literals;

constexpr auto kDebounce = 100ms;
constexpr auto kMaxDelay = 1000ms;
constexpr auto kFlush = 1000ms;

TEST(PushTimer, AChangeAfterAQuietSpellIsDueAtOnce) {
  FakeClock clock;
  PushTimer t(kDebounce, kMaxDelay, kFlush, clock.now());
  EXPECT_FALSE(t.pending());
  t.changed(clock.now());
  ASSERT_TRUE(t.pending());
  EXPECT_EQ(t.push_due(), clock.now());
}

TEST(PushTimer, ABurstIsHeldUntilItIsQuietForTheDebounce) {
  FakeClock clock;
  PushTimer t(kDebounce, kMaxDelay, kFlush, clock.now());
  t.changed(clock.now());
  t.push_started(clock.now());
  t.pushed(clock.now());
  auto pushed_at = clock.now();
  clock.advance(10ms);
  t.changed(clock.now());
  EXPECT_EQ(t.push_due(), pushed_at + 10ms + kDebounce);
  clock.advance(50ms);
  t.changed(clock.now());  // another change restarts the wait
  EXPECT_EQ(t.push_due(), pushed_at + 60ms + kDebounce);
  EXPECT_EQ(t.next_wake(), t.push_due());
}

TEST(PushTimer, AHeldBurstWaitsNoLongerThanTheMaxDelay) {
  FakeClock clock;
  PushTimer t(kDebounce, kMaxDelay, kFlush, clock.now());
  t.changed(clock.now());
  t.push_started(clock.now());
  t.pushed(clock.now());
  clock.advance(1ms);
  auto first = clock.now();
  for (int i = 0; i < 30; ++i) {  // a change every 50 ms, for 1.5 s
    t.changed(clock.now());
    clock.advance(50ms);
  }
  EXPECT_EQ(t.push_due(), first + kMaxDelay);
}

TEST(PushTimer, FlushesEveryInterval) {
  FakeClock clock;
  PushTimer t(kDebounce, kMaxDelay, kFlush, clock.now());
  EXPECT_EQ(t.flush_due(), clock.now() + kFlush);
  EXPECT_EQ(t.next_wake(), t.flush_due());
  clock.advance(kFlush);
  t.flushed(clock.now());
  EXPECT_EQ(t.flush_due(), clock.now() + kFlush);
}

TEST(PushTimer, TheMaxDelayIsNeverShorterThanTheDebounce) {
  FakeClock clock;
  PushTimer t(kDebounce, 10ms, kFlush, clock.now());
  t.changed(clock.now());
  t.push_started(clock.now());
  t.pushed(clock.now());
  t.changed(clock.now());
  EXPECT_EQ(t.push_due(), clock.now() + kDebounce);
}

// Counts what the scheduler's thread does, with the fake time of each push.
class Recorder {
 public:
  explicit Recorder(const FakeClock& clock) : clock_(clock) {}
  PushScheduler::Actions actions() {
    return {.push =
                [this] {
                  std::lock_guard lock(mu_);
                  pushes_.push_back(clock_.now());
                  cv_.notify_all();
                },
            .flush =
                [this] {
                  std::lock_guard lock(mu_);
                  ++flushes_;
                  cv_.notify_all();
                  return ok_status();
                }};
  }
  // Waits (on the scheduler's thread, not on time) for the n-th push.
  std::vector<Clock::time_point> wait_pushes(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return pushes_.size() >= n; });
    return pushes_;
  }
  // After the scheduler stopped.
  size_t pushes() {
    std::lock_guard lock(mu_);
    return pushes_.size();
  }
  int flushes() {
    std::lock_guard lock(mu_);
    return flushes_;
  }
  int wait_flushes(int n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return flushes_ >= n; });
    return flushes_;
  }

 private:
  const FakeClock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Clock::time_point> pushes_;
  int flushes_ = 0;
};

TEST(PushScheduler, PushesAtOnceThenHoldsTheBurstUntilTheClockSaysSo) {
  FakeClock clock;
  Recorder rec(clock);
  PushScheduler s(rec.actions(), kDebounce, kMaxDelay, kFlush, clock);
  auto start = clock.now();
  s.config_changed();
  // Pushed with the clock standing still: at once.
  ASSERT_EQ(rec.wait_pushes(1), std::vector{start});

  s.config_changed();
  s.config_changed();
  clock.advance(kDebounce / 2);
  s.clock_advanced();
  clock.advance(kDebounce / 2);
  s.clock_advanced();
  // The burst went out together, and not before the debounce had passed.
  auto pushes = rec.wait_pushes(2);
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[1], start + kDebounce);
  s.stop();
  EXPECT_EQ(rec.pushes(), 2u) << "nothing was pending at stop";
}

TEST(PushScheduler, FlushesWhenTheIntervalPassesAndOnStop) {
  FakeClock clock;
  Recorder rec(clock);
  PushScheduler s(rec.actions(), kDebounce, kMaxDelay, kFlush, clock);
  clock.advance(kFlush);
  s.clock_advanced();
  EXPECT_EQ(rec.wait_flushes(1), 1);
  s.config_changed();
  ASSERT_EQ(rec.wait_pushes(1).size(), 1u);
  s.config_changed();  // held: the first went at once
  s.stop();
  // Stopping pushes what is pending and flushes once more.
  EXPECT_EQ(rec.pushes(), 2u);
  EXPECT_EQ(rec.flushes(), 2);
}

}  // namespace
}  // namespace onramp::ctl::test
