// The prober: thresholds and RTT smoothing (HealthTracker), jitter, target
// keys, checks the common normaliser refuses, and real probes against local
// servers (a TCP listener, a refusing port, HTTP 200/503/silent, HTTPS with
// a test CA, UDP echo),
// plan updates and reports. Probers run on a FakeClock, driven step by step
// (ProberDriver): timeouts, intervals and report times are fake time; only
// loopback answers are real.
#include "controlplane/agent/prober.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <set>
#include <thread>

#include "common/health_check.h"
#include "common/log.h"
#include "controlplane/agent/tests/probe_servers.h"
#include "controlplane/agent/tests/prober_driver.h"

namespace onramp::agent::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

TEST(HealthTrackerTest, UnknownUntilAThresholdIsReached) {
  HealthTracker t(3, 2);
  EXPECT_FALSE(t.record(ok_status(), 1, 100));
  EXPECT_FALSE(t.record(ok_status(), 1, 200));
  EXPECT_FALSE(t.known());
  EXPECT_EQ(t.last_change_ms(), 0);
  EXPECT_TRUE(t.record(ok_status(), 1, 300));
  EXPECT_TRUE(t.known());
  EXPECT_TRUE(t.healthy());
  EXPECT_EQ(t.last_change_ms(), 300);
  EXPECT_EQ(t.consecutive(), 3u);
}

// Hardening review, finding 3: a probe's reason travels in every probe
// report; an endpoint that answers with 10 KB of text (and control
// characters) must not grow the report past the message limit.
TEST(HealthTrackerTest, AFailureReasonIsPrintableAndBounded) {
  HealthTracker t(3, 3);
  t.record(error("HTTP 500: " + std::string(10000, 'x') + "\n\x1b[31m"), -1, 0);
  EXPECT_LE(t.last_error().size(), HealthTracker::kMaxErrorBytes + 3);  // and "..."
  EXPECT_EQ(t.last_error().rfind("HTTP 500: xxx", 0), 0u);
  EXPECT_EQ(t.last_error().find('\x1b'), std::string::npos);
  t.record(ok_status(), 1.0, 1);
  EXPECT_EQ(t.last_error(), "");
}

TEST(HealthTrackerTest, AFirstVerdictCanBeUnhealthy) {
  HealthTracker t(3, 2);
  EXPECT_FALSE(t.record(error("connect: connection refused"), -1, 10));
  EXPECT_TRUE(t.record(error("connect: connection refused"), -1, 20));
  EXPECT_TRUE(t.known());
  EXPECT_FALSE(t.healthy());
  EXPECT_EQ(t.last_error(), "connect: connection refused");
}

TEST(HealthTrackerTest, FlipsOnlyAfterThresholdOppositeResultsInARow) {
  HealthTracker t(2, 3);
  t.record(ok_status(), 1, 1);
  ASSERT_TRUE(t.record(ok_status(), 1, 2));
  // Two failures, then a success: the failure streak restarts.
  EXPECT_FALSE(t.record(error("x"), -1, 3));
  EXPECT_FALSE(t.record(error("x"), -1, 4));
  EXPECT_EQ(t.consecutive(), 2u);
  EXPECT_FALSE(t.record(ok_status(), 1, 5));
  EXPECT_TRUE(t.healthy());
  EXPECT_EQ(t.consecutive(), 1u);
  EXPECT_EQ(t.last_error(), "");
  EXPECT_FALSE(t.record(error("x"), -1, 6));
  EXPECT_FALSE(t.record(error("x"), -1, 7));
  EXPECT_TRUE(t.record(error("timeout after 50 ms"), -1, 8));
  EXPECT_FALSE(t.healthy());
  EXPECT_EQ(t.last_change_ms(), 8);
  // More failures change nothing; two successes bring it back.
  EXPECT_FALSE(t.record(error("x"), -1, 9));
  EXPECT_FALSE(t.record(ok_status(), 1, 10));
  EXPECT_TRUE(t.record(ok_status(), 1, 11));
  EXPECT_TRUE(t.healthy());
}

