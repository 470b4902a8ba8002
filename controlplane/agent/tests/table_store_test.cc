// The last good table on disk: round trip, atomic replacement, bad files
// (a syntax error, an invalid table, a link to a device).
#include "controlplane/agent/table_store.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "controlplane/agent/tests/fakes.h"

namespace onramp::agent::test {
namespace {

TEST(TableStore, SavesAndLoadsTheTable) {
  TempDir dir;
  TableStore store(dir.path + "/state");
  v1::ForwardingTable t = sample_table(12);
  t.set_next_hop_mac("02:00:00:00:00:fe");
  t.mutable_tunnel_source()->set_ipv4("192.0.2.1");

  auto loaded = store.load();
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_FALSE(*loaded);  // nothing yet

  Status saved = store.save(t);
  ASSERT_TRUE(saved.ok()) << saved.message();
  loaded = store.load();
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  ASSERT_TRUE(*loaded);
  EXPECT_EQ((*loaded)->ShortDebugString(), t.ShortDebugString());

  struct stat st {};
  ASSERT_EQ(stat((dir.path + "/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(store.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(store.path() + ".tmp"));

  t.set_version(13);
  ASSERT_TRUE(store.save(t).ok());
  loaded = store.load();
  ASSERT_TRUE(loaded.ok() && *loaded) << loaded.error();
  EXPECT_EQ((*loaded)->version(), 13u);
}

TEST(TableStore, RefusesAFileThatIsNotAValidTable) {
  TempDir dir;
  TableStore store(dir.path);
  std::ofstream(store.path()) << "version: 3\nlisteners { name: \"x\" }\n";
  auto loaded = store.load();
  EXPECT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().find(store.path() + ": "), std::string::npos) << loaded.error();
  std::ofstream(store.path()) << "not a table {";
  loaded = store.load();
  EXPECT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error(), store.path() +
                                ": line 1:5: Message type \"onramp.v1.ForwardingTable\" has no "
                                "field named \"not\".");
}

TEST(TableStore, ReportsAFolderItCannotWrite) {
  TempDir dir;
  std::ofstream(dir.path + "/file") << "x";
  TableStore store(dir.path + "/file/state");
  EXPECT_FALSE(store.save(sample_table(1)).ok());
}

// A last good table that is a link to /dev/zero (or any other device) is
// refused at once, not read for ever.
TEST(TableStore, RefusesALastGoodTableThatIsNotARegularFile) {
  TempDir dir;
  TableStore store(dir.path);
  ASSERT_EQ(::symlink("/dev/zero", store.path().c_str()), 0);
  auto loaded = store.load();
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error(), store.path() + ": not a regular file");

  // The same for the probe plan beside it.
  ASSERT_EQ(::symlink("/dev/zero", (dir.path + "/probe_plan.textproto").c_str()), 0);
  auto plan = store.load_plan();
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error(), dir.path + "/probe_plan.textproto: not a regular file");
}

TEST(TableStore, SavesAndLoadsThePlan) {
  TempDir dir;
  TableStore store(dir.path);
  auto none = store.load_plan();
  ASSERT_TRUE(none.ok()) << none.error();
  EXPECT_FALSE(*none);
  v1::ProbePlan plan;
  plan.add_targets()->set_address("192.0.2.10");
  ASSERT_TRUE(store.save_plan(plan).ok());
  auto loaded = store.load_plan();
  ASSERT_TRUE(loaded.ok() && *loaded) << loaded.error();
  EXPECT_EQ((*loaded)->ShortDebugString(), plan.ShortDebugString());
}

// sample_table with what the PoP fills in: a table the loader takes.
v1::ForwardingTable applicable_table(uint64_t version) {
  v1::ForwardingTable t = sample_table(version);
  t.set_next_hop_mac("02:00:00:00:00:fe");
  t.mutable_tunnel_source()->set_ipv4("192.0.2.1");
  return t;
}

// Issue 12 finding 4: a last good table cut in half was re-applied at
// start, and reported as the version it claimed. The header's size and
// sha256 catch it; the table is refused with the reason.
TEST(TableStore, Finding4ATableCutShortOrChangedIsRefused) {
  TempDir dir;
  TableStore store(dir.path);
  v1::ForwardingTable t = applicable_table(7);
  ASSERT_TRUE(
      store.save(t, {.store_id = "0123456789abcdef", .epoch = 3, .content_digest = "00ff"}).ok());
  auto whole = store.load_last_good();
  ASSERT_TRUE(whole.ok() && *whole) << whole.error();
  EXPECT_TRUE((*whole)->verified);
  EXPECT_EQ((*whole)->meta.store_id, "0123456789abcdef");
  EXPECT_EQ((*whole)->meta.epoch, 3u);
  EXPECT_EQ((*whole)->meta.content_digest, "00ff");
  EXPECT_EQ((*whole)->table.ShortDebugString(), t.ShortDebugString());

  std::string text;
  {
    std::ifstream in(store.path());
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  // Cut after the first listener: still a valid table, but not the one saved.
  size_t second = text.find("listeners {", text.find("listeners {") + 1);
  std::string cut =
      second == std::string::npos ? text.substr(0, text.size() - 2) : text.substr(0, second);
  std::ofstream(store.path(), std::ios::trunc) << cut;
  auto loaded = store.load_last_good();
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().find("where its header says"), std::string::npos) << loaded.error();
  EXPECT_NE(loaded.error().find("not applied"), std::string::npos);

  // The same size, one byte changed.
  std::string changed = text;
  size_t v = changed.rfind("version: 7");
  ASSERT_NE(v, std::string::npos);
  changed[v + 9] = '8';
  std::ofstream(store.path(), std::ios::trunc) << changed;
  loaded = store.load_last_good();
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().find("does not match the sha256"), std::string::npos) << loaded.error();
}

TEST(TableStore, Finding4ReadsAreBoundedAndOldFilesAreUnverified) {
  TempDir dir;
  TableStore small(dir.path, 64);
  ASSERT_TRUE(small.save(applicable_table(7)).ok());
  auto big = small.load_last_good();
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().find("64"), std::string::npos) << big.error();

  // A file without the header (an older agent wrote it) loads, unverified.
  TableStore store(dir.path);
  std::string body;
  ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(applicable_table(7), &body));
  std::ofstream(store.path(), std::ios::trunc) << body;
  auto old = store.load_last_good();
  ASSERT_TRUE(old.ok() && *old) << old.error();
  EXPECT_FALSE((*old)->verified);
  EXPECT_EQ((*old)->meta.content_digest, "");
}

}  // namespace
}  // namespace onramp::agent::test
