#include "controlplane/controller/etcd_client.h"

#include <algorithm>

#include "common/grpc_limits.h"
#include "common/log.h"

namespace onramp::ctl {

Result<EtcdUrl> parse_etcd_url(const std::string& url) {
  const std::string scheme = "etcd://";
  if (url.rfind(scheme, 0) != 0)
    return error("\"" + url + "\": not an etcd URL (etcd://HOST:PORT[,HOST:PORT...]/PREFIX)");
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  if (slash == std::string::npos || slash + 1 >= rest.size())
    return error("\"" + url + "\": no key prefix after the members (etcd://HOST:PORT/onramp)");
  Result<std::vector<cp::ControllerAddress>> endpoints =
      cp::parse_controller_list(rest.substr(0, slash));
  if (!endpoints.ok()) return endpoints.status().prefixed("\"" + url + "\"");
  std::string prefix = rest.substr(slash);
  for (char c : prefix)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
        c != '/')
      return error("\"" + url + "\": the prefix may hold letters, digits, '.', '_', '-', '/'");
  if (prefix.find("//") != std::string::npos)
    return error("\"" + url + "\": an empty part in the prefix");
  if (prefix.back() != '/') prefix += '/';
  return EtcdUrl{.endpoints = std::move(*endpoints), .prefix = prefix};
}

std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

EtcdClient::EtcdClient(const EtcdUrl& url, Options options) : options_(std::move(options)) {
  members_ = cp::resolve_replicas(url.endpoints, options_.resolver);
  stubs_.resize(members_.size());
  lease_stubs_.resize(members_.size());
  channels_.resize(members_.size());
}

void EtcdClient::open_locked(size_t i) {
  if (stubs_[i]) return;
  grpc::ChannelArguments args;
  limit_messages(args);
  cp::name_channel(args, members_[i]);
  channels_[i] = grpc::CreateCustomChannel(members_[i].target, options_.credentials, args);
  stubs_[i] = etcdserverpb::KV::NewStub(channels_[i]);
  lease_stubs_[i] = etcdserverpb::Lease::NewStub(channels_[i]);
}

namespace {

// What etcd answers a call whose token it no longer takes: an expired or
// unknown token (the server restarted, its --auth-token TTL passed), or one
// issued before the users or roles changed. Refused before anything
// applies, so the call may be sent again with a new token.
bool token_refused(const grpc::Status& s) {
  const std::string& m = s.error_message();
  return s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         m.find("invalid auth token") != std::string::npos ||
         m.find("revision of auth store is old") != std::string::npos ||
         m.find("user name is empty") != std::string::npos;
}

}  // namespace

grpc::Status EtcdClient::authenticate(size_t i) {
  std::shared_ptr<grpc::Channel> channel;
  {
    std::lock_guard lock(mu_);
    open_locked(i);
    channel = channels_[i];
  }
  auto auth = etcdserverpb::Auth::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + options_.timeout);
  etcdserverpb::AuthenticateRequest req;
  req.set_name(options_.user);
  req.set_password(options_.password);
  etcdserverpb::AuthenticateResponse resp;
  grpc::Status s = auth->Authenticate(&ctx, req, &resp);
  std::lock_guard lock(mu_);
  if (s.ok()) {
    token_ = resp.token();
  } else if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
             s.error_message().find("not enabled") != std::string::npos) {
    token_.clear();  // etcd's auth is off: calls go without a token
  } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
             s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return s;
  } else {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "etcd refused user \"" + options_.user + "\" (--etcd-user, " +
                            "--etcd-password-file): " + s.error_message());
  }
  authenticated_ = true;
  return grpc::Status::OK;
}

template <typename Call>
grpc::Status EtcdClient::on_member(Call call) {
  return on_member(call, options_.timeout);
}