TEST(HealthTrackerTest, SmoothsRttWithAnEwmaAndKeepsTheLastOne) {
  HealthTracker t(1, 1, 0.3);
  EXPECT_LT(t.smoothed_rtt_ms(), 0);
  EXPECT_LT(t.last_rtt_ms(), 0);
  t.record(ok_status(), 10, 1);
  EXPECT_DOUBLE_EQ(t.smoothed_rtt_ms(), 10);
  t.record(ok_status(), 20, 2);
  EXPECT_DOUBLE_EQ(t.smoothed_rtt_ms(), 0.3 * 20 + 0.7 * 10);
  EXPECT_DOUBLE_EQ(t.last_rtt_ms(), 20);
  // A failure measures nothing.
  t.record(error("x"), 500, 3);
  EXPECT_DOUBLE_EQ(t.smoothed_rtt_ms(), 13);
  EXPECT_DOUBLE_EQ(t.last_rtt_ms(), 20);
}

TEST(JitterTest, RoundsVaryWithinTheFractionAndFirstOffsetsSpread) {
  std::mt19937_64 rng(42);
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) {
    auto d = jittered_interval(1000ms, 0.05, rng);
    EXPECT_GE(d.count(), 950);
    EXPECT_LE(d.count(), 1050);
    seen.insert(d.count());
  }
  EXPECT_GT(seen.size(), 20u) << "the interval does not vary";
  EXPECT_EQ(jittered_interval(1000ms, 0, rng), 1000ms);

  std::set<int64_t> offsets;
  int64_t lo = 1000, hi = 0;
  for (int i = 0; i < 200; ++i) {
    int64_t o = first_probe_offset(1000ms, rng).count();
    EXPECT_GE(o, 0);
    EXPECT_LT(o, 1000);
    lo = std::min(lo, o);
    hi = std::max(hi, o);
    offsets.insert(o);
  }
  EXPECT_GT(offsets.size(), 100u);
  EXPECT_LT(lo, 200);
  EXPECT_GT(hi, 800);
}

v1::ProbeTarget target(const std::string& group, uint16_t port, v1::HealthCheckProtocol protocol,
                       uint32_t healthy = 1, uint32_t unhealthy = 1) {
  v1::ProbeTarget t;
  t.set_accelerator("acc");
  t.set_listener("web");
  t.set_endpoint_group(group);
  t.set_address("127.0.0.1");
  t.set_port(port);
  t.set_region("eu-central");
  v1::HealthCheck* c = t.mutable_health_check();
  c->set_protocol(protocol);
  c->set_interval_ms(100);
  c->set_timeout_ms(80);
  c->set_healthy_threshold(healthy);
  c->set_unhealthy_threshold(unhealthy);
  return t;
}

TEST(CheckTest, KeysIgnoreTheRegionButNotThePortOrCheck) {
  v1::ProbeTarget a = target("g", 80, v1::HEALTH_CHECK_TCP);
  v1::ProbeTarget b = a;
  b.set_region("us-east");
  EXPECT_EQ(probe_target_key(a), probe_target_key(b));
  b.set_port(81);
  EXPECT_NE(probe_target_key(a), probe_target_key(b));
  b = a;
  b.mutable_health_check()->set_timeout_ms(50);
  EXPECT_NE(probe_target_key(a), probe_target_key(b));
  b = a;
  b.set_address("127.0.0.2");
  EXPECT_NE(probe_target_key(a), probe_target_key(b));
}

TEST(CheckTest, KeysCountTheCheckAsTheNormaliserFillsItIn) {
  // Unset fields and the defaults written out are one check: the target
  // keeps its state when the controller starts spelling them.
  v1::ProbeTarget a = target("g", 80, v1::HEALTH_CHECK_TCP);
  a.clear_health_check();
  v1::ProbeTarget b = a;
  v1::HealthCheck* c = b.mutable_health_check();
  c->set_protocol(v1::HEALTH_CHECK_TCP);
  c->set_interval_ms(kDefaultProbeIntervalMs);
  c->set_timeout_ms(kDefaultProbeTimeoutMs);
  c->set_healthy_threshold(kDefaultThreshold);
  c->set_unhealthy_threshold(kDefaultThreshold);
  EXPECT_EQ(probe_target_key(a), probe_target_key(b));
  // A check the normaliser refuses has a key of its own all the same.
  c->set_interval_ms(20);
  EXPECT_NE(probe_target_key(a), probe_target_key(b));
}

