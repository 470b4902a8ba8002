// Route computation over synthetic latency and health matrices: the nearest
// group wins, dials spill over, partial health with 1.4 overprovisioning,
// fail-open, hysteresis under jitter, health per PoP; and before any probe,
// shares by dial. Every table passes the dataplane's own validation and builds.
#include "controlplane/controller/route_computer.h"

#include <gtest/gtest.h>

#include <random>

#include "controlplane/controller/table_check.h"
#include "controlplane/controller/tests/fixtures.h"
#include "dataplane/core/forwarding_table.h"

namespace onramp::ctl::test {
namespace {

PopContext fra1() {
  PopContext p{.id = "FRA1"};
  p.tunnel_source.set_ipv4("192.0.2.1");
  p.tunnel_source.set_ipv6("2001:db8::1");
  return p;
}

class RouteComputerTest : public ::testing::Test {
 protected:
  void add(Resource r) {
    ConfigChange ch;
    ch.puts.push_back(std::move(r));
    apply_change(config_, ch);
  }
  // accelerator "web", listener "http" on TCP 80.
  void web() {
    add(accelerator("web", {"203.0.113.10"}));
    auto l = listener("web", "http", {{80, 80}});
    l.set_tcp_idle_timeout_s(340);
    l.set_udp_idle_timeout_s(30);
    add(l);
  }
  PopRoutes compute(const PopContext& pop = fra1(), const PopHealth* health = nullptr,
                    const RouteMemory* memory = nullptr, bool new_round = false) {
    PopRoutes r = RouteComputer().compute(config_, pop, health, memory, new_round);
    auto spec = check_table(r.table);
    EXPECT_EQ(spec.error(), "");
    std::string err;
    if (spec.ok()) {
      EXPECT_TRUE(dp::ForwardingTable::build(*spec, 1, err)) << err;
    }
    return r;
  }
  static uint32_t weight_of(const PopRoutes& r, const std::string& address) {
    for (const auto& e : r.table.listeners(0).endpoints())
      if (e.address() == address) return e.weight();
    ADD_FAILURE() << address << " not in the table";
    return 999;
  }

