// The SQLite store: commits are atomic and versioned, a failed one leaves
// nothing behind, and everything is there again after a reopen.
#include "controlplane/controller/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "controlplane/controller/tests/fixtures.h"

namespace onramp::ctl::test {
namespace {

using Outcome = CommitResult::Outcome;

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::unique_ptr<SqliteStore> open_store(const std::string& path,
                                        StoreOpenOptions options = {.init = true}) {
  auto s = SqliteStore::open(path, options);
  EXPECT_TRUE(s.ok()) << s.error();
  return s.ok() ? std::move(*s) : nullptr;
}

CommitResult put(ConfigStore& s, Resource r) {
  ConfigChange ch;
  ch.puts.push_back(std::move(r));
  return s.commit(ch, s.snapshot()->version);
}

CommitResult erase(ConfigStore& s, Resource r) {
  ConfigChange ch;
  ch.erasures.push_back(std::move(r));
  return s.commit(ch, s.snapshot()->version);
}

TEST(SqliteStore, CrudBumpsTheVersion) {
  TempDir dir;
  auto s = open_store(dir.file("c.db"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->snapshot()->version, 0u);
  EXPECT_EQ(put(*s, accelerator("web", {"203.0.113.10"})).outcome, Outcome::committed);
  EXPECT_EQ(put(*s, listener("web", "http", {{80, 80}})).outcome, Outcome::committed);
  EXPECT_EQ(put(*s, group("web", "http", "eu", "eu-central", 100)).outcome, Outcome::committed);
  auto r = put(*s, endpoint("web", "http", "eu", "198.51.100.1", 10));
  ASSERT_EQ(r.outcome, Outcome::committed) << r.error;
  EXPECT_EQ(r.config->version, 4u);
  EXPECT_EQ(s->snapshot()->endpoints.size(), 1u);

  // Update replaces the body.
  r = put(*s, endpoint("web", "http", "eu", "198.51.100.1", 20));
  ASSERT_EQ(r.outcome, Outcome::committed);
  EXPECT_EQ(s->snapshot()->endpoints.begin()->second.weight(), 20u);
  EXPECT_EQ(s->snapshot()->version, 5u);

  r = erase(*s, endpoint("web", "http", "eu", "198.51.100.1"));
  ASSERT_EQ(r.outcome, Outcome::committed) << r.error;
  EXPECT_TRUE(s->snapshot()->endpoints.empty());
  EXPECT_EQ(s->snapshot()->version, 6u);
}

TEST(SqliteStore, ReopenKeepsEverything) {
  TempDir dir;
  {
    auto s = open_store(dir.file("c.db"));
    ASSERT_EQ(put(*s, accelerator("web", {"203.0.113.10", "2001:db8::10"})).outcome,
              Outcome::committed);
    ASSERT_EQ(put(*s, listener("web", "http", {{80, 80}, {8000, 8099}})).outcome,
              Outcome::committed);
    ASSERT_EQ(put(*s, group("web", "http", "eu", "eu-central", 40)).outcome, Outcome::committed);
    ASSERT_EQ(put(*s, endpoint("web", "http", "eu", "198.51.100.1", 7)).outcome,
              Outcome::committed);
    PopRecord p;
    p.pop.set_id("FRA1");
    p.pop.set_city("Frankfurt");
    p.pop.set_applied_version(3);
    p.applied_digest = "00112233aabbccdd";
    ASSERT_EQ(s->put_pops({p}).message(), "");
  }
  auto s = open_store(dir.file("c.db"));
  ASSERT_TRUE(s);
  auto c = s->snapshot();
  EXPECT_EQ(c->version, 4u);
  ASSERT_EQ(c->accelerators.size(), 1u);
  EXPECT_EQ(c->accelerators.at("web").vips_size(), 2);
  EXPECT_EQ(c->listeners.at("web/http").port_ranges(1).last(), 8099u);
  EXPECT_EQ(c->groups.at("web/http/eu").traffic_dial_percent(), 40u);
  EXPECT_EQ(c->endpoints.at("web/http/eu/198.51.100.1").weight(), 7u);
  auto pops = s->pops();
  ASSERT_EQ(pops.size(), 1u);
  EXPECT_EQ(pops[0].pop.city(), "Frankfurt");
  EXPECT_EQ(pops[0].pop.applied_version(), 3u);
  EXPECT_EQ(pops[0].applied_digest, "00112233aabbccdd");
}

TEST(SqliteStore, FailedTransactionLeavesNothing) {
  TempDir dir;
  {
    auto s = open_store(dir.file("c.db"));
    ASSERT_EQ(put(*s, accelerator("web", {"203.0.113.10"})).outcome, Outcome::committed);
    // The first put is fine; the second has no parent, so the foreign key
    // fails and the whole commit goes, version bump included.
    ConfigChange ch;
    ch.puts.push_back(listener("web", "http", {{80, 80}}));
    ch.puts.push_back(group("web", "nope", "eu"));
    auto r = s->commit(ch, 1);
    EXPECT_EQ(r.outcome, Outcome::failed);
    EXPECT_NE(r.error.find("FOREIGN KEY"), std::string::npos) << r.error;
    EXPECT_EQ(s->snapshot()->version, 1u);
    EXPECT_TRUE(s->snapshot()->listeners.empty());
    // Deleting a parent with children is refused by the file too.
    ASSERT_EQ(put(*s, listener("web", "http", {{80, 80}})).outcome, Outcome::committed);
    r = erase(*s, accelerator("web", {}));
    EXPECT_EQ(r.outcome, Outcome::failed);
    // Erasing what is not there is refused.
    r = erase(*s, accelerator("api", {}));
    EXPECT_EQ(r.outcome, Outcome::failed);
    EXPECT_EQ(s->snapshot()->version, 2u);
    // And a stale expected version is a conflict, not a write.
    ConfigChange late;
    late.puts.push_back(accelerator("api", {"192.0.2.1"}));
    r = s->commit(late, 1);
    EXPECT_EQ(r.outcome, Outcome::conflict);
  }
  auto s = open_store(dir.file("c.db"));
  EXPECT_EQ(s->snapshot()->version, 2u);
  EXPECT_EQ(s->snapshot()->accelerators.size(), 1u);
  EXPECT_EQ(s->snapshot()->listeners.size(), 1u);
  EXPECT_TRUE(s->snapshot()->groups.empty());
}

TEST(SqliteStore, EveryWriteStampsTheResourceVersion) {
  TempDir dir;
  {
    auto s = open_store(dir.file("c.db"));
    ASSERT_EQ(put(*s, accelerator("web", {"203.0.113.10"})).outcome, Outcome::committed);
    ASSERT_EQ(put(*s, listener("web", "http", {{80, 80}})).outcome, Outcome::committed);
    ASSERT_EQ(s->commit({}, 2).outcome, Outcome::committed);  // e.g. a health change
    ASSERT_EQ(put(*s, accelerator("web", {"203.0.113.11"})).outcome, Outcome::committed);
    auto c = s->snapshot();
    EXPECT_EQ(c->accelerators.at("web").resource_version(), 4u);
    EXPECT_EQ(c->listeners.at("web/http").resource_version(), 2u);
  }
  // The versions are in the rows: a reopen gives the same ones.
  auto s = open_store(dir.file("c.db"));
  EXPECT_EQ(s->snapshot()->accelerators.at("web").resource_version(), 4u);
  EXPECT_EQ(s->snapshot()->listeners.at("web/http").resource_version(), 2u);
}

TEST(SqliteStore, ADatabaseFromBeforeResourceVersionsIsUpgraded) {
  TempDir dir;
  std::string path = dir.file("c.db");
  {
    // Schema version 1 as an older controller left it: no resource_version
    // column, configuration version 9.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    v1::Accelerator a = accelerator("web", {"203.0.113.10"});
    v1::Listener l = listener("web", "http", {{80, 80}});
    std::string sql =
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO meta VALUES ('config_version', 9), ('schema_version', 1);"
        "CREATE TABLE accelerators (name TEXT PRIMARY KEY, body BLOB NOT NULL);"
        "CREATE TABLE listeners (accelerator TEXT NOT NULL REFERENCES accelerators (name),"
        " name TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (accelerator, name));"
        "INSERT INTO accelerators VALUES ('web', X'" +
        hex(a.SerializeAsString()) +
        "');"
        "INSERT INTO listeners VALUES ('web', 'http', X'" +
        hex(l.SerializeAsString()) + "');";
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  {
    auto s = open_store(path);
    ASSERT_TRUE(s);
    auto c = s->snapshot();
    EXPECT_EQ(c->version, 9u);
    // An upgraded store gets its identity at the upgrade: it is initialised.
    EXPECT_EQ(s->identity().store_id.size(), 16u);
    EXPECT_EQ(s->identity().epoch, 1u);
    EXPECT_EQ(c->accelerators.at("web").resource_version(), 9u);
    EXPECT_EQ(c->listeners.at("web/http").resource_version(), 9u);
    ASSERT_EQ(put(*s, listener("web", "http", {{8080, 8080}})).outcome, Outcome::committed);
  }
  auto s = open_store(path);  // the upgrade runs once
  ASSERT_TRUE(s);
  EXPECT_EQ(s->snapshot()->accelerators.at("web").resource_version(), 9u);
  EXPECT_EQ(s->snapshot()->listeners.at("web/http").resource_version(), 10u);
}

TEST(SqliteStore, OneProcessAtATime) {
  TempDir dir;
  auto first = open_store(dir.file("c.db"));
  auto second = SqliteStore::open(dir.file("c.db"));
  EXPECT_FALSE(second.ok());
  EXPECT_NE(second.error().find("in use by another onramp-controller"), std::string::npos)
      << second.error();
}

TEST(SqliteStore, EmptyCommitBumpsTheVersion) {
  TempDir dir;
  auto s = open_store(dir.file("c.db"));
  auto r = s->commit({}, 0);
  ASSERT_EQ(r.outcome, Outcome::committed);
  EXPECT_EQ(r.config->version, 1u);
}

TEST(SqliteStore, SnapshotsAreImmutable) {
  TempDir dir;
  auto s = open_store(dir.file("c.db"));
  auto before = s->snapshot();
  ASSERT_EQ(put(*s, accelerator("web", {"203.0.113.10"})).outcome, Outcome::committed);
  EXPECT_TRUE(before->accelerators.empty());
  EXPECT_EQ(before->version, 0u);
}

TEST(SqliteStore, InitCreatesTheFolder) {
  TempDir dir;
  auto s = open_store(dir.file("a/b/c.db"));
  EXPECT_TRUE(s);
}

// Issue 12 finding 2: a controller on an empty database wiped every PoP.
// Nothing that is not an initialised store opens without --init, and
// nothing is created trying.
TEST(SqliteStore, Finding2RefusesWhatIsNotAnInitialisedStoreWithoutInit) {
  TempDir dir;
  auto missing = SqliteStore::open(dir.file("c.db"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("is not an initialised onramp store (no such file)"),
            std::string::npos)
      << missing.error();
  EXPECT_NE(missing.error().find("--init"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("c.db")));

  auto no_folder = SqliteStore::open(dir.file("typo/c.db"));
  ASSERT_FALSE(no_folder.ok());
  EXPECT_NE(no_folder.error().find("its folder " + dir.file("typo") + " does not exist"),
            std::string::npos)
      << no_folder.error();
  EXPECT_FALSE(std::filesystem::exists(dir.file("typo")));

  { std::ofstream(dir.file("empty.db")); }
  auto empty = SqliteStore::open(dir.file("empty.db"));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().find("(the file is empty); start once with --init"), std::string::npos)
      << empty.error();

  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(dir.file("other.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x INTEGER)", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto other = SqliteStore::open(dir.file("other.db"));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().find("no onramp schema in it"), std::string::npos) << other.error();

  // --init creates the empty one as a store.
  EXPECT_TRUE(open_store(dir.file("empty.db")));
}

TEST(SqliteStore, Finding2InitWritesAnIdentityOnceAndIsANoOpAfter) {
  TempDir dir;
  StoreIdentity first;
  {
    auto s = open_store(dir.file("c.db"));
    ASSERT_TRUE(s);
    first = s->identity();
    EXPECT_EQ(first.store_id.size(), 16u);
    EXPECT_EQ(first.epoch, 1u);
    ASSERT_EQ(put(*s, accelerator("web", {"203.0.113.10"})).outcome, Outcome::committed);
  }
  {
    // --init on an initialised store opens it as it is.
    auto s = open_store(dir.file("c.db"));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->identity().store_id, first.store_id);
    EXPECT_EQ(s->identity().epoch, 1u);
    EXPECT_EQ(s->snapshot()->version, 1u);
  }
  {
    auto s = open_store(dir.file("c.db"), {});
    ASSERT_TRUE(s);
    EXPECT_EQ(s->identity().store_id, first.store_id);
  }
  {
    auto s = open_store(dir.file("c.db"), {.new_epoch = true});
    ASSERT_TRUE(s);
    EXPECT_EQ(s->identity().store_id, first.store_id);
    EXPECT_EQ(s->identity().epoch, 2u);
  }
  auto s = open_store(dir.file("c.db"), {});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->identity().epoch, 2u);
  // Another store has another id.
  auto other = open_store(dir.file("d.db"));
  ASSERT_TRUE(other);
  EXPECT_NE(other->identity().store_id, first.store_id);
}

// Hardening finding 8: creating the 10 000th endpoint cost seven times the
// first, because every commit copied the whole configuration. A commit now
// shares every resource it does not change with the snapshot before it:
// counted by address, not timed.
TEST(SqliteStore, Finding8ACommitCopiesOnlyWhatItChanges) {
  TempDir dir;
  auto s = open_store(dir.file("c.db"));
  ASSERT_TRUE(s);
  ASSERT_EQ(put(*s, accelerator("web", {"203.0.113.10"})).outcome, Outcome::committed);
  ASSERT_EQ(put(*s, listener("web", "http", {{80, 80}})).outcome, Outcome::committed);
  ASSERT_EQ(put(*s, group("web", "http", "eu")).outcome, Outcome::committed);
  constexpr int kEndpoints = 5000;
  ConfigChange bulk;
  for (int i = 0; i < kEndpoints; ++i)
    bulk.puts.push_back(endpoint(
        "web", "http", "eu", "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250)));
  ASSERT_EQ(s->commit(bulk, s->snapshot()->version).outcome, Outcome::committed);

  // The same addresses in memory: entries the commit did not copy.
  auto shared = [](const Config& a, const Config& b) {
    size_t n = 0;
    for (const auto& [key, e] : a.endpoints)
      if (auto it = b.endpoints.find(key); it != b.endpoints.end() && &it->second == &e) ++n;
    return n;
  };
  for (const char* address : {"10.0.0.100", "10.0.9.7", "192.0.2.1"}) {
    auto before = s->snapshot();
    auto r = put(*s, endpoint("web", "http", "eu", address, 7));
    ASSERT_EQ(r.outcome, Outcome::committed) << r.error;
    // At most the chunk the change falls in is copied (twice kChunk).
    EXPECT_GE(shared(*before, *r.config), before->endpoints.size() - 64) << address;
    EXPECT_EQ(r.config->endpoints.at(endpoint_key("web", "http", "eu", address)).weight(), 7u);
  }
  EXPECT_EQ(s->snapshot()->endpoints.size(), kEndpoints + 1u);
  // Reopened, the same configuration.
  auto before = s->snapshot();
  s.reset();
  s = open_store(dir.file("c.db"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->snapshot()->endpoints.size(), before->endpoints.size());
  for (const auto& [key, e] : before->endpoints)
    ASSERT_EQ(s->snapshot()->endpoints.at(key).weight(), e.weight()) << key;
}

}  // namespace
}  // namespace onramp::ctl::test
