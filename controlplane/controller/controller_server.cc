#include "controlplane/controller/controller_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <mutex>

#include "common/grpc_limits.h"
#include "common/log.h"
#include "controlplane/controller/admin_service.h"
#include "controlplane/controller/auth.h"
#include "controlplane/controller/pop_registry.h"
#include "controlplane/controller/pop_session.h"
#include "controlplane/controller/push_scheduler.h"
#include "controlplane/routing/route_computer.h"

namespace onramp::ctl {

struct ControllerServer::Parts {
  Parts(ConfigStore& store, const ServerOptions& o)
      : registry(store, computer),
        auth(o.plaintext, o.admin_tokens),
        scheduler(registry, o.debounce, std::max(o.debounce * 10, std::chrono::milliseconds(1000)),
                  std::chrono::seconds(1), *o.clock),
        admin(store, registry, auth, [this] { scheduler.config_changed(); }),
        sessions(registry, o.plaintext) {}

  RouteComputer computer;
  PopRegistry registry;
  AdminAuth auth;
  PushScheduler scheduler;
  AdminService admin;
  PopSessionService sessions;
};

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
  server->parts_ = std::make_unique<Parts>(store, o);
  server->parts_->registry.load();

  grpc::ServerBuilder admin;
  admin.AddListeningPort(o.admin_listen, *admin_creds, &server->admin_port_);
  admin.RegisterService(&server->parts_->admin);
  limit_messages(admin);
  server->admin_server_ = admin.BuildAndStart();
  if (!server->admin_server_ || server->admin_port_ == 0) {
    server->parts_->scheduler.stop();
    return error("--admin-listen: cannot listen on " + o.admin_listen);
  }

  grpc::ServerBuilder pop;
  pop.AddListeningPort(o.pop_listen, *pop_creds, &server->pop_port_);
  pop.RegisterService(&server->parts_->sessions);
  limit_messages(pop);
  // Dead agents are found by keepalive, not by waiting for TCP to time out.
  pop.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(o.keepalive_time.count()));
  pop.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                         static_cast<int>(o.keepalive_timeout.count()));
  pop.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  pop.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  pop.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  server->pop_server_ = pop.BuildAndStart();
  if (!server->pop_server_ || server->pop_port_ == 0) {
    server->admin_server_->Shutdown();
    server->parts_->scheduler.stop();
    return error("--pop-listen: cannot listen on " + o.pop_listen);
  }
  for (grpc::Server* s : {server->admin_server_.get(), server->pop_server_.get()})
    if (auto* health = s->GetHealthCheckService()) health->SetServingStatus(true);
  if (auto* health = server->admin_server_->GetHealthCheckService())
    health->SetServingStatus("onramp.v1.AdminService", true);
  if (auto* health = server->pop_server_->GetHealthCheckService())
    health->SetServingStatus("onramp.v1.PopSessionService", true);
  log::info("serving", {{"admin_listen", o.admin_listen},
                        {"admin_port", server->admin_port_},
                        {"pop_listen", o.pop_listen},
                        {"pop_port", server->pop_port_},
                        {"transport", o.plaintext ? "plaintext" : "TLS"}});
  return server;
}

Status ControllerServer::check(const ServerOptions& o) {
  ONRAMP_RETURN_IF_ERROR(
      cp::server_credentials(o.admin_listen, o.tls, cp::ClientCertificates::optional, o.plaintext)
          .status());
  return cp::server_credentials(o.pop_listen, o.tls, cp::ClientCertificates::required, o.plaintext)
      .status();
}

ControllerServer::~ControllerServer() { shutdown(); }

void ControllerServer::clock_advanced() {
  if (parts_) parts_->scheduler.clock_advanced();
}

void ControllerServer::shutdown() {
  if (shut_down_ || !parts_) return;
  shut_down_ = true;
  // Streams never end on their own: give calls a moment, then cancel.
  auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(500);
  if (pop_server_) pop_server_->Shutdown(deadline);
  if (admin_server_) admin_server_->Shutdown(deadline);
  parts_->scheduler.stop();
}

}  // namespace onramp::ctl
