// Validation at the admin API boundary: every refusal names its field and
// says why; defaults fill unset fields; addresses and ranges are normalised.
#include "controlplane/controller/validation.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "common/health_check.h"
#include "common/table_spec.h"
#include "controlplane/controller/tests/fixtures.h"

namespace onramp::ctl::test {
namespace {

using grpc::StatusCode;

// A configuration with accelerator "web" (203.0.113.10), listener "http"
// (TCP 80, 8000..8099), group "eu" and endpoint 198.51.100.1 in it.
Config base() {
  Config c;
  ConfigChange ch;
  ch.puts.push_back(accelerator("web", {"203.0.113.10"}));
  auto l = listener("web", "http", {{80, 80}, {8000, 8099}});
  l.set_tcp_idle_timeout_s(340);
  l.set_udp_idle_timeout_s(30);
  ch.puts.push_back(l);
  auto g = group("web", "http", "eu", "eu-central", 100);
  auto* o = g.add_port_overrides();
  o->set_listener_port(8000);
  o->set_endpoint_port(9000);
  ch.puts.push_back(g);
  ch.puts.push_back(endpoint("web", "http", "eu", "198.51.100.1", 128));
  apply_change(c, ch);
  c.version = 4;
  return c;
}

template <typename T, typename F>
std::pair<StatusCode, std::string> run(F f, const Config& c, const T& in, Mutation m) {
  T out;
  grpc::Status s = f(c, in, m, out);
  return {s.error_code(), s.error_message()};
}

auto acc(const Config& c, const v1::Accelerator& a, Mutation m = Mutation::create) {
  return run(validate_accelerator, c, a, m);
}
auto lis(const Config& c, const v1::Listener& l, Mutation m = Mutation::create) {
  return run(validate_listener, c, l, m);
}
auto grp(const Config& c, const v1::EndpointGroup& g, Mutation m = Mutation::create) {
  return run(validate_endpoint_group, c, g, m);
}
auto ep(const Config& c, const v1::Endpoint& e, Mutation m = Mutation::create) {
  return run(validate_endpoint, c, e, m);
}

using Result = std::pair<StatusCode, std::string>;
Result invalid(const std::string& m) { return {StatusCode::INVALID_ARGUMENT, m}; }
const Result kOk{StatusCode::OK, ""};

TEST(Validation, AcceleratorNames) {
  Config c = base();
  EXPECT_EQ(acc(c, accelerator("", {"192.0.2.1"})), invalid("accelerator.name: required"));
  EXPECT_EQ(acc(c, accelerator("Web", {"192.0.2.1"})),
            invalid("accelerator.name: \"Web\" must match [a-z][a-z0-9-]{0,62}"));
  EXPECT_EQ(acc(c, accelerator("1web", {"192.0.2.1"})).first, StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(acc(c, accelerator(std::string(64, 'a'), {"192.0.2.1"})).first,
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(acc(c, accelerator(std::string(63, 'a'), {"192.0.2.1"})), kOk);
  EXPECT_EQ(acc(c, accelerator("a-1", {"192.0.2.1"})), kOk);
}

// Hardening findings: an 8 KB name came back as "received initial metadata
// size exceeds limit" (the whole name in the status message, exit 1 instead
// of 4), and names with newlines or escapes went into messages as they were.
TEST(Validation, AnOversizedOrControlCharacterNameIsRefusedWithABoundedMessage) {
  Config c = base();
  Result big = acc(c, accelerator(std::string(8192, 'x'), {"192.0.2.1"}));
  EXPECT_EQ(big.first, StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(big.second.size(), 200u) << big.second;
  EXPECT_NE(big.second.find("...\" must match [a-z][a-z0-9-]{0,62}"), std::string::npos)
      << big.second;
  EXPECT_EQ(acc(c, accelerator("web\n\x1b[31m", {"192.0.2.1"})),
            invalid("accelerator.name: \"web\\n\\x1b[31m\" must match [a-z][a-z0-9-]{0,62}"));
}

TEST(Validation, AcceleratorVips) {
  Config c = base();
  EXPECT_EQ(acc(c, accelerator("api", {})),
            invalid("accelerator.vips: at least one VIP is required"));
  EXPECT_EQ(acc(c, accelerator("api", {"192.0.2.1", "1.2.3.400"})),
            invalid("accelerator.vips[1]: \"1.2.3.400\" is not an IPv4 or IPv6 address"));
  EXPECT_EQ(acc(c, accelerator("api", {"192.0.2.1", "192.0.2.1"})),
            invalid("accelerator.vips[1]: 192.0.2.1 is listed twice"));
  EXPECT_EQ(acc(c, accelerator("api", {"127.0.0.1"})),
            invalid("accelerator.vips[0]: 127.0.0.1 is a loopback address"));
  EXPECT_EQ(acc(c, accelerator("api", {"ff02::1"})),
            invalid("accelerator.vips[0]: ff02::1 is a multicast address"));
  EXPECT_EQ(acc(c, accelerator("api", {"0.0.0.0"})).first, StatusCode::INVALID_ARGUMENT);
  // Unique across accelerators, whatever the spelling.
  EXPECT_EQ(acc(c, accelerator("api", {"203.0.113.10"})),
            Result(StatusCode::ALREADY_EXISTS,
                   "accelerator.vips[0]: 203.0.113.10 is already a VIP of accelerator \"web\""));
  // An accelerator keeps its own VIPs on update.
  EXPECT_EQ(acc(c, accelerator("web", {"203.0.113.10", "2001:db8::10"}), Mutation::update), kOk);

  v1::Accelerator out;
  ASSERT_TRUE(validate_accelerator(c, accelerator("api", {"2001:DB8:0::0:10", "::ffff:192.0.2.9"}),
                                   Mutation::create, out)
                  .ok());
  ASSERT_EQ(out.vips_size(), 2);
  EXPECT_EQ(out.vips(0), "2001:db8::10");
  EXPECT_EQ(out.vips(1), "192.0.2.9");
}

TEST(Validation, AcceleratorFlowLogSample) {
  Config c = base();
  v1::Accelerator a = accelerator("api", {"192.0.2.1"});
  a.set_flow_logs(true);
  EXPECT_EQ(acc(c, a), kOk);  // 0: every flow
  a.set_flow_log_sample_ppm(100);
  EXPECT_EQ(acc(c, a), kOk);
  a.set_flow_log_sample_ppm(1000000);
  EXPECT_EQ(acc(c, a), kOk);
  a.set_flow_log_sample_ppm(99);
  EXPECT_EQ(acc(c, a), invalid("accelerator.flow_log_sample_ppm: 99 is outside 100..1000000 "
                               "(0.01 % .. 100 %)"));
  a.set_flow_log_sample_ppm(1000001);
  EXPECT_EQ(acc(c, a).first, StatusCode::INVALID_ARGUMENT);
  v1::Accelerator out;
  a.set_flow_log_sample_ppm(10000);
  ASSERT_TRUE(validate_accelerator(c, a, Mutation::create, out).ok());
  EXPECT_TRUE(out.flow_logs());
  EXPECT_EQ(out.flow_log_sample_ppm(), 10000u);
}

TEST(Validation, CreateAndUpdateExistence) {
  Config c = base();
  EXPECT_EQ(
      acc(c, accelerator("web", {"192.0.2.1"})),
      Result(StatusCode::ALREADY_EXISTS, "accelerator.name: accelerator \"web\" already exists"));
  EXPECT_EQ(acc(c, accelerator("api", {"192.0.2.1"}), Mutation::update),
            Result(StatusCode::NOT_FOUND, "accelerator.name: no accelerator \"api\""));
  EXPECT_EQ(lis(c, listener("nope", "http", {{80, 80}})),
            Result(StatusCode::NOT_FOUND, "listener.accelerator: no accelerator \"nope\""));
  EXPECT_EQ(lis(c, listener("web", "http", {{81, 81}})).first, StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(grp(c, group("web", "tcp", "eu")).first, StatusCode::NOT_FOUND);
  EXPECT_EQ(ep(c, endpoint("web", "http", "us", "198.51.100.9")).first, StatusCode::NOT_FOUND);
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "198.51.100.9"), Mutation::update).first,
            StatusCode::NOT_FOUND);
}

TEST(Validation, ListenerPortRanges) {
  Config c = base();
  EXPECT_EQ(lis(c, listener("web", "tls", {})),
            invalid("listener.port_ranges: at least one range is required"));
  EXPECT_EQ(lis(c, listener("web", "tls", {{443, 443}, {0, 10}})),
            invalid("listener.port_ranges[1]: 0..10 is not a range within 1..65535"));
  EXPECT_EQ(lis(c, listener("web", "tls", {{443, 443}, {500, 400}})),
            invalid("listener.port_ranges[1]: 500..400 is not a range within 1..65535"));
  EXPECT_EQ(lis(c, listener("web", "tls", {{443, 443}, {70000, 0}})).first,
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(lis(c, listener("web", "tls", {{60, 100}, {70, 90}})),
            invalid("listener.port_ranges[1]: 70..90 overlaps listener.port_ranges[0]"));
  EXPECT_EQ(lis(c, listener("web", "tls", {{443, 443}, {70, 90}})),
            invalid("listener.port_ranges[1]: 70..90 overlaps listener \"http\".port_ranges[0]"));
  EXPECT_EQ(
      lis(c, listener("web", "alt", {{8050, 8200}})),
      invalid("listener.port_ranges[0]: 8050..8200 overlaps listener \"http\".port_ranges[1]"));
  // Other protocols share no traffic; TCP_UDP meets both.
  EXPECT_EQ(lis(c, listener("web", "dns", {{80, 80}}, v1::UDP)), kOk);
  EXPECT_EQ(lis(c, listener("web", "both", {{80, 80}}, v1::TCP_UDP)).first,
            StatusCode::INVALID_ARGUMENT);
  // The listener itself does not overlap itself on update.
  EXPECT_EQ(lis(c, listener("web", "http", {{80, 80}, {8000, 8099}}), Mutation::update), kOk);
}

TEST(Validation, ListenerFieldsAndDefaults) {
  Config c = base();
  EXPECT_EQ(lis(c, listener("web", "tls", {{443, 0}}, v1::PROTOCOL_UNSPECIFIED)),
            invalid("listener.protocol: required (TCP, UDP or TCP_UDP)"));
  auto l = listener("web", "tls", {{443, 0}});
  l.set_tcp_idle_timeout_s(86401);
  EXPECT_EQ(lis(c, l), invalid("listener.tcp_idle_timeout_s: 86401 is outside 1..86400"));
  l.set_tcp_idle_timeout_s(0);
  l.set_affinity(static_cast<v1::ClientAffinity>(7));
  EXPECT_EQ(lis(c, l), invalid("listener.affinity: unknown value 7 (NONE or SOURCE_IP)"));
  l.set_affinity(v1::SOURCE_IP);
  v1::Listener out;
  ASSERT_TRUE(validate_listener(c, l, Mutation::create, out).ok());
  EXPECT_EQ(out.port_ranges(0).last(), 443u);
  EXPECT_EQ(out.tcp_idle_timeout_s(), 340u);
  EXPECT_EQ(out.udp_idle_timeout_s(), 30u);
  EXPECT_EQ(lis(c, listener("web", "Bad", {{443, 0}})).second,
            "listener.name: \"Bad\" must match [a-z][a-z0-9-]{0,62}");
}

TEST(Validation, ListenerUpdateKeepsGroupOverridesInRange) {
  Config c = base();
  auto r = lis(c, listener("web", "http", {{80, 80}}), Mutation::update);
  EXPECT_EQ(r.first, StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(r.second,
            "listener.port_ranges: endpoint group \"eu\".port_overrides[0].listener_port 8000 "
            "would be outside every range; change the override first");
}

TEST(Validation, EndpointGroupDefaults) {
  Config c = base();
  v1::EndpointGroup out;
  ASSERT_TRUE(validate_endpoint_group(c, group("web", "http", "us"), Mutation::create, out).ok());
  EXPECT_EQ(out.traffic_dial_percent(), 100u);
  EXPECT_TRUE(out.has_unhealthy_drain_s());
  EXPECT_EQ(out.unhealthy_drain_s(), 30u);
  const auto& hc = out.health_check();
  EXPECT_EQ(hc.protocol(), v1::HEALTH_CHECK_TCP);
  EXPECT_EQ(hc.interval_ms(), 10000u);
  EXPECT_EQ(hc.timeout_ms(), 2000u);
  EXPECT_EQ(hc.healthy_threshold(), 3u);
  EXPECT_EQ(hc.unhealthy_threshold(), 3u);
  EXPECT_EQ(hc.port(), 0u);

  auto g = group("web", "http", "us", "", 0);
  g.mutable_health_check()->set_protocol(v1::HEALTH_CHECK_HTTP);
  g.mutable_health_check()->set_interval_ms(1000);
  ASSERT_TRUE(validate_endpoint_group(c, g, Mutation::create, out).ok());
  EXPECT_EQ(out.traffic_dial_percent(), 0u);  // set explicitly: kept
  g.set_unhealthy_drain_s(0);
  ASSERT_TRUE(validate_endpoint_group(c, g, Mutation::create, out).ok());
  EXPECT_EQ(out.unhealthy_drain_s(), 0u);  // set explicitly: kept
  g.set_unhealthy_drain_s(3600);
  ASSERT_TRUE(validate_endpoint_group(c, g, Mutation::create, out).ok());
  EXPECT_EQ(out.unhealthy_drain_s(), 3600u);
  EXPECT_EQ(out.health_check().path(), "/");
  EXPECT_EQ(out.health_check().timeout_ms(), 1000u);
  EXPECT_EQ(out.health_check().expected_status_min(), 200u);
  EXPECT_EQ(out.health_check().expected_status_max(), 399u);
}

TEST(Validation, EndpointGroupErrors) {
  Config c = base();
  EXPECT_EQ(grp(c, group("web", "http", "us", "", 101)),
            invalid("endpoint_group.traffic_dial_percent: 101 is outside 0..100"));
  auto drain = group("web", "http", "us");
  drain.set_unhealthy_drain_s(3601);
  EXPECT_EQ(grp(c, drain), invalid("endpoint_group.unhealthy_drain_s: 3601 is outside 0..3600"));
  EXPECT_EQ(grp(c, group("web", "http", "us", "eu central")).first, StatusCode::INVALID_ARGUMENT);
  auto g = group("web", "http", "us");
  g.mutable_health_check()->set_interval_ms(50);
  EXPECT_EQ(grp(c, g),
            invalid("endpoint_group.health_check.interval_ms: 50 is outside 100..300000"));
  g.mutable_health_check()->set_interval_ms(1000);
  g.mutable_health_check()->set_timeout_ms(1500);
  EXPECT_EQ(
      grp(c, g),
      invalid("endpoint_group.health_check.timeout_ms: 1500 is outside 10..1000 (the interval)"));
  g.mutable_health_check()->set_timeout_ms(0);
  g.mutable_health_check()->set_healthy_threshold(11);
  EXPECT_EQ(grp(c, g),
            invalid("endpoint_group.health_check.healthy_threshold: 11 is outside 1..10"));
  g.mutable_health_check()->set_healthy_threshold(0);
  g.mutable_health_check()->set_path("/health");
  EXPECT_EQ(grp(c, g),
            invalid("endpoint_group.health_check.path: only HTTP health checks have a path"));
  g.mutable_health_check()->set_protocol(v1::HEALTH_CHECK_HTTP);
  g.mutable_health_check()->set_path("health");
  EXPECT_EQ(grp(c, g).second.rfind("endpoint_group.health_check.path: \"health\" must start", 0),
            0u);
  g.mutable_health_check()->set_path("/health");
  g.mutable_health_check()->set_expected_status_min(500);
  g.mutable_health_check()->set_expected_status_max(200);
  EXPECT_EQ(grp(c, g), invalid("endpoint_group.health_check.expected_status_max: 200 is below "
                               "expected_status_min 500"));
  g.mutable_health_check()->set_expected_status_max(0);
  EXPECT_EQ(grp(c, g), kOk);

  auto o = group("web", "http", "us");
  auto* po = o.add_port_overrides();
  po->set_listener_port(443);
  po->set_endpoint_port(8443);
  EXPECT_EQ(grp(c, o), invalid("endpoint_group.port_overrides[0].listener_port: 443 is in no port "
                               "range of listener \"http\""));
  po->set_listener_port(80);
  po->set_endpoint_port(0);
  EXPECT_EQ(grp(c, o),
            invalid("endpoint_group.port_overrides[0].endpoint_port: 0 is outside 1..65535"));
}

// Regression: port overrides were accepted and silently not applied. With
// direct server return only the endpoints can rewrite ports, which the
// controller cannot see: the operator says so, and is told exactly how.
TEST(Validation, PortOverridesAreRefusedUntilTheOperatorSaysTheEndpointsRewrite) {
  Config c = base();
  c.accelerators[accelerator_key("web")].add_vips("2001:db8::10");
  auto g = group("web", "http", "us");
  auto* o = g.add_port_overrides();
  o->set_listener_port(80);
  o->set_endpoint_port(8080);
  EXPECT_EQ(grp(c, g),
            invalid("endpoint_group.port_rewrite: the PoPs forward packets unchanged, so port "
                    "overrides take effect only at the endpoints: run onramp-decap with "
                    "--port-override 203.0.113.10:80=8080/tcp --port-override "
                    "[2001:db8::10]:80=8080/tcp on every endpoint of the group, then set "
                    "port_rewrite to PORT_REWRITE_DECAP (onrampctl: --port-rewrite decap)"));
  g.set_port_rewrite(v1::PORT_REWRITE_DECAP);
  v1::EndpointGroup out;
  ASSERT_TRUE(validate_endpoint_group(c, g, Mutation::create, out).ok());
  EXPECT_EQ(out.port_rewrite(), v1::PORT_REWRITE_DECAP);
  // The statement alone, without overrides, is harmless.
  g.clear_port_overrides();
  EXPECT_EQ(grp(c, g), kOk);
  // An update that keeps the overrides but drops the statement is refused too.
  auto eu = c.groups.at(group_key("web", "http", "eu"));
  EXPECT_EQ(grp(c, eu, Mutation::update).first, StatusCode::INVALID_ARGUMENT);
}

TEST(Validation, UdpHealthCheckGetsTheDefaultRequest) {
  Config c = base();
  auto g = group("web", "http", "us");
  g.mutable_health_check()->set_protocol(v1::HEALTH_CHECK_UDP);
  v1::EndpointGroup out;
  ASSERT_TRUE(validate_endpoint_group(c, g, Mutation::create, out).ok());
  EXPECT_EQ(out.health_check().udp_request(), kDefaultUdpRequest);
  g.mutable_health_check()->set_udp_request("ping\n");
  ASSERT_TRUE(validate_endpoint_group(c, g, Mutation::create, out).ok());
  EXPECT_EQ(out.health_check().udp_request(), "ping\n");
}

TEST(Validation, HttpsHealthChecksKeepTheirTlsFieldsAndOthersRefuseThem) {
  Config c = base();
  auto g = group("web", "http", "us");
  g.mutable_health_check()->set_protocol(v1::HEALTH_CHECK_HTTPS);
  g.mutable_health_check()->set_tls_server_name("api.example.com");
  g.mutable_health_check()->set_tls_ca_file("/etc/onramp/probe-ca.pem");
  v1::EndpointGroup out;
  ASSERT_TRUE(validate_endpoint_group(c, g, Mutation::create, out).ok());
  EXPECT_EQ(out.health_check().path(), "/");
  EXPECT_EQ(out.health_check().tls_server_name(), "api.example.com");
  EXPECT_FALSE(out.health_check().tls_skip_verify());
  g.mutable_health_check()->set_tls_ca_file("probe-ca.pem");
  EXPECT_EQ(grp(c, g), invalid("endpoint_group.health_check.tls_ca_file: \"probe-ca.pem\" must be "
                               "an absolute path, without control characters, at most 4096 bytes"));
  g.mutable_health_check()->set_tls_ca_file("");
  g.mutable_health_check()->set_protocol(v1::HEALTH_CHECK_HTTP);
  EXPECT_EQ(grp(c, g), invalid("endpoint_group.health_check.tls_server_name: only HTTPS health "
                               "checks use TLS"));
}

// The old normaliser filled the unset minimum from the maximum before the
// range check, and blamed expected_status_min for the maximum's 600.
TEST(Validation, ExpectedStatusMin0Max600NamesTheWrongField) {
  Config c = base();
  auto g = group("web", "http", "us");
  g.mutable_health_check()->set_protocol(v1::HEALTH_CHECK_HTTP);
  g.mutable_health_check()->set_expected_status_max(600);
  EXPECT_EQ(grp(c, g), invalid("endpoint_group.health_check.expected_status_max: 600 is outside "
                               "100..599"));
}

// Hardening review, finding 5: an endpoint that is a VIP of the same
// accelerator was accepted and re-encapsulated by the PoP 49 times;
// link-local and "this network" addresses were accepted.
TEST(Validation, AddressesThatWouldLoopOrCannotBeReachedAreRefused) {
  Config c = base();  // accelerator web: VIP 203.0.113.10; endpoint 198.51.100.1
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "203.0.113.10")),
            invalid("endpoint.address: 203.0.113.10 is a VIP of accelerator \"web\"; traffic to "
                    "it would loop through the PoP"));
  EXPECT_EQ(acc(c, accelerator("api", {"198.51.100.1"})),
            invalid("accelerator.vips[0]: 198.51.100.1 is an endpoint of listener \"http\" of "
                    "accelerator \"web\"; traffic to it would loop through the PoP"));
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "169.254.1.1")),
            invalid("endpoint.address: 169.254.1.1 is a link-local address"));
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "fe80::1")),
            invalid("endpoint.address: fe80::1 is a link-local address"));
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "0.1.2.3")),
            invalid("endpoint.address: 0.1.2.3 is in 0.0.0.0/8 (\"this network\")"));
  EXPECT_EQ(acc(c, accelerator("api", {"240.0.0.1"})),
            invalid("accelerator.vips[0]: 240.0.0.1 is in 240.0.0.0/4 (reserved)"));
  EXPECT_EQ(acc(c, accelerator("api", {"::ffff:127.0.0.1"})),
            invalid("accelerator.vips[0]: ::ffff:127.0.0.1 is a loopback address"));
  // Found by fuzz_validation: inet_pton stops at a NUL, so "127.0.0.1\0\0"
  // was taken for 127.0.0.1 (and "192.0.2.9\0junk" for 192.0.2.9), and the
  // refusal carried the NULs to the operator's terminal.
  EXPECT_EQ(acc(c, accelerator("api", {std::string("192.0.2.9\0junk", 14)})),
            invalid("accelerator.vips[0]: \"192.0.2.9\\x00junk\" is not an IPv4 or IPv6 address"));
}

