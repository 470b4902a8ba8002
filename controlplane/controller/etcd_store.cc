#include "controlplane/controller/etcd_store.h"

#include <algorithm>
#include <random>
#include <thread>

#include "common/log.h"

namespace onramp::ctl {
namespace {

// Keys under the prefix.
constexpr char kVersionKey[] = "meta/version";
constexpr char kIdentityKey[] = "meta/identity";
constexpr char kPops[] = "pops/";
// The PoPs' shared measurements (etcd_measurements.h), not the store's.
constexpr char kMeasurements[] = "measurements/";
// Held by the replica that runs the single-owner jobs, on its lease.
constexpr char kOwnerKey[] = "meta/owner";

template <typename T>
constexpr const char* kind_of();
template <>
constexpr const char* kind_of<v1::Accelerator>() {
  return "accelerators/";
}
template <>
constexpr const char* kind_of<v1::Listener>() {
  return "listeners/";
}
template <>
constexpr const char* kind_of<v1::EndpointGroup>() {
  return "groups/";
}
template <>
constexpr const char* kind_of<v1::Endpoint>() {
  return "endpoints/";
}

// A PopRecord as one value: each field as its length, ':', its bytes.
std::string encode(const PopRecord& r) {
  std::string out;
  for (const std::string& f :
       {r.pop.SerializeAsString(), r.applied_digest, r.nacked_digest, r.route_memory})
    out += std::to_string(f.size()) + ":" + f;
  return out;
}

bool decode(const std::string& in, PopRecord& r) {
  std::string fields[4];
  size_t at = 0;
  for (std::string& f : fields) {
    size_t colon = in.find(':', at);
    if (colon == std::string::npos) return false;
    size_t n = 0;
    try {
      n = std::stoul(in.substr(at, colon - at));
    } catch (...) {
      return false;
    }
    if (colon + 1 + n > in.size()) return false;
    f = in.substr(colon + 1, n);
    at = colon + 1 + n;
  }
  r.applied_digest = fields[1];
  r.nacked_digest = fields[2];
  r.route_memory = fields[3];
  return r.pop.ParseFromString(fields[0]);
}

// The key of `r`'s parent in its own table's terms ("web/http" for a
// group "web/http/eu"); "" for an accelerator.
std::string parent_of(const std::string& key) {
  size_t slash = key.rfind('/');
  return slash == std::string::npos ? "" : key.substr(0, slash);
}

}  // namespace

EtcdStore::EtcdStore(const EtcdUrl& url, EtcdClient::Options client)
    : prefix_(url.prefix), client_(url, std::move(client)) {}

Result<std::unique_ptr<EtcdStore>> EtcdStore::open(const EtcdUrl& url, EtcdClient::Options client,
                                                   StoreOpenOptions options) {
  std::unique_ptr<EtcdStore> store(new EtcdStore(url, std::move(client)));
  if (Status s = store->init_identity(options.init); !s.ok()) return s;
  if (options.new_epoch) {
    auto id = store->client_.get(store->prefix_ + kIdentityKey);
    if (!id.ok()) return id.status();
    StoreIdentity raised = store->identity_;
    ++raised.epoch;
    auto r = store->client_.txn(
        {.expect = {{store->prefix_ + kIdentityKey, id->kvs.at(0).mod_revision()}},
         .puts = {{store->prefix_ + kIdentityKey,
                   raised.store_id + " " + std::to_string(raised.epoch)}}});
    if (!r.ok()) return r.status();
    if (!r->committed) return error("--new-epoch: another replica changed the identity meanwhile");
    store->identity_ = raised;
  }
  if (Status s = store->load(); !s.ok()) return s;
  return store;
}

Status EtcdStore::init_identity(bool init) {
  const std::string key = prefix_ + kIdentityKey;
  auto id = client_.get(key);
  if (!id.ok()) return id.status();
  if (id->kvs.empty()) {
    if (!init)
      return error("--store: no onramp store under " + prefix_ +
                   "; start once with --init to create one");
    std::random_device rd;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%08x%08x", rd(), rd());
    // Only the first replica to get here creates it; the others read it.
    auto r = client_.txn({.expect = {{key, 0}},
                          .puts = {{key, std::string(hex) + " 1"}, {prefix_ + kVersionKey, "0"}}});
    if (!r.ok()) return r.status();
    id = client_.get(key);
    if (!id.ok()) return id.status();
    if (id->kvs.empty()) return error("--store: the store's identity vanished under " + prefix_);
  }
  const std::string& v = id->kvs[0].value();
  size_t space = v.find(' ');
  if (space == std::string::npos) return error("--store: " + key + ": not an identity: " + v);
  identity_.store_id = v.substr(0, space);
  try {
    identity_.epoch = std::stoull(v.substr(space + 1));
  } catch (...) {
    return error("--store: " + key + ": not an identity: " + v);
  }
  return ok_status();
}

Status EtcdStore::load(bool* changed) {
  auto all = client_.get_prefix(prefix_);
  if (!all.ok()) return all.status();
  if (changed) *changed = false;
  auto config = std::make_shared<Config>();
  std::map<std::string, int64_t> revisions;
  auto parse = [&]<typename T>(const etcdserverpb::KeyValue& kv,
                               const std::string& rest) -> Status {
    T x;
    if (!x.ParseFromString(kv.value())) return error("--store: " + kv.key() + ": not a resource");
    config->map_of<T>()[rest] = x;
    revisions[kv.key()] = kv.mod_revision();
    return ok_status();
  };
  for (const etcdserverpb::KeyValue& kv : all->kvs) {
    std::string rel = kv.key().substr(prefix_.size());
    Status s = ok_status();
    auto under = [&](const char* kind) { return rel.starts_with(kind); };
    auto rest = [&](const char* kind) { return rel.substr(std::string(kind).size()); };
    if (rel == kVersionKey) {
      try {
        config->version = std::stoull(kv.value());
      } catch (...) {
        return error("--store: " + kv.key() + ": not a version: " + kv.value());
      }
      revisions[kv.key()] = kv.mod_revision();
    } else if (under(kind_of<v1::Accelerator>())) {
      s = parse.template operator()<v1::Accelerator>(kv, rest(kind_of<v1::Accelerator>()));
    } else if (under(kind_of<v1::Listener>())) {
      s = parse.template operator()<v1::Listener>(kv, rest(kind_of<v1::Listener>()));
    } else if (under(kind_of<v1::EndpointGroup>())) {
      s = parse.template operator()<v1::EndpointGroup>(kv, rest(kind_of<v1::EndpointGroup>()));
    } else if (under(kind_of<v1::Endpoint>())) {
      s = parse.template operator()<v1::Endpoint>(kv, rest(kind_of<v1::Endpoint>()));
    }
    if (!s.ok()) return s;
  }
  std::lock_guard lock(mu_);
  // A commit of this replica may have landed after this read: keep it.
  if (snapshot_ && all->revision <= loaded_revision_) return ok_status();
  if (changed) *changed = !snapshot_ || snapshot_->version != config->version;
  snapshot_ = std::move(config);
  revisions_ = std::move(revisions);
  loaded_revision_ = all->revision;
  return ok_status();
}

EtcdStore::~EtcdStore() {
  election_.reset();
  follow({});
}

void EtcdStore::start_single_owner_jobs(const SingleOwnerOptions& options) {
  election_.reset();
  std::vector<OwnerElection::Job> jobs;
  if (options.compact_every.count() > 0) {
    compaction_ = std::make_unique<HistoryCompaction>(client_, prefix_ + kVersionKey);
    jobs.push_back({.name = "etcd history compaction",
                    .every = options.compact_every,
                    .run = [this] { return compaction_->run(); }});
  }
  if (jobs.empty()) return;
  election_ = std::make_unique<OwnerElection>(
      client_,
      OwnerElection::Options{
          .key = prefix_ + kOwnerKey, .name = options.replica, .ttl = options.ttl},
      std::move(jobs));
}

void EtcdStore::follow(std::function<void()> on_change) {
  {
    std::lock_guard lock(watch_mu_);
    stopping_ = true;
    if (watch_ctx_) watch_ctx_->TryCancel();
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  if (!on_change) return;
  {
    std::lock_guard lock(watch_mu_);
    stopping_ = false;
    on_change_ = std::move(on_change);
  }
  watcher_ = std::thread([this] { watch_loop(); });
}

void EtcdStore::watch_loop() {
  while (true) {
    int64_t from = 0;
    {
      std::lock_guard lock(mu_);
      from = loaded_revision_ + 1;
    }
    grpc::ClientContext ctx;
    {
      std::lock_guard lock(watch_mu_);
      if (stopping_) return;
      watch_ctx_ = &ctx;
    }
    grpc::Status s = client_.watch_keys(
        prefix_, from,
        [this](int64_t, const std::vector<std::string>& keys) {
          // The PoPs' shared measurements change far more often than the
          // configuration and are read by their own watch
          // (etcd_measurements.h): a batch of them alone reads nothing here.
          const std::string measurements = prefix_ + kMeasurements;
          if (std::all_of(keys.begin(), keys.end(),
                          [&](const std::string& k) { return k.starts_with(measurements); }))
            return;
          bool changed = false;
          if (Status l = load(&changed); !l.ok())
            log::warn("etcd store: reading a change failed", {{"error", l.message()}});
          if (changed) on_change_();
        },
        ctx);
    std::unique_lock lock(watch_mu_);
    watch_ctx_ = nullptr;
    if (stopping_) return;
    log::warn("etcd store: the watch ended; watching again in 1 s", {{"error", s.error_message()}});
    // Whatever happened meanwhile is read once the watch is back.
    if (watch_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) return;
    lock.unlock();
    bool changed = false;
    if (load(&changed).ok() && changed) on_change_();
  }
}

std::string EtcdStore::key_for(const Resource& r) const {
  return std::visit(
      [&](const auto& x) { return prefix_ + kind_of<std::decay_t<decltype(x)>>() + key_of(x); }, r);
}

std::shared_ptr<const Config> EtcdStore::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

CommitResult EtcdStore::commit(const ConfigChange& change, uint64_t expected_version) {
  // One commit at a time; mu_ is let go while etcd is asked, so reads and
  // PoP sessions never wait on etcd (an etcd that hangs holds only writes).
  std::lock_guard one_commit(commit_mu_);
  std::unique_lock lock(mu_);
  if (snapshot_->version != expected_version)
    return {.outcome = CommitResult::Outcome::conflict,
            .error = "the configuration moved on to version " + std::to_string(snapshot_->version)};
  auto next = std::make_shared<Config>(*snapshot_);
  next->version = expected_version + 1;
  // What the file's foreign keys do for SQLite: nothing erased that is not
  // there or still has children, nothing put under a missing parent.
  for (const Resource& r : change.erasures) {
    std::string key = key_for(r);
    if (!revisions_.count(key))
      return {.error = "erase " + key.substr(prefix_.size()) + ": not in the store"};
  }
  apply_change(*next, change);
  auto orphan =
      [&]<typename Parent, typename Child>(const ResourceMap<Child>& children) -> std::string {
    for (const auto& [key, child] : children)
      if (next->map_of<Parent>().find(parent_of(key)) == next->map_of<Parent>().end()) return key;
    return "";
  };
  std::string lost = orphan.template operator()<v1::Accelerator>(next->listeners);
  if (lost.empty()) lost = orphan.template operator()<v1::Listener>(next->groups);
  if (lost.empty()) lost = orphan.template operator()<v1::EndpointGroup>(next->endpoints);
  if (!lost.empty()) return {.error = lost + ": its parent is not in the store"};

  const std::string version_key = prefix_ + kVersionKey;
  EtcdClient::Txn txn;
  auto read_at = [&](const std::string& key) {
    auto it = revisions_.find(key);
    return it == revisions_.end() ? int64_t{0} : it->second;
  };
  txn.expect.emplace_back(version_key, read_at(version_key));
  txn.puts.emplace_back(version_key, std::to_string(next->version));
  for (const Resource& r : change.erasures) {
    std::string key = key_for(r);
    txn.expect.emplace_back(key, read_at(key));
    txn.deletes.push_back(key);
  }
  for (const Resource& r : change.puts) {
    std::string key = key_for(r);
    txn.expect.emplace_back(key, read_at(key));
    std::string value = std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          return next->map_of<T>().at(key_of(x)).SerializeAsString();
        },
        r);
    txn.puts.emplace_back(key, std::move(value));
  }
  lock.unlock();
  EtcdClient::TxnAnswer answer = send_commit(txn);
  if (!answer.transport.ok()) return unreachable(answer.transport);
  const EtcdClient::TxnResult* r = &answer.result;
  if (!r->committed) {
    // Another replica committed since this one read: read again, so the
    // caller's next attempt starts from what is there now.
    Status reloaded = load();
    return {.outcome = CommitResult::Outcome::conflict,
            .error = reloaded.ok() ? "another replica changed the configuration meanwhile"
                                   : "another replica changed the configuration meanwhile; " +
                                         reloaded.message()};
  }
  lock.lock();
  // The watch may have read this commit (and later ones) meanwhile: then
  // what it holds is as new or newer, and stays.
  if (loaded_revision_ < r->revision) {
    for (const auto& [key, value] : txn.puts) revisions_[key] = r->revision;
    for (const std::string& key : txn.deletes) revisions_.erase(key);
    snapshot_ = next;
    loaded_revision_ = r->revision;
  }
  return {.outcome = CommitResult::Outcome::committed, .config = next};
}

