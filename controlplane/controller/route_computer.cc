#include "controlplane/controller/route_computer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "dataplane/core/ip_address.h"

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
  return group.region().empty() ? group.name() : group.name() + " (" + group.region() + ")";
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

PopRoutes RouteComputer::compute(const Config& config, const PopContext& pop) const {
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
          auto a = dp::IpAddress::parse(e->address());
          bool v4 = a && a->is_v4();
          if (v4 ? !has_v4 : !has_v6) {
            ++(v4 ? left_v4 : left_v6);
            continue;
          }
          gi.endpoints.push_back(e);
          auto* t = out.probe_plan.add_targets();
          t->set_accelerator(acc.name());
          t->set_listener(l->name());
          t->set_endpoint_group(g->name());
          t->set_address(e->address());
          t->set_port(probe_port(*l, *g));
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
      v1::ListenerRoute route = route_listener(pop, in);
      route.set_accelerator(acc.name());
      route.set_listener(l->name());

      auto* fl = out.table.add_listeners();
      fl->set_name(table_listener_name(acc.name(), l->name()));
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

v1::ListenerRoute RouteComputer::route_listener(const PopContext&, const ListenerInput& in) const {
  v1::ListenerRoute route;
  // A group takes traffic when its dial is above 0 and one of its endpoints
  // has a weight above 0.
  std::vector<uint64_t> weight_sums;
  uint64_t dial_sum = 0;
  for (const GroupInput& g : in.groups) {
    uint64_t sum = 0;
    for (const v1::Endpoint* e : g.endpoints) sum += e->weight();
    weight_sums.push_back(sum);
    if (sum > 0) dial_sum += g.group->traffic_dial_percent();
  }
  std::vector<double> shares;
  std::vector<const v1::Endpoint*> endpoints;
  std::vector<const GroupInput*> owner;
  for (size_t i = 0; i < in.groups.size(); ++i) {
    const GroupInput& g = in.groups[i];
    const v1::EndpointGroup& eg = *g.group;
    uint32_t dial = eg.traffic_dial_percent();
    double share = (weight_sums[i] > 0 && dial_sum > 0) ? double(dial) / double(dial_sum) : 0.0;
    auto* gr = route.add_groups();
    gr->set_endpoint_group(eg.name());
    gr->set_region(eg.region());
    gr->set_share_percent(share * 100.0);
    gr->set_traffic_dial_percent(dial);
    // Every endpoint counts as healthy until probe results arrive.
    gr->set_healthy_endpoints(static_cast<uint32_t>(g.endpoints.size()));
    gr->set_endpoints(static_cast<uint32_t>(g.endpoints.size()) + g.left_out);
    gr->set_rtt_ms(-1);
    std::string reason;
    if (g.endpoints.empty())
      reason = "no endpoint: takes no traffic";
    else if (weight_sums[i] == 0)
      reason = "every endpoint has weight 0: drained, existing flows stay";
    else if (dial == 0)
      reason = "traffic dial 0 %: drained, existing flows stay";
    else
      reason = "weights and dials as configured: dial " + std::to_string(dial) + " of " +
               std::to_string(dial_sum) +
               " dialled across groups taking traffic = " + percent(share) + " of new flows";
    if (!g.left_out_reason.empty()) reason += "; " + g.left_out_reason;
    gr->set_reason(reason);
    for (const v1::Endpoint* e : g.endpoints) {
      endpoints.push_back(e);
      owner.push_back(&g);
      shares.push_back(weight_sums[i] > 0 ? share * double(e->weight()) / double(weight_sums[i])
                                          : 0.0);
    }
  }
  std::vector<uint32_t> weights = scale_weights(shares);
  for (size_t i = 0; i < endpoints.size(); ++i) {
    auto* fe = route.add_endpoints();
    fe->set_address(endpoints[i]->address());
    fe->set_weight(weights[i]);
    fe->set_mode(endpoints[i]->mode());
    fe->set_label(endpoint_label(*owner[i]->group));
  }
  route.set_fail_open(false);
  return route;
}

}  // namespace onramp::ctl
