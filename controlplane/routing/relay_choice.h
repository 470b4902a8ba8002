// Which way one endpoint group is reached from a PoP: directly, or through
// one relay PoP over the backbone (docs/routing.md "Relaying over the
// backbone"). The relayed RTT is this PoP's mesh probe to the relay plus
// the relay's own probes of the group; a relay is eligible while it is
// connected, its dataplane healthy, its BGP announced and the path to it
// loses no more than the policy allows. Moving between paths needs a margin
// for the policy's rounds, so jitter does not move a group; losing the relay
// falls back to direct at once.
#pragma once

#include <optional>
#include <string>

#include "controlplane/routing/route_computer.h"

namespace onramp::ctl {

// A relay PoP as a way to one group.
struct RelayCandidate {
  const PeerPop* peer = nullptr;
  double to_relay_ms = -1;        // this PoP -> the relay (mesh probes)
  double relay_to_group_ms = -1;  // the relay -> the group (its endpoint probes)
  double loss_percent = 0;        // of the path to the relay
  double via_ms() const { return to_relay_ms + relay_to_group_ms; }
};

// How the path was chosen; each a PathStats counter.
enum class PathExit {
  kRelayOff,          // relaying is off for the accelerator
  kNoCandidate,       // no eligible relay has measured the group
  kDirectUnmeasured,  // this PoP has no RTT to the group to compare with
  kDirectBetter,      // direct, no relay beats it by the margin
  kRelayHeld,         // direct, a relay better by the margin waits its rounds
  kRelayWon,          // a relay outlasted the hysteresis (or a better relay did)
  kRelayKept,         // the remembered relay, nothing beats it by the margin
  kRelayLost,         // the remembered relay is no longer eligible: direct at once
  kDirectHeld,        // relayed, direct better by the margin waits its rounds
  kDirectWon,         // direct outlasted the hysteresis
};

struct PathChoice {
  std::string via;  // the relay PoP; "" direct
  PathExit exit = PathExit::kRelayOff;
  double direct_ms = -1;
  // The best eligible relay for the group, and the chosen one's figures
  // (the same unless the remembered relay is kept).
  std::optional<RelayCandidate> best;
  std::optional<RelayCandidate> chosen;
  double margin = 0;       // what the challenger had to beat by
  std::string challenger;  // kRelayHeld, kDirectHeld: the path waiting ("" direct)
  std::string lost_why;    // kRelayLost: why the relay is not eligible
  // The RTT the group is ranked by: via the relay when relayed, else direct.
  double rtt_ms() const { return !via.empty() && chosen ? chosen->via_ms() : direct_ms; }
};

// "" when `peer` may relay this PoP's traffic, else why not, in words
// ("dataplane unhealthy", "loses 12 % of probes").
std::string relay_ineligible(const PeerPop& peer, const PopHealth* own, const RoutePolicy& policy);

// The relay's RTT to the group: the median of its smoothed RTTs of the
// group's endpoints it sees healthy (weight > 0); negative when it has none.
double relay_group_rtt(const GroupInput& group, const v1::Accelerator& accelerator,
                       const v1::Listener& listener, const PopHealth& relay);

// The path for one group, updating `memory` (kept between rounds; a
// challenger's rounds count only in a `new_round`).
PathChoice choose_path(const ListenerInput& listener, const GroupInput& group,
                       const PopContext& pop, const PopHealth* own, const RoutePolicy& policy,
                       GroupPathMemory& memory, bool new_round);

}  // namespace onramp::ctl