// Drives a Prober on a fake clock and keeps every report it hands out.
class ProberTest : public ::testing::Test {
 protected:
  ProberTest()
      : prober(
            ProberOptions{.report_interval = 200ms, .seed = 7},
            [this](const v1::ProbeReport& r) { reports.push_back(r); }, clock),
        driver(prober, clock) {}

  // The result of `group` once `pred` holds for it, from the latest report.
  std::optional<v1::ProbeResult> wait_result(
      const std::string& group, const std::function<bool(const v1::ProbeResult&)>& pred) {
    std::optional<v1::ProbeResult> found;
    driver.until([&] {
      if (reports.empty()) return false;
      for (const auto& r : reports.back().results())
        if (r.endpoint_group() == group && pred(r)) {
          found = r;
          return true;
        }
      return false;
    });
    return found;
  }
  static bool up(const v1::ProbeResult& r) { return r.known() && r.healthy(); }
  static bool down(const v1::ProbeResult& r) { return r.known() && !r.healthy(); }

  FakeClock clock;
  std::vector<v1::ProbeReport> reports;
  Prober prober;
  ProberDriver driver;
};

TEST_F(ProberTest, TcpConnectPassesOnAListenerAndFailsOnAClosedPort) {
  TcpListener listener;
  v1::ProbePlan plan;
  *plan.add_targets() = target("open", listener.port, v1::HEALTH_CHECK_TCP);
  *plan.add_targets() = target("closed", closed_port(), v1::HEALTH_CHECK_TCP);
  prober.set_plan(plan);

  auto open = wait_result("open", up);
  ASSERT_TRUE(open);
  EXPECT_GE(open->rtt_ms(), 0);
  EXPECT_GE(open->last_rtt_ms(), 0);
  EXPECT_LT(open->rtt_ms(), 80);
  EXPECT_GT(open->last_change_ms(), 0);
  EXPECT_EQ(open->last_error(), "");
  EXPECT_EQ(open->accelerator(), "acc");
  EXPECT_EQ(open->listener(), "web");
  EXPECT_EQ(open->address(), "127.0.0.1");

  auto closed = wait_result("closed", down);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->last_error(), "connect: connection refused");
  EXPECT_LT(closed->rtt_ms(), 0);
}

TEST_F(ProberTest, EveryVerdictChangeIsLoggedWithTheEndpointAndTheError) {
  uint16_t port = closed_port();
  v1::ProbePlan plan;
  *plan.add_targets() = target("closed", port, v1::HEALTH_CHECK_TCP);
  prober.set_plan(plan);
  log::set_context("pop", "FRA1");
  ::testing::internal::CaptureStderr();
  auto closed = wait_result("closed", down);
  std::string out = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(closed);
  EXPECT_THAT(out, HasSubstr(" pop=FRA1 msg=\"health verdict changed\" endpoint=127.0.0.1 port=" +
                             std::to_string(port) +
                             " group=closed listener=web old=unknown new=unhealthy "
                             "error=\"connect: connection refused\"\n"));
}

TEST_F(ProberTest, HttpPassesInsideTheStatusRangeAndFailsOutside) {
  HttpServer ok(200), unavailable(503), silent(0);
  v1::ProbePlan plan;
  v1::ProbeTarget t = target("ok", ok.port, v1::HEALTH_CHECK_HTTP);
  t.mutable_health_check()->set_path("/healthz");
  *plan.add_targets() = t;
  *plan.add_targets() = target("unavailable", unavailable.port, v1::HEALTH_CHECK_HTTP);
  *plan.add_targets() = target("silent", silent.port, v1::HEALTH_CHECK_HTTP);
  prober.set_plan(plan);

  auto r = wait_result("ok", up);
  ASSERT_TRUE(r);
  EXPECT_GE(r->rtt_ms(), 0);
  auto requests = ok.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_THAT(requests[0], HasSubstr("GET /healthz HTTP/1.1\r\n"));
  EXPECT_THAT(requests[0], HasSubstr("Host: 127.0.0.1:" + std::to_string(ok.port) + "\r\n"));
  EXPECT_THAT(requests[0], HasSubstr("Connection: close\r\n"));

  auto bad = wait_result("unavailable", down);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->last_error(), "HTTP 503");

  // Connected, but no status line before the timeout.
  auto quiet = wait_result("silent", down);
  ASSERT_TRUE(quiet);
  EXPECT_EQ(quiet->last_error(), "timeout after 80 ms");

  // 503 accepted once the range says so: the same group, a new check.
  v1::ProbePlan wide;
  *wide.add_targets() = target("unavailable", unavailable.port, v1::HEALTH_CHECK_HTTP);
  wide.mutable_targets(0)->mutable_health_check()->set_expected_status_min(200);
  wide.mutable_targets(0)->mutable_health_check()->set_expected_status_max(599);
  prober.set_plan(wide);
  EXPECT_TRUE(wait_result("unavailable", up));
}

