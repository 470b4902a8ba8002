// One suite, every store: what the controller relies on from ConfigStore
// (versions, resource versions, atomic commits, conflicts, reopen, identity,
// the PoP registry), run against the SQLite store and against the etcd
// store on a real etcd member that the test starts on loopback. The etcd
// store adds what only replicas meet: two of them racing on one prefix.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "controlplane/controller/etcd_store.h"
#include "controlplane/controller/sqlite_store.h"
#include "controlplane/controller/tests/etcd_process.h"
#include "controlplane/controller/tests/fixtures.h"

namespace onramp::ctl::test {
namespace {

using Outcome = CommitResult::Outcome;
using ::testing::HasSubstr;

// Opens the store under test; every open() of one backend sees the same
// data (the same file, the same etcd prefix), as a restarted controller or
// another replica would.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  virtual Result<std::unique_ptr<ConfigStore>> open(StoreOpenOptions options) = 0;
};

class SqliteBackend final : public StoreBackend {
 public:
  Result<std::unique_ptr<ConfigStore>> open(StoreOpenOptions options) override {
    auto s = SqliteStore::open(dir_.file("c.db"), options);
    if (!s.ok()) return s.status();
    return std::unique_ptr<ConfigStore>(std::move(*s));
  }

 private:
  TempDir dir_;
};

class EtcdBackend final : public StoreBackend {
 public:
  Result<std::unique_ptr<ConfigStore>> open(StoreOpenOptions options) override {
    if (!etcd_.listening()) return error("etcd did not start; see " + etcd_.dir() + "/etcd.log");
    auto url = parse_etcd_url("etcd://" + etcd_.endpoint() + "/onramp/test");
    if (!url.ok()) return url.status();
    auto s = EtcdStore::open(
        *url, EtcdClient::Options{.credentials = grpc::InsecureChannelCredentials()}, options);
    if (!s.ok()) return s.status();
    return std::unique_ptr<ConfigStore>(std::move(*s));
  }

 private:
  EtcdProcess etcd_;
};

class StoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "etcd") {
      if (etcd_binary().empty()) GTEST_SKIP() << "no etcd ($ONRAMP_ETCD)";
      backend = std::make_unique<EtcdBackend>();
    } else {
      backend = std::make_unique<SqliteBackend>();
    }
  }
  std::unique_ptr<ConfigStore> open(StoreOpenOptions options = {.init = true}) {
    auto s = backend->open(options);
    EXPECT_TRUE(s.ok()) << s.error();
    return s.ok() ? std::move(*s) : nullptr;
  }
  static CommitResult put(ConfigStore& s, Resource r) {
    ConfigChange ch;
    ch.puts.push_back(std::move(r));
    return s.commit(ch, s.snapshot()->version);
  }
  static CommitResult erase(ConfigStore& s, Resource r) {
    ConfigChange ch;
    ch.erasures.push_back(std::move(r));
    return s.commit(ch, s.snapshot()->version);
  }
  std::unique_ptr<StoreBackend> backend;
};

TEST_P(StoreContract, CrudBumpsTheVersion) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->snapshot()->version, 0u);
  EXPECT_EQ(put(*s, accelerator("web", {"203.0.113.10"})).outcome, Outcome::committed);
  EXPECT_EQ(put(*s, listener("web", "http", {{80, 80}})).outcome, Outcome::committed);
  EXPECT_EQ(put(*s, group("web", "http", "eu", "eu-central", 100)).outcome, Outcome::committed);
  auto r = put(*s, endpoint("web", "http", "eu", "198.51.100.1", 10));
  ASSERT_EQ(r.outcome, Outcome::committed) << r.error;
  EXPECT_EQ(r.config->version, 4u);
  r = put(*s, endpoint("web", "http", "eu", "198.51.100.1", 20));
  ASSERT_EQ(r.outcome, Outcome::committed) << r.error;
  EXPECT_EQ(s->snapshot()->endpoints.begin()->second.weight(), 20u);
  r = erase(*s, endpoint("web", "http", "eu", "198.51.100.1"));
  ASSERT_EQ(r.outcome, Outcome::committed) << r.error;
  EXPECT_TRUE(s->snapshot()->endpoints.empty());
  EXPECT_EQ(s->snapshot()->version, 6u);
}

