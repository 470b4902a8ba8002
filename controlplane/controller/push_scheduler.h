// Coalesces configuration changes into pushes: after a mutation the
// scheduler waits until no further mutation came for `debounce` (but never
// longer than `max_delay` after the first), then has the registry recompute
// and push every connected PoP's table once. It also flushes PoP records to
// the store once a second, so ACKs and heartbeats never wait on a disk sync.
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
  std::thread thread_;
};

}  // namespace onramp::ctl
