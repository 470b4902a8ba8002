#include "controlplane/controller/route_computer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/ip_address.h"

namespace onramp::ctl {
namespace {

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %%", share * 100.0);
  return buf;
}

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
  for (const auto& [akey, acc] : config.accelerators) {
    if (!acc.enabled()) continue;
    for (const v1::Listener* l : Config::children(config.listeners, akey)) {
      std::string lkey = listener_key(acc.name(), l->name());
      ListenerInput in{.accelerator = &acc, .listener = l};
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
      std::string name = table_listener_name(acc.name(), l->name());
      ListenerMemory lm;
      if (memory)
        if (auto m = memory->find(name); m != memory->end()) lm = m->second;
      v1::ListenerRoute route = route_listener(pop, in, lm, new_round);
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
      *fl->mutable_endpoints() = route.endpoints();
      out.listeners.push_back(std::move(route));
    }
  }
  return out;
}

double group_rtt(const GroupInput& g) {
  std::vector<double> routable_rtts, all_rtts;
  for (size_t i = 0; i < g.endpoints.size(); ++i) {
    const v1::ProbeResult* p = i < g.probes.size() ? g.probes[i] : nullptr;
    if (!p || !(p->rtt_ms() >= 0)) continue;
    all_rtts.push_back(p->rtt_ms());
    if (routable(p) && g.endpoints[i]->weight() > 0) routable_rtts.push_back(p->rtt_ms());
  }
  std::vector<double>& v = routable_rtts.empty() ? all_rtts : routable_rtts;
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

namespace {

// One group of a listener while its share is worked out.
struct GroupState {
  const GroupInput* in = nullptr;
  std::string name;
  uint32_t dial = 0;
  uint64_t total_weight = 0;    // endpoints of weight > 0
  uint64_t healthy_weight = 0;  // of those, the routable ones
  uint32_t healthy = 0;         // routable endpoints, any weight
  uint32_t unhealthy = 0;
  std::string first_error;  // of an unhealthy endpoint
  double rtt = -1;
  double health_factor = 0;
  double share = 0;
  bool takes_traffic() const { return dial > 0 && healthy_weight > 0; }
  bool measured() const { return rtt >= 0; }
};

std::string ms(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", v);
  return buf;
}

std::string whole_percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f %%", fraction * 100.0);
  return buf;
}

std::string rtt_text(const GroupState& g) { return g.measured() ? ms(g.rtt) : "unmeasured"; }

// Why a group that cannot take traffic takes none.
std::string idle_reason(const GroupState& g, const std::string& pop) {
  if (g.in->endpoints.empty()) return "no endpoint: takes no traffic";
  if (g.total_weight == 0) return "every endpoint has weight 0: drained, existing flows stay";
  if (g.dial == 0) return "traffic dial 0 %: drained, existing flows stay";
  std::string r =
      "no healthy endpoint from " + pop + " (" + std::to_string(g.unhealthy) + " unhealthy";
  if (!g.first_error.empty()) r += ": " + g.first_error;
  return r + ")";
}

// What made a group give traffic away: its dial, its health, or both.
std::string shortfall(const GroupState& g) {
  std::string r;
  if (g.dial < 100) r = g.name + " dialled to " + std::to_string(g.dial) + " %";
  if (g.health_factor < 1) {
    if (!r.empty()) r += " and ";
    r += g.name + " at " + whole_percent(g.health_factor) + " health (" +
         std::to_string(g.healthy_weight) + " of " + std::to_string(g.total_weight) +
         " weight healthy)";
  }
  return r;
}

}  // namespace

