// The PoP registry without gRPC: what is pushed to whom and when, and how
// ACKs and NACKs move a PoP's state, across reconnects and restarts.
#include "controlplane/controller/pop_registry.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "common/grpc_limits.h"
#include "common/health_check.h"
#include "common/log.h"
#include "controlplane/controller/sqlite_store.h"
#include "controlplane/controller/status_board.h"
#include "controlplane/controller/tests/fixtures.h"
#include "controlplane/controller/validation.h"

namespace onramp::ctl::test {
namespace {

class FakeSink : public TableSink {
 public:
  void send(v1::ControllerMessage m) override { sent.push_back(m.update()); }
  void close(const grpc::Status& s) override { closed = s; }
  std::vector<v1::TableUpdate> sent;
  std::optional<grpc::Status> closed;
};

v1::Hello hello(const std::string& pop, uint64_t applied = 0, const std::string& digest = "",
                uint64_t inputs = 0) {
  v1::Hello h;
  h.set_applied_digest(digest);
  h.set_route_inputs_version(inputs);
  h.set_pop(pop);
  h.set_iata(pop.substr(0, 3));
  h.set_city("Somewhere");
  h.mutable_tunnel_source()->set_ipv4("192.0.2.1");
  h.set_applied_version(applied);
  return h;
}

v1::TableAck ack(const v1::TableUpdate& u, bool ok = true, const std::string& error = "") {
  v1::TableAck a;
  a.set_version(u.version());
  a.set_nonce(u.nonce());
  a.set_ok(ok);
  a.set_error(error);
  return a;
}

class PopRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_level(log::Level::off);
    reopen();
    put(accelerator("web", {"203.0.113.10"}));
    put(listener("web", "http", {{80, 80}}));
    put(group("web", "http", "eu", "eu-central", 100));
    put(endpoint("web", "http", "eu", "198.51.100.1", 128));
  }
  void TearDown() override { log::set_level(log::Level::info); }

  void reopen() {
    registry_.reset();
    store_.reset();
    auto opened = SqliteStore::open(dir_.file("c.db"), {.init = true});
    ASSERT_TRUE(opened.ok()) << opened.error();
    store_ = std::move(*opened);
    registry_ = std::make_unique<PopRegistry>(*store_, computer_);
    registry_->load();
  }
  void put(Resource r) {
    ConfigChange ch;
    ch.puts.push_back(std::move(r));
    ASSERT_EQ(store_->commit(ch, store_->snapshot()->version).outcome,
              CommitResult::Outcome::committed);
  }
  // FRA1 (tunnel source 192.0.2.1) and SIN1 (192.0.2.2) connected, both
  // with a healthy dataplane and the VIPs announced.
  std::pair<std::shared_ptr<FakeSink>, std::shared_ptr<FakeSink>> fra_and_sin_up() {
    auto fra = std::make_shared<FakeSink>();
    auto sin = std::make_shared<FakeSink>();
    v1::Hello sin_hello = hello("SIN1");
    sin_hello.mutable_tunnel_source()->set_ipv4("192.0.2.2");
    EXPECT_TRUE(registry_->hello(fra, "", hello("FRA1")).ok());
    EXPECT_TRUE(registry_->hello(sin, "", sin_hello).ok());
    v1::PopStatus up;
    up.set_dataplane_healthy(true);
    up.set_bgp_announced(true);
    registry_->status(fra.get(), "FRA1", up);
    registry_->status(sin.get(), "SIN1", up);
    return {fra, sin};
  }
  v1::Pop pop(const std::string& id) {
    auto all = registry_->list_pops();
    for (const auto& p : all.pops())
      if (p.id() == id) return p;
    ADD_FAILURE() << id << " not listed";
    return {};
  }

  TempDir dir_;
  RouteComputer computer_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<PopRegistry> registry_;
};

TEST_F(PopRegistryTest, HelloGetsTheTableAndAckMovesTheAppliedVersion) {
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  ASSERT_EQ(sink->sent.size(), 1u);
  const v1::TableUpdate u = sink->sent[0];
  EXPECT_EQ(u.version(), 4u);
  EXPECT_EQ(u.table().version(), 4u);
  EXPECT_EQ(u.table().pop(), "FRA1");
  EXPECT_EQ(u.table().tunnel_source().ipv4(), "192.0.2.1");
  EXPECT_EQ(u.nonce().size(), 32u);
  EXPECT_GT(u.created_ms(), 0);
  EXPECT_EQ(u.probe_plan().targets_size(), 1);
  EXPECT_EQ(pop("FRA1").state(), v1::POP_CONNECTED);
  EXPECT_EQ(pop("FRA1").sent_version(), 4u);
  EXPECT_EQ(pop("FRA1").applied_version(), 0u);

  registry_->ack(sink.get(), "FRA1", ack(u));
  EXPECT_EQ(pop("FRA1").applied_version(), 4u);

  // Nothing changed: nothing is pushed.
  registry_->push_all();
  EXPECT_EQ(sink->sent.size(), 1u);

  // A change that does not touch FRA1's table is not pushed either.
  put(accelerator("off", {"203.0.113.20"}, false));
  registry_->push_all();
  EXPECT_EQ(sink->sent.size(), 1u);

  put(endpoint("web", "http", "eu", "198.51.100.2", 128));
  registry_->push_all();
  ASSERT_EQ(sink->sent.size(), 2u);
  EXPECT_EQ(sink->sent[1].version(), 6u);
  EXPECT_NE(sink->sent[1].nonce(), u.nonce());

  registry_->detach(sink.get(), "FRA1");
  EXPECT_EQ(pop("FRA1").state(), v1::POP_DISCONNECTED);
}

// Hardening review, finding 8: every trace rebuilt the PoP's whole table
// (0.7-1.5 s at 1004 listeners) under the registry's lock. A trace now reads
// the table the PoP runs, built once per content.
TEST_F(PopRegistryTest, TracesShareOneBuildOfTheTableUntilItsContentChanges) {
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  ASSERT_EQ(sink->sent.size(), 1u);
  auto first = registry_->trace_view("FRA1");
  ASSERT_TRUE(first.ok()) << first.error();
  auto again = registry_->trace_view("FRA1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(first->table.get(), again->table.get()) << "built twice";
  EXPECT_EQ(first->version, sink->sent[0].version());
  ASSERT_TRUE(first->routes);
  ASSERT_EQ(first->routes->size(), 1u);
  EXPECT_EQ((*first->routes)[0].listener(), "http");

  put(endpoint("web", "http", "eu", "198.51.100.2", 128));
  registry_->push_all();
  auto changed = registry_->trace_view("FRA1");
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->table.get(), first->table.get()) << "a new content needs a new build";
  EXPECT_GT(changed->version, first->version);
  EXPECT_FALSE(registry_->trace_view("XXX1").ok());
}

TEST_F(PopRegistryTest, NackKeepsTheLastGoodVersionAndIsNotRetried) {
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[0]));
  put(endpoint("web", "http", "eu", "198.51.100.2", 128));
  registry_->push_all();
  ASSERT_EQ(sink->sent.size(), 2u);
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[1], false, "no route to 198.51.100.2"));
  v1::Pop p = pop("FRA1");
  EXPECT_EQ(p.applied_version(), 4u);
  EXPECT_EQ(p.nacked_version(), 5u);
  EXPECT_EQ(p.nack_error(), "no route to 198.51.100.2");

  // Reconnecting does not bring the refused table back.
  registry_->detach(sink.get(), "FRA1");
  auto again = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(again, "", hello("FRA1", 4)).ok());
  EXPECT_TRUE(again->sent.empty());
  registry_->push_all();
  EXPECT_TRUE(again->sent.empty());

  // A configuration change does, and its ACK clears the NACK.
  put(endpoint("web", "http", "eu", "198.51.100.3", 128));
  registry_->push_all();
  ASSERT_EQ(again->sent.size(), 1u);
  EXPECT_EQ(again->sent[0].version(), 6u);
  registry_->ack(again.get(), "FRA1", ack(again->sent[0]));
  p = pop("FRA1");
  EXPECT_EQ(p.applied_version(), 6u);
  EXPECT_EQ(p.nacked_version(), 0u);
  EXPECT_EQ(p.nack_error(), "");
}

// Chaos suite, dataplane kill: a table sent while the PoP's dataplane was
// down was NACKed ("applied when it answers"), then ACKed with the same
// nonce once applied; the controller had forgotten the nonce, ignored the
// ACK, and the PoP never counted as in sync again.
TEST_F(PopRegistryTest, LateAckAfterANackOfTheSameNonceCounts) {
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[0]));
  put(endpoint("web", "http", "eu", "198.51.100.2", 128));
  registry_->push_all();
  ASSERT_EQ(sink->sent.size(), 2u);
  const v1::TableUpdate waiting = sink->sent[1];
  registry_->ack(sink.get(), "FRA1",
                 ack(waiting, false,
                     "dataplane unavailable: connection refused; the table will be applied "
                     "when it answers"));
  EXPECT_EQ(pop("FRA1").nacked_version(), waiting.version());
  EXPECT_EQ(pop("FRA1").applied_version(), 4u);

  registry_->ack(sink.get(), "FRA1", ack(waiting));
  v1::Pop p = pop("FRA1");
  EXPECT_EQ(p.applied_version(), waiting.version());
  EXPECT_EQ(p.sent_version(), waiting.version());
  EXPECT_EQ(p.nacked_version(), 0u);
  EXPECT_EQ(p.nack_error(), "");
}

