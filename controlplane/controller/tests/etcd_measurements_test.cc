// The measurement exchange on a real etcd member started by the test
// (etcd_measurements.h): what one replica publishes reaches another, a
// change within the margins is not written, writes of one PoP keep their
// interval, a withdrawal and a replica that stops take the PoP away, and
// the write rate of PoPs whose RTTs jitter as smoothed RTTs do.
#include "controlplane/controller/etcd_measurements.h"

#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <random>
#include <thread>

#include "common/log.h"
#include "controlplane/controller/tests/etcd_process.h"

namespace onramp::ctl {
namespace {

using namespace std::chrono_literals;

SharedSnapshot snapshot(const std::string& pop, double rtt, bool healthy = true) {
  auto m = std::make_shared<v1::SharedMeasurements>();
  m->set_pop(pop);
  m->mutable_tunnel_source()->set_ipv4("192.0.2.2");
  m->set_dataplane_healthy(true);
  m->set_bgp_announced(true);
  v1::ProbeResult* r = m->mutable_probes()->add_results();
  r->set_accelerator("web");
  r->set_listener("http");
  r->set_endpoint_group("ap");
  r->set_address("198.51.100.2");
  r->set_known(true);
  r->set_healthy(healthy);
  r->set_rtt_ms(rtt);
  return m;
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

class EtcdMeasurementsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::etcd_binary().empty()) GTEST_SKIP() << "no etcd ($ONRAMP_ETCD)";
    ASSERT_TRUE(etcd.listening()) << "etcd did not start; see " << etcd.dir() << "/etcd.log";
    log::set_level(log::Level::warn);
  }
  void TearDown() override { log::set_level(log::Level::info); }

  std::unique_ptr<EtcdMeasurements> replica(const std::string& name) {
    auto url = parse_etcd_url("etcd://" + etcd.endpoint() + "/onramp/test");
    EXPECT_TRUE(url.ok());
    auto r = std::make_unique<EtcdMeasurements>(
        *url, EtcdClient::Options{.credentials = grpc::InsecureChannelCredentials()},
        EtcdMeasurements::Options{.prefix = url->prefix, .replica = name, .ttl = 2s});
    r->start();
    return r;
  }

  test::EtcdProcess etcd;
};

TEST_F(EtcdMeasurementsTest, WhatOneReplicaPublishesAnotherSeesAndOnlyChangesThatMatterAreWritten) {
  auto a = replica("a");
  auto b = replica("b");
  std::atomic<int> told{0};
  b->follow([&](const std::string& pop) {
    if (pop == "SIN1") ++told;
  });
  EXPECT_FALSE(a->publish("SIN1", snapshot("SIN1", 100)));
  ASSERT_TRUE(eventually([&] { return b->get("SIN1") != nullptr; }, 3s));
  EXPECT_GE(told.load(), 1);
  EXPECT_EQ(b->get("SIN1")->replica(), "a");
  EXPECT_EQ(b->get("SIN1")->probes().results(0).rtt_ms(), 100);
  ASSERT_TRUE(eventually([&] { return a->writes() == 1; }, 1s));

  // 4 ms at 100 ms is within a quarter of the relay margin: not written.
  a->publish("SIN1", snapshot("SIN1", 104));
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(a->writes(), 1u);
  EXPECT_EQ(b->get("SIN1")->probes().results(0).rtt_ms(), 100);
  // A verdict is: written, and seen.
  a->publish("SIN1", snapshot("SIN1", 104, false));
  ASSERT_TRUE(eventually(
      [&] { return b->get("SIN1") && !b->get("SIN1")->probes().results(0).healthy(); }, 2s));
  EXPECT_EQ(a->writes(), 2u);

  // Twenty changes that matter within half a second: the interval holds
  // (at most one write per PoP per 500 ms), the last one is what is stored.
  // Each RTT is 10 % over the one before, so the last one moves routes
  // against any of them that was written (a quarter of the 20 % margin):
  // with steps of 50 ms, a write of the one before the last (1100) left the
  // last (1150) under the margin, and never written, whenever the interval
  // fell that way.
  auto start = std::chrono::steady_clock::now();
  int last = 0;
  for (int i = 0, rtt = 200; i < 20; ++i, rtt = rtt * 11 / 10) {
    a->publish("SIN1", snapshot("SIN1", rtt));
    last = rtt;  // 1206 in the end
    std::this_thread::sleep_for(25ms);
  }
  ASSERT_TRUE(eventually(
      [&] { return b->get("SIN1") && b->get("SIN1")->probes().results(0).rtt_ms() == last; }, 3s));
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LE(a->writes() - 2, static_cast<uint64_t>(elapsed / 0.5) + 1);

  // A withdrawal deletes the key.
  a->publish("SIN1", nullptr);
  EXPECT_TRUE(eventually([&] { return b->get("SIN1") == nullptr; }, 2s));
}

