// Relaying over the backbone (docs/routing.md): per (PoP, group) direct or
// through one relay PoP, by the relayed RTT against the direct one, with a
// margin and rounds of hysteresis; loss, a relay's status and its own view
// of the group make it eligible or not; losing the relay falls back to
// direct at once; relaying off, determinism and the agent's own fallback.
#include "controlplane/routing/relay_choice.h"

#include <gtest/gtest.h>

#include "controlplane/controller/config_store.h"
#include "controlplane/controller/table_check.h"
#include "controlplane/controller/tests/fixtures.h"
#include "controlplane/routing/route_inputs.h"

namespace onramp::ctl::test {
namespace {

v1::ProbeReport report(std::vector<std::pair<std::string, double>> groups) {
  const std::map<std::string, std::string> address = {{"eu", "198.51.100.1"},
                                                      {"ap", "198.51.100.2"}};
  v1::ProbeReport r;
  for (auto& [group, rtt] : groups) {
    auto* x = r.add_results();
    x->set_accelerator("web");
    x->set_listener("http");
    x->set_endpoint_group(group);
    x->set_address(address.at(group));
    x->set_rtt_ms(rtt);
    x->set_healthy(rtt >= 0);
    x->set_known(true);
  }
  return r;
}

void add_peer(v1::ProbeReport& r, const std::string& pop, double rtt, double loss = 0,
              bool down = false) {
  auto* p = r.add_peers();
  p->set_pop(pop);
  p->set_rtt_ms(rtt);
  p->set_loss_percent(loss);
  p->set_sent(30);
  p->set_down(down);
}

class RelayChoiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    add(accelerator("web", {"203.0.113.10"}));
    add(listener("web", "http", {{80, 80}}));
    add(group("web", "http", "eu", "eu-central", 100));
    add(group("web", "http", "ap", "ap-southeast", 100));
    add(endpoint("web", "http", "eu", "198.51.100.1", 128));
    add(endpoint("web", "http", "ap", "198.51.100.2", 128));
    fra_.id = "FRA1";
    fra_.tunnel_source.set_ipv4("192.0.2.1");
    sin_.id = "SIN1";
    sin_.tunnel_source.set_ipv4("192.0.2.2");
    sin_.dataplane_healthy = true;
    sin_.bgp_announced = true;
    sin_.health = &sin_health_;
    // FRA1: eu near, ap far; SIN1 next to ap; the backbone 45.2 ms.
    set_fra(2.0, 151.0, 45.2);
    (void)sin_health_.replace(report({{"eu", 150.0}, {"ap", 2.1}}), 1);
  }
  void add(Resource r) {
    ConfigChange ch;
    ch.puts.push_back(std::move(r));
    apply_change(config_, ch);
  }
  void set_fra(double eu, double ap, double to_sin, double loss = 0, bool down = false) {
    v1::ProbeReport r = report({{"eu", eu}, {"ap", ap}});
    add_peer(r, "SIN1", to_sin, loss, down);
    (void)fra_health_.replace(r, 1);
  }
  // One computation for FRA1 with SIN1 as its peer, carrying the memory.
  PopRoutes round(bool new_round = true) {
    PopContext pop = fra_;
    pop.peers = {sin_};
    PopRoutes r = RouteComputer(policy_).compute(config_, pop, &fra_health_, &memory_, new_round);
    auto spec = check_table(r.table);
    EXPECT_TRUE(spec.ok()) << spec.error();
    memory_ = r.memory;
    return r;
  }
  static const v1::GroupRoute& group_of(const PopRoutes& r, const std::string& name) {
    for (const auto& g : r.listeners[0].groups())
      if (g.endpoint_group() == name) return g;
    ADD_FAILURE() << "no group " << name;
    return r.listeners[0].groups(0);
  }
  static std::string relay_of(const PopRoutes& r, const std::string& address) {
    for (const auto& e : r.table.listeners(0).endpoints())
      if (e.address() == address) return e.relay();
    return "?";
  }

  Config config_;
  RoutePolicy policy_;
  PopContext fra_;
  PeerPop sin_;
  PopHealth fra_health_, sin_health_;
  RouteMemory memory_;
};

