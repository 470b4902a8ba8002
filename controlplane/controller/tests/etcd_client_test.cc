// The controller's etcd client against a real etcd member (etcd-server,
// started by the test on loopback with its own data directory): etcd://
// URLs, reads, and transactions that apply only at the revisions they read.
#include "controlplane/controller/etcd_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controlplane/controller/etcd_store.h"
#include "controlplane/controller/tests/etcd_process.h"
#include "controlplane/controller/tests/fixtures.h"

namespace onramp::ctl {
namespace {

using ::testing::HasSubstr;

TEST(EtcdUrl, MembersAndPrefix) {
  auto url =
      parse_etcd_url("etcd://10.0.0.1:2379,etcd-b.example.net:2379,[2001:db8::3]:2379/onramp/prod");
  ASSERT_TRUE(url.ok()) << url.error();
  ASSERT_EQ(url->endpoints.size(), 3u);
  EXPECT_EQ(url->endpoints[1].text(), "etcd-b.example.net:2379");
  EXPECT_EQ(url->endpoints[2].host, "2001:db8::3");
  EXPECT_EQ(url->prefix, "/onramp/prod/");
  EXPECT_EQ(parse_etcd_url("etcd://127.0.0.1:2379/x/")->prefix, "/x/");
}

TEST(EtcdUrl, MistakesAreNamed) {
  auto err = [](const std::string& u) {
    auto r = parse_etcd_url(u);
    return r.ok() ? std::string("(accepted)") : r.error();
  };
  EXPECT_THAT(err("http://127.0.0.1:2379/onramp"), HasSubstr("not an etcd URL"));
  EXPECT_THAT(err("etcd://127.0.0.1:2379"), HasSubstr("no key prefix"));
  EXPECT_THAT(err("etcd://127.0.0.1:2379/"), HasSubstr("no key prefix"));
  EXPECT_THAT(err("etcd://127.0.0.1/onramp"), HasSubstr("no port"));
  EXPECT_THAT(err("etcd://a:1,a:1/onramp"), HasSubstr("given twice"));
  EXPECT_THAT(err("etcd://a:1/on ramp"), HasSubstr("the prefix may hold"));
  EXPECT_THAT(err("etcd://a:1/onramp//x"), HasSubstr("an empty part"));
}

TEST(EtcdUrl, PrefixEnd) {
  EXPECT_EQ(prefix_end("/onramp/"), "/onramp0");
  EXPECT_EQ(prefix_end("a\xff"), "b");
  EXPECT_EQ(prefix_end(""), std::string(1, '\0'));
}

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::etcd_binary().empty()) GTEST_SKIP() << "no etcd ($ONRAMP_ETCD)";
    ASSERT_TRUE(etcd.listening()) << "etcd did not start; see " << etcd.dir() << "/etcd.log";
    auto url = parse_etcd_url("etcd://" + etcd.endpoint() + "/onramp/test");
    ASSERT_TRUE(url.ok()) << url.error();
    client = std::make_unique<EtcdClient>(
        *url, EtcdClient::Options{.credentials = grpc::InsecureChannelCredentials()});
  }
  test::EtcdProcess etcd;
  std::unique_ptr<EtcdClient> client;
};

TEST_F(EtcdClientTest, PutsAndReadsUnderAPrefix) {
  auto empty = client->get_prefix("/onramp/test/");
  ASSERT_TRUE(empty.ok()) << empty.error();
  EXPECT_TRUE(empty->kvs.empty());

  auto put = client->txn(
      {.puts = {{"/onramp/test/a", "1"}, {"/onramp/test/b", "2"}, {"/onramp/other", "x"}}});
  ASSERT_TRUE(put.ok()) << put.error();
  EXPECT_TRUE(put->committed);
  auto all = client->get_prefix("/onramp/test/");
  ASSERT_TRUE(all.ok()) << all.error();
  ASSERT_EQ(all->kvs.size(), 2u);  // not /onramp/other
  EXPECT_EQ(all->kvs[0].key(), "/onramp/test/a");
  EXPECT_EQ(all->kvs[1].value(), "2");
  EXPECT_EQ(all->revision, put->revision);
  // Both keys of one transaction carry its one revision.
  EXPECT_EQ(all->kvs[0].mod_revision(), put->revision);
  EXPECT_EQ(all->kvs[1].mod_revision(), put->revision);
}

