#include "controlplane/routing/route_computer.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/ip_address.h"
#include "common/table_spec.h"
#include "controlplane/routing/relay_choice.h"
#include "controlplane/routing/route_explanation.h"
#include "controlplane/routing/route_steps.h"

namespace onramp::ctl {
namespace {

// The port probes use: the health check's, else the listener's first port
// after the group's port overrides.
uint32_t probe_port(const v1::Listener& l, const v1::EndpointGroup& g) {
  if (g.health_check().port()) return g.health_check().port();
  uint32_t port = l.port_ranges().empty() ? 0 : l.port_ranges(0).first();
  for (const auto& o : g.port_overrides())
    if (o.listener_port() == port) return o.endpoint_port();
  return port;
}

}  // namespace

std::string table_listener_name(const std::string& accelerator, const std::string& listener) {
  return accelerator + "/" + listener;
}

std::string endpoint_label(const v1::EndpointGroup& group) {
  if (group.region().empty() || group.region() == group.name()) return group.name();
  return group.name() + " (" + group.region() + ")";
}

std::string peer_address(const v1::TunnelSource& self, const v1::TunnelSource& peer) {
  if (!self.ipv4().empty() && !peer.ipv4().empty()) return peer.ipv4();
  if (!self.ipv6().empty() && !peer.ipv6().empty()) return peer.ipv6();
  return "";
}

namespace {

// A peer's tunnel address this PoP may accept relayed packets from.
bool usable_relay_address(const std::string& address, const v1::TunnelSource& self) {
  auto a = IpAddress::parse(address);
  return a && !unusable_address_reason(*a) && address != self.ipv4() && address != self.ipv6();
}

void count_path(PathExit exit, PathStats& stats) {
  switch (exit) {
    case PathExit::kRelayOff:
      ++stats.relay_off;
      return;
    case PathExit::kNoCandidate:
      ++stats.no_candidate;
      return;
    case PathExit::kDirectUnmeasured:
      ++stats.direct_unmeasured;
      return;
    case PathExit::kDirectBetter:
      ++stats.direct_better;
      return;
    case PathExit::kRelayHeld:
      ++stats.relay_held;
      return;
    case PathExit::kRelayWon:
      ++stats.relay_won;
      return;
    case PathExit::kRelayKept:
      ++stats.relay_kept;
      return;
    case PathExit::kRelayLost:
      ++stats.relay_lost;
      return;
    case PathExit::kDirectHeld:
      ++stats.direct_held;
      return;
    case PathExit::kDirectWon:
      ++stats.direct_won;
      return;
  }
}

}  // namespace

std::vector<uint32_t> scale_weights(const std::vector<double>& shares) {
  double top = 0;
  for (double s : shares) top = std::max(top, s);
  std::vector<uint32_t> out;
  out.reserve(shares.size());
  for (double s : shares) {
    if (s <= 0 || top <= 0) {
      out.push_back(0);
      continue;
    }
    long w = std::lround(s / top * 255.0);
    out.push_back(static_cast<uint32_t>(std::clamp(w, 1L, 255L)));
  }
  return out;
}

PopRoutes RouteComputer::compute(const Config& config, const PopContext& pop,
                                 const PopHealth* health, const RouteMemory* memory,
                                 bool new_round) const {
  PopRoutes out;
  out.table.set_pop(pop.id);
  *out.table.mutable_tunnel_source() = pop.tunnel_source;
  bool has_v4 = !pop.tunnel_source.ipv4().empty();
  bool has_v6 = !pop.tunnel_source.ipv6().empty();
  for (const PeerPop& peer : pop.peers) {
    std::string address = peer_address(pop.tunnel_source, peer.tunnel_source);
    if (peer.id == pop.id || address.empty()) continue;
    auto* p = out.probe_plan.add_peers();
    p->set_pop(peer.id);
    p->set_address(address);
  }
  // Every connected PoP may relay through this one: the set changes only
  // when a PoP connects or leaves, not with each choice, so a PoP that
  // starts relaying never waits for its relay's table.
  // Each of its hosts sends from its own tunnel source.
  std::set<std::string> accepted;
  auto accept = [&](const PeerPop& peer, const v1::TunnelSource& t) {
    for (const std::string* a : {&t.ipv4(), &t.ipv6()})
      if (peer.id != pop.id && usable_relay_address(*a, pop.tunnel_source) &&
          accepted.insert(*a).second)
        out.table.add_relay_peers(*a);
  };
  for (const PeerPop& peer : pop.peers) {
    accept(peer, peer.tunnel_source);
    for (const v1::TunnelSource& t : peer.host_tunnel_sources) accept(peer, t);
  }
  for (const auto& [akey, acc] : config.accelerators) {
    if (!acc.enabled()) continue;
    for (const v1::Listener* l : Config::children(config.listeners, akey)) {
      std::string lkey = listener_key(acc.name(), l->name());
      ListenerInput in{.accelerator = &acc, .listener = l};
      std::string name = table_listener_name(acc.name(), l->name());
      ListenerMemory lm;
      if (memory)
        if (auto m = memory->find(name); m != memory->end()) lm = m->second;
      for (const v1::EndpointGroup* g : Config::children(config.groups, lkey)) {
        GroupInput gi{.group = g};
        uint32_t left_v4 = 0, left_v6 = 0;
        for (const v1::Endpoint* e :
             Config::children(config.endpoints, group_key(acc.name(), l->name(), g->name()))) {
          auto a = IpAddress::parse(e->address());
          bool v4 = a && a->is_v4();
          if (v4 ? !has_v4 : !has_v6) {
            ++(v4 ? left_v4 : left_v6);
            continue;
          }
          gi.endpoints.push_back(e);
          gi.probes.push_back(health ? health->find(acc.name(), l->name(), g->name(), e->address())
                                     : nullptr);
          auto* t = out.probe_plan.add_targets();
          t->set_accelerator(acc.name());
          t->set_listener(l->name());
          t->set_endpoint_group(g->name());
          t->set_address(e->address());
          t->set_port(probe_port(*l, *g));
          t->set_region(g->region());
          // The stored check has its defaults filled in (validation).
          *t->mutable_health_check() = g->health_check();
          t->mutable_health_check()->set_port(t->port());
        }
        gi.left_out = left_v4 + left_v6;
        if (left_v4)
          gi.left_out_reason = std::to_string(left_v4) + " IPv4 endpoint(s) left out: " + pop.id +
                               " has no IPv4 tunnel source";
        if (left_v6)
          gi.left_out_reason += (gi.left_out_reason.empty() ? "" : "; ") + std::to_string(left_v6) +
                                " IPv6 endpoint(s) left out: " + pop.id +
                                " has no IPv6 tunnel source";
        in.groups.push_back(std::move(gi));
      }
      // How each group is reached, before the groups are ranked: a group
      // reached faster through a relay is ranked by that RTT.
      std::vector<PathChoice> paths;
      paths.reserve(in.groups.size());
      std::map<std::string, GroupPathMemory> path_memory;
      for (GroupInput& gi : in.groups) {
        GroupPathMemory gm;
        if (auto m = lm.paths.find(gi.group->name()); m != lm.paths.end()) gm = m->second;
        paths.push_back(choose_path(in, gi, pop, health, policy_, gm, new_round));
        count_path(paths.back().exit, out.path_stats);
        gi.path = &paths.back();
        if (gm != GroupPathMemory{}) path_memory[gi.group->name()] = gm;
      }
      lm.paths = std::move(path_memory);
      v1::ListenerRoute route = route_listener(pop, in, lm, new_round, out.stats);
      out.memory[name] = std::move(lm);
      route.set_accelerator(acc.name());
      route.set_listener(l->name());

      auto* fl = out.table.add_listeners();
      fl->set_name(name);
      for (const auto& vip : acc.vips()) fl->add_vips(vip);
      fl->set_protocol(l->protocol());
      *fl->mutable_port_ranges() = l->port_ranges();
      fl->set_affinity(l->affinity());
      fl->set_tcp_idle_timeout_s(l->tcp_idle_timeout_s());
      fl->set_udp_idle_timeout_s(l->udp_idle_timeout_s());
      if (acc.flow_logs())
        fl->set_flow_log_sample_ppm(acc.flow_log_sample_ppm() ? acc.flow_log_sample_ppm()
                                                              : kMaxFlowLogSamplePpm);
      *fl->mutable_endpoints() = route.endpoints();
      out.listeners.push_back(std::move(route));
    }
  }
  return out;
}

namespace {

// The route proto: the groups in routing order with their shares and
// reasons, and the flat endpoint list with effective weights.
v1::ListenerRoute listener_route(const RoutePlan& plan, const std::vector<std::string>& reasons,
                                 const RoutePolicy& policy) {
  v1::ListenerRoute route;
  for (const GroupState* g : plan.order) {
    auto* gr = route.add_groups();
    gr->set_endpoint_group(g->name);
    gr->set_region(g->in->group->region());
    gr->set_share_percent(g->share * 100.0);
    gr->set_traffic_dial_percent(g->dial);
    gr->set_healthy_endpoints(g->healthy);
    gr->set_endpoints(static_cast<uint32_t>(g->in->endpoints.size()) + g->in->left_out);
    gr->set_rtt_ms(g->rtt);
    gr->set_reason(reasons[g - plan.groups.data()]);
    if (const PathChoice* path = g->in->path) {
      gr->set_via(path->via);
      gr->set_direct_rtt_ms(path->direct_ms);
      gr->set_relay_candidate(path->best ? path->best->peer->id : "");
      const std::optional<RelayCandidate>& shown = path->chosen ? path->chosen : path->best;
      gr->set_to_relay_ms(shown ? shown->to_relay_ms : -1);
      gr->set_relay_to_group_ms(shown ? shown->relay_to_group_ms : -1);
      gr->set_via_rtt_ms(shown ? shown->via_ms() : -1);
      gr->set_path_reason(explain_path(*path, policy));
    }
  }
  // The flat list in configuration order (groups by name), so that the
  // dataplane's Maglev inputs do not move when only the RTT order does.
  std::vector<double> shares;
  std::vector<const v1::Endpoint*> endpoints;
  std::vector<const GroupState*> owner;
  std::vector<bool> unhealthy;
  for (const GroupState& g : plan.groups) {
    bool open = &g == plan.open_group;
    for (size_t i = 0; i < g.in->endpoints.size(); ++i) {
      const v1::Endpoint* e = g.in->endpoints[i];
      bool ok = routable(g.in->probes.size() > i ? g.in->probes[i] : nullptr);
      uint64_t pool = open ? g.total_weight : g.healthy_weight;
      endpoints.push_back(e);
      owner.push_back(&g);
      // Unhealthy endpoints stay in the table marked so: their flows re-pick
      // at once. Failing open, they take flows as if healthy.
      unhealthy.push_back(!ok && !open);
      shares.push_back((ok || open) && pool > 0 ? g.share * double(e->weight()) / double(pool)
                                                : 0.0);
    }
  }
  std::vector<uint32_t> weights = scale_weights(shares);
  for (size_t i = 0; i < endpoints.size(); ++i) {
    auto* fe = route.add_endpoints();
    fe->set_address(endpoints[i]->address());
    fe->set_weight(unhealthy[i] ? 0 : weights[i]);
    fe->set_mode(endpoints[i]->mode());
    fe->set_label(endpoint_label(*owner[i]->in->group));
    if (const PathChoice* path = owner[i]->in->path; path && path->chosen) {
      const v1::TunnelSource& relay = path->chosen->peer->tunnel_source;
      auto a = IpAddress::parse(endpoints[i]->address());
      fe->set_relay(a && a->is_v4() ? relay.ipv4() : relay.ipv6());
    }
    fe->set_unhealthy(unhealthy[i]);
    // Every endpoint carries its group's drain: the dataplane times it from
    // the moment its own table first marks the endpoint unhealthy.
    const v1::EndpointGroup& group = *owner[i]->in->group;
    fe->set_unhealthy_drain_s(group.has_unhealthy_drain_s() ? group.unhealthy_drain_s()
                                                            : kDefaultUnhealthyDrainS);
  }
  route.set_fail_open(plan.mode == RouteMode::kFailOpen);
  return route;
}

}  // namespace

v1::ListenerRoute RouteComputer::route_listener(const PopContext& pop, const ListenerInput& in,
                                                ListenerMemory& memory, bool new_round,
                                                RouteStats& stats) const {
  RoutePlan plan = plan_listener(in, policy_, memory, new_round, stats);
  return listener_route(plan, explain_plan(plan, memory, policy_, pop.id), policy_);
}

}  // namespace onramp::ctl
