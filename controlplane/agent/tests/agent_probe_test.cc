// The agent's probes and BGP announcement with a fake dataplane and a fake
// BIRD: the plan of every update is probed and reported (refused tables
// included), kept across an agent restart; the VIPs are announced only
// while the dataplane is healthy and runs a table that serves them. The
// agent's prober runs on a fake clock, driven by the test (ProberDriver).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "controlplane/agent/agent.h"
#include "controlplane/agent/tests/fakes.h"
#include "controlplane/agent/tests/probe_servers.h"
#include "controlplane/agent/tests/prober_driver.h"

namespace onramp::agent::test {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

AgentConfig config_in(const std::string& dir) {
  AgentConfig c = fra1_agent_config(dir + "/state");
  c.tunnel_source_v6.clear();
  c.report_interval = 100ms;
  return c;
}

v1::TableUpdate update_with_plan(uint64_t version, v1::ForwardingTable table, uint16_t port) {
  v1::TableUpdate u;
  u.set_version(version);
  u.set_nonce("n-" + std::to_string(version));
  *u.mutable_table() = std::move(table);
  v1::ProbeTarget* t = u.mutable_probe_plan()->add_targets();
  t->set_accelerator("acc");
  t->set_listener("web");
  t->set_endpoint_group("eu");
  t->set_address("127.0.0.1");
  t->set_port(port);
  t->mutable_health_check()->set_protocol(v1::HEALTH_CHECK_TCP);
  t->mutable_health_check()->set_interval_ms(100);
  t->mutable_health_check()->set_healthy_threshold(1);
  return u;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class AgentProbeTest : public ::testing::Test {
 protected:
  void wire(Agent& agent) {
    agent.set_sender([this](const v1::AgentMessage& m) {
      std::lock_guard<std::mutex> lock(mu);
      sent.push_back(m);
      cv.notify_all();
      return true;
    });
  }
  // The first probe report that `match` accepts, driving the agent's
  // prober until one comes.
  std::optional<v1::ProbeReport> wait_report(
      Agent& agent, const std::function<bool(const v1::ProbeReport&)>& match) {
    std::optional<v1::ProbeReport> found;
    ProberDriver(*agent.prober(), clock).until([&] {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& m : sent)
        if (m.has_probes() && match(m.probes())) {
          found = m.probes();
          return true;
        }
      return false;
    });
    return found;
  }
  std::optional<v1::PopStatus> last_status() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = sent.rbegin(); it != sent.rend(); ++it)
      if (it->has_status()) return it->status();
    return std::nullopt;
  }
  static bool healthy(const v1::ProbeReport& r) {
    return r.results_size() == 1 && r.results(0).known() && r.results(0).healthy();
  }

  std::mutex mu;
  std::condition_variable cv;
  std::vector<v1::AgentMessage> sent;
  TempDir dir;
  FakeDataplane dataplane;
  FakeClock clock;
};

TEST_F(AgentProbeTest, TheUpdatesPlanIsProbedAndReported) {
  TcpListener listener;
  Agent agent(config_in(dir.path), dataplane, clock);
  wire(agent);
  agent.restore();
  EXPECT_THAT(agent.hello().capabilities(), Contains("probes"));
  EXPECT_THAT(agent.hello().capabilities(), Not(Contains("bgp")));
  ASSERT_TRUE(agent.on_update(update_with_plan(5, sample_table(0), listener.port)).ok());
  auto report = wait_report(agent, healthy);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->results(0).endpoint_group(), "eu");
  EXPECT_GE(report->results(0).rtt_ms(), 0);
}

TEST_F(AgentProbeTest, ThePlanIsTakenEvenWhenTheTableIsRefused) {
  TcpListener listener;
  Agent agent(config_in(dir.path), dataplane, clock);
  wire(agent);
  agent.restore();
  v1::ForwardingTable bad = sample_table(0);
  bad.mutable_listeners(0)->mutable_endpoints(0)->set_address("not-an-address");
  v1::TableAck ack = agent.on_update(update_with_plan(6, bad, listener.port));
  EXPECT_FALSE(ack.ok());
  EXPECT_TRUE(wait_report(agent, healthy));
}

TEST_F(AgentProbeTest, ARestartedAgentProbesFromTheStoredPlan) {
  TcpListener listener;
  {
    Agent agent(config_in(dir.path), dataplane, clock);
    agent.restore();
    ASSERT_TRUE(agent.on_update(update_with_plan(7, sample_table(0), listener.port)).ok());
  }
  // No update this time: the dataplane already runs version 7.
  Agent agent(config_in(dir.path), dataplane, clock);
  wire(agent);
  agent.restore();
  EXPECT_TRUE(wait_report(agent, healthy));
}

