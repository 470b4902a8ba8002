// The checks both TraceFlow APIs and the health-check defaults share.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/health_check.h"
#include "common/trace_request.h"
#include "onramp/v1/admin.pb.h"
#include "onramp/v1/dataplane.pb.h"

namespace onramp {
namespace {

using ::testing::HasSubstr;

v1::TraceFlowRequest trace(const std::string& client, uint32_t client_port, const std::string& vip,
                           uint32_t port, v1::Protocol protocol) {
  v1::TraceFlowRequest r;
  r.set_client_address(client);
  r.set_client_port(client_port);
  r.set_vip(vip);
  r.set_port(port);
  r.set_protocol(protocol);
  return r;
}

TEST(FlowQuery, AGoodRequestBecomesAQuery) {
  auto q = flow_query_from(trace("198.51.100.7", 40000, "2001:db8::10", 443, v1::UDP));
  ASSERT_TRUE(q.ok()) << q.error();
  EXPECT_EQ(q->client.to_string(), "198.51.100.7");
  EXPECT_EQ(q->client_port, 40000);
  EXPECT_EQ(q->vip.to_string(), "2001:db8::10");
  EXPECT_EQ(q->port, 443);
  EXPECT_EQ(q->l4_proto, 17);
}

TEST(FlowQuery, BothRequestTypesAreRefusedWithTheSameWords) {
  struct Case {
    v1::TraceFlowRequest req;
    std::string error;
  } cases[] = {
      {trace("nope", 1, "203.0.113.10", 80, v1::TCP),
       "client_address: \"nope\" is not an IPv4 or IPv6 address"},
      {trace("198.51.100.7", 1, "", 80, v1::TCP), "vip: \"\" is not an IPv4 or IPv6 address"},
      {trace("198.51.100.7", 65536, "203.0.113.10", 80, v1::TCP), "client_port: outside 0..65535"},
      {trace("198.51.100.7", 1, "203.0.113.10", 0, v1::TCP), "port: outside 1..65535"},
      {trace("198.51.100.7", 1, "203.0.113.10", 80, v1::TCP_UDP), "protocol: TCP or UDP"},
  };
  for (const Case& c : cases) {
    v1::DataplaneTraceRequest d;
    d.set_client_address(c.req.client_address());
    d.set_client_port(c.req.client_port());
    d.set_vip(c.req.vip());
    d.set_port(c.req.port());
    d.set_protocol(c.req.protocol());
    EXPECT_EQ(flow_query_from(c.req).error(), c.error);
    EXPECT_EQ(flow_query_from(d).error(), c.error);
  }
}

TEST(HealthCheck, DefaultsFillEveryUnsetField) {
  auto tcp = normalise_health_check(v1::HealthCheck());
  ASSERT_TRUE(tcp.ok()) << tcp.error();
  EXPECT_EQ(tcp->protocol(), v1::HEALTH_CHECK_TCP);
  EXPECT_EQ(tcp->interval_ms(), kDefaultProbeIntervalMs);
  EXPECT_EQ(tcp->timeout_ms(), kDefaultProbeTimeoutMs);
  EXPECT_EQ(tcp->healthy_threshold(), kDefaultThreshold);
  EXPECT_EQ(tcp->unhealthy_threshold(), kDefaultThreshold);

  v1::HealthCheck fast;
  fast.set_protocol(v1::HEALTH_CHECK_HTTP);
  fast.set_interval_ms(200);
  auto http = normalise_health_check(fast);
  ASSERT_TRUE(http.ok()) << http.error();
  EXPECT_EQ(http->path(), "/");
  EXPECT_EQ(http->timeout_ms(), 200u);  // never longer than the interval
  EXPECT_EQ(http->expected_status_min(), 200u);
  EXPECT_EQ(http->expected_status_max(), 399u);

  v1::HealthCheck one_bound = fast;
  one_bound.set_expected_status_max(204);
  auto exact = normalise_health_check(one_bound);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->expected_status_min(), 204u);