template <typename Call>
grpc::Status EtcdClient::on_member(Call call, std::chrono::milliseconds timeout) {
  for (int attempt = 0;; ++attempt) {
    etcdserverpb::KV::Stub* stub = nullptr;
    etcdserverpb::Lease::Stub* lease = nullptr;
    size_t used = 0;
    bool need_token = false;
    {
      std::lock_guard lock(mu_);
      if (members_.empty()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no etcd member");
      used = current_;
      open_locked(used);
      stub = stubs_[used].get();
      lease = lease_stubs_[used].get();
      need_token = !options_.user.empty() && !authenticated_;
    }
    grpc::Status s = need_token ? authenticate(used) : grpc::Status::OK;
    std::string token;
    if (s.ok()) {
      {
        std::lock_guard lock(mu_);
        token = token_;
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + timeout);
      if (!token.empty()) ctx.AddMetadata("token", token);
      s = call(Stubs{.kv = *stub, .lease = *lease}, ctx);
    }
    if (attempt == 0 && !need_token && !options_.user.empty() && token_refused(s)) {
      // Once, and not after a fresh Authenticate: then it is a refusal.
      log::info("etcd refused the auth token; authenticating again",
                {{"user", options_.user}, {"error", s.error_message()}});
      std::lock_guard lock(mu_);
      if (token_ == token) authenticated_ = false;
      continue;
    }
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
        s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      std::lock_guard lock(mu_);
      if (current_ == used) current_ = (current_ + 1) % members_.size();
    }
    return s;
  }
}

Status EtcdClient::failed(const std::string& what, const grpc::Status& s) const {
  if (options_.user.empty() && s.error_message().find("user name is empty") != std::string::npos)
    return error("etcd " + what + ": etcd's authentication is enabled and no user was given " +
                 "(give --etcd-user and --etcd-password-file)");
  return error("etcd " + what + ": " + s.error_message() + " (gRPC status " +
               std::to_string(static_cast<int>(s.error_code())) + ")");
}

Result<EtcdClient::Range> EtcdClient::get(const std::string& key) {
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  etcdserverpb::RangeResponse resp;
  grpc::Status s =
      on_member([&](Stubs m, grpc::ClientContext& ctx) { return m.kv.Range(&ctx, req, &resp); });
  if (!s.ok()) return failed("get " + key, s);
  Range r{.kvs = {resp.kvs().begin(), resp.kvs().end()}, .revision = resp.header().revision()};
  return r;
}

Result<EtcdClient::Range> EtcdClient::get_prefix(const std::string& prefix) {
  etcdserverpb::RangeRequest req;
  req.set_key(prefix);
  req.set_range_end(prefix_end(prefix));
  etcdserverpb::RangeResponse resp;
  grpc::Status s =
      on_member([&](Stubs m, grpc::ClientContext& ctx) { return m.kv.Range(&ctx, req, &resp); });
  if (!s.ok()) return failed("get " + prefix + "*", s);
  Range r{.kvs = {resp.kvs().begin(), resp.kvs().end()}, .revision = resp.header().revision()};
  return r;
}

std::string EtcdClient::members_text() const {
  std::string out;
  for (const cp::Replica& m : members_) out += (out.empty() ? "" : ",") + m.authority;
  return out;
}

Result<EtcdClient::TxnResult> EtcdClient::txn(const Txn& txn) {
  TxnAnswer a = try_txn(txn);
  if (!a.transport.ok()) return failed("transaction", a.transport);
  return a.result;
}

EtcdClient::TxnAnswer EtcdClient::try_txn(const Txn& txn) { return try_txn(txn, options_.timeout); }

EtcdClient::TxnAnswer EtcdClient::try_txn(const Txn& txn, std::chrono::milliseconds timeout) {
  etcdserverpb::TxnRequest req;
  for (const auto& [key, revision] : txn.expect) {
    etcdserverpb::Compare* c = req.add_compare();
    c->set_result(etcdserverpb::Compare::EQUAL);
    c->set_target(etcdserverpb::Compare::MOD);
    c->set_key(key);
    c->set_mod_revision(revision);
  }
  for (const auto& [key, value] : txn.puts) {
    etcdserverpb::PutRequest* p = req.add_success()->mutable_request_put();
    p->set_key(key);
    p->set_value(value);
    p->set_lease(txn.lease);
  }
  for (const std::string& key : txn.deletes)
    req.add_success()->mutable_request_delete_range()->set_key(key);
  etcdserverpb::TxnResponse resp;
  grpc::Status s = on_member(
      [&](Stubs m, grpc::ClientContext& ctx) { return m.kv.Txn(&ctx, req, &resp); }, timeout);
  if (!s.ok()) return {.transport = s};
  return {.transport = grpc::Status::OK,
          .result = {.committed = resp.succeeded(), .revision = resp.header().revision()}};
}

