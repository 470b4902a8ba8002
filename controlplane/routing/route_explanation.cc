#include "controlplane/routing/route_explanation.h"

#include <cstdio>

namespace onramp::ctl {
namespace {

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %%", share * 100.0);
  return buf;
}

std::string whole_percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f %%", fraction * 100.0);
  return buf;
}

std::string ms(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", v);
  return buf;
}

// The overprovisioning factor as configured: 1.4, 2, 1.25.
std::string factor(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", f);
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

// The reasons of a plan, indexed by group.
class Explanation {
 public:
  Explanation(const RoutePlan& plan, const ListenerMemory& memory, const RoutePolicy& policy,
              const std::string& pop)
      : plan_(plan), memory_(memory), policy_(policy), pop_(pop), reasons_(plan.groups.size()) {}

  std::vector<std::string> take() {
    switch (plan_.mode) {
      case RouteMode::kIdle:
      case RouteMode::kFailOpen:
        fail_open();
        break;
      case RouteMode::kByDial:
        by_dial();
        break;
      case RouteMode::kByNearest:
        spill_over();
        hysteresis();
        if (plan_.rescaled) remainder();
        break;
    }
    for (const GroupState& g : plan_.groups)
      if (!g.in->left_out_reason.empty()) of(&g) += "; " + g.in->left_out_reason;
    return std::move(reasons_);
  }

 private:
  std::string& of(const GroupState* g) { return reasons_[g - plan_.groups.data()]; }

  void fail_open() {
    for (const GroupState& g : plan_.groups)
      of(&g) = &g == plan_.open_group ? fail_open_reason(g) : idle_reason(g, pop_);
  }

  std::string fail_open_reason(const GroupState& g) const {
    return "fail-open: no healthy endpoint in any group from " + pop_ + ", the nearest group (" +
           rtt_text(g) + ") takes every new flow, health ignored (failed open " +
           std::to_string(memory_.fail_open_entered) + " time(s))";
  }

  void by_dial() {
    for (const GroupState& g : plan_.groups) {
      if (!g.takes_traffic()) {
        of(&g) = idle_reason(g, pop_);
        continue;
      }
      std::string r = "no RTT measured from " + pop_ + " yet: groups share by dial, " +
                      std::to_string(g.dial) + " % dial";
      if (g.health_factor < 1) r += " at " + whole_percent(g.health_factor) + " health";
      of(&g) = r + " = " + percent(g.share) + " of new flows";
    }
  }

  // Each group in routing order: idle, standby, the primary, or spill-over
  // with what made the groups before it give traffic away.
  void spill_over() {
    std::string causes;
    for (const GroupState* g : plan_.order) {
      if (!g->takes_traffic()) {
        of(g) = idle_reason(*g, pop_);
      } else if (g->standby) {
        of(g) = "standby (" + rtt_text(*g) + "): nearer groups take every new flow";
      } else {
        of(g) = g == plan_.primary ? primary_reason(*g)
                                   : "spill-over (" + rtt_text(*g) + "): " + causes;
        std::string s = shortfall(*g);
        if (!s.empty()) causes += (causes.empty() ? "" : ", ") + s;
      }
    }
  }

  std::string primary_reason(const GroupState& g) const {
    std::string r;
    if (!g.measured())
      r = "kept as nearest: no RTT measured from " + pop_ + " yet, dial " + std::to_string(g.dial) +
          " %";
    else
      r = std::string(&g == plan_.nearest ? "nearest healthy group (" : "held as nearest (") +
          rtt_text(g) + "), dial " + std::to_string(g.dial) + " %";
    if (g.health_factor < 1)
      r += ", health " + std::to_string(g.healthy_weight) + "/" + std::to_string(g.total_weight) +
           " weight x " + factor(policy_.overprovisioning) + " = " + whole_percent(g.health_factor);
    return r;
  }

  // Why the primary is not the nearest group.
  void hysteresis() {
    const GroupState* primary = plan_.primary;
    const GroupState* nearest = plan_.nearest;
    if (const GroupState* challenger = plan_.challenger) {
      std::string nearer = ms(primary->rtt - challenger->rtt);
      std::string count =
          std::to_string(memory_.rounds) + " of " + std::to_string(policy_.rounds) + " rounds";
      of(primary) += "; held: " + challenger->name + " " + nearer + " nearer, " + count;
      of(challenger) += "; challenger: " + nearer + " nearer than " + primary->name + ", " + count;
    } else if (primary != nearest && primary->measured() && nearest->measured()) {
      of(primary) += "; " + nearest->name + " only " + ms(primary->rtt - nearest->rtt) +
                     " nearer, within the " + ms(plan_.margin) + " margin";
    }
  }

  void remainder() {
    for (const GroupState& g : plan_.groups)
      if (g.share > 0)
        of(&g) += "; scaled to " + percent(g.share) + ": no further group to spill to";
  }

  const RoutePlan& plan_;
  const ListenerMemory& memory_;
  const RoutePolicy& policy_;
  const std::string& pop_;
  std::vector<std::string> reasons_;
};

}  // namespace