TEST_F(RelayChoiceTest, AFasterRelayIsChosenAfterItsRoundsAndExplained) {
  for (uint32_t i = 1; i < policy_.rounds; ++i) {
    PopRoutes r = round();
    EXPECT_EQ(group_of(r, "ap").via(), "") << "round " << i;
    EXPECT_EQ(relay_of(r, "198.51.100.2"), "");
    EXPECT_EQ(r.path_stats.relay_held, 1u);
    EXPECT_NE(group_of(r, "ap").path_reason().find("is better by 69 %"), std::string::npos)
        << group_of(r, "ap").path_reason();
  }
  PopRoutes r = round();
  const v1::GroupRoute& ap = group_of(r, "ap");
  EXPECT_EQ(ap.via(), "SIN1");
  EXPECT_EQ(ap.path_reason(), "via SIN1: 45.2 + 2.1 ms beats direct 151.0 ms by 69 %");
  EXPECT_DOUBLE_EQ(ap.rtt_ms(), 45.2 + 2.1);
  EXPECT_DOUBLE_EQ(ap.direct_rtt_ms(), 151.0);
  EXPECT_EQ(r.path_stats.relay_won, 1u);
  // Only the relayed group's endpoints carry the relay, of their family.
  EXPECT_EQ(relay_of(r, "198.51.100.2"), "192.0.2.2");
  EXPECT_EQ(relay_of(r, "198.51.100.1"), "");
  ASSERT_EQ(r.table.relay_peers_size(), 1);
  EXPECT_EQ(r.table.relay_peers(0), "192.0.2.2");
  EXPECT_EQ(group_of(r, "eu").path_reason().substr(0, 7), "direct:");
  // The next rounds keep it.
  r = round();
  EXPECT_EQ(group_of(r, "ap").via(), "SIN1");
  EXPECT_EQ(r.path_stats.relay_kept, 1u);
}

TEST_F(RelayChoiceTest, ARelayNotBetterByTheMarginIsNotTaken) {
  set_fra(2.0, 50.0, 45.9);  // via 48.0 against 50.0: the margin is 10 ms
  PopRoutes r;
  for (int i = 0; i < 10; ++i) r = round();
  EXPECT_EQ(group_of(r, "ap").via(), "");
  EXPECT_EQ(group_of(r, "ap").path_reason(),
            "direct: via SIN1 would be 48.0 ms, not better than 50.0 ms by the 10.0 ms margin");
  EXPECT_EQ(r.path_stats.direct_better, 2u);
  EXPECT_EQ(memory_.at("web/http").paths.count("ap"), 0u);
}

TEST_F(RelayChoiceTest, JitterDoesNotMoveAChosenPath) {
  for (uint32_t i = 0; i < policy_.rounds; ++i) round();
  ASSERT_EQ(group_of(round(), "ap").via(), "SIN1");
  // Direct swings around the relayed 47.3 ms, never better by the margin
  // for long: the path stays.
  const double direct[] = {40.0, 60.0, 38.0, 151.0, 39.0, 45.0};
  for (double d : direct) {
    set_fra(2.0, d, 45.2);
    EXPECT_EQ(group_of(round(), "ap").via(), "SIN1") << d;
  }
  // Better by the margin for the policy's rounds: back to direct.
  PopRoutes r;
  for (uint32_t i = 0; i < policy_.rounds; ++i) {
    set_fra(2.0, 20.0, 45.2);
    r = round();
  }
  EXPECT_EQ(group_of(r, "ap").via(), "");
  EXPECT_EQ(r.path_stats.direct_won, 1u);
  // A round that is no round (a configuration push) counts nothing.
  memory_.clear();
  set_fra(2.0, 151.0, 45.2);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(group_of(round(false), "ap").via(), "");
}

TEST_F(RelayChoiceTest, ALossyPathIsNotEligibleAndLosingTheRelayIsImmediate) {
  set_fra(2.0, 151.0, 45.2, /*loss=*/10);
  PopRoutes r;
  for (int i = 0; i < 5; ++i) r = round();
  EXPECT_EQ(group_of(r, "ap").via(), "");
  EXPECT_EQ(r.path_stats.no_candidate, 2u);
  set_fra(2.0, 151.0, 45.2, /*loss=*/3.3);  // within the 5 % allowed
  for (uint32_t i = 0; i < policy_.rounds; ++i) r = round();
  ASSERT_EQ(group_of(r, "ap").via(), "SIN1");
  set_fra(2.0, 151.0, 45.2, /*loss=*/10);
  r = round(false);  // even without a round of FRA1's
  EXPECT_EQ(group_of(r, "ap").via(), "");
  EXPECT_EQ(relay_of(r, "198.51.100.2"), "");
  EXPECT_EQ(r.path_stats.relay_lost, 1u);
  EXPECT_EQ(group_of(r, "ap").path_reason(),
            "direct: relay SIN1: the path to it loses 10 % of probes (more than 5 %); back to "
            "direct at once");
}

