// Simulated PoPs for the control-plane benchmark: N PoP sessions in one
// process, each with its own PoP id, channel and TCP connection to a
// plaintext controller on loopback, ACKing every TableUpdate the moment it
// arrives. A driver in the same process then makes operator changes through
// the admin API and times each one, so that the figure is the controller's
// and not the scheduler's juggling hundreds of agent processes.
//
//   sim-agents --controller ADDR[,ADDR...] --admin ADDR[,ADDR...] [--pops N]
//              [--changes K] [--gap-ms MS] [--write-seconds S] [--json FILE]
//
// With several controller replicas (one store, etcd), PoP i connects to the
// i-th PoP address round robin, and change k goes through the k-th admin
// address: changes made through one replica reach PoPs on the others.
//
// Each change sets the weight of one endpoint (it changes every PoP's table).
// Times are taken on one monotonic clock, from just before the admin call:
//   admin_ms     the UpdateEndpoint call returned (validation + SQLite commit)
//   first_ms     the first PoP received its TableUpdate
//   last_ms      the last PoP's ACK was written to its stream (handed to the
//                kernel by gRPC): the headline figure
//   each_ms      the same, for every PoP and change (N x K samples)
//   recorded_ms  ListPops shows every PoP on the version it ACKed (the
//                controller has read every ACK); polled every 0.5 ms from
//                last_ms on, so it is late by up to a poll
// The JSON has each figure's median, p99 (nearest rank) and max.
// With --write-seconds, then: two writers per admin address change an
// endpoint's weight for S seconds, each call after the last one returned; "writes"
// counts the calls acknowledged, refused as conflicts (the replicas raced)
// and failed otherwise, and the acknowledged ones per second.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "onramp/v1/admin.grpc.pb.h"
#include "onramp/v1/pop_session.grpc.pb.h"

namespace {

namespace v1 = onramp::v1;
using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// "AAA1", "AAB1", ...: the PoP id form the controller requires.
std::string pop_id(size_t i) {
  std::string id;
  for (size_t d : {676u, 26u, 1u}) id += static_cast<char>('A' + (i / d) % 26);
  return id + "1";
}

// One table as a PoP saw it.
struct Receipt {
  uint64_t version = 0;
  Clock::time_point received;
  std::optional<Clock::time_point> ack_sent;
};

class SimPop;

// Every PoP's receipts, shared with the driver.
class Fleet {
 public:
  void received(size_t pop, uint64_t version, Clock::time_point at, size_t& index) {
    std::lock_guard lock(mu_);
    receipts_[pop].push_back({.version = version, .received = at});
    index = receipts_[pop].size() - 1;
  }
  void ack_sent(size_t pop, size_t index, Clock::time_point at) {
    std::lock_guard lock(mu_);
    receipts_[pop][index].ack_sent = at;
    cv_.notify_all();
  }
  void ended(size_t pop, const grpc::Status& s) {
    std::lock_guard lock(mu_);
    ended_[pop] = true;
    if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED && error_.empty())
      error_ = pop_id(pop) + ": session ended: " + s.error_message();
    cv_.notify_all();
  }

  void resize(size_t n) {
    receipts_.resize(n);
    ended_.assign(n, false);
  }
  // Waits until every PoP has ACKed a receipt at `index` or beyond; false on
  // timeout or when a session ended, with `error` saying which.
  bool wait_acked(const std::vector<size_t>& index, Clock::duration timeout, std::string& error) {
    std::unique_lock lock(mu_);
    bool done = cv_.wait_for(lock, timeout, [&] {
      if (!error_.empty()) return true;
      for (size_t p = 0; p < receipts_.size(); ++p)
        if (receipts_[p].size() <= index[p] || !receipts_[p].back().ack_sent) return false;
      return true;
    });
    if (!error_.empty()) {
      error = error_;
      return false;
    }
    if (!done) {
      size_t missing = 0;
      std::string first;
      for (size_t p = 0; p < receipts_.size(); ++p)
        if (receipts_[p].size() <= index[p] || !receipts_[p].back().ack_sent) {
          if (!missing++) first = pop_id(p);
          if (ended_[p] && error.empty()) error = pop_id(p) + ": session ended";
        }
      if (error.empty())
        error = std::to_string(missing) + " PoPs (first " + first + ") got no table in time";
      return false;
    }
    return true;
  }
  bool wait_ended(Clock::duration timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return std::all_of(ended_.begin(), ended_.end(), [](bool e) { return e; });
    });
  }
  std::vector<std::vector<Receipt>> receipts() {
    std::lock_guard lock(mu_);
    return receipts_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<Receipt>> receipts_;
  std::vector<bool> ended_;  // vector<bool>: only touched under mu_
  std::string error_;
};

