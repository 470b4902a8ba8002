// The sentences that say why each group of a listener takes the share it
// takes (ListenerRoute.groups[].reason, shown by `onrampctl get routes`):
// prose over a RoutePlan, kept apart from the policy that made it.
#pragma once

#include <string>
#include <vector>

#include "controlplane/routing/relay_choice.h"
#include "controlplane/routing/route_steps.h"

namespace onramp::ctl {

// One reason per group of plan.groups, in that order. `memory` is the
// listener's memory after the plan (hysteresis rounds, fail-open count),
// `pop` the PoP's id.
std::vector<std::string> explain_plan(const RoutePlan& plan, const ListenerMemory& memory,
                                      const RoutePolicy& policy, const std::string& pop);

// How a group is reached and why, in one line (GroupRoute.path_reason):
// "via SIN1: 45.2 + 2.1 ms beats direct 151.0 ms by 69 %", "direct: via
// SIN1 would be 48.0 ms, not better than 50.0 ms by the 10.0 ms margin".
std::string explain_path(const PathChoice& path, const RoutePolicy& policy);

}  // namespace onramp::ctl
