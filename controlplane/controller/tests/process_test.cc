// The controller binary's flags: usage, refusals of unsafe or broken
// set-ups, and a clean stop on SIGTERM.
#include <gtest/gtest.h>

#include "controlplane/controller/tests/controller_process.h"
#include "controlplane/controller/tests/fixtures.h"

namespace onramp::ctl::test {
namespace {

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (controller_binary().empty()) GTEST_SKIP() << "ONRAMP_CONTROLLER is not set";
  }
  TempDir dir_;
};

TEST_F(ProcessTest, HelpPrintsUsage) {
  ControllerProcess p({"--help"}, dir_.file("log"));
  int st = p.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_NE(p.log().find("usage: onramp-controller"), std::string::npos);
}

TEST_F(ProcessTest, PlaintextOnANonLoopbackAddressIsRefused) {
  ControllerProcess p({"--db", dir_.file("c.db"), "--plaintext", "--admin-listen",
                       "127.0.0.1:" + std::to_string(free_port()), "--pop-listen",
                       "0.0.0.0:" + std::to_string(free_port())},
                      dir_.file("log"));
  int st = p.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << p.log();
  EXPECT_NE(p.log().find("--plaintext: refused for 0.0.0.0:"), std::string::npos) << p.log();
  EXPECT_NE(p.log().find("not a loopback address"), std::string::npos);
}

TEST_F(ProcessTest, TlsWithoutCertificatesIsRefused) {
  ControllerProcess p(
      {"--db", dir_.file("c.db"), "--admin-listen", "127.0.0.1:" + std::to_string(free_port()),
       "--pop-listen", "127.0.0.1:" + std::to_string(free_port())},
      dir_.file("log"));
  int st = p.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << p.log();
  EXPECT_NE(p.log().find("--tls-cert and --tls-key: required"), std::string::npos) << p.log();
  EXPECT_FALSE(std::filesystem::exists(dir_.file("c.db")));
}

TEST_F(ProcessTest, UnknownFlagsAndBadNumbersAreRefused) {
  ControllerProcess a({"--bogus"}, dir_.file("a"));
  int st = a.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2);
  ControllerProcess b({"--debounce-ms", "soon"}, dir_.file("b"));
  st = b.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2);
  EXPECT_NE(b.log().find("--debounce-ms: \"soon\""), std::string::npos) << b.log();
}

TEST_F(ProcessTest, StopsCleanlyOnSigterm) {
  int admin = free_port(), pop = free_port();
  ControllerProcess p(
      {"--db", dir_.file("c.db"), "--plaintext", "--admin-listen",
       "127.0.0.1:" + std::to_string(admin), "--pop-listen", "127.0.0.1:" + std::to_string(pop)},
      dir_.file("log"));
  ASSERT_TRUE(p.wait_ready({admin, pop})) << p.log();
  p.signal(SIGTERM);
  int st = p.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << p.log();
  EXPECT_NE(p.log().find("stopping on SIGTERM"), std::string::npos);
}

TEST_F(ProcessTest, ASecondControllerOnTheSameDatabaseIsRefused) {
  int admin = free_port(), pop = free_port();
  ControllerProcess first(
      {"--db", dir_.file("c.db"), "--plaintext", "--admin-listen",
       "127.0.0.1:" + std::to_string(admin), "--pop-listen", "127.0.0.1:" + std::to_string(pop)},
      dir_.file("first"));
  ASSERT_TRUE(first.wait_ready({admin, pop})) << first.log();
  ControllerProcess second({"--db", dir_.file("c.db"), "--plaintext", "--admin-listen",
                            "127.0.0.1:" + std::to_string(free_port()), "--pop-listen",
                            "127.0.0.1:" + std::to_string(free_port())},
                           dir_.file("second"));
  int st = second.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1);
  EXPECT_NE(second.log().find("in use by another onramp-controller"), std::string::npos)
      << second.log();
}

}  // namespace
}  // namespace onramp::ctl::test