std::vector<std::string> explain_plan(const RoutePlan& plan, const ListenerMemory& memory,
                                      const RoutePolicy& policy, const std::string& pop) {
  return Explanation(plan, memory, policy, pop).take();
}

namespace {

// "45.2 + 2.1 ms"
std::string legs(const RelayCandidate& r) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f + %.1f ms", r.to_relay_ms, r.relay_to_group_ms);
  return buf;
}

// How much faster `fast` is than `slow`, "69 %".
std::string gain(double fast, double slow) {
  return slow > 0 ? whole_percent((slow - fast) / slow) : "0 %";
}

std::string waits_out(const RoutePolicy& policy) {
  return "waits out " + std::to_string(policy.rounds) + " rounds of hysteresis";
}

}  // namespace

std::string explain_path(const PathChoice& p, const RoutePolicy& policy) {
  const std::string direct = p.direct_ms >= 0 ? ms(p.direct_ms) : "unmeasured";
  switch (p.exit) {
    case PathExit::kRelayOff:
      return "direct: relaying is off for this accelerator";
    case PathExit::kNoCandidate:
      return "direct: no relay PoP is eligible (connected, dataplane healthy, BGP announced, "
             "a measured path to it and to the group)";
    case PathExit::kDirectUnmeasured:
      return "direct: no RTT to the group yet to compare via " + p.best->peer->id + " (" +
             legs(*p.best) + ") with";
    case PathExit::kDirectBetter:
      return "direct: via " + p.best->peer->id + " would be " + ms(p.best->via_ms()) +
             ", not better than " + direct + " by the " + ms(p.margin) + " margin";
    case PathExit::kRelayHeld:
      if (p.chosen)
        return "via " + p.via + ": " + legs(*p.chosen) + "; via " + p.challenger + " (" +
               legs(*p.best) + ") is better by the " + ms(p.margin) + " margin and " +
               waits_out(policy);
      return "direct " + direct + ": via " + p.best->peer->id + " (" + legs(*p.best) +
             ") is better by " + gain(p.best->via_ms(), p.direct_ms) + " and " + waits_out(policy);
    case PathExit::kRelayWon:
    case PathExit::kRelayKept:
      if (p.direct_ms < 0) return "via " + p.via + ": " + legs(*p.chosen) + "; direct unmeasured";
      if (p.chosen->via_ms() < p.direct_ms)
        return "via " + p.via + ": " + legs(*p.chosen) + " beats direct " + direct + " by " +
               gain(p.chosen->via_ms(), p.direct_ms);
      return "via " + p.via + ": " + legs(*p.chosen) + "; direct " + direct +
             " is not better by the " + ms(p.margin) + " margin";
    case PathExit::kRelayLost:
      return "direct: relay " + p.lost_why + "; back to direct at once";
    case PathExit::kDirectHeld:
      return "via " + p.via + ": " + legs(*p.chosen) + "; direct " + direct + " is better by the " +
             ms(p.margin) + " margin and " + waits_out(policy);
    case PathExit::kDirectWon:
      return "direct: " + direct + " beats the relayed path by the margin";
  }
  return "";
}

}  // namespace onramp::ctl