// Hardening review, finding 8: creating or updating an accelerator read
// every endpoint to refuse a VIP that is an endpoint's address (finding 5),
// and an endpoint read every accelerator's VIPs. Both now look the address up
// in indexes that apply_change keeps; a stale index would let a loop through,
// so every kind of change is followed here, both ways.
TEST(Validation, Finding8AddressIndexesFollowEveryChange) {
  Config c = base();  // accelerator web: VIP 203.0.113.10; endpoint 198.51.100.1
  auto commit = [&](std::vector<Resource> puts, std::vector<Resource> erasures = {}) {
    apply_change(c, ConfigChange{.puts = std::move(puts), .erasures = std::move(erasures)});
    ASSERT_TRUE(c.endpoints_indexed());
    ASSERT_TRUE(c.vips_indexed());
  };
  const Result kVipIsEndpoint = invalid(
      "accelerator.vips[0]: 198.51.100.2 is an endpoint of listener \"http\" of accelerator "
      "\"web\"; traffic to it would loop through the PoP");
  ASSERT_TRUE(c.endpoints_indexed() && c.vips_indexed());

  // An accelerator's VIPs change: the old one is free, the new one taken.
  commit({accelerator("web", {"203.0.113.20"})});
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "203.0.113.10")), kOk);
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "203.0.113.20")),
            invalid("endpoint.address: 203.0.113.20 is a VIP of accelerator \"web\"; traffic to "
                    "it would loop through the PoP"));
  EXPECT_EQ(acc(c, accelerator("api", {"203.0.113.20"})).first, StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(acc(c, accelerator("web", {"203.0.113.20"}), Mutation::update), kOk);

  // Endpoints come, change and go.
  commit({endpoint("web", "http", "eu", "198.51.100.2", 10)});
  EXPECT_EQ(acc(c, accelerator("api", {"198.51.100.2"})), kVipIsEndpoint);
  commit({endpoint("web", "http", "eu", "198.51.100.2", 20)});  // an update: still there
  EXPECT_EQ(acc(c, accelerator("api", {"198.51.100.2"})), kVipIsEndpoint);
  commit({}, {endpoint("web", "http", "eu", "198.51.100.1")});
  EXPECT_EQ(acc(c, accelerator("api", {"198.51.100.1"})), kOk);
  EXPECT_EQ(acc(c, accelerator("api", {"198.51.100.2"})), kVipIsEndpoint);
  commit({}, {endpoint("web", "http", "eu", "198.51.100.2")});
  EXPECT_EQ(acc(c, accelerator("api", {"198.51.100.2"})), kOk);

  // An accelerator that goes frees its VIPs.
  commit({accelerator("api", {"192.0.2.50"})});
  EXPECT_NE(ep(c, endpoint("web", "http", "eu", "192.0.2.50")), kOk);
  commit({}, {accelerator("api", {})});
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "192.0.2.50")), kOk);

  // What the indexes hold is what building them afresh gives.
  Config fresh = c;
  fresh.reindex();
  for (const char* a : {"203.0.113.10", "203.0.113.20", "198.51.100.1", "198.51.100.2"}) {
    EXPECT_EQ(c.endpoint_addresses.users(a), fresh.endpoint_addresses.users(a)) << a;
    EXPECT_EQ(c.vip_owners.users(a), fresh.vip_owners.users(a)) << a;
  }
  EXPECT_EQ(c.endpoint_addresses.size(), fresh.endpoint_addresses.size());
  EXPECT_EQ(c.vip_owners.size(), fresh.vip_owners.size());

  // A Config written to directly has no index for what it holds now, and
  // the checks read the maps instead: still refused.
  Config direct = c;
  direct.endpoints[endpoint_key("web", "http", "eu", "198.51.100.77")] =
      endpoint("web", "http", "eu", "198.51.100.77");
  EXPECT_FALSE(direct.endpoints_indexed());
  EXPECT_EQ(acc(direct, accelerator("api", {"198.51.100.77"})).first, StatusCode::INVALID_ARGUMENT);
  direct.accelerators[accelerator_key("db")] = accelerator("db", {"192.0.2.60"});
  EXPECT_FALSE(direct.vips_indexed());
  EXPECT_NE(ep(direct, endpoint("web", "http", "eu", "192.0.2.60")), kOk);
  // The next commit builds them again.
  apply_change(direct, {});
  EXPECT_TRUE(direct.endpoints_indexed() && direct.vips_indexed());
  EXPECT_EQ(acc(direct, accelerator("api", {"198.51.100.77"})).first, StatusCode::INVALID_ARGUMENT);
}

