// From configuration to what one PoP forwards: the per-PoP ForwardingTable
// (one flat weighted endpoint list per listener, DESIGN.md §3), the probe
// plan, and per listener an explanation of every group's share.
//
// Today's policy is "weights and dials as configured": the groups of a
// listener share its new flows in proportion to their traffic dials, and
// within a group in proportion to endpoint weights. RouteComputer keeps that
// policy in one virtual step, route_listener(), which the optimal-path work
// overrides with RTT ordering, health and spill-over.
#pragma once

#include <string>
#include <vector>

#include "controlplane/controller/config_store.h"
#include "onramp/v1/admin.pb.h"
#include "onramp/v1/forwarding.pb.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::ctl {

// What the computation needs to know of a PoP.
struct PopContext {
  std::string id;
  v1::TunnelSource tunnel_source;
};

// One endpoint group of a listener, as seen from one PoP.
struct GroupInput {
  const v1::EndpointGroup* group = nullptr;
  // Endpoints the PoP can reach: it has a tunnel source of their family.
  std::vector<const v1::Endpoint*> endpoints;
  // Endpoints left out because it has not, and the sentence saying so.
  uint32_t left_out = 0;
  std::string left_out_reason;
};

struct ListenerInput {
  const v1::Accelerator* accelerator = nullptr;
  const v1::Listener* listener = nullptr;
  std::vector<GroupInput> groups;  // by name
};

struct PopRoutes {
  // version is 0: the caller stamps it once it knows whether the content
  // changed. next_hop_mac is empty: the agent fills it.
  v1::ForwardingTable table;
  v1::ProbePlan probe_plan;
  std::vector<v1::ListenerRoute> listeners;  // in table order
};

class RouteComputer {
 public:
  virtual ~RouteComputer() = default;

  // Every listener of every enabled accelerator, in name order.
  PopRoutes compute(const Config& config, const PopContext& pop) const;

 protected:
  // The policy for one listener at one PoP: the groups' shares with their
  // reasons, and the flat endpoint list with effective weights.
  virtual v1::ListenerRoute route_listener(const PopContext& pop, const ListenerInput& in) const;
};

// Effective dataplane weights for shares of new flows: the largest share
// becomes 255 and the others scale with it, rounded, never below 1 while
// positive; 0 stays 0 (drain). Ratios beyond 255:1 are clamped to 255:1.
std::vector<uint32_t> scale_weights(const std::vector<double>& shares);

// The name of a listener in a ForwardingTable: "accelerator/listener", unique
// in the table and readable in dataplane counters and traces.
std::string table_listener_name(const std::string& accelerator, const std::string& listener);

// The label of an endpoint in the table: its group, and region when set.
std::string endpoint_label(const v1::EndpointGroup& group);

}  // namespace onramp::ctl