  Config config_;
};

TEST_F(RouteComputerTest, GroupsShareByDial) {
  web();
  add(group("web", "http", "eu", "eu-central", 100));
  add(group("web", "http", "us", "us-east", 50));
  add(endpoint("web", "http", "eu", "198.51.100.1", 128));
  add(endpoint("web", "http", "us", "198.51.100.2", 128));
  PopRoutes r = compute();
  ASSERT_EQ(r.listeners.size(), 1u);
  const auto& lr = r.listeners[0];
  ASSERT_EQ(lr.groups_size(), 2);
  EXPECT_NEAR(lr.groups(0).share_percent(), 66.67, 0.01);
  EXPECT_NEAR(lr.groups(1).share_percent(), 33.33, 0.01);
  EXPECT_EQ(lr.groups(1).traffic_dial_percent(), 50u);
  EXPECT_EQ(lr.groups(0).healthy_endpoints(), 1u);
  EXPECT_EQ(lr.groups(0).rtt_ms(), -1);
  EXPECT_NE(lr.groups(0).reason().find("no RTT measured from FRA1 yet: groups share by dial"),
            std::string::npos)
      << lr.groups(0).reason();
  EXPECT_EQ(weight_of(r, "198.51.100.1"), 255u);
  EXPECT_EQ(weight_of(r, "198.51.100.2"), 128u);
  EXPECT_EQ(r.table.listeners(0).name(), "web/http");
  EXPECT_EQ(r.table.listeners(0).endpoints(0).label(), "eu (eu-central)");
  v1::EndpointGroup same = group("web", "http", "eu-central", "eu-central");
  EXPECT_EQ(endpoint_label(same), "eu-central");  // not "eu-central (eu-central)"
  EXPECT_EQ(r.table.pop(), "FRA1");
  EXPECT_EQ(r.table.tunnel_source().ipv4(), "192.0.2.1");
  EXPECT_EQ(r.table.next_hop_mac(), "");
  EXPECT_EQ(r.table.version(), 0u);
}

TEST_F(RouteComputerTest, EndpointsShareByWeight) {
  web();
  add(group("web", "http", "eu", "", 100));
  add(endpoint("web", "http", "eu", "198.51.100.1", 100));
  add(endpoint("web", "http", "eu", "198.51.100.2", 50));
  add(endpoint("web", "http", "eu", "198.51.100.3", 1));
  PopRoutes r = compute();
  EXPECT_EQ(weight_of(r, "198.51.100.1"), 255u);
  EXPECT_EQ(weight_of(r, "198.51.100.2"), 128u);
  EXPECT_EQ(weight_of(r, "198.51.100.3"), 3u);
  EXPECT_DOUBLE_EQ(r.listeners[0].groups(0).share_percent(), 100.0);
}

TEST_F(RouteComputerTest, DrainsStayAtZero) {
  web();
  add(group("web", "http", "eu", "", 100));
  add(group("web", "http", "us", "", 0));
  add(endpoint("web", "http", "eu", "198.51.100.1", 0));
  add(endpoint("web", "http", "eu", "198.51.100.2", 10));
  add(endpoint("web", "http", "us", "198.51.100.3", 200));
  PopRoutes r = compute();
  EXPECT_EQ(weight_of(r, "198.51.100.1"), 0u);  // weight 0: drain
  EXPECT_EQ(weight_of(r, "198.51.100.2"), 255u);
  EXPECT_EQ(weight_of(r, "198.51.100.3"), 0u);  // dial 0: drain
  const auto& us = r.listeners[0].groups(1);
  EXPECT_EQ(us.share_percent(), 0.0);
  EXPECT_EQ(us.reason(), "traffic dial 0 %: drained, existing flows stay");
  // Drained endpoints stay in the table, so their flows stay.
  EXPECT_EQ(r.table.listeners(0).endpoints_size(), 3);
}

TEST_F(RouteComputerTest, AllDrainedTakesNoNewFlows) {
  web();
  add(group("web", "http", "eu", "", 100));
  add(endpoint("web", "http", "eu", "198.51.100.1", 0));
  PopRoutes r = compute();
  EXPECT_EQ(weight_of(r, "198.51.100.1"), 0u);
  EXPECT_EQ(r.listeners[0].groups(0).reason(),
            "every endpoint has weight 0: drained, existing flows stay");
}

TEST_F(RouteComputerTest, EmptyGroupsTakeNothing) {
  web();
  add(group("web", "http", "eu", "", 50));
  add(group("web", "http", "empty", "", 100));
  add(endpoint("web", "http", "eu", "198.51.100.1", 128));
  PopRoutes r = compute();
  const auto& lr = r.listeners[0];
  EXPECT_EQ(lr.groups(0).endpoint_group(), "empty");
  EXPECT_EQ(lr.groups(0).share_percent(), 0.0);
  EXPECT_EQ(lr.groups(0).reason(), "no endpoint: takes no traffic");
  EXPECT_DOUBLE_EQ(lr.groups(1).share_percent(), 100.0);
  EXPECT_EQ(weight_of(r, "198.51.100.1"), 255u);
}

TEST_F(RouteComputerTest, ListenerWithoutGroupsIsInTheTable) {
  web();
  PopRoutes r = compute();
  ASSERT_EQ(r.table.listeners_size(), 1);
  EXPECT_EQ(r.table.listeners(0).endpoints_size(), 0);
  EXPECT_EQ(r.table.listeners(0).vips(0), "203.0.113.10");
}

TEST_F(RouteComputerTest, DisabledAcceleratorsAreLeftOut) {
  web();
  add(accelerator("off", {"203.0.113.20"}, false));
  add(listener("off", "http", {{80, 80}}));
  PopRoutes r = compute();
  ASSERT_EQ(r.table.listeners_size(), 1);
  EXPECT_EQ(r.table.listeners(0).name(), "web/http");
}

TEST_F(RouteComputerTest, EndpointsOfAFamilyThePopCannotReachAreLeftOut) {
  web();
  add(group("web", "http", "eu", "", 100));
  add(endpoint("web", "http", "eu", "198.51.100.1", 128));
  add(endpoint("web", "http", "eu", "2001:db8:100::1", 128));
  PopContext v4only{.id = "SIN1"};
  v4only.tunnel_source.set_ipv4("192.0.2.2");
  PopRoutes r = compute(v4only);
  ASSERT_EQ(r.table.listeners(0).endpoints_size(), 1);
  EXPECT_EQ(r.table.listeners(0).endpoints(0).address(), "198.51.100.1");
  EXPECT_EQ(r.listeners[0].groups(0).endpoints(), 2u);
  EXPECT_NE(r.listeners[0].groups(0).reason().find(
                "1 IPv6 endpoint(s) left out: SIN1 has no IPv6 tunnel source"),
            std::string::npos)
      << r.listeners[0].groups(0).reason();
  // With both families, both are in.
  EXPECT_EQ(compute().table.listeners(0).endpoints_size(), 2);
}

TEST_F(RouteComputerTest, ProbePlanUsesTheOverriddenPort) {
  web();
  auto g = group("web", "http", "eu", "", 100);
  auto* o = g.add_port_overrides();
  o->set_listener_port(80);
  o->set_endpoint_port(8080);
  add(g);
  auto h = group("web", "http", "us", "us-east", 100);
  h.mutable_health_check()->set_port(9999);
  h.mutable_health_check()->set_protocol(v1::HEALTH_CHECK_HTTP);
  h.mutable_health_check()->set_path("/health");
  h.mutable_health_check()->set_interval_ms(200);
  add(h);
  add(endpoint("web", "http", "eu", "198.51.100.1", 128));
  add(endpoint("web", "http", "us", "198.51.100.2", 128));
  PopRoutes r = compute();
  ASSERT_EQ(r.probe_plan.targets_size(), 2);
  EXPECT_EQ(r.probe_plan.targets(0).port(), 8080u);
  EXPECT_EQ(r.probe_plan.targets(1).port(), 9999u);
  EXPECT_EQ(r.probe_plan.targets(0).endpoint_group(), "eu");
  // The agent probes with the group's own check, on the port above.
  const auto& hc = r.probe_plan.targets(1).health_check();
  EXPECT_EQ(hc.protocol(), v1::HEALTH_CHECK_HTTP);
  EXPECT_EQ(hc.path(), "/health");
  EXPECT_EQ(hc.interval_ms(), 200u);
  EXPECT_EQ(hc.port(), 9999u);
  EXPECT_EQ(r.probe_plan.targets(0).health_check().port(), 8080u);
  EXPECT_EQ(r.probe_plan.targets(1).region(), "us-east");
}

TEST_F(RouteComputerTest, ManyListenersAndFamiliesValidate) {
  add(accelerator("web", {"203.0.113.10", "2001:db8:ffff::10"}));
  for (int i = 0; i < 4; ++i) {
    std::string name = "l" + std::to_string(i);
    auto l = listener("web", name, {{uint32_t(100 + i * 10), uint32_t(105 + i * 10)}},
                      i % 2 ? v1::UDP : v1::TCP);
    l.set_tcp_idle_timeout_s(340);
    l.set_udp_idle_timeout_s(30);
    add(l);
    add(group("web", name, "g", "", 100));
    add(endpoint("web", name, "g", "198.51.100." + std::to_string(i + 1), 128));
    add(endpoint("web", name, "g", "2001:db8:100::" + std::to_string(i + 1), 0));
  }
  PopRoutes r = compute();
  EXPECT_EQ(r.table.listeners_size(), 4);
}

TEST(ScaleWeights, LargestBecomes255) {
  EXPECT_EQ(scale_weights({0.5, 0.25, 0.0}), (std::vector<uint32_t>{255, 128, 0}));
  EXPECT_EQ(scale_weights({1000, 1}), (std::vector<uint32_t>{255, 1}));  // clamped
  EXPECT_EQ(scale_weights({0, 0}), (std::vector<uint32_t>{0, 0}));
  EXPECT_EQ(scale_weights({}), std::vector<uint32_t>{});
  EXPECT_EQ(scale_weights({1e-9}), (std::vector<uint32_t>{255}));
}

// ---- optimal path: RTT order, spill-over, health, fail-open, hysteresis ----

struct Probe {
  std::string group;
  std::string address;
  double rtt_ms;
  bool healthy = true;
  bool known = true;
};

v1::ProbeReport report(const std::vector<Probe>& probes) {
  v1::ProbeReport r;
  for (const Probe& p : probes) {
    auto* x = r.add_results();
    x->set_accelerator("web");
    x->set_listener("http");
    x->set_endpoint_group(p.group);
    x->set_address(p.address);
    x->set_rtt_ms(p.rtt_ms);
    x->set_healthy(p.healthy);
    x->set_known(p.known);
    if (!p.healthy) x->set_last_error("connect: timed out");
  }
  return r;
}

// A PoP routing over rounds: each report() is one round, as in the registry.
class OptimalPathTest : public RouteComputerTest {
 protected:
  // eu-central and us-east, one endpoint each unless a test adds more.
  void SetUp() override {
    web();
    add(group("web", "http", "eu", "eu-central", 100));
    add(group("web", "http", "us", "us-east", 100));
    add(endpoint("web", "http", "eu", "198.51.100.1", 128));
    add(endpoint("web", "http", "us", "198.51.100.2", 128));
  }
  PopRoutes round(const std::vector<Probe>& probes, const PopContext& pop = fra1()) {
    health_.replace(report(probes), 0);
    PopRoutes r = compute(pop, &health_, &memory_, true);
    memory_ = r.memory;
    return r;
  }
  // Share of a group, percent.
  static double share(const PopRoutes& r, const std::string& group) {
    for (const auto& g : r.listeners[0].groups())
      if (g.endpoint_group() == group) return g.share_percent();
    ADD_FAILURE() << group << " not in the routes";
    return -1;
  }
  static std::string reason(const PopRoutes& r, const std::string& group) {
    for (const auto& g : r.listeners[0].groups())
      if (g.endpoint_group() == group) return g.reason();
    return "";
  }
  static const v1::ForwardingEndpoint& entry(const PopRoutes& r, const std::string& address) {
    for (const auto& e : r.table.listeners(0).endpoints())
      if (e.address() == address) return e;
    ADD_FAILURE() << address << " not in the table";
    return r.table.listeners(0).endpoints(0);
  }
  static std::string first_group(const PopRoutes& r) {
    return r.listeners[0].groups(0).endpoint_group();
  }

