// The controller's gRPC side: two servers, the admin API (onrampctl, on
// loopback by default) and the PoP API (agents, mutual TLS), each with the
// gRPC health service and server reflection, wired to one PoP registry and
// one push scheduler over a ConfigStore.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "controlplane/common/server_tls.h"
#include "controlplane/controller/config_store.h"
#include "controlplane/controller/connection_guard.h"
#include "onramp/v1/admin.pb.h"

namespace grpc {
class Server;
class ServerCredentials;
}  // namespace grpc

namespace onramp::ctl {

class MeasurementExchange;

class ControllerMetrics;
class StatusServer;

struct ServerOptions {
  std::string admin_listen = "127.0.0.1:7443";
  std::string pop_listen = "0.0.0.0:7444";
  // Insecure, for loopback addresses only (tests, a laptop demo).
  bool plaintext = false;
  cp::ServerTlsFiles tls;
  std::vector<std::string> admin_tokens;  // bearer tokens accepted on the admin API
  // The status page's HTTP listener (status_server.h); "" serves none.
  std::string status_listen;
  std::chrono::milliseconds debounce{100};
  // Keepalive pings to agents; agents may ping every 5 s or slower.
  std::chrono::milliseconds keepalive_time{20000};
  std::chrono::milliseconds keepalive_timeout{10000};
  // Connection limits (docs/security.md): connections per peer and in total,
  // how long a TLS/HTTP/2 handshake may take, and how long a connection may
  // stay open with no call on it.
  ConnectionLimits limits;
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds idle_timeout{30000};
  // What the push scheduler's debounce runs on; tests pass a FakeClock and
  // call ControllerServer::clock_advanced() after moving it.
  const Clock* clock = &real_clock();
  // Where the PoP registry and the admin server count what /metrics shows;
  // null: nothing is counted. Outlives the server.
  ControllerMetrics* metrics = nullptr;
  // Where PoPs' measurements are shared with other replicas (etcd); null:
  // in process, for one controller. Outlives the server.
  MeasurementExchange* measurements = nullptr;
};

class ControllerServer {
 public:
  // Starts both servers, or says (naming the flag) why an address cannot be
  // served.
  static Result<std::unique_ptr<ControllerServer>> start(ConfigStore& store,
                                                         const ServerOptions& options);
  // The credential checks of start() alone (plaintext on loopback only,
  // certificate files readable): ok, or the problem naming the flag.
  static Status check(const ServerOptions& options);
  ~ControllerServer();

  // The ports bound (useful with port 0 in tests).
  int admin_port() const { return admin_port_; }
  int pop_port() const { return pop_port_; }
  // The status page's port; 0 when --status-listen is not given.
  int status_port() const;

  // Every PoP as ListPops shows it (for /metrics).
  v1::ListPopsResponse pops() const;

  // Ends every session, pushes what is pending and saves the PoP records.
  void shutdown();
  // ServerOptions::clock moved (a FakeClock): pushes that fell due go out.
  void clock_advanced();
  // Enforces the connection limits and rebuilds a listener that stopped
  // accepting; the main loop calls it every quarter second.
  void guard_connections();
  // Guards one more port of this process (the /metrics listener) under the
  // same limits; from the thread that calls guard_connections.
  void guard_port(int port);

 private:
  struct Parts;
  ControllerServer() = default;
  // The admin or PoP server on `address`, or null when it cannot listen.
  std::unique_ptr<grpc::Server> build_admin(const std::string& address, int* port);
  std::unique_ptr<grpc::Server> build_pop(const std::string& address, int* port);

  std::unique_ptr<Parts> parts_;

  ConfigStore* store_ = nullptr;  // followed for other replicas' commits while serving
  std::unique_ptr<grpc::Server> admin_server_;
  std::unique_ptr<grpc::Server> pop_server_;
  int admin_port_ = 0;
  int pop_port_ = 0;
  bool shut_down_ = false;
  ServerOptions options_;
  std::shared_ptr<grpc::ServerCredentials> admin_creds_;
  std::shared_ptr<grpc::ServerCredentials> pop_creds_;
  std::unique_ptr<ConnectionGuard> guard_;
  std::unique_ptr<StatusServer> status_server_;
};

}  // namespace onramp::ctl
