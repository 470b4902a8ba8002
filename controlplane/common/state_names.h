// The words onrampctl and the controller's status page show for a PoP's and
// an endpoint's state, so that both say the same.
#pragma once

#include <string_view>

#include "onramp/v1/admin.pb.h"
#include "onramp/v1/resources.pb.h"

namespace onramp::cp {

inline std::string_view pop_state_name(v1::PopState s) {
  switch (s) {
    case v1::POP_CONNECTED:
      return "connected";
    case v1::POP_DISCONNECTED:
      return "disconnected";
    default:
      return "unknown";
  }
}

inline std::string_view health_state_name(v1::HealthState s) {
  switch (s) {
    case v1::HEALTH_STATE_HEALTHY:
      return "healthy";
    case v1::HEALTH_STATE_UNHEALTHY:
      return "unhealthy";
    default:
      return "unknown";
  }
}

}  // namespace onramp::cp
