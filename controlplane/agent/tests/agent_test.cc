// The agent's logic with a fake dataplane, no controller and a fake clock:
// updates are localised, validated, applied, persisted and ACKed (or
// NACKed); the last good table comes back after an agent or dataplane
// restart. Tests call restore() and tick() themselves; one checks that
// start() runs the first tick at once.
#include "controlplane/agent/agent.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "controlplane/agent/tests/fakes.h"

namespace onramp::agent::test {
namespace {

using ::testing::HasSubstr;

AgentConfig config_in(const std::string& dir) { return fra1_agent_config(dir); }

v1::TableUpdate update(uint64_t version, const std::string& nonce, v1::ForwardingTable table) {
  v1::TableUpdate u;
  u.set_version(version);
  u.set_nonce(nonce);
  *u.mutable_table() = std::move(table);
  return u;
}

class AgentTest : public ::testing::Test {
 protected:
  // Messages the agent sends outside of on_update (status, late ACKs).
  std::vector<v1::AgentMessage> sent;
  std::mutex sent_mu;
  void wire(Agent& agent) {
    agent.set_sender([this](const v1::AgentMessage& m) {
      std::lock_guard<std::mutex> lock(sent_mu);
      sent.push_back(m);
      return true;
    });
  }

  TempDir dir;
  FakeDataplane dataplane;
  FakeClock clock;
};

TEST_F(AgentTest, HelloCarriesIdentityAndTheDataplanesVersion) {
  Agent agent(config_in(dir.path), dataplane);
  dataplane.set_version(7);
  v1::Hello h = agent.hello();
  EXPECT_EQ(h.pop(), "FRA1");
  EXPECT_EQ(h.iata(), "FRA");
  EXPECT_EQ(h.city(), "Frankfurt");
  EXPECT_EQ(h.country(), "DE");
  EXPECT_DOUBLE_EQ(h.latitude(), 50.03);
  EXPECT_DOUBLE_EQ(h.longitude(), 8.57);
  EXPECT_EQ(h.tunnel_source().ipv4(), "192.0.2.1");
  EXPECT_EQ(h.tunnel_source().ipv6(), "2001:db8:f1::1");
  EXPECT_EQ(h.agent_version(), "test");
  EXPECT_EQ(h.applied_version(), 7u);
}

TEST_F(AgentTest, AnUpdateIsLocalisedAppliedPersistedAndAcked) {
  Agent agent(config_in(dir.path), dataplane);
  v1::ForwardingTable table = sample_table(0);
  table.set_next_hop_mac("");  // the controller leaves it to the PoP
  v1::TableAck ack = agent.on_update(update(8, "n-8", table));
  EXPECT_TRUE(ack.ok()) << ack.error();
  EXPECT_EQ(ack.version(), 8u);
  EXPECT_EQ(ack.nonce(), "n-8");
  EXPECT_EQ(ack.error(), "");

  auto applied = dataplane.applied();
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].version(), 8u);
  EXPECT_EQ(applied[0].next_hop_mac(), "02:00:00:00:00:fe");
  EXPECT_EQ(applied[0].tunnel_source().ipv4(), "192.0.2.1");
  EXPECT_EQ(applied[0].tunnel_source().ipv6(), "2001:db8:f1::1");
  EXPECT_EQ(agent.last_good_version(), 8u);

  auto stored = TableStore(dir.path).load();
  ASSERT_TRUE(stored.ok() && *stored) << stored.error();
  EXPECT_EQ((*stored)->ShortDebugString(), applied[0].ShortDebugString());
}

TEST_F(AgentTest, AnUpdateAppliedDuringATickIsNotReappliedByIt) {
  Agent agent(config_in(dir.path), dataplane);
  wire(agent);
  // The tick's health answer (no table) is made just before an update is
  // applied: the tick must not take it for a dataplane that lost its table.
  dataplane.after_next_health(
      [&] { EXPECT_TRUE(agent.on_update(update(3, "n-3", sample_table(0))).ok()); });
  agent.tick();
  EXPECT_EQ(dataplane.applied().size(), 1u);
  agent.tick();  // a fresh answer: version 3 runs, nothing to do
  EXPECT_EQ(dataplane.applied().size(), 1u);
  EXPECT_EQ(agent.last_good_version(), 3u);
}

TEST_F(AgentTest, AnInvalidTableIsNackedAndNotApplied) {
  Agent agent(config_in(dir.path), dataplane);
  ASSERT_TRUE(agent.on_update(update(8, "n-8", sample_table(8))).ok());
  v1::TableAck ack = agent.on_update(update(9, "n-9", sample_table(9, "198.51.100.300")));
  EXPECT_FALSE(ack.ok());
  EXPECT_EQ(ack.version(), 9u);
  EXPECT_EQ(ack.nonce(), "n-9");
  EXPECT_THAT(ack.error(), HasSubstr("table.listeners[0].endpoints[0].address"));
  EXPECT_EQ(dataplane.applied().size(), 1u);
  EXPECT_EQ(agent.last_good_version(), 8u);
  auto stored = TableStore(dir.path).load();
  ASSERT_TRUE(stored.ok() && *stored) << stored.error();
  EXPECT_EQ((*stored)->version(), 8u);
}

