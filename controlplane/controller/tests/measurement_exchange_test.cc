// What one PoP's routes need from the others' measurements, shared between
// replicas (measurement_exchange.h): which changes are written, and two
// registries over one store computing a PoP's table from the snapshots the
// exchange stores, whichever replica holds the relay's session.
#include "controlplane/controller/measurement_exchange.h"

#include <gtest/gtest.h>

#include "common/log.h"
#include "controlplane/controller/pop_registry.h"
#include "controlplane/controller/sqlite_store.h"
#include "controlplane/controller/tests/fixtures.h"

namespace onramp::ctl::test {
namespace {

v1::ProbeResult result(const std::string& group, const std::string& address, double rtt,
                       bool healthy = true) {
  v1::ProbeResult r;
  r.set_accelerator("web");
  r.set_listener("http");
  r.set_endpoint_group(group);
  r.set_address(address);
  r.set_rtt_ms(rtt);
  r.set_healthy(healthy);
  r.set_known(true);
  r.set_consecutive(3);
  r.set_last_error(healthy ? "" : "connect: refused");
  return r;
}

v1::SharedMeasurements shared_with(double rtt, double peer_rtt = 40, double loss = 0) {
  v1::SharedMeasurements m;
  m.set_pop("SIN1");
  m.mutable_tunnel_source()->set_ipv4("192.0.2.2");
  m.set_dataplane_healthy(true);
  m.set_bgp_announced(true);
  v1::ProbeReport report;
  *report.add_results() = result("ap", "198.51.100.2", rtt);
  v1::PeerResult* p = report.add_peers();
  p->set_pop("FRA1");
  p->set_rtt_ms(peer_rtt);
  p->set_loss_percent(loss);
  *m.mutable_probes() = shared_probes(report);
  return m;
}

TEST(SharedProbes, KeepWhatRoutingReadsInKeyOrderTheLaterResultWinning) {
  v1::ProbeReport report;
  *report.add_results() = result("eu", "198.51.100.1", 30);
  *report.add_results() = result("ap", "198.51.100.2", 3);
  *report.add_results() = result("ap", "198.51.100.2", 4, false);
  v1::PeerResult* p = report.add_peers();
  p->set_pop("SIN1");
  p->set_rtt_ms(45);
  p->set_jitter_ms(2);
  p->set_sent(30);
  p->set_down(true);
  report.add_peers()->set_pop("AMS1");
  v1::ProbeReport s = shared_probes(report);
  ASSERT_EQ(s.results_size(), 2);
  EXPECT_EQ(s.results(0).endpoint_group(), "ap");
  EXPECT_EQ(s.results(0).rtt_ms(), 4);
  EXPECT_FALSE(s.results(0).healthy());
  EXPECT_EQ(s.results(0).last_error(), "");
  EXPECT_EQ(s.results(0).consecutive(), 0u);
  EXPECT_EQ(s.results(1).endpoint_group(), "eu");
  ASSERT_EQ(s.peers_size(), 2);
  EXPECT_EQ(s.peers(0).pop(), "AMS1");
  EXPECT_EQ(s.peers(1).pop(), "SIN1");
  EXPECT_EQ(s.peers(1).jitter_ms(), 0);
  EXPECT_TRUE(s.peers(1).down());
  EXPECT_FALSE(s.peers(0).down());
}

TEST(MovesRoutes, OnlyChangesBeyondAQuarterOfTheRelayMarginAreWritten) {
  RoutePolicy policy;  // relay margin max(10 ms, 20 %): 20 ms at 100 ms, 5 ms a quarter
  const v1::SharedMeasurements written = shared_with(100);
  EXPECT_FALSE(moves_routes(written, shared_with(104.9), policy));
  EXPECT_FALSE(moves_routes(written, shared_with(95.1), policy));
  EXPECT_TRUE(moves_routes(written, shared_with(105), policy));
  EXPECT_TRUE(moves_routes(written, shared_with(-1), policy));
  // At 3 ms the margin is its 10 ms floor: 2.5 ms a quarter.
  EXPECT_FALSE(moves_routes(shared_with(3), shared_with(5.4), policy));
  EXPECT_TRUE(moves_routes(shared_with(3), shared_with(5.5), policy));
  // The mesh row: RTTs alike, and a loss crossing the relay limit.
  EXPECT_FALSE(moves_routes(written, shared_with(100, 41, 4), policy));
  EXPECT_TRUE(moves_routes(written, shared_with(100, 41, 6), policy));
  EXPECT_TRUE(moves_routes(written, shared_with(100, 60), policy));
  // A verdict, an endpoint going, the eligibility bits, the tunnel.
  v1::SharedMeasurements next = written;
  next.mutable_probes()->mutable_results(0)->set_healthy(false);
  EXPECT_TRUE(moves_routes(written, next, policy));
  next = written;
  next.mutable_probes()->clear_results();
  EXPECT_TRUE(moves_routes(written, next, policy));
  next = written;
  next.set_bgp_announced(false);
  EXPECT_TRUE(moves_routes(written, next, policy));
  next = written;
  next.mutable_tunnel_source()->set_ipv4("192.0.2.9");
  EXPECT_TRUE(moves_routes(written, next, policy));
  // A host sending from its own tunnel source joins (peers accept it).
  next = written;
  next.add_host_tunnel_sources()->set_ipv4("192.0.2.12");
  EXPECT_TRUE(moves_routes(written, next, policy));
  // A peer path going down (shown by pop matrix on every replica).
  next = written;
  next.mutable_probes()->mutable_peers(0)->set_down(true);
  EXPECT_TRUE(moves_routes(written, next, policy));
  // The report's time alone is no change.
  next = written;
  next.mutable_probes()->set_time_ms(123456);
  EXPECT_FALSE(moves_routes(written, next, policy));
}

// What etcd is to the replicas, in process: a publish is stored only when
// the test delivers it, and then every replica is told, as a watch would.
class SharedBoard {
 public:
  class View final : public MeasurementExchange {
   public:
    View(SharedBoard& board, std::string name) : board_(board), name_(std::move(name)) {}
    // Stamped with the replica's name, as etcd_measurements.cc does.
    bool publish(const std::string& pop, SharedSnapshot snapshot) override {
      if (snapshot) {
        auto stamped = std::make_shared<v1::SharedMeasurements>(*snapshot);
        stamped->set_replica(name_);
        snapshot = std::move(stamped);
      }
      board_.pending_.emplace_back(pop, std::move(snapshot));
      return false;
    }
    std::string replica() const override { return name_; }
    SharedSnapshot get(const std::string& pop) const override {
      auto it = board_.stored_.find(pop);
      return it == board_.stored_.end() ? nullptr : it->second;
    }
    std::map<std::string, SharedSnapshot> all() const override { return board_.stored_; }
    void follow(std::function<void(const std::string&)> on_change) override {
      on_change_ = std::move(on_change);
    }
    std::function<void(const std::string&)> on_change_;

