// Which controller replica the agent tries next, and after how long. After
// any session ends, or an attempt fails, the next attempt goes to the next
// replica of the list (never the same one first), after a jittered
// exponential backoff that starts again from its shortest delay once a
// session has worked. The list is resolved again at every move, so a DNS
// name follows its records (docs/agent.md "Controller replicas").
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "common/clock.h"
#include "controlplane/agent/backoff.h"
#include "controlplane/common/controller_list.h"

namespace onramp::agent {

class ReplicaRotation {
 public:
  // `list` is not empty (parse_controller_list refuses that).
  ReplicaRotation(std::vector<cp::ControllerAddress> list, cp::Resolver resolver,
                  Backoff::Options backoff, Clock& clock, uint64_t seed);

  struct Attempt {
    cp::Replica replica;
    std::chrono::milliseconds delay{0};  // wait this long before connecting
  };

  // The first attempt: the first replica of the list, at once.
  Attempt first();
  // The session of the last attempt is open (its Hello went out).
  void opened();
  // The last attempt is over: it never opened, or its session ended.
  // `heard`: the controller sent something on it. A session that was heard
  // from, or stayed open longer than the longest backoff, worked: the delay
  // starts again from the shortest.
  Attempt next(bool heard);

 private:
  cp::Replica pick_after(const cp::Replica& last);

  const std::vector<cp::ControllerAddress> list_;
  const cp::Resolver resolver_;
  const Backoff::Options options_;
  Backoff backoff_;
  Clock& clock_;
  cp::Replica current_;
  bool open_ = false;
  Clock::time_point opened_at_{};
};

}  // namespace onramp::agent
