// The steering program's maps in the kernel: found from the XDP program
// attached to an interface (the one net_af_xdp loaded from xdp_prog=), and
// written with libbpf.
#pragma once

#include <memory>

#include "common/status.h"
#include "dataplane/xdp/steering.h"

namespace onramp::dp {

// The maps of onramp's steering program attached to interface `ifindex`.
// An error says what is attached instead (nothing, or another program).
Result<std::unique_ptr<SteeringMaps>> open_steering_maps(unsigned ifindex);

}  // namespace onramp::dp
