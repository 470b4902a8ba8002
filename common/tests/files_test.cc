#include "common/files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/textproto.h"
#include "onramp/v1/forwarding.pb.h"

namespace onramp {
namespace {

using ::testing::HasSubstr;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/onramp-files-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

TEST_F(FilesTest, WritesAtomicallyAndReadsBack) {
  ASSERT_TRUE(write_file_atomically(path("t"), "version: 3\n", 0600).ok());
  auto text = read_file(path("t"));
  ASSERT_TRUE(text.ok()) << text.error();
  EXPECT_EQ(*text, "version: 3\n");
  EXPECT_FALSE(std::filesystem::exists(path("t.tmp")));
  struct stat st {};
  ASSERT_EQ(::stat(path("t").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(write_file_atomically(path("t"), "version: 4\n").ok());
  EXPECT_EQ(*read_file(path("t")), "version: 4\n");
}

TEST_F(FilesTest, AMissingFileNamesThePathAndTheReason) {
  auto text = read_file(path("missing"));
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error(), path("missing") + ": No such file or directory");
}

TEST_F(FilesTest, AWriteIntoAMissingFolderFailsWithItsName) {
  Status s = write_file_atomically(path("no/such/file"), "x");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("no/such/file.tmp"));
}

// A last good table that is a symlink to /dev/zero made the agent grow
// without bound: a device is not a file to read.
TEST_F(FilesTest, ASymlinkToADeviceIsRefusedNotReadForever) {
  std::filesystem::create_symlink("/dev/zero", path("zero"));
  auto text = read_file(path("zero"));
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error(), path("zero") + ": not a regular file");
}

TEST_F(FilesTest, AFileOverTheBoundIsRefusedBeforeItIsRead) {
  ASSERT_TRUE(write_file_atomically(path("big"), std::string(4096, 'x')).ok());
  auto text = read_file(path("big"), 1024);
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(text.error(), HasSubstr("4096 bytes; at most 1024"));
  EXPECT_TRUE(read_file(path("big"), 4096).ok());
}

TEST_F(FilesTest, TextProtoErrorsSayLineAndColumnAndThePath) {
  v1::ForwardingTable table;
  ASSERT_TRUE(parse_text_proto("version: 7 pop: \"FRA1\"", table).ok());
  EXPECT_EQ(table.version(), 7u);

  Status s = parse_text_proto("version: 7\nnot_a_field: 1\n", table);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), ::testing::StartsWith("line 2:12: "));
  EXPECT_THAT(s.message(), HasSubstr("not_a_field"));

  ASSERT_TRUE(write_file_atomically(path("bad.textproto"), "version: x\n").ok());
  s = load_text_proto_file(path("bad.textproto"), table);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), ::testing::StartsWith(path("bad.textproto") + ": line 1:"));
  EXPECT_FALSE(load_text_proto_file(path("absent"), table).ok());
}

}  // namespace
}  // namespace onramp
