// onramp-agent's log as a process writes it: the PoP in every line from the
// first (even an error about the command line), JSON lines that parse, and
// SIGUSR1 raising the level of the running agent while SIGTERM still stops
// it cleanly (the logger's signal thread must not take SIGTERM). Needs only
// the binary: no dataplane, no controller.
#include <fcntl.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace onramp::agent::test {
namespace {

using namespace std::chrono_literals;

class AgentLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("ONRAMP_AGENT_BIN");
    if (!bin) GTEST_SKIP() << "set ONRAMP_AGENT_BIN";
    bin_ = bin;
    std::string tmpl = (std::filesystem::temp_directory_path() / "onramp-agent-log-XXXXXX");
    dir_ = mkdtemp(tmpl.data());
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void start(std::vector<std::string> args) {
    args.insert(args.begin(), bin_);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string log = dir_ + "/agent.log";
    pid_ = fork();
    if (pid_ == 0) {  // only async-signal-safe calls until exec
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) dup2(fd, 2);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  int wait_exit() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string log() const {
    std::ifstream in(dir_ + "/agent.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Waits up to 5 s for `text` in the log.
  bool logged(const std::string& text) const {
    for (int i = 0; i < 100; ++i) {
      if (log().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  std::string bin_, dir_;
  pid_t pid_ = -1;
};

// The credentials error is the agent's first line: it names the PoP too.
TEST_F(AgentLogTest, TheFirstLineNamesThePopAndJsonLinesParse) {
  start({"--pop", "FRA1", "--plaintext", "--controller", "192.0.2.1:7444", "--log-format", "json"});
  EXPECT_EQ(wait_exit(), 2);
  std::istringstream lines(log());
  std::string line;
  ASSERT_TRUE(std::getline(lines, line)) << log();
  google::protobuf::Struct doc;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &doc).ok()) << line;
  EXPECT_EQ(doc.fields().at("pop").string_value(), "FRA1") << line;
  EXPECT_EQ(doc.fields().at("msg").string_value(), "no credentials for the controller");
}

TEST_F(AgentLogTest, SigusrStepsTheLevelAndSigtermStillStopsCleanly) {
  start({"--pop", "FRA1", "--plaintext", "--controller", "127.0.0.1:1", "--dataplane-socket",
         dir_ + "/none.sock", "--state-dir", dir_, "--no-probes"});
  ASSERT_TRUE(logged("msg=starting")) << log();
  kill(pid_, SIGUSR1);
  EXPECT_TRUE(logged("pop=FRA1 msg=\"log level changed\" new_level=debug signal=SIGUSR1")) << log();
  kill(pid_, SIGUSR2);
  EXPECT_TRUE(logged("new_level=info signal=SIGUSR2")) << log();
  kill(pid_, SIGTERM);
  EXPECT_EQ(wait_exit(), 0) << log();
  EXPECT_NE(log().find("msg=\"stopping;"), std::string::npos) << log();
}

}  // namespace
}  // namespace onramp::agent::test
