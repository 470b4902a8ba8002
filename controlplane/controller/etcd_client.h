// A small client of etcd's v3 gRPC API (proto/etcd/v3/etcd.proto) for the
// controller's etcd store: the cluster named by an etcd:// URL, linearizable
// reads of a key or a prefix, and transactions that apply only if every key
// they read is still at the revision it was read at (docs/controller.md
// "etcd").
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "controlplane/common/controller_list.h"
#include "etcd/v3/etcd.grpc.pb.h"

namespace onramp::ctl {

// etcd://HOST:PORT[,HOST:PORT...]/PREFIX: the members a client may talk to,
// and the key prefix under which everything of this control plane lives
// ("/onramp/prod/"; always starts and ends with '/').
struct EtcdUrl {
  std::vector<cp::ControllerAddress> endpoints;
  std::string prefix;
};
// Errors name what is wrong: the scheme, an endpoint (as the --controller
// list rules have it), a prefix missing or with characters other than
// [A-Za-z0-9._-/].
Result<EtcdUrl> parse_etcd_url(const std::string& url);

// The end of the key range of every key that starts with `prefix`, as etcd
// takes it (range_end): the prefix with its last byte plus one.
std::string prefix_end(const std::string& prefix);

class EtcdClient {
 public:
  struct Options {
    // Plaintext or TLS (with a client certificate) to the members.
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    std::chrono::milliseconds timeout{5000};  // deadline of each call
    cp::Resolver resolver = cp::system_resolver();
    // etcd's own authentication: with a user, the client takes a token from
    // Auth.Authenticate and sends it as the "token" metadata of every call,
    // and takes a new one when etcd says it is no longer valid. Empty: no
    // authentication (etcd with auth enabled then refuses every call).
    std::string user;
    std::string password;
  };
  EtcdClient(const EtcdUrl& url, Options options);

  struct Range {
    std::vector<etcdserverpb::KeyValue> kvs;
    int64_t revision = 0;  // the store's revision the read saw
  };
  // Linearizable: what the cluster's majority holds now.
  Result<Range> get(const std::string& key);
  Result<Range> get_prefix(const std::string& prefix);

  // One transaction: when every `expect` key is at its mod revision (0: the
  // key does not exist), all puts and deletes apply at one new revision;
  // otherwise nothing does.
  struct Txn {
    std::vector<std::pair<std::string, int64_t>> expect;  // key, mod_revision
    std::vector<std::pair<std::string, std::string>> puts;
    std::vector<std::string> deletes;
    int64_t lease = 0;  // the lease every put is attached to; 0: none
  };
  struct TxnResult {
    bool committed = false;  // false: an expected revision had moved on
    int64_t revision = 0;
  };
  Result<TxnResult> txn(const Txn& txn);
  // The same, telling apart how a call that got no answer failed:
  // `transport` UNAVAILABLE when no member took the request (nothing
  // applied), DEADLINE_EXCEEDED when none answered within the timeout (it
  // may apply once the member is back); `result` is set when it is OK.
  struct TxnAnswer {
    grpc::Status transport;
    TxnResult result;
  };
  TxnAnswer try_txn(const Txn& txn);
  // The same with a deadline of its own (shorter than the options' for an
  // attempt the caller may repeat on another member).
  TxnAnswer try_txn(const Txn& txn, std::chrono::milliseconds timeout);

  // Leases (docs/controller.md "Single owner"). A lease of `ttl` seconds,
  // as etcd granted it: its id and TTL.
  struct Lease {
    int64_t id = 0;
    int64_t ttl_s = 0;
  };
  Result<Lease> lease_grant(std::chrono::seconds ttl);
  // Renews lease `id` for its TTL once; the TTL etcd renewed it for, 0 when
  // the lease is gone (expired or revoked).
  Result<int64_t> lease_keep_alive(int64_t id);
  // Ends lease `id` now; its keys are deleted.
  Status lease_revoke(int64_t id);

  // Drops etcd's history below `revision` (the whole cluster's). A revision
  // already compacted is not an error.
  Status compact(int64_t revision);

  // The members, "host:port,host:port", for messages.
  std::string members_text() const;
  // The deadline of each call (Options::timeout).
  std::chrono::milliseconds timeout() const { return options_.timeout; }

  // Watches every key under `prefix` from `from_revision` on: calls
  // `on_events(revision)` for each batch of changes, until the stream ends
  // or `ctx` is cancelled (how the caller stops it). The error says why it
  // ended; a cancelled watch ends with CANCELLED.
  grpc::Status watch(const std::string& prefix, int64_t from_revision,
                     const std::function<void(int64_t revision)>& on_events,
                     grpc::ClientContext& ctx);
  // The same, telling `on_events` the keys each batch changed.
  grpc::Status watch_keys(
      const std::string& prefix, int64_t from_revision,
      const std::function<void(int64_t revision, const std::vector<std::string>& keys)>& on_events,
      grpc::ClientContext& ctx);

 private:
  // The stubs of one member.
  struct Stubs {
    etcdserverpb::KV::Stub& kv;
    etcdserverpb::Lease::Stub& lease;
  };
  // Runs `call` (Stubs, ClientContext&) on the member in use; an unreachable member makes the next
  // call go to the next member (a call is not repeated: a Txn whose answer
  // was lost may have applied).
  template <typename Call>
  grpc::Status on_member(Call call);
  template <typename Call>
  grpc::Status on_member(Call call, std::chrono::milliseconds timeout);
  Status failed(const std::string& what, const grpc::Status& s) const;
  // A token for options_.user from member `i` into token_; OK without one
  // when etcd's auth is not enabled.
  grpc::Status authenticate(size_t i);
  // The channel and stub of member `i`, made on first use; mu_ held.
  void open_locked(size_t i);

  Options options_;
  std::vector<cp::Replica> members_;
  mutable std::mutex mu_;  // guards current_, stubs_, lease_stubs_ and channels_
  size_t current_ = 0;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs_;
  std::vector<std::unique_ptr<etcdserverpb::Lease::Stub>> lease_stubs_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::string token_;           // etcd's auth token; "" before the first or without auth
  bool authenticated_ = false;  // token_ is what Authenticate answered last
};

}  // namespace onramp::ctl