// One PoP's session: Hello, then an ACK for every update, at once. gRPC
// allows one write in flight, so ACKs queue behind it; reads and writes may
// complete on different threads, hence the lock.
class SimPop final : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  SimPop(Fleet& fleet, size_t index, const std::string& target)
      : fleet_(fleet), index_(index), id_(pop_id(index)) {
    grpc::ChannelArguments args;
    // A connection of its own, as every real agent has.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    stub_ = v1::PopSessionService::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }

  void start() {
    ctx_.set_wait_for_ready(true);
    stub_->async()->Connect(&ctx_, this);
    v1::AgentMessage hello;
    v1::Hello* h = hello.mutable_hello();
    h->set_pop(id_);
    h->set_agent_version("sim-agents");
    h->mutable_tunnel_source()->set_ipv4("192.0.2." + std::to_string(1 + index_ % 254));
    enqueue(std::move(hello), kNoReceipt);
    StartRead(&in_);
    StartCall();
  }
  void stop() { ctx_.TryCancel(); }

  void OnReadDone(bool ok) override {
    auto now = Clock::now();
    if (!ok) return;  // the stream ended; OnDone follows
    if (in_.has_update()) {
      const v1::TableUpdate& u = in_.update();
      size_t receipt;
      fleet_.received(index_, u.version(), now, receipt);
      v1::AgentMessage ack;
      ack.mutable_ack()->set_version(u.version());
      ack.mutable_ack()->set_nonce(u.nonce());
      ack.mutable_ack()->set_ok(true);
      enqueue(std::move(ack), receipt);
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    auto now = Clock::now();
    size_t receipt;
    bool more;
    {
      std::lock_guard lock(mu_);
      receipt = receipts_.front();
      out_.pop_front();
      receipts_.pop_front();
      more = ok && !out_.empty();
    }
    if (ok && receipt != kNoReceipt) fleet_.ack_sent(index_, receipt, now);
    if (more) StartWrite(&out_.front());
  }

  void OnDone(const grpc::Status& s) override { fleet_.ended(index_, s); }

 private:
  static constexpr size_t kNoReceipt = ~size_t{0};

  void enqueue(v1::AgentMessage m, size_t receipt) {
    bool start;
    {
      std::lock_guard lock(mu_);
      out_.push_back(std::move(m));
      receipts_.push_back(receipt);
      start = out_.size() == 1;
    }
    // A deque keeps the front's address while others are pushed behind it.
    if (start) StartWrite(&out_.front());
  }

  Fleet& fleet_;
  const size_t index_;
  const std::string id_;
  std::unique_ptr<v1::PopSessionService::Stub> stub_;
  grpc::ClientContext ctx_;
  v1::ControllerMessage in_;
  std::mutex mu_;
  std::deque<v1::AgentMessage> out_;  // front: the write in flight
  std::deque<size_t> receipts_;       // the receipt each queued ACK answers
};

struct Options {
  std::string controller, admin, json;
  size_t pops = 10;
  int changes = 20;
  int gap_ms = 50;
  int write_seconds = 0;
};

// The change the driver makes: one endpoint's weight, alternating.
const char* kAccelerator = "bench";
const char* kListener = "http";
const char* kGroup = "eu";
const char* kEndpoint = "198.51.100.2";

std::string call_error(const char* what, const grpc::Status& s) {
  return std::string(what) + ": " + s.error_message() + " (code " +
         std::to_string(static_cast<int>(s.error_code())) + ")";
}

// Creates what the changes act on; what exists already is kept.
std::string set_up(v1::AdminService::Stub& admin) {
  auto call = [&](const char* what, auto method, const auto& req, auto* resp) -> std::string {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx.set_wait_for_ready(true);  // the controller may still be starting
    grpc::Status s = (admin.*method)(&ctx, req, resp);
    if (s.ok() || s.error_code() == grpc::StatusCode::ALREADY_EXISTS) return "";
    return call_error(what, s);
  };
  v1::Accelerator a;
  a.set_name(kAccelerator);
  a.set_enabled(true);
  a.add_vips("203.0.113.10");
  v1::Listener l;
  l.set_name(kListener);
  l.set_accelerator(kAccelerator);
  l.set_protocol(v1::TCP);
  l.add_port_ranges()->set_first(80);
  v1::EndpointGroup g;
  g.set_name(kGroup);
  g.set_accelerator(kAccelerator);
  g.set_listener(kListener);
  g.set_region("eu-central");
  std::string err;
  v1::Accelerator ar;
  v1::Listener lr;
  v1::EndpointGroup gr;
  if (!(err = call("create accelerator", &v1::AdminService::Stub::CreateAccelerator, a, &ar))
           .empty() ||
      !(err = call("create listener", &v1::AdminService::Stub::CreateListener, l, &lr)).empty() ||
      !(err = call("create endpoint group", &v1::AdminService::Stub::CreateEndpointGroup, g, &gr))
           .empty())
    return err;
  for (const char* addr : {"198.51.100.1", kEndpoint}) {
    v1::UpdateEndpointRequest req;
    v1::Endpoint& e = *req.mutable_endpoint();
    v1::Endpoint er;
    req.mutable_update_mask()->add_paths("weight");
    e.set_accelerator(kAccelerator);
    e.set_listener(kListener);
    e.set_endpoint_group(kGroup);
    e.set_address(addr);
    if (!(err = call("create endpoint", &v1::AdminService::Stub::CreateEndpoint, e, &er)).empty())
      return err;
  }
  return "";
}

// True once ListPops shows every PoP of `want` (id -> version) on it; with
// several replicas, each PoP as the replica it is connected to shows it.
bool recorded(const std::vector<std::unique_ptr<v1::AdminService::Stub>>& admins,
              const std::map<std::string, uint64_t>& want, std::string& error) {
  std::map<std::string, uint64_t> seen;
  for (const auto& admin : admins) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListPopsRequest req;
    v1::ListPopsResponse resp;
    grpc::Status s = admin->ListPops(&ctx, req, &resp);
    if (!s.ok()) {
      error = call_error("list PoPs", s);
      return false;
    }
    for (const v1::Pop& p : resp.pops())
      if (p.state() == v1::POP_CONNECTED)
        seen[p.id()] = std::max(seen[p.id()], static_cast<uint64_t>(p.applied_version()));
  }
  size_t on = 0;
  for (const auto& [id, version] : want)
    if (auto it = seen.find(id); it != seen.end() && it->second >= version) ++on;
  return on == want.size();
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= list.size()) {
    size_t comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    if (comma > at) out.push_back(list.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

struct Writes {
  int ok = 0, conflicts = 0, failed = 0;
  double seconds = 0;
};

// Two writers per replica, each changing the weight of an endpoint of its
// own, one call after another, for `seconds` (updates, so the configuration
// does not grow into the per-listener endpoint limit while it runs).
Writes sustained_writes(const std::vector<std::unique_ptr<v1::AdminService::Stub>>& admins,
                        int seconds) {
  std::mutex mu;
  Writes total;
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::seconds(seconds);
  std::vector<std::thread> writers;
  for (size_t w = 0; w < admins.size() * 2; ++w)
    writers.emplace_back([&, w] {
      v1::AdminService::Stub& admin = *admins[w % admins.size()];
      Writes mine;
      v1::Endpoint e, er;
      e.set_accelerator(kAccelerator);
      e.set_listener(kListener);
      e.set_endpoint_group(kGroup);
      e.set_address("10.100.0." + std::to_string(w + 1));
      {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        grpc::Status s = admin.CreateEndpoint(&ctx, e, &er);
        if (!s.ok()) {
          std::lock_guard lock(mu);
          ++total.failed;
          return;
        }
      }
      for (int i = 0; Clock::now() < end; ++i) {
        v1::UpdateEndpointRequest req;
        *req.mutable_endpoint() = e;
        req.mutable_endpoint()->set_weight(1 + i % 255);
        req.mutable_update_mask()->add_paths("weight");
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        grpc::Status s = admin.UpdateEndpoint(&ctx, req, &er);
        if (s.ok())
          ++mine.ok;
        else if (s.error_code() == grpc::StatusCode::ABORTED)
          ++mine.conflicts;
        else
          ++mine.failed;
      }
      std::lock_guard lock(mu);
      total.ok += mine.ok;
      total.conflicts += mine.conflicts;
      total.failed += mine.failed;
    });
  for (auto& t : writers) t.join();
  total.seconds = ms_between(t0, Clock::now()) / 1000;
  return total;
}

struct Figure {
  std::vector<double> samples;
  void add(double v) { samples.push_back(v); }
  double at(double q) {
    std::sort(samples.begin(), samples.end());
    if (samples.empty()) return 0;
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
    return samples[std::clamp<size_t>(rank, 1, samples.size()) - 1];
  }
  double median() {
    std::sort(samples.begin(), samples.end());
    size_t n = samples.size();
    if (!n) return 0;
    return n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  }
  std::string json() {
    char buf[128];
    std::snprintf(buf, sizeof buf, "{\"median\": %.3f, \"p99\": %.3f, \"max\": %.3f}", median(),
                  at(0.99), at(1.0));
    return buf;
  }
};

int run(const Options& o) {
  std::vector<std::unique_ptr<v1::AdminService::Stub>> admins;
  for (const std::string& a : split(o.admin))
    admins.push_back(
        v1::AdminService::NewStub(grpc::CreateChannel(a, grpc::InsecureChannelCredentials())));
  const std::vector<std::string> controllers = split(o.controller);
  if (admins.empty() || controllers.empty()) {
    std::fprintf(stderr, "sim-agents: no --admin or --controller address\n");
    return 2;
  }
  if (std::string err = set_up(*admins[0]); !err.empty()) {
    std::fprintf(stderr, "sim-agents: %s\n", err.c_str());
    return 1;
  }
  Fleet fleet;
  fleet.resize(o.pops);
  std::vector<std::unique_ptr<SimPop>> pops;
  for (size_t i = 0; i < o.pops; ++i)
    pops.push_back(std::make_unique<SimPop>(fleet, i, controllers[i % controllers.size()]));
  for (auto& p : pops) p->start();

  int rc = 0;
  std::string err;
  // The first table: every PoP connects with nothing applied.
  std::vector<size_t> next(o.pops, 0);
  if (!fleet.wait_acked(next, std::chrono::seconds(60), err)) {
    std::fprintf(stderr, "sim-agents: waiting for the first table: %s\n", err.c_str());
    rc = 1;
  }
  Figure admin_ms, first_ms, last_ms, each_ms, recorded_ms;
  for (int k = 0; rc == 0 && k < o.changes; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(o.gap_ms));
    auto before = fleet.receipts();
    for (size_t p = 0; p < o.pops; ++p) next[p] = before[p].size();
    v1::UpdateEndpointRequest req;
    v1::Endpoint& e = *req.mutable_endpoint();
    v1::Endpoint er;
    req.mutable_update_mask()->add_paths("weight");
    e.set_accelerator(kAccelerator);
    e.set_listener(kListener);
    e.set_endpoint_group(kGroup);
    e.set_address(kEndpoint);
    e.set_weight(k % 2 ? 200 : 60);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto t0 = Clock::now();
    grpc::Status s = admins[static_cast<size_t>(k) % admins.size()]->UpdateEndpoint(&ctx, req, &er);
    auto t_admin = Clock::now();
    if (!s.ok()) {
      std::fprintf(stderr, "sim-agents: %s\n", call_error("update endpoint", s).c_str());
      rc = 1;
      break;
    }
    if (!fleet.wait_acked(next, std::chrono::seconds(20), err)) {
      std::fprintf(stderr, "sim-agents: change %d: %s\n", k + 1, err.c_str());
      rc = 1;
      break;
    }
    auto after = fleet.receipts();
    std::map<std::string, uint64_t> want;
    Clock::time_point first = Clock::time_point::max(), last = t0;
    for (size_t p = 0; p < o.pops; ++p) {
      const Receipt& r = after[p][next[p]];
      // Only one update per change is expected; a second one would be the
      // controller pushing the same change twice.
      if (after[p].size() != next[p] + 1)
        std::fprintf(stderr, "sim-agents: change %d: %s got %zu updates\n", k + 1,
                     pop_id(p).c_str(), after[p].size() - next[p]);
      first = std::min(first, r.received);
      last = std::max(last, *r.ack_sent);
      each_ms.add(ms_between(t0, *r.ack_sent));
      want[pop_id(p)] = r.version;
    }
    Clock::time_point t_recorded;
    for (;;) {
      if (recorded(admins, want, err)) {
        t_recorded = Clock::now();
        break;
      }
      if (!err.empty() || Clock::now() - last > std::chrono::seconds(10)) {
        std::fprintf(stderr, "sim-agents: change %d: the controller did not record every ACK: %s\n",
                     k + 1, err.empty() ? "timed out" : err.c_str());
        rc = 1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    if (rc) break;
    admin_ms.add(ms_between(t0, t_admin));
    first_ms.add(ms_between(t0, first));
    last_ms.add(ms_between(t0, last));
    recorded_ms.add(ms_between(t0, t_recorded));
  }

  Writes writes;
  if (rc == 0 && o.write_seconds > 0) writes = sustained_writes(admins, o.write_seconds);

  for (auto& p : pops) p->stop();
  if (!fleet.wait_ended(std::chrono::seconds(10))) {
    // Reactors still referenced by gRPC must not be destroyed.
    std::fprintf(stderr, "sim-agents: sessions did not end\n");
    std::_Exit(1);
  }
  if (rc) return rc;

  std::string out =
      "{\"pops\": " + std::to_string(o.pops) + ", \"changes\": " + std::to_string(o.changes) +
      ", \"gap_ms\": " + std::to_string(o.gap_ms) + ", \"admin_ms\": " + admin_ms.json() +
      ", \"first_ms\": " + first_ms.json() + ", \"last_ms\": " + last_ms.json() +
      ", \"each_ms\": " + each_ms.json() + ", \"recorded_ms\": " + recorded_ms.json() +
      ", \"replicas\": " + std::to_string(admins.size());
  if (o.write_seconds > 0) {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  ", \"writes\": {\"seconds\": %.2f, \"ok\": %d, \"conflicts\": %d, \"failed\": "
                  "%d, \"per_s\": %.1f}",
                  writes.seconds, writes.ok, writes.conflicts, writes.failed,
                  writes.seconds > 0 ? writes.ok / writes.seconds : 0.0);
    out += buf;
  }
  out += "}\n";
  std::fputs(out.c_str(), stdout);
  if (!o.json.empty()) {
    FILE* f = std::fopen(o.json.c_str(), "w");
    if (!f || std::fputs(out.c_str(), f) < 0 || std::fclose(f) != 0) {
      std::fprintf(stderr, "sim-agents: --json: cannot write %s\n", o.json.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app(
      "Many simulated PoP sessions in one process, ACKing every table at once, and "
      "the driver that times configuration changes through them.",
      "sim-agents");
  app.add_option("--controller", o.controller,
                 "the controller's PoP API (plaintext), e.g. 127.0.0.1:7444; several replicas "
                 "(comma-separated): PoPs spread over them round robin")
      ->required();
  app.add_option("--admin", o.admin,
                 "its admin API (plaintext, no token); several: changes go through each in turn")
      ->required();
  app.add_option("--pops", o.pops, "simulated PoPs")
      ->capture_default_str()
      ->check(CLI::Range(1, 5000));
  app.add_option("--changes", o.changes, "timed changes")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--gap-ms", o.gap_ms, "pause before each change")
      ->capture_default_str()
      ->check(CLI::Range(0, 60000));
  app.add_option("--write-seconds", o.write_seconds,
                 "then change endpoint weights for S seconds, two writers per admin address "
                 "(0: not done)")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600));
  app.add_option("--json", o.json, "also write the figures there");
  CLI11_PARSE(app, argc, argv);
  return run(o);
}