TEST_F(PopRegistryTest, IdentityMustMatchHello) {
  auto sink = std::make_shared<FakeSink>();
  auto s = registry_->hello(sink, "FRA1", hello("SIN1"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("SIN1"), std::string::npos);
  EXPECT_TRUE(sink->sent.empty());
  EXPECT_TRUE(registry_->list_pops().pops().empty());
  EXPECT_EQ(registry_->hello(sink, "", hello("fra1")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  auto bad = hello("FRA1");
  bad.mutable_tunnel_source()->set_ipv4("2001:db8::1");
  EXPECT_EQ(registry_->hello(sink, "FRA1", bad).error_message(),
            "hello.tunnel_source.ipv4: \"2001:db8::1\" is not an IPv4 address");
}

TEST_F(PopRegistryTest, UnknownNonceIsIgnored) {
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  v1::TableAck a = ack(sink->sent[0]);
  a.set_nonce("not-ours");
  registry_->ack(sink.get(), "FRA1", a);
  EXPECT_EQ(pop("FRA1").applied_version(), 0u);
}

TEST_F(PopRegistryTest, ANewSessionReplacesTheOld) {
  auto first = std::make_shared<FakeSink>();
  auto second = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(first, "", hello("FRA1")).ok());
  ASSERT_TRUE(registry_->hello(second, "", hello("FRA1")).ok());
  ASSERT_TRUE(first->closed);
  EXPECT_EQ(first->closed->error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(second->sent.size(), 1u);
  // The old session's late messages and end change nothing.
  registry_->ack(first.get(), "FRA1", ack(first->sent[0]));
  EXPECT_EQ(pop("FRA1").applied_version(), 0u);
  registry_->detach(first.get(), "FRA1");
  EXPECT_EQ(pop("FRA1").state(), v1::POP_CONNECTED);
}

TEST_F(PopRegistryTest, ARestartedControllerDoesNotResendWhatAPopRuns) {
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[0]));
  // Unrelated mutations move the configuration version past the PoP's.
  put(accelerator("off", {"203.0.113.20"}, false));
  ASSERT_EQ(registry_->flush().message(), "");
  reopen();
  EXPECT_EQ(pop("FRA1").state(), v1::POP_DISCONNECTED);
  EXPECT_EQ(pop("FRA1").applied_version(), 4u);
  auto back = std::make_shared<FakeSink>();
  const std::string digest = content_digest(sink->sent[0].table(), sink->sent[0].probe_plan());
  ASSERT_TRUE(registry_->hello(back, "", hello("FRA1", 4, digest, 5)).ok());
  EXPECT_TRUE(back->sent.empty());
  // One whose route inputs are from before the last change gets the same
  // table again with current inputs: the restarted controller cannot know
  // that the change left the inputs as they were.
  auto behind = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(behind, "", hello("FRA1", 4, digest, 4)).ok());
  ASSERT_EQ(behind->sent.size(), 1u);
  EXPECT_EQ(behind->sent[0].version(), 4u);
  EXPECT_EQ(behind->sent[0].route_inputs().config_version(), 5u);
  // An agent that lost its table gets it again.
  auto fresh = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(fresh, "", hello("FRA1", 0)).ok());
  ASSERT_EQ(fresh->sent.size(), 1u);
  EXPECT_EQ(fresh->sent[0].version(), 4u);
}

// Issue 12 finding 4: a PoP whose last good table was cut in half reported
// the version it claimed, and the controller, comparing versions only, sent
// nothing. The content digest counts too: another digest, or none, at the
// same version gets the table again.
TEST_F(PopRegistryTest, Finding4TheSameVersionWithAnotherDigestOrNoneIsSentAgain) {
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  const v1::TableUpdate u = sink->sent[0];
  registry_->ack(sink.get(), "FRA1", ack(u));
  const std::string digest = content_digest(u.table(), u.probe_plan());
  ASSERT_EQ(registry_->flush().message(), "");
  for (bool restart : {false, true}) {
    if (restart) reopen();
    auto same = std::make_shared<FakeSink>();
    ASSERT_TRUE(registry_->hello(same, "", hello("FRA1", 4, digest, 4)).ok());
    EXPECT_TRUE(same->sent.empty()) << "restart " << restart;

    auto other = std::make_shared<FakeSink>();
    ASSERT_TRUE(registry_->hello(other, "", hello("FRA1", 4, "00000000deadbeef")).ok());
    ASSERT_EQ(other->sent.size(), 1u) << "restart " << restart;
    EXPECT_EQ(content_digest(other->sent[0].table(), other->sent[0].probe_plan()), digest);
    registry_->ack(other.get(), "FRA1", ack(other->sent[0]));

    auto none = std::make_shared<FakeSink>();
    ASSERT_TRUE(registry_->hello(none, "", hello("FRA1", other->sent[0].version())).ok());
    ASSERT_EQ(none->sent.size(), 1u) << "restart " << restart;
    registry_->ack(none.get(), "FRA1", ack(none->sent[0]));
    EXPECT_EQ(pop("FRA1").applied_version(), none->sent[0].version());
    ASSERT_EQ(registry_->flush().message(), "");
  }
}

// Issue 12 finding 2: every update names the store and epoch; adopt marks
// the PoP, re-sends what it refused with the flag, and the ACK clears it.
TEST_F(PopRegistryTest, Finding2UpdatesCarryTheStoreAndAdoptResendsWhatWasRefused) {
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  ASSERT_EQ(sink->sent.size(), 1u);
  EXPECT_EQ(sink->sent[0].store_id(), store_->identity().store_id);
  EXPECT_EQ(sink->sent[0].store_id().size(), 16u);
  EXPECT_EQ(sink->sent[0].epoch(), 1u);
  EXPECT_FALSE(sink->sent[0].adopt());
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[0], false, "table from another store refused"));
  registry_->push_all();
  EXPECT_EQ(sink->sent.size(), 1u);  // not retried on its own

  EXPECT_FALSE(registry_->adopt("NRT1").ok());
  auto adopted = registry_->adopt("FRA1");
  ASSERT_TRUE(adopted.ok()) << adopted.error();
  EXPECT_TRUE(adopted->adopt_pending());
  EXPECT_TRUE(pop("FRA1").adopt_pending());
  ASSERT_EQ(sink->sent.size(), 2u);
  EXPECT_TRUE(sink->sent[1].adopt());
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[1]));
  EXPECT_FALSE(pop("FRA1").adopt_pending());
  EXPECT_EQ(pop("FRA1").nacked_version(), 0u);
  EXPECT_EQ(pop("FRA1").applied_version(), sink->sent[1].version());
  put(endpoint("web", "http", "eu", "198.51.100.2", 128));
  registry_->push_all();
  ASSERT_EQ(sink->sent.size(), 3u);
  EXPECT_FALSE(sink->sent[2].adopt());
}

TEST_F(PopRegistryTest, NewTunnelSourcesGetANewVersion) {
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[0]));
  auto moved = hello("FRA1", 4);
  moved.mutable_tunnel_source()->set_ipv4("192.0.2.99");
  auto again = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(again, "", moved).ok());
  ASSERT_EQ(again->sent.size(), 1u);
  EXPECT_EQ(again->sent[0].table().tunnel_source().ipv4(), "192.0.2.99");
  EXPECT_GT(again->sent[0].version(), 4u);  // one version, one table
}

TEST_F(PopRegistryTest, StatusFeedsStats) {
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  v1::PopStatus st;
  st.set_dataplane_healthy(true);
  st.set_bgp_announced(true);
  st.mutable_stats()->set_rx_packets(42);
  st.set_time_ms(1234);
  registry_->status(sink.get(), "FRA1", st);
  auto stats = registry_->stats("");
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].pop(), "FRA1");
  EXPECT_EQ(stats[0].stats().rx_packets(), 42u);
  EXPECT_EQ(stats[0].reported_ms(), 1234);
  EXPECT_TRUE(pop("FRA1").dataplane_healthy());
  EXPECT_TRUE(pop("FRA1").bgp_announced());
}

v1::ProbeReport probe_report(std::vector<std::tuple<std::string, std::string, double, bool>> rows) {
  v1::ProbeReport r;
  for (auto& [group, address, rtt, healthy] : rows) {
    auto* x = r.add_results();
    x->set_accelerator("web");
    x->set_listener("http");
    x->set_endpoint_group(group);
    x->set_address(address);
    x->set_rtt_ms(rtt);
    x->set_healthy(healthy);
    x->set_known(true);
    x->set_consecutive(3);
    if (!healthy) x->set_last_error("connect: refused");
  }
  return r;
}

const v1::EndpointHealth* find_health(const v1::GetHealthResponse& h, const std::string& pop,
                                      const std::string& address) {
  for (const auto& e : h.endpoints())
    if (e.pop() == pop && e.address() == address) return &e;
  return nullptr;
}

