// A group's health check with every default filled in and every range
// checked. The controller validates operators' checks with it and the agent
// probes with its output, so both agree on what an unset field means.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"
#include "onramp/v1/resources.pb.h"

namespace onramp {

inline constexpr uint32_t kDefaultProbeIntervalMs = 10000;
inline constexpr uint32_t kMinProbeIntervalMs = 100;
inline constexpr uint32_t kMaxProbeIntervalMs = 300000;
inline constexpr uint32_t kDefaultProbeTimeoutMs = 2000;  // or the interval, if shorter
inline constexpr uint32_t kMinProbeTimeoutMs = 10;
inline constexpr uint32_t kDefaultThreshold = 3;
inline constexpr uint32_t kMaxThreshold = 10;
inline constexpr size_t kMaxHealthCheckPathBytes = 1024;
inline constexpr size_t kMaxUdpProbeBytes = 1024;
inline constexpr const char* kDefaultUdpRequest = "onramp-probe\n";
inline constexpr size_t kMaxTlsServerNameBytes = 253;
inline constexpr size_t kMaxTlsCaFileBytes = 4096;

// The check with its defaults (protocol TCP; interval, timeout, thresholds;
// HTTP and HTTPS path "/" and statuses 200..399, or the one bound given; a UDP
// request), or an error that names the field under `field`
// ("endpoint_group.health_check"). The TLS fields belong to HTTPS checks only:
// the server name must be a DNS name or an IP address, the CA file an
// absolute path (it is read on the PoP, when probing).
Result<v1::HealthCheck> normalise_health_check(const v1::HealthCheck& in,
                                               std::string_view field = "health_check");

// `check` without the fields its protocol does not take (an HTTP path or
// statuses under TCP, a UDP request under HTTP, TLS settings under anything
// but HTTPS). An update that changes a stored check's protocol keeps only
// these, so the defaults the old protocol filled in do not refuse the new one.
v1::HealthCheck without_other_protocols(const v1::HealthCheck& check);

}  // namespace onramp
