// Drives a Prober that was not started, on a FakeClock, the way its thread
// would: what is due runs, then socket events are awaited. Fake time jumps
// to the next thing due, and only after kIoWait of real time without an
// answer while an attempt is in flight, so loopback servers answer within
// the attempt's (fake) timeout however loaded the machine; an attempt that
// nothing answers (a silent server) runs into its fake timeout after a few
// such waits. The real waits are the only real time left: a loopback
// answer, at worst a SYN retransmitted after 1 s when many connections in a
// short time meet a port still in TIME_WAIT.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>

#include "common/clock.h"
#include "controlplane/agent/prober.h"

namespace onramp::agent::test {

using namespace std::chrono_literals;

class ProberDriver {
 public:
  // Real time an attempt in flight gets to be answered before fake time
  // moves on to its deadline: far beyond loopback's answer, and paid in
  // full only by attempts that are meant to time out.
  static constexpr std::chrono::milliseconds kIoWait{300};

  ProberDriver(Prober& prober, FakeClock& clock) : prober_(prober), clock_(clock) {}

  // One round: runs what is due, then waits for answers or moves fake time
  // to the next thing due.
  void round() {
    Clock::time_point wake = prober_.run_due();
    if (prober_.attempts_in_flight() > 0 && prober_.poll_io(kIoWait) > 0) return;
    prober_.poll_io(std::chrono::milliseconds(0));  // a wake-up from set_plan
    if (wake > clock_.now()) clock_.set(wake);
  }

  // Rounds until `done` holds (true) or fake time has passed `limit`.
  bool until(const std::function<bool()>& done, std::chrono::milliseconds limit = 60s) {
    Clock::time_point end = clock_.now() + limit;
    while (clock_.now() <= end) {
      round();
      if (done()) return true;
    }
    return false;
  }

  // Rounds for `d` of fake time; stops at the first thing due after it.
  void run_for(std::chrono::milliseconds d) {
    Clock::time_point end = clock_.now() + d;
    while (true) {
      Clock::time_point wake = prober_.run_due();
      if (prober_.attempts_in_flight() > 0 && prober_.poll_io(kIoWait) > 0) continue;
      prober_.poll_io(std::chrono::milliseconds(0));
      if (wake > end) break;
      if (wake > clock_.now()) clock_.set(wake);
    }
    clock_.set(end);
  }

 private:
  Prober& prober_;
  FakeClock& clock_;
};

}  // namespace onramp::agent::test