// HTTPS against a local TLS server whose certificate (127.0.0.1 and
// "probe.test") a test CA signed.
class HttpsProberTest : public ProberTest {
 protected:
  static void SetUpTestSuite() { certs = new TestCertificates(); }
  static void TearDownTestSuite() {
    delete certs;
    certs = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(certs->ok) << "openssl failed; see " << certs->dir; }

  // An HTTPS target verified against the test CA (verification is on by default).
  static v1::ProbeTarget https_target(const std::string& group, uint16_t port) {
    v1::ProbeTarget t = target(group, port, v1::HEALTH_CHECK_HTTPS);
    t.mutable_health_check()->set_tls_ca_file(certs->ca);
    return t;
  }
  static TestCertificates* certs;
};
TestCertificates* HttpsProberTest::certs = nullptr;

TEST_F(HttpsProberTest, PassesWithTheRightCaAndSendsTheRequestOverTls) {
  HttpsServer server(*certs, 200);
  ASSERT_TRUE(server.ok);
  v1::ProbePlan plan;
  v1::ProbeTarget t = https_target("ok", server.port);
  t.mutable_health_check()->set_path("/healthz");
  *plan.add_targets() = t;
  prober.set_plan(plan);

  auto r = wait_result("ok", up);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->last_error(), "");
  EXPECT_GE(r->rtt_ms(), 0);
  EXPECT_GE(r->tls_handshake_ms(), 0);
  auto requests = server.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_THAT(requests[0], HasSubstr("GET /healthz HTTP/1.1\r\n"));
  EXPECT_THAT(requests[0], HasSubstr("Host: 127.0.0.1:" + std::to_string(server.port) + "\r\n"));
  // No name given: no SNI, and the certificate matched the address.
  EXPECT_EQ(server.server_names()[0], "");
}

TEST_F(HttpsProberTest, AnUnknownCaFailsWithVerificationOnAndPassesWithItOff) {
  HttpsServer server(*certs, 200);
  ASSERT_TRUE(server.ok);
  v1::ProbePlan plan;
  v1::ProbeTarget unknown = https_target("unknown", server.port);
  unknown.mutable_health_check()->set_tls_ca_file(certs->other_ca);
  *plan.add_targets() = unknown;
  v1::ProbeTarget insecure = target("insecure", server.port, v1::HEALTH_CHECK_HTTPS);
  insecure.mutable_health_check()->set_tls_skip_verify(true);
  *plan.add_targets() = insecure;
  prober.set_plan(plan);

  auto bad = wait_result("unknown", down);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->last_error(),
            "TLS: certificate verify failed: unable to get local issuer certificate");
  EXPECT_LT(bad->tls_handshake_ms(), 0);
  EXPECT_TRUE(wait_result("insecure", up));
}