TEST_P(StoreContract, ReopenKeepsEverything) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    v1::Accelerator web = accelerator("web", {"203.0.113.10", "2001:db8::10"});
    web.set_flow_logs(true);
    web.set_flow_log_sample_ppm(10000);
    ASSERT_EQ(put(*s, web).outcome, Outcome::committed);
    ASSERT_EQ(put(*s, listener("web", "http", {{80, 80}, {8000, 8099}})).outcome,
              Outcome::committed);
    ASSERT_EQ(put(*s, group("web", "http", "eu", "eu-central", 40)).outcome, Outcome::committed);
    ASSERT_EQ(put(*s, endpoint("web", "http", "eu", "2001:db8::7", 7)).outcome, Outcome::committed);
    PopRecord p;
    p.pop.set_id("FRA1");
    p.pop.set_city("Frankfurt");
    p.pop.set_applied_version(3);
    p.applied_digest = "00112233aabbccdd";
    p.route_memory = std::string("\0\1:2", 4);
    ASSERT_EQ(s->put_pops({p}).message(), "");
  }
  auto s = open({});
  ASSERT_TRUE(s);
  auto c = s->snapshot();
  EXPECT_EQ(c->version, 4u);
  EXPECT_EQ(c->accelerators.at("web").vips_size(), 2);
  EXPECT_TRUE(c->accelerators.at("web").flow_logs());
  EXPECT_EQ(c->accelerators.at("web").flow_log_sample_ppm(), 10000u);
  EXPECT_EQ(c->listeners.at("web/http").port_ranges(1).last(), 8099u);
  EXPECT_EQ(c->groups.at("web/http/eu").traffic_dial_percent(), 40u);
  EXPECT_EQ(c->endpoints.at("web/http/eu/2001:db8::7").weight(), 7u);
  EXPECT_EQ(c->endpoints.at("web/http/eu/2001:db8::7").resource_version(), 4u);
  auto pops = s->pops();
  ASSERT_EQ(pops.size(), 1u);
  EXPECT_EQ(pops[0].pop.city(), "Frankfurt");
  EXPECT_EQ(pops[0].pop.applied_version(), 3u);
  EXPECT_EQ(pops[0].applied_digest, "00112233aabbccdd");
  EXPECT_EQ(pops[0].route_memory, std::string("\0\1:2", 4));
}

TEST_P(StoreContract, AFailedCommitLeavesNothing) {
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_EQ(put(*s, accelerator("web", {"203.0.113.10"})).outcome, Outcome::committed);
  // The first put is fine, the second has no parent: nothing is written.
  ConfigChange ch;
  ch.puts.push_back(listener("web", "http", {{80, 80}}));
  ch.puts.push_back(group("web", "nope", "eu"));
  EXPECT_EQ(s->commit(ch, 1).outcome, Outcome::failed);
  EXPECT_EQ(s->snapshot()->version, 1u);
  EXPECT_TRUE(s->snapshot()->listeners.empty());
  ASSERT_EQ(put(*s, listener("web", "http", {{80, 80}})).outcome, Outcome::committed);
  // No parent erased under its children, nothing erased that is not there.
  EXPECT_EQ(erase(*s, accelerator("web", {})).outcome, Outcome::failed);
  EXPECT_EQ(erase(*s, accelerator("api", {})).outcome, Outcome::failed);
  EXPECT_EQ(s->snapshot()->version, 2u);
  // A stale expected version is a conflict, not a write.
  ConfigChange late;
  late.puts.push_back(accelerator("api", {"192.0.2.1"}));
  EXPECT_EQ(s->commit(late, 1).outcome, Outcome::conflict);
  s.reset();
  auto again = open({});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->snapshot()->version, 2u);
  EXPECT_EQ(again->snapshot()->accelerators.size(), 1u);
  EXPECT_EQ(again->snapshot()->listeners.size(), 1u);
  EXPECT_TRUE(again->snapshot()->groups.empty());
}

