#include "controlplane/routing/relay_choice.h"

#include <algorithm>
#include <cstdio>

#include "common/ip_address.h"

namespace onramp::ctl {
namespace {

// The name a challenger has in memory when it is the direct path: PoP ids
// are upper case, so it never names a PoP.
constexpr char kDirect[] = "direct";

double margin_at(const RoutePolicy& policy, double rtt) {
  return std::max(policy.relay_margin_ms, policy.relay_margin_fraction * rtt);
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f %%", v);
  return buf;
}

// Whether `peer` has a usable tunnel address, not this PoP's own, of every
// family of the group's endpoints (a relayed packet goes to the relay's
// address of its family).
bool has_families(const PeerPop& peer, const GroupInput& group, const v1::TunnelSource& self) {
  for (const v1::Endpoint* e : group.endpoints) {
    auto a = IpAddress::parse(e->address());
    bool v4 = a && a->is_v4();
    const std::string& relay = v4 ? peer.tunnel_source.ipv4() : peer.tunnel_source.ipv6();
    auto r = IpAddress::parse(relay);
    if (!r || unusable_address_reason(*r) || relay == self.ipv4() || relay == self.ipv6())
      return false;
  }
  return true;
}

// Counts a round for `challenger`; true once it has outlasted the rounds.
bool challenge(GroupPathMemory& memory, const std::string& challenger, const RoutePolicy& policy,
               bool new_round) {
  if (memory.challenger != challenger) {
    memory.challenger = challenger;
    memory.rounds = 0;
  }
  if (new_round) ++memory.rounds;
  if (memory.rounds < policy.rounds) return false;
  memory.challenger.clear();
  memory.rounds = 0;
  return true;
}

void forget_challenger(GroupPathMemory& memory) {
  memory.challenger.clear();
  memory.rounds = 0;
}

}  // namespace

std::string relay_ineligible(const PeerPop& peer, const PopHealth* own, const RoutePolicy& policy) {
  if (!peer.connected) return "it is not connected to the controller";
  if (!peer.health) return "no probe report from it";
  if (!peer.dataplane_healthy) return "its dataplane is unhealthy";
  if (!peer.bgp_announced) return "its BGP announcement is withdrawn";
  const v1::PeerResult* path = own ? own->peer(peer.id) : nullptr;
  // Before the loss: a path that stopped answering is down long before its
  // loss window fills.
  if (path && path->down()) return "the path to it is down (its latest probes went unanswered)";
  if (!path || path->rtt_ms() < 0) return "no RTT measured to it";
  if (path->loss_percent() > policy.relay_max_loss_percent)
    return "the path to it loses " + percent(path->loss_percent()) + " of probes (more than " +
           percent(policy.relay_max_loss_percent) + ")";
  return "";
}

double relay_group_rtt(const GroupInput& group, const v1::Accelerator& accelerator,
                       const v1::Listener& listener, const PopHealth& relay) {
  std::vector<double> rtts;
  for (const v1::Endpoint* e : group.endpoints) {
    if (e->weight() == 0) continue;
    const v1::ProbeResult* r =
        relay.find(accelerator.name(), listener.name(), group.group->name(), e->address());
    if (r && r->known() && r->healthy() && r->rtt_ms() >= 0) rtts.push_back(r->rtt_ms());
  }
  if (rtts.empty()) return -1;
  std::sort(rtts.begin(), rtts.end());
  size_t n = rtts.size();
  return n % 2 ? rtts[n / 2] : (rtts[n / 2 - 1] + rtts[n / 2]) / 2;
}

PathChoice choose_path(const ListenerInput& listener, const GroupInput& group,
                       const PopContext& pop, const PopHealth* own, const RoutePolicy& policy,
                       GroupPathMemory& memory, bool new_round) {
  PathChoice c;
  c.direct_ms = group_rtt(group);
  if (listener.accelerator->relay_off()) {
    memory = GroupPathMemory{};
    c.exit = PathExit::kRelayOff;
    return c;
  }
  std::optional<RelayCandidate> current;
  std::string current_why = memory.via.empty() ? "" : "disconnected";
  for (const PeerPop& peer : pop.peers) {
    if (peer.id == pop.id) continue;
    std::string why = relay_ineligible(peer, own, policy);
    RelayCandidate cand{.peer = &peer};
    if (why.empty() && !has_families(peer, group, pop.tunnel_source))
      why = "no usable tunnel address of the endpoints' family";
    if (why.empty()) {
      cand.relay_to_group_ms =
          relay_group_rtt(group, *listener.accelerator, *listener.listener, *peer.health);
      if (cand.relay_to_group_ms < 0) why = "no healthy endpoint of the group measured from it";
    }
    if (peer.id == memory.via) current_why = why;
    if (!why.empty()) continue;
    const v1::PeerResult* path = own->peer(peer.id);
    cand.to_relay_ms = path->rtt_ms();
    cand.loss_percent = path->loss_percent();
    if (peer.id == memory.via) current = cand;
    // The lowest relayed RTT; of equal ones the first PoP by id (peers are
    // by id), so replicas choose alike.
    if (!c.best || cand.via_ms() < c.best->via_ms()) c.best = cand;
  }

  if (memory.via.empty()) {
    if (!c.best) {
      c.exit = PathExit::kNoCandidate;
      forget_challenger(memory);
    } else if (c.direct_ms < 0) {
      c.exit = PathExit::kDirectUnmeasured;
      forget_challenger(memory);
    } else {
      c.margin = margin_at(policy, c.direct_ms);
      if (c.direct_ms - c.best->via_ms() < c.margin) {
        c.exit = PathExit::kDirectBetter;
        forget_challenger(memory);
      } else if (challenge(memory, c.best->peer->id, policy, new_round)) {
        c.via = c.best->peer->id;
        c.chosen = c.best;
        c.exit = PathExit::kRelayWon;
      } else {
        c.exit = PathExit::kRelayHeld;
        c.challenger = c.best->peer->id;
      }
    }
    memory.via = c.via;
    return c;
  }

  if (!current) {
    // A relay that failed is left at once, not after rounds: new flows
    // must not wait on a PoP that may drop them.
    c.exit = PathExit::kRelayLost;
    c.lost_why = memory.via + ": " + current_why;
    memory = GroupPathMemory{};
    return c;
  }
  c.via = memory.via;
  c.chosen = current;
  c.margin = margin_at(policy, current->via_ms());
  std::string challenger;
  if (c.best->peer != current->peer && current->via_ms() - c.best->via_ms() >= c.margin)
    challenger = c.best->peer->id;
  else if (c.direct_ms >= 0 && current->via_ms() - c.direct_ms >= c.margin)
    challenger = kDirect;
  if (challenger.empty()) {
    c.exit = PathExit::kRelayKept;
    forget_challenger(memory);
  } else if (!challenge(memory, challenger, policy, new_round)) {
    c.exit = challenger == kDirect ? PathExit::kDirectHeld : PathExit::kRelayHeld;
    c.challenger = challenger == kDirect ? "" : challenger;
  } else if (challenger == kDirect) {
    c.via.clear();
    c.chosen.reset();
    c.exit = PathExit::kDirectWon;
  } else {
    c.via = challenger;
    c.chosen = c.best;
    c.exit = PathExit::kRelayWon;
  }
  memory.via = c.via;
  return c;
}

}  // namespace onramp::ctl