TEST_F(HttpsProberTest, TheCertificateMustNameTheServerNameWhichIsSentAsSni) {
  HttpsServer server(*certs, 200);
  ASSERT_TRUE(server.ok);
  v1::ProbePlan plan;
  v1::ProbeTarget named = https_target("named", server.port);
  named.mutable_health_check()->set_tls_server_name("probe.test");
  *plan.add_targets() = named;
  v1::ProbeTarget wrong = https_target("wrong", server.port);
  wrong.mutable_health_check()->set_tls_server_name("other.test");
  *plan.add_targets() = wrong;
  v1::ProbeTarget wrong_ip = https_target("wrong-ip", server.port);
  wrong_ip.mutable_health_check()->set_tls_server_name("192.0.2.1");
  *plan.add_targets() = wrong_ip;
  prober.set_plan(plan);

  auto ok = wait_result("named", up);
  ASSERT_TRUE(ok);
  EXPECT_THAT(
      server.requests(),
      ::testing::Contains(HasSubstr("Host: probe.test:" + std::to_string(server.port) + "\r\n")));
  auto bad = wait_result("wrong", down);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->last_error(), "TLS: certificate verify failed: hostname mismatch");
  auto bad_ip = wait_result("wrong-ip", down);
  ASSERT_TRUE(bad_ip);
  EXPECT_EQ(bad_ip->last_error(), "TLS: certificate verify failed: IP address mismatch");

  // The server notes a refused handshake's name after the client's verdict:
  // wait (real time) for it. An address is never sent as SNI.
  auto sent = [&](const std::string& name) {
    for (int i = 0; i < 200; ++i) {
      auto names = server.server_names();
      if (std::find(names.begin(), names.end(), name) != names.end()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  EXPECT_TRUE(sent("probe.test"));
  EXPECT_TRUE(sent("other.test"));
  EXPECT_TRUE(sent(""));
  EXPECT_THAT(server.server_names(), ::testing::Not(::testing::Contains("192.0.2.1")));
}

TEST_F(HttpsProberTest, TheExpectedStatusesAreHonoured) {
  HttpsServer server(*certs, 503);
  ASSERT_TRUE(server.ok);
  v1::ProbePlan plan;
  *plan.add_targets() = https_target("g", server.port);
  prober.set_plan(plan);
  auto bad = wait_result("g", down);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->last_error(), "HTTP 503");

  v1::ProbePlan wide;
  *wide.add_targets() = https_target("g", server.port);
  wide.mutable_targets(0)->mutable_health_check()->set_expected_status_min(503);
  prober.set_plan(wide);
  EXPECT_TRUE(wait_result("g", up));
}

TEST_F(HttpsProberTest, AMissingCaFileFailsTheProbeAndSaysWhich) {
  HttpsServer server(*certs, 200);
  ASSERT_TRUE(server.ok);
  v1::ProbePlan plan;
  v1::ProbeTarget t = https_target("g", server.port);
  t.mutable_health_check()->set_tls_ca_file(certs->dir + "/missing.pem");
  *plan.add_targets() = t;
  prober.set_plan(plan);
  auto bad = wait_result("g", down);
  ASSERT_TRUE(bad);
  EXPECT_THAT(bad->last_error(), HasSubstr("TLS: CA file \"" + certs->dir +
                                           "/missing.pem\": no such file or directory"));
}

// A slow handshake shows in tls_handshake_ms, never in the RTT routing uses:
// the server waits before its handshake, and the driver moves fake time on
// while it waits.
TEST_F(HttpsProberTest, TheHandshakeTimeIsReportedApartFromTheRtt) {
  HttpsServer server(*certs, 200, 700ms);
  ASSERT_TRUE(server.ok);
  v1::ProbePlan plan;
  v1::ProbeTarget t = https_target("slow", server.port);
  t.mutable_health_check()->set_interval_ms(5000);
  t.mutable_health_check()->set_timeout_ms(4000);
  *plan.add_targets() = t;
  prober.set_plan(plan);
  auto r = wait_result("slow", up);
  ASSERT_TRUE(r);
  EXPECT_GT(r->tls_handshake_ms(), 0);  // fake time moved on while the server waited
  EXPECT_GT(r->tls_handshake_ms(), r->last_rtt_ms());
  EXPECT_LT(r->rtt_ms(), 80);  // the connect alone

  // Other checks have no handshake.
  TcpListener listener;
  v1::ProbePlan tcp;
  *tcp.add_targets() = target("plain", listener.port, v1::HEALTH_CHECK_TCP);
  prober.set_plan(tcp);
  auto plain = wait_result("plain", up);
  ASSERT_TRUE(plain);
  EXPECT_LT(plain->tls_handshake_ms(), 0);
}

TEST_F(ProberTest, UdpNeedsAReplyThatStartsWithTheExpectedBytes) {
  UdpEcho echo("pong:");
  v1::ProbePlan plan;
  v1::ProbeTarget any = target("any", echo.port, v1::HEALTH_CHECK_UDP);
  *plan.add_targets() = any;
  v1::ProbeTarget expect = target("expect", echo.port, v1::HEALTH_CHECK_UDP);
  expect.mutable_health_check()->set_udp_request("ping");
  expect.mutable_health_check()->set_udp_expected_response("pong:ping");
  *plan.add_targets() = expect;
  v1::ProbeTarget wrong = target("wrong", echo.port, v1::HEALTH_CHECK_UDP);
  wrong.mutable_health_check()->set_udp_expected_response("hello");
  *plan.add_targets() = wrong;
  *plan.add_targets() = target("closed", closed_port(SOCK_DGRAM), v1::HEALTH_CHECK_UDP);
  prober.set_plan(plan);

  auto a = wait_result("any", up);
  ASSERT_TRUE(a);
  EXPECT_GE(a->rtt_ms(), 0);
  EXPECT_TRUE(wait_result("expect", up));
  auto w = wait_result("wrong", down);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->last_error(), "UDP: unexpected response");
  // Loopback answers a closed port with ICMP port unreachable.
  auto c = wait_result("closed", down);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->last_error(), "UDP: connection refused");
}