v1::ListenerRoute RouteComputer::route_listener(const PopContext& pop, const ListenerInput& in,
                                                ListenerMemory& memory, bool new_round) const {
  std::vector<GroupState> groups;
  for (const GroupInput& gi : in.groups) {
    GroupState g{.in = &gi, .name = gi.group->name(), .dial = gi.group->traffic_dial_percent()};
    for (size_t i = 0; i < gi.endpoints.size(); ++i) {
      const v1::ProbeResult* p = gi.probes.size() > i ? gi.probes[i] : nullptr;
      uint32_t w = gi.endpoints[i]->weight();
      bool ok = routable(p);
      ok ? ++g.healthy : ++g.unhealthy;
      if (!ok && g.first_error.empty() && p) g.first_error = p->last_error();
      if (w == 0) continue;
      g.total_weight += w;
      if (ok) g.healthy_weight += w;
    }
    g.rtt = group_rtt(gi);
    if (g.total_weight > 0)
      g.health_factor = std::min(
          1.0, policy_.overprovisioning * double(g.healthy_weight) / double(g.total_weight));
    groups.push_back(std::move(g));
  }
  // Routing order: measured groups by RTT, then unmeasured ones; ties and
  // unmeasured groups by name (in.groups is by name, the sort is stable).
  std::vector<GroupState*> order;
  for (GroupState& g : groups) order.push_back(&g);
  std::stable_sort(order.begin(), order.end(), [](const GroupState* a, const GroupState* b) {
    if (a->measured() != b->measured()) return a->measured();
    return a->measured() && a->rtt < b->rtt;
  });
  auto by_name = [&](const std::string& name) -> GroupState* {
    for (GroupState& g : groups)
      if (g.name == name) return &g;
    return nullptr;
  };

  std::vector<std::string> reasons(groups.size());
  auto reason_of = [&](const GroupState* g) -> std::string& { return reasons[g - groups.data()]; };
  GroupState* nearest = nullptr;  // nearest group taking traffic, by RTT
  for (GroupState* g : order)
    if (g->takes_traffic()) {
      nearest = g;
      break;
    }

  bool fail_open = false;
  // Endpoints taking new flows regardless of health (fail-open).
  const GroupState* open_group = nullptr;
  if (!nearest) {
    memory.challenger.clear();
    memory.rounds = 0;
    // Nothing healthy in any group with a dial: the nearest group with
    // weight and dial takes everything, health ignored (GA's fail-open).
    for (GroupState* g : order)
      if (g->dial > 0 && g->total_weight > 0) {
        open_group = g;
        break;
      }
    if (open_group) {
      fail_open = true;
      if (!memory.fail_open) ++memory.fail_open_entered;
      for (GroupState& g : groups) g.share = &g == open_group ? 1.0 : 0.0;
      reason_of(open_group) = "fail-open: no healthy endpoint in any group from " + pop.id +
                              ", the nearest group (" + rtt_text(*open_group) +
                              ") takes every new flow, health ignored (failed open " +
                              std::to_string(memory.fail_open_entered) + " time(s))";
    }
    for (GroupState& g : groups)
      if (&g != open_group) reason_of(&g) = idle_reason(g, pop.id);
  } else if (GroupState* kept = by_name(memory.primary);
             !nearest->measured() && !(kept && kept->takes_traffic())) {
    // No RTT from this PoP yet and no nearest group remembered: nothing says
    // which group is near, so the groups share by dial, scaled by health.
    double sum = 0;
    for (GroupState& g : groups)
      if (g.takes_traffic()) sum += g.dial * g.health_factor;
    for (GroupState& g : groups) {
      if (!g.takes_traffic()) {
        reason_of(&g) = idle_reason(g, pop.id);
        continue;
      }
      g.share = g.dial * g.health_factor / sum;
      std::string r = "no RTT measured from " + pop.id + " yet: groups share by dial, " +
                      std::to_string(g.dial) + " % dial";
      if (g.health_factor < 1) r += " at " + whole_percent(g.health_factor) + " health";
      reason_of(&g) = r + " = " + percent(g.share) + " of new flows";
    }
  } else {
    // The primary: the remembered group while it takes traffic and has an
    // RTT to compare, unless a challenger has been better long enough.
    GroupState* primary = by_name(memory.primary);
    GroupState* challenger = nullptr;
    double margin = 0;
    if (!primary || !primary->takes_traffic() || (!primary->measured() && nearest->measured())) {
      primary = nearest;
      memory.challenger.clear();
      memory.rounds = 0;
    } else if (primary != nearest && nearest->measured()) {
      margin = std::max(policy_.margin_ms, policy_.margin_fraction * primary->rtt);
      if (primary->rtt - nearest->rtt >= margin) {
        if (memory.challenger != nearest->name) {
          memory.challenger = nearest->name;
          memory.rounds = 0;
        }
        if (new_round) ++memory.rounds;
        if (memory.rounds >= policy_.rounds) {
          primary = nearest;
          memory.challenger.clear();
          memory.rounds = 0;
        } else {
          challenger = nearest;
        }
      } else {
        memory.challenger.clear();
        memory.rounds = 0;
      }
    } else {
      memory.challenger.clear();
      memory.rounds = 0;
    }
    memory.primary = primary->name;
    // The groups after the primary: in their previous order, then new ones
    // by RTT; a group passes the one ahead of it only when nearer by the
    // margin, so jitter between two spill-over groups does not swap them.
    std::vector<GroupState*> rest;
    for (const std::string& name : memory.spill_order)
      if (GroupState* g = by_name(name); g && g != primary) rest.push_back(g);
    for (GroupState* g : order)
      if (g != primary && std::find(rest.begin(), rest.end(), g) == rest.end()) rest.push_back(g);
    auto clearly_nearer = [&](const GroupState* b, const GroupState* a) {
      if (!b->measured()) return false;
      if (!a->measured()) return true;
      return a->rtt > b->rtt &&
             a->rtt - b->rtt >= std::max(policy_.margin_ms, policy_.margin_fraction * a->rtt);
    };
    // Adjacent swaps of pairs in that strict order: each removes one
    // inversion, so this ends within n^2 swaps.
    for (bool swapped = true; swapped;) {
      swapped = false;
      for (size_t i = 0; i + 1 < rest.size(); ++i)
        if (clearly_nearer(rest[i + 1], rest[i])) {
          std::swap(rest[i], rest[i + 1]);
          swapped = true;
        }
    }
    order.assign(1, primary);
    order.insert(order.end(), rest.begin(), rest.end());
    memory.spill_order.clear();
    for (const GroupState* g : rest) memory.spill_order.push_back(g->name);

    // Spill-over: each group in order takes its dial of what is left,
    // scaled by its health factor; the rest goes on to the next.
    double left = 1.0;
    std::string causes;  // why traffic reached the next group
    for (GroupState* g : order) {
      if (!g->takes_traffic()) {
        reason_of(g) = idle_reason(*g, pop.id);
        continue;
      }
      std::string r;
      if (left <= 1e-9) {
        r = "standby (" + rtt_text(*g) + "): nearer groups take every new flow";
      } else {
        g->share = left * g->dial / 100.0 * g->health_factor;
        if (g == primary) {
          if (!g->measured())
            r = "kept as nearest: no RTT measured from " + pop.id + " yet, dial " +
                std::to_string(g->dial) + " %";
          else
            r = std::string(g == nearest ? "nearest healthy group (" : "held as nearest (") +
                rtt_text(*g) + "), dial " + std::to_string(g->dial) + " %";
          if (g->health_factor < 1)
            r += ", health " + std::to_string(g->healthy_weight) + "/" +
                 std::to_string(g->total_weight) +
                 " weight x 1.4 = " + whole_percent(g->health_factor);
        } else {
          r = "spill-over (" + rtt_text(*g) + "): " + causes;
        }
        left -= g->share;
        std::string s = shortfall(*g);
        if (!s.empty()) causes += (causes.empty() ? "" : ", ") + s;
      }
      reason_of(g) = r;
    }
    if (challenger) {
      std::string held = "held: " + challenger->name + " " + ms(primary->rtt - challenger->rtt) +
                         " nearer, " + std::to_string(memory.rounds) + " of " +
                         std::to_string(policy_.rounds) + " rounds";
      reason_of(primary) += "; " + held;
      reason_of(challenger) += "; challenger: " + ms(primary->rtt - challenger->rtt) +
                               " nearer than " + primary->name + ", " +
                               std::to_string(memory.rounds) + " of " +
                               std::to_string(policy_.rounds) + " rounds";
    } else if (primary != nearest && primary->measured() && nearest->measured()) {
      reason_of(primary) += "; " + nearest->name + " only " + ms(primary->rtt - nearest->rtt) +
                            " nearer, within the " + ms(margin) + " margin";
    }
    // What is left after the last group taking traffic has nowhere to go:
    // the groups taking traffic share it in proportion.
    double taken = 1.0 - left;
    if (left > 1e-9 && taken > 1e-9) {
      for (GroupState& g : groups)
        if (g.share > 0) {
          g.share /= taken;
          reason_of(&g) += "; scaled to " + percent(g.share) + ": no further group to spill to";
        }
    }
  }
  memory.fail_open = fail_open;

  v1::ListenerRoute route;
  for (const GroupState* g : order) {
    auto* gr = route.add_groups();
    gr->set_endpoint_group(g->name);
    gr->set_region(g->in->group->region());
    gr->set_share_percent(g->share * 100.0);
    gr->set_traffic_dial_percent(g->dial);
    gr->set_healthy_endpoints(g->healthy);
    gr->set_endpoints(static_cast<uint32_t>(g->in->endpoints.size()) + g->in->left_out);
    gr->set_rtt_ms(g->rtt);
    std::string r = reason_of(g);
    if (!g->in->left_out_reason.empty()) r += "; " + g->in->left_out_reason;
    gr->set_reason(r);
  }
  // The flat list in configuration order (groups by name), so that the
  // dataplane's Maglev inputs do not move when only the RTT order does.
  std::vector<double> shares;
  std::vector<const v1::Endpoint*> endpoints;
  std::vector<const GroupState*> owner;
  std::vector<bool> unhealthy;
  for (const GroupState& g : groups) {
    bool open = &g == open_group;
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
    fe->set_unhealthy(unhealthy[i]);
  }
  route.set_fail_open(fail_open);
  return route;
}

}  // namespace onramp::ctl
