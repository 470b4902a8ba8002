// A PoP agent as the controller's tests need one: opens the session stream,
// says hello, and queues what the controller sends so a test can wait for
// an update with a timeout (or check that none comes).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "onramp/v1/pop_session.grpc.pb.h"

namespace onramp::ctl::test {

class FakeAgent {
 public:
  explicit FakeAgent(std::shared_ptr<grpc::Channel> channel)
      : stub_(onramp::v1::PopSessionService::NewStub(channel)) {
    stream_ = stub_->Connect(&ctx_);
    reader_ = std::thread([this] {
      onramp::v1::ControllerMessage m;
      while (stream_->Read(&m)) {
        std::lock_guard lock(mu_);
        updates_.push_back(m.update());
        cv_.notify_all();
      }
      std::lock_guard lock(mu_);
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~FakeAgent() {
    ctx_.TryCancel();
    if (reader_.joinable()) reader_.join();
    if (!finished_) stream_->Finish();
  }

  // `digest`: the content digest of the table `applied` names, as a real
  // agent reports it ("" when it cannot vouch for it).
  // `inputs`: the configuration version of the route inputs it keeps.
  bool hello(const std::string& pop, uint64_t applied = 0, const std::string& digest = "",
             uint64_t inputs = 0) {
    onramp::v1::AgentMessage m;
    auto* h = m.mutable_hello();
    h->set_pop(pop);
    h->set_iata(pop.substr(0, 3));
    h->set_city("Test");
    h->set_country("DE");
    h->mutable_tunnel_source()->set_ipv4(ipv4_);
    h->mutable_tunnel_source()->set_ipv6(ipv6_);
    h->set_agent_version("fake-agent");
    h->set_applied_version(applied);
    h->set_applied_digest(digest);
    h->set_route_inputs_version(inputs);
    h->set_host(host_);
    return stream_->Write(m);
  }
  // The host its hello names (Hello.host): one of several servers of a PoP.
  void set_host(const std::string& host) { host_ = host; }
  // The Hello's tunnel sources (192.0.2.1 and 2001:db8::1 unless set).
  void set_tunnel_source(const std::string& ipv4, const std::string& ipv6) {
    ipv4_ = ipv4;
    ipv6_ = ipv6;
  }
  bool ack(const onramp::v1::TableUpdate& u, bool ok = true, const std::string& error = "") {
    onramp::v1::AgentMessage m;
    auto* a = m.mutable_ack();
    a->set_version(u.version());
    a->set_nonce(u.nonce());
    a->set_ok(ok);
    a->set_error(error);
    a->set_apply_ms(1);
    return stream_->Write(m);
  }
  bool send(const onramp::v1::AgentMessage& m) { return stream_->Write(m); }

  // The next update, or nullopt when none came within `timeout`.
  std::optional<onramp::v1::TableUpdate> next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !updates_.empty() || ended_; });
    if (updates_.empty()) return std::nullopt;
    auto u = updates_.front();
    updates_.pop_front();
    return u;
  }
  // Waits for the stream to end and returns its status.
  grpc::Status finish(std::chrono::milliseconds timeout) {
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, timeout, [&] { return ended_; }))
        return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "stream did not end");
    }
    finished_ = true;
    return stream_->Finish();
  }
  bool ended() {
    std::lock_guard lock(mu_);
    return ended_;
  }

 private:
  std::unique_ptr<onramp::v1::PopSessionService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<onramp::v1::AgentMessage, onramp::v1::ControllerMessage>>
      stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<onramp::v1::TableUpdate> updates_;
  bool ended_ = false;
  bool finished_ = false;
  std::string host_;
  std::string ipv4_ = "192.0.2.1", ipv6_ = "2001:db8::1";
  std::thread reader_;
};

}  // namespace onramp::ctl::test