TEST_F(AgentTest, ATableTheDataplaneRefusesIsNacked) {
  Agent agent(config_in(dir.path), dataplane);
  dataplane.reject(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "table.mtu: too small"));
  v1::TableAck ack = agent.on_update(update(3, "n-3", sample_table(3)));
  EXPECT_FALSE(ack.ok());
  EXPECT_EQ(ack.error(), "table.mtu: too small");
  EXPECT_EQ(agent.last_good_version(), 0u);
  auto stored = TableStore(dir.path).load();
  ASSERT_TRUE(stored.ok()) << stored.error();
  EXPECT_FALSE(*stored);
}

TEST_F(AgentTest, AnUpdateWaitsForAnUnreachableDataplaneThenIsAcked) {
  Agent agent(config_in(dir.path), dataplane, clock);
  wire(agent);
  dataplane.set_up(false);
  v1::TableAck ack = agent.on_update(update(5, "n-5", sample_table(5)));
  EXPECT_FALSE(ack.ok());
  EXPECT_THAT(ack.error(), HasSubstr("dataplane unavailable"));
  agent.tick();  // still down: nothing
  EXPECT_TRUE(dataplane.applied().empty());

  clock.advance(250ms);
  dataplane.set_up(true);
  agent.tick();
  ASSERT_EQ(dataplane.applied().size(), 1u);
  EXPECT_EQ(agent.last_good_version(), 5u);
  std::lock_guard<std::mutex> lock(sent_mu);
  auto late = std::find_if(sent.begin(), sent.end(), [](auto& m) { return m.has_ack(); });
  ASSERT_NE(late, sent.end());
  EXPECT_TRUE(late->ack().ok());
  EXPECT_EQ(late->ack().version(), 5u);
  EXPECT_EQ(late->ack().nonce(), "n-5");
  EXPECT_EQ(late->ack().apply_ms(), 250u) << "from the update to its late ACK";
}

TEST_F(AgentTest, RestartReappliesThePersistedTableWithNoController) {
  {
    Agent first(config_in(dir.path), dataplane);
    ASSERT_TRUE(first.on_update(update(8, "n-8", sample_table(8))).ok());
  }
  FakeDataplane fresh;  // a dataplane that came up on its own file, version 1
  fresh.set_version(1);
  Agent agent(config_in(dir.path), fresh);
  agent.start();
  ASSERT_TRUE(fresh.wait_applied(1));
  EXPECT_EQ(fresh.applied()[0].version(), 8u);
  EXPECT_EQ(fresh.applied()[0].next_hop_mac(), "02:00:00:00:00:fe");
  EXPECT_EQ(agent.last_good_version(), 8u);
  agent.stop();
  EXPECT_EQ(fresh.applied().size(), 1u);  // once, then the versions agree
}

TEST_F(AgentTest, NothingIsAppliedWhenTheDataplaneAlreadyRunsTheLastGoodTable) {
  {
    Agent first(config_in(dir.path), dataplane);
    ASSERT_TRUE(first.on_update(update(8, "n-8", sample_table(8))).ok());
  }
  Agent agent(config_in(dir.path), dataplane, clock);
  agent.restore();
  EXPECT_EQ(agent.last_good_version(), 8u);
  agent.tick();
  agent.tick();
  EXPECT_EQ(dataplane.applied().size(), 1u);
}

TEST_F(AgentTest, ADataplaneRestartIsNoticedAndTheLastGoodTableReapplied) {
  Agent agent(config_in(dir.path), dataplane);
  wire(agent);
  ASSERT_TRUE(agent.on_update(update(8, "n-8", sample_table(8))).ok());
  agent.tick();
  EXPECT_EQ(dataplane.applied().size(), 1u);

  // Back with its own file: another version.
  dataplane.restart(1);
  agent.tick();
  ASSERT_EQ(dataplane.applied().size(), 2u);
  EXPECT_EQ(dataplane.applied()[1].version(), 8u);
  EXPECT_EQ(dataplane.version(), 8u);

  // Back with a file of the same version number: its uptime gives it away.
  agent.tick();
  dataplane.restart(8);
  agent.tick();
  ASSERT_EQ(dataplane.applied().size(), 3u);
  agent.tick();
  EXPECT_EQ(dataplane.applied().size(), 3u);

  // Down for a while: nothing to do, status says unhealthy.
  dataplane.set_up(false);
  agent.tick();
  EXPECT_EQ(dataplane.applied().size(), 3u);
  std::lock_guard<std::mutex> lock(sent_mu);
  ASSERT_TRUE(sent.back().has_status());
  EXPECT_FALSE(sent.back().status().dataplane_healthy());
}

TEST_F(AgentTest, StatusCarriesHealthAndCounters) {
  Agent agent(config_in(dir.path), dataplane);
  wire(agent);
  agent.tick();
  std::lock_guard<std::mutex> lock(sent_mu);
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(sent[0].has_status());
  EXPECT_TRUE(sent[0].status().dataplane_healthy());
  EXPECT_EQ(sent[0].status().stats().forwarded(), 42u);
  EXPECT_GT(sent[0].status().time_ms(), 0);
}

TEST_F(AgentTest, AStoredTableThatNoLongerValidatesIsIgnored) {
  std::filesystem::create_directories(dir.path);
  std::ofstream(dir.path + "/last_good_table.textproto") << "version: 3\nbogus: 1\n";
  Agent agent(config_in(dir.path), dataplane, clock);
  agent.restore();
  agent.tick();
  EXPECT_TRUE(dataplane.applied().empty());
  EXPECT_EQ(agent.last_good_version(), 0u);
}

}  // namespace
}  // namespace onramp::agent::test
