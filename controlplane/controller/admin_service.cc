#include "controlplane/controller/admin_service.h"

#include <google/protobuf/util/field_mask_util.h>

#include "common/health_check.h"
#include "common/ip_address.h"
#include "common/log.h"
#include "common/options.h"
#include "common/text.h"
#include "common/trace_request.h"
#include "controlplane/controller/grpc_status.h"
#include "controlplane/controller/table_check.h"
#include "controlplane/controller/validation.h"
#include "dataplane/core/explain.h"

namespace onramp::ctl {
namespace {

using grpc::StatusCode;

// Key fields of Get and Delete requests: malformed names can never exist.
grpc::Status check_names(std::initializer_list<std::pair<const char*, const std::string*>> fields) {
  for (const auto& [field, value] : fields)
    if (grpc::Status s = to_grpc(check_name(field, *value), StatusCode::INVALID_ARGUMENT); !s.ok())
      return s;
  return grpc::Status::OK;
}

template <typename T>
const T* find(const ResourceMap<T>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

// The code's name as gRPC documents it ("INVALID_ARGUMENT"), for the audit
// log.
const char* grpc_code_name(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  auto i = static_cast<size_t>(code);
  return i < std::size(kNames) ? kNames[i] : "UNKNOWN";
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

// Fields the controller sets: never in an update mask.
bool is_output_only(const std::string& path) {
  return path == "create_time_ms" || path == "update_time_ms" || path == "resource_version";
}

// An update mask names fields of the resource that an operator may change:
// not its key (Kind::is_key), not what the controller sets.
template <typename Kind>
grpc::Status check_mask(const google::protobuf::FieldMask& mask,
                        const google::protobuf::Descriptor* type) {
  for (const std::string& path : mask.paths()) {
    if (!google::protobuf::util::FieldMaskUtil::GetFieldDescriptors(type, path, nullptr))
      return invalid("update_mask: " + quote(path) + " is not a field of " + type->name());
    std::string top = path.substr(0, path.find('.'));
    if (Kind::is_key(top))
      return invalid("update_mask: " + quote(path) + " identifies the " + type->name() +
                     " and cannot change");
    if (is_output_only(top))
      return invalid("update_mask: " + quote(path) + " is set by the controller");
  }
  return grpc::Status::OK;
}

// Copies the fields `mask` names from `from` onto `to`; a message or
// repeated field the mask names is replaced, not merged, and a field unset
// in `from` is cleared in `to`.
template <typename T>
void merge_fields(const T& from, const google::protobuf::FieldMask& mask, T& to) {
  google::protobuf::util::FieldMaskUtil::MergeOptions options;
  options.set_replace_message_fields(true);
  options.set_replace_repeated_fields(true);
  google::protobuf::util::FieldMaskUtil::MergeMessageTo(from, mask, options, &to);
}

// After an update's fields are merged onto the stored resource: drops what
// the stored resource had only for a kind it no longer is, and says whether
// it dropped anything. Only a health check changes kind: its protocol.
template <typename T>
bool forget_other_kind(const T&, T&) {
  return false;
}
bool forget_other_kind(const v1::EndpointGroup& stored, v1::EndpointGroup& merged) {
  if (stored.health_check().protocol() == merged.health_check().protocol()) return false;
  *merged.mutable_health_check() = without_other_protocols(merged.health_check());
  return true;
}

std::string join_paths(const google::protobuf::FieldMask& mask) {
  std::string out;
  for (const std::string& p : mask.paths()) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// The key a request's resource is stored under (an endpoint's address in
// canonical form); validation refuses what does not make one.
template <typename T>
std::string stored_key(const T& r) {
  return key_of(r);
}
std::string stored_key(const v1::Endpoint& e) {
  return endpoint_key(e.accelerator(), e.listener(), e.endpoint_group(),
                      canonical_address(e.address()).value_or(e.address()));
}

// An update based on a resource_version that is no longer the stored one:
// someone else changed the resource since it was read.
grpc::Status changed_meanwhile(const std::string& what, uint64_t given, uint64_t stored) {
  return grpc::Status(StatusCode::ABORTED, what + " changed since it was read: resource_version " +
                                               std::to_string(given) + " given, " +
                                               std::to_string(stored) +
                                               " stored; read it again and retry");
}

// How the four kinds of resource differ, for the CRUD calls written once
// below. Each kind says which fields are its key (never in an update mask),
// where its resources are in a Config, which validation checks them, how a
// key request becomes the resource's key fields (names checked, the address
// made canonical), how a mutation and a missing resource are named, which
// resources a list request matches, and what a delete checks first
// (NOT_FOUND, or children still there).
template <typename T>
struct ResourceKind;

template <>
struct ResourceKind<v1::Accelerator> {
  static constexpr auto validate = validate_accelerator;
  static bool is_key(const std::string& field) { return field == "name"; }
  static const auto& table(const Config& c) { return c.accelerators; }
  static grpc::Status key(const v1::AcceleratorKey& k, v1::Accelerator& out) {
    if (grpc::Status s = check_names({{"name", &k.name()}}); !s.ok()) return s;
    out.set_name(k.name());
    return grpc::Status::OK;
  }
  static std::string name(const v1::Accelerator& a, const char*) {
    return "accelerator " + quote(a.name());
  }
  static std::string not_found(const v1::Accelerator& a) {
    return "name: no accelerator " + quote(a.name());
  }
  static bool matches(const v1::ListRequest& r, const v1::Accelerator& a) {
    return ctl::matches(r.accelerator(), a.name());
  }
  static v1::Accelerator* add(v1::ListAcceleratorsResponse& r) { return r.add_accelerators(); }
  static grpc::Status check_delete(const Config& c, const v1::Accelerator& a) {
    return check_delete_accelerator(c, a.name());
  }
};

template <>
struct ResourceKind<v1::Listener> {
  static constexpr auto validate = validate_listener;
  static bool is_key(const std::string& field) { return field == "name" || field == "accelerator"; }
  static const auto& table(const Config& c) { return c.listeners; }
  static grpc::Status key(const v1::ListenerKey& k, v1::Listener& out) {
    if (grpc::Status s = check_names({{"accelerator", &k.accelerator()}, {"name", &k.name()}});
        !s.ok())
      return s;
    out.set_accelerator(k.accelerator());
    out.set_name(k.name());
    return grpc::Status::OK;
  }
  static std::string name(const v1::Listener& l, const char*) {
    return "listener " + quote(l.name()) + " of accelerator " + quote(l.accelerator());
  }
  static std::string not_found(const v1::Listener& l) {
    return "name: no listener " + quote(l.name()) + " in accelerator " + quote(l.accelerator());
  }
  static bool matches(const v1::ListRequest& r, const v1::Listener& l) {
    return ctl::matches(r.accelerator(), l.accelerator()) && ctl::matches(r.listener(), l.name());
  }
  static v1::Listener* add(v1::ListListenersResponse& r) { return r.add_listeners(); }
  static grpc::Status check_delete(const Config& c, const v1::Listener& l) {
    return check_delete_listener(c, l.accelerator(), l.name());
  }
};

template <>
struct ResourceKind<v1::EndpointGroup> {
  static constexpr auto validate = validate_endpoint_group;
  static bool is_key(const std::string& field) {
    return field == "name" || field == "accelerator" || field == "listener";
  }
  static const auto& table(const Config& c) { return c.groups; }
  static grpc::Status key(const v1::EndpointGroupKey& k, v1::EndpointGroup& out) {
    if (grpc::Status s = check_names(
            {{"accelerator", &k.accelerator()}, {"listener", &k.listener()}, {"name", &k.name()}});
        !s.ok())
      return s;
    out.set_accelerator(k.accelerator());
    out.set_listener(k.listener());
    out.set_name(k.name());
    return grpc::Status::OK;
  }
  static std::string name(const v1::EndpointGroup& g, const char*) {
    return "endpoint group " + quote(g.name()) + " of listener " +
           quote(g.accelerator() + "/" + g.listener());
  }
  static std::string not_found(const v1::EndpointGroup& g) {
    return "name: no endpoint group " + quote(g.name()) + " in listener " + quote(g.listener());
  }
  static bool matches(const v1::ListRequest& r, const v1::EndpointGroup& g) {
    return ctl::matches(r.accelerator(), g.accelerator()) &&
           ctl::matches(r.listener(), g.listener()) && ctl::matches(r.endpoint_group(), g.name());
  }
  static v1::EndpointGroup* add(v1::ListEndpointGroupsResponse& r) {
    return r.add_endpoint_groups();
  }
  static grpc::Status check_delete(const Config& c, const v1::EndpointGroup& g) {
    return check_delete_endpoint_group(c, g.accelerator(), g.listener(), g.name());
  }
};

template <>
struct ResourceKind<v1::Endpoint> {
  static constexpr auto validate = validate_endpoint;
  static bool is_key(const std::string& field) {
    return field == "address" || field == "accelerator" || field == "listener" ||
           field == "endpoint_group";
  }
  static const auto& table(const Config& c) { return c.endpoints; }
  static grpc::Status key(const v1::EndpointKey& k, v1::Endpoint& out) {
    if (grpc::Status s = check_names({{"accelerator", &k.accelerator()},
                                      {"listener", &k.listener()},
                                      {"endpoint_group", &k.endpoint_group()}});
        !s.ok())
      return s;
    auto address = canonical_address(k.address());
    if (!address)
      return invalid("address: " + quote(k.address()) + " is not an IPv4 or IPv6 address");
    out.set_accelerator(k.accelerator());
    out.set_listener(k.listener());
    out.set_endpoint_group(k.endpoint_group());
    out.set_address(*address);
    return grpc::Status::OK;
  }
  // An endpoint is created or updated "in" its group, deleted "from" it.
  static std::string name(const v1::Endpoint& e, const char* verb) {
    return "endpoint " + e.address() + (std::string_view(verb) == "deleted" ? " from" : " in") +
           " endpoint group " +
           quote(e.accelerator() + "/" + e.listener() + "/" + e.endpoint_group());
  }
  static std::string not_found(const v1::Endpoint& e) {
    return "address: " + e.address() + " is not in endpoint group " + quote(e.endpoint_group());
  }
  static bool matches(const v1::ListRequest& r, const v1::Endpoint& e) {
    return ctl::matches(r.accelerator(), e.accelerator()) &&
           ctl::matches(r.listener(), e.listener()) &&
           ctl::matches(r.endpoint_group(), e.endpoint_group());
  }
  static v1::Endpoint* add(v1::ListEndpointsResponse& r) { return r.add_endpoints(); }
  static grpc::Status check_delete(const Config& c, const v1::Endpoint& e) {
    if (!find(c.endpoints, key_of(e))) return grpc::Status(StatusCode::NOT_FOUND, not_found(e));
    return grpc::Status::OK;
  }
};

}  // namespace

namespace {

// Addresses a VIP or an endpoint may not take because something of onramp's
// own answers there: a PoP's tunnel source (the PoP would encapsulate to
// itself) or the controller. Resources without addresses have none.
using Reserved = std::map<std::string, std::string>;

grpc::Status not_reserved(const v1::Accelerator& a, const Reserved& reserved) {
  for (int i = 0; i < a.vips_size(); ++i)
    if (auto it = reserved.find(a.vips(i)); it != reserved.end())
      return invalid("accelerator.vips[" + std::to_string(i) + "]: " + a.vips(i) + " is " +
                     it->second);
  return grpc::Status::OK;
}

grpc::Status not_reserved(const v1::Endpoint& e, const Reserved& reserved) {
  if (auto it = reserved.find(e.address()); it != reserved.end())
    return invalid("endpoint.address: " + e.address() + " is " + it->second +
                   "; traffic to it would loop through the PoP");
  return grpc::Status::OK;
}

template <typename T>
grpc::Status not_reserved(const T&, const Reserved&) {
  return grpc::Status::OK;
}

}  // namespace

AdminService::AdminService(ConfigStore& store, PopRegistry& registry, const AdminAuth& auth,
                           std::function<void()> on_commit, std::vector<std::string> own_addresses)
    : store_(store),
      registry_(registry),
      auth_(auth),
      on_commit_(std::move(on_commit)),
      own_addresses_(own_listen_addresses(own_addresses)) {}

std::map<std::string, std::string> own_listen_addresses(const std::vector<std::string>& listen) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < listen.size(); ++i) {
    std::string host = listen[i].substr(0, listen[i].rfind(':'));
    if (host.size() > 1 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    auto a = IpAddress::parse(host);
    if (!a || *a == IpAddress{} || *a == *IpAddress::parse("0.0.0.0")) continue;
    out.emplace(a->to_string(),
                i == 0 ? "this controller's admin address" : "this controller's PoP address");
  }
  return out;
}

std::map<std::string, std::string> AdminService::reserved_addresses() const {
  Reserved out = own_addresses_;
  for (const auto& [id, tunnel] : registry_.tunnel_sources())
    for (const std::string& a : {tunnel.ipv4(), tunnel.ipv6()})
      if (auto parsed = IpAddress::parse(a))
        out.emplace(parsed->to_string(), "the tunnel source of PoP " + id);
  // A PoP of several servers: each connected host sends from its own.
  for (const auto& [id, tunnels] : registry_.host_tunnel_sources())
    for (const v1::TunnelSource& tunnel : tunnels)
      for (const std::string& a : {tunnel.ipv4(), tunnel.ipv6()})
        if (auto parsed = IpAddress::parse(a))
          out.emplace(parsed->to_string(), "a tunnel source of PoP " + id + "'s hosts");
  return out;
}

template <typename Body>
AdminService::Reactor* AdminService::serve(Ctx* ctx, Body&& body) {
  Reactor* reactor = ctx->DefaultReactor();
  grpc::Status s = auth_.check(*ctx);
  if (s.ok()) s = body();
  reactor->Finish(s);
  return reactor;
}

template <typename Body>
AdminService::Reactor* AdminService::serve_mutation(Ctx* ctx, const std::string& method,
                                                    const std::string& resource, Body&& body) {
  Reactor* reactor = ctx->DefaultReactor();
  grpc::Status s = auth_.check(*ctx);
  const std::string caller = s.ok() ? auth_.caller(*ctx) : "unauthenticated";
  if (s.ok()) s = body();
  log::info("audit", {{"caller", caller},
                      {"peer", ctx->peer()},
                      {"method", method},
                      {"resource", resource},
                      {"result", s.ok() ? "OK" : grpc_code_name(s.error_code())},
                      {"error", s.error_message()}});
  reactor->Finish(s);
  return reactor;
}

grpc::Status AdminService::mutate(
    Ctx* ctx, const std::string& what,
    const std::function<grpc::Status(const Config&, ConfigChange&)>& build,
    uint64_t* committed_version) {
  std::lock_guard lock(mutate_mu_);
  for (int attempt = 0;; ++attempt) {
    auto config = store_.snapshot();
    ConfigChange change;
    if (grpc::Status s = build(*config, change); !s.ok()) return s;
    CommitResult r = store_.commit(change, config->version);
    if (r.outcome == CommitResult::Outcome::committed) {
      log::info("admin mutation committed",
                {{"peer", ctx->peer()}, {"what", what}, {"config_version", r.config->version}});
      if (committed_version) *committed_version = r.config->version;
      if (on_commit_) on_commit_();
      return grpc::Status::OK;
    }
    if (r.outcome == CommitResult::Outcome::failed) {
      log::error("admin mutation not saved",
                 {{"peer", ctx->peer()}, {"what", what}, {"error", r.error}});
      return grpc::Status(StatusCode::INTERNAL, r.error);
    }
    if (r.outcome == CommitResult::Outcome::unavailable) {
      // Reads keep answering from the last snapshot; only writes wait for
      // the store to be back.
      log::warn("admin mutation refused: the configuration store cannot be reached",
                {{"peer", ctx->peer()}, {"what", what}, {"error", r.error}});
      return grpc::Status(StatusCode::UNAVAILABLE, r.error);
    }
    // Conflict: the registry bumped the version meanwhile; validate again.
    if (attempt == 3) return grpc::Status(StatusCode::ABORTED, r.error);
  }
}

// ---- accelerators, listeners, endpoint groups, endpoints ----

template <typename T>
AdminService::Reactor* AdminService::put(Ctx* ctx, const T& req,
                                         const google::protobuf::FieldMask* mask, T* resp,
                                         Mutation mutation) {
  using Kind = ResourceKind<T>;
  const char* verb = mutation == Mutation::create ? "created" : "updated";
  const std::string method =
      std::string(mutation == Mutation::create ? "Create" : "Update") + T::descriptor()->name();
  return serve_mutation(ctx, method, stored_key(req), [&] {
    if (mask)
      if (grpc::Status s = check_mask<Kind>(*mask, T::descriptor()); !s.ok()) return s;
    std::string what = std::string(verb) + " " + Kind::name(req, verb);
    if (mask && mask->paths_size() > 0) what += " (" + join_paths(*mask) + ")";
    uint64_t version = 0;
    const Reserved reserved = reserved_addresses();
    grpc::Status status = mutate(
        ctx, what,
        [&](const Config& c, ConfigChange& ch) {
          const T* existing =
              mutation == Mutation::create ? nullptr : find(Kind::table(c), stored_key(req));
          // A conflict is said first: the rest of the request was written
          // against a resource that is no longer there.
          if (existing && req.resource_version() != 0 &&
              req.resource_version() != existing->resource_version())
            return changed_meanwhile(Kind::name(*existing, verb), req.resource_version(),
                                     existing->resource_version());
          // The named fields go onto the resource as stored now, inside this
          // transaction: a concurrent update of other fields is kept.
          T merged;
          if (existing && mask && mask->paths_size() > 0) {
            merged = *existing;
            merge_fields(req, *mask, merged);
            // What the stored resource had only for its old kind goes;
            // the request's own fields go on again over what is left.
            if (forget_other_kind(*existing, merged)) merge_fields(req, *mask, merged);
          }
          const T& in = existing && mask && mask->paths_size() > 0 ? merged : req;
          T out;
          if (grpc::Status s = Kind::validate(c, in, mutation, out); !s.ok()) return s;
          if (grpc::Status s = not_reserved(out, reserved); !s.ok()) return s;
          stamp(out, existing);
          ch.puts.push_back(out);
          *resp = out;
          return grpc::Status::OK;
        },
        &version);
    resp->set_resource_version(version);
    return status;
  });
}

template <typename T, typename Key>
AdminService::Reactor* AdminService::get(Ctx* ctx, const Key* req, T* resp) {
  using Kind = ResourceKind<T>;
  return serve(ctx, [&] {
    T key;
    if (grpc::Status s = Kind::key(*req, key); !s.ok()) return s;
    auto c = store_.snapshot();
    const T* found = find(Kind::table(*c), key_of(key));
    if (!found) return grpc::Status(StatusCode::NOT_FOUND, Kind::not_found(key));
    *resp = *found;
    return grpc::Status::OK;
  });
}

template <typename T, typename Response>
AdminService::Reactor* AdminService::list(Ctx* ctx, const v1::ListRequest* req, Response* resp) {
  using Kind = ResourceKind<T>;
  return serve(ctx, [&] {
    auto c = store_.snapshot();
    for (const auto& [k, r] : Kind::table(*c))
      if (Kind::matches(*req, r)) *Kind::add(*resp) = r;
    return grpc::Status::OK;
  });
}

template <typename T, typename Key>
AdminService::Reactor* AdminService::remove(Ctx* ctx, const Key* req) {
  using Kind = ResourceKind<T>;
  T key;
  const grpc::Status key_status = Kind::key(*req, key);
  const std::string resource = key_status.ok() ? key_of(key) : req->ShortDebugString();
  return serve_mutation(ctx, "Delete" + T::descriptor()->name(), resource, [&] {
    if (!key_status.ok()) return key_status;
    return mutate(ctx, "deleted " + Kind::name(key, "deleted"),
                  [&](const Config& c, ConfigChange& ch) {
                    if (grpc::Status s = Kind::check_delete(c, key); !s.ok()) return s;
                    ch.erasures.push_back(key);
                    return grpc::Status::OK;
                  });
  });
}

AdminService::Reactor* AdminService::CreateAccelerator(Ctx* ctx, const v1::Accelerator* req,
                                                       v1::Accelerator* resp) {
  return put(ctx, *req, nullptr, resp, Mutation::create);
}
AdminService::Reactor* AdminService::GetAccelerator(Ctx* ctx, const v1::AcceleratorKey* req,
                                                    v1::Accelerator* resp) {
  return get(ctx, req, resp);
}
AdminService::Reactor* AdminService::ListAccelerators(Ctx* ctx, const v1::ListRequest* req,
                                                      v1::ListAcceleratorsResponse* resp) {
  return list<v1::Accelerator>(ctx, req, resp);
}
AdminService::Reactor* AdminService::UpdateAccelerator(Ctx* ctx,
                                                       const v1::UpdateAcceleratorRequest* req,
                                                       v1::Accelerator* resp) {
  return put(ctx, req->accelerator(), &req->update_mask(), resp, Mutation::update);
}
AdminService::Reactor* AdminService::DeleteAccelerator(Ctx* ctx, const v1::AcceleratorKey* req,
                                                       v1::DeleteResponse*) {
  return remove<v1::Accelerator>(ctx, req);
}

AdminService::Reactor* AdminService::CreateListener(Ctx* ctx, const v1::Listener* req,
                                                    v1::Listener* resp) {
  return put(ctx, *req, nullptr, resp, Mutation::create);
}
AdminService::Reactor* AdminService::GetListener(Ctx* ctx, const v1::ListenerKey* req,
                                                 v1::Listener* resp) {
  return get(ctx, req, resp);
}
AdminService::Reactor* AdminService::ListListeners(Ctx* ctx, const v1::ListRequest* req,
                                                   v1::ListListenersResponse* resp) {
  return list<v1::Listener>(ctx, req, resp);
}
AdminService::Reactor* AdminService::UpdateListener(Ctx* ctx, const v1::UpdateListenerRequest* req,
                                                    v1::Listener* resp) {
  return put(ctx, req->listener(), &req->update_mask(), resp, Mutation::update);
}
AdminService::Reactor* AdminService::DeleteListener(Ctx* ctx, const v1::ListenerKey* req,
                                                    v1::DeleteResponse*) {
  return remove<v1::Listener>(ctx, req);
}

AdminService::Reactor* AdminService::CreateEndpointGroup(Ctx* ctx, const v1::EndpointGroup* req,
                                                         v1::EndpointGroup* resp) {
  return put(ctx, *req, nullptr, resp, Mutation::create);
}
AdminService::Reactor* AdminService::GetEndpointGroup(Ctx* ctx, const v1::EndpointGroupKey* req,
                                                      v1::EndpointGroup* resp) {
  return get(ctx, req, resp);
}
AdminService::Reactor* AdminService::ListEndpointGroups(Ctx* ctx, const v1::ListRequest* req,
                                                        v1::ListEndpointGroupsResponse* resp) {
  return list<v1::EndpointGroup>(ctx, req, resp);
}
AdminService::Reactor* AdminService::UpdateEndpointGroup(Ctx* ctx,
                                                         const v1::UpdateEndpointGroupRequest* req,
                                                         v1::EndpointGroup* resp) {
  return put(ctx, req->endpoint_group(), &req->update_mask(), resp, Mutation::update);
}
AdminService::Reactor* AdminService::DeleteEndpointGroup(Ctx* ctx, const v1::EndpointGroupKey* req,
                                                         v1::DeleteResponse*) {
  return remove<v1::EndpointGroup>(ctx, req);
}

AdminService::Reactor* AdminService::CreateEndpoint(Ctx* ctx, const v1::Endpoint* req,
                                                    v1::Endpoint* resp) {
  return put(ctx, *req, nullptr, resp, Mutation::create);
}
AdminService::Reactor* AdminService::GetEndpoint(Ctx* ctx, const v1::EndpointKey* req,
                                                 v1::Endpoint* resp) {
  return get(ctx, req, resp);
}
AdminService::Reactor* AdminService::ListEndpoints(Ctx* ctx, const v1::ListRequest* req,
                                                   v1::ListEndpointsResponse* resp) {
  return list<v1::Endpoint>(ctx, req, resp);
}
AdminService::Reactor* AdminService::UpdateEndpoint(Ctx* ctx, const v1::UpdateEndpointRequest* req,
                                                    v1::Endpoint* resp) {
  return put(ctx, req->endpoint(), &req->update_mask(), resp, Mutation::update);
}
AdminService::Reactor* AdminService::DeleteEndpoint(Ctx* ctx, const v1::EndpointKey* req,
                                                    v1::DeleteResponse*) {
  return remove<v1::Endpoint>(ctx, req);
}

// ---- views ----

AdminService::Reactor* AdminService::ListPops(Ctx* ctx, const v1::ListPopsRequest*,
                                              v1::ListPopsResponse* resp) {
  return serve(ctx, [&] {
    *resp = registry_.list_pops();
    return grpc::Status::OK;
  });
}

AdminService::Reactor* AdminService::AdoptPop(Ctx* ctx, const v1::AdoptPopRequest* req,
                                              v1::AdoptPopResponse* resp) {
  return serve_mutation(ctx, "AdoptPop", req->pop(), [&] {
    if (req->pop().empty()) return invalid("pop: required");
    auto adopted = registry_.adopt(req->pop());
    if (!adopted.ok()) return to_grpc(adopted.status(), StatusCode::NOT_FOUND);
    *resp->mutable_pop() = std::move(*adopted);
    return grpc::Status::OK;
  });
}

AdminService::Reactor* AdminService::GetRoutes(Ctx* ctx, const v1::GetRoutesRequest* req,
                                               v1::GetRoutesResponse* resp) {
  return serve(ctx, [&] {
    if (req->pop().empty()) return invalid("pop: required");
    auto found = registry_.view(req->pop());
    if (!found.ok()) return to_grpc(found.status(), StatusCode::NOT_FOUND);
    PopView& view = *found;
    resp->set_pop(req->pop());
    *resp->mutable_table() = std::move(view.routes.table);
    resp->set_applied_version(view.applied_version);
    for (auto& l : view.routes.listeners) *resp->add_listeners() = std::move(l);
    return grpc::Status::OK;
  });
}

AdminService::Reactor* AdminService::GetPopMatrix(Ctx* ctx, const v1::GetPopMatrixRequest*,
                                                  v1::GetPopMatrixResponse* resp) {
  return serve(ctx, [&] {
    *resp = registry_.matrix();
    return grpc::Status::OK;
  });
}

AdminService::Reactor* AdminService::GetHealth(Ctx* ctx, const v1::GetHealthRequest* req,
                                               v1::GetHealthResponse* resp) {
  return serve(ctx, [&] { return registry_.health(*req, *resp); });
}

AdminService::Reactor* AdminService::TraceFlow(Ctx* ctx, const v1::TraceFlowRequest* req,
                                               v1::TraceFlowResponse* resp) {
  return serve(ctx, [&] {
    // The same checks and words as the dataplane's own trace.
    auto query = flow_query_from(*req);
    if (!query.ok()) return to_grpc(query.status(), StatusCode::INVALID_ARGUMENT);
    if (req->pop().empty()) return invalid("pop: required");
    // The table the PoP runs (or will, once it acknowledges it), built once
    // per content and shared by every trace.
    if (!registry_.known(req->pop()))
      return grpc::Status(StatusCode::NOT_FOUND, "pop: no PoP " + quote(req->pop()));
    auto found = registry_.trace_view(req->pop());
    if (!found.ok()) return to_grpc(found.status(), StatusCode::INTERNAL);
    const TraceView& view = *found;
    const dp::FlowExplanation t = dp::explain_flow(*view.table, *query);

    resp->set_pop(req->pop());
    resp->set_table_version(view.version);
    resp->add_explanation("PoP " + req->pop() + ", table version " + std::to_string(view.version) +
                          " as the controller computes it now");
    if (view.applied_version != view.version)
      resp->add_explanation("note: " + req->pop() + " acknowledged version " +
                            std::to_string(view.applied_version) +
                            " last; its dataplane may still forward by that one");
    if (!t.listener.empty()) {
      const std::string& name = t.listener;
      auto slash = name.find('/');
      resp->set_accelerator(name.substr(0, slash));
      if (slash != std::string::npos) resp->set_listener(name.substr(slash + 1));
    }
    for (auto& s : t.steps) resp->add_explanation(s);
    if (t.endpoint) {
      resp->set_endpoint(t.endpoint->address.to_string());
      resp->set_mode(t.endpoint->mode == ForwardingMode::gue ? v1::ENCAP_GUE : v1::ENCAP_IPIP);
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
      for (const auto& lr : *view.routes)
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
    return grpc::Status::OK;
  });
}

AdminService::Reactor* AdminService::GetStats(Ctx* ctx, const v1::GetStatsRequest* req,
                                              v1::GetStatsResponse* resp) {
  return serve(ctx, [&] {
    if (!req->pop().empty() && !registry_.known(req->pop()))
      return grpc::Status(StatusCode::NOT_FOUND, "pop: no PoP " + quote(req->pop()));
    for (auto& s : registry_.stats(req->pop())) *resp->add_pops() = std::move(s);
    return grpc::Status::OK;
  });
}

AdminService::Reactor* AdminService::GetVersion(Ctx* ctx, const v1::GetVersionRequest*,
                                                v1::GetVersionResponse* resp) {
  return serve(ctx, [&] {
    resp->set_version(opts::version());
    return grpc::Status::OK;
  });
}

}  // namespace onramp::ctl
