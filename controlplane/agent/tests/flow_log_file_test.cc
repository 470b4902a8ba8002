// Flow log files: one JSON line per record in the documented format, and
// rotation by size that keeps the number of files asked for.
#include "controlplane/agent/flow_log_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace onramp::agent {
namespace {

namespace fs = std::filesystem;

v1::FlowLogRecord record(uint32_t client_port) {
  v1::FlowLogRecord r;
  r.set_event("end");
  r.set_end_reason("fin");
  r.set_client("192.0.2.7");
  r.set_client_port(client_port);
  r.set_vip("203.0.113.10");
  r.set_vip_port(443);
  r.set_endpoint("198.51.100.1");
  r.set_endpoint_port(443);
  r.set_protocol("tcp");
  r.set_packets(12);
  r.set_bytes(4212);
  r.set_start_ms(1764929400120);
  r.set_end_ms(1764929401873);
  r.set_accelerator("web");
  r.set_listener("https");
  r.set_worker(1);
  return r;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FlowLogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("onramp-flow-log-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(FlowLogJson, OneLineWithThePopAndTheAction) {
  EXPECT_EQ(flow_log_json(record(40000), "FRA1"),
            R"({"event":"end","end_reason":"fin","pop":"FRA1","accelerator":"web",)"
            R"("listener":"https","protocol":"tcp","client_ip":"192.0.2.7","client_port":40000,)"
            R"("accelerator_ip":"203.0.113.10","accelerator_port":443,)"
            R"("endpoint_ip":"198.51.100.1","endpoint_port":443,"packets":12,"bytes":4212,)"
            R"("start_ms":1764929400120,"end_ms":1764929401873,"action":"ACCEPT","worker":1})");
  v1::FlowLogRecord start = record(1);
  start.set_event("start");
  start.clear_end_reason();
  start.set_listener("a\"b\n");  // escaped, whatever a name holds
  EXPECT_NE(flow_log_json(start, "FRA1").find(R"("event":"start","pop")"), std::string::npos);
  EXPECT_NE(flow_log_json(start, "FRA1").find(R"("listener":"a\"b\u000a")"), std::string::npos);
}

TEST_F(FlowLogFileTest, RotatesBySizeAndKeepsTheFilesAskedFor) {
  const size_t line = flow_log_json(record(10000), "FRA1").size() + 1;
  FlowLogFile file({.dir = dir_.string(), .max_bytes = 4096, .files = 3});
  v1::FlowLogBatch batch;
  batch.set_pop("FRA1");
  // 4096 bytes hold this many lines; write four files' worth and a bit.
  const size_t per_file = 4096 / line;
  for (uint32_t i = 0; i < per_file * 4 + 1; ++i) *batch.add_records() = record(10000 + i);
  ASSERT_TRUE(file.write(batch).ok());
  EXPECT_EQ(file.written(), per_file * 4 + 1);
  EXPECT_EQ(file.lost(), 0u);
  EXPECT_EQ(file.rotations(), 4u);
  // flows.log (the newest line), flows.log.1 and .2 (full); .3 is never kept.
  EXPECT_TRUE(fs::exists(dir_ / "flows.log"));
  EXPECT_TRUE(fs::exists(dir_ / "flows.log.1"));
  EXPECT_TRUE(fs::exists(dir_ / "flows.log.2"));
  EXPECT_FALSE(fs::exists(dir_ / "flows.log.3"));
  EXPECT_EQ(fs::file_size(dir_ / "flows.log"), line);
  EXPECT_EQ(fs::file_size(dir_ / "flows.log.1"), per_file * line);
  EXPECT_LE(fs::file_size(dir_ / "flows.log.2"), 4096u);
  // Oldest to newest: .2 holds the lines just before .1's.
  const std::string newest = slurp(dir_ / "flows.log");
  EXPECT_NE(newest.find("\"client_port\":" + std::to_string(10000 + per_file * 4)),
            std::string::npos);
  EXPECT_NE(
      slurp(dir_ / "flows.log.1").find("\"client_port\":" + std::to_string(10000 + per_file * 3)),
      std::string::npos);
}

TEST_F(FlowLogFileTest, AnUnwritableDirectoryCountsTheBatchAsLost) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "not a directory";
  FlowLogFile file({.dir = (dir_ / "file").string()});
  v1::FlowLogBatch batch;
  *batch.add_records() = record(1);
  *batch.add_records() = record(2);
  EXPECT_FALSE(file.write(batch).ok());
  EXPECT_EQ(file.written(), 0u);
  EXPECT_EQ(file.lost(), 2u);
}

}  // namespace
}  // namespace onramp::agent
