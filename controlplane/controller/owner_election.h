// Which controller replica runs the jobs that must run once across the
// replicas of one etcd prefix (docs/controller.md "Single owner"): each
// replica holds an etcd lease; the owner is the one whose transaction
// created the owner key, attached to its lease, while the key was absent.
// The key goes when its lease ends (the owner stopped renewing it, or
// revoked it on a clean stop), and another replica creates it again.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "controlplane/controller/etcd_client.h"

namespace onramp::ctl {

class OwnerElection {
 public:
  struct Options {
    std::string key;   // the owner key (PREFIX/meta/owner)
    std::string name;  // this replica, as the key's value and the logs say
    // The lease's TTL: a replica that dies (kill -9, a partition) stops
    // being the owner, and another takes over, within about this long.
    std::chrono::seconds ttl{10};
    // How often a replica that is not the owner tries to become it, and
    // how often due jobs are looked at.
    std::chrono::milliseconds tick{250};
  };
  // A job of the owner: run() every `every` while this replica owns the
  // key. A job must stay harmless when two replicas run it at about the
  // same time: the old owner may not yet know its lease ended.
  struct Job {
    std::string name;
    std::chrono::milliseconds every;
    std::function<Status()> run;
  };

  // Starts campaigning at once, on a thread of its own.
  OwnerElection(EtcdClient& client, Options options, std::vector<Job> jobs);
  // Stops; an owner revokes its lease, so that another replica takes over
  // within its next tick instead of a TTL.
  ~OwnerElection();
  OwnerElection(const OwnerElection&) = delete;
  OwnerElection& operator=(const OwnerElection&) = delete;

  // True while this replica holds the owner key on a lease that cannot have
  // ended yet (its last renewal was sent less than a TTL ago).
  bool owner() const;

 private:
  using Clock = std::chrono::steady_clock;
  void loop();
  // One round: a lease held and renewed, the key taken when free, due jobs
  // run. mu_ not held.
  void round();
  void lost(const std::string& why);

  EtcdClient& client_;
  const Options options_;
  std::vector<Job> jobs_;
  std::vector<Clock::time_point> next_run_;  // per job; loop thread only

  // Loop thread only.
  int64_t lease_ = 0;
  Clock::time_point renewed_at_{};     // when its grant or last renewal was sent
  std::chrono::seconds lease_ttl_{0};  // as etcd granted or renewed it
  Clock::time_point renew_due_{};
  std::string seen_owner_;   // the owner key's value last seen, for the logs
  bool said_owner_ = false;  // "now runs the single-owner jobs" logged, not yet undone

  mutable std::mutex mu_;  // guards owner_until_, stopping_
  std::condition_variable cv_;
  Clock::time_point owner_until_{};  // owner while now < this
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace onramp::ctl
