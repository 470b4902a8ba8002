// The controller's metric families: ACK latency, NACKs and route changes as
// the PoP registry counts them, PoPs by state, and store latency.
#include "controlplane/controller/controller_metrics.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "common/log.h"
#include "controlplane/controller/controller_server.h"
#include "controlplane/controller/pop_registry.h"
#include "controlplane/controller/sqlite_store.h"
#include "controlplane/controller/tests/fixtures.h"
#include "onramp/v1/admin.grpc.pb.h"

namespace onramp::ctl::test {
namespace {

class Sink : public TableSink {
 public:
  void send(v1::ControllerMessage m) override { sent.push_back(m.update()); }
  void close(const grpc::Status&) override {}
  std::vector<v1::TableUpdate> sent;
};

std::string text(const std::vector<prometheus::MetricFamily>& fs) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, fs);
  return out.str();
}

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class ControllerMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_level(log::Level::off);
    auto opened = SqliteStore::open(dir_.file("c.db"), {.init = true});
    ASSERT_TRUE(opened.ok()) << opened.error();
    store_ = std::move(*opened);
    timed_ = std::make_unique<TimedStore>(*store_, metrics_);
    put(accelerator("web", {"203.0.113.10"}));
    put(listener("web", "http", {{80, 80}}));
    put(group("web", "http", "eu", "eu-central", 100));
    put(endpoint("web", "http", "eu", "198.51.100.1", 128));
    registry_ = std::make_unique<PopRegistry>(*timed_, computer_);
    registry_->set_metrics(&metrics_);
    registry_->load();
  }
  void TearDown() override { log::set_level(log::Level::info); }
  void put(Resource r) {
    ConfigChange ch;
    ch.puts.push_back(std::move(r));
    ASSERT_EQ(timed_->commit(ch, timed_->snapshot()->version).outcome,
              CommitResult::Outcome::committed);
  }
  v1::Hello hello(const std::string& pop) {
    v1::Hello h;
    h.set_pop(pop);
    h.set_iata(pop.substr(0, 3));
    h.mutable_tunnel_source()->set_ipv4("192.0.2.1");
    return h;
  }
  v1::TableAck ack(const v1::TableUpdate& u, bool ok) {
    v1::TableAck a;
    a.set_version(u.version());
    a.set_nonce(u.nonce());
    a.set_ok(ok);
    a.set_error(ok ? "" : "refused");
    return a;
  }

  TempDir dir_;
  ControllerMetrics metrics_;
  RouteComputer computer_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<TimedStore> timed_;
  std::unique_ptr<PopRegistry> registry_;
};

TEST_F(ControllerMetricsTest, AcksNacksAndRouteChangesAreCounted) {
  auto sink = std::make_shared<Sink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  ASSERT_EQ(sink->sent.size(), 1u);
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[0], true));
  put(endpoint("web", "http", "eu", "198.51.100.2", 128));
  registry_->push_all();
  ASSERT_EQ(sink->sent.size(), 2u);
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[1], false));

  std::string t = text(metrics_.registry()->Collect());
  // Per host of the PoP: an agent that names none is the host "".
  EXPECT_TRUE(has(t, "onramp_push_ack_seconds_count{host=\"\",pop=\"FRA1\"} 1")) << t;
  EXPECT_TRUE(has(t, "onramp_table_nacks_total{pop=\"FRA1\"} 1")) << t;
  EXPECT_TRUE(has(t, "onramp_route_changes_total{pop=\"FRA1\",reason=\"configuration\"} 1")) << t;
  // Five commits (four in SetUp) went through the timed store.
  EXPECT_TRUE(has(t, "onramp_store_operation_seconds_count{op=\"commit\"} 5")) << t;
}