TEST_F(PopRegistryTest, EveryConnectedPopProbesTheOthersAndTheMatrixShowsThem) {
  auto fra = std::make_shared<FakeSink>();
  auto sin = std::make_shared<FakeSink>();
  v1::Hello sin_hello = hello("SIN1");
  sin_hello.mutable_tunnel_source()->set_ipv4("192.0.2.2");
  ASSERT_TRUE(registry_->hello(fra, "", hello("FRA1")).ok());
  ASSERT_EQ(fra->sent.back().probe_plan().peers_size(), 0);
  ASSERT_TRUE(registry_->hello(sin, "", sin_hello).ok());
  // Both plans name the other PoP, in the same push as the connect.
  ASSERT_EQ(fra->sent.back().probe_plan().peers_size(), 1);
  EXPECT_EQ(fra->sent.back().probe_plan().peers(0).pop(), "SIN1");
  EXPECT_EQ(fra->sent.back().probe_plan().peers(0).address(), "192.0.2.2");
  EXPECT_EQ(fra->sent.back().route_inputs().peers(0).pop(), "SIN1");
  ASSERT_EQ(sin->sent.back().probe_plan().peers_size(), 1);
  EXPECT_EQ(sin->sent.back().probe_plan().peers(0).address(), "192.0.2.1");

  v1::ProbeReport report = probe_report({{"eu", "198.51.100.1", 30, true}});
  auto* peer = report.add_peers();
  peer->set_pop("SIN1");
  peer->set_address("192.0.2.2");
  peer->set_rtt_ms(151.5);
  peer->set_jitter_ms(1.25);
  peer->set_loss_percent(10);
  peer->set_sent(30);
  peer->set_down(true);
  registry_->probes(fra.get(), "FRA1", report);
  registry_->probes(sin.get(), "SIN1", probe_report({{"eu", "198.51.100.1", 40, true}}));
  v1::GetPopMatrixResponse m = registry_->matrix();
  ASSERT_EQ(m.paths_size(), 1);
  EXPECT_EQ(m.paths(0).from(), "FRA1");
  EXPECT_EQ(m.paths(0).to(), "SIN1");
  EXPECT_DOUBLE_EQ(m.paths(0).rtt_ms(), 151.5);
  EXPECT_DOUBLE_EQ(m.paths(0).jitter_ms(), 1.25);
  EXPECT_DOUBLE_EQ(m.paths(0).loss_percent(), 10);
  EXPECT_EQ(m.paths(0).sent(), 30u);
  EXPECT_TRUE(m.paths(0).down());
  ASSERT_EQ(m.regions_size(), 2);
  EXPECT_EQ(m.regions(0).pop(), "FRA1");
  EXPECT_EQ(m.regions(0).region(), "eu-central");
  EXPECT_DOUBLE_EQ(m.regions(0).rtt_ms(), 30);
  EXPECT_DOUBLE_EQ(m.regions(1).rtt_ms(), 40);

  // SIN1's session ends: the matrix forgets SIN1's rows, but FRA1's table
  // stays as it is (SIN1 may still forward; its probes say so), so PoPs
  // coming and going, as after a controller restart, re-send no table.
  size_t before = fra->sent.size();
  registry_->detach(sin.get(), "SIN1");
  EXPECT_EQ(fra->sent.size(), before);
  EXPECT_EQ(fra->sent.back().probe_plan().peers_size(), 1);
  m = registry_->matrix();
  for (const v1::PopRegionRtt& r : m.regions()) EXPECT_NE(r.pop(), "SIN1");
}

TEST_F(PopRegistryTest, ARelayReachesTheTableAndItsFailureFallsBackInTheSamePush) {
  put(group("web", "http", "ap", "ap-southeast", 100));
  put(endpoint("web", "http", "ap", "198.51.100.2", 128));
  auto [fra, sin] = fra_and_sin_up();
  // Every PoP accepts relayed packets from the others.
  ASSERT_EQ(sin->sent.back().table().relay_peers_size(), 1);
  EXPECT_EQ(sin->sent.back().table().relay_peers(0), "192.0.2.1");

  registry_->probes(
      sin.get(), "SIN1",
      probe_report({{"eu", "198.51.100.1", 150, true}, {"ap", "198.51.100.2", 2.1, true}}));
  v1::ProbeReport fra_report =
      probe_report({{"eu", "198.51.100.1", 2, true}, {"ap", "198.51.100.2", 151, true}});
  auto* peer = fra_report.add_peers();
  peer->set_pop("SIN1");
  peer->set_rtt_ms(45.2);
  for (uint32_t i = 0; i < computer_.policy().rounds; ++i)
    registry_->probes(fra.get(), "FRA1", fra_report);
  auto relay_of = [](const v1::TableUpdate& u, const std::string& address) {
    for (const auto& e : u.table().listeners(0).endpoints())
      if (e.address() == address) return e.relay();
    return std::string("?");
  };
  ASSERT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "192.0.2.2");
  EXPECT_EQ(relay_of(fra->sent.back(), "198.51.100.1"), "");
  auto view = registry_->view("FRA1");
  ASSERT_TRUE(view.ok());
  bool explained = false;
  for (const auto& g : view->routes.listeners[0].groups())
    if (g.endpoint_group() == "ap")
      explained = g.path_reason() == "via SIN1: 45.2 + 2.1 ms beats direct 151.0 ms by 69 %";
  EXPECT_TRUE(explained);

  // SIN1 withdraws BGP: FRA1 is sent a direct table by that very status.
  size_t before = fra->sent.size();
  v1::PopStatus sin_status;
  sin_status.set_dataplane_healthy(true);
  sin_status.set_bgp_announced(false);
  registry_->status(sin.get(), "SIN1", sin_status);
  ASSERT_EQ(fra->sent.size(), before + 1);
  EXPECT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "");

  // Back after FRA1's rounds; then SIN1's own report loses the group:
  // FRA1 falls back in the push SIN1's report causes.
  sin_status.set_bgp_announced(true);
  registry_->status(sin.get(), "SIN1", sin_status);
  for (uint32_t i = 0; i < computer_.policy().rounds; ++i)
    registry_->probes(fra.get(), "FRA1", fra_report);
  ASSERT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "192.0.2.2");
  before = fra->sent.size();
  registry_->probes(
      sin.get(), "SIN1",
      probe_report({{"eu", "198.51.100.1", 150, true}, {"ap", "198.51.100.2", 2.1, false}}));
  ASSERT_EQ(fra->sent.size(), before + 1);
  EXPECT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "");

  // Relaying off for the accelerator: direct, whatever the matrix says.
  registry_->probes(
      sin.get(), "SIN1",
      probe_report({{"eu", "198.51.100.1", 150, true}, {"ap", "198.51.100.2", 2.1, true}}));
  for (uint32_t i = 0; i < computer_.policy().rounds; ++i)
    registry_->probes(fra.get(), "FRA1", fra_report);
  ASSERT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "192.0.2.2");
  v1::Accelerator off = accelerator("web", {"203.0.113.10"});
  off.set_relay_off(true);
  put(off);
  registry_->push_all();
  EXPECT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "");
}

TEST_F(PopRegistryTest, OneReportThatChangesTwoPopsTablesCommitsOneVersionBump) {
  put(group("web", "http", "ap", "ap-southeast", 100));
  put(endpoint("web", "http", "ap", "198.51.100.2", 128));
  auto [fra, sin] = fra_and_sin_up();
  registry_->probes(
      sin.get(), "SIN1",
      probe_report({{"eu", "198.51.100.1", 150, true}, {"ap", "198.51.100.2", 2.1, true}}));
  v1::ProbeReport fra_report =
      probe_report({{"eu", "198.51.100.1", 2, true}, {"ap", "198.51.100.2", 151, true}});
  auto* peer = fra_report.add_peers();
  peer->set_pop("SIN1");
  peer->set_rtt_ms(45.2);
  for (uint32_t i = 0; i < computer_.policy().rounds; ++i)
    registry_->probes(fra.get(), "FRA1", fra_report);
  ASSERT_EQ(fra->sent.back().table().listeners(0).endpoints(0).relay(), "192.0.2.2");
  // A configuration change gives both PoPs a table of the newest version;
  // then SIN1's report that loses "ap" changes both tables. One bump names
  // both: the second PoP takes the version the first one's commit made,
  // which it never had.
  put(endpoint("web", "http", "eu", "198.51.100.3", 128));
  registry_->push_all();
  const uint64_t version = store_->snapshot()->version;
  ASSERT_EQ(fra->sent.back().version(), version);
  ASSERT_EQ(sin->sent.back().version(), version);
  size_t fra_sent = fra->sent.size(), sin_sent = sin->sent.size();
  registry_->probes(
      sin.get(), "SIN1",
      probe_report({{"eu", "198.51.100.1", 150, true}, {"ap", "198.51.100.2", 2.1, false}}));
  ASSERT_EQ(fra->sent.size(), fra_sent + 1);
  ASSERT_EQ(sin->sent.size(), sin_sent + 1);
  EXPECT_EQ(store_->snapshot()->version, version + 1);
  EXPECT_EQ(fra->sent.back().version(), version + 1);
  EXPECT_EQ(sin->sent.back().version(), version + 1);
}

