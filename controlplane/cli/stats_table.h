// The table view of a dataplane's counters, shared by `onrampctl dataplane
// stats` (from the PoP's socket) and `onrampctl stats --pop` (from the
// controller, as the agent reported them).
#pragma once

#include <ostream>
#include <string>

#include "onramp/v1/dataplane.pb.h"

namespace onramp::cli {

void print_dataplane_stats(std::ostream& out, const v1::DataplaneStats& stats);

// "02:00:00:00:00:01 via 10.0.0.1 (learned, 1 change)", "unresolved via
// 10.0.0.1", "02:00:00:00:00:fe (table)"; empty when the message is.
std::string next_hop_text(const v1::NextHop& nh);

}  // namespace onramp::cli