  v1::HealthCheck udp;
  udp.set_protocol(v1::HEALTH_CHECK_UDP);
  EXPECT_EQ(normalise_health_check(udp)->udp_request(), kDefaultUdpRequest);
}

TEST(HealthCheck, ErrorsNameTheFieldUnderTheGivenPrefix) {
  v1::HealthCheck c;
  c.set_interval_ms(50);
  EXPECT_EQ(normalise_health_check(c, "endpoint_group.health_check").error(),
            "endpoint_group.health_check.interval_ms: 50 is outside 100..300000");
  c = v1::HealthCheck();
  c.set_path("/x");
  EXPECT_EQ(normalise_health_check(c).error(),
            "health_check.path: only HTTP health checks have a path");
  c = v1::HealthCheck();
  c.set_protocol(v1::HEALTH_CHECK_HTTP);
  c.set_path("/a b\r\nHost: evil");
  EXPECT_THAT(normalise_health_check(c).error(), HasSubstr("health_check.path: \"/a b\\r\\nHost"));
}

// Min 0 and max 600 used to be reported as "expected_status_min: 600".
TEST(HealthCheck, ExpectedStatusMin0Max600NamesTheMaximum) {
  v1::HealthCheck c;
  c.set_protocol(v1::HEALTH_CHECK_HTTP);
  c.set_expected_status_max(600);
  EXPECT_EQ(normalise_health_check(c).error(),
            "health_check.expected_status_max: 600 is outside 100..599");
}

TEST(HealthCheck, HttpsIsHttpOverTlsWithVerificationOnByDefault) {
  v1::HealthCheck c;
  c.set_protocol(v1::HEALTH_CHECK_HTTPS);
  auto https = normalise_health_check(c);
  ASSERT_TRUE(https.ok()) << https.error();
  EXPECT_EQ(https->path(), "/");
  EXPECT_EQ(https->expected_status_min(), 200u);
  EXPECT_EQ(https->expected_status_max(), 399u);
  EXPECT_FALSE(https->tls_skip_verify());
  EXPECT_EQ(https->tls_server_name(), "");  // no SNI; the address is checked
  EXPECT_EQ(https->tls_ca_file(), "");      // the system's roots

  c.set_path("/healthz");
  c.set_expected_status_min(204);
  c.set_tls_server_name("api.example.com");
  c.set_tls_ca_file("/etc/onramp/probe-ca.pem");
  c.set_tls_skip_verify(true);
  https = normalise_health_check(c);
  ASSERT_TRUE(https.ok()) << https.error();
  EXPECT_EQ(https->expected_status_max(), 204u);
  EXPECT_EQ(https->tls_server_name(), "api.example.com");
  for (const char* address : {"192.0.2.10", "2001:db8::1", "localhost", "a-b.c1"}) {
    c.set_tls_server_name(address);
    EXPECT_TRUE(normalise_health_check(c).ok()) << address;
  }
}

TEST(HealthCheck, TlsFieldsBelongToHttpsChecksAndAreChecked) {
  for (v1::HealthCheckProtocol p : {v1::HEALTH_CHECK_TCP, v1::HEALTH_CHECK_HTTP,
                                    v1::HEALTH_CHECK_UDP, v1::HEALTH_CHECK_PROTOCOL_UNSPECIFIED}) {
    v1::HealthCheck c;
    c.set_protocol(p);
    c.set_tls_server_name("api.example.com");
    EXPECT_EQ(normalise_health_check(c).error(),
              "health_check.tls_server_name: only HTTPS health checks use TLS");
    c = v1::HealthCheck();
    c.set_protocol(p);
    c.set_tls_skip_verify(true);
    EXPECT_EQ(normalise_health_check(c).error(),
              "health_check.tls_skip_verify: only HTTPS health checks use TLS");
    c = v1::HealthCheck();
    c.set_protocol(p);
    c.set_tls_ca_file("/etc/ca.pem");
    EXPECT_EQ(normalise_health_check(c).error(),
              "health_check.tls_ca_file: only HTTPS health checks use TLS");
  }
  v1::HealthCheck c;
  c.set_protocol(v1::HEALTH_CHECK_HTTPS);
  for (const char* bad :
       {"-a.example", "a..b", "a.example.", "under_score.example", "a b", "evil\r\nHost: x"}) {
    c.set_tls_server_name(bad);
    EXPECT_THAT(normalise_health_check(c, "g.health_check").error(),
                HasSubstr("g.health_check.tls_server_name: "))
        << bad;
  }
  c.set_tls_server_name(std::string(64, 'a') + ".example");
  EXPECT_THAT(normalise_health_check(c).error(), HasSubstr("neither a DNS name"));
  c.set_tls_server_name("");
  c.set_tls_ca_file("certs/ca.pem");
  EXPECT_EQ(normalise_health_check(c).error(),
            "health_check.tls_ca_file: \"certs/ca.pem\" must be an absolute path, without "
            "control characters, at most 4096 bytes");
  c.set_tls_ca_file("/" + std::string(kMaxTlsCaFileBytes, 'a'));
  EXPECT_THAT(normalise_health_check(c).error(), HasSubstr("health_check.tls_ca_file: "));
  c.set_tls_ca_file("");
  c.set_path("no-slash");
  EXPECT_THAT(normalise_health_check(c).error(), HasSubstr("health_check.path: "));
}

}  // namespace
}  // namespace onramp
