// From configuration to what one PoP forwards: the per-PoP ForwardingTable
// (one flat weighted endpoint list per listener, docs/design.md "Routing"), the probe
// plan, and per listener an explanation of every group's share.
//
// The policy (docs/routing.md): groups ordered by the RTT the
// PoP measured, the nearest healthy one takes its dial scaled by its health,
// the rest spills to the next nearest; fail-open when nothing is healthy;
// hysteresis on the nearest group. compute() is a function of the
// configuration, the PoP, its health view and the routing memory it returns;
// the policy's steps are in route_steps.h, its prose in route_explanation.h.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "controlplane/routing/config.h"
#include "controlplane/routing/health_view.h"
#include "onramp/v1/admin.pb.h"
#include "onramp/v1/forwarding.pb.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::ctl {

// Another PoP the controller knows, connected or not: a peer this PoP
// probes with mesh echoes and accepts relayed packets from, and, while
// connected, a candidate relay (docs/routing.md "Relaying over the
// backbone"). Listing the PoPs that are only disconnected too keeps a PoP's
// table the same while the others come and go (a controller restart).
struct PeerPop {
  std::string id;
  v1::TunnelSource tunnel_source;
  // Its other hosts' own tunnel sources (a PoP of several servers): where
  // relayed packets from it may also come from.
  std::vector<v1::TunnelSource> host_tunnel_sources;
  bool connected = true;
  // What makes it an eligible relay (relay_choice.h): its status, and its
  // own probe report, whose endpoint RTTs are the relay's leg to a group.
  // An agent routing on its own knows none of this: no peer relays.
  bool dataplane_healthy = false;
  bool bgp_announced = false;
  const PopHealth* health = nullptr;
};

// What the computation needs to know of a PoP.
struct PopContext {
  std::string id;
  v1::TunnelSource tunnel_source;
  // Every other connected PoP, by id.
  std::vector<PeerPop> peers;
};

// The tunnel address of `peer` this PoP probes: IPv4 when both have one,
// else IPv6 when both have one, else "" (no common family: not probed).
std::string peer_address(const v1::TunnelSource& self, const v1::TunnelSource& peer);

struct PathChoice;  // relay_choice.h

// One endpoint group of a listener, as seen from one PoP.
struct GroupInput {
  const v1::EndpointGroup* group = nullptr;
  // Endpoints the PoP can reach: it has a tunnel source of their family.
  std::vector<const v1::Endpoint*> endpoints;
  // The PoP's probe result for each of `endpoints`, null when none.
  std::vector<const v1::ProbeResult*> probes;
  // Endpoints left out because it has not, and the sentence saying so.
  uint32_t left_out = 0;
  std::string left_out_reason;
  // How the group is reached (direct or through a relay PoP), and so the
  // RTT it is ranked by; null: direct, ranked by group_rtt.
  const PathChoice* path = nullptr;
};

struct ListenerInput {
  const v1::Accelerator* accelerator = nullptr;
  const v1::Listener* listener = nullptr;
  std::vector<GroupInput> groups;  // by name
};

// How one group is reached, between rounds (relay_choice.h): the relay PoP
// ("" direct), and the other path waiting out the hysteresis ("direct" for
// the direct path, "" none) with its rounds.
struct GroupPathMemory {
  std::string via;
  std::string challenger;
  uint32_t rounds = 0;
  bool operator==(const GroupPathMemory&) const = default;
};

// What routing remembers of one listener at one PoP between rounds (a round
// is one probe report from that PoP).
struct ListenerMemory {
  std::string primary;     // the group that takes traffic first, "" none yet
  std::string challenger;  // a nearer group waiting out the hysteresis
  uint32_t rounds = 0;     // consecutive rounds the challenger was better
  bool fail_open = false;
  uint64_t fail_open_entered = 0;  // times the listener failed open
  // The groups after the primary, in the order they last received
  // spill-over: a group moves ahead of another only when nearer by the margin.
  std::vector<std::string> spill_order;
  // By group, only the groups reached through a relay or with a path
  // waiting: every other group is reached directly.
  std::map<std::string, GroupPathMemory> paths;
};
// By table listener name ("accelerator/listener").
using RouteMemory = std::map<std::string, ListenerMemory>;

struct RoutePolicy {
  // A group's health factor is min(1, overprovisioning x healthy weight /
  // total weight), as Envoy's priority levels; the explanation prints it.
  double overprovisioning = 1.4;
  // A challenger replaces the nearest group when it is better by
  // max(margin_ms, margin_fraction x the current RTT) for `rounds`
  // consecutive rounds.
  double margin_ms = 5.0;
  double margin_fraction = 0.10;
  uint32_t rounds = 3;
  // Relaying (docs/routing.md "Relaying over the backbone"): a path beats
  // the current one when better by max(relay_margin_ms,
  // relay_margin_fraction x the current path's RTT) for `rounds`
  // consecutive rounds; a path to a relay losing more than
  // relay_max_loss_percent of its probes carries nothing.
  double relay_margin_ms = 10.0;
  double relay_margin_fraction = 0.20;
  double relay_max_loss_percent = 5.0;
};

