#include "controlplane/controller/validation.h"

#include <algorithm>
#include <set>

#include "common/health_check.h"
#include "common/ip_address.h"
#include "common/table_spec.h"
#include "common/text.h"
#include "controlplane/controller/grpc_status.h"

namespace onramp::ctl {
namespace {

using grpc::StatusCode;

std::string indexed(const std::string& field, int i) {
  return field + "[" + std::to_string(i) + "]";
}

std::string range_text(const v1::PortRange& r) {
  return std::to_string(r.first()) + ".." + std::to_string(r.last());
}

// Parses and canonicalises `text`, or says why it cannot be used.
grpc::Status address(const std::string& field, const std::string& text, std::string& out) {
  auto a = IpAddress::parse(text);
  if (!a) return invalid(field + ": " + quote(text) + " is not an IPv4 or IPv6 address");
  if (auto why = unusable_address_reason(*a)) return invalid(field + ": " + text + " " + *why);
  out = a->to_string();
  return grpc::Status::OK;
}

grpc::Status name(const std::string& field, const std::string& value) {
  return to_grpc(check_name(field, value), StatusCode::INVALID_ARGUMENT);
}

// True when listeners with these protocols share traffic of some protocol.
bool protocols_meet(v1::Protocol a, v1::Protocol b) {
  return (static_cast<int>(a) & static_cast<int>(b)) != 0;
}

bool port_in(const v1::Listener& l, uint32_t port) {
  for (const auto& r : l.port_ranges())
    if (port >= r.first() && port <= r.last()) return true;
  return false;
}

template <typename T>
const T* find(const ResourceMap<T>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

// "2 listeners: \"http\", \"https\"" for a FAILED_PRECONDITION message.
template <typename T, typename Name>
std::string list_children(const std::vector<const T*>& children, const char* singular,
                          const char* plural, Name name_of) {
  std::string s =
      std::to_string(children.size()) + " " + (children.size() == 1 ? singular : plural) + ": ";
  for (size_t i = 0; i < children.size(); ++i) {
    if (i == 8) {
      s += ", ...";
      break;
    }
    s += (i ? ", " : "") + quote(name_of(*children[i]));
  }
  return s;
}

// A create that would pass one of the totals above.
grpc::Status over_limit(const char* what, size_t count, size_t limit) {
  if (count < limit) return grpc::Status::OK;
  return grpc::Status(StatusCode::FAILED_PRECONDITION,
                      std::string("the configuration already has ") + std::to_string(count) + " " +
                          what + ", the most the controller accepts (" + std::to_string(limit) +
                          ", so that every PoP's table fits in one message)");
}

// A repeated field longer than its limit.
grpc::Status too_many(const std::string& field, int count, int limit) {
  if (count <= limit) return grpc::Status::OK;
  return invalid(field + ": " + std::to_string(count) + " entries, at most " +
                 std::to_string(limit));
}

}  // namespace

Status check_name(const std::string& field, const std::string& value) {
  if (value.empty()) return error(field + ": required");
  bool ok = value.size() <= 63 && value[0] >= 'a' && value[0] <= 'z' &&
            std::all_of(value.begin(), value.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
            });
  return ok ? ok_status() : error(field + ": " + quote(value) + " must match [a-z][a-z0-9-]{0,62}");
}

std::optional<std::string> canonical_address(const std::string& text) {
  auto a = IpAddress::parse(text);
  if (!a) return std::nullopt;
  return a->to_string();
}

bool is_pop_id(const std::string& id) {
  if (id.size() < 4 || id.size() > 5) return false;
  for (size_t i = 0; i < 3; ++i)
    if (id[i] < 'A' || id[i] > 'Z') return false;
  for (size_t i = 3; i < id.size(); ++i)
    if (id[i] < '0' || id[i] > '9') return false;
  return true;
}

namespace {

// An endpoint whose address is `address`, or null. From the index when it
// is kept (every snapshot the store publishes): O(log endpoints); a Config
// built by hand is scanned.
const v1::Endpoint* endpoint_at(const Config& config, const std::string& address) {
  if (config.endpoints_indexed()) {
    for (const std::string& key : config.endpoint_addresses.users(address, 1))
      if (auto it = config.endpoints.find(key); it != config.endpoints.end()) return &it->second;
    return nullptr;
  }
  for (const auto& [key, e] : config.endpoints)
    if (e.address() == address) return &e;
  return nullptr;
}

// An accelerator other than `except` (a name; "" for none) with the VIP
// `address`, or null. Like endpoint_at: from the index when it is kept.
const v1::Accelerator* other_vip_owner(const Config& config, const std::string& address,
                                       const std::string& except) {
  if (config.vips_indexed()) {
    for (const std::string& key : config.vip_owners.users(address, 2))
      if (auto it = config.accelerators.find(key);
          it != config.accelerators.end() && it->second.name() != except)
        return &it->second;
    return nullptr;
  }
  for (const auto& [key, a] : config.accelerators)
    if (a.name() != except)
      for (const std::string& vip : a.vips())
        if (vip == address) return &a;
  return nullptr;
}

}  // namespace

grpc::Status validate_accelerator(const Config& config, const v1::Accelerator& in,
                                  Mutation mutation, v1::Accelerator& out) {
  if (auto s = name("accelerator.name", in.name()); !s.ok()) return s;
  const v1::Accelerator* existing = find(config.accelerators, accelerator_key(in.name()));
  if (mutation == Mutation::create && existing)
    return grpc::Status(StatusCode::ALREADY_EXISTS,
                        "accelerator.name: accelerator " + quote(in.name()) + " already exists");
  if (mutation == Mutation::update && !existing)
    return grpc::Status(StatusCode::NOT_FOUND,
                        "accelerator.name: no accelerator " + quote(in.name()));
  if (mutation == Mutation::create)
    if (auto s = over_limit("accelerators", config.accelerators.size(), kMaxAccelerators); !s.ok())
      return s;
  out = in;
  out.clear_vips();
  if (in.vips().empty()) return invalid("accelerator.vips: at least one VIP is required");
  if (auto s = too_many("accelerator.vips", in.vips_size(), kMaxVipsPerAccelerator); !s.ok())
    return s;
  std::set<std::string> seen;
  for (int i = 0; i < in.vips_size(); ++i) {
    std::string f = indexed("accelerator.vips", i), vip;
    if (auto s = address(f, in.vips(i), vip); !s.ok()) return s;
    if (!seen.insert(vip).second) return invalid(f + ": " + vip + " is listed twice");
    if (const v1::Accelerator* owner = other_vip_owner(config, vip, in.name()))
      return grpc::Status(
          StatusCode::ALREADY_EXISTS,
          f + ": " + vip + " is already a VIP of accelerator " + quote(owner->name()));
    // A VIP that is also an endpoint would send the PoP its own traffic back.
    if (const v1::Endpoint* e = endpoint_at(config, vip))
      return invalid(f + ": " + vip + " is an endpoint of listener " + quote(e->listener()) +
                     " of accelerator " + quote(e->accelerator()) +
                     "; traffic to it would loop through the PoP");
    out.add_vips(vip);
  }
  // 0 (unset) means every flow; stored as given, so that an exported
  // configuration applies again without a difference.
  if (in.flow_log_sample_ppm() != 0 && (in.flow_log_sample_ppm() < kMinFlowLogSamplePpm ||
                                        in.flow_log_sample_ppm() > kMaxFlowLogSamplePpm))
    return invalid("accelerator.flow_log_sample_ppm: " + std::to_string(in.flow_log_sample_ppm()) +
                   " is outside " + std::to_string(kMinFlowLogSamplePpm) + ".." +
                   std::to_string(kMaxFlowLogSamplePpm) + " (0.01 % .. 100 %)");
  return grpc::Status::OK;
}

grpc::Status validate_listener(const Config& config, const v1::Listener& in, Mutation mutation,
                               v1::Listener& out) {
  if (auto s = name("listener.name", in.name()); !s.ok()) return s;
  if (auto s = name("listener.accelerator", in.accelerator()); !s.ok()) return s;
  if (!find(config.accelerators, accelerator_key(in.accelerator())))
    return grpc::Status(StatusCode::NOT_FOUND,
                        "listener.accelerator: no accelerator " + quote(in.accelerator()));
  std::string key = listener_key(in.accelerator(), in.name());
  const v1::Listener* existing = find(config.listeners, key);
  if (mutation == Mutation::create && existing)
    return grpc::Status(StatusCode::ALREADY_EXISTS, "listener.name: listener " + quote(in.name()) +
                                                        " already exists in accelerator " +
                                                        quote(in.accelerator()));
  if (mutation == Mutation::update && !existing)
    return grpc::Status(StatusCode::NOT_FOUND, "listener.name: no listener " + quote(in.name()) +
                                                   " in accelerator " + quote(in.accelerator()));
  if (mutation == Mutation::create)
    if (auto s = over_limit("listeners", config.listeners.size(), kMaxListeners); !s.ok()) return s;
  out = in;
  if (in.protocol() != v1::TCP && in.protocol() != v1::UDP && in.protocol() != v1::TCP_UDP)
    return invalid("listener.protocol: required (TCP, UDP or TCP_UDP)");
  if (in.port_ranges().empty())
    return invalid("listener.port_ranges: at least one range is required");
  if (auto s = too_many("listener.port_ranges", in.port_ranges_size(), kMaxPortRangesPerListener);
      !s.ok())
    return s;
  out.clear_port_ranges();
  for (int i = 0; i < in.port_ranges_size(); ++i) {
    v1::PortRange r = in.port_ranges(i);
    if (r.last() == 0) r.set_last(r.first());
    std::string f = indexed("listener.port_ranges", i);
    if (r.first() < 1 || r.first() > 65535 || r.last() > 65535 || r.last() < r.first())
      return invalid(f + ": " + range_text(r) + " is not a range within 1..65535");
    for (int j = 0; j < out.port_ranges_size(); ++j)
      if (r.first() <= out.port_ranges(j).last() && out.port_ranges(j).first() <= r.last())
        return invalid(f + ": " + range_text(r) + " overlaps listener.port_ranges[" +
                       std::to_string(j) + "]");
    *out.add_port_ranges() = r;
  }
  // Listeners of one accelerator share its VIPs: their ranges may not overlap
  // for a protocol they both take (the dataplane's classifier needs one
  // answer per VIP, protocol and port).
  for (const v1::Listener* other :
       Config::children(config.listeners, accelerator_key(in.accelerator()))) {
    if (other->name() == in.name() || !protocols_meet(other->protocol(), out.protocol())) continue;
    for (int i = 0; i < out.port_ranges_size(); ++i)
      for (int j = 0; j < other->port_ranges_size(); ++j) {
        const auto &a = out.port_ranges(i), &b = other->port_ranges(j);
        if (a.first() <= b.last() && b.first() <= a.last())
          return invalid(indexed("listener.port_ranges", i) + ": " + range_text(a) +
                         " overlaps listener " + quote(other->name()) + ".port_ranges[" +
                         std::to_string(j) + "]");
      }
  }
  if (in.affinity() != v1::NONE && in.affinity() != v1::SOURCE_IP)
    return invalid("listener.affinity: unknown value " + std::to_string(in.affinity()) +
                   " (NONE or SOURCE_IP)");
  out.set_tcp_idle_timeout_s(in.tcp_idle_timeout_s() ? in.tcp_idle_timeout_s() : kDefaultTcpIdleS);
  out.set_udp_idle_timeout_s(in.udp_idle_timeout_s() ? in.udp_idle_timeout_s() : kDefaultUdpIdleS);
  if (out.tcp_idle_timeout_s() > 86400)
    return invalid("listener.tcp_idle_timeout_s: " + std::to_string(in.tcp_idle_timeout_s()) +
                   " is outside 1..86400");
  if (out.udp_idle_timeout_s() > 86400)
    return invalid("listener.udp_idle_timeout_s: " + std::to_string(in.udp_idle_timeout_s()) +
                   " is outside 1..86400");
  // Port overrides of the listener's groups must stay inside its ranges.
  if (existing) {
    for (const v1::EndpointGroup* g : Config::children(config.groups, key))
      for (int i = 0; i < g->port_overrides_size(); ++i)
        if (!port_in(out, g->port_overrides(i).listener_port()))
          return grpc::Status(StatusCode::FAILED_PRECONDITION,
                              "listener.port_ranges: endpoint group " + quote(g->name()) +
                                  ".port_overrides[" + std::to_string(i) + "].listener_port " +
                                  std::to_string(g->port_overrides(i).listener_port()) +
                                  " would be outside every range; change the override first");
  }
  return grpc::Status::OK;
}

namespace {

// What an operator must do before port overrides are accepted, spelled out
// with this group's VIPs and ports: the PoP forwards packets unchanged
// (direct server return), only the endpoints' onramp-decap can rewrite.
std::string port_rewrite_needed(const Config& config, const v1::EndpointGroup& in,
                                const v1::Listener& listener) {
  const std::string protocol = listener.protocol() == v1::TCP   ? "/tcp"
                               : listener.protocol() == v1::UDP ? "/udp"
                                                                : "";
  std::string flags;
  if (const v1::Accelerator* a = find(config.accelerators, accelerator_key(in.accelerator())))
    for (const std::string& vip_text : a->vips()) {
      const std::optional<IpAddress> vip = IpAddress::parse(vip_text);
      const std::string vip_shown = !vip || vip->is_v4() ? vip_text : "[" + vip->to_string() + "]";
      for (const auto& o : in.port_overrides())
        flags += " --port-override " + vip_shown + ":" + std::to_string(o.listener_port()) + "=" +
                 std::to_string(o.endpoint_port()) + protocol;
    }
  return "endpoint_group.port_rewrite: the PoPs forward packets unchanged, so port overrides "
         "take effect only at the endpoints: run onramp-decap with" +
         flags +
         " on every endpoint of the group, then set port_rewrite to PORT_REWRITE_DECAP "
         "(onrampctl: --port-rewrite decap)";
}

}  // namespace

grpc::Status validate_endpoint_group(const Config& config, const v1::EndpointGroup& in,
                                     Mutation mutation, v1::EndpointGroup& out) {
  if (auto s = name("endpoint_group.name", in.name()); !s.ok()) return s;
  if (auto s = name("endpoint_group.accelerator", in.accelerator()); !s.ok()) return s;
  if (auto s = name("endpoint_group.listener", in.listener()); !s.ok()) return s;
  const v1::Listener* listener =
      find(config.listeners, listener_key(in.accelerator(), in.listener()));
  if (!listener)
    return grpc::Status(StatusCode::NOT_FOUND, "endpoint_group.listener: no listener " +
                                                   quote(in.listener()) + " in accelerator " +
                                                   quote(in.accelerator()));
  const v1::EndpointGroup* existing =
      find(config.groups, group_key(in.accelerator(), in.listener(), in.name()));
  if (mutation == Mutation::create && existing)
    return grpc::Status(StatusCode::ALREADY_EXISTS, "endpoint_group.name: endpoint group " +
                                                        quote(in.name()) + " already exists in " +
                                                        "listener " + quote(in.listener()));
  if (mutation == Mutation::update && !existing)
    return grpc::Status(StatusCode::NOT_FOUND, "endpoint_group.name: no endpoint group " +
                                                   quote(in.name()) + " in listener " +
                                                   quote(in.listener()));
  if (mutation == Mutation::create)
    if (auto s = over_limit("endpoint groups", config.groups.size(), kMaxEndpointGroups); !s.ok())
      return s;
  out = in;
  if (auto s = too_many("endpoint_group.port_overrides", in.port_overrides_size(),
                        kMaxPortOverridesPerGroup);
      !s.ok())
    return s;
  if (in.region().size() > 63 || std::any_of(in.region().begin(), in.region().end(), [](char c) {
        return c <= ' ' || c == 0x7f || (c & 0x80);
      }))
    return invalid("endpoint_group.region: " + quote(in.region()) +
                   " must be at most 63 printable ASCII characters without spaces");
  out.set_traffic_dial_percent(in.has_traffic_dial_percent() ? in.traffic_dial_percent()
                                                             : kDefaultTrafficDial);
  if (out.traffic_dial_percent() > 100)
    return invalid("endpoint_group.traffic_dial_percent: " +
                   std::to_string(out.traffic_dial_percent()) + " is outside 0..100");
  out.set_unhealthy_drain_s(in.has_unhealthy_drain_s() ? in.unhealthy_drain_s()
                                                       : kDefaultUnhealthyDrainS);
  if (out.unhealthy_drain_s() > kMaxUnhealthyDrainS)
    return invalid("endpoint_group.unhealthy_drain_s: " + std::to_string(out.unhealthy_drain_s()) +
                   " is outside 0.." + std::to_string(kMaxUnhealthyDrainS));
  auto health_check = normalise_health_check(in.health_check(), "endpoint_group.health_check");
  if (!health_check.ok()) return to_grpc(health_check.status(), StatusCode::INVALID_ARGUMENT);
  *out.mutable_health_check() = std::move(*health_check);
  std::set<uint32_t> seen;
  for (int i = 0; i < in.port_overrides_size(); ++i) {
    const auto& o = in.port_overrides(i);
    std::string f = indexed("endpoint_group.port_overrides", i);
    if (o.listener_port() < 1 || o.listener_port() > 65535)
      return invalid(f + ".listener_port: " + std::to_string(o.listener_port()) +
                     " is outside 1..65535");
    if (!port_in(*listener, o.listener_port()))
      return invalid(f + ".listener_port: " + std::to_string(o.listener_port()) +
                     " is in no port range of listener " + quote(listener->name()));
    if (!seen.insert(o.listener_port()).second)
      return invalid(f + ".listener_port: " + std::to_string(o.listener_port()) +
                     " is overridden twice");
    if (o.endpoint_port() < 1 || o.endpoint_port() > 65535)
      return invalid(f + ".endpoint_port: " + std::to_string(o.endpoint_port()) +
                     " is outside 1..65535");
  }
  if (in.port_overrides_size() > 0 && in.port_rewrite() != v1::PORT_REWRITE_DECAP)
    return invalid(port_rewrite_needed(config, in, *listener));
  return grpc::Status::OK;
}

grpc::Status validate_endpoint(const Config& config, const v1::Endpoint& in, Mutation mutation,
                               v1::Endpoint& out) {
  if (auto s = name("endpoint.accelerator", in.accelerator()); !s.ok()) return s;
  if (auto s = name("endpoint.listener", in.listener()); !s.ok()) return s;
  if (auto s = name("endpoint.endpoint_group", in.endpoint_group()); !s.ok()) return s;
  out = in;
  std::string addr;
  if (in.address().empty()) return invalid("endpoint.address: required");
  if (auto s = address("endpoint.address", in.address(), addr); !s.ok()) return s;
  out.set_address(addr);
  // An endpoint that is a VIP would have the PoP encapsulate to itself, again
  // and again.
  if (const v1::Accelerator* a = other_vip_owner(config, addr, ""))
    return invalid("endpoint.address: " + addr + " is a VIP of accelerator " + quote(a->name()) +
                   "; traffic to it would loop through the PoP");
  std::string lkey = listener_key(in.accelerator(), in.listener());
  if (!find(config.groups, group_key(in.accelerator(), in.listener(), in.endpoint_group())))
    return grpc::Status(StatusCode::NOT_FOUND, "endpoint.endpoint_group: no endpoint group " +
                                                   quote(in.endpoint_group()) + " in listener " +
                                                   quote(in.listener()) + " of accelerator " +
                                                   quote(in.accelerator()));
  const v1::Endpoint* existing = find(config.endpoints, key_of(out));
  if (mutation == Mutation::create && existing)
    return grpc::Status(StatusCode::ALREADY_EXISTS, "endpoint.address: " + addr +
                                                        " is already in endpoint group " +
                                                        quote(in.endpoint_group()));
  if (mutation == Mutation::update && !existing)
    return grpc::Status(
        StatusCode::NOT_FOUND,
        "endpoint.address: " + addr + " is not in endpoint group " + quote(in.endpoint_group()));
  if (mutation == Mutation::create) {
    if (auto s = over_limit("endpoints", config.endpoints.size(), kMaxEndpoints); !s.ok()) return s;
    // The dataplane knows an endpoint by its address within a listener: one
    // address serves a listener through one group only. Looked up group by
    // group, not by reading every endpoint of the listener: a create costs
    // the same with 10 or 5000 endpoints.
    for (const v1::EndpointGroup* g : Config::children(config.groups, lkey))
      if (config.endpoints.contains(endpoint_key(in.accelerator(), in.listener(), g->name(), addr)))
        return grpc::Status(StatusCode::ALREADY_EXISTS,
                            "endpoint.address: " + addr + " is already in endpoint group " +
                                quote(g->name()) + " of listener " + quote(in.listener()) +
                                "; an address serves a listener through one group only");
    const size_t count = config.endpoints.count_prefix(lkey + "/");
    // The PoPs' Maglev tables (kDefaultMaglevSize slots) give every endpoint
    // at least kMaglevSlotsPerEndpoint slots: more would be refused by every
    // dataplane, so it is refused here.
    constexpr size_t kMaxInListener = kDefaultMaglevSize / kMaglevSlotsPerEndpoint;
    if (count >= kMaxInListener)
      return grpc::Status(StatusCode::FAILED_PRECONDITION,
                          "endpoint: listener " + quote(in.listener()) + " already has " +
                              std::to_string(kMaxInListener) +
                              " endpoints, the most a PoP's Maglev table of " +
                              std::to_string(kDefaultMaglevSize) + " slots takes");
  }
  out.set_weight(in.has_weight() ? in.weight() : kDefaultWeight);
  if (out.weight() > 255)
    return invalid("endpoint.weight: " + std::to_string(out.weight()) + " is outside 0..255");
  if (in.mode() != v1::ENCAP_IPIP && in.mode() != v1::ENCAP_GUE)
    return invalid("endpoint.mode: unknown value " + std::to_string(in.mode()) +
                   " (ENCAP_IPIP or ENCAP_GUE)");
  return grpc::Status::OK;
}

grpc::Status check_delete_accelerator(const Config& config, const std::string& name) {
  std::string key = accelerator_key(name);
  if (!find(config.accelerators, key))
    return grpc::Status(StatusCode::NOT_FOUND, "name: no accelerator " + quote(name));
  auto children = Config::children(config.listeners, key);
  if (!children.empty())
    return grpc::Status(StatusCode::FAILED_PRECONDITION,
                        "accelerator " + quote(name) + " has " +
                            list_children(children, "listener", "listeners",
                                          [](const v1::Listener& l) { return l.name(); }) +
                            "; delete them first");
  return grpc::Status::OK;
}

grpc::Status check_delete_listener(const Config& config, const std::string& accelerator,
                                   const std::string& name) {
  std::string key = listener_key(accelerator, name);
  if (!find(config.listeners, key))
    return grpc::Status(StatusCode::NOT_FOUND, "name: no listener " + quote(name) +
                                                   " in accelerator " + quote(accelerator));
  auto children = Config::children(config.groups, key);
  if (!children.empty())
    return grpc::Status(StatusCode::FAILED_PRECONDITION,
                        "listener " + quote(name) + " has " +
                            list_children(children, "endpoint group", "endpoint groups",
                                          [](const v1::EndpointGroup& g) { return g.name(); }) +
                            "; delete them first");
  return grpc::Status::OK;
}

grpc::Status check_delete_endpoint_group(const Config& config, const std::string& accelerator,
                                         const std::string& listener, const std::string& name) {
  std::string key = group_key(accelerator, listener, name);
  if (!find(config.groups, key))
    return grpc::Status(StatusCode::NOT_FOUND, "name: no endpoint group " + quote(name) +
                                                   " in listener " + quote(listener));
  auto children = Config::children(config.endpoints, key);
  if (!children.empty())
    return grpc::Status(StatusCode::FAILED_PRECONDITION,
                        "endpoint group " + quote(name) + " has " +
                            list_children(children, "endpoint", "endpoints",
                                          [](const v1::Endpoint& e) { return e.address(); }) +
                            "; delete them first");
  return grpc::Status::OK;
}

}  // namespace onramp::ctl
