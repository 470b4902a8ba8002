// The agent's one long-lived stream to the controller
// (PopSessionService.Connect): Hello first, then table updates in and ACKs,
// status and probe reports out. When the stream cannot be opened or breaks,
// it is opened again after a jittered exponential backoff, for ever; the
// dataplane keeps forwarding meanwhile (docs/design.md "Control protocol").
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "controlplane/agent/agent.h"
#include "controlplane/agent/backoff.h"
#include "controlplane/common/tls.h"
#include "onramp/v1/pop_session.grpc.pb.h"

namespace onramp::agent {

struct SessionConfig {
  std::string controller;  // "host:port"
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // The client certificate in the credentials, if any: a session that ends
  // unreachable is checked for a controller that refuses it.
  cp::TlsFiles tls;
  Backoff::Options backoff;
  // HTTP/2 pings on the channel: a controller (or a path to it) that died
  // without closing the connection is noticed within time + timeout.
  std::chrono::milliseconds keepalive_time{10000};
  std::chrono::milliseconds keepalive_timeout{5000};
};

class ControllerSession {
 public:
  ControllerSession(SessionConfig config, SessionHandler& handler);
  ~ControllerSession();
  ControllerSession(const ControllerSession&) = delete;
  ControllerSession& operator=(const ControllerSession&) = delete;

  void start();
  // Cancels the stream and waits for the session thread.
  void stop();

  // Sends on the current stream; false when there is none (the message is
  // dropped: status is sent again next interval, and the next Hello carries
  // the applied version).
  bool send(const v1::AgentMessage& msg);
  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  // Sessions opened so far (Hello sent), for tests and logs.
  uint64_t sessions() const { return sessions_.load(std::memory_order_relaxed); }

 private:
  void run();
  // One stream, from Connect to its end. True when it carried anything from
  // the controller or lasted long enough to count as having worked.
  bool serve_once();

  std::unique_ptr<v1::PopSessionService::Stub> new_stub() const;

  const SessionConfig config_;
  SessionHandler& handler_;

  // The stream in use: writes from the session thread (ACKs) and the watch
  // thread (status) are serialised by write_mu_.
  std::mutex write_mu_;
  grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>* stream_ = nullptr;

  std::mutex mu_;  // guards context_ and stopping_
  std::condition_variable cv_;
  grpc::ClientContext* context_ = nullptr;
  bool stopping_ = false;

  // Relaxed: flags for callers and tests, they order nothing.
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> sessions_{0};
  std::thread thread_;
};

}  // namespace onramp::agent