// How many listeners of one computation took each exit of the policy
// (route_steps.h), a counter per exit as Envoy's load balancer keeps them.
struct RouteStats {
  // Which way a listener was routed: exactly one per listener.
  uint64_t no_traffic = 0;  // no group can take new flows, not even failing open
  uint64_t fail_open = 0;   // nothing healthy: one group takes every new flow
  uint64_t no_rtt = 0;      // no RTT and no primary remembered: groups share by dial
  uint64_t by_nearest = 0;  // the primary first, the rest spills over
  // How the primary was chosen: exactly one per listener routed by_nearest.
  uint64_t primary_nearest = 0;             // the nearest group taking traffic
  uint64_t primary_challenger_won = 0;      // a nearer group outlasted the hysteresis
  uint64_t primary_kept_by_hysteresis = 0;  // a group nearer by the margin waits out its rounds
  uint64_t primary_kept_within_margin = 0;  // a group nearer, but not by the margin
  uint64_t primary_kept_without_rtt = 0;    // the remembered primary, no RTT from the PoP yet
  // Alongside, for listeners routed by_nearest:
  uint64_t primary_switched = 0;  // the primary is not the one remembered
  uint64_t spill_reordered = 0;   // a spill-over group passed another, nearer by the margin
  uint64_t spilled = 0;           // new flows reach a group after the primary
  uint64_t remainder_shared = 0;  // flows left after the last group, shared in proportion

  bool operator==(const RouteStats&) const = default;
};

// How many groups of one computation took each way of choosing their path
// (relay_choice.h PathExit): exactly one per group of every listener.
struct PathStats {
  uint64_t relay_off = 0;          // relaying off for the accelerator
  uint64_t no_candidate = 0;       // no eligible relay measured the group
  uint64_t direct_unmeasured = 0;  // no direct RTT to compare with
  uint64_t direct_better = 0;      // no relay better by the margin
  uint64_t relay_held = 0;         // a better path waits out its rounds
  uint64_t relay_won = 0;          // a relay outlasted the hysteresis
  uint64_t relay_kept = 0;         // the remembered relay, not beaten
  uint64_t relay_lost = 0;         // the remembered relay no longer eligible
  uint64_t direct_held = 0;        // direct better by the margin, waiting
  uint64_t direct_won = 0;         // direct outlasted the hysteresis

  bool operator==(const PathStats&) const = default;
};

struct PopRoutes {
  // version is 0: the caller stamps it once it knows whether the content
  // changed. next_hop_mac is empty: the agent fills it.
  v1::ForwardingTable table;
  v1::ProbePlan probe_plan;
  std::vector<v1::ListenerRoute> listeners;  // in table order
  // The memory after this computation; the caller keeps it for the next.
  RouteMemory memory;
  // The exits the policy took, summed over the listeners, and how the
  // groups' paths were chosen.
  RouteStats stats;
  PathStats path_stats;
};

class RouteComputer {
 public:
  RouteComputer() = default;
  explicit RouteComputer(const RoutePolicy& policy) : policy_(policy) {}

  // Every listener of every enabled accelerator, in name order. `health` is
  // what the PoP reported (null: nothing yet), `memory` what the previous
  // computation returned (null: none). `new_round` counts this computation
  // as a hysteresis round: true for a probe report, false for a
  // configuration change or a view, which change no round count.
  PopRoutes compute(const Config& config, const PopContext& pop, const PopHealth* health = nullptr,
                    const RouteMemory* memory = nullptr, bool new_round = false) const;

  const RoutePolicy& policy() const { return policy_; }

 private:
  // The policy for one listener at one PoP: the groups' shares in routing
  // order with their reasons, and the flat endpoint list with effective
  // weights. Updates `memory`, counts the exits taken in `stats`.
  v1::ListenerRoute route_listener(const PopContext& pop, const ListenerInput& in,
                                   ListenerMemory& memory, bool new_round, RouteStats& stats) const;

  RoutePolicy policy_;
};

// The RTT that orders a group: the median of the smoothed RTTs of its
// routable endpoints of weight > 0; without one, of every measured endpoint;
// negative when none is measured.
double group_rtt(const GroupInput& group);

// Effective dataplane weights for shares of new flows: the largest share
// becomes 255 and the others scale with it, rounded, never below 1 while
// positive; 0 stays 0 (drain). Ratios beyond 255:1 are clamped to 255:1.
std::vector<uint32_t> scale_weights(const std::vector<double>& shares);

// The name of a listener in a ForwardingTable: "accelerator/listener", unique
// in the table and readable in dataplane counters and traces.
std::string table_listener_name(const std::string& accelerator, const std::string& listener);

// The label of an endpoint in the table: its group, and its region when set
// and named otherwise.
std::string endpoint_label(const v1::EndpointGroup& group);

}  // namespace onramp::ctl