TEST_F(ControllerMetricsTest, PopsByStateAndVersions) {
  auto sink = std::make_shared<Sink>();
  ASSERT_TRUE(registry_->hello(sink, "", hello("FRA1")).ok());
  ASSERT_TRUE(registry_->hello(std::make_shared<Sink>(), "", hello("IAD1")).ok());
  // IAD1's connect gave FRA1 a second table (IAD1 is its mesh peer), at a
  // configuration version bumped once for it.
  ASSERT_EQ(sink->sent.size(), 2u);
  registry_->ack(sink.get(), "FRA1", ack(sink->sent[1], true));
  PopCollector pops([this] { return registry_->list_pops(); },
                    [this] { return timed_->snapshot()->version; });
  std::string t = text(pops.Collect());
  EXPECT_TRUE(has(t, "onramp_pops{state=\"connected\"} 2")) << t;
  EXPECT_TRUE(has(t, "onramp_pops{state=\"disconnected\"} 0")) << t;
  uint64_t v = sink->sent[1].version();
  EXPECT_TRUE(has(t, "onramp_pop_applied_table_version{pop=\"FRA1\"} " + std::to_string(v))) << t;
  EXPECT_TRUE(has(t, "onramp_pop_computed_table_version{pop=\"FRA1\"} " + std::to_string(v))) << t;
  EXPECT_TRUE(has(t, "onramp_pop_applied_table_version{pop=\"IAD1\"} 0")) << t;
  EXPECT_TRUE(has(t, "onramp_config_version 5")) << t;
}

// Replicas on etcd list a PoP connected to another replica as connected,
// without hosts: only the replica that holds it gives its series, so that
// alerts see one set per PoP (and no stale versions from the others).
TEST_F(ControllerMetricsTest, APopOnAnotherReplicaHasItsSeriesThere) {
  PopCollector pops(
      [] {
        v1::ListPopsResponse list;
        v1::Pop* here = list.add_pops();
        here->set_id("FRA1");
        here->set_state(v1::POP_CONNECTED);
        here->add_hosts()->set_name("fra1-a");
        v1::Pop* there = list.add_pops();
        there->set_id("SIN1");
        there->set_state(v1::POP_CONNECTED);
        there->set_applied_version(3);
        there->set_sent_version(4);
        return list;
      },
      [] { return uint64_t{4}; });
  std::string t = text(pops.Collect());
  EXPECT_TRUE(has(t, "onramp_pops{state=\"connected\"} 1")) << t;
  EXPECT_TRUE(has(t, "onramp_pops{state=\"on_another_replica\"} 1")) << t;
  EXPECT_TRUE(has(t, "onramp_pop_connected{pop=\"FRA1\"} 1")) << t;
  EXPECT_EQ(t.find("pop=\"SIN1\""), std::string::npos) << t;
}

// The admin server's interceptor: every call counted by method and the
// status code it ended with, through a real gRPC server.
TEST_F(ControllerMetricsTest, AdminCallsAreCountedByTheServer) {
  ControllerMetrics metrics;
  ServerOptions o{.admin_listen = "127.0.0.1:0",
                  .pop_listen = "127.0.0.1:0",
                  .plaintext = true,
                  .metrics = &metrics};
  auto started = ControllerServer::start(*store_, o);
  ASSERT_TRUE(started.ok()) << started.error();
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string((*started)->admin_port()),
                                     grpc::InsecureChannelCredentials());
  auto admin = v1::AdminService::NewStub(channel);
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    v1::ListPopsResponse out;
    EXPECT_TRUE(admin->ListPops(&ctx, v1::ListPopsRequest(), &out).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::AcceleratorKey req;
    req.set_name("nope");
    v1::Accelerator out;
    EXPECT_EQ(admin->GetAccelerator(&ctx, req, &out).error_code(), grpc::NOT_FOUND);
  }
  (*started)->shutdown();
  std::string t = text(metrics.registry()->Collect());
  EXPECT_TRUE(has(t, "onramp_admin_requests_total{code=\"OK\",method=\"ListPops\"} 2")) << t;
  EXPECT_TRUE(has(t, "onramp_admin_requests_total{code=\"NOT_FOUND\",method=\"GetAccelerator\"} 1"))
      << t;
}

TEST_F(ControllerMetricsTest, AdminRequestsByMethodAndCode) {
  metrics_.admin_request("CreateListener", "OK");
  metrics_.admin_request("CreateListener", "OK");
  metrics_.admin_request("GetListener", "NOT_FOUND");
  std::string t = text(metrics_.registry()->Collect());
  EXPECT_TRUE(has(t, "onramp_admin_requests_total{code=\"OK\",method=\"CreateListener\"} 2") ||
              has(t, "onramp_admin_requests_total{method=\"CreateListener\",code=\"OK\"} 2"))
      << t;
  EXPECT_TRUE(has(t, "NOT_FOUND")) << t;
}

}  // namespace
}  // namespace onramp::ctl::test
