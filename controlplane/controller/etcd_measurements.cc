#include "controlplane/controller/etcd_measurements.h"

#include <algorithm>

#include "common/log.h"

namespace onramp::ctl {

using std::chrono::steady_clock;

EtcdMeasurements::EtcdMeasurements(const EtcdUrl& url, EtcdClient::Options client, Options options)
    : options_(std::move(options)),
      key_prefix_(options_.prefix + "measurements/"),
      client_(url, std::move(client)) {}

EtcdMeasurements::~EtcdMeasurements() {
  follow({});
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (watch_ctx_) watch_ctx_->TryCancel();
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (watcher_.joinable()) watcher_.join();
  // A replica that stops cleanly withdraws its PoPs now, not after the TTL.
  if (lease_) (void)client_.lease_revoke(lease_);
}

void EtcdMeasurements::start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return;
    started_ = true;
  }
  reload();
  writer_ = std::thread([this] { write_loop(); });
  watcher_ = std::thread([this] { watch_loop(); });
}

bool EtcdMeasurements::publish(const std::string& pop, SharedSnapshot snapshot) {
  {
    std::lock_guard lock(mu_);
    Own& o = own_[pop];
    o.wanted = std::move(snapshot);
    o.due = true;
  }
  cv_.notify_all();
  return false;
}

SharedSnapshot EtcdMeasurements::get(const std::string& pop) const {
  std::lock_guard lock(mu_);
  auto it = stored_.find(pop);
  return it == stored_.end() ? nullptr : it->second.snapshot;
}

std::map<std::string, SharedSnapshot> EtcdMeasurements::all() const {
  std::map<std::string, SharedSnapshot> out;
  std::lock_guard lock(mu_);
  for (const auto& [pop, s] : stored_) out.emplace(pop, s.snapshot);
  return out;
}

uint64_t EtcdMeasurements::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

void EtcdMeasurements::follow(std::function<void(const std::string&)> on_change) {
  std::lock_guard lock(callback_mu_);
  on_change_ = std::move(on_change);
}

void EtcdMeasurements::notify(const std::vector<std::string>& pops) {
  std::lock_guard lock(callback_mu_);
  if (!on_change_) return;
  for (const std::string& pop : pops) on_change_(pop);
}

bool EtcdMeasurements::store_locked(const std::string& pop, Stored s) {
  auto it = stored_.find(pop);
  if (it != stored_.end()) {
    if (it->second.mod_revision > s.mod_revision) return false;  // what is held is newer
    if (it->second.bytes == s.bytes) {
      it->second.mod_revision = s.mod_revision;
      it->second.lease = s.lease;
      return false;
    }
  }
  stored_[pop] = std::move(s);
  return true;
}

bool EtcdMeasurements::write(const std::string& pop, const SharedSnapshot& snapshot, int64_t lease,
                             int64_t* revision) {
  const std::string key = key_prefix_ + pop;
  EtcdClient::Txn txn;
  if (snapshot) {
    txn.puts.emplace_back(key, snapshot->SerializeAsString());
    txn.lease = lease;
  } else {
    // Only this replica's write: the PoP may be on another replica by now.
    std::lock_guard lock(mu_);
    txn.expect.emplace_back(key, own_[pop].written_revision);
    txn.deletes.push_back(key);
  }
  auto r = client_.txn(txn);
  if (!r.ok()) {
    log::warn("shared measurements: write failed; retried", {{"pop", pop}, {"error", r.error()}});
    return false;
  }
  *revision = r->revision;
  return true;
}