   private:
    SharedBoard& board_;
    const std::string name_;
  };

  View& view(const std::string& name) {
    return *views_.emplace_back(std::make_unique<View>(*this, name));
  }
  // Stores every pending publish, the latest of each PoP, and tells every
  // replica. Returns how many were stored.
  size_t deliver() {
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [pop, snapshot] : pending) {
      if (snapshot)
        stored_[pop] = snapshot;
      else
        stored_.erase(pop);
      for (auto& v : views_)
        if (v->on_change_) v->on_change_(pop);
    }
    return pending.size();
  }
  // A replica died: its PoPs' keys expire with its lease.
  void expire(const std::string& pop) {
    stored_.erase(pop);
    for (auto& v : views_)
      if (v->on_change_) v->on_change_(pop);
  }

 private:
  std::vector<std::pair<std::string, SharedSnapshot>> pending_;
  std::map<std::string, SharedSnapshot> stored_;
  std::vector<std::unique_ptr<View>> views_;
};

class FakeSink : public TableSink {
 public:
  void send(v1::ControllerMessage m) override { sent.push_back(m.update()); }
  void close(const grpc::Status&) override {}
  std::vector<v1::TableUpdate> sent;
};

v1::Hello hello(const std::string& pop, const std::string& ipv4) {
  v1::Hello h;
  h.set_pop(pop);
  h.set_iata(pop.substr(0, 3));
  h.mutable_tunnel_source()->set_ipv4(ipv4);
  return h;
}

v1::ProbeReport report(double eu, double ap, double to_sin = -1) {
  v1::ProbeReport r;
  *r.add_results() = result("eu", "198.51.100.1", eu);
  *r.add_results() = result("ap", "198.51.100.2", ap);
  if (to_sin >= 0) {
    v1::PeerResult* p = r.add_peers();
    p->set_pop("SIN1");
    p->set_rtt_ms(to_sin);
  }
  return r;
}

std::string relay_of(const v1::TableUpdate& u, const std::string& address) {
  for (const auto& e : u.table().listeners(0).endpoints())
    if (e.address() == address) return e.relay();
  return "?";
}

class TwoReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_level(log::Level::off);
    auto opened = SqliteStore::open(dir_.file("c.db"), {.init = true});
    ASSERT_TRUE(opened.ok()) << opened.error();
    store_ = std::move(*opened);
    for (Resource r : std::vector<Resource>{accelerator("web", {"203.0.113.10"}),
                                            listener("web", "http", {{80, 80}}),
                                            group("web", "http", "eu", "eu-central", 100),
                                            endpoint("web", "http", "eu", "198.51.100.1", 128),
                                            group("web", "http", "ap", "ap-southeast", 100),
                                            endpoint("web", "http", "ap", "198.51.100.2", 128)}) {
      ConfigChange ch;
      ch.puts.push_back(std::move(r));
      ASSERT_EQ(store_->commit(ch, store_->snapshot()->version).outcome,
                CommitResult::Outcome::committed);
    }
    for (size_t i = 0; i < std::size(replicas_); ++i) {
      replicas_[i] = std::make_unique<PopRegistry>(*store_, computer_);
      replicas_[i]->load();
      replicas_[i]->set_measurements(&board_.view("replica " + std::to_string(i)));
    }
    up_.set_dataplane_healthy(true);
    up_.set_bgp_announced(true);
  }
  void TearDown() override { log::set_level(log::Level::info); }

  // FRA1 on replica 0 reaches "ap" in 151 ms and SIN1 in 45 ms; SIN1 on
  // replica 1 reaches "ap" in 2 ms. Returns FRA1's sink.
  std::shared_ptr<FakeSink> fra_relays_through_sin() {
    auto fra = std::make_shared<FakeSink>();
    EXPECT_TRUE(replicas_[0]->hello(fra, "", hello("FRA1", "192.0.2.1")).ok());
    replicas_[0]->status(fra.get(), "FRA1", up_);
    EXPECT_TRUE(replicas_[1]->hello(sin_, "", hello("SIN1", "192.0.2.2")).ok());
    replicas_[1]->status(sin_.get(), "SIN1", up_);
    replicas_[1]->probes(sin_.get(), "SIN1", report(150, 2));
    board_.deliver();
    for (uint32_t i = 0; i < computer_.policy().rounds; ++i)
      replicas_[0]->probes(fra.get(), "FRA1", report(2, 151, 45));
    board_.deliver();
    return fra;
  }

  TempDir dir_;
  RouteComputer computer_;
  std::unique_ptr<SqliteStore> store_;
  SharedBoard board_;
  std::unique_ptr<PopRegistry> replicas_[2];
  std::shared_ptr<FakeSink> sin_ = std::make_shared<FakeSink>();
  v1::PopStatus up_;
};

