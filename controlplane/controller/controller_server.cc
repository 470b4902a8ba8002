#include "controlplane/controller/controller_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <mutex>

#include "common/grpc_limits.h"
#include "common/log.h"
#include "controlplane/common/client_certificate.h"
#include "controlplane/controller/admin_service.h"
#include "controlplane/controller/auth.h"
#include "controlplane/controller/controller_metrics.h"
#include "controlplane/controller/pop_registry.h"
#include "controlplane/controller/pop_session.h"
#include "controlplane/controller/push_scheduler.h"
#include "controlplane/controller/status_board.h"
#include "controlplane/controller/status_server.h"
#include "controlplane/routing/route_computer.h"

namespace onramp::ctl {

// Calls one connection may carry at once: onrampctl makes one at a time, an
// agent holds one session.
constexpr int kAdminStreamsPerConnection = 16;
constexpr int kPopStreamsPerConnection = 4;

struct ControllerServer::Parts {
  Parts(ConfigStore& store, const ServerOptions& o)
      : registry(store, computer),
        auth(o.plaintext, o.admin_tokens),
        scheduler(registry, o.debounce, std::max(o.debounce * 10, std::chrono::milliseconds(1000)),
                  std::chrono::seconds(1), *o.clock),
        admin(store, registry, auth, [this] { scheduler.config_changed(); },
              {o.admin_listen, o.pop_listen}),
        sessions(registry, o.plaintext),
        board(store, registry) {
    registry.set_metrics(o.metrics);
  }

  RouteComputer computer;
  PopRegistry registry;
  AdminAuth auth;
  PushScheduler scheduler;
  AdminService admin;
  PopSessionService sessions;
  StatusBoard board;
};

namespace {

StatusOptions status_options(const ServerOptions& o) {
  return {.listen = o.status_listen,
          .plaintext = o.plaintext,
          .tls = o.tls,
          .tokens = !o.admin_tokens.empty()};
}

}  // namespace

namespace {

// Limits every connection of either port shares (docs/security.md).
void limit_connections(grpc::ServerBuilder& b, const ServerOptions& o, int streams) {
  limit_messages(b);
  b.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                       static_cast<int>(o.handshake_timeout.count()));
  b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, static_cast<int>(o.idle_timeout.count()));
  b.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, streams);
}

// "host:port" with the port replaced: a rebuilt listener keeps the port the
// first one bound (which differs from the option when that asked for 0).
std::string with_port(const std::string& address, int port) {
  return address.substr(0, address.rfind(':') + 1) + std::to_string(port);
}

}  // namespace

std::unique_ptr<grpc::Server> ControllerServer::build_admin(const std::string& address, int* port) {
  grpc::ServerBuilder admin;
  admin.AddListeningPort(address, admin_creds_, port);
  admin.RegisterService(&parts_->admin);
  if (options_.metrics) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(options_.metrics->admin_interceptor());
    admin.experimental().SetInterceptorCreators(std::move(creators));
  }
  limit_connections(admin, options_, kAdminStreamsPerConnection);
  auto server = admin.BuildAndStart();
  if (!server || *port == 0) return nullptr;
  if (auto* health = server->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus("onramp.v1.AdminService", true);
  }
  return server;
}

std::unique_ptr<grpc::Server> ControllerServer::build_pop(const std::string& address, int* port) {
  grpc::ServerBuilder pop;
  pop.AddListeningPort(address, pop_creds_, port);
  pop.RegisterService(&parts_->sessions);
  limit_connections(pop, options_, kPopStreamsPerConnection);
  // Dead agents are found by keepalive, not by waiting for TCP to time out.
  pop.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                         static_cast<int>(options_.keepalive_time.count()));
  pop.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                         static_cast<int>(options_.keepalive_timeout.count()));
  pop.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  pop.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  pop.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  auto server = pop.BuildAndStart();
  if (!server || *port == 0) return nullptr;
  if (auto* health = server->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus("onramp.v1.PopSessionService", true);
  }
  return server;
}