TEST_F(EtcdMeasurementsTest, AReplicaThatStopsTakesItsPopsAwayAndTheNewOneWritesThem) {
  auto a = replica("a");
  auto b = replica("b");
  a->publish("SIN1", snapshot("SIN1", 100));
  ASSERT_TRUE(eventually([&] { return b->get("SIN1") != nullptr; }, 3s));
  // SIN1 moves to b; a's session of it ends late and withdraws it: the
  // delete applies only to a's own write, so b's stays.
  b->publish("SIN1", snapshot("SIN1", 90));
  ASSERT_TRUE(eventually([&] { return b->get("SIN1")->replica() == "b"; }, 3s));
  a->publish("SIN1", nullptr);
  std::this_thread::sleep_for(700ms);
  ASSERT_NE(b->get("SIN1"), nullptr);
  EXPECT_EQ(b->get("SIN1")->replica(), "b");
  // b stops: its lease goes with it, and a sees SIN1 gone.
  ASSERT_TRUE(eventually([&] { return a->get("SIN1") != nullptr; }, 2s));
  b.reset();
  EXPECT_TRUE(eventually([&] { return a->get("SIN1") == nullptr; }, 3s));
}

// The steady-state write rate of PoPs whose smoothed RTTs jitter, printed
// for docs/controller.md "Shared measurements"; bounded by the interval.
TEST_F(EtcdMeasurementsTest, WriteRateOfJitteringPops) {
  constexpr int kPops = 20;
  for (double jitter : {0.05, 0.30}) {
    auto a = replica("a");
    std::mt19937 rng(7);
    std::normal_distribution<double> noise(0, jitter);  // per sample
    std::vector<double> smoothed(kPops);
    for (int p = 0; p < kPops; ++p) smoothed[p] = 20 + 10 * p;
    auto start = std::chrono::steady_clock::now();
    // Reports once a second per PoP, each RTT smoothed as the agent
    // smooths its probes (1/8 of each new sample).
    while (std::chrono::steady_clock::now() - start < 5s) {
      for (int p = 0; p < kPops; ++p) {
        smoothed[p] += ((20 + 10 * p) * (1 + noise(rng)) - smoothed[p]) / 8;
        const std::string pop = "POP" + std::to_string(p);
        a->publish(pop, snapshot(pop, smoothed[p]));
      }
      std::this_thread::sleep_for(1s);
    }
    std::this_thread::sleep_for(600ms);  // the last round's writes
    // The first write of each PoP is its connect; the rest is steady state.
    double steady = static_cast<double>(a->writes()) - kPops;
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "shared measurements: " << kPops << " PoPs, RTT samples jittering " << jitter * 100
              << " %: " << a->writes() << " writes in " << seconds << " s, "
              << steady / seconds / kPops << " writes/s per PoP after the first\n";
    EXPECT_LE(steady / seconds / kPops, 2.0);
  }
}

}  // namespace
}  // namespace onramp::ctl