TEST_F(ProberTest, Ipv6TargetsAreProbedWithABracketedHost) {
  HttpServer server(204, /*v6=*/true);
  if (!server.ok) GTEST_SKIP() << "no IPv6 loopback here";
  v1::ProbePlan plan;
  v1::ProbeTarget t = target("v6", server.port, v1::HEALTH_CHECK_HTTP);
  t.set_address("::1");
  *plan.add_targets() = t;
  prober.set_plan(plan);
  ASSERT_TRUE(wait_result("v6", up));
  auto requests = server.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_THAT(requests[0], HasSubstr("Host: [::1]:" + std::to_string(server.port) + "\r\n"));
}

TEST_F(ProberTest, OneThreadProbesManyTargets) {
  TcpListener listener;
  v1::ProbePlan plan;
  constexpr int kTargets = 300;
  for (int i = 0; i < kTargets; ++i)
    *plan.add_targets() =
        target("g" + std::to_string(i), listener.port, v1::HEALTH_CHECK_TCP, 2, 2);
  prober.set_plan(plan);
  int healthy = 0;
  driver.until([&] {
    v1::ProbeReport r = prober.snapshot();
    healthy = 0;
    for (const auto& x : r.results()) healthy += x.known() && x.healthy();
    return healthy == kTargets;
  });
  EXPECT_EQ(healthy, kTargets);
}

TEST_F(ProberTest, AnUnusableTargetFailsWithAReason) {
  v1::ProbePlan plan;
  v1::ProbeTarget t = target("bad", 80, v1::HEALTH_CHECK_TCP);
  t.set_address("not-an-address");
  *plan.add_targets() = t;
  prober.set_plan(plan);
  auto r = wait_result("bad", down);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->last_error(), "\"not-an-address\" is not an IPv4 or IPv6 address");
}

// A check that normalise_health_check refuses (the controller never sends
// one) is not probed: the target is reported failing with the reason, which
// is logged once however often the plan comes again.
TEST_F(ProberTest, ARefusedHealthCheckIsReportedFailingAndNotProbed) {
  HttpServer server(200);
  v1::ProbePlan plan;
  v1::ProbeTarget fast = target("fast", server.port, v1::HEALTH_CHECK_HTTP, 3, 3);
  fast.mutable_health_check()->set_interval_ms(20);  // below the floor of 100
  *plan.add_targets() = fast;
  v1::ProbeTarget header = target("header", server.port, v1::HEALTH_CHECK_HTTP);
  header.mutable_health_check()->set_path("/health z\r\nX-Evil: 1");
  *plan.add_targets() = header;
  ::testing::internal::CaptureStderr();
  prober.set_plan(plan);
  auto r = wait_result("fast", down);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->last_error(), "health_check.interval_ms: 20 is outside 100..300000");
  EXPECT_EQ(r->consecutive(), 1u);
  auto h = wait_result("header", down);
  ASSERT_TRUE(h);
  EXPECT_THAT(h->last_error(), HasSubstr("health_check.path: "));
  EXPECT_THAT(h->last_error(), HasSubstr("hold no space or control character"));
  prober.set_plan(plan);
  driver.run_for(1000ms);
  std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(server.requests().empty()) << "a refused check was probed";
  EXPECT_EQ(prober.attempts_in_flight(), 0u);
  size_t logged = 0;
  for (size_t at = out.find("health check refused"); at != std::string::npos;
       at = out.find("health check refused", at + 1))
    ++logged;
  EXPECT_EQ(logged, 2u) << out;  // one line per target
  EXPECT_THAT(out, HasSubstr("msg=\"health check refused: the target is not probed\" "
                             "endpoint=127.0.0.1 port=" +
                             std::to_string(server.port) +
                             " group=fast listener=web "
                             "error=\"health_check.interval_ms: 20 is outside 100..300000\"\n"));
  v1::ProbeReport snap = prober.snapshot();
  ASSERT_EQ(snap.results_size(), 2);
  EXPECT_EQ(snap.results(0).consecutive(), 1u) << "probed after all";
}