TEST_F(PopRegistryTest, ContentThatComesBackBeforeTheAckGetsANewVersionNotTheOldOne) {
  // Found by controlplane-end-to-end: a PoP's content went back to what it
  // had applied before it ACKed a newer table, and was sent under that older
  // version, which the agent refused as taking it backwards. A verdict that
  // flips and flips back before the ACK does it.
  put(endpoint("web", "http", "eu", "198.51.100.3", 128));
  auto fra = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(fra, "", hello("FRA1")).ok());
  const v1::ProbeReport both_up =
      probe_report({{"eu", "198.51.100.1", 30, true}, {"eu", "198.51.100.3", 30, true}});
  const v1::ProbeReport one_down =
      probe_report({{"eu", "198.51.100.1", 30, true}, {"eu", "198.51.100.3", 30, false}});
  registry_->probes(fra.get(), "FRA1", both_up);
  registry_->ack(fra.get(), "FRA1", ack(fra->sent.back()));
  const v1::TableUpdate applied = fra->sent.back();
  registry_->probes(fra.get(), "FRA1", one_down);
  ASSERT_GT(fra->sent.back().version(), applied.version());  // not ACKed yet
  const uint64_t newer = fra->sent.back().version();
  registry_->probes(fra.get(), "FRA1", both_up);
  // The applied content again, under a version above both.
  v1::ForwardingTable again = fra->sent.back().table();
  v1::ForwardingTable was = applied.table();
  again.clear_version();
  was.clear_version();
  EXPECT_EQ(again.SerializeAsString(), was.SerializeAsString());
  EXPECT_GT(fra->sent.back().version(), newer);
  registry_->ack(fra.get(), "FRA1", ack(fra->sent[fra->sent.size() - 2]));
  registry_->ack(fra.get(), "FRA1", ack(fra->sent.back()));
  EXPECT_EQ(pop("FRA1").applied_version(), pop("FRA1").sent_version());
}

TEST_F(PopRegistryTest, AVerdictChangePushesToThatPopOnly) {
  put(group("web", "http", "us", "us-east", 100));
  put(endpoint("web", "http", "us", "198.51.100.2", 128));
  auto fra = std::make_shared<FakeSink>();
  auto sin = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(fra, "", hello("FRA1")).ok());
  ASSERT_TRUE(registry_->hello(sin, "", hello("SIN1")).ok());
  // FRA1 gets a second plan that names SIN1 as its mesh peer.
  ASSERT_EQ(fra->sent.size(), 2u);
  ASSERT_EQ(sin->sent.size(), 1u);
  fra->sent.erase(fra->sent.begin());
  registry_->ack(fra.get(), "FRA1", ack(fra->sent[0]));
  registry_->ack(sin.get(), "SIN1", ack(sin->sent[0]));

  // First RTTs: us is nearer from both; the tables change (us takes all).
  registry_->probes(
      fra.get(), "FRA1",
      probe_report({{"eu", "198.51.100.1", 30, true}, {"us", "198.51.100.2", 10, true}}));
  registry_->probes(
      sin.get(), "SIN1",
      probe_report({{"eu", "198.51.100.1", 30, true}, {"us", "198.51.100.2", 10, true}}));
  ASSERT_EQ(fra->sent.size(), 2u);
  ASSERT_EQ(sin->sent.size(), 2u);
  registry_->ack(fra.get(), "FRA1", ack(fra->sent[1]));
  registry_->ack(sin.get(), "SIN1", ack(sin->sent[1]));
  uint64_t fra_version = fra->sent[1].version();

  // RTT jitter only: recomputed, same content, nothing sent.
  registry_->probes(
      fra.get(), "FRA1",
      probe_report({{"eu", "198.51.100.1", 33, true}, {"us", "198.51.100.2", 9, true}}));
  EXPECT_EQ(fra->sent.size(), 2u);

  // FRA1 loses us: a new table, with a new version, to FRA1 alone.
  registry_->probes(
      fra.get(), "FRA1",
      probe_report({{"eu", "198.51.100.1", 30, true}, {"us", "198.51.100.2", 10, false}}));
  ASSERT_EQ(fra->sent.size(), 3u);
  EXPECT_EQ(sin->sent.size(), 2u);
  const v1::TableUpdate& u = fra->sent[2];
  EXPECT_GT(u.version(), fra_version);
  EXPECT_EQ(u.table().version(), u.version());
  bool us_unhealthy = false;
  for (const auto& e : u.table().listeners(0).endpoints())
    if (e.address() == "198.51.100.2") us_unhealthy = e.unhealthy();
  EXPECT_TRUE(us_unhealthy);

  // GetRoutes shows the live computation.
  auto view = registry_->view("FRA1");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->routes.table.version(), u.version());
  ASSERT_EQ(view->routes.listeners.size(), 1u);
  EXPECT_EQ(view->routes.listeners[0].groups(0).endpoint_group(), "eu");
  EXPECT_DOUBLE_EQ(view->routes.listeners[0].groups(0).share_percent(), 100.0);
  view = registry_->view("SIN1");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->routes.listeners[0].groups(0).endpoint_group(), "us");

  // Health per PoP.
  v1::GetHealthResponse h;
  ASSERT_TRUE(registry_->health({}, h).ok());
  EXPECT_EQ(h.endpoints_size(), 4);  // 2 endpoints x 2 PoPs
  const v1::EndpointHealth* e = find_health(h, "FRA1", "198.51.100.2");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->state(), v1::HEALTH_STATE_UNHEALTHY);
  EXPECT_EQ(e->last_error(), "connect: refused");
  EXPECT_EQ(e->region(), "us-east");
  EXPECT_EQ(e->consecutive(), 3u);
  EXPECT_GT(e->reported_ms(), 0);
  ASSERT_TRUE(e = find_health(h, "SIN1", "198.51.100.2"));
  EXPECT_EQ(e->state(), v1::HEALTH_STATE_HEALTHY);
  EXPECT_DOUBLE_EQ(e->rtt_ms(), 10);

  // Filters.
  v1::GetHealthRequest only_fra;
  only_fra.set_pop("FRA1");
  h.Clear();
  ASSERT_TRUE(registry_->health(only_fra, h).ok());
  EXPECT_EQ(h.endpoints_size(), 2);
  v1::GetHealthRequest other_listener;
  other_listener.set_listener("dns");
  h.Clear();
  ASSERT_TRUE(registry_->health(other_listener, h).ok());
  EXPECT_EQ(h.endpoints_size(), 0);
  v1::GetHealthRequest nowhere;
  nowhere.set_pop("AMS1");
  EXPECT_EQ(registry_->health(nowhere, h).error_code(), grpc::StatusCode::NOT_FOUND);
  nowhere.Clear();
  nowhere.set_accelerator("nope");
  EXPECT_EQ(registry_->health(nowhere, h).error_code(), grpc::StatusCode::NOT_FOUND);
  // Hardening finding 3: an answer past the message limit asks for a filter.
  h.Clear();
  ASSERT_TRUE(registry_->health({}, h).ok());
  const size_t all = h.ByteSizeLong();
  h.Clear();
  grpc::Status big = registry_->health({}, h, all / 2);
  EXPECT_EQ(big.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(big.error_message(), "the answer would be larger than " + std::to_string(all / 2) +
                                     " bytes; ask for one PoP or one accelerator");
  EXPECT_EQ(h.endpoints_size(), 0);
  EXPECT_TRUE(registry_->health({}, h, all + 64).ok());

  // The session ends: FRA1's health is forgotten; a new session starts UNKNOWN.
  registry_->detach(fra.get(), "FRA1");
  auto again = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(again, "", hello("FRA1", u.version())).ok());
  h.Clear();
  ASSERT_TRUE(registry_->health(only_fra, h).ok());
  ASSERT_TRUE(e = find_health(h, "FRA1", "198.51.100.2"));
  EXPECT_EQ(e->state(), v1::HEALTH_STATE_UNKNOWN);
  EXPECT_LT(e->rtt_ms(), 0);
}

TEST_F(PopRegistryTest, ReportsFromAStaleSessionOrWithoutKeysAreIgnored) {
  auto fra = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(fra, "", hello("FRA1")).ok());
  registry_->ack(fra.get(), "FRA1", ack(fra->sent[0]));
  FakeSink stranger;
  registry_->probes(&stranger, "FRA1", probe_report({{"eu", "198.51.100.1", 30, false}}));
  v1::GetHealthResponse h;
  ASSERT_TRUE(registry_->health({}, h).ok());
  ASSERT_EQ(h.endpoints_size(), 1);
  EXPECT_EQ(h.endpoints(0).state(), v1::HEALTH_STATE_UNKNOWN);
  // A result without an address is dropped; the rest of the report counts.
  v1::ProbeReport r = probe_report({{"eu", "198.51.100.1", 30, false}, {"eu", "", 1, true}});
  registry_->probes(fra.get(), "FRA1", r);
  h.Clear();
  ASSERT_TRUE(registry_->health({}, h).ok());
  ASSERT_EQ(h.endpoints_size(), 1);
  EXPECT_EQ(h.endpoints(0).state(), v1::HEALTH_STATE_UNHEALTHY);
  EXPECT_EQ(fra->sent.size(), 1u);
  // Its only endpoint is down: FRA1 fails open, which does not change the
  // table's content (the endpoint takes every flow either way).
  auto view = registry_->view("FRA1");
  ASSERT_TRUE(view.ok());
  EXPECT_TRUE(view->routes.listeners[0].fail_open());
}

