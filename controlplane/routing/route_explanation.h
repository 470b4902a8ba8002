// The sentences that say why each group of a listener takes the share it
// takes (ListenerRoute.groups[].reason, shown by `onrampctl get routes`):
// prose over a RoutePlan, kept apart from the policy that made it.
#pragma once

#include <string>
#include <vector>

#include "controlplane/routing/route_steps.h"

namespace onramp::ctl {

// One reason per group of plan.groups, in that order. `memory` is the
// listener's memory after the plan (hysteresis rounds, fail-open count),
// `pop` the PoP's id.
std::vector<std::string> explain_plan(const RoutePlan& plan, const ListenerMemory& memory,
                                      const RoutePolicy& policy, const std::string& pop);

}  // namespace onramp::ctl