TEST_F(ProberTest, PlanUpdatesKeepUnchangedTargetsAndDropRemovedOnes) {
  TcpListener a, b;
  v1::ProbePlan plan;
  // Healthy only after 3 successes: state that would be lost on a reset.
  *plan.add_targets() = target("a", a.port, v1::HEALTH_CHECK_TCP, 3, 3);
  *plan.add_targets() = target("b", b.port, v1::HEALTH_CHECK_TCP, 3, 3);
  prober.set_plan(plan);
  auto first = wait_result("a", up);
  ASSERT_TRUE(first);
  ASSERT_TRUE(wait_result("b", up));

  v1::ProbePlan next;
  *next.add_targets() = plan.targets(0);
  next.mutable_targets(0)->set_region("elsewhere");  // not part of the identity
  *next.add_targets() = target("c", b.port, v1::HEALTH_CHECK_TCP, 3, 3);
  prober.set_plan(next);
  // Right after the update "a" is still healthy, "c" unknown, "b" gone.
  auto r = wait_result("c", [](const v1::ProbeResult& x) { return !x.known(); });
  ASSERT_TRUE(r);
  v1::ProbeReport snap = prober.snapshot();
  ASSERT_EQ(snap.results_size(), 2);
  EXPECT_EQ(snap.results(0).endpoint_group(), "a");
  EXPECT_TRUE(snap.results(0).known());
  EXPECT_TRUE(snap.results(0).healthy());
  EXPECT_EQ(snap.results(0).last_change_ms(), first->last_change_ms());
  EXPECT_EQ(snap.results(1).endpoint_group(), "c");
  EXPECT_EQ(prober.target_count(), 2u);

  prober.set_plan(v1::ProbePlan());
  (void)prober.run_due();
  EXPECT_EQ(prober.snapshot().results_size(), 0);
}

TEST_F(ProberTest, WithoutChangesReportsComeAtTheReportInterval) {
  HttpServer server(200);
  v1::ProbePlan plan;
  *plan.add_targets() = target("g", server.port, v1::HEALTH_CHECK_HTTP, 1, 1);
  // Probes every 100 ms, reports every 200 ms: about 5 a second, not one
  // per probe.
  prober.set_plan(plan);
  ASSERT_TRUE(wait_result("g", up));
  uint64_t before = prober.reports_sent();
  driver.run_for(1000ms);
  uint64_t periodic = prober.reports_sent() - before;
  EXPECT_GE(periodic, 3u);
  EXPECT_LE(periodic, 7u);
  EXPECT_EQ(periodic, 5u) << "on a fake clock the interval is exact";
}

TEST(ProberReportTest, AVerdictChangeIsReportedAtOnce) {
  FakeClock clock;
  std::vector<v1::ProbeReport> reports;
  // A report interval far beyond the test: every report seen is a change.
  Prober prober(
      ProberOptions{.report_interval = 60s},
      [&](const v1::ProbeReport& r) { reports.push_back(r); }, clock);
  ProberDriver driver(prober, clock);
  HttpServer server(200);
  v1::ProbePlan plan;
  *plan.add_targets() = target("g", server.port, v1::HEALTH_CHECK_HTTP, 2, 2);
  prober.set_plan(plan);
  auto wait = [&](auto pred) {
    return driver.until([&] {
      return !reports.empty() && reports.back().results_size() == 1 &&
             pred(reports.back().results(0));
    });
  };
  // The new plan itself is reported (all unknown), then the first verdict.
  ASSERT_TRUE(wait([](const v1::ProbeResult& r) { return !r.known(); }));
  ASSERT_TRUE(wait([](const v1::ProbeResult& r) { return r.known() && r.healthy(); }));
  server.set_status(500);
  ASSERT_TRUE(wait([](const v1::ProbeResult& r) { return r.known() && !r.healthy(); }));
  // One report per change, nothing between them.
  EXPECT_EQ(reports.size(), 3u);
  EXPECT_EQ(reports.back().results(0).last_error(), "HTTP 500");
  EXPECT_EQ(reports.back().results(0).consecutive(), 2u);
  EXPECT_GT(reports.back().time_ms(), 0);
}

