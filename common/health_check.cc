#include "common/health_check.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "common/ip_address.h"
#include "common/text.h"

namespace onramp {
namespace {

// A host name as DNS writes it: dot-separated labels of 1..63 letters,
// digits and '-', neither starting nor ending with '-'; a trailing dot is
// refused (SNI never carries one).
bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxTlsServerNameBytes) return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    std::string_view label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    start = dot + 1;
  }
  return true;
}

// The TLS fields of an HTTPS check: the server name a DNS name or an
// address, the CA file an absolute path.
Status check_tls_fields(const v1::HealthCheck& in, const std::string& f) {
  const std::string& name = in.tls_server_name();
  if (!name.empty() && !IpAddress::parse(name) && !is_dns_name(name))
    return error(f + ".tls_server_name: " + quote(name) +
                 " is neither a DNS name (labels of letters, digits and \"-\", at most " +
                 std::to_string(kMaxTlsServerNameBytes) + " bytes) nor an IP address");
  const std::string& ca = in.tls_ca_file();
  if (!ca.empty() && (ca[0] != '/' || ca.size() > kMaxTlsCaFileBytes ||
                      std::any_of(ca.begin(), ca.end(), [](char c) {
                        return static_cast<unsigned char>(c) < ' ' || c == 0x7f;
                      })))
    return error(f + ".tls_ca_file: " + quote(ca) +
                 " must be an absolute path, without control characters, at most " +
                 std::to_string(kMaxTlsCaFileBytes) + " bytes");
  return ok_status();
}

}  // namespace

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
    case v1::HEALTH_CHECK_HTTPS:
      break;
    default:
      return error(
          f + ".protocol: unknown value " + std::to_string(in.protocol()) +
          " (HEALTH_CHECK_TCP, HEALTH_CHECK_HTTP, HEALTH_CHECK_HTTPS or HEALTH_CHECK_UDP)");
  }
  // HTTPS is HTTP over TLS: path and statuses as HTTP, plus the TLS fields.
  const bool https = out.protocol() == v1::HEALTH_CHECK_HTTPS;
  const bool http = out.protocol() == v1::HEALTH_CHECK_HTTP || https;
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
  if (!https && !in.tls_server_name().empty())
    return error(f + ".tls_server_name: only HTTPS health checks use TLS");
  if (!https && in.tls_skip_verify())
    return error(f + ".tls_skip_verify: only HTTPS health checks use TLS");
  if (!https && !in.tls_ca_file().empty())
    return error(f + ".tls_ca_file: only HTTPS health checks use TLS");
  if (https) ONRAMP_RETURN_IF_ERROR(check_tls_fields(in, f));
  return out;
}

v1::HealthCheck without_other_protocols(const v1::HealthCheck& check) {
  v1::HealthCheck out = check;
  const bool https = check.protocol() == v1::HEALTH_CHECK_HTTPS;
  if (!https && check.protocol() != v1::HEALTH_CHECK_HTTP) {
    out.clear_path();
    out.clear_expected_status_min();
    out.clear_expected_status_max();
  }
  if (check.protocol() != v1::HEALTH_CHECK_UDP) {
    out.clear_udp_request();
    out.clear_udp_expected_response();
  }
  if (!https) {
    out.clear_tls_server_name();
    out.clear_tls_skip_verify();
    out.clear_tls_ca_file();
  }
  return out;
}

}  // namespace onramp