// The store's watch reads the configuration again only for a batch that
// touches it, not for one of shared measurements alone: it needs the keys.
TEST_F(EtcdClientTest, AWatchTellsTheKeysOfEachBatch) {
  auto head = client->get("/onramp/test/");
  ASSERT_TRUE(head.ok()) << head.error();
  ASSERT_TRUE(
      client->txn({.puts = {{"/onramp/test/measurements/FRA1", "m"}, {"/onramp/test/x", "1"}}})
          .ok());
  grpc::ClientContext ctx;
  std::vector<std::string> seen;
  grpc::Status s = client->watch_keys(
      "/onramp/test/", head->revision + 1,
      [&](int64_t, const std::vector<std::string>& keys) {
        seen = keys;
        ctx.TryCancel();
      },
      ctx);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(seen, (std::vector<std::string>{"/onramp/test/measurements/FRA1", "/onramp/test/x"}));
}

// What every admin mutation of the etcd store rests on: a write based on a
// read applies only while what it read is unchanged, so two replicas that
// race cannot both win, and neither write is lost unnoticed.
TEST_F(EtcdClientTest, ATransactionAppliesOnlyAtTheRevisionsItRead) {
  ASSERT_TRUE(client->txn({.puts = {{"/onramp/test/ep", "v1"}}}).ok());
  auto read = client->get("/onramp/test/ep");
  ASSERT_TRUE(read.ok() && read->kvs.size() == 1) << read.status().message();
  int64_t seen = read->kvs[0].mod_revision();

  // Two writers that read the same revision: the first wins...
  auto first = client->txn(
      {.expect = {{"/onramp/test/ep", seen}}, .puts = {{"/onramp/test/ep", "from replica 1"}}});
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_TRUE(first->committed);
  // ...the second, based on the same read, is refused and changes nothing.
  auto second = client->txn({.expect = {{"/onramp/test/ep", seen}},
                             .puts = {{"/onramp/test/ep", "from replica 2"}},
                             .deletes = {"/onramp/test/other"}});
  ASSERT_TRUE(second.ok()) << second.error();
  EXPECT_FALSE(second->committed);
  auto now = client->get("/onramp/test/ep");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->kvs[0].value(), "from replica 1");

  // Revision 0: "does not exist yet", for creates.
  auto create =
      client->txn({.expect = {{"/onramp/test/new", 0}}, .puts = {{"/onramp/test/new", "n"}}});
  ASSERT_TRUE(create.ok() && create->committed);
  auto again =
      client->txn({.expect = {{"/onramp/test/new", 0}}, .puts = {{"/onramp/test/new", "n2"}}});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->committed);

  // A delete, under the revision it read.
  auto gone = client->txn(
      {.expect = {{"/onramp/test/new", create->revision}}, .deletes = {"/onramp/test/new"}});
  ASSERT_TRUE(gone.ok() && gone->committed);
  auto after = client->get("/onramp/test/new");
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->kvs.empty());
}

// What the owner election rests on: a key created on a lease only while
// absent, renewed with the lease, gone when the lease is revoked.
TEST_F(EtcdClientTest, AKeyOnALeaseGoesWithTheLease) {
  auto lease = client->lease_grant(std::chrono::seconds(5));
  ASSERT_TRUE(lease.ok()) << lease.error();
  EXPECT_NE(lease->id, 0);
  EXPECT_EQ(lease->ttl_s, 5);
  auto made = client->txn({.expect = {{"/onramp/test/meta/owner", 0}},
                           .puts = {{"/onramp/test/meta/owner", "r1"}},
                           .lease = lease->id});
  ASSERT_TRUE(made.ok() && made->committed);
  auto held = client->get("/onramp/test/meta/owner");
  ASSERT_TRUE(held.ok() && held->kvs.size() == 1);
  EXPECT_EQ(held->kvs[0].lease(), lease->id);

  auto renewed = client->lease_keep_alive(lease->id);
  ASSERT_TRUE(renewed.ok()) << renewed.error();
  EXPECT_EQ(*renewed, 5);

  ASSERT_TRUE(client->lease_revoke(lease->id).ok());
  auto gone = client->get("/onramp/test/meta/owner");
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->kvs.empty());
  // A lease that is gone renews for 0 s, and revoking it again is no error.
  auto after = client->lease_keep_alive(lease->id);
  ASSERT_TRUE(after.ok()) << after.error();
  EXPECT_EQ(*after, 0);
  EXPECT_TRUE(client->lease_revoke(lease->id).ok());
}

TEST_F(EtcdClientTest, CompactionDropsOlderRevisions) {
  auto first = client->txn({.puts = {{"/onramp/test/c", "1"}}});
  auto second = client->txn({.puts = {{"/onramp/test/c", "2"}}});
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(client->compact(second->revision).ok());
  // Again, or older: already done, not an error.
  EXPECT_TRUE(client->compact(second->revision).ok());
  EXPECT_TRUE(client->compact(first->revision).ok());
  auto now = client->get("/onramp/test/c");
  ASSERT_TRUE(now.ok() && now->kvs.size() == 1);
  EXPECT_EQ(now->kvs[0].value(), "2");
}