TEST_F(AgentProbeTest, ThePlansPeerPopsAreProbedAndReportedBesideTheEndpoints) {
  TcpListener listener;
  // SIN1's echo on another loopback address, the same port as FRA1's.
  uint16_t port = 0;
  {
    MeshProber probe(MeshOptions{.port = 0}, "127.0.0.1", "");
    ASSERT_TRUE(probe.open().ok());
    port = probe.bound_port();
  }
  MeshProber sin(MeshOptions{.port = port}, "127.0.0.2", "");
  ASSERT_TRUE(sin.open().ok());
  sin.start();
  AgentConfig c = config_in(dir.path);
  c.tunnel_source_v4 = "127.0.0.1";
  c.mesh_port = port;
  Agent agent(c, dataplane, clock);
  wire(agent);
  agent.restore();
  ASSERT_NE(agent.mesh(), nullptr);
  ASSERT_TRUE(agent.mesh()->open().ok());
  v1::TableUpdate u = update_with_plan(5, sample_table(0), listener.port);
  v1::PeerTarget* peer = u.mutable_probe_plan()->add_peers();
  peer->set_pop("SIN1");
  peer->set_address("127.0.0.2");
  // The table is refused (a loopback tunnel source), the plan taken all
  // the same, its peers included.
  (void)agent.on_update(u);
  // The agent's mesh runs on the test's clock: its first probe is due
  // within one interval; the reply comes in real time, and only run_due
  // (not called while waiting) could count it lost.
  clock.advance(1100ms);
  agent.mesh()->run_due();
  for (int i = 0; i < 100 && agent.mesh()->snapshot().at(0).sent() == 0; ++i)
    agent.mesh()->poll_io(100ms);
  auto report = wait_report(agent, [](const v1::ProbeReport& r) {
    return healthy(r) && r.peers_size() == 1 && r.peers(0).sent() > 0;
  });
  ASSERT_TRUE(report);
  EXPECT_EQ(report->peers(0).pop(), "SIN1");
  EXPECT_EQ(report->peers(0).address(), "127.0.0.2");
  EXPECT_GE(report->peers(0).rtt_ms(), 0);
  EXPECT_EQ(report->peers(0).loss_percent(), 0);
  EXPECT_EQ(agent.hello().probes().peers_size(), 1);
  sin.stop();
}

TEST_F(AgentProbeTest, NoBirdConfigNoAnnouncement) {
  Agent agent(config_in(dir.path), dataplane);
  wire(agent);
  ASSERT_TRUE(agent.on_update(update_with_plan(8, sample_table(0), 1)).ok());
  agent.tick();
  auto status = last_status();
  ASSERT_TRUE(status);
  EXPECT_FALSE(status->bgp_announced());
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/state/onramp.conf"));
}

class AgentBgpTest : public AgentProbeTest {
 protected:
  AgentConfig bgp_config() {
    AgentConfig c = config_in(dir.path);
    c.probes = false;
    c.bird_config = include;
    c.bird_socket = socket;
    return c;
  }
  std::string include = dir.path + "/onramp.conf";
  std::string socket = dir.path + "/bird.ctl";
};

TEST_F(AgentBgpTest, VipsFollowTheDataplanesHealthAndTheTable) {
  FakeBird bird(socket);
  Agent agent(bgp_config(), dataplane);
  wire(agent);
  EXPECT_THAT(agent.hello().capabilities(), Contains("bgp"));
  // No table yet: the first tick tells BIRD there is nothing to announce.
  agent.tick();
  EXPECT_EQ(bird.commands().size(), 1u);
  EXPECT_THAT(read_file(include), Not(HasSubstr("route")));
  EXPECT_FALSE(last_status()->bgp_announced());

  ASSERT_TRUE(agent.on_update(update_with_plan(9, sample_table(0), 1)).ok());
  agent.tick();
  EXPECT_THAT(read_file(include), HasSubstr("route 203.0.113.10/32 blackhole;"));
  EXPECT_TRUE(last_status()->bgp_announced());
  EXPECT_TRUE(agent.bgp_announced());
  agent.tick();
  EXPECT_EQ(bird.commands().size(), 2u) << "reconfigured although nothing changed";

  // The dataplane dies: withdrawn. It comes back: announced again.
  dataplane.set_up(false);
  agent.tick();
  EXPECT_THAT(read_file(include), Not(HasSubstr("route")));
  EXPECT_FALSE(last_status()->bgp_announced());
  dataplane.set_up(true);
  agent.tick();
  EXPECT_THAT(read_file(include), HasSubstr("route 203.0.113.10/32"));
  EXPECT_TRUE(last_status()->bgp_announced());

  // It answers but says it cannot forward: withdrawn too.
  dataplane.set_healthy(false);
  agent.tick();
  EXPECT_FALSE(last_status()->bgp_announced());
  dataplane.set_healthy(true);
  agent.tick();
  EXPECT_TRUE(last_status()->bgp_announced());

  // A table whose only endpoint is drained: withdrawn.
  v1::ForwardingTable drained = sample_table(0);
  drained.mutable_listeners(0)->mutable_endpoints(0)->set_weight(0);
  ASSERT_TRUE(agent.on_update(update_with_plan(10, drained, 1)).ok());
  agent.tick();
  EXPECT_THAT(read_file(include), Not(HasSubstr("route")));
  EXPECT_FALSE(last_status()->bgp_announced());
  EXPECT_EQ(bird.commands().size(), 7u);
}

TEST_F(AgentBgpTest, ADataplaneOnAnotherTableIsNotAnnouncedUntilItRunsOurs) {
  FakeBird bird(socket);
  Agent agent(bgp_config(), dataplane);
  wire(agent);
  ASSERT_TRUE(agent.on_update(update_with_plan(11, sample_table(0), 1)).ok());
  agent.tick();
  ASSERT_TRUE(agent.bgp_announced());
  // Restarted on some other table, and refusing ours.
  dataplane.restart(3);
  dataplane.reject(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no"));
  agent.tick();
  EXPECT_FALSE(agent.bgp_announced());
  dataplane.reject(grpc::Status::OK);
  agent.tick();
  EXPECT_TRUE(agent.bgp_announced());
}

TEST_F(AgentBgpTest, BirdUnreachableIsRetriedAndStatusSaysNotAnnounced) {
  Agent agent(bgp_config(), dataplane);
  wire(agent);
  ASSERT_TRUE(agent.on_update(update_with_plan(12, sample_table(0), 1)).ok());
  agent.tick();
  EXPECT_FALSE(last_status()->bgp_announced());
  FakeBird bird(socket);
  agent.tick();
  EXPECT_TRUE(last_status()->bgp_announced());
  EXPECT_EQ(bird.commands().size(), 1u);
}

}  // namespace
}  // namespace onramp::agent::test