// Finding 8's figure: checking an accelerator's 16 VIPs at the endpoint cap
// (20 000), through the indexes and by reading every endpoint as before.
// Printed for docs/performance.md; the index must be the faster.
TEST(Validation, Finding8AnAcceleratorAtTheEndpointCapIsCheckedWithoutReadingEveryEndpoint) {
  Config c = base();
  ConfigChange ch;
  for (int i = 0; i < 20000; ++i)
    ch.puts.push_back(endpoint("web", "http", "eu",
                               "10." + std::to_string(i / 256 / 256 % 256) + "." +
                                   std::to_string(i / 256 % 256) + "." + std::to_string(i % 256),
                               1));
  apply_change(c, ch);
  ASSERT_EQ(c.endpoints.size(), 20001u);
  std::vector<std::string> vips;
  for (int i = 1; i <= 16; ++i) vips.push_back("203.0.113." + std::to_string(100 + i));
  const v1::Accelerator updated = accelerator("web", vips);
  Config scanned = c;  // written to directly: no index, read as before
  scanned.endpoints[c.endpoints.begin()->first] = c.endpoints.begin()->second;
  ASSERT_TRUE(c.endpoints_indexed());
  ASSERT_FALSE(scanned.endpoints_indexed());

  auto time_per_check = [&](const Config& config, int rounds) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < rounds; ++i) EXPECT_EQ(acc(config, updated, Mutation::update), kOk);
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
               .count() /
           rounds;
  };
  double indexed = time_per_check(c, 2000);
  double scan = time_per_check(scanned, 20);
  std::printf(
      "accelerator update with 16 VIPs at 20000 endpoints: %.1f us indexed, %.1f us "
      "reading every endpoint\n",
      indexed, scan);
  EXPECT_LT(indexed, scan);
}