// Static stability, the controller's half: every update carries what its
// table was computed from; an agent that routed on its own computes the same
// table from them with the routing library, and when it says so in its
// Hello the controller, computing the same from the same verdicts, sends
// nothing (no flow moves), also after a restart.
TEST_F(PopRegistryTest, ATableTheAgentComputedItselfIsKeptWhenTheControllerReturns) {
  put(group("web", "http", "us", "us-east", 100));
  put(endpoint("web", "http", "us", "198.51.100.2", 128));
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[0]));
  registry_->probes(
      sink.get(), "FRA1",
      probe_report({{"eu", "198.51.100.1", 30, true}, {"us", "198.51.100.2", 10, true}}));
  ASSERT_EQ(sink->sent.size(), 2u);
  const v1::TableUpdate u = sink->sent[1];
  registry_->ack(sink.get(), "FRA1", ack(u));

  const v1::RouteInputs& in = u.route_inputs();
  EXPECT_EQ(in.pop(), "FRA1");
  EXPECT_EQ(in.tunnel_source().ipv4(), "192.0.2.1");
  EXPECT_EQ(in.accelerators_size(), 1);
  EXPECT_EQ(in.listeners_size(), 1);
  EXPECT_EQ(in.endpoint_groups_size(), 2);
  EXPECT_EQ(in.endpoints_size(), 2);
  ASSERT_EQ(in.memory_size(), 1);
  EXPECT_EQ(in.memory(0).listener(), "web/http");
  EXPECT_EQ(in.memory(0).primary(), "us");
  EXPECT_DOUBLE_EQ(in.policy().overprovisioning(), 1.4);
  EXPECT_EQ(in.policy().rounds(), 3u);

  // The inputs alone give back the table that was sent.
  LocalInputs local = local_inputs(in);
  v1::ProbeReport healthy =
      probe_report({{"eu", "198.51.100.1", 30, true}, {"us", "198.51.100.2", 10, true}});
  PopHealth health = health_from_report(healthy);
  RouteComputer computer(local.policy);
  PopRoutes same = computer.compute(local.config, local.pop, &health, &local.memory, false);
  EXPECT_EQ(content_digest(same.table, same.probe_plan), content_digest(u.table(), u.probe_plan()));

  // The controller goes away; us dies; the agent routes on its own.
  registry_->detach(sink.get(), "FRA1");
  v1::ProbeReport us_dead =
      probe_report({{"eu", "198.51.100.1", 30, true}, {"us", "198.51.100.2", 10, false}});
  health = health_from_report(us_dead);
  PopRoutes own = computer.compute(local.config, local.pop, &health, &local.memory, true);
  std::string own_digest = content_digest(own.table, own.probe_plan);
  ASSERT_NE(own_digest, content_digest(u.table(), u.probe_plan()));
  v1::Hello back = hello("FRA1", u.version(), "", u.route_inputs().config_version());
  *back.mutable_probes() = us_dead;
  back.set_local_digest(own_digest);
  memory_to_proto(own.memory, *back.mutable_route_memory());

  // Back, the controller computes the same table: nothing is sent.
  auto again = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(again, "", back).ok());
  EXPECT_TRUE(again->sent.empty());
  EXPECT_TRUE(pop("FRA1").own_table());
  EXPECT_EQ(pop("FRA1").applied_version(), u.version());
  EXPECT_EQ(pop("FRA1").sent_version(), u.version());

  // The same after a restart of the controller: no new table. (A restarted
  // controller cannot tell whether the verdicts' version bump changed the
  // route inputs, so it may send the same table again, with current ones.)
  registry_->detach(again.get(), "FRA1");
  ASSERT_TRUE(registry_->flush().ok());
  reopen();
  auto restarted = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(restarted, "", back).ok());
  for (const v1::TableUpdate& r : restarted->sent) {
    EXPECT_EQ(r.version(), u.version());
    EXPECT_EQ(content_digest(r.table(), r.probe_plan()), own_digest);
  }

  // When the verdicts moved on meanwhile, the new content gets a new version.
  registry_->detach(restarted.get(), "FRA1");
  v1::Hello moved = back;
  *moved.mutable_probes() =
      probe_report({{"eu", "198.51.100.1", 30, false}, {"us", "198.51.100.2", 10, false}});
  auto later = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(later, "", moved).ok());
  ASSERT_EQ(later->sent.size(), 1u);
  EXPECT_GT(later->sent[0].version(), u.version());
  registry_->ack(later.get(), "FRA1", ack(later->sent[0]));
  EXPECT_FALSE(pop("FRA1").own_table());
}

// Found by the e2e bed: PoP records reach the store once a second, so a
// controller killed just after a challenger won kept the older memory (the
// challenger still waiting) while the PoP ran the new nearest group. Back,
// it sent the old group's table for a round, then the new one again. The
// Hello's memory, the one that made the table the PoP runs, wins.
TEST_F(PopRegistryTest, ANearestGroupChangeOutlivesAControllerKilledBeforeItsFlush) {
  put(group("web", "http", "us", "us-east", 100));
  put(endpoint("web", "http", "us", "198.51.100.2", 128));
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  registry_->ack(sink.get(), "FRA1", ack(sink->sent.back()));
  // us is down: eu is the primary, and the store says so.
  registry_->probes(
      sink.get(), "FRA1",
      probe_report({{"eu", "198.51.100.1", 30, true}, {"us", "198.51.100.2", 10, false}}));
  registry_->ack(sink.get(), "FRA1", ack(sink->sent.back()));
  ASSERT_TRUE(registry_->flush().ok());
  // us is back and nearer: it waits out its rounds, then takes over.
  const v1::ProbeReport healthy =
      probe_report({{"eu", "198.51.100.1", 30, true}, {"us", "198.51.100.2", 10, true}});
  for (int round = 0; round < 4; ++round) registry_->probes(sink.get(), "FRA1", healthy);
  const v1::TableUpdate u = sink->sent.back();
  ASSERT_EQ(u.route_inputs().memory(0).primary(), "us");
  registry_->ack(sink.get(), "FRA1", ack(u));

  // Killed before the next flush; the agent runs u.
  reopen();
  v1::Hello back = hello("FRA1", u.version(), content_digest(u.table(), u.probe_plan()),
                         u.route_inputs().config_version());
  *back.mutable_probes() = healthy;
  *back.mutable_route_memory() = u.route_inputs().memory();
  auto restarted = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(restarted, "", back).ok());
  for (const v1::TableUpdate& r : restarted->sent) {
    EXPECT_EQ(r.version(), u.version());
    EXPECT_EQ(content_digest(r.table(), r.probe_plan()), content_digest(u.table(), u.probe_plan()));
  }
  // Its first round changes nothing either.
  registry_->probes(restarted.get(), "FRA1", healthy);
  for (const v1::TableUpdate& r : restarted->sent) EXPECT_EQ(r.version(), u.version());
  auto view = registry_->view("FRA1");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->routes.memory.at("web/http").primary, "us");
}

// Without local_digest, the Hello's probes still count: the first table of
// a session marks the endpoints the PoP finds dead.
TEST_F(PopRegistryTest, TheFirstTableOfASessionUsesTheHelloProbes) {
  v1::Hello h = hello("FRA1");
  *h.mutable_probes() = probe_report({{"eu", "198.51.100.1", 30, false}});
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", h).ok());
  ASSERT_EQ(sink->sent.size(), 1u);
  ASSERT_EQ(sink->sent[0].table().listeners(0).endpoints_size(), 1);
  // Its only endpoint is down: the listener fails open, counted as such.
  auto view = registry_->view("FRA1");
  ASSERT_TRUE(view.ok());
  EXPECT_TRUE(view->routes.listeners[0].fail_open());
}

