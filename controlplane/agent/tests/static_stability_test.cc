// Static stability: with the controller away, the agent recomputes its
// PoP's table from the last update's RouteInputs and its own probe
// verdicts, with the controller's routing library, and applies it when the
// content differs: dead endpoints leave at once, recovered ones come back,
// a listener with nothing healthy fails open, dials and weights count. When
// the session is back nothing is re-applied, and the Hello tells the
// controller which table the PoP runs. The "controller" here is the routing
// library called as PopRegistry calls it; a fake dataplane and a FakeClock.
#include <gtest/gtest.h>

#include "controlplane/agent/agent.h"
#include "controlplane/agent/tests/fakes.h"
#include "controlplane/agent/tests/probe_servers.h"
#include "controlplane/agent/tests/prober_driver.h"
#include "controlplane/routing/route_inputs.h"

namespace onramp::agent::test {
namespace {

using Row = std::tuple<std::string, std::string, double, bool>;  // group, address, RTT, healthy

v1::ProbeReport report(const std::vector<Row>& rows) {
  v1::ProbeReport r;
  for (const auto& [group, address, rtt, healthy] : rows) {
    v1::ProbeResult* x = r.add_results();
    x->set_accelerator("web");
    x->set_listener("http");
    x->set_endpoint_group(group);
    x->set_address(address);
    x->set_rtt_ms(rtt);
    x->set_healthy(healthy);
    x->set_known(true);
    x->set_consecutive(3);
  }
  return r;
}

// web/http on port 80: group eu (nearer) with two endpoints, group us with
// one; weights and dials as given, health checks on `eu_port` / `us_port`.
ctl::Config config(std::vector<std::pair<std::string, uint32_t>> eu,
                   std::vector<std::pair<std::string, uint32_t>> us, uint32_t eu_dial = 100,
                   uint32_t eu_port = 80, uint32_t us_port = 80) {
  ctl::Config c;
  v1::Accelerator a;
  a.set_name("web");
  a.set_enabled(true);
  a.add_vips("203.0.113.10");
  c.accelerators[ctl::key_of(a)] = a;
  v1::Listener l;
  l.set_accelerator("web");
  l.set_name("http");
  l.set_protocol(v1::TCP);
  auto* range = l.add_port_ranges();
  range->set_first(80);
  range->set_last(80);
  c.listeners[ctl::key_of(l)] = l;
  auto add_group = [&](const std::string& name, uint32_t dial, uint32_t port,
                       const std::vector<std::pair<std::string, uint32_t>>& endpoints) {
    v1::EndpointGroup g;
    g.set_accelerator("web");
    g.set_listener("http");
    g.set_name(name);
    g.set_traffic_dial_percent(dial);
    v1::HealthCheck* hc = g.mutable_health_check();
    hc->set_protocol(v1::HEALTH_CHECK_HTTP);
    hc->set_port(port);
    hc->set_path("/");
    hc->set_interval_ms(200);
    hc->set_timeout_ms(100);
    hc->set_healthy_threshold(2);
    hc->set_unhealthy_threshold(2);
    hc->set_expected_status_min(200);
    hc->set_expected_status_max(399);
    c.groups[ctl::key_of(g)] = g;
    for (const auto& [address, weight] : endpoints) {
      v1::Endpoint e;
      e.set_accelerator("web");
      e.set_listener("http");
      e.set_endpoint_group(name);
      e.set_address(address);
      e.set_weight(weight);
      c.endpoints[ctl::key_of(e)] = e;
    }
  };
  add_group("eu", eu_dial, eu_port, eu);
  add_group("us", 100, us_port, us);
  return c;
}

const ctl::PopContext kFra1 = [] {
  ctl::PopContext pop{.id = "FRA1"};
  pop.tunnel_source.set_ipv4("192.0.2.1");
  pop.tunnel_source.set_ipv6("2001:db8:f1::1");
  return pop;
}();

// What the controller does for one probe report: compute, stamp the
// version, and send the table with its inputs (PopRegistry::refresh and
// maybe_send).
v1::TableUpdate controller_update(const ctl::Config& c, const v1::ProbeReport& probes,
                                  uint64_t version) {
  ctl::PopHealth health = ctl::health_from_report(probes);
  ctl::RouteComputer computer;
  ctl::PopRoutes routes = computer.compute(c, kFra1, &health, nullptr, true);
  v1::TableUpdate u;
  u.set_version(version);
  u.set_nonce("n-" + std::to_string(version));
  *u.mutable_table() = routes.table;
  u.mutable_table()->set_version(version);
  *u.mutable_probe_plan() = routes.probe_plan;
  *u.mutable_route_inputs() =
      ctl::route_inputs(ctl::config_slice(c), kFra1, routes.memory, computer.policy());
  return u;
}

// The digest of what the controller computes from `inputs` and `probes`
// with `memory`: the table an agent routing on its own must have applied.
std::string controller_digest(const v1::RouteInputs& inputs, const v1::ProbeReport& probes,
                              const ctl::RouteMemory& memory, bool new_round) {
  ctl::LocalInputs local = ctl::local_inputs(inputs);
  ctl::PopHealth health = ctl::health_from_report(probes);
  ctl::PopRoutes routes = ctl::RouteComputer(local.policy)
                              .compute(local.config, local.pop, &health, &memory, new_round);
  return ctl::content_digest(routes.table, routes.probe_plan);
}

const v1::ForwardingEndpoint* find(const v1::ForwardingTable& t, const std::string& address) {
  for (const auto& e : t.listeners(0).endpoints())
    if (e.address() == address) return &e;
  return nullptr;
}

class StaticStabilityTest : public ::testing::Test {
 protected:
  AgentConfig agent_config() {
    AgentConfig c = fra1_agent_config(dir.path);
    c.probes = false;  // reports come from the test
    return c;
  }
  const ctl::Config world =
      config({{"198.51.100.1", 128}, {"198.51.100.2", 128}}, {{"198.51.100.3", 128}});
  const v1::ProbeReport all_up = report({{"eu", "198.51.100.1", 10, true},
                                         {"eu", "198.51.100.2", 10, true},
                                         {"us", "198.51.100.3", 90, true}});
  const v1::ProbeReport eu1_down = report({{"eu", "198.51.100.1", 10, false},
                                           {"eu", "198.51.100.2", 10, true},
                                           {"us", "198.51.100.3", 90, true}});
  const v1::ProbeReport all_down = report({{"eu", "198.51.100.1", 10, false},
                                           {"eu", "198.51.100.2", 10, false},
                                           {"us", "198.51.100.3", 90, false}});
  TempDir dir;
  FakeDataplane dataplane;
  FakeClock clock;
};

TEST_F(StaticStabilityTest, ADeadEndpointLeavesTheTableOnlyWhileTheControllerIsAway) {
  Agent agent(agent_config(), dataplane, clock);
  agent.restore();
  v1::TableUpdate u = controller_update(world, all_up, 5);
  ASSERT_TRUE(agent.on_update(u).ok());
  agent.on_session(true, "test");
  EXPECT_FALSE(agent.routes_on_own());

  // With a session the controller decides: the report goes to it.
  agent.route_on_own(eu1_down);
  EXPECT_EQ(dataplane.applied().size(), 1u);

  agent.on_session(false, "session ended: killed");
  EXPECT_TRUE(agent.routes_on_own());
  agent.route_on_own(eu1_down);
  auto applied = dataplane.applied();
  ASSERT_EQ(applied.size(), 2u);
  const v1::ForwardingTable& own = applied[1];
  // The version of its inputs; localised as the controller's tables are.
  EXPECT_EQ(own.version(), 5u);
  EXPECT_EQ(own.next_hop_mac(), "02:00:00:00:00:fe");
  ASSERT_TRUE(find(own, "198.51.100.1"));
  EXPECT_TRUE(find(own, "198.51.100.1")->unhealthy());
  EXPECT_EQ(find(own, "198.51.100.1")->weight(), 0u);
  EXPECT_GT(find(own, "198.51.100.2")->weight(), 0u);
  // Exactly the table the controller computes from the same inputs and
  // verdicts, and the agent says so in its next Hello.
  ctl::RouteMemory memory = ctl::memory_from_proto(u.route_inputs().memory());
  std::string expected = controller_digest(u.route_inputs(), eu1_down, memory, true);
  EXPECT_EQ(agent.local_digest(), expected);
  EXPECT_EQ(ctl::content_digest(own, u.probe_plan()).size(), 16u);
  v1::Hello h = agent.hello();
  EXPECT_EQ(h.applied_version(), 5u);
  EXPECT_EQ(h.local_digest(), expected);
  ASSERT_EQ(h.route_memory_size(), 1);
  EXPECT_EQ(h.route_memory(0).primary(), "eu");

  // The same verdicts again: nothing to apply.
  agent.route_on_own(eu1_down);
  EXPECT_EQ(dataplane.applied().size(), 2u);
}

TEST_F(StaticStabilityTest, NothingHealthyFailsOpenToTheNearestGroup) {
  Agent agent(agent_config(), dataplane, clock);
  agent.restore();
  ASSERT_TRUE(agent.on_update(controller_update(world, all_up, 5)).ok());
  agent.on_session(false, "test");
  agent.route_on_own(all_down);
  auto applied = dataplane.applied();
  ASSERT_EQ(applied.size(), 2u);
  // eu is nearest: its endpoints take every new flow, sent as healthy.
  EXPECT_FALSE(find(applied[1], "198.51.100.1")->unhealthy());
  EXPECT_EQ(find(applied[1], "198.51.100.1")->weight(), 255u);
  EXPECT_EQ(find(applied[1], "198.51.100.2")->weight(), 255u);
  EXPECT_EQ(find(applied[1], "198.51.100.3")->weight(), 0u);
}

TEST_F(StaticStabilityTest, RecoveredEndpointsComeBackToTheControllersTable) {
  Agent agent(agent_config(), dataplane, clock);
  agent.restore();
  v1::TableUpdate u = controller_update(world, all_up, 5);
  ASSERT_TRUE(agent.on_update(u).ok());
  agent.on_session(false, "test");
  agent.route_on_own(eu1_down);
  EXPECT_FALSE(agent.local_digest().empty());
  agent.route_on_own(all_up);
  auto applied = dataplane.applied();
  ASSERT_EQ(applied.size(), 3u);
  EXPECT_FALSE(find(applied[2], "198.51.100.1")->unhealthy());
  // The controller's content again: the PoP runs version 5 as sent.
  EXPECT_EQ(agent.local_digest(), "");
  EXPECT_EQ(applied[2].SerializeAsString(), applied[0].SerializeAsString());
  v1::Hello h = agent.hello();
  EXPECT_EQ(h.local_digest(), "");
  // With the memory of that table: a controller whose store lags behind
  // carries on from it.
  ASSERT_EQ(h.route_memory_size(), 1);
  EXPECT_EQ(h.route_memory(0).primary(), "eu");
}

TEST_F(StaticStabilityTest, DialsAndWeightsCountAsTheControllerCountsThem) {
  // eu dialled to 50 %, its endpoints weighted 200 and 100.
  ctl::Config dialled =
      config({{"198.51.100.1", 200}, {"198.51.100.2", 100}}, {{"198.51.100.3", 128}}, 50);
  Agent agent(agent_config(), dataplane, clock);
  agent.restore();
  v1::TableUpdate u = controller_update(dialled, all_up, 5);
  ASSERT_TRUE(agent.on_update(u).ok());
  auto applied = dataplane.applied();
  uint32_t eu2_before = find(applied[0], "198.51.100.2")->weight();
  uint32_t us_before = find(applied[0], "198.51.100.3")->weight();
  agent.on_session(false, "test");
  agent.route_on_own(eu1_down);
  applied = dataplane.applied();
  ASSERT_EQ(applied.size(), 2u);
  // eu keeps 50 % x min(1, 1.4 x 100/300) of new flows, us takes the rest.
  EXPECT_EQ(find(applied[1], "198.51.100.1")->weight(), 0u);
  EXPECT_LT(find(applied[1], "198.51.100.2")->weight(), eu2_before);
  EXPECT_EQ(find(applied[1], "198.51.100.3")->weight(), 255u);
  EXPECT_LE(us_before, 255u);
  ctl::RouteMemory memory = ctl::memory_from_proto(u.route_inputs().memory());
  EXPECT_EQ(agent.local_digest(), controller_digest(u.route_inputs(), eu1_down, memory, true));
}

TEST_F(StaticStabilityTest, TheControllerBackMeansNoReapply) {
  Agent agent(agent_config(), dataplane, clock);
  agent.restore();
  ASSERT_TRUE(agent.on_update(controller_update(world, all_up, 5)).ok());
  agent.on_session(false, "test");
  agent.route_on_own(eu1_down);
  ASSERT_EQ(dataplane.applied().size(), 2u);
  v1::Hello h = agent.hello();

  // What the controller computes on that Hello: its verdicts, its memory,
  // not a new round. The same digest, so it sends nothing.
  agent.on_session(true, "session open");
  EXPECT_FALSE(agent.routes_on_own());
  v1::RouteInputs inputs = controller_update(world, all_up, 5).route_inputs();
  EXPECT_EQ(controller_digest(inputs, eu1_down, ctl::memory_from_proto(h.route_memory()), false),
            h.local_digest());
  // And the agent leaves the dataplane alone: the watch finds it on version
  // 5, reports go to the controller.
  agent.tick();
  agent.route_on_own(all_up);
  EXPECT_EQ(dataplane.applied().size(), 2u);
}

TEST_F(StaticStabilityTest, ARestartedAgentRoutesOnItsOwnFromWhatItKept) {
  {
    Agent agent(agent_config(), dataplane, clock);
    agent.restore();
    ASSERT_TRUE(agent.on_update(controller_update(world, all_up, 5)).ok());
  }
  {
    // Restarted with the controller still away.
    Agent agent(agent_config(), dataplane, clock);
    agent.restore();
    EXPECT_TRUE(agent.routes_on_own());
    agent.route_on_own(eu1_down);
    auto applied = dataplane.applied();
    ASSERT_EQ(applied.size(), 2u);
    EXPECT_EQ(applied[1].version(), 5u);
    EXPECT_TRUE(find(applied[1], "198.51.100.1")->unhealthy());
  }
  // Once more: the own table's digest survives too, for the next Hello.
  Agent agent(agent_config(), dataplane, clock);
  agent.restore();
  EXPECT_EQ(agent.hello().local_digest().size(), 16u);
}

TEST_F(StaticStabilityTest, NoOwnTableBeforeEveryVerdictOrWithoutInputs) {
  Agent agent(agent_config(), dataplane, clock);
  agent.restore();
  ASSERT_TRUE(agent.on_update(controller_update(world, all_up, 5)).ok());
  agent.on_session(false, "test");
  v1::ProbeReport early = eu1_down;
  early.mutable_results(2)->set_known(false);  // us: no verdict yet
  agent.route_on_own(early);
  EXPECT_EQ(dataplane.applied().size(), 1u);

  // An older controller sends no inputs: the table stays as it is.
  v1::TableUpdate bare = controller_update(world, all_up, 6);
  bare.clear_route_inputs();
  ASSERT_TRUE(agent.on_update(bare).ok());
  EXPECT_FALSE(agent.routes_on_own());
  agent.route_on_own(eu1_down);
  EXPECT_EQ(dataplane.applied().size(), 2u);
}

// A real prober on a FakeClock, reporting to the agent as the agent's own
// prober does: an HTTP endpoint that starts answering 503 is dropped from the
// dataplane's table, with no controller, within a second of its verdict (the
// report goes out with the verdict and the table is recomputed on it).
// Tables refuse loopback endpoints, so the endpoints are 198.51.100.1 (eu)
// and .3 (us) and the prober asks local servers in their stead.
TEST_F(StaticStabilityTest, AProbedEndpointThatDiesLeavesWithinASecondOfItsVerdict) {
  HttpServer eu(200);
  HttpServer us(200);
  ctl::Config probed =
      config({{"198.51.100.1", 128}}, {{"198.51.100.3", 128}}, 100, eu.port, us.port);
  Agent agent(agent_config(), dataplane, clock);
  agent.restore();
  v1::ProbeReport up = report({{"eu", "198.51.100.1", 1, true}, {"us", "198.51.100.3", 50, true}});
  v1::TableUpdate u = controller_update(probed, up, 5);
  ASSERT_TRUE(agent.on_update(u).ok());
  agent.on_session(false, "session ended: killed");

  v1::ProbePlan local = u.probe_plan();
  for (v1::ProbeTarget& t : *local.mutable_targets()) t.set_address("127.0.0.1");
  Prober prober(
      ProberOptions{.report_interval = 1000ms, .seed = 7},
      [&](const v1::ProbeReport& r) {
        v1::ProbeReport named = r;
        for (v1::ProbeResult& x : *named.mutable_results())
          x.set_address(x.endpoint_group() == "eu" ? "198.51.100.1" : "198.51.100.3");
        agent.route_on_own(named);
      },
      clock);
  prober.set_plan(local);
  ProberDriver driver(prober, clock);
  auto known_healthy = [&] {
    v1::ProbeReport r = prober.snapshot();
    return r.results_size() == 2 && r.results(0).known() && r.results(0).healthy() &&
           r.results(1).known() && r.results(1).healthy();
  };
  ASSERT_TRUE(driver.until(known_healthy));
  size_t before = dataplane.applied().size();

  eu.set_status(503);
  std::optional<Clock::time_point> verdict;
  auto dropped = [&] {
    v1::ProbeReport r = prober.snapshot();
    if (!verdict && r.results(0).known() && !r.results(0).healthy()) verdict = clock.now();
    auto applied = dataplane.applied();
    return applied.size() > before && find(applied.back(), "198.51.100.1")->unhealthy();
  };
  ASSERT_TRUE(driver.until(dropped, 10s));
  ASSERT_TRUE(verdict);
  EXPECT_LE(clock.now() - *verdict, 1s);
  EXPECT_EQ(dataplane.applied().back().version(), 5u);
  EXPECT_GT(find(dataplane.applied().back(), "198.51.100.3")->weight(), 0u);

  // Back up: healthy in the table again.
  eu.set_status(200);
  ASSERT_TRUE(driver.until(
      [&] { return !find(dataplane.applied().back(), "198.51.100.1")->unhealthy(); }, 10s));
}

}  // namespace
}  // namespace onramp::agent::test
