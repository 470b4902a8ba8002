#include "controlplane/routing/route_inputs.h"

#include <cmath>
#include <cstdio>

namespace onramp::ctl {

v1::RouteInputs config_slice(const Config& config) {
  v1::RouteInputs out;
  out.set_config_version(config.version);
  for (const auto& [akey, acc] : config.accelerators) {
    if (!acc.enabled()) continue;
    *out.add_accelerators() = acc;
    for (const v1::Listener* l : Config::children(config.listeners, akey)) {
      *out.add_listeners() = *l;
      std::string lkey = listener_key(acc.name(), l->name());
      for (const v1::EndpointGroup* g : Config::children(config.groups, lkey)) {
        *out.add_endpoint_groups() = *g;
        for (const v1::Endpoint* e :
             Config::children(config.endpoints, group_key(acc.name(), l->name(), g->name())))
          *out.add_endpoints() = *e;
      }
    }
  }
  return out;
}

v1::RouteInputs route_inputs(v1::RouteInputs slice, const PopContext& pop,
                             const RouteMemory& memory, const RoutePolicy& policy) {
  slice.set_pop(pop.id);
  *slice.mutable_tunnel_source() = pop.tunnel_source;
  slice.clear_peers();
  for (const PeerPop& peer : pop.peers) {
    v1::RoutePeer* p = slice.add_peers();
    p->set_pop(peer.id);
    *p->mutable_tunnel_source() = peer.tunnel_source;
    for (const v1::TunnelSource& t : peer.host_tunnel_sources) *p->add_host_tunnel_sources() = t;
  }
  memory_to_proto(memory, *slice.mutable_memory());
  *slice.mutable_policy() = policy_to_proto(policy);
  return slice;
}

void memory_to_proto(const RouteMemory& memory, MemoryProto& out) {
  out.Clear();
  for (const auto& [name, m] : memory) {
    v1::ListenerRouteMemory* p = out.Add();
    p->set_listener(name);
    p->set_primary(m.primary);
    p->set_challenger(m.challenger);
    p->set_rounds(m.rounds);
    p->set_fail_open(m.fail_open);
    p->set_fail_open_entered(m.fail_open_entered);
    for (const std::string& g : m.spill_order) p->add_spill_order(g);
    for (const auto& [group, path] : m.paths) {
      v1::GroupPathMemory* gp = p->add_paths();
      gp->set_endpoint_group(group);
      gp->set_via(path.via);
      gp->set_challenger(path.challenger);
      gp->set_rounds(path.rounds);
    }
  }
}

RouteMemory memory_from_proto(const MemoryProto& memory) {
  RouteMemory out;
  for (const v1::ListenerRouteMemory& p : memory) {
    ListenerMemory& m = out[p.listener()];
    m.primary = p.primary();
    m.challenger = p.challenger();
    m.rounds = p.rounds();
    m.fail_open = p.fail_open();
    m.fail_open_entered = p.fail_open_entered();
    m.spill_order.assign(p.spill_order().begin(), p.spill_order().end());
    for (const v1::GroupPathMemory& gp : p.paths())
      m.paths[gp.endpoint_group()] =
          GroupPathMemory{.via = gp.via(), .challenger = gp.challenger(), .rounds = gp.rounds()};
  }
  return out;
}

v1::RoutePolicy policy_to_proto(const RoutePolicy& policy) {
  v1::RoutePolicy p;
  p.set_overprovisioning(policy.overprovisioning);
  p.set_margin_ms(policy.margin_ms);
  p.set_margin_fraction(policy.margin_fraction);
  p.set_rounds(policy.rounds);
  p.set_relay_margin_ms(policy.relay_margin_ms);
  p.set_relay_margin_fraction(policy.relay_margin_fraction);
  p.set_relay_max_loss_percent(policy.relay_max_loss_percent);
  return p;
}

RoutePolicy policy_from_proto(const v1::RoutePolicy& p) {
  RoutePolicy policy;
  if (std::isfinite(p.overprovisioning()) && p.overprovisioning() >= 1)
    policy.overprovisioning = p.overprovisioning();
  if (std::isfinite(p.margin_ms()) && p.margin_ms() >= 0) policy.margin_ms = p.margin_ms();
  if (std::isfinite(p.margin_fraction()) && p.margin_fraction() >= 0 && p.margin_fraction() <= 1)
    policy.margin_fraction = p.margin_fraction();
  if (p.rounds() > 0) policy.rounds = p.rounds();
  if (std::isfinite(p.relay_margin_ms()) && p.relay_margin_ms() > 0)
    policy.relay_margin_ms = p.relay_margin_ms();
  if (std::isfinite(p.relay_margin_fraction()) && p.relay_margin_fraction() > 0 &&
      p.relay_margin_fraction() <= 1)
    policy.relay_margin_fraction = p.relay_margin_fraction();
  if (std::isfinite(p.relay_max_loss_percent()) && p.relay_max_loss_percent() > 0 &&
      p.relay_max_loss_percent() <= 100)
    policy.relay_max_loss_percent = p.relay_max_loss_percent();
  return policy;
}

LocalInputs local_inputs(const v1::RouteInputs& inputs) {
  LocalInputs out;
  for (const v1::Accelerator& a : inputs.accelerators()) out.config.accelerators[key_of(a)] = a;
  for (const v1::Listener& l : inputs.listeners()) out.config.listeners[key_of(l)] = l;
  for (const v1::EndpointGroup& g : inputs.endpoint_groups()) out.config.groups[key_of(g)] = g;
  for (const v1::Endpoint& e : inputs.endpoints()) out.config.endpoints[key_of(e)] = e;
  out.pop = PopContext{.id = inputs.pop(), .tunnel_source = inputs.tunnel_source()};
  for (const v1::RoutePeer& p : inputs.peers())
    out.pop.peers.push_back(PeerPop{
        .id = p.pop(),
        .tunnel_source = p.tunnel_source(),
        .host_tunnel_sources = {p.host_tunnel_sources().begin(), p.host_tunnel_sources().end()}});
  out.policy = policy_from_proto(inputs.policy());
  out.memory = memory_from_proto(inputs.memory());
  return out;
}

PopHealth health_from_report(const v1::ProbeReport& report) {
  PopHealth health;
  (void)health.replace(report, report.time_ms());
  return health;
}

std::string content_digest(const v1::ForwardingTable& table, const v1::ProbePlan& plan) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](const std::string& bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
  };
  if (table.version() == 0) {  // as RouteComputer returns it: no copy needed
    mix(table.SerializeAsString());
  } else {
    v1::ForwardingTable unversioned = table;
    unversioned.set_version(0);
    mix(unversioned.SerializeAsString());
  }
  mix("|");
  mix(plan.SerializeAsString());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace onramp::ctl
