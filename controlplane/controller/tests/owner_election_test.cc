// The owner election of the single-owner jobs (owner_election.h) against a
// real etcd member started by the test: one owner among the replicas, jobs
// run only there, and another replica takes over when the owner stops or
// its lease ends.
#include "controlplane/controller/owner_election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "controlplane/controller/tests/etcd_process.h"

namespace onramp::ctl {
namespace {

using namespace std::chrono_literals;

constexpr char kKey[] = "/onramp/test/meta/owner";

class OwnerElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::etcd_binary().empty()) GTEST_SKIP() << "no etcd ($ONRAMP_ETCD)";
    ASSERT_TRUE(etcd.listening()) << "etcd did not start; see " << etcd.dir() << "/etcd.log";
    auto url = parse_etcd_url("etcd://" + etcd.endpoint() + "/onramp/test");
    ASSERT_TRUE(url.ok()) << url.error();
    for (auto& c : clients)
      c = std::make_unique<EtcdClient>(
          *url, EtcdClient::Options{.credentials = grpc::InsecureChannelCredentials()});
  }

  // Replica i's election, its job counting its runs in runs[i].
  std::unique_ptr<OwnerElection> replica(int i) {
    return std::make_unique<OwnerElection>(
        *clients[i],
        OwnerElection::Options{
            .key = kKey, .name = "r" + std::to_string(i), .ttl = 2s, .tick = 50ms},
        std::vector<OwnerElection::Job>{{.name = "count", .every = 20ms, .run = [this, i] {
                                           ++runs[i];
                                           return ok_status();
                                         }}});
  }

  // Waits up to `limit` for `pred`; true when it held.
  template <typename Pred>
  static bool eventually(Pred pred, std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return pred();
  }

  test::EtcdProcess etcd;
  std::unique_ptr<EtcdClient> clients[2];
  std::atomic<int> runs[2] = {0, 0};
};

TEST_F(OwnerElectionTest, OneOwnerRunsTheJobsAndAnotherTakesOverWhenItStops) {
  auto a = replica(0);
  ASSERT_TRUE(eventually([&] { return a->owner(); }, 3s));
  auto b = replica(1);
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(a->owner());
  EXPECT_FALSE(b->owner());
  EXPECT_GT(runs[0].load(), 5);
  EXPECT_EQ(runs[1].load(), 0);
  auto held = clients[1]->get(kKey);
  ASSERT_TRUE(held.ok() && held->kvs.size() == 1);
  EXPECT_EQ(held->kvs[0].value(), "r0");

  // A clean stop revokes the lease: B takes over at its next ticks, well
  // within the TTL.
  auto stopped = std::chrono::steady_clock::now();
  a.reset();
  ASSERT_TRUE(eventually([&] { return b->owner(); }, 1s));
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, 1s);
  int before = runs[1].load();
  EXPECT_TRUE(eventually([&] { return runs[1].load() > before + 3; }, 1s));
}

// The owner's lease ends behind its back (as when its renewals stop getting
// through): it stops running the jobs by its next renewal, and the other
// replica takes over.
TEST_F(OwnerElectionTest, AnOwnerWhoseLeaseEndedStopsAndTheOtherTakesOver) {
  auto a = replica(0);
  ASSERT_TRUE(eventually([&] { return a->owner(); }, 3s));
  auto b = replica(1);
  auto held = clients[1]->get(kKey);
  ASSERT_TRUE(held.ok() && held->kvs.size() == 1);
  ASSERT_TRUE(clients[1]->lease_revoke(held->kvs[0].lease()).ok());
  ASSERT_TRUE(eventually([&] { return b->owner(); }, 2s));
  // A renews every TTL/3 and finds its lease gone.
  ASSERT_TRUE(eventually([&] { return !a->owner(); }, 2s));
  int stopped_at = runs[0].load();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(runs[0].load(), stopped_at);
  EXPECT_FALSE(a->owner());
  auto now = clients[1]->get(kKey);
  ASSERT_TRUE(now.ok() && now->kvs.size() == 1);
  EXPECT_EQ(now->kvs[0].value(), "r1");
}

}  // namespace
}  // namespace onramp::ctl