// Hardening finding 8: an agent that (re)starts with thousands of probe
// targets reports their first verdicts a few at a time. Each report used to
// be a new table and a new configuration version; now the session's first
// round goes out once it is complete (or once per kFirstVerdictHold), while
// a verdict that flips is still sent at once.
TEST_F(PopRegistryTest, Finding8FirstVerdictsOfARestartedAgentCauseOnePush) {
  constexpr int kTargets = 2000;
  ConfigChange ch;
  std::vector<std::string> addresses;
  for (int i = 0; i < kTargets; ++i) {
    addresses.push_back("10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1));
    ch.puts.push_back(endpoint("web", "http", "eu", addresses.back(), 128));
  }
  ASSERT_EQ(store_->commit(ch, store_->snapshot()->version).outcome,
            CommitResult::Outcome::committed);
  FakeClock clock;
  PopRegistry registry(*store_, computer_, clock);
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry.hello(sink, "", hello("FRA1")).ok());
  ASSERT_EQ(sink->sent.size(), 1u);
  registry.ack(sink.get(), "FRA1", ack(sink->sent[0]));
  const uint64_t version_before = store_->snapshot()->version;

  // Every report lists the whole plan; `known` endpoints have a verdict,
  // every tenth of them unhealthy.
  auto report = [&](int known, int flipped = -1) {
    v1::ProbeReport r;
    for (int i = 0; i <= kTargets; ++i) {
      auto* x = r.add_results();
      x->set_accelerator("web");
      x->set_listener("http");
      x->set_endpoint_group("eu");
      x->set_address(i == kTargets ? "198.51.100.1" : addresses[i]);
      x->set_rtt_ms(20);
      x->set_known(i < known || i == kTargets);
      x->set_healthy(i % 10 != 3 && i != flipped);
      x->set_consecutive(3);
    }
    return r;
  };
  // The first verdicts trickle in over ten reports, 0.4 s apart.
  for (int step = 1; step <= 10; ++step) {
    clock.advance(std::chrono::milliseconds(400));
    registry.probes(sink.get(), "FRA1", report(step * kTargets / 10));
  }
  // One table for the whole round, sent when its last verdict came in.
  ASSERT_EQ(sink->sent.size(), 2u);
  int unhealthy = 0;
  for (const auto& e : sink->sent[1].table().listeners(0).endpoints()) unhealthy += e.unhealthy();
  EXPECT_EQ(unhealthy, kTargets / 10);
  EXPECT_LE(store_->snapshot()->version, version_before + 1);
  registry.ack(sink.get(), "FRA1", ack(sink->sent[1]));

  // After the first round, a verdict that changes is sent at once.
  registry.probes(sink.get(), "FRA1", report(kTargets, 0));
  ASSERT_EQ(sink->sent.size(), 3u);

  // A new session: a healthy endpoint that fails mid-round is a failover,
  // sent at once; first verdicts alone wait for the round or for
  // kFirstVerdictHold.
  auto again = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry.hello(again, "", hello("FRA1", sink->sent[2].version())).ok());
  size_t sends = again->sent.size();
  registry.probes(again.get(), "FRA1", report(100));
  EXPECT_EQ(again->sent.size(), sends);  // endpoint 3 is a first verdict: held
  registry.probes(again.get(), "FRA1", report(100, 0));
  EXPECT_EQ(again->sent.size(), sends + 1);  // endpoint 0 flipped: at once
  registry.probes(again.get(), "FRA1", report(300, 0));
  EXPECT_EQ(again->sent.size(), sends + 1);
  clock.advance(PopRegistry::kFirstVerdictHold);
  registry.probes(again.get(), "FRA1", report(400, 0));
  EXPECT_EQ(again->sent.size(), sends + 2);  // the hold is over
}

// Hardening finding 3: a table of 10 000 endpoints with long names did not
// fit gRPC's message limit. The admin API's caps (validation.h) bound every
// PoP's TableUpdate; this computes the bound from the real messages. Each
// resource is built as large as validation lets it be (longest names and
// addresses, most VIPs, ranges and overrides, every health check field at
// its longest) and what one more of each kind adds to the update is
// measured; the caps times those, plus a margin for longer varints, must fit
// kMaxGrpcMessageBytes.
TEST(PopRegistryLimits, Finding3TheLargestTableUpdateFitsOneMessage) {
  log::set_level(log::Level::off);
  auto name = [](const std::string& prefix) {
    return prefix + std::string(63 - prefix.size(), 'x');
  };
  auto address = [](int i) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "2001:db8:aaaa:bbbb:cccc:dddd:%04x:%04x", 0xe000 + i / 4096,
                  0xf000 + i % 4096);
    return std::string(buf);
  };
  auto big_accelerator = [&](int a) {
    v1::Accelerator r = accelerator(name("a" + std::to_string(a)), {});
    for (int i = 0; i < kMaxVipsPerAccelerator; ++i) r.add_vips(address(a * 100 + i));
    r.set_create_time_ms(INT64_MAX);
    r.set_update_time_ms(INT64_MAX);
    return r;
  };
  auto big_listener = [&](int a, int l) {
    v1::Listener r = listener(name("a" + std::to_string(a)), name("l" + std::to_string(l)), {});
    for (int i = 0; i < kMaxPortRangesPerListener; ++i) {
      auto* pr = r.add_port_ranges();
      pr->set_first(static_cast<uint32_t>(20000 + 200 * l + 2 * i));
      pr->set_last(pr->first() + 1);
    }
    r.set_tcp_idle_timeout_s(86400);
    r.set_udp_idle_timeout_s(86400);
    r.set_affinity(v1::SOURCE_IP);
    r.set_create_time_ms(INT64_MAX);
    r.set_update_time_ms(INT64_MAX);
    return r;
  };
  auto big_group = [&](int a, int l, int g) {
    v1::EndpointGroup r = group(name("a" + std::to_string(a)), name("l" + std::to_string(l)),
                                name("g" + std::to_string(g)), std::string(63, 'r'), 100);
    v1::HealthCheck* hc = r.mutable_health_check();
    hc->set_protocol(v1::HEALTH_CHECK_HTTPS);
    hc->set_port(65535);
    hc->set_path("/" + std::string(kMaxHealthCheckPathBytes - 1, 'p'));
    hc->set_interval_ms(UINT32_MAX);
    hc->set_timeout_ms(UINT32_MAX);
    hc->set_healthy_threshold(UINT32_MAX);
    hc->set_unhealthy_threshold(UINT32_MAX);
    hc->set_expected_status_min(UINT32_MAX);
    hc->set_expected_status_max(UINT32_MAX);
    hc->set_udp_request(std::string(kMaxUdpProbeBytes, 'q'));
    hc->set_udp_expected_response(std::string(kMaxUdpProbeBytes, 's'));
    hc->set_tls_server_name(std::string(kMaxTlsServerNameBytes, 'n'));
    hc->set_tls_skip_verify(true);
    hc->set_tls_ca_file("/" + std::string(kMaxTlsCaFileBytes - 1, 'c'));
    for (int i = 0; i < kMaxPortOverridesPerGroup; ++i) {
      auto* o = r.add_port_overrides();
      o->set_listener_port(static_cast<uint32_t>(20000 + 200 * l + 2 * i));
      o->set_endpoint_port(65535);
    }
    r.set_port_rewrite(v1::PORT_REWRITE_DECAP);
    r.set_create_time_ms(INT64_MAX);
    r.set_update_time_ms(INT64_MAX);
    return r;
  };
  auto big_endpoint = [&](int a, int l, int g, int e) {
    v1::Endpoint r = endpoint(name("a" + std::to_string(a)), name("l" + std::to_string(l)),
                              name("g" + std::to_string(g)), address(5000 + e), 255);
    r.set_mode(v1::ENCAP_GUE);
    r.set_create_time_ms(INT64_MAX);
    r.set_update_time_ms(INT64_MAX);
    return r;
  };
  // The size of the first update a PoP gets for `resources`.
  auto update_size = [](const std::vector<Resource>& resources) -> size_t {
    TempDir dir;
    auto store = SqliteStore::open(dir.file("c.db"), {.init = true});
    EXPECT_TRUE(store.ok());
    if (!store.ok()) return 0;
    ConfigChange ch;
    ch.puts = resources;
    EXPECT_EQ((*store)->commit(ch, 0).outcome, CommitResult::Outcome::committed);
    RouteComputer computer;
    PopRegistry registry(**store, computer);
    auto sink = std::make_shared<FakeSink>();
    v1::Hello h = hello("FRA1");
    h.mutable_tunnel_source()->set_ipv6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
    EXPECT_TRUE(registry.hello(sink, "", h).ok());
    EXPECT_EQ(sink->sent.size(), 1u);
    if (sink->sent.empty()) return 0;
    v1::ControllerMessage m;
    *m.mutable_update() = sink->sent[0];
    return m.ByteSizeLong();
  };
  const std::vector<Resource> one = {big_accelerator(0), big_listener(0, 0), big_group(0, 0, 0),
                                     big_endpoint(0, 0, 0, 0)};
  auto plus = [&](Resource r) {
    std::vector<Resource> v = one;
    v.push_back(std::move(r));
    return update_size(v) - update_size(one);
  };
  const size_t base = update_size(one);
  const size_t per_endpoint = plus(big_endpoint(0, 0, 0, 1));
  const size_t per_group = plus(big_group(0, 0, 1));
  const size_t per_listener = plus(big_listener(0, 1));
  const size_t per_accelerator = plus(big_accelerator(1));
  ASSERT_GT(per_endpoint, 0u);
  ASSERT_GT(per_group, 0u);
  ASSERT_GT(per_listener, 0u);
  ASSERT_GT(per_accelerator, 0u);
  // 8 bytes each for varints that grow with the counts (lengths, versions).
  const size_t largest = base + (kMaxEndpoints - 1) * (per_endpoint + 8) +
                         (kMaxEndpointGroups - 1) * (per_group + 8) +
                         (kMaxListeners - 1) * (per_listener + 8) +
                         (kMaxAccelerators - 1) * (per_accelerator + 8) + 4096;
  std::printf(
      "largest TableUpdate: %zu bytes (endpoint %zu, group %zu, listener %zu, "
      "accelerator %zu); limit %d\n",
      largest, per_endpoint, per_group, per_listener, per_accelerator, kMaxGrpcMessageBytes);
  EXPECT_LT(largest, static_cast<size_t>(kMaxGrpcMessageBytes));
  log::set_level(log::Level::info);
}

