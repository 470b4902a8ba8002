// The agent's one long-lived stream to the controller
// (PopSessionService.Connect): Hello first, then table updates in and ACKs,
// status and probe reports out. When the stream cannot be opened, breaks or
// stalls, it is opened again to the next controller replica of the list
// after a jittered exponential backoff, for ever (replica_rotation.h); the
// dataplane keeps forwarding meanwhile (docs/agent.md "Controller replicas").
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
#include "controlplane/agent/replica_rotation.h"
#include "controlplane/common/controller_list.h"
#include "controlplane/common/tls.h"
#include "onramp/v1/pop_session.grpc.pb.h"

namespace onramp::agent {

struct SessionConfig {
  // The replicas, "host:port[,host:port...]" (cp::parse_controller_list).
  std::string controller;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // The client certificate in the credentials, if any: a session that ends
  // unreachable is checked for a controller that refuses it.
  cp::TlsFiles tls;
  Backoff::Options backoff;
  // HTTP/2 pings on the channel: a controller (or a path to it) that died
  // without closing the connection is noticed within time + timeout.
  std::chrono::milliseconds keepalive_time{10000};
  std::chrono::milliseconds keepalive_timeout{5000};
  // How long one TCP (and TLS) connection attempt to a replica may take
  // before the agent moves to the next: a replica whose address swallows
  // packets costs this, not gRPC's 20 s.
  std::chrono::milliseconds connect_timeout{5000};
  // How the host names of `controller` become addresses (tests fake it).
  cp::Resolver resolver = cp::system_resolver();
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
  // The replica of the current session or attempt, as the list names it.
  std::string controller() const;

 private:
  void run();
  // One stream to `replica`, from Connect to its end. True when it carried
  // anything from the controller.
  bool serve_once(const cp::Replica& replica, ReplicaRotation& rotation);

  std::unique_ptr<v1::PopSessionService::Stub> new_stub(const cp::Replica& replica) const;

  const SessionConfig config_;
  SessionHandler& handler_;

  // The stream in use: writes from the session thread (ACKs) and the watch
  // thread (status) are serialised by write_mu_.
  std::mutex write_mu_;
  grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>* stream_ = nullptr;

  mutable std::mutex mu_;  // guards context_, stopping_ and replica_
  std::condition_variable cv_;
  grpc::ClientContext* context_ = nullptr;
  bool stopping_ = false;
  std::string replica_;

  // Relaxed: flags for callers and tests, they order nothing.
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> sessions_{0};
  std::thread thread_;
};

}  // namespace onramp::agent
