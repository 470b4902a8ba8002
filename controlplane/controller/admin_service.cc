#include "controlplane/controller/admin_service.h"

#include "controlplane/controller/log.h"
#include "controlplane/controller/table_check.h"
#include "controlplane/controller/validation.h"
#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/trace.h"

namespace onramp::ctl {
namespace {

using grpc::Status;
using grpc::StatusCode;

Status invalid(const std::string& m) { return Status(StatusCode::INVALID_ARGUMENT, m); }

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// Key fields of Get and Delete requests: malformed names can never exist.
Status check_names(std::initializer_list<std::pair<const char*, const std::string*>> fields) {
  for (const auto& [field, value] : fields)
    if (auto p = check_name(field, *value); !p.empty()) return invalid(p);
  return Status::OK;
}

Status canonical_key_address(const std::string& text, std::string& out) {
  auto a = canonical_address(text);
  if (!a) return invalid("address: " + quoted(text) + " is not an IPv4 or IPv6 address");
  out = *a;
  return Status::OK;
}

template <typename T>
const T* find(const std::map<std::string, T>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

bool matches(const std::string& filter, const std::string& value) {
  return filter.empty() || filter == value;
}

// Sets the controller-owned times: creation stays, update is now.
template <typename T>
void stamp(T& out, const T* existing) {
  int64_t now = now_ms();
  out.set_create_time_ms(existing ? existing->create_time_ms() : now);
  out.set_update_time_ms(now);
}

}  // namespace

AdminService::AdminService(ConfigStore& store, PopRegistry& registry, const AdminAuth& auth,
                           std::function<void()> on_commit)
    : store_(store), registry_(registry), auth_(auth), on_commit_(std::move(on_commit)) {}

template <typename Body>
AdminService::Reactor* AdminService::serve(Ctx* ctx, Body&& body) {
  Reactor* reactor = ctx->DefaultReactor();
  Status s = auth_.check(*ctx);
  if (s.ok()) s = body();
  reactor->Finish(s);
  return reactor;
}

Status AdminService::mutate(Ctx* ctx, const std::string& what,
                            const std::function<Status(const Config&, ConfigChange&)>& build) {
  std::lock_guard lock(mutate_mu_);
  for (int attempt = 0;; ++attempt) {
    auto config = store_.snapshot();
    ConfigChange change;
    if (Status s = build(*config, change); !s.ok()) return s;
    CommitResult r = store_.commit(change, config->version);
    if (r.outcome == CommitResult::Outcome::committed) {
      log(LogLevel::info, "admin " + ctx->peer() + ": " + what + "; configuration version " +
                              std::to_string(r.config->version));
      if (on_commit_) on_commit_();
      return Status::OK;
    }
    if (r.outcome == CommitResult::Outcome::failed) {
      log(LogLevel::error, "admin " + ctx->peer() + ": " + what + " not saved: " + r.error);
      return Status(StatusCode::INTERNAL, r.error);
    }
    // Conflict: the registry bumped the version meanwhile; validate again.
    if (attempt == 3) return Status(StatusCode::ABORTED, r.error);
  }
}

// ---- accelerators ----

AdminService::Reactor* AdminService::CreateAccelerator(Ctx* ctx, const v1::Accelerator* req,
                                                       v1::Accelerator* resp) {
  return serve(ctx, [&] {
    return mutate(ctx, "created accelerator " + quoted(req->name()),
                  [&](const Config& c, ConfigChange& ch) {
                    v1::Accelerator out;
                    if (Status s = validate_accelerator(c, *req, Mutation::create, out); !s.ok())
                      return s;
                    stamp(out, static_cast<const v1::Accelerator*>(nullptr));
                    ch.puts.push_back(out);
                    *resp = out;
                    return Status::OK;
                  });
  });
}

AdminService::Reactor* AdminService::UpdateAccelerator(Ctx* ctx, const v1::Accelerator* req,
                                                       v1::Accelerator* resp) {
  return serve(ctx, [&] {
    return mutate(ctx, "updated accelerator " + quoted(req->name()),
                  [&](const Config& c, ConfigChange& ch) {
                    v1::Accelerator out;
                    if (Status s = validate_accelerator(c, *req, Mutation::update, out); !s.ok())
                      return s;
                    stamp(out, find(c.accelerators, key_of(out)));
                    ch.puts.push_back(out);
                    *resp = out;
                    return Status::OK;
                  });
  });
}

AdminService::Reactor* AdminService::GetAccelerator(Ctx* ctx, const v1::AcceleratorKey* req,
                                                    v1::Accelerator* resp) {
  return serve(ctx, [&] {
    if (Status s = check_names({{"name", &req->name()}}); !s.ok()) return s;
    auto c = store_.snapshot();
    const v1::Accelerator* a = find(c->accelerators, accelerator_key(req->name()));
    if (!a) return Status(StatusCode::NOT_FOUND, "name: no accelerator " + quoted(req->name()));
    *resp = *a;
    return Status::OK;
  });
}

AdminService::Reactor* AdminService::ListAccelerators(Ctx* ctx, const v1::ListRequest* req,
                                                      v1::ListAcceleratorsResponse* resp) {
  return serve(ctx, [&] {
    auto c = store_.snapshot();
    for (const auto& [k, a] : c->accelerators)
      if (matches(req->accelerator(), a.name())) *resp->add_accelerators() = a;
    return Status::OK;
  });
}

AdminService::Reactor* AdminService::DeleteAccelerator(Ctx* ctx, const v1::AcceleratorKey* req,
                                                       v1::DeleteResponse*) {
  return serve(ctx, [&] {
    if (Status s = check_names({{"name", &req->name()}}); !s.ok()) return s;
    return mutate(ctx, "deleted accelerator " + quoted(req->name()),
                  [&](const Config& c, ConfigChange& ch) {
                    if (Status s = check_delete_accelerator(c, req->name()); !s.ok()) return s;
                    v1::Accelerator key;
                    key.set_name(req->name());
                    ch.erasures.push_back(key);
                    return Status::OK;
                  });
  });
}

// ---- listeners ----

AdminService::Reactor* AdminService::CreateListener(Ctx* ctx, const v1::Listener* req,
                                                    v1::Listener* resp) {
  return serve(ctx, [&] {
    return mutate(
        ctx,
        "created listener " + quoted(req->name()) + " of accelerator " + quoted(req->accelerator()),
        [&](const Config& c, ConfigChange& ch) {
          v1::Listener out;
          if (Status s = validate_listener(c, *req, Mutation::create, out); !s.ok()) return s;
          stamp(out, static_cast<const v1::Listener*>(nullptr));
          ch.puts.push_back(out);
          *resp = out;
          return Status::OK;
        });
  });
}

AdminService::Reactor* AdminService::UpdateListener(Ctx* ctx, const v1::Listener* req,
                                                    v1::Listener* resp) {
  return serve(ctx, [&] {
    return mutate(
        ctx,
        "updated listener " + quoted(req->name()) + " of accelerator " + quoted(req->accelerator()),
        [&](const Config& c, ConfigChange& ch) {
          v1::Listener out;
          if (Status s = validate_listener(c, *req, Mutation::update, out); !s.ok()) return s;
          stamp(out, find(c.listeners, key_of(out)));
          ch.puts.push_back(out);
          *resp = out;
          return Status::OK;
        });
  });
}

AdminService::Reactor* AdminService::GetListener(Ctx* ctx, const v1::ListenerKey* req,
                                                 v1::Listener* resp) {
  return serve(ctx, [&] {
    if (Status s = check_names({{"accelerator", &req->accelerator()}, {"name", &req->name()}});
        !s.ok())
      return s;
    auto c = store_.snapshot();
    const v1::Listener* l = find(c->listeners, listener_key(req->accelerator(), req->name()));
    if (!l)
      return Status(StatusCode::NOT_FOUND, "name: no listener " + quoted(req->name()) +
                                               " in accelerator " + quoted(req->accelerator()));
    *resp = *l;
    return Status::OK;
  });
}

AdminService::Reactor* AdminService::ListListeners(Ctx* ctx, const v1::ListRequest* req,
                                                   v1::ListListenersResponse* resp) {
  return serve(ctx, [&] {
    auto c = store_.snapshot();
    for (const auto& [k, l] : c->listeners)
      if (matches(req->accelerator(), l.accelerator()) && matches(req->listener(), l.name()))
        *resp->add_listeners() = l;
    return Status::OK;
  });
}

AdminService::Reactor* AdminService::DeleteListener(Ctx* ctx, const v1::ListenerKey* req,
                                                    v1::DeleteResponse*) {
  return serve(ctx, [&] {
    if (Status s = check_names({{"accelerator", &req->accelerator()}, {"name", &req->name()}});
        !s.ok())
      return s;
    return mutate(
        ctx,
        "deleted listener " + quoted(req->name()) + " of accelerator " + quoted(req->accelerator()),
        [&](const Config& c, ConfigChange& ch) {
          if (Status s = check_delete_listener(c, req->accelerator(), req->name()); !s.ok())
            return s;
          v1::Listener key;
          key.set_accelerator(req->accelerator());
          key.set_name(req->name());
          ch.erasures.push_back(key);
          return Status::OK;
        });
  });
}

// ---- endpoint groups ----

AdminService::Reactor* AdminService::CreateEndpointGroup(Ctx* ctx, const v1::EndpointGroup* req,
                                                         v1::EndpointGroup* resp) {
  return serve(ctx, [&] {
    return mutate(ctx,
                  "created endpoint group " + quoted(req->name()) + " of listener " +
                      quoted(req->accelerator() + "/" + req->listener()),
                  [&](const Config& c, ConfigChange& ch) {
                    v1::EndpointGroup out;
                    if (Status s = validate_endpoint_group(c, *req, Mutation::create, out); !s.ok())
                      return s;
                    stamp(out, static_cast<const v1::EndpointGroup*>(nullptr));
                    ch.puts.push_back(out);
                    *resp = out;
                    return Status::OK;
                  });
  });
}

AdminService::Reactor* AdminService::UpdateEndpointGroup(Ctx* ctx, const v1::EndpointGroup* req,
                                                         v1::EndpointGroup* resp) {
  return serve(ctx, [&] {
    return mutate(ctx,
                  "updated endpoint group " + quoted(req->name()) + " of listener " +
                      quoted(req->accelerator() + "/" + req->listener()),
                  [&](const Config& c, ConfigChange& ch) {
                    v1::EndpointGroup out;
                    if (Status s = validate_endpoint_group(c, *req, Mutation::update, out); !s.ok())
                      return s;
                    stamp(out, find(c.groups, key_of(out)));
                    ch.puts.push_back(out);
                    *resp = out;
                    return Status::OK;
                  });
  });
}

AdminService::Reactor* AdminService::GetEndpointGroup(Ctx* ctx, const v1::EndpointGroupKey* req,
                                                      v1::EndpointGroup* resp) {
  return serve(ctx, [&] {
    if (Status s = check_names({{"accelerator", &req->accelerator()},
                                {"listener", &req->listener()},
                                {"name", &req->name()}});
        !s.ok())
      return s;
    auto c = store_.snapshot();
    const v1::EndpointGroup* g =
        find(c->groups, group_key(req->accelerator(), req->listener(), req->name()));
    if (!g)
      return Status(StatusCode::NOT_FOUND, "name: no endpoint group " + quoted(req->name()) +
                                               " in listener " + quoted(req->listener()));
    *resp = *g;
    return Status::OK;
  });
}

AdminService::Reactor* AdminService::ListEndpointGroups(Ctx* ctx, const v1::ListRequest* req,
                                                        v1::ListEndpointGroupsResponse* resp) {
  return serve(ctx, [&] {
    auto c = store_.snapshot();
    for (const auto& [k, g] : c->groups)
      if (matches(req->accelerator(), g.accelerator()) && matches(req->listener(), g.listener()) &&
          matches(req->endpoint_group(), g.name()))
        *resp->add_endpoint_groups() = g;
    return Status::OK;
  });
}

AdminService::Reactor* AdminService::DeleteEndpointGroup(Ctx* ctx, const v1::EndpointGroupKey* req,
                                                         v1::DeleteResponse*) {
  return serve(ctx, [&] {
    if (Status s = check_names({{"accelerator", &req->accelerator()},
                                {"listener", &req->listener()},
                                {"name", &req->name()}});
        !s.ok())
      return s;
    return mutate(ctx,
                  "deleted endpoint group " + quoted(req->name()) + " of listener " +
                      quoted(req->accelerator() + "/" + req->listener()),
                  [&](const Config& c, ConfigChange& ch) {
                    if (Status s = check_delete_endpoint_group(c, req->accelerator(),
                                                               req->listener(), req->name());
                        !s.ok())
                      return s;
                    v1::EndpointGroup key;
                    key.set_accelerator(req->accelerator());
                    key.set_listener(req->listener());
                    key.set_name(req->name());
                    ch.erasures.push_back(key);
                    return Status::OK;
                  });
  });
}

// ---- endpoints ----

AdminService::Reactor* AdminService::CreateEndpoint(Ctx* ctx, const v1::Endpoint* req,
                                                    v1::Endpoint* resp) {
  return serve(ctx, [&] {
    return mutate(
        ctx,
        "created endpoint " + req->address() + " in endpoint group " +
            quoted(req->accelerator() + "/" + req->listener() + "/" + req->endpoint_group()),
        [&](const Config& c, ConfigChange& ch) {
          v1::Endpoint out;
          if (Status s = validate_endpoint(c, *req, Mutation::create, out); !s.ok()) return s;
          stamp(out, static_cast<const v1::Endpoint*>(nullptr));
          ch.puts.push_back(out);
          *resp = out;
          return Status::OK;
        });
  });
}

AdminService::Reactor* AdminService::UpdateEndpoint(Ctx* ctx, const v1::Endpoint* req,
                                                    v1::Endpoint* resp) {
  return serve(ctx, [&] {
    return mutate(
        ctx,
        "updated endpoint " + req->address() + " in endpoint group " +
            quoted(req->accelerator() + "/" + req->listener() + "/" + req->endpoint_group()),
        [&](const Config& c, ConfigChange& ch) {
          v1::Endpoint out;
          if (Status s = validate_endpoint(c, *req, Mutation::update, out); !s.ok()) return s;
          stamp(out, find(c.endpoints, key_of(out)));
          ch.puts.push_back(out);
          *resp = out;
          return Status::OK;
        });
  });
}

AdminService::Reactor* AdminService::GetEndpoint(Ctx* ctx, const v1::EndpointKey* req,
                                                 v1::Endpoint* resp) {
  return serve(ctx, [&] {
    if (Status s = check_names({{"accelerator", &req->accelerator()},
                                {"listener", &req->listener()},
                                {"endpoint_group", &req->endpoint_group()}});
        !s.ok())
      return s;
    std::string address;
    if (Status s = canonical_key_address(req->address(), address); !s.ok()) return s;
    auto c = store_.snapshot();
    const v1::Endpoint* e = find(c->endpoints, endpoint_key(req->accelerator(), req->listener(),
                                                            req->endpoint_group(), address));
    if (!e)
      return Status(StatusCode::NOT_FOUND, "address: " + address + " is not in endpoint group " +
                                               quoted(req->endpoint_group()));
    *resp = *e;
    return Status::OK;
  });
}

AdminService::Reactor* AdminService::ListEndpoints(Ctx* ctx, const v1::ListRequest* req,
                                                   v1::ListEndpointsResponse* resp) {
  return serve(ctx, [&] {
    auto c = store_.snapshot();
    for (const auto& [k, e] : c->endpoints)
      if (matches(req->accelerator(), e.accelerator()) && matches(req->listener(), e.listener()) &&
          matches(req->endpoint_group(), e.endpoint_group()))
        *resp->add_endpoints() = e;
    return Status::OK;
  });
}

AdminService::Reactor* AdminService::DeleteEndpoint(Ctx* ctx, const v1::EndpointKey* req,
                                                    v1::DeleteResponse*) {
  return serve(ctx, [&] {
    if (Status s = check_names({{"accelerator", &req->accelerator()},
                                {"listener", &req->listener()},
                                {"endpoint_group", &req->endpoint_group()}});
        !s.ok())
      return s;
    std::string address;
    if (Status s = canonical_key_address(req->address(), address); !s.ok()) return s;
    return mutate(
        ctx,
        "deleted endpoint " + address + " from endpoint group " +
            quoted(req->accelerator() + "/" + req->listener() + "/" + req->endpoint_group()),
        [&](const Config& c, ConfigChange& ch) {
          v1::Endpoint key;
          key.set_accelerator(req->accelerator());
          key.set_listener(req->listener());
          key.set_endpoint_group(req->endpoint_group());
          key.set_address(address);
          if (!find(c.endpoints, key_of(key)))
            return Status(StatusCode::NOT_FOUND, "address: " + address +
                                                     " is not in endpoint group " +
                                                     quoted(req->endpoint_group()));
          ch.erasures.push_back(key);
          return Status::OK;
        });
  });
}

// ---- views ----

AdminService::Reactor* AdminService::ListPops(Ctx* ctx, const v1::ListPopsRequest*,
                                              v1::ListPopsResponse* resp) {
  return serve(ctx, [&] {
    *resp = registry_.list_pops();
    return Status::OK;
  });
}

AdminService::Reactor* AdminService::GetRoutes(Ctx* ctx, const v1::GetRoutesRequest* req,
                                               v1::GetRoutesResponse* resp) {
  return serve(ctx, [&] {
    if (req->pop().empty()) return invalid("pop: required");
    PopView view;
    if (Status s = registry_.view(req->pop(), view); !s.ok()) return s;
    resp->set_pop(req->pop());
    *resp->mutable_table() = std::move(view.routes.table);
    resp->set_applied_version(view.applied_version);
    for (auto& l : view.routes.listeners) *resp->add_listeners() = std::move(l);
    return Status::OK;
  });
}

AdminService::Reactor* AdminService::GetHealth(Ctx* ctx, const v1::GetHealthRequest* req,
                                               v1::GetHealthResponse* resp) {
  return serve(ctx, [&] { return registry_.health(*req, *resp); });
}

AdminService::Reactor* AdminService::TraceFlow(Ctx* ctx, const v1::TraceFlowRequest* req,
                                               v1::TraceFlowResponse* resp) {
  return serve(ctx, [&] {
    auto client = IpAddress::parse(req->client_address());
    auto vip = IpAddress::parse(req->vip());
    if (!client)
      return invalid("client_address: " + quoted(req->client_address()) +
                     " is not an IPv4 or IPv6 address");
    if (!vip) return invalid("vip: " + quoted(req->vip()) + " is not an IPv4 or IPv6 address");
    if (req->client_port() > 65535) return invalid("client_port: outside 0..65535");
    if (req->port() < 1 || req->port() > 65535) return invalid("port: outside 1..65535");
    if (req->protocol() != v1::TCP && req->protocol() != v1::UDP)
      return invalid("protocol: TCP or UDP");
    if (req->pop().empty()) return invalid("pop: required");
    PopView view;
    if (Status s = registry_.view(req->pop(), view); !s.ok()) return s;
    const v1::ForwardingTable& table = view.routes.table;
    // The same validation and build as the PoP's dataplane, then the same
    // lookups as its fast path.
    auto spec = check_table(table);
    if (!spec.ok())
      return Status(StatusCode::INTERNAL,
                    "the table for " + req->pop() + " is invalid: " + spec.error());
    std::string err;
    auto built = dp::ForwardingTable::build(*spec, 1, err);
    if (!built) return Status(StatusCode::INTERNAL, "building the table: " + err);
    FlowQuery q{.client = *client,
                    .client_port = static_cast<uint16_t>(req->client_port()),
                    .vip = *vip,
                    .port = static_cast<uint16_t>(req->port()),
                    .l4_proto = static_cast<uint8_t>(req->protocol() == v1::TCP ? 6 : 17)};
    dp::FlowTrace t = dp::trace_flow(*built, q);

    resp->set_pop(req->pop());
    resp->set_table_version(table.version());
    resp->add_explanation("PoP " + req->pop() + ", table version " +
                          std::to_string(table.version()) + " as the controller computes it now");
    if (view.applied_version != table.version())
      resp->add_explanation("note: " + req->pop() + " acknowledged version " +
                            std::to_string(view.applied_version) +
                            " last; its dataplane may still forward by that one");
    if (t.listener >= 0) {
      const std::string& name = built->listener(t.listener).name;
      auto slash = name.find('/');
      resp->set_accelerator(name.substr(0, slash));
      if (slash != std::string::npos) resp->set_listener(name.substr(slash + 1));
    }
    for (auto& s : t.steps) resp->add_explanation(s);
    if (t.endpoint >= 0) {
      const dp::Endpoint& e = built->listener(t.listener).endpoints[t.endpoint];
      resp->set_endpoint(e.address.to_string());
      resp->set_mode(e.mode == ForwardingMode::gue ? v1::ENCAP_GUE : v1::ENCAP_IPIP);
      // Addresses are unique within a listener: the endpoint names its group.
      for (const v1::Endpoint* ep : Config::children(
               view.config->endpoints, listener_key(resp->accelerator(), resp->listener())))
        if (ep->address() == resp->endpoint()) {
          resp->set_endpoint_group(ep->endpoint_group());
          const v1::EndpointGroup* g =
              find(view.config->groups,
                   group_key(ep->accelerator(), ep->listener(), ep->endpoint_group()));
          if (g) resp->set_region(g->region());
          break;
        }
      for (const auto& lr : view.routes.listeners)
        if (lr.accelerator() == resp->accelerator() && lr.listener() == resp->listener())
          for (const auto& gr : lr.groups())
            if (gr.endpoint_group() == resp->endpoint_group())
              resp->add_explanation("endpoint group " + gr.endpoint_group() +
                                    (gr.region().empty() ? "" : " (" + gr.region() + ")") + ": " +
                                    gr.reason());
    }
    resp->add_explanation(
        "a flow established before a table change stays on its endpoint while that endpoint "
        "stays healthy, even at weight 0");
    return Status::OK;
  });
}

AdminService::Reactor* AdminService::GetStats(Ctx* ctx, const v1::GetStatsRequest* req,
                                              v1::GetStatsResponse* resp) {
  return serve(ctx, [&] {
    if (!req->pop().empty() && !registry_.known(req->pop()))
      return Status(StatusCode::NOT_FOUND, "pop: no PoP " + quoted(req->pop()));
    for (auto& s : registry_.stats(req->pop())) *resp->add_pops() = std::move(s);
    return Status::OK;
  });
}

}  // namespace onramp::ctl