TEST_F(TwoReplicasTest, APopRelaysThroughAPopConnectedToAnotherReplica) {
  auto fra = fra_relays_through_sin();
  ASSERT_FALSE(fra->sent.empty());
  EXPECT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "192.0.2.2");
  // Replica 0 knows SIN1 only from the stored snapshot: a peer all the same.
  EXPECT_EQ(fra->sent.back().probe_plan().peers_size(), 1);
  // SIN1 loses the group: replica 0 learns it when the write lands, and
  // FRA1 falls back to direct in that very push.
  size_t before = fra->sent.size();
  replicas_[1]->probes(sin_.get(), "SIN1", report(150, 2.1 /*unhealthy below*/));
  v1::ProbeReport lost = report(150, 2);
  lost.mutable_results(1)->set_healthy(false);
  replicas_[1]->probes(sin_.get(), "SIN1", lost);
  EXPECT_EQ(fra->sent.size(), before);  // not stored yet: nothing moves
  board_.deliver();
  ASSERT_EQ(fra->sent.size(), before + 1);
  EXPECT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "");
}

TEST_F(TwoReplicasTest, ARelayWhoseReplicaDiedOrWhoseSessionEndedIsLeft) {
  auto fra = fra_relays_through_sin();
  ASSERT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "192.0.2.2");
  // Its replica dies: the key expires with the lease; FRA1 goes direct.
  board_.expire("SIN1");
  EXPECT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "");
  // SIN1 reconnects to replica 0 itself: stored again, a relay again.
  auto sin = std::make_shared<FakeSink>();
  ASSERT_TRUE(replicas_[0]->hello(sin, "", hello("SIN1", "192.0.2.2")).ok());
  replicas_[0]->status(sin.get(), "SIN1", up_);
  replicas_[0]->probes(sin.get(), "SIN1", report(150, 2));
  board_.deliver();
  for (uint32_t i = 0; i < computer_.policy().rounds; ++i)
    replicas_[0]->probes(fra.get(), "FRA1", report(2, 151, 45));
  EXPECT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "192.0.2.2");
  // Its session ends: the withdrawal, once stored, takes FRA1 direct.
  replicas_[0]->detach(sin.get(), "SIN1");
  EXPECT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "192.0.2.2");
  board_.deliver();
  EXPECT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "");
}

