// ConfigStore on etcd (--store etcd://...): the configuration of a control
// plane whose replicas share one etcd cluster. Every resource is one key
// under the URL's prefix, its value the resource's protobuf encoding; a
// version key holds the configuration version. Every commit is one etcd
// transaction that applies only if the version key and every key it
// touches are still at the mod revisions this replica read, so two
// replicas that race cannot both win: the loser reloads and its caller
// validates again, as after any conflict (docs/controller.md "etcd").
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "controlplane/controller/config_store.h"
#include "controlplane/controller/etcd_client.h"
#include "controlplane/controller/history_compaction.h"
#include "controlplane/controller/owner_election.h"
#include "controlplane/controller/sqlite_store.h"

namespace onramp::ctl {

class EtcdStore final : public ConfigStore {
 public:
  // Reads the store under url.prefix. Without options.init, a prefix that
  // holds no onramp store is refused (as a missing --db is); with it, the
  // store's identity and version are created there, once, whichever
  // replica comes first.
  static Result<std::unique_ptr<EtcdStore>> open(const EtcdUrl& url, EtcdClient::Options client,
                                                 StoreOpenOptions options = {});

  std::shared_ptr<const Config> snapshot() const override;
  CommitResult commit(const ConfigChange& change, uint64_t expected_version) override;
  std::vector<PopRecord> pops() const override;
  Status put_pops(const std::vector<PopRecord>& records) override;
  StoreIdentity identity() const override { return identity_; }
  // Watches the prefix: a commit of another replica is read (the whole
  // prefix again) and `on_change` called, within a watch event's latency.
  void follow(std::function<void()> on_change) override;
  ~EtcdStore() override;

  // What must run once across the replicas of this prefix: etcd history
  // compaction every `compact_every` (none when 0), on whichever replica
  // wins the owner election (owner_election.h) under the key
  // PREFIX/meta/owner. `replica` names this one in that key and the logs.
  struct SingleOwnerOptions {
    std::string replica;
    std::chrono::seconds ttl{10};
    std::chrono::seconds compact_every{300};
  };
  void start_single_owner_jobs(const SingleOwnerOptions& options);
  // True while this replica runs the single-owner jobs; false without them.
  bool single_owner() const { return election_ && election_->owner(); }

  // Whether a commit's transaction `txn` (its first put the version key)
  // applied, as a repeated attempt whose compare failed asks about an
  // earlier one whose answer was lost. Each commit moves the version key by
  // one, on its revision, so a version below the one `txn` writes means it
  // did not apply; the same version means it did exactly when every key it
  // puts holds its value at one mod revision (that revision in `revision`)
  // and every key it deletes is gone; with a higher version (later commits
  // on top), a resource it puts still at the revision the commit read means
  // it did not apply, one holding its value exactly means it did (with that
  // key's revision), and otherwise it cannot be told: `unknown`.
  enum class Applied { no, yes, unknown };
  Applied applied_earlier(const EtcdClient::Txn& txn, int64_t* revision);
  // The key under which the store keeps the configuration version.
  std::string version_key() const;

 private:
  EtcdStore(const EtcdUrl& url, EtcdClient::Options client);
  Status init_identity(bool new_epoch);
  // Everything under the prefix again: the snapshot and the revisions,
  // unless what is held is newer. True in `changed` when the version moved.
  Status load(bool* changed = nullptr);
  void watch_loop();
  std::string key_for(const Resource& r) const;
  // Sends a commit's transaction, each attempt with a deadline of
  // kAttemptTimeout, again (on the next member) while the call's deadline
  // allows; an attempt whose compare failed after an earlier one may have
  // applied is told apart by reading back what it writes.
  EtcdClient::TxnAnswer send_commit(const EtcdClient::Txn& txn);

  // A commit whose transaction got no answer from etcd: unavailable, with
  // a message that names the members and says what happened to the change.
  CommitResult unreachable(const grpc::Status& s) const;

  // One attempt of a commit: a member that took the request while the
  // leader it forwarded it to died answers only at the deadline, when
  // another member answers once the cluster has a new leader (etcd's
  // election takes about 1 s).
  static constexpr std::chrono::milliseconds kAttemptTimeout{500};

  const std::string prefix_;
  // Mutable: reads are const in ConfigStore, and the client is thread-safe.
  mutable EtcdClient client_;
  StoreIdentity identity_;
  std::mutex commit_mu_;   // serialises commits (held across the etcd call)
  mutable std::mutex mu_;  // guards snapshot_, revisions_ and loaded_revision_
  std::shared_ptr<const Config> snapshot_;
  // The mod revision of every key of the snapshot (resources and the
  // version key), as read: what a commit compares.
  std::map<std::string, int64_t> revisions_;
  int64_t loaded_revision_ = 0;  // the etcd revision snapshot_ is as of

  // The watch (follow): its thread, its call, and the callback.
  std::mutex watch_mu_;  // guards watch_ctx_, on_change_ and stopping_
  std::condition_variable watch_cv_;
  grpc::ClientContext* watch_ctx_ = nullptr;
  std::function<void()> on_change_;
  bool stopping_ = false;
  std::thread watcher_;

  // The single-owner jobs; the election (its thread runs the jobs) is
  // declared last, so it stops first.
  std::unique_ptr<HistoryCompaction> compaction_;
  std::unique_ptr<OwnerElection> election_;
};

}  // namespace onramp::ctl
