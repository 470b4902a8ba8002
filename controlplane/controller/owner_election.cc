#include "controlplane/controller/owner_election.h"

#include <algorithm>

#include "common/log.h"

namespace onramp::ctl {

OwnerElection::OwnerElection(EtcdClient& client, Options options, std::vector<Job> jobs)
    : client_(client),
      options_(std::move(options)),
      jobs_(std::move(jobs)),
      next_run_(jobs_.size()) {
  thread_ = std::thread([this] { loop(); });
}

OwnerElection::~OwnerElection() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (lease_ == 0) return;
  // The owner key goes with the lease: another replica takes over at its
  // next tick. Nothing to do when etcd cannot be reached: the lease ends
  // by itself.
  if (Status s = client_.lease_revoke(lease_); !s.ok())
    log::warn("owner election: the lease was not revoked; it ends within its TTL",
              {{"replica", options_.name}, {"error", s.message()}});
}

bool OwnerElection::owner() const {
  std::lock_guard lock(mu_);
  return Clock::now() < owner_until_;
}

void OwnerElection::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    round();
    lock.lock();
    cv_.wait_for(lock, options_.tick, [this] { return stopping_; });
  }
}

void OwnerElection::lost(const std::string& why) {
  {
    std::lock_guard lock(mu_);
    owner_until_ = {};
  }
  said_owner_ = false;
  log::warn("this replica no longer runs the single-owner jobs",
            {{"replica", options_.name}, {"why", why}});
}

void OwnerElection::round() {
  // The ownership ended by itself (no renewal got through for a TTL)
  // between two rounds: said once.
  if (said_owner_ && !owner()) lost("no renewal of its lease got through for a TTL");
  const bool was_owner = owner();
  // When the lease's grant or last renewal was sent: etcd counts its TTL
  // from a later moment, so the lease cannot have ended before
  // sent + TTL.
  Clock::time_point sent = Clock::now();
  int64_t ttl_s = 0;
  if (lease_ == 0) {
    auto granted = client_.lease_grant(options_.ttl);
    if (!granted.ok()) {
      if (was_owner && !owner()) lost("no lease from etcd: " + granted.error());
      return;
    }
    lease_ = granted->id;
    ttl_s = granted->ttl_s;
  } else if (sent >= renew_due_) {
    auto renewed = client_.lease_keep_alive(lease_);
    if (!renewed.ok()) {
      // Tried again next tick; the ownership ends by itself when no renewal
      // got through for a TTL.
      if (was_owner && !owner()) lost("the lease was not renewed: " + renewed.error());
      return;
    }
    if (*renewed == 0) {
      lease_ = 0;
      if (was_owner) lost("etcd ended the lease");
      return;
    }
    ttl_s = *renewed;
  }
  if (ttl_s > 0) {
    renewed_at_ = sent;
    lease_ttl_ = std::chrono::seconds(ttl_s);
    renew_due_ = sent + lease_ttl_ / 3;
    if (was_owner) {
      std::lock_guard lock(mu_);
      owner_until_ = renewed_at_ + lease_ttl_;
    }
  }
  if (!was_owner || ttl_s > 0) {
    // Campaign, or (at each renewal) check that the key is still ours. A
    // read first: a transaction is a raft entry (a disk write on every
    // member), a read is not, and most rounds find the key held.
    auto held = client_.get(options_.key);
    if (!held.ok()) return;
    if (held->kvs.empty()) {
      auto created = client_.txn({.expect = {{options_.key, 0}},
                                  .puts = {{options_.key, options_.name}},
                                  .lease = lease_});
      if (!created.ok()) return;
      held = client_.get(options_.key);
      if (!held.ok()) return;
    }
    const bool ours = !held->kvs.empty() && held->kvs[0].lease() == lease_;
    std::string holder = held->kvs.empty() ? "" : held->kvs[0].value();
    if (ours && !was_owner) {
      {
        std::lock_guard lock(mu_);
        owner_until_ = renewed_at_ + lease_ttl_;
      }
      std::fill(next_run_.begin(), next_run_.end(), Clock::now());
      said_owner_ = true;
      log::info("this replica now runs the single-owner jobs",
                {{"replica", options_.name}, {"lease", lease_}, {"key", options_.key}});
    } else if (!ours && was_owner) {
      lost("the owner key is no longer on this replica's lease (held by \"" + holder + "\")");
    } else if (!ours && holder != seen_owner_ && !holder.empty()) {
      log::info("another replica runs the single-owner jobs",
                {{"replica", options_.name}, {"owner", holder}});
    }
    seen_owner_ = holder;
  }
  if (!owner()) return;
  for (size_t i = 0; i < jobs_.size(); ++i) {
    Clock::time_point now = Clock::now();
    if (now < next_run_[i]) continue;
    next_run_[i] = now + jobs_[i].every;
    if (Status s = jobs_[i].run(); !s.ok())
      log::warn("a single-owner job failed; it runs again at its next turn",
                {{"replica", options_.name}, {"job", jobs_[i].name}, {"error", s.message()}});
  }
}

}  // namespace onramp::ctl