EtcdClient::TxnAnswer EtcdStore::send_commit(const EtcdClient::Txn& txn) {
  using namespace std::chrono;
  const auto end = steady_clock::now() + client_.timeout();
  // An attempt that got no answer, or etcd's own UNAVAILABLE (a member took
  // it), may still apply: a later attempt's failed compare may be its own.
  bool maybe_applied = false;
  for (int attempt = 0;; ++attempt) {
    const auto left = duration_cast<milliseconds>(end - steady_clock::now());
    EtcdClient::TxnAnswer answer =
        client_.try_txn(txn, std::max(milliseconds(1), std::min(left, kAttemptTimeout)));
    if (answer.transport.ok()) {
      if (!answer.result.committed && maybe_applied) {
        // The compare is on the revisions read: the transaction applies at
        // most once; a failed compare may be its own earlier attempt.
        int64_t revision = 0;
        switch (applied_earlier(txn, &revision)) {
          case Applied::yes:
            log::info("etcd store: an earlier attempt of the commit applied",
                      {{"attempts", attempt + 1}, {"revision", revision}});
            answer.result = {.committed = true, .revision = revision};
            break;
          case Applied::unknown:
            // Neither a conflict (the caller would apply it again) nor
            // committed: not confirmed, as after a deadline.
            answer.transport =
                grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                             "an earlier attempt may have applied and later commits followed it");
            break;
          case Applied::no:
            break;
        }
      }
      return answer;
    }
    const grpc::StatusCode code = answer.transport.error_code();
    const bool taken = answer.transport.error_message().rfind("etcdserver:", 0) == 0;
    if (code != grpc::StatusCode::UNAVAILABLE && code != grpc::StatusCode::DEADLINE_EXCEEDED)
      return answer;
    if (code == grpc::StatusCode::DEADLINE_EXCEEDED || taken) maybe_applied = true;
    if (steady_clock::now() + milliseconds(20) >= end) {
      // Said as what may have happened: a refused last attempt after one
      // that may apply must not read "nothing was changed".
      if (maybe_applied && code == grpc::StatusCode::UNAVAILABLE && !taken)
        answer.transport =
            grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, answer.transport.error_message());
      return answer;
    }
    // The client moved on to the next member; a member that refused the
    // connection is not asked again in a busy loop.
    if (code == grpc::StatusCode::UNAVAILABLE && !taken)
      std::this_thread::sleep_for(milliseconds(50));
  }
}