TEST_F(EtcdClientTest, AMemberThatIsDownIsAnErrorThatSaysSo) {
  etcd.stop();
  auto r = client->get("/onramp/test/x");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr("etcd get /onramp/test/x"));
}

// Issue 13 item 5, a minority partition: a store whose etcd is gone refuses
// a commit as unavailable, saying where etcd was and that nothing changed,
// within the client's deadline, and keeps its snapshot for reads.
TEST_F(EtcdClientTest, ACommitWithoutEtcdIsUnavailableAndSaysNothingChanged) {
  auto url = parse_etcd_url("etcd://" + etcd.endpoint() + "/onramp/test");
  ASSERT_TRUE(url.ok()) << url.error();
  auto store =
      EtcdStore::open(*url,
                      EtcdClient::Options{.credentials = grpc::InsecureChannelCredentials(),
                                          .timeout = std::chrono::milliseconds(1000)},
                      {.init = true});
  ASSERT_TRUE(store.ok()) << store.error();
  ConfigChange first;
  first.puts.push_back(test::accelerator("web", {"203.0.113.10"}));
  ASSERT_EQ((*store)->commit(first, 0).outcome, CommitResult::Outcome::committed);

  etcd.stop();
  ConfigChange second;
  second.puts.push_back(test::accelerator("api", {"203.0.113.20"}));
  auto t0 = std::chrono::steady_clock::now();
  CommitResult r = (*store)->commit(second, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(r.outcome, CommitResult::Outcome::unavailable);
  EXPECT_THAT(r.error, HasSubstr("the configuration store (etcd at " + etcd.endpoint() +
                                 ") cannot be reached: "));
  EXPECT_THAT(r.error, HasSubstr("; nothing was changed"));
  auto kept = (*store)->snapshot();
  EXPECT_EQ(kept->version, 1u);
  EXPECT_EQ(kept->accelerators.size(), 1u);
}

// A stand-in etcd member: the identity and version keys of an empty store,
// and every transaction answered as etcd answers one it took but could not
// commit in time (UNAVAILABLE "etcdserver: request timed out").
class TimingOutMember final : public etcdserverpb::KV::Service {
 public:
  explicit TimingOutMember(std::string prefix) : prefix_(std::move(prefix)) {}
  grpc::Status Range(grpc::ServerContext*, const etcdserverpb::RangeRequest* req,
                     etcdserverpb::RangeResponse* resp) override {
    resp->mutable_header()->set_revision(2);
    for (auto [key, value] :
         {std::pair<std::string, std::string>{"meta/identity", "0123456789abcdef 1"},
          {"meta/version", "0"}}) {
      if (req->key() != prefix_ + key && req->range_end().empty()) continue;
      etcdserverpb::KeyValue* kv = resp->add_kvs();
      kv->set_key(prefix_ + key);
      kv->set_value(value);
      kv->set_mod_revision(2);
    }
    return grpc::Status::OK;
  }
  grpc::Status Txn(grpc::ServerContext*, const etcdserverpb::TxnRequest*,
                   etcdserverpb::TxnResponse*) override {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: request timed out");
  }

 private:
  const std::string prefix_;
};

// An UNAVAILABLE from etcd itself is not "nothing was changed": the member
// took the transaction and may still commit it (before this, every
// UNAVAILABLE was reported as nothing changed).
TEST(EtcdStoreRefusal, EtcdsOwnTimeoutIsNotNothingChanged) {
  TimingOutMember member("/onramp/test/");
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&member);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_TRUE(server && port > 0);
  auto url = parse_etcd_url("etcd://127.0.0.1:" + std::to_string(port) + "/onramp/test");
  ASSERT_TRUE(url.ok()) << url.error();
  auto store =
      EtcdStore::open(*url, EtcdClient::Options{.credentials = grpc::InsecureChannelCredentials()});
  ASSERT_TRUE(store.ok()) << store.error();
  ConfigChange change;
  change.puts.push_back(test::accelerator("web", {"203.0.113.10"}));
  CommitResult r = (*store)->commit(change, 0);
  EXPECT_EQ(r.outcome, CommitResult::Outcome::unavailable);
  EXPECT_THAT(r.error, HasSubstr("did not confirm the change: etcdserver: request timed out"));
  EXPECT_THAT(r.error, HasSubstr("read it back before retrying"));
  EXPECT_THAT(r.error, ::testing::Not(HasSubstr("nothing was changed")));
  server->Shutdown();
}

}  // namespace
}  // namespace onramp::ctl
