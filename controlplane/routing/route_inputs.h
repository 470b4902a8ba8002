// A PoP's route inputs as they travel (RouteInputs in TableUpdate) and come
// back: the configuration slice, the routing memory and the policy dials
// its table was computed from. The controller writes them beside every
// table; the agent reads them back into the very types RouteComputer takes,
// so that with the controller away it recomputes its PoP's table by the same
// rule from its own probes (docs/routing.md "Static stability").
#pragma once

#include <google/protobuf/repeated_ptr_field.h>

#include <string>

#include "controlplane/routing/config.h"
#include "controlplane/routing/route_computer.h"
#include "onramp/v1/forwarding.pb.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::ctl {

using MemoryProto = google::protobuf::RepeatedPtrField<v1::ListenerRouteMemory>;

// Every enabled accelerator of `config` with its listeners, groups and
// endpoints: the configuration part of RouteInputs, the same for every PoP.
v1::RouteInputs config_slice(const Config& config);

// The slice with the PoP, its memory and the policy filled in.
v1::RouteInputs route_inputs(v1::RouteInputs slice, const PopContext& pop,
                             const RouteMemory& memory, const RoutePolicy& policy);

void memory_to_proto(const RouteMemory& memory, MemoryProto& out);
RouteMemory memory_from_proto(const MemoryProto& memory);

v1::RoutePolicy policy_to_proto(const RoutePolicy& policy);
// A dial outside its range (not finite, overprovisioning below 1, a
// negative margin, 0 rounds) keeps its default.
RoutePolicy policy_from_proto(const v1::RoutePolicy& policy);

// RouteInputs turned back into what RouteComputer::compute takes. The
// configuration's version is 0: the caller stamps the table.
struct LocalInputs {
  Config config;
  PopContext pop;
  RoutePolicy policy;
  RouteMemory memory;
};
LocalInputs local_inputs(const v1::RouteInputs& inputs);

// The PoP's health view from its own probe report (as the controller
// builds it from the same report).
PopHealth health_from_report(const v1::ProbeReport& report);

// 16 hex digits identifying a table's content (FNV-1a, 64 bits): the table
// without its version, and the probe plan. The controller compares them to
// decide what to send; an agent that routes on its own reports the digest of
// the table it computed.
std::string content_digest(const v1::ForwardingTable& table, const v1::ProbePlan& plan);

}  // namespace onramp::ctl
