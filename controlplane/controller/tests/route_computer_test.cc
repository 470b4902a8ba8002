// Route computation over synthetic latency and health matrices, as a table
// of cases {groups with dials and weights, probe rounds (RTT, health) ->
// shares, reasons, table weights, memory and the exits counted}: the nearest
// group wins, dials spill over, partial health with the policy's
// overprovisioning, fail-open, hysteresis, health per PoP; and before any
// probe, shares by dial. Beside the table: what the table carries besides
// shares, the probe plan, and hysteresis under jitter. Every table passes
// the dataplane's own validation and builds.
#include "controlplane/routing/route_computer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <ostream>
#include <random>

#include "controlplane/controller/config_store.h"
#include "controlplane/controller/table_check.h"
#include "controlplane/controller/tests/fixtures.h"
#include "controlplane/routing/route_inputs.h"
#include "dataplane/core/forwarding_table.h"

namespace onramp::ctl {

// Counters as gtest prints them when a case fails.
void PrintTo(const RouteStats& s, std::ostream* os) {
  *os << "{no_traffic " << s.no_traffic << ", fail_open " << s.fail_open << ", no_rtt " << s.no_rtt
      << ", by_nearest " << s.by_nearest << ", primary_nearest " << s.primary_nearest
      << ", primary_challenger_won " << s.primary_challenger_won << ", primary_kept_by_hysteresis "
      << s.primary_kept_by_hysteresis << ", primary_kept_within_margin "
      << s.primary_kept_within_margin << ", primary_kept_without_rtt " << s.primary_kept_without_rtt
      << ", primary_switched " << s.primary_switched << ", spill_reordered " << s.spill_reordered
      << ", spilled " << s.spilled << ", remainder_shared " << s.remainder_shared << "}";
}

namespace test {
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
                    const RouteMemory* memory = nullptr, bool new_round = false,
                    const RoutePolicy& policy = {}) {
    PopRoutes r = RouteComputer(policy).compute(config_, pop, health, memory, new_round);
    auto spec = check_table(r.table);
    EXPECT_EQ(spec.error(), "");
    if (spec.ok()) {
      auto built = dp::ForwardingTable::build(*spec, 1);
      EXPECT_TRUE(built.ok()) << built.error();
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

TEST_F(RouteComputerTest, EveryEndpointCarriesItsGroupsUnhealthyDrain) {
  web();
  v1::EndpointGroup eu = group("web", "http", "eu", "eu-central", 100);
  eu.set_unhealthy_drain_s(0);
  add(eu);
  add(group("web", "http", "us", "us-east", 100));  // stored before the field: 30
  add(endpoint("web", "http", "eu", "198.51.100.1", 128));
  add(endpoint("web", "http", "us", "198.51.100.2", 128));
  PopRoutes r = compute();
  const auto& eps = r.table.listeners(0).endpoints();
  ASSERT_EQ(eps.size(), 2);
  EXPECT_EQ(eps[0].address(), "198.51.100.1");
  EXPECT_TRUE(eps[0].has_unhealthy_drain_s());
  EXPECT_EQ(eps[0].unhealthy_drain_s(), 0u);
  EXPECT_EQ(eps[1].unhealthy_drain_s(), 30u);
  auto spec = check_table(r.table);
  ASSERT_TRUE(spec.ok()) << spec.error();
  EXPECT_EQ(spec->listeners[0].endpoints[0].unhealthy_drain_s, 0u);
  EXPECT_EQ(spec->listeners[0].endpoints[1].unhealthy_drain_s, 30u);
}

TEST_F(RouteComputerTest, TheTableNamesThePopTheListenerAndTheGroups) {
  web();
  add(group("web", "http", "eu", "eu-central", 100));
  add(group("web", "http", "us", "us-east", 50));
  add(endpoint("web", "http", "eu", "198.51.100.1", 128));
  add(endpoint("web", "http", "us", "198.51.100.2", 128));
  PopRoutes r = compute();
  ASSERT_EQ(r.listeners.size(), 1u);
  const auto& lr = r.listeners[0];
  ASSERT_EQ(lr.groups_size(), 2);
  EXPECT_EQ(lr.groups(1).traffic_dial_percent(), 50u);
  EXPECT_EQ(lr.groups(0).region(), "eu-central");
  EXPECT_EQ(r.table.listeners(0).name(), "web/http");
  EXPECT_EQ(r.table.listeners(0).endpoints(0).label(), "eu (eu-central)");
  v1::EndpointGroup same = group("web", "http", "eu-central", "eu-central");
  EXPECT_EQ(endpoint_label(same), "eu-central");  // not "eu-central (eu-central)"
  EXPECT_EQ(r.table.pop(), "FRA1");
  EXPECT_EQ(r.table.tunnel_source().ipv4(), "192.0.2.1");
  EXPECT_EQ(r.table.next_hop_mac(), "");
  EXPECT_EQ(r.table.version(), 0u);
}

TEST_F(RouteComputerTest, FlowLogsReachEveryListenerOfTheAccelerator) {
  web();
  add(accelerator("api", {"203.0.113.20"}));
  add(listener("api", "dns", {{53, 53}}, v1::UDP));
  PopRoutes r = compute();
  ASSERT_EQ(r.table.listeners_size(), 2);
  EXPECT_EQ(r.table.listeners(0).flow_log_sample_ppm(), 0u);  // off
  EXPECT_EQ(r.table.listeners(1).flow_log_sample_ppm(), 0u);
  v1::Accelerator web = accelerator("web", {"203.0.113.10"});
  web.set_flow_logs(true);
  web.set_flow_log_sample_ppm(10000);
  add(web);
  v1::Accelerator api = accelerator("api", {"203.0.113.20"});
  api.set_flow_logs(true);  // no sample: every flow
  add(api);
  r = compute();
  EXPECT_EQ(r.table.listeners(0).name(), "api/dns");
  EXPECT_EQ(r.table.listeners(0).flow_log_sample_ppm(), 1000000u);
  EXPECT_EQ(r.table.listeners(1).flow_log_sample_ppm(), 10000u);
  auto spec = check_table(r.table);
  ASSERT_TRUE(spec.ok()) << spec.error();
  EXPECT_EQ(spec->listeners[1].flow_log_sample_ppm, 10000u);
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
  EXPECT_EQ(r.stats, (RouteStats{.no_rtt = 4}));  // summed over the listeners
}

TEST(ScaleWeights, LargestBecomes255) {
  EXPECT_EQ(scale_weights({0.5, 0.25, 0.0}), (std::vector<uint32_t>{255, 128, 0}));
  EXPECT_EQ(scale_weights({1000, 1}), (std::vector<uint32_t>{255, 1}));  // clamped
  EXPECT_EQ(scale_weights({0, 0}), (std::vector<uint32_t>{0, 0}));
  EXPECT_EQ(scale_weights({}), std::vector<uint32_t>{});
  EXPECT_EQ(scale_weights({1e-9}), (std::vector<uint32_t>{255}));
}

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

// ---- the policy as a table: RTT, health, dials, weights -> shares, reasons ----

struct EndpointSpec {
  std::string address;
  int weight;
};
struct GroupSpec {
  std::string name;
  std::string region;
  int dial;
  std::vector<EndpointSpec> endpoints;
};
using Probes = std::vector<Probe>;

// A group of the route, in routing order. `reason` is the whole reason,
// `reason_has` a part of it; empty: not checked.
struct GroupWant {
  std::string name;
  double share;  // percent
  std::string reason;
  std::string reason_has;
  std::optional<double> rtt_ms;
  std::optional<uint32_t> healthy;
  std::optional<uint32_t> endpoints;
};
// An endpoint of the table, in table order (groups by name).
struct EndpointWant {
  std::string address;
  uint32_t weight;
  bool unhealthy = false;
};
struct MemoryWant {
  std::optional<std::string> primary;
  std::optional<std::string> challenger;
  std::optional<uint32_t> rounds;
  std::optional<uint64_t> fail_open_entered;
};

// Listener web/http at one PoP. `before` are earlier rounds, each a probe
// report; the case starts from the memory they leave (hysteresis). `report`
// is this computation's health view (none: the PoP reported nothing).
struct RouteCase {
  std::string name;
  std::vector<GroupSpec> groups;
  std::vector<Probes> before;
  std::optional<Probes> report;
  bool new_round = true;
  RoutePolicy policy = {};
  PopContext pop = fra1();
  // What comes out.
  std::vector<GroupWant> routes;
  std::vector<EndpointWant> table;
  bool fail_open = false;
  MemoryWant memory;
  RouteStats stats;
};

const EndpointSpec kEu1{"198.51.100.1", 128};
const EndpointSpec kUs2{"198.51.100.2", 128};
const EndpointSpec kAp3{"198.51.100.3", 128};
const GroupSpec kEu{"eu", "eu-central", 100, {kEu1}};
const GroupSpec kUs{"us", "us-east", 100, {kUs2}};
// us with four endpoints of weight 128.
const GroupSpec kUs4{"us",
                     "us-east",
                     100,
                     {kUs2, {"198.51.100.3", 128}, {"198.51.100.4", 128}, {"198.51.100.5", 128}}};
// eu at 30 ms; us (kUs4) at 10 ms with two of its four endpoints down.
const Probes kUs4HalfDown{{"eu", "198.51.100.1", 30},
                          {"us", "198.51.100.2", 10},
                          {"us", "198.51.100.3", 10},
                          {"us", "198.51.100.4", 10, false},
                          {"us", "198.51.100.5", 10, false}};

// eu and us, eu at `eu` ms and us at `us` ms, both healthy.
Probes rtts(double eu, double us) {
  return {{"eu", "198.51.100.1", eu}, {"us", "198.51.100.2", us}};
}
// us, eu and ap at those RTTs.
Probes rtts(double us, double eu, double ap) {
  return {{"us", "198.51.100.2", us}, {"eu", "198.51.100.1", eu}, {"ap", "198.51.100.3", ap}};
}

PopContext sin1() {
  PopContext p{.id = "SIN1"};
  p.tunnel_source.set_ipv4("192.0.2.2");
  return p;
}

const std::string kStandbyEu = "standby (30.0 ms): nearer groups take every new flow";
const std::string kUsDown = "no healthy endpoint from FRA1 (1 unhealthy: connect: timed out)";

const RouteCase kRouteCases[] = {
    // ---- before any probe: shares by dial ----
    {.name = "GroupsShareByDialBeforeAnyProbe",
     .groups = {kEu, {"us", "us-east", 50, {kUs2}}},
     .routes = {{"eu", 200.0 / 3,
                 "no RTT measured from FRA1 yet: groups share by dial, 100 % dial = 66.7 % of new "
                 "flows",
                 "", -1.0, 1, 1},
                {"us", 100.0 / 3,
                 "no RTT measured from FRA1 yet: groups share by dial, 50 % dial = 33.3 % of new "
                 "flows"}},
     .table = {{"198.51.100.1", 255}, {"198.51.100.2", 128}},
     .stats = {.no_rtt = 1}},
    {.name = "EndpointsShareByWeight",
     .groups =
         {{"eu", "", 100, {{"198.51.100.1", 100}, {"198.51.100.2", 50}, {"198.51.100.3", 1}}}},
     .routes = {{"eu", 100.0}},
     .table = {{"198.51.100.1", 255}, {"198.51.100.2", 128}, {"198.51.100.3", 3}},
     .stats = {.no_rtt = 1}},
    {.name = "DrainsStayAtZero",
     .groups = {{"eu", "", 100, {{"198.51.100.1", 0}, {"198.51.100.2", 10}}},
                {"us", "", 0, {{"198.51.100.3", 200}}}},
     .routes = {{"eu", 100.0}, {"us", 0.0, "traffic dial 0 %: drained, existing flows stay"}},
     // Drained endpoints stay in the table, so their flows stay.
     .table = {{"198.51.100.1", 0}, {"198.51.100.2", 255}, {"198.51.100.3", 0}},
     .stats = {.no_rtt = 1}},
    {.name = "AllDrainedTakesNoNewFlows",
     .groups = {{"eu", "", 100, {{"198.51.100.1", 0}}}},
     .routes = {{"eu", 0.0, "every endpoint has weight 0: drained, existing flows stay"}},
     .table = {{"198.51.100.1", 0}},
     .stats = {.no_traffic = 1}},
    {.name = "EmptyGroupsTakeNothing",
     .groups = {{"eu", "", 50, {kEu1}}, {"empty", "", 100, {}}},
     .routes = {{"empty", 0.0, "no endpoint: takes no traffic"}, {"eu", 100.0}},
     .table = {{"198.51.100.1", 255}},
     .stats = {.no_rtt = 1}},
    {.name = "WithoutMemoryAnUnmeasuredPopSharesByDial",
     .groups = {kEu, kUs},
     .report = Probes{},
     .routes = {{"eu", 50.0}, {"us", 50.0}},
     .table = {{"198.51.100.1", 255}, {"198.51.100.2", 255}},
     .stats = {.no_rtt = 1}},

    // ---- RTT order and spill-over ----
    {.name = "NearestWins",
     .groups = {kEu, kUs},
     .report = rtts(30, 12.1),
     .routes = {{"us", 100.0, "nearest healthy group (12.1 ms), dial 100 %", "", 12.1},
                {"eu", 0.0, kStandbyEu}},
     // eu drains: its flows stay.
     .table = {{"198.51.100.1", 0}, {"198.51.100.2", 255}},
     .memory = {.primary = "us"},
     .stats = {.by_nearest = 1, .primary_nearest = 1}},
    {.name = "NearestWinsTheOtherWayRound",
     .groups = {kEu, kUs},
     .report = rtts(8, 12.1),
     .routes = {{"eu", 100.0}, {"us", 0.0}},
     // The table lists endpoints by group name whatever the RTT order.
     .table = {{"198.51.100.1", 255}, {"198.51.100.2", 0}},
     .memory = {.primary = "eu"},
     .stats = {.by_nearest = 1, .primary_nearest = 1}},
    {.name = "DialSpillsOverToTheNextNearest",
     .groups = {{"ap", "ap-southeast", 100, {kAp3}}, kEu, {"us", "us-east", 60, {kUs2}}},
     .report = rtts(10, 30, 150),
     .routes = {{"us", 60.0},
                {"eu", 40.0, "spill-over (30.0 ms): us dialled to 60 %"},
                {"ap", 0.0, "standby (150.0 ms): nearer groups take every new flow"}},
     .table = {{"198.51.100.3", 0}, {"198.51.100.1", 170}, {"198.51.100.2", 255}},  // 40/60
     .stats = {.by_nearest = 1, .primary_nearest = 1, .spilled = 1}},
    {.name = "TwoDialsInARow",
     // eu at 50 % takes half of the 40 %, ap the rest.
     .groups = {{"ap", "ap-southeast", 100, {kAp3}},
                {"eu", "eu-central", 50, {kEu1}},
                {"us", "us-east", 60, {kUs2}}},
     .report = rtts(10, 30, 150),
     .routes = {{"us", 60.0},
                {"eu", 20.0},
                {"ap", 20.0, "spill-over (150.0 ms): us dialled to 60 %, eu dialled to 50 %"}},
     .table = {{"198.51.100.3", 85}, {"198.51.100.1", 85}, {"198.51.100.2", 255}},
     .stats = {.by_nearest = 1, .primary_nearest = 1, .spilled = 1}},
    {.name = "RemainderAfterTheLastGroupIsSharedInProportion",
     // us takes 60, eu 50 % of 40 = 20; 20 is left: 75 / 25.
     .groups = {{"eu", "eu-central", 50, {kEu1}}, {"us", "us-east", 60, {kUs2}}},
     .report = rtts(30, 10),
     .routes = {{"us", 75.0, "", "no further group to spill to"},
                {"eu", 25.0,
                 "spill-over (30.0 ms): us dialled to 60 %; scaled to 25.0 %: no further group to "
                 "spill to"}},
     .table = {{"198.51.100.1", 85}, {"198.51.100.2", 255}},
     .stats = {.by_nearest = 1, .primary_nearest = 1, .spilled = 1, .remainder_shared = 1}},
    {.name = "UnknownHealthCountsAsHealthyAndUnmeasuredGoesLast",
     .groups = {{"ap", "ap-southeast", 100, {kAp3}}, kEu, {"us", "us-east", 50, {kUs2}}},
     // ap measured but not judged yet; us and eu not probed at all.
     .report = Probes{{"ap", "198.51.100.3", 150, false, false}},
     .routes = {{"ap", 100.0},
                {"eu", 0.0, "standby (unmeasured): nearer groups take every new flow", "", -1.0},
                {"us", 0.0}},  // unmeasured: by name
     .table = {{"198.51.100.3", 255}, {"198.51.100.1", 0}, {"198.51.100.2", 0}},
     .stats = {.by_nearest = 1, .primary_nearest = 1}},

    // ---- partial health, overprovisioning ----
    {.name = "OneOfFourDownMovesNothing",
     // 3/4 x 1.4 = 1.05: still all traffic.
     .groups = {kEu, kUs4},
     .report = Probes{{"eu", "198.51.100.1", 30},
                      {"us", "198.51.100.2", 10},
                      {"us", "198.51.100.3", 10},
                      {"us", "198.51.100.4", 10},
                      {"us", "198.51.100.5", 10, false}},
     .routes = {{"us", 100.0, "nearest healthy group (10.0 ms), dial 100 %", "", 10.0, 3, 4},
                {"eu", 0.0}},
     .table = {{"198.51.100.1", 0},
               {"198.51.100.2", 255},
               {"198.51.100.3", 255},
               {"198.51.100.4", 255},
               {"198.51.100.5", 0, true}},
     .stats = {.by_nearest = 1, .primary_nearest = 1}},
    {.name = "TwoOfFourDownKeepSeventyPercent",
     // 2/4 x 1.4 = 70 %, the rest spills to eu. Each healthy us endpoint
     // takes 35 %, eu 30 %: 255 and 219.
     .groups = {kEu, kUs4},
     .report = kUs4HalfDown,
     .routes = {{"us", 70.0,
                 "nearest healthy group (10.0 ms), dial 100 %, health 256/512 weight x 1.4 = 70 %"},
                {"eu", 30.0,
                 "spill-over (30.0 ms): us at 70 % health (256 of 512 weight healthy)"}},
     .table = {{"198.51.100.1", 219},
               {"198.51.100.2", 255},
               {"198.51.100.3", 255},
               {"198.51.100.4", 0, true},
               {"198.51.100.5", 0, true}},
     .stats = {.by_nearest = 1, .primary_nearest = 1, .spilled = 1}},
    {.name = "HealthCountsWeightNotEndpoints",
     // The down endpoint carries most of the weight: 384/639 x 1.4.
     .groups = {kEu,
                {"us",
                 "us-east",
                 100,
                 {kUs2, {"198.51.100.3", 128}, {"198.51.100.4", 128}, {"198.51.100.5", 255}}}},
     .report = Probes{{"eu", "198.51.100.1", 30},
                      {"us", "198.51.100.2", 10},
                      {"us", "198.51.100.3", 10},
                      {"us", "198.51.100.4", 10},
                      {"us", "198.51.100.5", 10, false}},
     .routes = {{"us", 100.0 * 1.4 * 384 / 639,
                 "nearest healthy group (10.0 ms), dial 100 %, health 384/639 weight x 1.4 = 84 %"},
                {"eu", 100.0 - 100.0 * 1.4 * 384 / 639}},
     .table = {{"198.51.100.1", 144},
               {"198.51.100.2", 255},
               {"198.51.100.3", 255},
               {"198.51.100.4", 255},
               {"198.51.100.5", 0, true}},
     .stats = {.by_nearest = 1, .primary_nearest = 1, .spilled = 1}},
    {.name = "OverprovisioningFactorFromThePolicy",
     // 2/4 x 1.2 = 60 %, and the explanation says 1.2.
     .groups = {kEu, kUs4},
     .report = kUs4HalfDown,
     .policy = {.overprovisioning = 1.2},
     .routes = {{"us", 60.0,
                 "nearest healthy group (10.0 ms), dial 100 %, health 256/512 weight x 1.2 = 60 %"},
                {"eu", 40.0,
                 "spill-over (30.0 ms): us at 60 % health (256 of 512 weight healthy)"}},
     .table = {{"198.51.100.1", 255},
               {"198.51.100.2", 191},
               {"198.51.100.3", 191},
               {"198.51.100.4", 0, true},
               {"198.51.100.5", 0, true}},
     .stats = {.by_nearest = 1, .primary_nearest = 1, .spilled = 1}},

    // ---- fail-open ----
    {.name = "FailOpenWhenNothingIsHealthy",
     .groups = {kEu, kUs},
     .report = Probes{{"eu", "198.51.100.1", 30, false}, {"us", "198.51.100.2", 10, false}},
     .routes = {{"us", 100.0,
                 "fail-open: no healthy endpoint in any group from FRA1, the nearest group (10.0 "
                 "ms) takes every new flow, health ignored (failed open 1 time(s))"},
                {"eu", 0.0, "no healthy endpoint from FRA1 (1 unhealthy: connect: timed out)"}},
     // The dataplane must take the fail-open group's endpoints as healthy.
     .table = {{"198.51.100.1", 0, true}, {"198.51.100.2", 255}},
     .fail_open = true,
     .memory = {.fail_open_entered = 1},
     .stats = {.fail_open = 1}},
    {.name = "StillFailedOpenIsCountedOnce",
     .groups = {kEu, kUs},
     .before = {{{"eu", "198.51.100.1", 30, false}, {"us", "198.51.100.2", 10, false}}},
     .report = Probes{{"eu", "198.51.100.1", 30, false}, {"us", "198.51.100.2", 10, false}},
     .routes = {{"us", 100.0, "", "(failed open 1 time(s))"}, {"eu", 0.0}},
     .table = {{"198.51.100.1", 0, true}, {"198.51.100.2", 255}},
     .fail_open = true,
     .memory = {.fail_open_entered = 1},
     .stats = {.fail_open = 1}},
    {.name = "OneEndpointBackEndsFailOpen",
     // Normal routing, to it alone.
     .groups = {kEu, kUs},
     .before = {{{"eu", "198.51.100.1", 30, false}, {"us", "198.51.100.2", 10, false}}},
     .report = Probes{{"eu", "198.51.100.1", 30, true}, {"us", "198.51.100.2", 10, false}},
     .routes = {{"eu", 100.0}, {"us", 0.0, kUsDown}},
     .table = {{"198.51.100.1", 255}, {"198.51.100.2", 0, true}},
     .memory = {.primary = "eu", .fail_open_entered = 1},
     .stats = {.by_nearest = 1, .primary_nearest = 1}},
    {.name = "DialZeroGroupsDoNotFailOpen",
     .groups = {{"eu", "eu-central", 0, {kEu1}}, {"us", "us-east", 0, {kUs2}}},
     .report = Probes{{"eu", "198.51.100.1", 30, false}, {"us", "198.51.100.2", 10, false}},
     .routes = {{"us", 0.0, "traffic dial 0 %: drained, existing flows stay"},
                {"eu", 0.0, "traffic dial 0 %: drained, existing flows stay"}},
     .table = {{"198.51.100.1", 0, true}, {"198.51.100.2", 0, true}},
     .stats = {.no_traffic = 1}},

    // ---- health per PoP, at once ----
    {.name = "HealthIsPerPopFra1CannotReachUs",
     // us is nearest from both FRA1 and SIN1.
     .groups = {kEu, kUs},
     .report = Probes{{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10, false}},
     .routes = {{"eu", 100.0}, {"us", 0.0, kUsDown}},
     .table = {{"198.51.100.1", 255}, {"198.51.100.2", 0, true}},
     .stats = {.by_nearest = 1, .primary_nearest = 1}},
    {.name = "HealthIsPerPopSin1CanReachUs",
     .groups = {kEu, kUs},
     .report = rtts(30, 10),
     .pop = sin1(),
     .routes = {{"us", 100.0}, {"eu", 0.0, kStandbyEu}},
     .table = {{"198.51.100.1", 0}, {"198.51.100.2", 255}},
     .stats = {.by_nearest = 1, .primary_nearest = 1}},
    {.name = "HealthChangesTakeEffectAtOnce",
     .groups = {kEu, kUs},
     .before = {rtts(30, 10)},
     .report = Probes{{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10, false}},
     .routes = {{"eu", 100.0}, {"us", 0.0, kUsDown}},
     .table = {{"198.51.100.1", 255}, {"198.51.100.2", 0, true}},
     .memory = {.primary = "eu"},
     .stats = {.by_nearest = 1, .primary_nearest = 1, .primary_switched = 1}},
    {.name = "ARecoveredNearerGroupWaitsOutTheHysteresis",
     // us is back, nearer by far more than the margin, but must now win
     // three rounds like any challenger.
     .groups = {kEu, kUs},
     .before = {rtts(30, 10), {{"eu", "198.51.100.1", 30}, {"us", "198.51.100.2", 10, false}}},
     .report = rtts(30, 10),
     .routes = {{"eu", 100.0,
                 "held as nearest (30.0 ms), dial 100 %; held: us 20.0 ms nearer, 1 of 3 rounds"},
                {"us", 0.0,
                 "standby (10.0 ms): nearer groups take every new flow; challenger: 20.0 ms "
                 "nearer than eu, 1 of 3 rounds"}},
     .table = {{"198.51.100.1", 255}, {"198.51.100.2", 0}},
     .memory = {.primary = "eu", .challenger = "us", .rounds = 1},
     .stats = {.by_nearest = 1, .primary_kept_by_hysteresis = 1}},

    // ---- hysteresis: eu becomes 20 ms nearer than us ----
    {.name = "ChallengerHeldFirstRound",
     .groups = {kEu, kUs},
     .before = {rtts(40, 30)},
     .report = rtts(10, 30),
     .routes = {{"us", 100.0,
                 "held as nearest (30.0 ms), dial 100 %; held: eu 20.0 ms nearer, 1 of 3 rounds"},
                {"eu", 0.0, "", "challenger: 20.0 ms nearer than us, 1 of 3 rounds"}},
     .table = {{"198.51.100.1", 0}, {"198.51.100.2", 255}},
     .memory = {.primary = "us", .challenger = "eu", .rounds = 1},
     .stats = {.by_nearest = 1, .primary_kept_by_hysteresis = 1}},
    {.name = "ChallengerHeldSecondRound",
     .groups = {kEu, kUs},
     .before = {rtts(40, 30), rtts(10, 30)},
     .report = rtts(10, 30),
     .routes = {{"us", 100.0,
                 "held as nearest (30.0 ms), dial 100 %; held: eu 20.0 ms nearer, 2 of 3 rounds"},
                {"eu", 0.0, "", "challenger: 20.0 ms nearer than us, 2 of 3 rounds"}},
     .table = {{"198.51.100.1", 0}, {"198.51.100.2", 255}},
     .memory = {.primary = "us", .challenger = "eu", .rounds = 2},
     .stats = {.by_nearest = 1, .primary_kept_by_hysteresis = 1}},
    {.name = "AViewBetweenRoundsCountsNoRound",
     .groups = {kEu, kUs},
     .before = {rtts(40, 30), rtts(10, 30), rtts(10, 30)},
     .report = rtts(10, 30),
     .new_round = false,
     .routes = {{"us", 100.0, "", "2 of 3 rounds"}, {"eu", 0.0}},
     .table = {{"198.51.100.1", 0}, {"198.51.100.2", 255}},
     .memory = {.primary = "us", .challenger = "eu", .rounds = 2},
     .stats = {.by_nearest = 1, .primary_kept_by_hysteresis = 1}},
    {.name = "NearerRegionWinsAtTheThirdRound",
     .groups = {kEu, kUs},
     .before = {rtts(40, 30), rtts(10, 30), rtts(10, 30)},
     .report = rtts(10, 30),
     .routes = {{"eu", 100.0, "nearest healthy group (10.0 ms), dial 100 %"}, {"us", 0.0}},
     .table = {{"198.51.100.1", 255}, {"198.51.100.2", 0}},
     .memory = {.primary = "eu", .challenger = "", .rounds = 0},
     .stats = {.by_nearest = 1, .primary_challenger_won = 1, .primary_switched = 1}},
    {.name = "WithinTheMarginTheCountStartsOver",
     // Within the margin (max(5 ms, 3 ms)) for one round.
     .groups = {kEu, kUs},
     .before = {rtts(40, 30), rtts(10, 30), rtts(10, 30)},
     .report = rtts(26, 30),
     .routes = {{"us", 100.0,
                 "held as nearest (30.0 ms), dial 100 %; eu only 4.0 ms nearer, within the 5.0 "
                 "ms margin"},
                {"eu", 0.0}},
     .table = {{"198.51.100.1", 0}, {"198.51.100.2", 255}},
     .memory = {.primary = "us", .challenger = "", .rounds = 0},
     .stats = {.by_nearest = 1, .primary_kept_within_margin = 1}},
    {.name = "AnInterruptedChallengeNeedsThreeNewRounds",
     .groups = {kEu, kUs},
     .before = {rtts(40, 30), rtts(10, 30), rtts(10, 30), rtts(26, 30), rtts(10, 30)},
     .report = rtts(10, 30),
     .routes = {{"us", 100.0, "", "2 of 3 rounds"}, {"eu", 0.0}},
     .table = {{"198.51.100.1", 0}, {"198.51.100.2", 255}},
     .stats = {.by_nearest = 1, .primary_kept_by_hysteresis = 1}},
    {.name = "AnInterruptedChallengeWinsAtItsThirdRound",
     .groups = {kEu, kUs},
     .before = {rtts(40, 30), rtts(10, 30), rtts(10, 30), rtts(26, 30), rtts(10, 30), rtts(10, 30)},
     .report = rtts(10, 30),
     .routes = {{"eu", 100.0}, {"us", 0.0}},
     .table = {{"198.51.100.1", 255}, {"198.51.100.2", 0}},
     .stats = {.by_nearest = 1, .primary_challenger_won = 1, .primary_switched = 1}},
    {.name = "TheRememberedNearestGroupOutlivesTheHealthView",
     // A PoP that reconnects has no health view until its first report; the
     // nearest group it had keeps the traffic meanwhile, rather than the
     // groups sharing by dial as they do for a PoP never measured.
     .groups = {kEu, kUs},
     .before = {rtts(30, 10)},
     .report = Probes{},
     .new_round = false,
     .routes = {{"us", 100.0, "kept as nearest: no RTT measured from FRA1 yet, dial 100 %"},
                {"eu", 0.0, "standby (unmeasured): nearer groups take every new flow"}},
     .table = {{"198.51.100.1", 0}, {"198.51.100.2", 255}},
     .memory = {.primary = "us"},
     .stats = {.by_nearest = 1, .primary_kept_without_rtt = 1}},

    // ---- the order of the spill-over groups (us dialled to 50 %) ----
    {.name = "SpillOverOrderHoldsWithinTheMargin",
     .groups = {{"ap", "ap-southeast", 100, {kAp3}}, kEu, {"us", "us-east", 50, {kUs2}}},
     .before = {rtts(10, 30, 31)},
     .report = rtts(10, 33, 30),
     .routes = {{"us", 50.0}, {"eu", 50.0}, {"ap", 0.0}},
     .table = {{"198.51.100.3", 0}, {"198.51.100.1", 255}, {"198.51.100.2", 255}},
     .stats = {.by_nearest = 1, .primary_nearest = 1, .spilled = 1}},
    {.name = "AClearlyNearerSpillOverGroupPassesAtOnce",
     .groups = {{"ap", "ap-southeast", 100, {kAp3}}, kEu, {"us", "us-east", 50, {kUs2}}},
     .before = {rtts(10, 30, 31)},
     .report = rtts(10, 30, 20),
     .routes = {{"us", 50.0},
                {"ap", 50.0, "spill-over (20.0 ms): us dialled to 50 %"},
                {"eu", 0.0}},
     .table = {{"198.51.100.3", 255}, {"198.51.100.1", 0}, {"198.51.100.2", 255}},
     .stats = {.by_nearest = 1, .primary_nearest = 1, .spill_reordered = 1, .spilled = 1}},
};

void PrintTo(const RouteCase& c, std::ostream* os) { *os << c.name; }

class RouteTableTest : public RouteComputerTest, public ::testing::WithParamInterface<RouteCase> {
 protected:
  void SetUp() override {
    web();
    for (const GroupSpec& g : GetParam().groups) {
      add(group("web", "http", g.name, g.region, g.dial));
      for (const EndpointSpec& e : g.endpoints)
        add(endpoint("web", "http", g.name, e.address, e.weight));
    }
  }
};

TEST_P(RouteTableTest, SharesReasonsAndExits) {
  const RouteCase& c = GetParam();
  PopHealth health;
  RouteMemory memory;
  for (const Probes& round : c.before) {
    health.replace(report(round), 0);
    memory = compute(c.pop, &health, &memory, true, c.policy).memory;
  }
  if (c.report) health.replace(report(*c.report), 0);
  PopRoutes r = compute(c.pop, c.report ? &health : nullptr, &memory, c.new_round, c.policy);

  ASSERT_EQ(r.listeners.size(), 1u);
  const v1::ListenerRoute& lr = r.listeners[0];
  ASSERT_EQ(lr.groups_size(), static_cast<int>(c.routes.size()));
  for (size_t i = 0; i < c.routes.size(); ++i) {
    const GroupWant& want = c.routes[i];
    const v1::GroupRoute& got = lr.groups(static_cast<int>(i));
    SCOPED_TRACE("group " + want.name + ": " + got.reason());
    EXPECT_EQ(got.endpoint_group(), want.name);
    EXPECT_NEAR(got.share_percent(), want.share, 1e-9);
    if (!want.reason.empty()) {
      EXPECT_EQ(got.reason(), want.reason);
    }
    if (!want.reason_has.empty()) {
      EXPECT_NE(got.reason().find(want.reason_has), std::string::npos);
    }
    if (want.rtt_ms) {
      EXPECT_DOUBLE_EQ(got.rtt_ms(), *want.rtt_ms);
    }
    if (want.healthy) {
      EXPECT_EQ(got.healthy_endpoints(), *want.healthy);
    }
    if (want.endpoints) {
      EXPECT_EQ(got.endpoints(), *want.endpoints);
    }
  }
  EXPECT_EQ(lr.fail_open(), c.fail_open);

  const auto& table = r.table.listeners(0).endpoints();
  ASSERT_EQ(table.size(), static_cast<int>(c.table.size()));
  for (size_t i = 0; i < c.table.size(); ++i) {
    SCOPED_TRACE("endpoint " + c.table[i].address);
    EXPECT_EQ(table[static_cast<int>(i)].address(), c.table[i].address);
    EXPECT_EQ(table[static_cast<int>(i)].weight(), c.table[i].weight);
    EXPECT_EQ(table[static_cast<int>(i)].unhealthy(), c.table[i].unhealthy);
  }

  const ListenerMemory& m = r.memory.at("web/http");
  if (c.memory.primary) {
    EXPECT_EQ(m.primary, *c.memory.primary);
  }
  if (c.memory.challenger) {
    EXPECT_EQ(m.challenger, *c.memory.challenger);
  }
  if (c.memory.rounds) {
    EXPECT_EQ(m.rounds, *c.memory.rounds);
  }
  if (c.memory.fail_open_entered) {
    EXPECT_EQ(m.fail_open_entered, *c.memory.fail_open_entered);
  }

  EXPECT_EQ(r.stats, c.stats);
}

INSTANTIATE_TEST_SUITE_P(Routes, RouteTableTest, ::testing::ValuesIn(kRouteCases),
                         [](const ::testing::TestParamInfo<RouteCase>& info) {
                           return info.param.name;
                         });

// ---- hysteresis under jitter ----

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

  PopHealth health_;
  RouteMemory memory_;
};

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

TEST_F(RouteComputerTest, ThePlanNamesEveryPeerByACommonFamily) {
  web();
  PopContext pop = fra1();
  PeerPop sin{.id = "SIN1"};
  sin.tunnel_source.set_ipv4("192.0.2.2");
  sin.tunnel_source.set_ipv6("2001:db8::2");
  PeerPop v6only{.id = "IAD1"};
  v6only.tunnel_source.set_ipv6("2001:db8::3");
  PeerPop none{.id = "GRU1"};  // no tunnel address yet: not probed
  pop.peers = {sin, v6only, none, PeerPop{.id = "FRA1", .tunnel_source = pop.tunnel_source}};
  PopRoutes r = compute(pop);
  ASSERT_EQ(r.probe_plan.peers_size(), 2);
  EXPECT_EQ(r.probe_plan.peers(0).pop(), "SIN1");
  EXPECT_EQ(r.probe_plan.peers(0).address(), "192.0.2.2");  // IPv4 first
  EXPECT_EQ(r.probe_plan.peers(1).pop(), "IAD1");
  EXPECT_EQ(r.probe_plan.peers(1).address(), "2001:db8::3");

  // A v4-only PoP does not probe a v6-only peer.
  PopContext v4{.id = "LHR1"};
  v4.tunnel_source.set_ipv4("192.0.2.9");
  v4.peers = {v6only, sin};
  r = compute(v4);
  ASSERT_EQ(r.probe_plan.peers_size(), 1);
  EXPECT_EQ(r.probe_plan.peers(0).pop(), "SIN1");

  // The peers travel in the route inputs: the agent's own plan is the same.
  LocalInputs back = local_inputs(route_inputs(config_slice(config_), pop, {}, {}));
  ASSERT_EQ(back.pop.peers.size(), pop.peers.size());
  EXPECT_EQ(back.pop.peers[1].tunnel_source.ipv6(), "2001:db8::3");
  PopRoutes again = RouteComputer().compute(back.config, back.pop);
  EXPECT_EQ(again.probe_plan.SerializeAsString(), compute(pop).probe_plan.SerializeAsString());
}

TEST(PopHealthPeers, AReportReplacesThePeerResultsAndCleansThem) {
  PopHealth h;
  v1::ProbeReport r;
  auto* p = r.add_peers();
  p->set_pop("SIN1");
  p->set_rtt_ms(std::nan(""));
  p->set_loss_percent(250);
  p->set_jitter_ms(-3);
  r.add_peers();  // no PoP: dropped
  (void)h.replace(r, 1);
  ASSERT_NE(h.peer("SIN1"), nullptr);
  EXPECT_EQ(h.peers().size(), 1u);
  EXPECT_LT(h.peer("SIN1")->rtt_ms(), 0);
  EXPECT_EQ(h.peer("SIN1")->loss_percent(), 100);
  EXPECT_EQ(h.peer("SIN1")->jitter_ms(), 0);
  (void)h.replace(v1::ProbeReport(), 2);
  EXPECT_EQ(h.peer("SIN1"), nullptr);
}

}  // namespace
}  // namespace test
}  // namespace onramp::ctl