Result<EtcdClient::Lease> EtcdClient::lease_grant(std::chrono::seconds ttl) {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl.count());
  etcdserverpb::LeaseGrantResponse resp;
  grpc::Status s = on_member(
      [&](Stubs m, grpc::ClientContext& ctx) { return m.lease.LeaseGrant(&ctx, req, &resp); });
  if (!s.ok()) return failed("lease grant", s);
  if (!resp.error().empty()) return error("etcd lease grant: " + resp.error());
  return Lease{.id = resp.id(), .ttl_s = resp.ttl()};
}

Result<int64_t> EtcdClient::lease_keep_alive(int64_t id) {
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(id);
  etcdserverpb::LeaseKeepAliveResponse resp;
  // One request and its answer on a stream of its own: a renewal every few
  // seconds does not need the stream kept open between them.
  grpc::Status s = on_member([&](Stubs m, grpc::ClientContext& ctx) {
    auto stream = m.lease.LeaseKeepAlive(&ctx);
    bool answered = stream->Write(req) && stream->Read(&resp);
    stream->WritesDone();
    grpc::Status finished = stream->Finish();
    if (answered) return grpc::Status::OK;
    return finished.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "no keep-alive answer")
                         : finished;
  });
  if (!s.ok()) return failed("lease keep-alive", s);
  return std::max<int64_t>(resp.ttl(), 0);
}

Status EtcdClient::lease_revoke(int64_t id) {
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(id);
  etcdserverpb::LeaseRevokeResponse resp;
  grpc::Status s = on_member(
      [&](Stubs m, grpc::ClientContext& ctx) { return m.lease.LeaseRevoke(&ctx, req, &resp); });
  if (!s.ok() && s.error_message().find("requested lease not found") == std::string::npos)
    return failed("lease revoke", s);
  return ok_status();
}

Status EtcdClient::compact(int64_t revision) {
  etcdserverpb::CompactionRequest req;
  req.set_revision(revision);
  etcdserverpb::CompactionResponse resp;
  grpc::Status s =
      on_member([&](Stubs m, grpc::ClientContext& ctx) { return m.kv.Compact(&ctx, req, &resp); });
  if (!s.ok() &&
      s.error_message().find("required revision has been compacted") == std::string::npos)
    return failed("compact", s);
  return ok_status();
}

grpc::Status EtcdClient::watch(const std::string& prefix, int64_t from_revision,
                               const std::function<void(int64_t revision)>& on_events,
                               grpc::ClientContext& ctx) {
  return watch_keys(
      prefix, from_revision,
      [&](int64_t revision, const std::vector<std::string>&) { on_events(revision); }, ctx);
}

grpc::Status EtcdClient::watch_keys(
    const std::string& prefix, int64_t from_revision,
    const std::function<void(int64_t revision, const std::vector<std::string>& keys)>& on_events,
    grpc::ClientContext& ctx) {
  std::shared_ptr<grpc::Channel> channel;
  {
    // The member in use: reads and transactions move it on when it fails.
    std::lock_guard lock(mu_);
    if (members_.empty()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no etcd member");
    open_locked(current_);
    channel = channels_[current_];
  }
  if (!options_.user.empty()) {
    std::string token;
    {
      std::lock_guard lock(mu_);
      token = token_;
    }
    // The token of the last call (reads come first; a refused one is
    // renewed by the next read, after which the watch is opened again).
    if (!token.empty()) ctx.AddMetadata("token", token);
  }
  auto stub = etcdserverpb::Watch::NewStub(channel);
  auto stream = stub->Watch(&ctx);
  etcdserverpb::WatchRequest req;
  etcdserverpb::WatchCreateRequest* create = req.mutable_create_request();
  create->set_key(prefix);
  create->set_range_end(prefix_end(prefix));
  create->set_start_revision(from_revision);
  if (!stream->Write(req)) return stream->Finish();
  etcdserverpb::WatchResponse resp;
  while (stream->Read(&resp)) {
    if (resp.canceled()) {
      ctx.TryCancel();
      (void)stream->Finish();
      return grpc::Status(
          grpc::StatusCode::ABORTED,
          "etcd cancelled the watch: " +
              (resp.cancel_reason().empty() ? std::string("compacted") : resp.cancel_reason()));
    }
    if (resp.events_size() == 0) continue;
    std::vector<std::string> keys;
    keys.reserve(resp.events_size());
    for (const auto& e : resp.events()) keys.push_back(e.kv().key());
    on_events(resp.header().revision(), keys);
  }
  return stream->Finish();
}

}  // namespace onramp::ctl