std::string EtcdStore::version_key() const { return prefix_ + kVersionKey; }

EtcdStore::Applied EtcdStore::applied_earlier(const EtcdClient::Txn& txn, int64_t* revision) {
  // The version key is the first put of every commit.
  const auto& [version_key, version] = txn.puts.front();
  auto now = client_.get(version_key);
  if (!now.ok() || now->kvs.size() != 1) return Applied::unknown;
  uint64_t ours = 0, there = 0;
  try {
    ours = std::stoull(version);
    there = std::stoull(now->kvs[0].value());
  } catch (...) {
    return Applied::unknown;
  }
  if (there < ours) return Applied::no;
  if (there > ours) {
    // Later commits on top: a resource it puts still at the revision the
    // commit read was not written by it; one holding exactly its value was
    // (the value carries its version as resource_version). Anything else
    // was overwritten since, by it or not.
    std::map<std::string, int64_t> read_at(txn.expect.begin(), txn.expect.end());
    Applied verdict = Applied::unknown;
    for (size_t i = 1; i < txn.puts.size(); ++i) {
      const auto& [key, value] = txn.puts[i];
      auto got = client_.get(key);
      if (!got.ok()) return Applied::unknown;
      const int64_t modified = got->kvs.empty() ? 0 : got->kvs[0].mod_revision();
      if (modified == read_at[key]) return Applied::no;
      if (!got->kvs.empty() && got->kvs[0].value() == value) {
        verdict = Applied::yes;
        *revision = modified;
      }
    }
    return verdict;
  }
  const int64_t at = now->kvs[0].mod_revision();
  for (const auto& [key, value] : txn.puts) {
    auto got = client_.get(key);
    if (!got.ok()) return Applied::unknown;
    if (got->kvs.size() != 1 || got->kvs[0].value() != value || got->kvs[0].mod_revision() != at)
      return Applied::no;
  }
  for (const std::string& key : txn.deletes) {
    auto got = client_.get(key);
    if (!got.ok()) return Applied::unknown;
    if (!got->kvs.empty()) return Applied::no;
  }
  *revision = at;
  return Applied::yes;
}