// The backbone to the relay cut, both PoPs up: the agent marks the path down
// after a few unanswered probes, long before its loss window says anything
// (no probe of the window timed out yet: 0 % loss, the last RTT still
// smoothed in). The relay is left in that computation, without rounds, and
// a path that is down is no candidate until it answers again.
TEST_F(RelayChoiceTest, APathMarkedDownIsLeftAtOnceAndIsNoCandidate) {
  for (uint32_t i = 0; i < policy_.rounds; ++i) round();
  ASSERT_EQ(group_of(round(), "ap").via(), "SIN1");
  set_fra(2.0, 151.0, 45.2, /*loss=*/0, /*down=*/true);
  PopRoutes r = round(false);  // the agent's report at once: no round of FRA1's needed
  EXPECT_EQ(group_of(r, "ap").via(), "");
  EXPECT_EQ(relay_of(r, "198.51.100.2"), "");
  EXPECT_EQ(r.path_stats.relay_lost, 1u);
  EXPECT_EQ(group_of(r, "ap").path_reason(),
            "direct: relay SIN1: the path to it is down (its latest probes went unanswered); "
            "back to direct at once");
  for (int i = 0; i < 5; ++i) r = round();
  EXPECT_EQ(group_of(r, "ap").via(), "");
  EXPECT_EQ(r.path_stats.no_candidate, 2u);
  // Answering again, it is a candidate like any other: back after the rounds.
  set_fra(2.0, 151.0, 45.2);
  for (uint32_t i = 1; i < policy_.rounds; ++i) EXPECT_EQ(group_of(round(), "ap").via(), "");
  EXPECT_EQ(group_of(round(), "ap").via(), "SIN1");
}

TEST_F(RelayChoiceTest, ARelayThatIsUnhealthyWithdrawnGoneOrBlindFallsBackAtOnce) {
  auto relayed = [&] {
    memory_.clear();
    for (uint32_t i = 0; i < policy_.rounds; ++i) round();
    return group_of(round(), "ap").via() == "SIN1";
  };
  ASSERT_TRUE(relayed());
  sin_.dataplane_healthy = false;
  EXPECT_EQ(group_of(round(false), "ap").path_reason(),
            "direct: relay SIN1: its dataplane is unhealthy; back to direct at once");
  sin_.dataplane_healthy = true;
  ASSERT_TRUE(relayed());
  sin_.bgp_announced = false;
  EXPECT_EQ(group_of(round(false), "ap").via(), "");
  sin_.bgp_announced = true;
  ASSERT_TRUE(relayed());
  // SIN1 loses the group (its endpoint unhealthy from SIN1).
  (void)sin_health_.replace(report({{"eu", 150.0}, {"ap", -1}}), 2);
  EXPECT_EQ(group_of(round(false), "ap").path_reason(),
            "direct: relay SIN1: no healthy endpoint of the group measured from it; back to "
            "direct at once");
  (void)sin_health_.replace(report({{"eu", 150.0}, {"ap", 2.1}}), 3);
  ASSERT_TRUE(relayed());
  // SIN1 disconnects: no longer a peer.
  PopContext alone = fra_;
  PopRoutes r = RouteComputer(policy_).compute(config_, alone, &fra_health_, &memory_, false);
  EXPECT_EQ(r.listeners[0].groups(0).via() + r.listeners[0].groups(1).via(), "");
  EXPECT_EQ(r.table.relay_peers_size(), 0);
  EXPECT_EQ(r.path_stats.relay_lost, 1u);
}

TEST_F(RelayChoiceTest, AGroupFasterThroughARelayWinsTheRanking) {
  // eu is 80 ms direct; ap 151 ms direct but 47.3 ms through SIN1.
  set_fra(80.0, 151.0, 45.2);
  PopRoutes r = round();
  EXPECT_EQ(memory_.at("web/http").primary, "eu");
  for (int i = 0; i < 10; ++i) r = round();
  EXPECT_EQ(memory_.at("web/http").primary, "ap");
  EXPECT_EQ(r.listeners[0].groups(0).endpoint_group(), "ap");
  EXPECT_EQ(r.listeners[0].groups(0).via(), "SIN1");
}