Result<std::unique_ptr<ControllerServer>> ControllerServer::start(ConfigStore& store,
                                                                  const ServerOptions& o) {
  auto admin_creds =
      cp::server_credentials(o.admin_listen, o.tls, cp::ClientCertificates::optional, o.plaintext);
  if (!admin_creds.ok()) return admin_creds.status();
  auto pop_creds =
      cp::server_credentials(o.pop_listen, o.tls, cp::ClientCertificates::required, o.plaintext);
  if (!pop_creds.ok()) return pop_creds.status();

  // Both are process-wide switches that apply to servers built afterwards.
  static std::once_flag once;
  std::call_once(once, [] {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  });

  std::unique_ptr<ControllerServer> server(new ControllerServer());
  server->options_ = o;
  server->admin_creds_ = *admin_creds;
  server->pop_creds_ = *pop_creds;
  server->parts_ = std::make_unique<Parts>(store, o);
  server->parts_->registry.load();
  if (o.measurements) server->parts_->registry.set_measurements(o.measurements);

  server->admin_server_ = server->build_admin(o.admin_listen, &server->admin_port_);
  if (!server->admin_server_) {
    server->parts_->scheduler.stop();
    return error("--admin-listen: cannot listen on " + o.admin_listen);
  }
  server->pop_server_ = server->build_pop(o.pop_listen, &server->pop_port_);
  if (!server->pop_server_) {
    server->admin_server_->Shutdown();
    server->parts_->scheduler.stop();
    return error("--pop-listen: cannot listen on " + o.pop_listen);
  }
  if (!o.status_listen.empty()) {
    auto status =
        StatusServer::start(status_options(o), server->parts_->auth, server->parts_->board);
    if (!status.ok()) {
      server->shutdown();
      return status.status();
    }
    server->status_server_ = std::move(*status);
  }
  // Another replica's commit (etcd) pushes as one of ours does.
  server->store_ = &store;
  store.follow([parts = server->parts_.get()] { parts->scheduler.config_changed(); });
  // The status page's port counts too: its few threads and an unbounded
  // queue of accepted sockets would otherwise let one peer take descriptors
  // the gRPC ports need.
  std::vector<int> guarded{server->admin_port_, server->pop_port_};
  if (server->status_server_) guarded.push_back(server->status_server_->port());
  server->guard_ = std::make_unique<ConnectionGuard>(o.limits, std::move(guarded));
  // A connection whose client certificate was refused is closed at the next
  // sweep: it keeps nothing open on the controller (docs/security.md).
  if (!o.plaintext)
    server->guard_->close_also([] { return cp::connections_with_refused_certificates(); });
  log::info("serving", {{"admin_listen", o.admin_listen},
                        {"admin_port", server->admin_port_},
                        {"pop_listen", o.pop_listen},
                        {"pop_port", server->pop_port_},
                        {"transport", o.plaintext ? "plaintext" : "TLS"}});
  return server;
}

void ControllerServer::guard_port(int port) {
  if (guard_) guard_->add_port(port);
}

void ControllerServer::guard_connections() {
  if (shut_down_ || !guard_) return;
  ConnectionGuard::Sweep s = guard_->sweep(ConnectionGuard::Clock::now());
  if (s.refused > 0)
    log::warn("closed connections whose client certificate was refused", {{"closed", s.refused}});
  if (s.closed > 0)
    log::warn("closed connections over the limits", {{"closed", s.closed},
                                                     {"connections", s.connections},
                                                     {"per_peer_limit", options_.limits.per_peer},
                                                     {"total_limit", options_.limits.total}});
  for (bool admin : {true, false}) {
    std::unique_ptr<grpc::Server>& slot = admin ? admin_server_ : pop_server_;
    int* bound = admin ? &admin_port_ : &pop_port_;
    bool stuck = std::find(s.stuck.begin(), s.stuck.end(), *bound) != s.stuck.end();
    if (slot && !stuck) continue;
    // gRPC stops accepting on a port for good after accept() fails (out of
    // descriptors): serve the port again from a new server. Its calls end;
    // agents reconnect with backoff.
    if (slot) {
      log::error("listener stopped accepting; serving the port from a new server",
                 {{"port", *bound}, {"api", admin ? "admin" : "pop"}});
      slot->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
      slot.reset();
    }
    const std::string& listen = admin ? options_.admin_listen : options_.pop_listen;
    int again = 0;
    slot = admin ? build_admin(with_port(listen, *bound), &again)
                 : build_pop(with_port(listen, *bound), &again);
    // Out of descriptors still: the next sweep tries again. Until then the
    // port refuses connections rather than queueing them.
    if (!slot) log::error("cannot listen again yet", {{"port", *bound}});
  }
}

Status ControllerServer::check(const ServerOptions& o) {
  ONRAMP_RETURN_IF_ERROR(
      cp::server_credentials(o.admin_listen, o.tls, cp::ClientCertificates::optional, o.plaintext)
          .status());
  ONRAMP_RETURN_IF_ERROR(
      cp::server_credentials(o.pop_listen, o.tls, cp::ClientCertificates::required, o.plaintext)
          .status());
  return StatusServer::check(status_options(o));
}

ControllerServer::~ControllerServer() { shutdown(); }

int ControllerServer::status_port() const { return status_server_ ? status_server_->port() : 0; }

void ControllerServer::clock_advanced() {
  if (parts_) parts_->scheduler.clock_advanced();
}

v1::ListPopsResponse ControllerServer::pops() const { return parts_->registry.list_pops(); }

void ControllerServer::shutdown() {
  if (shut_down_ || !parts_) return;
  shut_down_ = true;
  status_server_.reset();  // reads the registry: gone before it stops
  if (store_) store_->follow({});
  // Streams never end on their own: give calls a moment, then cancel.
  auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(500);
  if (pop_server_) pop_server_->Shutdown(deadline);
  if (admin_server_) admin_server_->Shutdown(deadline);
  parts_->scheduler.stop();
}

}  // namespace onramp::ctl