TEST(Validation, Endpoints) {
  Config c = base();
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "1.2.3.400")),
            invalid("endpoint.address: \"1.2.3.400\" is not an IPv4 or IPv6 address"));
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "")), invalid("endpoint.address: required"));
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "198.51.100.2", 256)),
            invalid("endpoint.weight: 256 is outside 0..255"));
  auto e = endpoint("web", "http", "eu", "198.51.100.2");
  e.set_mode(static_cast<v1::ForwardingMode>(9));
  EXPECT_EQ(ep(c, e), invalid("endpoint.mode: unknown value 9 (ENCAP_IPIP or ENCAP_GUE)"));
  EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "198.51.100.1")),
            Result(StatusCode::ALREADY_EXISTS,
                   "endpoint.address: 198.51.100.1 is already in endpoint group \"eu\""));

  // One address serves a listener through one group only.
  Config c2 = c;
  ConfigChange ch;
  ch.puts.push_back(group("web", "http", "us", "us-east", 100));
  apply_change(c2, ch);
  auto r = ep(c2, endpoint("web", "http", "us", "198.51.100.1"));
  EXPECT_EQ(r.first, StatusCode::ALREADY_EXISTS);
  EXPECT_NE(r.second.find("already in endpoint group \"eu\" of listener \"http\""),
            std::string::npos);

  v1::Endpoint out;
  ASSERT_TRUE(
      validate_endpoint(c, endpoint("web", "http", "eu", "2001:DB8::0:7"), Mutation::create, out)
          .ok());
  EXPECT_EQ(out.address(), "2001:db8::7");
  EXPECT_EQ(out.weight(), 128u);
  ASSERT_TRUE(
      validate_endpoint(c, endpoint("web", "http", "eu", "198.51.100.3", 0), Mutation::create, out)
          .ok());
  EXPECT_EQ(out.weight(), 0u);  // drain, set explicitly
}