void EtcdMeasurements::write_loop() {
  const auto renew_every = std::max<steady_clock::duration>(
      std::chrono::milliseconds(500),
      std::chrono::duration_cast<steady_clock::duration>(options_.ttl) / 3);
  steady_clock::time_point renew_at{};
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto now = steady_clock::now();
    if (now >= renew_at) {
      // The lease first: a write without it would outlive this replica.
      int64_t lease = lease_;
      lock.unlock();
      bool renewed = false;
      int64_t granted = 0;
      if (lease) {
        auto ttl = client_.lease_keep_alive(lease);
        renewed = ttl.ok() && *ttl > 0;
        if (ttl.ok() && *ttl == 0) {
          log::warn("shared measurements: the lease expired; its PoPs are written again",
                    {{"lease", lease}});
          lease = 0;
        }
      }
      if (!lease) {
        auto g = client_.lease_grant(options_.ttl);
        if (g.ok())
          granted = g->id;
        else
          log::warn("shared measurements: no lease; writes wait", {{"error", g.error()}});
      }
      lock.lock();
      now = steady_clock::now();
      renew_at = now + (renewed || granted ? renew_every : std::chrono::seconds(1));
      if (granted) {
        lease_ = granted;
        // Whatever was written on an older lease is gone with it.
        for (auto& [pop, o] : own_) {
          o.written.reset();
          o.written_revision = 0;
          o.due = o.wanted != nullptr;
        }
      } else if (!lease) {
        lease_ = 0;
      }
      continue;
    }
    std::string pick;
    auto wake = renew_at;
    if (lease_)
      for (auto& [pop, o] : own_) {
        if (!o.due) continue;
        auto at = o.last_write + options_.min_interval;
        if (at > now) {
          wake = std::min(wake, at);
          continue;
        }
        if (!o.wanted && !o.written) {
          o.due = false;  // nothing of ours to withdraw
          continue;
        }
        if (o.wanted && o.written && !moves_routes(*o.written, *o.wanted, options_.policy)) {
          o.due = false;  // within the margins of what is stored
          continue;
        }
        pick = pop;
        break;
      }
    if (pick.empty()) {
      cv_.wait_until(lock, wake);
      continue;
    }
    Own& o = own_[pick];
    SharedSnapshot snapshot = o.wanted;
    if (snapshot) {
      auto stamped = std::make_shared<v1::SharedMeasurements>(*snapshot);
      stamped->set_replica(options_.replica);
      snapshot = std::move(stamped);
    }
    o.due = false;  // a publish meanwhile makes it due again
    o.last_write = now;
    const int64_t lease = lease_;
    lock.unlock();
    int64_t revision = 0;
    bool done = write(pick, snapshot, lease, &revision);
    lock.lock();
    Own& after = own_[pick];
    if (!done) {
      after.due = true;
      continue;
    }
    ++writes_;
    after.written = snapshot;
    after.written_revision = snapshot ? revision : 0;
    bool changed = false;
    if (snapshot) {
      changed = store_locked(pick, Stored{.snapshot = snapshot,
                                          .bytes = snapshot->SerializeAsString(),
                                          .mod_revision = revision,
                                          .lease = lease});
    } else if (auto it = stored_.find(pick);
               it != stored_.end() && it->second.mod_revision < revision) {
      stored_.erase(it);
      changed = true;
    }
    if (!snapshot && !after.wanted) own_.erase(pick);
    if (changed) {
      lock.unlock();
      notify({pick});
      lock.lock();
    }
  }
}

void EtcdMeasurements::reload() {
  auto read = client_.get_prefix(key_prefix_);
  if (!read.ok()) {
    log::warn("shared measurements: reading them failed", {{"error", read.error()}});
    return;
  }
  std::vector<std::string> changed;
  {
    std::lock_guard lock(mu_);
    std::map<std::string, bool> seen;
    for (const etcdserverpb::KeyValue& kv : read->kvs) {
      const std::string pop = kv.key().substr(key_prefix_.size());
      auto m = std::make_shared<v1::SharedMeasurements>();
      if (!m->ParseFromString(kv.value()) || m->pop() != pop) {
        log::warn("shared measurements: not a snapshot; ignored", {{"key", kv.key()}});
        continue;
      }
      seen[pop] = true;
      if (store_locked(pop, Stored{.snapshot = std::move(m),
                                   .bytes = kv.value(),
                                   .mod_revision = kv.mod_revision(),
                                   .lease = kv.lease()}))
        changed.push_back(pop);
    }
    for (auto it = stored_.begin(); it != stored_.end();) {
      if (!seen.count(it->first) && it->second.mod_revision <= read->revision) {
        changed.push_back(it->first);
        it = stored_.erase(it);
      } else {
        ++it;
      }
    }
    // A PoP whose session is here but whose key is gone (its lease
    // expired while etcd was away, or an older replica of the PoP deleted
    // its own write): written again.
    bool rewrite = false;
    for (auto& [pop, o] : own_)
      if (o.wanted && o.written && !seen.count(pop)) {
        o.written.reset();
        o.written_revision = 0;
        o.due = rewrite = true;
      }
    if (rewrite) cv_.notify_all();
  }
  notify(changed);
}

void EtcdMeasurements::watch_loop() {
  while (true) {
    grpc::ClientContext ctx;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      watch_ctx_ = &ctx;
    }
    // From now: what was stored before is read once the watch is open.
    auto head = client_.get(key_prefix_);
    grpc::Status s = grpc::Status(grpc::StatusCode::UNAVAILABLE, head.ok() ? "" : head.error());
    if (head.ok()) {
      reload();
      s = client_.watch(
          key_prefix_, head->revision + 1, [this](int64_t) { reload(); }, ctx);
    }
    std::unique_lock lock(mu_);
    watch_ctx_ = nullptr;
    if (stopping_) return;
    log::warn("shared measurements: the watch ended; watching again in 1 s",
              {{"error", s.error_message()}});
    if (cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) return;
  }
}

}  // namespace onramp::ctl
