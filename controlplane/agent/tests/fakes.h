// Test doubles for the agent: a dataplane that records what it was given,
// and an in-process controller (PopSessionService on loopback, plaintext)
// that records what agents send and pushes what a test tells it to.
#pragma once

#include <google/protobuf/text_format.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "controlplane/agent/agent.h"
#include "controlplane/agent/dataplane_client.h"
#include "onramp/v1/pop_session.grpc.pb.h"

namespace onramp::agent::test {

using namespace std::chrono_literals;

// FRA1's agent as the tests run it: its state in `state_dir`, short intervals.
inline AgentConfig fra1_agent_config(const std::string& state_dir) {
  return AgentConfig{
      .identity = {.pop = "FRA1",
                   .iata = "FRA",
                   .city = "Frankfurt",
                   .country = "DE",
                   .latitude = 50.03,
                   .longitude = 8.57},
      .tunnel_source_v4 = "192.0.2.1",
      .tunnel_source_v6 = "2001:db8:f1::1",
      .next_hop_mac = "02:00:00:00:00:fe",
      .state_dir = state_dir,
      .status_interval = 20ms,
      .agent_version = "test",
  };
}

// A table that passes validation once the agent has filled in its next hop.
inline v1::ForwardingTable sample_table(uint64_t version,
                                        const std::string& endpoint = "198.51.100.11") {
  v1::ForwardingTable t;
  google::protobuf::TextFormat::ParseFromString(R"(
      pop: "FRA1"
      listeners { name: "web" vips: "203.0.113.10" protocol: TCP port_ranges { first: 80 }
                  endpoints { address: "198.51.100.99" weight: 128 } })",
                                                &t);
  t.set_version(version);
  t.mutable_listeners(0)->mutable_endpoints(0)->set_address(endpoint);
  return t;
}

class FakeDataplane : public DataplaneClient {
 public:
  grpc::Status apply_table(const v1::ForwardingTable& table,
                           v1::ApplyTableResponse& response) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!up_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
    if (!reject_.ok()) return reject_;
    applied_.push_back(table);
    version_ = table.version();
    response.set_version(table.version());
    cv_.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status health(v1::DataplaneHealthResponse& response) override {
    std::function<void()> after;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++health_calls_;
      cv_.notify_all();
      if (!up_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
      response.set_healthy(healthy_);
      response.set_table_version(version_);
      response.set_pop("FRA1");
      after = std::exchange(after_health_, nullptr);
    }
    if (after) after();  // what happens between the answer and its reading
    return grpc::Status::OK;
  }
  // Runs once, after the next health answer is made and before it returns.
  void after_next_health(std::function<void()> f) {
    std::lock_guard<std::mutex> lock(mu_);
    after_health_ = std::move(f);
  }
  grpc::Status stats(v1::DataplaneStats& response) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!up_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
    uptime_ms_ += 1000;
    response.set_uptime_ms(uptime_ms_);
    response.set_table_version(version_);
    response.set_forwarded(42);
    return grpc::Status::OK;
  }

  // A new process that loaded a table file of `version`.
  void restart(uint64_t version) {
    std::lock_guard<std::mutex> lock(mu_);
    version_ = version;
    uptime_ms_ = 0;
    up_ = true;
  }
  void set_up(bool up) {
    std::lock_guard<std::mutex> lock(mu_);
    up_ = up;
  }
  // Answers, but says it cannot forward (ports down, say).
  void set_healthy(bool healthy) {
    std::lock_guard<std::mutex> lock(mu_);
    healthy_ = healthy;
  }
  void set_version(uint64_t v) {
    std::lock_guard<std::mutex> lock(mu_);
    version_ = v;
  }
  void reject(grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    reject_ = std::move(s);
  }
  std::vector<v1::ForwardingTable> applied() const {
    std::lock_guard<std::mutex> lock(mu_);
    return applied_;
  }
  uint64_t version() const {
    std::lock_guard<std::mutex> lock(mu_);
    return version_;
  }
  // Waits until the dataplane has been asked for its health `n` times (the
  // agent's status rounds), answered or not.
  bool wait_health_calls(uint64_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return health_calls_ >= n; });
  }
  // Waits until `n` tables have been applied.
  bool wait_applied(size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return applied_.size() >= n; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool up_ = true;
  bool healthy_ = true;
  uint64_t version_ = 0;
  uint64_t uptime_ms_ = 0;
  uint64_t health_calls_ = 0;
  grpc::Status reject_;
  std::vector<v1::ForwardingTable> applied_;
  std::function<void()> after_health_;
};

class FakeController final : public v1::PopSessionService::Service {
 public:
  grpc::Status Connect(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::ControllerMessage, v1::AgentMessage>* stream) override {
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      stream_ = stream;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++connections_;
    }
    v1::AgentMessage msg;
    while (stream->Read(&msg)) {
      std::lock_guard<std::mutex> lock(mu_);
      received_.push_back(msg);
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(write_mu_);
    stream_ = nullptr;
    return grpc::Status::OK;
  }

  bool send(const v1::ControllerMessage& msg) {
    std::lock_guard<std::mutex> lock(write_mu_);
    return stream_ && stream_->Write(msg);
  }
  bool send_update(uint64_t version, const std::string& nonce, const v1::ForwardingTable& table) {
    v1::ControllerMessage msg;
    v1::TableUpdate* u = msg.mutable_update();
    u->set_version(version);
    u->set_nonce(nonce);
    *u->mutable_table() = table;
    return send(msg);
  }
  bool has_stream() {
    std::lock_guard<std::mutex> lock(write_mu_);
    return stream_ != nullptr;
  }

  // The first message received since `from` (an index into everything
  // received) that `match` accepts, waiting up to `timeout`.
  std::optional<v1::AgentMessage> wait_for(
      const std::function<bool(const v1::AgentMessage&)>& match,
      std::chrono::milliseconds timeout = 5s, size_t from = 0) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<v1::AgentMessage> found;
    cv_.wait_for(lock, timeout, [&] {
      for (size_t i = from; i < received_.size(); ++i)
        if (match(received_[i])) {
          found = received_[i];
          return true;
        }
      return false;
    });
    return found;
  }
  size_t received_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_.size();
  }
  int connections() {
    std::lock_guard<std::mutex> lock(mu_);
    return connections_;
  }

 private:
  std::mutex write_mu_;
  grpc::ServerReaderWriter<v1::ControllerMessage, v1::AgentMessage>* stream_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::AgentMessage> received_;
  int connections_ = 0;
};

// A FakeController served on 127.0.0.1 (port 0 picks one).
class ControllerServer {
 public:
  explicit ControllerServer(int port = 0) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&controller);
    server_ = builder.BuildAndStart();
  }
  ~ControllerServer() { shutdown(); }
  void shutdown() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 200ms);
    server_.reset();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  bool ok() const { return server_ != nullptr && port_ != 0; }

  FakeController controller;

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// A temporary folder, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/onramp-agent-test-XXXXXX";
    path = mkdtemp(name);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

}  // namespace onramp::agent::test
