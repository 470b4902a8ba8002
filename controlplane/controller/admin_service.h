// AdminService: what onrampctl speaks. CRUD of accelerators, listeners,
// endpoint groups and endpoints (validated at the boundary, each mutation one
// store commit; an update applies its field mask to the stored resource,
// conditional on its resource_version), and the controller's views: PoPs,
// routes, flow traces, stats, endpoint health. Every call is authenticated
// first (auth.h).
#pragma once

#include <functional>
#include <map>
#include <mutex>

#include "controlplane/controller/auth.h"
#include "controlplane/controller/config_store.h"
#include "controlplane/controller/pop_registry.h"
#include "controlplane/controller/validation.h"
#include "onramp/v1/admin.grpc.pb.h"

namespace onramp::ctl {

// The controller's listen addresses ("host:port", admin first, then PoP) as
// addresses refused for VIPs and endpoints: canonical address -> what it
// is. Wildcards and names reserve nothing.
std::map<std::string, std::string> own_listen_addresses(const std::vector<std::string>& listen);

class AdminService final : public v1::AdminService::CallbackService {
 public:
  // `on_commit` runs after every committed mutation (it schedules a push).
  // `own_addresses` are the controller's listen addresses ("host:port"):
  // like every PoP's tunnel sources, they are refused as VIPs and endpoints.
  AdminService(ConfigStore& store, PopRegistry& registry, const AdminAuth& auth,
               std::function<void()> on_commit, std::vector<std::string> own_addresses = {});

  using Reactor = grpc::ServerUnaryReactor;
  using Ctx = grpc::CallbackServerContext;

  Reactor* CreateAccelerator(Ctx*, const v1::Accelerator*, v1::Accelerator*) override;
  Reactor* GetAccelerator(Ctx*, const v1::AcceleratorKey*, v1::Accelerator*) override;
  Reactor* ListAccelerators(Ctx*, const v1::ListRequest*, v1::ListAcceleratorsResponse*) override;
  Reactor* UpdateAccelerator(Ctx*, const v1::UpdateAcceleratorRequest*, v1::Accelerator*) override;
  Reactor* DeleteAccelerator(Ctx*, const v1::AcceleratorKey*, v1::DeleteResponse*) override;

  Reactor* CreateListener(Ctx*, const v1::Listener*, v1::Listener*) override;
  Reactor* GetListener(Ctx*, const v1::ListenerKey*, v1::Listener*) override;
  Reactor* ListListeners(Ctx*, const v1::ListRequest*, v1::ListListenersResponse*) override;
  Reactor* UpdateListener(Ctx*, const v1::UpdateListenerRequest*, v1::Listener*) override;
  Reactor* DeleteListener(Ctx*, const v1::ListenerKey*, v1::DeleteResponse*) override;

  Reactor* CreateEndpointGroup(Ctx*, const v1::EndpointGroup*, v1::EndpointGroup*) override;
  Reactor* GetEndpointGroup(Ctx*, const v1::EndpointGroupKey*, v1::EndpointGroup*) override;
  Reactor* ListEndpointGroups(Ctx*, const v1::ListRequest*,
                              v1::ListEndpointGroupsResponse*) override;
  Reactor* UpdateEndpointGroup(Ctx*, const v1::UpdateEndpointGroupRequest*,
                               v1::EndpointGroup*) override;
  Reactor* DeleteEndpointGroup(Ctx*, const v1::EndpointGroupKey*, v1::DeleteResponse*) override;

  Reactor* CreateEndpoint(Ctx*, const v1::Endpoint*, v1::Endpoint*) override;
  Reactor* GetEndpoint(Ctx*, const v1::EndpointKey*, v1::Endpoint*) override;
  Reactor* ListEndpoints(Ctx*, const v1::ListRequest*, v1::ListEndpointsResponse*) override;
  Reactor* UpdateEndpoint(Ctx*, const v1::UpdateEndpointRequest*, v1::Endpoint*) override;
  Reactor* DeleteEndpoint(Ctx*, const v1::EndpointKey*, v1::DeleteResponse*) override;

  Reactor* ListPops(Ctx*, const v1::ListPopsRequest*, v1::ListPopsResponse*) override;
  Reactor* AdoptPop(Ctx*, const v1::AdoptPopRequest*, v1::AdoptPopResponse*) override;
  Reactor* GetRoutes(Ctx*, const v1::GetRoutesRequest*, v1::GetRoutesResponse*) override;
  Reactor* GetHealth(Ctx*, const v1::GetHealthRequest*, v1::GetHealthResponse*) override;
  Reactor* GetPopMatrix(Ctx*, const v1::GetPopMatrixRequest*, v1::GetPopMatrixResponse*) override;
  Reactor* TraceFlow(Ctx*, const v1::TraceFlowRequest*, v1::TraceFlowResponse*) override;
  Reactor* GetStats(Ctx*, const v1::GetStatsRequest*, v1::GetStatsResponse*) override;
  Reactor* GetVersion(Ctx*, const v1::GetVersionRequest*, v1::GetVersionResponse*) override;

 private:
  // Authenticates, runs `body`, finishes the call with its status.
  template <typename Body>
  Reactor* serve(Ctx* ctx, Body&& body);
  // serve() for a call that changes something: also writes one "audit" line
  // with the caller's identity, the method, the resource and the result.
  template <typename Body>
  Reactor* serve_mutation(Ctx* ctx, const std::string& method, const std::string& resource,
                          Body&& body);
  // Validates against the newest snapshot and commits what `build` puts in
  // the change; retried when another writer got in between. The committed
  // configuration version goes to `committed_version` when given.
  grpc::Status mutate(Ctx* ctx, const std::string& what,
                      const std::function<grpc::Status(const Config&, ConfigChange&)>& build,
                      uint64_t* committed_version = nullptr);

  // The CRUD calls, once for the four kinds; T is the resource (v1::Listener),
  // its ResourceKind (admin_service.cc) says how each kind differs.
  // Create (`mask` nullptr) or update (the fields `mask` names, all when it
  // is empty).
  template <typename T>
  Reactor* put(Ctx* ctx, const T& req, const google::protobuf::FieldMask* mask, T* resp,
               Mutation mutation);
  template <typename T, typename Key>
  Reactor* get(Ctx* ctx, const Key* req, T* resp);
  template <typename T, typename Response>
  Reactor* list(Ctx* ctx, const v1::ListRequest* req, Response* resp);
  template <typename T, typename Key>
  Reactor* remove(Ctx* ctx, const Key* req);

  ConfigStore& store_;
  PopRegistry& registry_;
  const AdminAuth& auth_;
  std::function<void()> on_commit_;
  // Canonical address -> what it is ("this controller's admin address").
  std::map<std::string, std::string> own_addresses_;
  // own_addresses_ and every PoP's tunnel sources, as now.
  std::map<std::string, std::string> reserved_addresses() const;
  std::mutex mutate_mu_;  // one mutation at a time: validate and commit as one step
};

}  // namespace onramp::ctl
