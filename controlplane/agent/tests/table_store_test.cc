// The last good table on disk: round trip, atomic replacement, bad files.
#include "controlplane/agent/table_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "controlplane/agent/tests/fakes.h"

namespace onramp::agent::test {
namespace {

TEST(TableStore, SavesAndLoadsTheTable) {
  TempDir dir;
  TableStore store(dir.path + "/state");
  v1::ForwardingTable t = sample_table(12);
  t.set_next_hop_mac("02:00:00:00:00:fe");
  t.mutable_tunnel_source()->set_ipv4("192.0.2.1");

  v1::ForwardingTable loaded;
  std::string error;
  EXPECT_FALSE(store.load(loaded, error));  // nothing yet
  EXPECT_EQ(error, "");

  ASSERT_EQ(store.save(t), "");
  ASSERT_TRUE(store.load(loaded, error)) << error;
  EXPECT_EQ(loaded.ShortDebugString(), t.ShortDebugString());

  struct stat st {};
  ASSERT_EQ(stat((dir.path + "/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(store.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(store.path() + ".tmp"));

  t.set_version(13);
  ASSERT_EQ(store.save(t), "");
  ASSERT_TRUE(store.load(loaded, error));
  EXPECT_EQ(loaded.version(), 13u);
}

TEST(TableStore, RefusesAFileThatIsNotAValidTable) {
  TempDir dir;
  TableStore store(dir.path);
  v1::ForwardingTable loaded;
  std::string error;
  std::ofstream(store.path()) << "version: 3\nlisteners { name: \"x\" }\n";
  EXPECT_FALSE(store.load(loaded, error));
  EXPECT_NE(error.find(store.path() + ": "), std::string::npos) << error;
  std::ofstream(store.path()) << "not a table {";
  EXPECT_FALSE(store.load(loaded, error));
  EXPECT_EQ(error, store.path() +
                       ": line 1:5: Message type \"onramp.v1.ForwardingTable\" has no "
                       "field named \"not\".");
}

TEST(TableStore, ReportsAFolderItCannotWrite) {
  TempDir dir;
  std::ofstream(dir.path + "/file") << "x";
  TableStore store(dir.path + "/file/state");
  EXPECT_NE(store.save(sample_table(1)), "");
}

}  // namespace
}  // namespace onramp::agent::test