TEST_P(StoreContract, EveryWriteStampsTheResourceVersion) {
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_EQ(put(*s, accelerator("web", {"203.0.113.10"})).outcome, Outcome::committed);
  ASSERT_EQ(put(*s, listener("web", "http", {{80, 80}})).outcome, Outcome::committed);
  ASSERT_EQ(s->commit({}, 2).outcome, Outcome::committed);  // an empty commit bumps too
  ASSERT_EQ(put(*s, accelerator("web", {"203.0.113.11"})).outcome, Outcome::committed);
  EXPECT_EQ(s->snapshot()->accelerators.at("web").resource_version(), 4u);
  EXPECT_EQ(s->snapshot()->listeners.at("web/http").resource_version(), 2u);
  auto before = s->snapshot();
  ASSERT_EQ(put(*s, accelerator("api", {"192.0.2.1"})).outcome, Outcome::committed);
  EXPECT_EQ(before->accelerators.size(), 1u);  // snapshots are immutable
}

TEST_P(StoreContract, IdentityIsWrittenOnceAndOnlyWithInit) {
  auto refused = backend->open({});
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error(), HasSubstr("--init"));
  StoreIdentity first;
  {
    auto s = open();
    ASSERT_TRUE(s);
    first = s->identity();
    EXPECT_EQ(first.store_id.size(), 16u);
    EXPECT_EQ(first.epoch, 1u);
  }
  {
    auto s = open();  // --init again: opened as it is
    ASSERT_TRUE(s);
    EXPECT_EQ(s->identity().store_id, first.store_id);
    EXPECT_EQ(s->identity().epoch, 1u);
  }
  {
    auto s = open({.new_epoch = true});
    ASSERT_TRUE(s);
    EXPECT_EQ(s->identity().store_id, first.store_id);
    EXPECT_EQ(s->identity().epoch, 2u);
  }
  auto s = open({});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->identity().epoch, 2u);
}

INSTANTIATE_TEST_SUITE_P(EveryStore, StoreContract, ::testing::Values("sqlite", "etcd"),
                         [](const auto& info) { return info.param; });

// Two replicas on one etcd prefix, both at the same version: the first
// commit wins, the second is a conflict (not a lost write) and finds the
// first's change when it reads again; its retry then commits on top.
TEST(EtcdStoreReplicas, TwoReplicasRacingCannotBothWin) {
  if (etcd_binary().empty()) GTEST_SKIP() << "no etcd ($ONRAMP_ETCD)";
  EtcdBackend backend;
  auto a = backend.open({.init = true});
  auto b = backend.open({});
  ASSERT_TRUE(a.ok() && b.ok()) << (a.ok() ? b.error() : a.error());
  ConfigStore& one = **a;
  ConfigStore& two = **b;
  EXPECT_EQ(one.identity().store_id, two.identity().store_id);
  ASSERT_EQ(one.snapshot()->version, two.snapshot()->version);
  uint64_t v = one.snapshot()->version;

  ConfigChange from_one, from_two;
  from_one.puts.push_back(accelerator("web", {"203.0.113.10"}));
  from_two.puts.push_back(accelerator("api", {"203.0.113.20"}));
  ASSERT_EQ(one.commit(from_one, v).outcome, Outcome::committed);
  CommitResult lost = two.commit(from_two, v);
  EXPECT_EQ(lost.outcome, Outcome::conflict);
  EXPECT_THAT(lost.error, HasSubstr("another replica"));
  // Read again: the first replica's change is there, and the retry lands.
  auto seen = two.snapshot();
  EXPECT_EQ(seen->version, v + 1);
  EXPECT_EQ(seen->accelerators.count_prefix("web"), 1u);
  ASSERT_EQ(two.commit(from_two, seen->version).outcome, Outcome::committed);

  auto c = backend.open({});
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ((*c)->snapshot()->version, v + 2);
  EXPECT_EQ((*c)->snapshot()->accelerators.size(), 2u);
}

