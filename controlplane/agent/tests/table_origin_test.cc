// Issue 12 finding 2: a controller started on an empty store pushed an empty
// table to every PoP, which applied it. The agent's decision on where a
// table comes from, rule by rule, and the agent refusing (and, after an
// operator's adopt, taking) a table that would take it backwards.
#include "controlplane/agent/table_origin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "controlplane/agent/agent.h"
#include "controlplane/agent/tests/fakes.h"

namespace onramp::agent::test {
namespace {

using ::testing::HasSubstr;

const TableOrigin kRuns{.store_id = "aaaaaaaaaaaaaaaa", .epoch = 2, .version = 14281};

TEST(TableOrigin, Finding2FirstTableAndTablesFromBeforeIdentitiesAreTaken) {
  EXPECT_TRUE(
      may_apply(std::nullopt, {.store_id = "bbbbbbbbbbbbbbbb", .epoch = 1, .version = 1}, false)
          .ok());
  // A table kept from before stores had ids: nothing to compare against.
  EXPECT_TRUE(may_apply(TableOrigin{.version = 14281},
                        {.store_id = "bbbbbbbbbbbbbbbb", .epoch = 1, .version = 1}, false)
                  .ok());
}

TEST(TableOrigin, Finding2BackwardsIsRefusedWithTheReason) {
  Status other =
      may_apply(kRuns, {.store_id = "bbbbbbbbbbbbbbbb", .epoch = 1, .version = 1}, false);
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(other.message(), HasSubstr("table from another store refused"));
  EXPECT_THAT(other.message(), HasSubstr("it runs store aaaaaaaaaaaaaaaa epoch 2 version 14281"));
  EXPECT_THAT(other.message(), HasSubstr("onrampctl pop adopt"));

  Status older_epoch =
      may_apply(kRuns, {.store_id = kRuns.store_id, .epoch = 1, .version = 20000}, false);
  ASSERT_FALSE(older_epoch.ok());
  EXPECT_THAT(older_epoch.message(), HasSubstr("older epoch"));

  Status lower = may_apply(kRuns, {.store_id = kRuns.store_id, .epoch = 2, .version = 1}, false);
  ASSERT_FALSE(lower.ok());
  EXPECT_THAT(lower.message(), HasSubstr("older than the one the PoP runs"));

  Status anonymous = may_apply(kRuns, {.version = 20000}, false);
  ASSERT_FALSE(anonymous.ok());
  EXPECT_THAT(anonymous.message(), HasSubstr("without a store identity"));
}

TEST(TableOrigin, Finding2ForwardANewEpochOrAdoptIsTaken) {
  EXPECT_TRUE(may_apply(kRuns, {.store_id = kRuns.store_id, .epoch = 2, .version = 14281}, false)
                  .ok());  // the same table again (a digest mismatch)
  EXPECT_TRUE(
      may_apply(kRuns, {.store_id = kRuns.store_id, .epoch = 2, .version = 14282}, false).ok());
  // A new epoch (a restored backup) is the operator's word on lower versions.
  EXPECT_TRUE(
      may_apply(kRuns, {.store_id = kRuns.store_id, .epoch = 3, .version = 9000}, false).ok());
  EXPECT_TRUE(
      may_apply(kRuns, {.store_id = "bbbbbbbbbbbbbbbb", .epoch = 1, .version = 1}, true).ok());
}

v1::TableUpdate update_from(const std::string& store, uint64_t epoch, uint64_t version,
                            v1::ForwardingTable table) {
  v1::TableUpdate u;
  u.set_version(version);
  u.set_nonce("n-" + std::to_string(version));
  u.set_store_id(store);
  u.set_epoch(epoch);
  *u.mutable_table() = std::move(table);
  return u;
}

TEST(TableOrigin, Finding2AnAgentKeepsItsTableFromStoreAUntilAdoptThenTakesStoreB) {
  TempDir dir;
  FakeDataplane dataplane;
  {
    Agent agent(fra1_agent_config(dir.path), dataplane);
    ASSERT_TRUE(agent.on_update(update_from("aaaaaaaaaaaaaaaa", 1, 14281, sample_table(0))).ok());
  }
  // Restarted: the store and epoch came back with the last good table.
  Agent agent(fra1_agent_config(dir.path), dataplane);
  agent.restore();
  v1::ForwardingTable empty = sample_table(0);
  empty.clear_listeners();
  v1::TableAck nack = agent.on_update(update_from("bbbbbbbbbbbbbbbb", 1, 1, empty));
  EXPECT_FALSE(nack.ok());
  EXPECT_THAT(nack.error(), HasSubstr("table from another store refused"));
  EXPECT_EQ(dataplane.applied().size(), 1u);  // still the table from store A
  EXPECT_EQ(agent.last_good_version(), 14281u);
  auto kept = TableStore(dir.path).load_last_good();
  ASSERT_TRUE(kept.ok() && *kept) << kept.error();
  EXPECT_EQ((*kept)->meta.store_id, "aaaaaaaaaaaaaaaa");
  EXPECT_GT((*kept)->table.listeners_size(), 0);

  v1::TableUpdate adopted = update_from("bbbbbbbbbbbbbbbb", 1, 1, empty);
  adopted.set_adopt(true);
  v1::TableAck ack = agent.on_update(adopted);
  EXPECT_TRUE(ack.ok()) << ack.error();
  EXPECT_EQ(agent.last_good_version(), 1u);
  auto now = TableStore(dir.path).load_last_good();
  ASSERT_TRUE(now.ok() && *now) << now.error();
  EXPECT_EQ((*now)->meta.store_id, "bbbbbbbbbbbbbbbb");
  EXPECT_EQ((*now)->meta.epoch, 1u);
  // From now on store B's later versions go through without adopt.
  EXPECT_TRUE(agent.on_update(update_from("bbbbbbbbbbbbbbbb", 1, 2, sample_table(0))).ok());
}

// A last good table that fails its check is not applied, but its header
// still says which store the PoP ran: a damaged file does not let another
// store's table in.
TEST(TableOrigin, Finding2AndFinding4ADamagedTableStillNamesItsStore) {
  TempDir dir;
  FakeDataplane dataplane;
  {
    Agent agent(fra1_agent_config(dir.path), dataplane);
    ASSERT_TRUE(agent.on_update(update_from("aaaaaaaaaaaaaaaa", 1, 14281, sample_table(0))).ok());
  }
  auto origin = TableStore(dir.path).load_origin();
  ASSERT_TRUE(origin.ok() && *origin) << origin.error();
  EXPECT_EQ((*origin)->version, 14281u);
  std::string path = TableStore(dir.path).path();
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);

  Agent agent(fra1_agent_config(dir.path), dataplane);
  agent.restore();
  EXPECT_EQ(agent.last_good_version(), 0u);  // not applied
  EXPECT_EQ(agent.hello().applied_digest(), "");
  v1::TableAck nack = agent.on_update(update_from("bbbbbbbbbbbbbbbb", 1, 1, sample_table(0)));
  EXPECT_FALSE(nack.ok());
  EXPECT_THAT(nack.error(), HasSubstr("another store"));
  // The same store's table (the controller re-sends it) is taken.
  EXPECT_TRUE(agent.on_update(update_from("aaaaaaaaaaaaaaaa", 1, 14281, sample_table(0))).ok());
}

}  // namespace
}  // namespace onramp::agent::test