// Hardening finding: 5000 endpoints were accepted in a listener whose Maglev
// table has too few slots for them; the PoPs then refused the table.
TEST(Validation, AListenerTakesNoMoreEndpointsThanItsMaglevTableServes) {
  Config c = base();  // one endpoint already
  ConfigChange ch;
  const size_t most = kDefaultMaglevSize / kMaglevSlotsPerEndpoint;
  for (size_t i = 1; i < most; ++i)
    ch.puts.push_back(
        endpoint("web", "http", "eu",
                 "2001:db8:e::" + std::to_string(i / 10000) + ":" + std::to_string(i % 10000)));
  apply_change(c, ch);
  auto r = ep(c, endpoint("web", "http", "eu", "198.51.100.200"));
  EXPECT_EQ(r, Result(StatusCode::FAILED_PRECONDITION,
                      "endpoint: listener \"http\" already has 6553 endpoints, the most a PoP's "
                      "Maglev table of 65537 slots takes"));
}

// Hardening finding 3: the controller accepted configurations whose tables
// could not be delivered. Each total is capped (checked in O(1)) and the
// repeated fields that make a resource big are bounded; the largest message
// they allow is computed in pop_registry_test.cc (Finding3...).
TEST(Validation, Finding3TheConfigurationIsBoundedSoEveryTableFitsOneMessage) {
  const std::string fits = " the most the controller accepts (";
  {
    Config c = base();
    ConfigChange ch;
    for (size_t i = 1; i < kMaxEndpoints; ++i) {
      const std::string l = "l" + std::to_string(i / 5000);
      ch.puts.push_back(endpoint("web", l, "eu", "2001:db8:f::" + std::to_string(i)));
    }
    apply_change(c, ch);
    ASSERT_EQ(c.endpoints.size(), kMaxEndpoints);
    auto r = ep(c, endpoint("web", "http", "eu", "198.51.100.200"));
    EXPECT_EQ(r, Result(StatusCode::FAILED_PRECONDITION,
                        "the configuration already has 20000 endpoints," + fits +
                            "20000, so that every PoP's table fits in one message)"));
    // Updates of what is there still go through.
    EXPECT_EQ(ep(c, endpoint("web", "http", "eu", "198.51.100.1", 3), Mutation::update).first,
              StatusCode::OK);
  }
  {
    Config c = base();
    ConfigChange ch;
    for (size_t i = 1; i < kMaxEndpointGroups; ++i)
      ch.puts.push_back(group("web", "http", "g" + std::to_string(i)));
    apply_change(c, ch);
    EXPECT_EQ(grp(c, group("web", "http", "one-more")).first, StatusCode::FAILED_PRECONDITION);
  }
  {
    Config c = base();
    ConfigChange ch;
    for (size_t i = 1; i < kMaxListeners; ++i)
      ch.puts.push_back(listener("web", "l" + std::to_string(i), {{1000, 1000}}));
    apply_change(c, ch);
    auto r = lis(c, listener("web", "one-more", {{2000, 2000}}));
    EXPECT_EQ(r.first, StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(r.second.find("already has 5000 listeners"), std::string::npos) << r.second;
  }
  {
    Config c = base();
    ConfigChange ch;
    for (size_t i = 1; i < kMaxAccelerators; ++i)
      ch.puts.push_back(accelerator("a" + std::to_string(i), {"203.0.114." + std::to_string(i)}));
    apply_change(c, ch);
    EXPECT_EQ(acc(c, accelerator("one-more", {"192.0.2.99"})).first,
              StatusCode::FAILED_PRECONDITION);
  }
  // The repeated fields that make one resource big.
  Config c = base();
  v1::Accelerator a = accelerator("many", {});
  for (int i = 0; i <= kMaxVipsPerAccelerator; ++i) a.add_vips("192.0.2." + std::to_string(i + 1));
  EXPECT_EQ(acc(c, a), invalid("accelerator.vips: 17 entries, at most 16"));
  v1::Listener l = listener("web", "many", {});
  for (int i = 0; i <= kMaxPortRangesPerListener; ++i) {
    auto* r = l.add_port_ranges();
    r->set_first(static_cast<uint32_t>(10000 + 2 * i));
  }
  EXPECT_EQ(lis(c, l), invalid("listener.port_ranges: 65 entries, at most 64"));
  v1::EndpointGroup g = group("web", "http", "many");
  for (int i = 0; i <= kMaxPortOverridesPerGroup; ++i) {
    auto* o = g.add_port_overrides();
    o->set_listener_port(static_cast<uint32_t>(8000 + i));
    o->set_endpoint_port(9000);
  }
  g.set_port_rewrite(v1::PORT_REWRITE_DECAP);
  EXPECT_EQ(grp(c, g), invalid("endpoint_group.port_overrides: 65 entries, at most 64"));
}

TEST(Validation, DeletesNameTheChildren) {
  Config c = base();
  auto s = check_delete_accelerator(c, "web");
  EXPECT_EQ(s.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "accelerator \"web\" has 1 listener: \"http\"; delete them first");
  s = check_delete_listener(c, "web", "http");
  EXPECT_EQ(s.error_message(), "listener \"http\" has 1 endpoint group: \"eu\"; delete them first");
  s = check_delete_endpoint_group(c, "web", "http", "eu");
  EXPECT_EQ(s.error_message(),
            "endpoint group \"eu\" has 1 endpoint: \"198.51.100.1\"; delete them first");
  EXPECT_EQ(check_delete_accelerator(c, "api").error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(check_delete_listener(c, "web", "tls").error_code(), StatusCode::NOT_FOUND);
}

TEST(Validation, PopIds) {
  EXPECT_TRUE(is_pop_id("FRA1"));
  EXPECT_TRUE(is_pop_id("SIN12"));
  EXPECT_FALSE(is_pop_id("FRA"));
  EXPECT_FALSE(is_pop_id("fra1"));
  EXPECT_FALSE(is_pop_id("FRA123"));
  EXPECT_FALSE(is_pop_id("operator"));
}

}  // namespace
}  // namespace onramp::ctl::test