// A commit repeated on another member after its first attempt got no answer
// (etcd's leader killed) fails its compare when the first one applied: the
// store reads back what it wrote to tell that from another replica's
// commit, so it never reports a conflict it caused itself, nor applies it
// twice.
TEST(EtcdStoreReplicas, ARepeatedCommitTellsItsOwnEarlierAttemptFromAnotherCommit) {
  if (etcd_binary().empty()) GTEST_SKIP() << "no etcd ($ONRAMP_ETCD)";
  EtcdBackend backend;
  auto opened = backend.open({.init = true});
  ASSERT_TRUE(opened.ok()) << opened.error();
  auto& store = static_cast<EtcdStore&>(**opened);
  ConfigChange change;
  change.puts.push_back(accelerator("web", {"203.0.113.10"}));
  ASSERT_EQ(store.commit(change, store.snapshot()->version).outcome, Outcome::committed);
  const uint64_t v = store.snapshot()->version;
  // The transaction that commit sent, as a repeat would send it again.
  EtcdClient::Txn sent{.puts = {{store.version_key(), std::to_string(v)},
                                {"/onramp/test/accelerators/web",
                                 store.snapshot()->accelerators.at("web").SerializeAsString()}}};
  int64_t revision = 0;
  EXPECT_EQ(store.applied_earlier(sent, &revision), EtcdStore::Applied::yes);
  EXPECT_GT(revision, 0);
  // Another commit took that version with other content: not ours.
  EtcdClient::Txn other = sent;
  other.puts[1].second = "other";
  EXPECT_EQ(store.applied_earlier(other, &revision), EtcdStore::Applied::no);
  // A version the store has not reached: not applied.
  EtcdClient::Txn ahead = sent;
  ahead.puts[0].second = std::to_string(v + 1);
  EXPECT_EQ(store.applied_earlier(ahead, &revision), EtcdStore::Applied::no);
  // Commits on top of it: its resource still holds its value, so it did.
  ConfigChange more;
  more.puts.push_back(accelerator("api", {"203.0.113.20"}));
  ASSERT_EQ(store.commit(more, v).outcome, Outcome::committed);
  EXPECT_EQ(store.applied_earlier(sent, &revision), EtcdStore::Applied::yes);
  // One that would have changed a resource still at the revision it read
  // did not; one whose resource was changed again since cannot be told,
  // and is said so (neither a conflict, which the caller would apply
  // again, nor committed).
  auto api = store.snapshot()->accelerators.at("api");
  EtcdClient::Txn not_sent{.expect = {{"/onramp/test/accelerators/api", revision + 1}},
                           .puts = {{store.version_key(), std::to_string(v)},
                                    {"/onramp/test/accelerators/api", "never written"}}};
  EXPECT_EQ(store.applied_earlier(not_sent, &revision), EtcdStore::Applied::no);
  ConfigChange again;
  again.puts.push_back(accelerator("web", {"203.0.113.11"}));
  ASSERT_EQ(store.commit(again, v + 1).outcome, Outcome::committed);
  EXPECT_EQ(store.applied_earlier(sent, &revision), EtcdStore::Applied::unknown);
}

// A replica sees another's commit through its watch, without committing
// itself: its snapshot moves on and it is told (the controller pushes then).
TEST(EtcdStoreReplicas, AReplicaFollowsTheOthersCommits) {
  if (etcd_binary().empty()) GTEST_SKIP() << "no etcd ($ONRAMP_ETCD)";
  EtcdBackend backend;
  auto a = backend.open({.init = true});
  auto b = backend.open({});
  ASSERT_TRUE(a.ok() && b.ok()) << (a.ok() ? b.error() : a.error());
  std::atomic<int> told{0};
  (*b)->follow([&] { ++told; });
  // Its own commits do not count as another's.
  ConfigChange own;
  own.puts.push_back(accelerator("api", {"203.0.113.20"}));
  ASSERT_EQ((*b)->commit(own, (*b)->snapshot()->version).outcome, Outcome::committed);

  ConfigChange change;
  change.puts.push_back(accelerator("web", {"203.0.113.10"}));
  // a does not follow: its first try conflicts with b's commit and reads
  // again, the retry lands (the admin API's loop).
  ASSERT_EQ((*a)->commit(change, (*a)->snapshot()->version).outcome, Outcome::conflict);
  ASSERT_EQ((*a)->commit(change, (*a)->snapshot()->version).outcome, Outcome::committed);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while ((*b)->snapshot()->accelerators.size() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ((*b)->snapshot()->accelerators.size(), 2u);
  EXPECT_EQ((*b)->snapshot()->version, (*a)->snapshot()->version);
  EXPECT_EQ(told.load(), 1);
  (*b)->follow({});
  ASSERT_EQ((*a)->commit({}, (*a)->snapshot()->version).outcome, Outcome::committed);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(told.load(), 1) << "told after follow({})";
}

}  // namespace
}  // namespace onramp::ctl::test
