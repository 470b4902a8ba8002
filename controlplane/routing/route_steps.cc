#include "controlplane/routing/route_steps.h"

#include <algorithm>

#include "controlplane/routing/relay_choice.h"

namespace onramp::ctl {
namespace {

GroupState* by_name(std::vector<GroupState>& groups, const std::string& name) {
  for (GroupState& g : groups)
    if (g.name == name) return &g;
  return nullptr;
}

void forget_challenger(ListenerMemory& memory) {
  memory.challenger.clear();
  memory.rounds = 0;
}

// max(margin_ms, margin_fraction x rtt): how much nearer than a group at
// `rtt` another must be to pass it.
double margin_at(const RoutePolicy& policy, double rtt) {
  return std::max(policy.margin_ms, policy.margin_fraction * rtt);
}

// The primary first, then the rest spilling over, with every exit counted.
void route_by_nearest(RoutePlan& plan, const RoutePolicy& policy, ListenerMemory& memory,
                      bool new_round, RouteStats& stats) {
  ++stats.by_nearest;
  std::string remembered = memory.primary;
  choose_primary(plan, policy, memory, new_round);
  switch (plan.primary_exit) {
    case PrimaryExit::kNearest:
      ++stats.primary_nearest;
      break;
    case PrimaryExit::kChallengerWon:
      ++stats.primary_challenger_won;
      break;
    case PrimaryExit::kHeld:
      ++stats.primary_kept_by_hysteresis;
      break;
    case PrimaryExit::kWithinMargin:
      ++stats.primary_kept_within_margin;
      break;
    case PrimaryExit::kKeptWithoutRtt:
      ++stats.primary_kept_without_rtt;
      break;
  }
  if (!remembered.empty() && remembered != plan.primary->name) ++stats.primary_switched;

  if (order_spill_over(plan, policy, memory)) ++stats.spill_reordered;
  double left = spill_shares(plan);
  if (std::any_of(plan.order.begin() + 1, plan.order.end(),
                  [](const GroupState* g) { return g->share > 0; }))
    ++stats.spilled;
  share_remainder(plan, left);
  if (plan.rescaled) ++stats.remainder_shared;
}

}  // namespace

RoutePlan plan_listener(const ListenerInput& in, const RoutePolicy& policy, ListenerMemory& memory,
                        bool new_round, RouteStats& stats) {
  RoutePlan plan;
  plan.groups = group_states(in, policy.overprovisioning);
  plan.order = rtt_order(plan.groups);
  plan.nearest = nearest_taking_traffic(plan.order);
  GroupState* remembered = by_name(plan.groups, memory.primary);

  if (!plan.nearest) {
    forget_challenger(memory);
    plan.open_group = fail_open_group(plan.order);
    if (!plan.open_group) {
      plan.mode = RouteMode::kIdle;
      ++stats.no_traffic;
    } else {
      plan.mode = RouteMode::kFailOpen;
      ++stats.fail_open;
      if (!memory.fail_open) ++memory.fail_open_entered;
      for (GroupState& g : plan.groups) g.share = &g == plan.open_group ? 1.0 : 0.0;
    }
  } else if (!plan.nearest->measured() && !(remembered && remembered->takes_traffic())) {
    // Nothing says which group is near.
    plan.mode = RouteMode::kByDial;
    ++stats.no_rtt;
    share_by_dial(plan.groups);
  } else {
    plan.mode = RouteMode::kByNearest;
    route_by_nearest(plan, policy, memory, new_round, stats);
  }
  memory.fail_open = plan.mode == RouteMode::kFailOpen;
  return plan;
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

std::vector<GroupState> group_states(const ListenerInput& in, double overprovisioning) {
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
    // Through a relay when that is how the group is reached.
    g.rtt = gi.path ? gi.path->rtt_ms() : group_rtt(gi);
    if (g.total_weight > 0)
      g.health_factor =
          std::min(1.0, overprovisioning * double(g.healthy_weight) / double(g.total_weight));
    groups.push_back(std::move(g));
  }
  return groups;
}

std::vector<GroupState*> rtt_order(std::vector<GroupState>& groups) {
  std::vector<GroupState*> order;
  for (GroupState& g : groups) order.push_back(&g);
  std::stable_sort(order.begin(), order.end(), [](const GroupState* a, const GroupState* b) {
    if (a->measured() != b->measured()) return a->measured();
    return a->measured() && a->rtt < b->rtt;
  });
  return order;
}

GroupState* nearest_taking_traffic(const std::vector<GroupState*>& order) {
  for (GroupState* g : order)
    if (g->takes_traffic()) return g;
  return nullptr;
}

GroupState* fail_open_group(const std::vector<GroupState*>& order) {
  for (GroupState* g : order)
    if (g->dial > 0 && g->total_weight > 0) return g;
  return nullptr;
}

void share_by_dial(std::vector<GroupState>& groups) {
  double sum = 0;
  for (const GroupState& g : groups)
    if (g.takes_traffic()) sum += g.dial * g.health_factor;
  for (GroupState& g : groups)
    if (g.takes_traffic()) g.share = g.dial * g.health_factor / sum;
}

void choose_primary(RoutePlan& plan, const RoutePolicy& policy, ListenerMemory& memory,
                    bool new_round) {
  GroupState* nearest = plan.nearest;
  GroupState* kept = by_name(plan.groups, memory.primary);
  plan.primary = kept;
  plan.challenger = nullptr;
  if (!kept || !kept->takes_traffic() || (!kept->measured() && nearest->measured())) {
    plan.primary = nearest;
    plan.primary_exit = PrimaryExit::kNearest;
    forget_challenger(memory);
  } else if (kept != nearest && nearest->measured()) {
    plan.margin = margin_at(policy, kept->rtt);
    if (kept->rtt - nearest->rtt >= plan.margin) {
      if (memory.challenger != nearest->name) {
        memory.challenger = nearest->name;
        memory.rounds = 0;
      }
      if (new_round) ++memory.rounds;
      if (memory.rounds >= policy.rounds) {
        plan.primary = nearest;
        plan.primary_exit = PrimaryExit::kChallengerWon;
        forget_challenger(memory);
      } else {
        plan.challenger = nearest;
        plan.primary_exit = PrimaryExit::kHeld;
      }
    } else {
      plan.primary_exit = PrimaryExit::kWithinMargin;
      forget_challenger(memory);
    }
  } else {
    // The remembered group is the nearest, or nothing is measured to
    // compare it with.
    plan.primary_exit = kept->measured() ? PrimaryExit::kNearest : PrimaryExit::kKeptWithoutRtt;
    forget_challenger(memory);
  }
  memory.primary = plan.primary->name;
}

bool order_spill_over(RoutePlan& plan, const RoutePolicy& policy, ListenerMemory& memory) {
  std::vector<GroupState*> rest;
  for (const std::string& name : memory.spill_order)
    if (GroupState* g = by_name(plan.groups, name); g && g != plan.primary) rest.push_back(g);
  for (GroupState* g : plan.order)
    if (g != plan.primary && std::find(rest.begin(), rest.end(), g) == rest.end())
      rest.push_back(g);
  auto clearly_nearer = [&](const GroupState* b, const GroupState* a) {
    if (!b->measured()) return false;
    if (!a->measured()) return true;
    return a->rtt > b->rtt && a->rtt - b->rtt >= margin_at(policy, a->rtt);
  };
  // Adjacent swaps of pairs in that strict order: each removes one
  // inversion, so this ends within n^2 swaps.
  bool passed = false;
  for (bool swapped = true; swapped;) {
    swapped = false;
    for (size_t i = 0; i + 1 < rest.size(); ++i)
      if (clearly_nearer(rest[i + 1], rest[i])) {
        std::swap(rest[i], rest[i + 1]);
        swapped = passed = true;
      }
  }
  plan.order.assign(1, plan.primary);
  plan.order.insert(plan.order.end(), rest.begin(), rest.end());
  memory.spill_order.clear();
  for (const GroupState* g : rest) memory.spill_order.push_back(g->name);
  return passed;
}

double spill_shares(RoutePlan& plan) {
  double left = 1.0;
  for (GroupState* g : plan.order) {
    if (!g->takes_traffic()) continue;
    if (left <= 1e-9) {
      g->standby = true;
      continue;
    }
    g->share = left * g->dial / 100.0 * g->health_factor;
    left -= g->share;
  }
  return left;
}

void share_remainder(RoutePlan& plan, double left) {
  double taken = 1.0 - left;
  if (left <= 1e-9 || taken <= 1e-9) return;
  plan.rescaled = true;
  for (GroupState& g : plan.groups)
    if (g.share > 0) g.share /= taken;
}

}  // namespace onramp::ctl