CommitResult EtcdStore::unreachable(const grpc::Status& s) const {
  std::string where = "the configuration store (etcd at " + client_.members_text() + ")";
  std::string reason = s.error_message().empty() ? "no answer" : s.error_message();
  // etcd's own UNAVAILABLE answers ("etcdserver: request timed out", "...
  // possibly due to previous leader failure", "server stopped") come from a
  // member that took the transaction: it may still apply, as after a
  // deadline. gRPC's own (no connection) mean no member took it.
  const bool taken = reason.rfind("etcdserver:", 0) == 0;
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && !taken)
    return {.outcome = CommitResult::Outcome::unavailable,
            .error = where + " cannot be reached: " + reason + "; nothing was changed"};
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE)
    return {.outcome = CommitResult::Outcome::unavailable,
            .error = where + " did not confirm the change: " + reason +
                     "; it applies only if etcd committed it: read it back before retrying"};
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
    // The request may sit in a member that is stopped, not gone: it applies
    // if that member comes back. The version compare keeps it harmless (a
    // later write of this replica conflicts and reads again), but the
    // operator must not be told it did not happen.
    return {.outcome = CommitResult::Outcome::unavailable,
            .error = where + " did not answer in time: " + reason +
                     "; the change was not confirmed and applies only if etcd took it before it "
                     "stopped answering: read it back before retrying"};
  return {.error = "etcd transaction: " + s.error_message()};
}

std::vector<PopRecord> EtcdStore::pops() const {
  std::vector<PopRecord> out;
  auto all = client_.get_prefix(prefix_ + kPops);
  if (!all.ok()) return out;
  for (const etcdserverpb::KeyValue& kv : all->kvs) {
    PopRecord r;
    if (decode(kv.value(), r)) out.push_back(std::move(r));
  }
  return out;
}

Status EtcdStore::put_pops(const std::vector<PopRecord>& records) {
  // The registry is last-writer-wins: a PoP is connected to one replica at
  // a time, and every agent says what it runs in its next Hello.
  EtcdClient::Txn txn;
  for (const PopRecord& r : records) txn.puts.emplace_back(prefix_ + kPops + r.pop.id(), encode(r));
  if (txn.puts.empty()) return ok_status();
  auto r = client_.txn(txn);
  if (!r.ok()) return r.status();
  return ok_status();
}

}  // namespace onramp::ctl