TEST_F(TwoReplicasTest, EveryReplicaListsAPopConnectedToAnother) {
  fra_relays_through_sin();
  auto sin_on = [&](int replica) {
    const v1::ListPopsResponse listed = replicas_[replica]->list_pops();
    for (const v1::Pop& p : listed.pops())
      if (p.id() == "SIN1") return p;
    return v1::Pop();
  };
  for (int r : {0, 1}) {
    EXPECT_EQ(sin_on(r).state(), v1::POP_CONNECTED) << "replica " << r;
    EXPECT_TRUE(sin_on(r).dataplane_healthy()) << "replica " << r;
    EXPECT_TRUE(sin_on(r).bgp_announced()) << "replica " << r;
    // Both name the replica that holds its session; only that one lists
    // its hosts.
    EXPECT_EQ(sin_on(r).replica(), "replica 1") << "replica " << r;
  }
  EXPECT_EQ(sin_on(0).hosts_size(), 0);
  EXPECT_EQ(sin_on(1).hosts_size(), 1);
  // Its replica dies: once the lease takes its snapshot, the other lists
  // it as disconnected.
  board_.expire("SIN1");
  EXPECT_EQ(sin_on(0).state(), v1::POP_DISCONNECTED);
  EXPECT_EQ(sin_on(0).replica(), "");
}

TEST_F(TwoReplicasTest, EveryReplicaShowsAPeerPathDown) {
  fra_relays_through_sin();
  v1::ProbeReport r = report(150, 2);
  v1::PeerResult* p = r.add_peers();
  p->set_pop("FRA1");
  p->set_rtt_ms(45);
  p->set_down(true);
  replicas_[1]->probes(sin_.get(), "SIN1", r);
  ASSERT_EQ(board_.deliver(), 1u);
  for (int replica : {0, 1}) {
    bool shown = false;
    const v1::GetPopMatrixResponse m = replicas_[replica]->matrix();
    for (const v1::PopPath& path : m.paths())
      if (path.from() == "SIN1" && path.to() == "FRA1") shown = path.down();
    EXPECT_TRUE(shown) << "replica " << replica;
  }
}

TEST_F(TwoReplicasTest, ARelayMovingToTheOtherReplicaStaysARelayBeforeItsFirstStatus) {
  auto fra = fra_relays_through_sin();
  ASSERT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "192.0.2.2");
  const size_t before = fra->sent.size();
  // SIN1's replica dies; SIN1 says Hello to replica 0, which writes its
  // snapshot before SIN1's first status there: still a healthy relay.
  auto moved = std::make_shared<FakeSink>();
  v1::Hello h = hello("SIN1", "192.0.2.2");
  *h.mutable_probes() = report(150, 2);
  ASSERT_TRUE(replicas_[0]->hello(moved, "", h).ok());
  board_.deliver();
  EXPECT_EQ(fra->sent.size(), before);
  EXPECT_EQ(relay_of(fra->sent.back(), "198.51.100.2"), "192.0.2.2");
}

TEST_F(TwoReplicasTest, APopMovingToTheOtherReplicaIsNotSentItsTableAgain) {
  auto fra = fra_relays_through_sin();
  const v1::TableUpdate last = fra->sent.back();
  ASSERT_EQ(relay_of(last, "198.51.100.2"), "192.0.2.2");
  v1::TableAck a;
  a.set_version(last.version());
  a.set_nonce(last.nonce());
  a.set_ok(true);
  replicas_[0]->ack(fra.get(), "FRA1", a);
  ASSERT_TRUE(replicas_[0]->flush().ok());
  // FRA1's replica dies; FRA1 says what it runs to replica 1, which
  // computes the same table from the same stored snapshots: nothing sent.
  auto moved = std::make_shared<FakeSink>();
  v1::Hello h = hello("FRA1", "192.0.2.1");
  h.set_applied_version(last.version());
  h.set_applied_digest(content_digest(last.table(), last.probe_plan()));
  h.set_route_inputs_version(last.route_inputs().config_version());
  *h.mutable_probes() = report(2, 151, 45);
  replicas_[0].reset();
  board_.expire("FRA1");
  ASSERT_TRUE(replicas_[1]->hello(moved, "", h).ok());
  EXPECT_TRUE(moved->sent.empty()) << "re-sent version " << moved->sent.back().version();
}

}  // namespace
}  // namespace onramp::ctl::test
