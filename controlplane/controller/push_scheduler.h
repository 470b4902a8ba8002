// Coalesces configuration changes into pushes. A mutation after a quiet
// spell (no push for `debounce`) is pushed at once: an isolated change, an
// operator draining an endpoint, reaches every PoP without waiting. Any
// mutation that follows within `debounce` of a push is held until no further
// mutation came for `debounce` (but never longer than `max_delay` after the
// first held one), then pushed with the rest: a burst costs at most two
// pushes. A push has the registry recompute and send every connected PoP's
// table once. The scheduler also flushes PoP records to the store once a
// second, so ACKs and heartbeats never wait on a disk sync.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "controlplane/controller/pop_registry.h"

namespace onramp::ctl {

class PushScheduler {
 public:
  PushScheduler(PopRegistry& registry, std::chrono::milliseconds debounce,
                std::chrono::milliseconds max_delay,
                std::chrono::milliseconds flush_interval = std::chrono::seconds(1));
  ~PushScheduler();

  // A mutation was committed. Never blocks.
  void config_changed();
  // Pushes anything pending, flushes PoP records, and stops the thread.
  void stop();

 private:
  void run();

  PopRegistry& registry_;
  const std::chrono::milliseconds debounce_, max_delay_, flush_interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point first_change_, last_change_;
  std::chrono::steady_clock::time_point last_push_{};  // epoch: none yet
  std::thread thread_;
};

}  // namespace onramp::ctl