  PopHealth health_;
  RouteMemory memory_;
};

TEST_F(OptimalPathTest, NearestWins) {
  PopRoutes r = round({{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 12.1}});
  EXPECT_EQ(first_group(r), "us");
  EXPECT_DOUBLE_EQ(share(r, "us"), 100.0);
  EXPECT_DOUBLE_EQ(share(r, "eu"), 0.0);
  EXPECT_EQ(reason(r, "us"), "nearest healthy group (12.1 ms), dial 100 %");
  EXPECT_NE(reason(r, "eu").find("standby (30.0 ms)"), std::string::npos) << reason(r, "eu");
  EXPECT_DOUBLE_EQ(r.listeners[0].groups(0).rtt_ms(), 12.1);
  EXPECT_EQ(entry(r, "198.51.100.2").weight(), 255u);
  EXPECT_EQ(entry(r, "198.51.100.1").weight(), 0u);  // drains: its flows stay
  EXPECT_FALSE(entry(r, "198.51.100.1").unhealthy());
  EXPECT_FALSE(r.listeners[0].fail_open());
  EXPECT_EQ(r.memory.at("web/http").primary, "us");
  // The other way round, the other group.
  memory_.clear();
  r = round({{"eu", "198.51.100.1", 8}, {"us", "198.51.100.2", 12.1}});
  EXPECT_DOUBLE_EQ(share(r, "eu"), 100.0);
  // The table lists endpoints by group name whatever the RTT order.
  EXPECT_EQ(r.table.listeners(0).endpoints(0).address(), "198.51.100.1");
}

TEST_F(OptimalPathTest, DialSpillsOverToTheNextNearest) {
  add(group("web", "http", "ap", "ap-southeast", 100));
  add(endpoint("web", "http", "ap", "198.51.100.3", 128));
  add(group("web", "http", "us", "us-east", 60));
  PopRoutes r =
      round({{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10}, {"ap", "198.51.100.3", 150}});
  EXPECT_NEAR(share(r, "us"), 60.0, 1e-9);
  EXPECT_NEAR(share(r, "eu"), 40.0, 1e-9);
  EXPECT_DOUBLE_EQ(share(r, "ap"), 0.0);
  EXPECT_EQ(reason(r, "eu"), "spill-over (30.0 ms): us dialled to 60 %");
  EXPECT_EQ(entry(r, "198.51.100.2").weight(), 255u);
  EXPECT_EQ(entry(r, "198.51.100.1").weight(), 170u);  // 40/60 x 255
  // Two dials in a row: eu at 50 % takes half of the 40 %, ap the rest.
  add(group("web", "http", "eu", "eu-central", 50));
  r = round({{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10}, {"ap", "198.51.100.3", 150}});
  EXPECT_NEAR(share(r, "eu"), 20.0, 1e-9);
  EXPECT_NEAR(share(r, "ap"), 20.0, 1e-9);
  EXPECT_EQ(reason(r, "ap"), "spill-over (150.0 ms): us dialled to 60 %, eu dialled to 50 %");
}

TEST_F(OptimalPathTest, RemainderAfterTheLastGroupIsSharedInProportion) {
  add(group("web", "http", "us", "us-east", 60));
  add(group("web", "http", "eu", "eu-central", 50));
  // us takes 60, eu 50 % of 40 = 20; 20 is left: 75 / 25.
  PopRoutes r = round({{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10}});
  EXPECT_NEAR(share(r, "us"), 75.0, 1e-9);
  EXPECT_NEAR(share(r, "eu"), 25.0, 1e-9);
  EXPECT_NE(reason(r, "us").find("no further group to spill to"), std::string::npos)
      << reason(r, "us");
}

TEST_F(OptimalPathTest, PartialHealthWithOverprovisioning) {
  for (int i = 3; i <= 5; ++i)
    add(endpoint("web", "http", "us", "198.51.100." + std::to_string(i), 128));
  // us has 4 endpoints. One down: 3/4 x 1.4 = 1.05, still all traffic.
  PopRoutes r = round({{"eu", "198.51.100.1", 30},
                       {"us", "198.51.100.2", 10},
                       {"us", "198.51.100.3", 10},
                       {"us", "198.51.100.4", 10},
                       {"us", "198.51.100.5", 10, false}});
  EXPECT_DOUBLE_EQ(share(r, "us"), 100.0);
  EXPECT_EQ(r.listeners[0].groups(0).healthy_endpoints(), 3u);
  EXPECT_EQ(r.listeners[0].groups(0).endpoints(), 4u);
  EXPECT_TRUE(entry(r, "198.51.100.5").unhealthy());
  EXPECT_EQ(entry(r, "198.51.100.5").weight(), 0u);
  EXPECT_EQ(entry(r, "198.51.100.2").weight(), 255u);
  // Two down: 2/4 x 1.4 = 70 %, the rest spills to eu.
  r = round({{"eu", "198.51.100.1", 30},
             {"us", "198.51.100.2", 10},
             {"us", "198.51.100.3", 10},
             {"us", "198.51.100.4", 10, false},
             {"us", "198.51.100.5", 10, false}});
  EXPECT_NEAR(share(r, "us"), 70.0, 1e-9);
  EXPECT_NEAR(share(r, "eu"), 30.0, 1e-9);
  EXPECT_EQ(reason(r, "us"),
            "nearest healthy group (10.0 ms), dial 100 %, health 256/512 weight x "
            "1.4 = 70 %");
  EXPECT_NE(reason(r, "eu").find("spill-over (30.0 ms): us at 70 % health"), std::string::npos)
      << reason(r, "eu");
  // Each healthy us endpoint takes 35 %, eu 30 %: 255 and 219.
  EXPECT_EQ(entry(r, "198.51.100.2").weight(), 255u);
  EXPECT_EQ(entry(r, "198.51.100.1").weight(), 219u);
  // Weight counts, not endpoints: the down one carries most of the weight.
  add(endpoint("web", "http", "us", "198.51.100.5", 255));
  r = round({{"eu", "198.51.100.1", 30},
             {"us", "198.51.100.2", 10},
             {"us", "198.51.100.3", 10},
             {"us", "198.51.100.4", 10},
             {"us", "198.51.100.5", 10, false}});
  EXPECT_NEAR(share(r, "us"), 100.0 * 1.4 * 384 / 639, 1e-9);
}

TEST_F(OptimalPathTest, UnknownHealthCountsAsHealthyAndUnmeasuredGoesLast) {
  add(group("web", "http", "ap", "ap-southeast", 100));
  add(endpoint("web", "http", "ap", "198.51.100.3", 128));
  add(group("web", "http", "us", "us-east", 50));
  // ap measured but not judged yet; us and eu not probed at all.
  PopRoutes r = round({{"ap", "198.51.100.3", 150, false, false}});
  ASSERT_EQ(r.listeners[0].groups_size(), 3);
  EXPECT_EQ(first_group(r), "ap");
  EXPECT_DOUBLE_EQ(share(r, "ap"), 100.0);
  EXPECT_EQ(r.listeners[0].groups(1).endpoint_group(), "eu");  // unmeasured: by name
  EXPECT_EQ(r.listeners[0].groups(2).endpoint_group(), "us");
  EXPECT_LT(r.listeners[0].groups(1).rtt_ms(), 0);
}

TEST_F(OptimalPathTest, FailOpenWhenNothingIsHealthy) {
  PopRoutes r = round({{"eu", "198.51.100.1", 30, false}, {"us", "198.51.100.2", 10, false}});
  const auto& lr = r.listeners[0];
  EXPECT_TRUE(lr.fail_open());
  EXPECT_EQ(first_group(r), "us");
  EXPECT_DOUBLE_EQ(share(r, "us"), 100.0);
  EXPECT_DOUBLE_EQ(share(r, "eu"), 0.0);
  EXPECT_NE(reason(r, "us").find("fail-open: no healthy endpoint in any group from FRA1"),
            std::string::npos)
      << reason(r, "us");
  EXPECT_NE(reason(r, "eu").find("no healthy endpoint from FRA1 (1 unhealthy: connect: timed out)"),
            std::string::npos)
      << reason(r, "eu");
  // The dataplane must take the fail-open group's endpoints as healthy.
  EXPECT_FALSE(entry(r, "198.51.100.2").unhealthy());
  EXPECT_EQ(entry(r, "198.51.100.2").weight(), 255u);
  EXPECT_TRUE(entry(r, "198.51.100.1").unhealthy());
  EXPECT_EQ(r.memory.at("web/http").fail_open_entered, 1u);
  // Still failed open next round: counted once.
  r = round({{"eu", "198.51.100.1", 30, false}, {"us", "198.51.100.2", 10, false}});
  EXPECT_EQ(r.memory.at("web/http").fail_open_entered, 1u);
  // One endpoint back: normal routing, to it alone.
  r = round({{"eu", "198.51.100.1", 30, true}, {"us", "198.51.100.2", 10, false}});
  EXPECT_FALSE(r.listeners[0].fail_open());
  EXPECT_DOUBLE_EQ(share(r, "eu"), 100.0);
  EXPECT_TRUE(entry(r, "198.51.100.2").unhealthy());
}

TEST_F(OptimalPathTest, DialZeroGroupsDoNotFailOpen) {
  add(group("web", "http", "us", "us-east", 0));
  add(group("web", "http", "eu", "eu-central", 0));
  PopRoutes r = round({{"eu", "198.51.100.1", 30, false}, {"us", "198.51.100.2", 10, false}});
  EXPECT_FALSE(r.listeners[0].fail_open());
  EXPECT_EQ(entry(r, "198.51.100.2").weight(), 0u);
  EXPECT_EQ(entry(r, "198.51.100.1").weight(), 0u);
}

TEST_F(OptimalPathTest, HealthChangesTakeEffectAtOnce) {
  PopRoutes r = round({{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10}});
  ASSERT_DOUBLE_EQ(share(r, "us"), 100.0);
  r = round({{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10, false}});
  EXPECT_DOUBLE_EQ(share(r, "eu"), 100.0);
  EXPECT_EQ(r.memory.at("web/http").primary, "eu");
  // Back: us is nearer by far more than the margin, but must now win three
  // rounds like any challenger.
  r = round({{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10}});
  EXPECT_DOUBLE_EQ(share(r, "eu"), 100.0);
  EXPECT_EQ(reason(r, "eu"),
            "held as nearest (30.0 ms), dial 100 %; held: us 20.0 ms nearer, 1 of 3 rounds");
}

TEST_F(OptimalPathTest, NearerRegionWinsAfterThreeRounds) {
  PopRoutes r = round({{"eu", "198.51.100.1", 40}, {"us", "198.51.100.2", 30}});
  ASSERT_EQ(r.memory.at("web/http").primary, "us");
  // eu becomes 20 ms nearer: held for two rounds, takes over at the third.
  for (uint32_t i = 1; i <= 2; ++i) {
    r = round({{"eu", "198.51.100.1", 10}, {"us", "198.51.100.2", 30}});
    EXPECT_DOUBLE_EQ(share(r, "us"), 100.0) << "round " << i;
    EXPECT_EQ(first_group(r), "us");
    EXPECT_EQ(reason(r, "us"), "held as nearest (30.0 ms), dial 100 %; held: eu 20.0 ms nearer, " +
                                   std::to_string(i) + " of 3 rounds");
    EXPECT_NE(reason(r, "eu").find("challenger: 20.0 ms nearer than us, " + std::to_string(i) +
                                   " of 3 rounds"),
              std::string::npos)
        << reason(r, "eu");
  }
  // A view between rounds (no new round) changes nothing.
  PopRoutes v = compute(fra1(), &health_, &memory_, false);
  EXPECT_EQ(v.memory.at("web/http").rounds, 2u);
  EXPECT_EQ(v.memory.at("web/http").primary, "us");
  r = round({{"eu", "198.51.100.1", 10}, {"us", "198.51.100.2", 30}});
  EXPECT_DOUBLE_EQ(share(r, "eu"), 100.0);
  EXPECT_EQ(first_group(r), "eu");
  EXPECT_EQ(reason(r, "eu"), "nearest healthy group (10.0 ms), dial 100 %");
  EXPECT_EQ(r.memory.at("web/http").challenger, "");
}

TEST_F(OptimalPathTest, AnInterruptedChallengeStartsOver) {
  round({{"eu", "198.51.100.1", 40}, {"us", "198.51.100.2", 30}});
  round({{"eu", "198.51.100.1", 10}, {"us", "198.51.100.2", 30}});
  round({{"eu", "198.51.100.1", 10}, {"us", "198.51.100.2", 30}});
  // Within the margin (max(5 ms, 3 ms)) for one round: the count restarts.
  PopRoutes r = round({{"eu", "198.51.100.1", 26}, {"us", "198.51.100.2", 30}});
  EXPECT_NE(reason(r, "us").find("eu only 4.0 ms nearer, within the 5.0 ms margin"),
            std::string::npos)
      << reason(r, "us");
  r = round({{"eu", "198.51.100.1", 10}, {"us", "198.51.100.2", 30}});
  r = round({{"eu", "198.51.100.1", 10}, {"us", "198.51.100.2", 30}});
  EXPECT_DOUBLE_EQ(share(r, "us"), 100.0);
  r = round({{"eu", "198.51.100.1", 10}, {"us", "198.51.100.2", 30}});
  EXPECT_DOUBLE_EQ(share(r, "eu"), 100.0);
}

// ±20 % uniform jitter on every raw RTT sample, for 2000 rounds: the nearest
// group never changes, so neither does the table. The agent reports a
// smoothed RTT; the cases marked `smoothed` smooth the samples as it does
// (an exponential average, weight 0.3 on the newest: HealthTracker), the
// others feed the raw samples straight in, where the 5 ms floor of the
// margin must hold alone.
TEST_F(OptimalPathTest, NoFlappingUnderTwentyPercentJitter) {
  struct Case {
    double eu, us;
    bool smoothed;
  };
  for (Case c : {Case{22, 20, false}, Case{25, 20, false}, Case{22, 20, true}, Case{20, 20, true},
                 Case{110, 100, true}, Case{300, 200, false}}) {
    memory_.clear();
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    double eu = c.eu, us = c.us;
    std::string last_primary, last_table;
    int changes = 0;
    for (int i = 0; i < 2000; ++i) {
      double eu_sample = c.eu * jitter(rng), us_sample = c.us * jitter(rng);
      eu = c.smoothed ? eu + (eu_sample - eu) * 0.3 : eu_sample;
      us = c.smoothed ? us + (us_sample - us) * 0.3 : us_sample;
      PopRoutes r = round({{"eu", "198.51.100.1", eu}, {"us", "198.51.100.2", us}});
      std::string primary = r.memory.at("web/http").primary;
      std::string table = r.table.SerializeAsString();
      if (i > 0 && (primary != last_primary || table != last_table)) ++changes;
      last_primary = primary;
      last_table = table;
    }
    EXPECT_EQ(changes, 0) << "eu " << c.eu << " ms, us " << c.us << " ms"
                          << (c.smoothed ? ", smoothed" : "");
  }
}

// Without the hysteresis the same jitter flaps: the test above can fail.
TEST_F(OptimalPathTest, JitterFlapsWithoutHysteresis) {
  RoutePolicy none{.margin_ms = 0, .margin_fraction = 0, .rounds = 1};
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  int changes = 0;
  std::string last;
  for (int i = 0; i < 200; ++i) {
    health_.replace(report({{"eu", "198.51.100.1", 22 * jitter(rng)},
                            {"us", "198.51.100.2", 20 * jitter(rng)}}),
                    0);
    PopRoutes r = RouteComputer(none).compute(config_, fra1(), &health_, &memory_, true);
    memory_ = r.memory;
    if (i > 0 && r.memory.at("web/http").primary != last) ++changes;
    last = r.memory.at("web/http").primary;
  }
  EXPECT_GT(changes, 10);
}

// A PoP that reconnects has no health view until its first report; the
// nearest group it had keeps the traffic meanwhile, rather than the groups
// sharing by dial as they do for a PoP never measured.
TEST_F(OptimalPathTest, TheRememberedNearestGroupOutlivesTheHealthView) {
  round({{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10}});
  PopHealth none;
  PopRoutes r = compute(fra1(), &none, &memory_, false);
  EXPECT_DOUBLE_EQ(share(r, "us"), 100.0);
  EXPECT_EQ(reason(r, "us"), "kept as nearest: no RTT measured from FRA1 yet, dial 100 %");
  r = compute(fra1(), &none, nullptr, false);
  EXPECT_DOUBLE_EQ(share(r, "us"), 50.0);
  EXPECT_DOUBLE_EQ(share(r, "eu"), 50.0);
}

// The groups after the primary keep their order under jitter too: the
// spilled share stays with one group; a clearly nearer one passes at once.
TEST_F(OptimalPathTest, SpillOverOrderHoldsUnderJitter) {
  add(group("web", "http", "ap", "ap-southeast", 100));
  add(endpoint("web", "http", "ap", "198.51.100.3", 128));
  add(group("web", "http", "us", "us-east", 50));
  PopRoutes r =
      round({{"us", "198.51.100.2", 10}, {"eu", "198.51.100.1", 30}, {"ap", "198.51.100.3", 31}});
  EXPECT_NEAR(share(r, "eu"), 50.0, 1e-9);
  for (int i = 0; i < 10; ++i) {
    r = round({{"us", "198.51.100.2", 10},
               {"eu", "198.51.100.1", i % 2 ? 33.0 : 30.0},
               {"ap", "198.51.100.3", i % 2 ? 30.0 : 31.0}});
    EXPECT_NEAR(share(r, "eu"), 50.0, 1e-9) << "round " << i;
    EXPECT_EQ(r.listeners[0].groups(1).endpoint_group(), "eu");
  }
  r = round({{"us", "198.51.100.2", 10}, {"eu", "198.51.100.1", 30}, {"ap", "198.51.100.3", 20}});
  EXPECT_NEAR(share(r, "ap"), 50.0, 1e-9);
  EXPECT_EQ(r.listeners[0].groups(1).endpoint_group(), "ap");
}

TEST_F(OptimalPathTest, HealthIsPerPop) {
  PopContext sin1{.id = "SIN1"};
  sin1.tunnel_source.set_ipv4("192.0.2.2");
  // us is nearest from both; FRA1 cannot reach it, SIN1 can.
  PopHealth fra_health, sin_health;
  fra_health.replace(report({{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10, false}}), 0);
  sin_health.replace(report({{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10}}), 0);
  PopRoutes fra = compute(fra1(), &fra_health, nullptr, true);
  PopRoutes sin = compute(sin1, &sin_health, nullptr, true);
  EXPECT_DOUBLE_EQ(share(fra, "eu"), 100.0);
  EXPECT_TRUE(entry(fra, "198.51.100.2").unhealthy());
  EXPECT_EQ(reason(fra, "us"), "no healthy endpoint from FRA1 (1 unhealthy: connect: timed out)");
  EXPECT_DOUBLE_EQ(share(sin, "us"), 100.0);
  EXPECT_FALSE(entry(sin, "198.51.100.2").unhealthy());
}

TEST(GroupRtt, MedianOfRoutableEndpointsElseOfAll) {
  v1::EndpointGroup g;
  std::vector<v1::Endpoint> eps(4);
  std::vector<v1::ProbeResult> probes(4);
  GroupInput in{.group = &g};
  double rtts[] = {10, 12, 200, 14};
  for (int i = 0; i < 4; ++i) {
    eps[i].set_weight(128);
    probes[i].set_known(true);
    probes[i].set_healthy(true);
    probes[i].set_rtt_ms(rtts[i]);
    in.endpoints.push_back(&eps[i]);
    in.probes.push_back(&probes[i]);
  }
  EXPECT_DOUBLE_EQ(group_rtt(in), 13.0);  // one slow endpoint does not move it
  probes[3].set_healthy(false);
  EXPECT_DOUBLE_EQ(group_rtt(in), 12.0);
  eps[0].set_weight(0);  // drained: not counted
  EXPECT_DOUBLE_EQ(group_rtt(in), 106.0);
  for (auto& p : probes) p.set_healthy(false);
  EXPECT_DOUBLE_EQ(group_rtt(in), 13.0);  // nothing routable: every measured one
  for (auto& p : probes) p.set_rtt_ms(-1);
  EXPECT_LT(group_rtt(in), 0);
}

}  // namespace
}  // namespace onramp::ctl::test
