// The table view of a dataplane's counters, shared by `onrampctl dataplane
// stats` (from the PoP's socket) and `onrampctl stats --pop` (from the
// controller, as the agent reported them).
#pragma once

#include <ostream>

#include "onramp/v1/dataplane.pb.h"

namespace onramp::cli {

void print_dataplane_stats(std::ostream& out, const v1::DataplaneStats& stats);

}  // namespace onramp::cli