// A restarted controller used to forget its routing memory: with two groups
// within the margin of each other it picked the nearer one afresh, sent the
// PoP a table it did not run, and moved new flows. The memory is stored with
// the PoP's record.
TEST_F(PopRegistryTest, ARestartedControllerKeepsItsRoutingMemory) {
  put(group("web", "http", "us", "us-east", 100));
  put(endpoint("web", "http", "us", "198.51.100.2", 128));
  auto fra = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(fra, "", hello("FRA1")).ok());
  registry_->ack(fra.get(), "FRA1", ack(fra->sent[0]));
  // us is nearest; later eu is 2 ms better, inside the margin: us stays.
  registry_->probes(
      fra.get(), "FRA1",
      probe_report({{"eu", "198.51.100.1", 30, true}, {"us", "198.51.100.2", 10, true}}));
  ASSERT_EQ(fra->sent.size(), 2u);
  registry_->ack(fra.get(), "FRA1", ack(fra->sent[1]));
  auto near = probe_report({{"eu", "198.51.100.1", 10, true}, {"us", "198.51.100.2", 12, true}});
  registry_->probes(fra.get(), "FRA1", near);
  ASSERT_EQ(fra->sent.size(), 2u);
  const uint64_t running = fra->sent[1].version();
  ASSERT_EQ(registry_->flush().message(), "");

  reopen();
  v1::Hello back =
      hello("FRA1", running, content_digest(fra->sent[1].table(), fra->sent[1].probe_plan()),
            fra->sent[1].route_inputs().config_version());
  *back.mutable_probes() = near;
  auto again = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(again, "", back).ok());
  // Nothing new: at most the same table again, with current route inputs
  // (the verdicts bumped the configuration version after these were made).
  for (const v1::TableUpdate& r : again->sent) {
    EXPECT_EQ(r.version(), running);
    EXPECT_EQ(content_digest(r.table(), r.probe_plan()),
              content_digest(fra->sent[1].table(), fra->sent[1].probe_plan()));
  }
  auto view = registry_->view("FRA1");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->routes.memory.at(table_listener_name("web", "http")).primary, "us");
}

// A configuration change that left a PoP's table as it was (a group that
// takes no traffic) never reached the agent: with the controller then away,
// the agent routed on its own from stale inputs (e2e step 8: a dial put back
// to 100 was still 0 there, and the listener failed open into a dead
// region). The same table goes again, same version, with current inputs.
TEST_F(PopRegistryTest, AChangeThatLeavesTheTableAsItWasStillReachesTheAgentsInputs) {
  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[0]));
  const uint64_t version = sink->sent[0].version();
  EXPECT_EQ(sink->sent[0].route_inputs().endpoint_groups_size(), 1);

  put(group("web", "http", "us", "us-east", 0));  // no endpoints, dial 0
  registry_->push_all();
  ASSERT_EQ(sink->sent.size(), 2u);
  EXPECT_EQ(sink->sent[1].version(), version);
  EXPECT_EQ(content_digest(sink->sent[1].table(), sink->sent[1].probe_plan()),
            content_digest(sink->sent[0].table(), sink->sent[0].probe_plan()));
  EXPECT_EQ(sink->sent[1].route_inputs().endpoint_groups_size(), 2);
  EXPECT_EQ(sink->sent[1].route_inputs().config_version(), store_->snapshot()->version);
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[1]));

  // Acknowledged: nothing more; a change outside the inputs (a disabled
  // accelerator) sends nothing either.
  registry_->push_all();
  put(accelerator("off", {"203.0.113.20"}, false));
  registry_->push_all();
  EXPECT_EQ(sink->sent.size(), 2u);
}

// The status page's document: parses as JSON, lists the PoPs and their
// routes, and says what changed between two samples, newest first.
TEST_F(PopRegistryTest, StatusBoardShowsPopsRoutesAndWhatChanged) {
  StatusBoard board(*store_, *registry_);
  board.sample(1000);
  auto parse = [](const std::string& json) {
    google::protobuf::Struct doc;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &doc).ok()) << json;
    return doc;
  };
  auto first = parse(board.json());
  EXPECT_TRUE(first.fields().count("matrix")) << board.json();
  EXPECT_EQ(first.fields().at("generated_ms").number_value(), 1000);
  ASSERT_EQ(first.fields().at("changes").list_value().values_size(), 1);
  EXPECT_EQ(first.fields()
                .at("changes")
                .list_value()
                .values(0)
                .struct_value()
                .fields()
                .at("text")
                .string_value(),
            "status page started");

  auto sink = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  board.sample(2000);
  std::string json = board.json();
  parse(json);
  EXPECT_NE(json.find("\"text\":\"PoP FRA1: connected\""), std::string::npos) << json;
  EXPECT_NE(json.find("{\"pop\":\"FRA1\",\"listeners\":[{\"accelerator\":\"web\""),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("FRA1 routes web/http to eu: 100 %"), std::string::npos) << json;

  registry_->detach(sink.get(), "FRA1");
  board.sample(3000);
  json = board.json();
  // Newest first.
  EXPECT_LT(json.find("PoP FRA1: connected -> disconnected"),
            json.find("\"text\":\"PoP FRA1: connected\""))
      << json;
}

// A PoP of several servers (docs/routing.md "A PoP of several servers").
v1::Hello host_hello(const std::string& pop, const std::string& host, const std::string& v4) {
  v1::Hello h = hello(pop);
  h.set_host(host);
  h.mutable_tunnel_source()->set_ipv4(v4);
  return h;
}

v1::PopStatus pop_status(bool dataplane, bool bgp) {
  v1::PopStatus s;
  s.set_dataplane_healthy(dataplane);
  s.set_bgp_announced(bgp);
  s.mutable_stats()->set_table_version(1);
  return s;
}

TEST_F(PopRegistryTest, TwoHostsOfAPopGetTheSameTableAppliedWhenBothAck) {
  auto a = std::make_shared<FakeSink>(), b = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(a, "", host_hello("FRA1", "fra1-a", "192.0.2.1")).ok());
  ASSERT_TRUE(registry_->hello(b, "", host_hello("FRA1", "fra1-b", "192.0.2.2")).ok());
  ASSERT_EQ(a->sent.size(), 1u);
  ASSERT_EQ(b->sent.size(), 1u);
  EXPECT_FALSE(a->closed);
  const v1::TableUpdate ua = a->sent[0], ub = b->sent[0];
  EXPECT_EQ(ua.version(), ub.version());
  EXPECT_EQ(ua.table().SerializeAsString(), ub.table().SerializeAsString());
  EXPECT_EQ(ua.probe_plan().SerializeAsString(), ub.probe_plan().SerializeAsString());
  EXPECT_EQ(ua.route_inputs().SerializeAsString(), ub.route_inputs().SerializeAsString());
  EXPECT_NE(ua.nonce(), ub.nonce());
  // The first host's tunnel sources are the PoP's (each agent puts its own
  // in its dataplane's copy).
  EXPECT_EQ(ua.table().tunnel_source().ipv4(), "192.0.2.1");
  EXPECT_EQ(pop("FRA1").tunnel_source().ipv4(), "192.0.2.1");

  v1::Pop p = pop("FRA1");
  ASSERT_EQ(p.hosts_size(), 2);
  EXPECT_EQ(p.hosts(0).name(), "fra1-a");
  EXPECT_EQ(p.hosts(1).name(), "fra1-b");
  EXPECT_EQ(p.hosts(1).tunnel_source().ipv4(), "192.0.2.2");

  registry_->ack(a.get(), "FRA1", ack(ua));
  p = pop("FRA1");
  EXPECT_EQ(p.hosts(0).applied_version(), ua.version());
  EXPECT_EQ(p.applied_version(), 0u) << "applied at the PoP before every host ACKed";
  registry_->ack(b.get(), "FRA1", ack(ub));
  EXPECT_EQ(pop("FRA1").applied_version(), ua.version());

  // A change goes to both, still the same.
  put(endpoint("web", "http", "eu", "198.51.100.2", 128));
  registry_->push_all();
  ASSERT_EQ(a->sent.size(), 2u);
  ASSERT_EQ(b->sent.size(), 2u);
  EXPECT_EQ(a->sent[1].table().SerializeAsString(), b->sent[1].table().SerializeAsString());

  // One healthy, announced host is enough for the PoP.
  registry_->status(a.get(), "FRA1", pop_status(true, true));
  registry_->status(b.get(), "FRA1", pop_status(false, false));
  p = pop("FRA1");
  EXPECT_TRUE(p.dataplane_healthy());
  EXPECT_TRUE(p.bgp_announced());
  EXPECT_TRUE(p.hosts(0).dataplane_healthy());
  EXPECT_FALSE(p.hosts(1).dataplane_healthy());
  auto stats = registry_->stats("FRA1");
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].host(), "fra1-a");
  EXPECT_EQ(stats[1].host(), "fra1-b");
}