TEST_F(RelayChoiceTest, RelayingOffReachesEveryGroupDirectly) {
  for (uint32_t i = 0; i < policy_.rounds; ++i) round();
  ASSERT_EQ(group_of(round(), "ap").via(), "SIN1");
  v1::Accelerator off = accelerator("web", {"203.0.113.10"});
  off.set_relay_off(true);
  add(off);
  PopRoutes r = round(false);
  EXPECT_EQ(group_of(r, "ap").via(), "");
  EXPECT_EQ(group_of(r, "ap").path_reason(), "direct: relaying is off for this accelerator");
  EXPECT_EQ(r.path_stats.relay_off, 2u);
  EXPECT_TRUE(memory_.at("web/http").paths.empty());
}

TEST_F(RelayChoiceTest, TheSameInputsGiveTheSameTableAndTheAgentAloneGoesDirect) {
  for (uint32_t i = 0; i < policy_.rounds; ++i) round();
  RouteMemory before = memory_;
  PopRoutes a = round();
  memory_ = before;
  PopRoutes b = round();
  EXPECT_EQ(a.table.SerializeAsString(), b.table.SerializeAsString());
  EXPECT_EQ(relay_of(a, "198.51.100.2"), "192.0.2.2");

  // The memory travels in the route inputs; the agent routing on its own
  // knows no peer's status or probes: every group direct, the same peers
  // accepted for relaying.
  PopContext pop = fra_;
  pop.peers = {sin_};
  // SIN1 on two servers, the second sending from its own address.
  pop.peers[0].host_tunnel_sources.resize(1);
  pop.peers[0].host_tunnel_sources[0].set_ipv4("192.0.2.12");
  LocalInputs local = local_inputs(route_inputs(config_slice(config_), pop, memory_, policy_));
  EXPECT_EQ(local.memory.at("web/http").paths.at("ap").via, "SIN1");
  EXPECT_DOUBLE_EQ(local.policy.relay_margin_fraction, policy_.relay_margin_fraction);
  PopHealth own = health_from_report(report({{"eu", 2.0}, {"ap", 151.0}}));
  PopRoutes alone =
      RouteComputer(local.policy).compute(local.config, local.pop, &own, &local.memory, true);
  EXPECT_EQ(relay_of(alone, "198.51.100.2"), "");
  ASSERT_EQ(alone.table.relay_peers_size(), 2);
  EXPECT_EQ(alone.table.relay_peers(1), "192.0.2.12");
  EXPECT_EQ(alone.memory.at("web/http").paths.count("ap"), 0u);
}

TEST(RelayPeers, OwnOrUnusableAddressesAreNotAccepted) {
  Config config;
  PopContext pop{.id = "FRA1"};
  pop.tunnel_source.set_ipv4("192.0.2.1");
  PeerPop twin{.id = "SIN1"};
  twin.tunnel_source.set_ipv4("192.0.2.1");  // the same address: a misconfiguration
  twin.tunnel_source.set_ipv6("2001:db8::2");
  PeerPop loop{.id = "IAD1"};
  loop.tunnel_source.set_ipv4("127.0.0.2");
  pop.peers = {twin, loop};
  PopRoutes r = RouteComputer().compute(config, pop);
  ASSERT_EQ(r.table.relay_peers_size(), 1);
  EXPECT_EQ(r.table.relay_peers(0), "2001:db8::2");
}

TEST(RelayPeers, EveryHostOfAPeerIsAccepted) {
  Config config;
  PopContext pop{.id = "SIN1"};
  pop.tunnel_source.set_ipv4("192.0.2.2");
  PeerPop fra{.id = "FRA1"};
  fra.tunnel_source.set_ipv4("192.0.2.1");
  v1::TunnelSource b, again;
  b.set_ipv4("192.0.2.11");
  b.set_ipv6("2001:db8::11");
  again.set_ipv4("192.0.2.11");  // listed twice: accepted once
  fra.host_tunnel_sources = {b, again};
  pop.peers = {fra};
  PopRoutes r = RouteComputer().compute(config, pop);
  ASSERT_EQ(r.table.relay_peers_size(), 3);
  EXPECT_EQ(r.table.relay_peers(0), "192.0.2.1");
  EXPECT_EQ(r.table.relay_peers(1), "192.0.2.11");
  EXPECT_EQ(r.table.relay_peers(2), "2001:db8::11");
}

TEST_F(RelayChoiceTest, APeerWithThisPopsOwnAddressRelaysNothing) {
  sin_.tunnel_source.set_ipv4("192.0.2.1");  // FRA1's: a misconfiguration
  PopRoutes r;
  for (int i = 0; i < 5; ++i) r = round();
  EXPECT_EQ(relay_of(r, "198.51.100.2"), "");
  EXPECT_EQ(r.path_stats.no_candidate, 2u);
}

}  // namespace
}  // namespace onramp::ctl::test
