#include "common/health_check.h"

#include <algorithm>
#include <string>

#include "common/text.h"

namespace onramp {
Result<v1::HealthCheck> normalise_health_check(const v1::HealthCheck& in, std::string_view field) {
  const std::string f(field);
  v1::HealthCheck out = in;
  switch (in.protocol()) {
    case v1::HEALTH_CHECK_PROTOCOL_UNSPECIFIED:
      out.set_protocol(v1::HEALTH_CHECK_TCP);
      break;
    case v1::HEALTH_CHECK_TCP:
    case v1::HEALTH_CHECK_HTTP:
    case v1::HEALTH_CHECK_UDP:
      break;
    default:
      return error(f + ".protocol: unknown value " + std::to_string(in.protocol()) +
                   " (HEALTH_CHECK_TCP, HEALTH_CHECK_HTTP or HEALTH_CHECK_UDP)");
  }
  const bool http = out.protocol() == v1::HEALTH_CHECK_HTTP;
  const bool udp = out.protocol() == v1::HEALTH_CHECK_UDP;
  if (in.port() > 65535)
    return error(f + ".port: " + std::to_string(in.port()) +
                 " is outside 1..65535 (0: the listener's port)");
  if (!http && !in.path().empty()) return error(f + ".path: only HTTP health checks have a path");
  if (http) {
    if (in.path().empty()) out.set_path("/");
    const std::string& p = out.path();
    // The path goes into the request line: no byte of it may end the line or
    // start a header.
    if (p[0] != '/' || p.size() > kMaxHealthCheckPathBytes ||
        std::any_of(p.begin(), p.end(),
                    [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; }))
      return error(f + ".path: " + quote(p) +
                   " must start with \"/\", hold no space or control character, and be at most " +
                   std::to_string(kMaxHealthCheckPathBytes) + " bytes");
  }
  out.set_interval_ms(in.interval_ms() ? in.interval_ms() : kDefaultProbeIntervalMs);
  if (out.interval_ms() < kMinProbeIntervalMs || out.interval_ms() > kMaxProbeIntervalMs)
    return error(f + ".interval_ms: " + std::to_string(out.interval_ms()) + " is outside " +
                 std::to_string(kMinProbeIntervalMs) + ".." + std::to_string(kMaxProbeIntervalMs));
  out.set_timeout_ms(in.timeout_ms() ? in.timeout_ms()
                                     : std::min(kDefaultProbeTimeoutMs, out.interval_ms()));
  if (out.timeout_ms() < kMinProbeTimeoutMs || out.timeout_ms() > out.interval_ms())
    return error(f + ".timeout_ms: " + std::to_string(out.timeout_ms()) + " is outside " +
                 std::to_string(kMinProbeTimeoutMs) + ".." + std::to_string(out.interval_ms()) +
                 " (the interval)");
  out.set_healthy_threshold(in.healthy_threshold() ? in.healthy_threshold() : kDefaultThreshold);
  if (out.healthy_threshold() > kMaxThreshold)
    return error(f + ".healthy_threshold: " + std::to_string(in.healthy_threshold()) +
                 " is outside 1.." + std::to_string(kMaxThreshold));
  out.set_unhealthy_threshold(in.unhealthy_threshold() ? in.unhealthy_threshold()
                                                       : kDefaultThreshold);
  if (out.unhealthy_threshold() > kMaxThreshold)
    return error(f + ".unhealthy_threshold: " + std::to_string(in.unhealthy_threshold()) +
                 " is outside 1.." + std::to_string(kMaxThreshold));
  if (http) {
    // Both unset: 200..399; one unset: the other alone.
    uint32_t lo = in.expected_status_min(), hi = in.expected_status_max();
    // A bound given out of range is named as given, before the other is filled from it.
    if (lo && (lo < 100 || lo > 599))
      return error(f + ".expected_status_min: " + std::to_string(lo) + " is outside 100..599");
    if (hi && (hi < 100 || hi > 599))
      return error(f + ".expected_status_max: " + std::to_string(hi) + " is outside 100..599");
    if (!lo && !hi) {
      lo = 200;
      hi = 399;
    } else if (!lo) {
      lo = hi;
    } else if (!hi) {
      hi = lo;
    }
    if (lo > hi)
      return error(f + ".expected_status_max: " + std::to_string(hi) +
                   " is below expected_status_min " + std::to_string(lo));
    out.set_expected_status_min(lo);
    out.set_expected_status_max(hi);
  } else if (in.expected_status_min() || in.expected_status_max()) {
    return error(f + ".expected_status_min: only HTTP health checks have expected statuses");
  }
  if (!udp && !in.udp_request().empty())
    return error(f + ".udp_request: only UDP health checks send a request");
  if (!udp && !in.udp_expected_response().empty())
    return error(f + ".udp_expected_response: only UDP health checks expect a response");
  if (in.udp_request().size() > kMaxUdpProbeBytes)
    return error(f + ".udp_request: " + std::to_string(in.udp_request().size()) +
                 " bytes; at most " + std::to_string(kMaxUdpProbeBytes));
  if (in.udp_expected_response().size() > kMaxUdpProbeBytes)
    return error(f +
                 ".udp_expected_response: " + std::to_string(in.udp_expected_response().size()) +
                 " bytes; at most " + std::to_string(kMaxUdpProbeBytes));
  if (udp && out.udp_request().empty()) out.set_udp_request(kDefaultUdpRequest);
  return out;
}

}  // namespace onramp
