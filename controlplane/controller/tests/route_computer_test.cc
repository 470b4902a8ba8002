// Route computation with weights and dials as configured: shares follow the
// dials, endpoints the weights, drains stay at 0, and every table passes the
// dataplane's own validation and builds.
#include "controlplane/controller/route_computer.h"

#include <gtest/gtest.h>

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
  PopRoutes compute(const PopContext& pop = fra1()) {
    PopRoutes r = RouteComputer().compute(config_, pop);
    dp::TableSpec spec;
    EXPECT_EQ(check_table(r.table, spec), "");
    std::string err;
    EXPECT_TRUE(dp::ForwardingTable::build(spec, 1, err)) << err;
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
  EXPECT_NE(lr.groups(0).reason().find("dial 100 of 150"), std::string::npos)
      << lr.groups(0).reason();
  EXPECT_EQ(weight_of(r, "198.51.100.1"), 255u);
  EXPECT_EQ(weight_of(r, "198.51.100.2"), 128u);
  EXPECT_EQ(r.table.listeners(0).name(), "web/http");
  EXPECT_EQ(r.table.listeners(0).endpoints(0).label(), "eu (eu-central)");
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
  auto h = group("web", "http", "us", "", 100);
  h.mutable_health_check()->set_port(9999);
  add(h);
  add(endpoint("web", "http", "eu", "198.51.100.1", 128));
  add(endpoint("web", "http", "us", "198.51.100.2", 128));
  PopRoutes r = compute();
  ASSERT_EQ(r.probe_plan.targets_size(), 2);
  EXPECT_EQ(r.probe_plan.targets(0).port(), 8080u);
  EXPECT_EQ(r.probe_plan.targets(1).port(), 9999u);
  EXPECT_EQ(r.probe_plan.targets(0).endpoint_group(), "eu");
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

}  // namespace
}  // namespace onramp::ctl::test
