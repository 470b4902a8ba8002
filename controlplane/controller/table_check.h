// Every table the controller computes is checked with the dataplane's own
// validator before it is sent, so a table the controller thinks is fine is
// one the dataplane accepts. The agent fills next_hop_mac from the PoP's
// neighbour table; the controller sends it empty, and the check runs on a
// copy with a placeholder MAC in its place.
#pragma once

#include <string>

#include "common/status.h"
#include "common/table_spec.h"
#include "onramp/v1/forwarding.pb.h"

namespace onramp::ctl {

// Stands in for next_hop_mac during the check only; never sent. A locally
// administered unicast address, which the loader accepts.
inline constexpr const char* kPlaceholderNextHopMac = "02:00:00:00:00:00";

// The table as the dataplane would load it, or its message naming the field.
Result<TableSpec> check_table(const onramp::v1::ForwardingTable& table);

}  // namespace onramp::ctl