TEST(ProberReportTest, ASlowReporterDoesNotSlowProbesDown) {
  // A reporter stuck in its first report (a controller stream under flow
  // control) until the test lets it go: probes keep their pace and their
  // RTTs stay those of loopback. On a fake clock, whatever the machine's
  // load: a step that waited for the reporter would hang here instead.
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  int calls = 0;
  Prober prober(
      ProberOptions{.report_interval = 100ms},
      [&](const v1::ProbeReport&) {
        std::unique_lock<std::mutex> lock(mu);
        ++calls;
        cv.notify_all();
        // Bounded, so that a prober that waits for its reporter fails the
        // test instead of hanging it.
        cv.wait_for(lock, 10s, [&] { return released; });
      },
      clock);
  prober.start_reporting();
  ProberDriver driver(prober, clock);
  TcpListener listener;
  v1::ProbePlan plan;
  for (int i = 0; i < 20; ++i)
    *plan.add_targets() =
        target("g" + std::to_string(i), listener.port, v1::HEALTH_CHECK_TCP, 1, 1);
  prober.set_plan(plan);
  double worst = 0;
  int failures = 0;
  for (int i = 0; i < 150; ++i) {
    driver.run_for(10ms);
    v1::ProbeReport snap = prober.snapshot();
    for (const auto& r : snap.results()) {
      worst = std::max(worst, r.last_rtt_ms());
      failures += r.known() && !r.healthy();
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_EQ(calls, 1) << "the reporter was to be stuck in its first report";
    released = true;
    cv.notify_all();
    // The newest report waited and goes out next.
    EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return calls >= 2; }));
    EXPECT_GE(calls, 2);
  }
  EXPECT_EQ(failures, 0);
  EXPECT_LT(worst, 150) << "RTTs include time the prober spent reporting";
  EXPECT_GE(prober.reports_sent(), 8u) << "reports did not keep their interval";
  prober.stop();
}

TEST(ProberLimitsTest, OutOfDescriptorsPostponesProbesWithoutFailingThem) {
  // In a child process (threadsafe death test style: re-executed), since
  // it lowers the process's descriptor limit.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        TcpListener listener;
        FakeClock clock;
        Prober prober(ProberOptions{.report_interval = 100ms}, nullptr, clock);
        ProberDriver driver(prober, clock);
        rlimit saved{};
        getrlimit(RLIMIT_NOFILE, &saved);
        rlimit low = saved;
        low.rlim_cur = 0;  // open descriptors stay, no new one opens
        setrlimit(RLIMIT_NOFILE, &low);
        v1::ProbePlan plan;
        for (int i = 0; i < 5; ++i)
          *plan.add_targets() =
              target("g" + std::to_string(i), listener.port, v1::HEALTH_CHECK_TCP, 1, 1);
        prober.set_plan(plan);
        driver.run_for(500ms);
        v1::ProbeReport starved = prober.snapshot();
        for (const auto& r : starved.results())
          if (r.known() || !r.last_error().empty()) {
            std::fprintf(stderr, "counted as a result: %s\n", r.last_error().c_str());
            std::exit(1);
          }
        setrlimit(RLIMIT_NOFILE, &saved);
        driver.run_for(500ms);
        v1::ProbeReport fed = prober.snapshot();
        for (const auto& r : fed.results())
          if (!r.known() || !r.healthy()) {
            std::fprintf(stderr, "not probed once descriptors are back\n");
            std::exit(2);
          }
        std::exit(starved.results_size() == 5 ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace onramp::agent::test