TEST_F(PopRegistryTest, AHostsDepartureNeitherResendsNorChangesTheOthersTable) {
  auto a = std::make_shared<FakeSink>(), b = std::make_shared<FakeSink>();
  put(endpoint("web", "http", "eu", "198.51.100.2", 128));
  ASSERT_TRUE(registry_->hello(a, "", host_hello("FRA1", "fra1-a", "192.0.2.1")).ok());
  ASSERT_TRUE(registry_->hello(b, "", host_hello("FRA1", "fra1-b", "192.0.2.2")).ok());
  registry_->ack(a.get(), "FRA1", ack(a->sent.back()));
  registry_->ack(b.get(), "FRA1", ack(b->sent.back()));
  // Their probes differ in RTT and, for one endpoint, in verdict: the
  // merged view (ties healthy, lower median RTT) keeps both endpoints.
  // (A host that leaves while the hosts disagree moves the verdict to the
  // others' at the next round: docs/routing.md.)
  registry_->probes(
      a.get(), "FRA1",
      probe_report({{"eu", "198.51.100.1", 10, true}, {"eu", "198.51.100.2", 11, true}}));
  registry_->probes(
      b.get(), "FRA1",
      probe_report({{"eu", "198.51.100.1", 12, true}, {"eu", "198.51.100.2", 13, false}}));
  for (auto& sink : {a, b}) registry_->ack(sink.get(), "FRA1", ack(sink->sent.back()));
  for (const auto& e : a->sent.back().table().listeners(0).endpoints())
    EXPECT_FALSE(e.unhealthy()) << e.address() << ": one host of two says it is down";
  // fra1-b sees it up again: the hosts agree on verdicts, not on RTTs.
  registry_->probes(
      b.get(), "FRA1",
      probe_report({{"eu", "198.51.100.1", 12, true}, {"eu", "198.51.100.2", 13, true}}));
  for (auto& sink : {a, b}) registry_->ack(sink.get(), "FRA1", ack(sink->sent.back()));
  const size_t sent_a = a->sent.size();
  const v1::TableUpdate last = a->sent.back();

  // fra1-a goes (dead, or drained): fra1-b's session goes on, nothing is
  // sent, the PoP's version stays.
  registry_->detach(a.get(), "FRA1");
  v1::Pop p = pop("FRA1");
  EXPECT_EQ(p.state(), v1::POP_CONNECTED);
  ASSERT_EQ(p.hosts_size(), 1);
  EXPECT_EQ(p.hosts(0).name(), "fra1-b");
  EXPECT_EQ(p.applied_version(), last.version());
  const size_t sent_b = b->sent.size();
  registry_->push_all();
  registry_->probes(
      b.get(), "FRA1",
      probe_report({{"eu", "198.51.100.1", 12, true}, {"eu", "198.51.100.2", 13, true}}));
  EXPECT_EQ(b->sent.size(), sent_b) << "a host's departure re-sent the other's table";
  EXPECT_FALSE(b->closed);
  // The PoP's tunnel sources stay as they were: a departure changes no
  // table.
  EXPECT_EQ(pop("FRA1").tunnel_source().ipv4(), "192.0.2.1");

  // It comes back: it runs the table, so it is sent nothing either.
  auto a2 = std::make_shared<FakeSink>();
  v1::Hello again = host_hello("FRA1", "fra1-a", "192.0.2.1");
  again.set_applied_version(last.version());
  again.set_applied_digest(content_digest(last.table(), last.probe_plan()));
  again.set_route_inputs_version(last.route_inputs().config_version());
  ASSERT_TRUE(registry_->hello(a2, "", again).ok());
  EXPECT_TRUE(a2->sent.empty());
  EXPECT_EQ(b->sent.size(), sent_b);
  EXPECT_EQ(a->sent.size(), sent_a);

  // The last host goes: the PoP is disconnected.
  registry_->detach(b.get(), "FRA1");
  registry_->detach(a2.get(), "FRA1");
  p = pop("FRA1");
  EXPECT_EQ(p.state(), v1::POP_DISCONNECTED);
  EXPECT_EQ(p.hosts_size(), 0);
}

// Relayed packets from a PoP of several servers come from each server's own
// tunnel source: the other PoPs accept every connected host's.
TEST_F(PopRegistryTest, PeersAcceptRelayedPacketsFromEveryHostOfAPop) {
  auto a = std::make_shared<FakeSink>(), b = std::make_shared<FakeSink>(),
       sin = std::make_shared<FakeSink>();
  v1::Hello sin_hello = hello("SIN1");
  sin_hello.mutable_tunnel_source()->set_ipv4("192.0.2.2");
  ASSERT_TRUE(registry_->hello(sin, "", sin_hello).ok());
  ASSERT_TRUE(registry_->hello(a, "", host_hello("FRA1", "fra1-a", "192.0.2.1")).ok());
  auto relay_peers = [&] {
    const auto& peers = sin->sent.back().table().relay_peers();
    return std::vector<std::string>(peers.begin(), peers.end());
  };
  EXPECT_EQ(relay_peers(), std::vector<std::string>{"192.0.2.1"});
  ASSERT_TRUE(registry_->hello(b, "", host_hello("FRA1", "fra1-b", "192.0.2.11")).ok());
  EXPECT_EQ(relay_peers(), (std::vector<std::string>{"192.0.2.1", "192.0.2.11"}));
  // FRA1's own table is the PoP's, whatever its hosts send from.
  EXPECT_EQ(a->sent.size(), 1u);
  EXPECT_EQ(b->sent.back().table().relay_peers(0), "192.0.2.2");
  // fra1-b leaves: its address is no longer accepted.
  registry_->detach(b.get(), "FRA1");
  EXPECT_EQ(relay_peers(), std::vector<std::string>{"192.0.2.1"});
}

TEST_F(PopRegistryTest, ANewSessionSupersedesOnlyTheSameHost) {
  auto a = std::make_shared<FakeSink>(), b = std::make_shared<FakeSink>(),
       a2 = std::make_shared<FakeSink>();
  ASSERT_TRUE(registry_->hello(a, "", host_hello("FRA1", "fra1-a", "192.0.2.1")).ok());
  ASSERT_TRUE(registry_->hello(b, "", host_hello("FRA1", "fra1-b", "192.0.2.2")).ok());
  EXPECT_FALSE(a->closed);
  ASSERT_TRUE(registry_->hello(a2, "", host_hello("FRA1", "fra1-a", "192.0.2.1")).ok());
  ASSERT_TRUE(a->closed);
  EXPECT_EQ(a->closed->error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(a->closed->error_message(), "superseded by a newer session of FRA1 host fra1-a");
  EXPECT_FALSE(b->closed);
  // The replaced session's end is no departure of the host.
  registry_->detach(a.get(), "FRA1");
  EXPECT_EQ(pop("FRA1").hosts_size(), 2);
  // An ACK on the replaced session counts for nothing.
  registry_->ack(a.get(), "FRA1", ack(a->sent[0]));
  EXPECT_EQ(pop("FRA1").hosts(0).applied_version(), 0u);

  // A host name that is no DNS label is refused.
  auto bad = std::make_shared<FakeSink>();
  grpc::Status s = registry_->hello(bad, "", host_hello("FRA1", "fra1_a", "192.0.2.3"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("hello.host"), std::string::npos) << s.error_message();
}

TEST(PopHealthMerged, VotesOnVerdictsAndTakesTheLowerMedianRtt) {
  auto view = [](double rtt, bool healthy, bool known = true) {
    v1::ProbeReport r = probe_report({{"eu", "198.51.100.1", rtt, healthy}});
    r.mutable_results(0)->set_known(known);
    PopHealth h;
    (void)h.replace(r, 1000);
    return h;
  };
  auto merged = [](std::vector<const PopHealth*> views) {
    return *PopHealth::merged(views).find("web", "http", "eu", "198.51.100.1");
  };
  PopHealth up10 = view(10, true), up30 = view(30, true), down20 = view(20, false),
            down40 = view(40, false), unknown = view(5, false, false);
  // One host: its own view.
  EXPECT_EQ(merged({&down20}).SerializeAsString(),
            down20.find("web", "http", "eu", "198.51.100.1")->SerializeAsString());
  // Ties are healthy; a majority decides; hosts without a verdict do not vote.
  EXPECT_TRUE(merged({&up10, &down20}).healthy());
  EXPECT_TRUE(merged({&down20, &up10}).healthy());
  EXPECT_FALSE(merged({&up10, &down20, &down40}).healthy());
  EXPECT_FALSE(merged({&down20, &unknown}).healthy());
  EXPECT_TRUE(merged({&down20, &unknown}).known());
  EXPECT_FALSE(merged({&unknown}).known());
  // The lower median RTT, whatever the order.
  EXPECT_EQ(merged({&up10, &up30}).rtt_ms(), 10);
  EXPECT_EQ(merged({&up30, &down20, &up10}).rtt_ms(), 20);
  EXPECT_EQ(merged({&up30, &down20, &up10}).SerializeAsString(),
            merged({&up10, &up30, &down20}).SerializeAsString());
}

}  // namespace
}  // namespace onramp::ctl::test
