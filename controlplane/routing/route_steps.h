// The routing policy for one listener at one PoP, as the steps a reader can
// name: group states, routing order, then one of three ways (fail-open,
// shares by dial, or nearest group first with hysteresis and spill-over).
// Each step that ends the policy early or picks one of several exits says
// which in a RouteStats counter. The prose lives in route_explanation.h, the
// proto output in route_computer.cc.
#pragma once

#include <string>
#include <vector>

#include "controlplane/routing/route_computer.h"

namespace onramp::ctl {

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
  // min(1, overprovisioning x healthy_weight / total_weight); 0 without weight.
  double health_factor = 0;
  double share = 0;      // of new flows, 0..1
  bool standby = false;  // takes traffic, but nearer groups left none for it
  bool takes_traffic() const { return dial > 0 && healthy_weight > 0; }
  bool measured() const { return rtt >= 0; }
};

// Which way the policy routed a listener.
enum class RouteMode {
  kIdle,       // no group can take new flows, not even failing open
  kFailOpen,   // nothing healthy: one group takes every new flow, health ignored
  kByDial,     // no RTT and no primary remembered: groups share by dial
  kByNearest,  // the primary first, the rest spills over in RTT order
};

// How the primary was chosen (kByNearest only).
enum class PrimaryExit {
  kNearest,         // the nearest group taking traffic
  kChallengerWon,   // a nearer group outlasted the hysteresis
  kHeld,            // a group nearer by the margin waits out its rounds
  kWithinMargin,    // a group nearer, but not by the margin
  kKeptWithoutRtt,  // the remembered primary, no RTT from the PoP yet
};

// Everything the policy decided for one listener: the groups with their
// shares, their routing order, and the facts the explanation tells. The
// pointers point into `groups`, so a plan is moved, never copied.
struct RoutePlan {
  RoutePlan() = default;
  RoutePlan(RoutePlan&&) = default;
  RoutePlan& operator=(RoutePlan&&) = default;
  RoutePlan(const RoutePlan&) = delete;
  RoutePlan& operator=(const RoutePlan&) = delete;

  std::vector<GroupState> groups;  // by name, as the configuration lists them
  std::vector<GroupState*> order;  // routing order, as the route lists them
  RouteMode mode = RouteMode::kIdle;
  GroupState* nearest = nullptr;     // nearest group taking traffic, by RTT
  GroupState* open_group = nullptr;  // kFailOpen: the group taking every flow
  // kByNearest:
  GroupState* primary = nullptr;
  GroupState* challenger = nullptr;  // kHeld: the nearer group waiting
  PrimaryExit primary_exit = PrimaryExit::kNearest;
  double margin = 0;      // kHeld, kWithinMargin: the margin it had to beat
  bool rescaled = false;  // flows left after the last group, shared in proportion
};

// The whole policy for one listener: the steps below in order. Updates
// `memory` and counts the exits taken in `stats`.
RoutePlan plan_listener(const ListenerInput& in, const RoutePolicy& policy, ListenerMemory& memory,
                        bool new_round, RouteStats& stats);

// ---- the steps ----

// Per group: dial, weights, health counts, RTT and health factor.
std::vector<GroupState> group_states(const ListenerInput& in, double overprovisioning);

// Measured groups by RTT, then unmeasured ones; ties and unmeasured groups
// by name (`groups` is by name, the sort is stable).
std::vector<GroupState*> rtt_order(std::vector<GroupState>& groups);

// The first group in `order` that takes traffic, null when none does.
GroupState* nearest_taking_traffic(const std::vector<GroupState*>& order);

// When nothing can take traffic: the nearest group with weight and dial
// takes every new flow, health ignored (GA's fail-open). Null when every
// group is empty, drained or dialled to 0.
GroupState* fail_open_group(const std::vector<GroupState*>& order);

// No RTT to order the groups by: each group taking traffic shares by its
// dial scaled by its health.
void share_by_dial(std::vector<GroupState>& groups);

// The primary: the remembered group while it takes traffic and has an RTT
// to compare, unless a challenger has been better by the margin for the
// policy's rounds. Sets plan.primary, challenger, margin and primary_exit;
// keeps the challenger and its rounds in `memory`.
void choose_primary(RoutePlan& plan, const RoutePolicy& policy, ListenerMemory& memory,
                    bool new_round);

// The groups after the primary: in their remembered order, then new ones by
// RTT; a group passes the one ahead of it only when nearer by the margin, so
// jitter between two spill-over groups does not swap them. Sets plan.order
// and memory.spill_order; true when a group passed another.
bool order_spill_over(RoutePlan& plan, const RoutePolicy& policy, ListenerMemory& memory);

// Each group in plan.order takes its dial of what is left, scaled by its
// health; the rest goes on to the next. Returns what is left at the end.
double spill_shares(RoutePlan& plan);

// What is left after the last group has nowhere to go: the groups taking
// traffic share it in proportion. Sets plan.rescaled when it did.
void share_remainder(RoutePlan& plan, double left);

}  // namespace onramp::ctl
