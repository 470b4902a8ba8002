// The controller binary's flags: usage, refusals of unsafe or broken
// set-ups, and a clean stop on SIGTERM.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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
  ControllerProcess p({"--init", "--db", dir_.file("c.db"), "--plaintext", "--admin-listen",
                       "127.0.0.1:" + std::to_string(free_port()), "--pop-listen",
                       "0.0.0.0:" + std::to_string(free_port())},
                      dir_.file("log"));
  int st = p.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << p.log();
  EXPECT_NE(p.log().find("--plaintext: refused for 0.0.0.0:"), std::string::npos) << p.log();
  EXPECT_NE(p.log().find("not a loopback address"), std::string::npos);
}

TEST_F(ProcessTest, TlsWithoutCertificatesIsRefused) {
  ControllerProcess p({"--init", "--db", dir_.file("c.db"), "--admin-listen",
                       "127.0.0.1:" + std::to_string(free_port()), "--pop-listen",
                       "127.0.0.1:" + std::to_string(free_port())},
                      dir_.file("log"));
  int st = p.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << p.log();
  EXPECT_NE(p.log().find("--tls-cert and --tls-key: required"), std::string::npos) << p.log();
  EXPECT_FALSE(std::filesystem::exists(dir_.file("c.db")));
}

// Issue 12 finding 2: a controller on an empty database, or on a mistyped
// --db whose folder it created, pushed an empty table to every PoP. Without
// --init it does not start, says why, and creates nothing.
TEST_F(ProcessTest, Finding2AStoreThatIsNotInitialisedIsRefusedWithoutInit) {
  { std::ofstream(dir_.file("empty.db")); }
  for (const std::string& db :
       {dir_.file("missing.db"), dir_.file("typo/c.db"), dir_.file("empty.db")}) {
    ControllerProcess p(
        {"--db", db, "--plaintext", "--admin-listen", "127.0.0.1:" + std::to_string(free_port()),
         "--pop-listen", "127.0.0.1:" + std::to_string(free_port())},
        dir_.file("log"));
    int st = p.wait();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << p.log();
    EXPECT_NE(p.log().find("--db: " + db + " is not an initialised onramp store"),
              std::string::npos)
        << p.log();
    EXPECT_NE(p.log().find("start once with --init to create it"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.file("missing.db")));
  EXPECT_FALSE(std::filesystem::exists(dir_.file("typo")));

  // With --init it starts; the store is initialised for good.
  int admin = free_port(), pop = free_port();
  {
    ControllerProcess p(
        {"--db", dir_.file("empty.db"), "--init", "--plaintext", "--admin-listen",
         "127.0.0.1:" + std::to_string(admin), "--pop-listen", "127.0.0.1:" + std::to_string(pop)},
        dir_.file("init"));
    ASSERT_TRUE(p.wait_ready({admin, pop})) << p.log();
    EXPECT_NE(p.log().find("store_id="), std::string::npos) << p.log();
    p.signal(SIGTERM);
    p.wait();
  }
  // --init-only creates and exits; --new-epoch raises the epoch.
  ControllerProcess only({"--db", dir_.file("new/c.db"), "--init-only"}, dir_.file("only"));
  int st = only.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << only.log();
  EXPECT_NE(only.log().find("epoch=1"), std::string::npos) << only.log();
  ControllerProcess bumped(
      {"--db", dir_.file("new/c.db"), "--plaintext", "--new-epoch", "--admin-listen",
       "127.0.0.1:" + std::to_string(admin), "--pop-listen", "127.0.0.1:" + std::to_string(pop)},
      dir_.file("bumped"));
  ASSERT_TRUE(bumped.wait_ready({admin, pop})) << bumped.log();
  EXPECT_NE(bumped.log().find("epoch=2"), std::string::npos) << bumped.log();
  bumped.signal(SIGTERM);
  bumped.wait();
  // After a restore, for a service started afterwards: raise it and exit.
  ControllerProcess restore({"--db", dir_.file("new/c.db"), "--init-only", "--new-epoch"},
                            dir_.file("restore"));
  st = restore.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << restore.log();
  EXPECT_NE(restore.log().find("epoch=3"), std::string::npos) << restore.log();
}

// Issue 13: --store etcd://... refusals, before any etcd is reached.
TEST_F(ProcessTest, EtcdStoreFlagsAreCheckedFirst) {
  auto run = [&](std::vector<std::string> args, const std::string& log) {
    ControllerProcess p(args, dir_.file(log));
    int st = p.wait();
    return std::make_pair(WIFEXITED(st) ? WEXITSTATUS(st) : -1, p.log());
  };
  auto [both, both_log] =
      run({"--db", dir_.file("c.db"), "--store", "etcd://127.0.0.1:2379/onramp", "--init-only"},
          "both");
  EXPECT_EQ(both, 2) << both_log;
  EXPECT_NE(both_log.find("excludes"), std::string::npos) << both_log;
  auto [url, url_log] = run({"--store", "etcd://127.0.0.1:2379", "--init-only"}, "url");
  EXPECT_EQ(url, 1) << url_log;
  EXPECT_NE(url_log.find("--store: \"etcd://127.0.0.1:2379\": no key prefix"), std::string::npos)
      << url_log;
  // No TLS flags: plaintext, which only loopback members may have.
  auto [tls, tls_log] = run({"--store", "etcd://192.0.2.1:2379/onramp", "--init-only"}, "tls");
  EXPECT_EQ(tls, 1) << tls_log;
  EXPECT_NE(tls_log.find("not a loopback address"), std::string::npos) << tls_log;
  EXPECT_NE(tls_log.find("give --etcd-ca"), std::string::npos) << tls_log;
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
      {"--init", "--db", dir_.file("c.db"), "--plaintext", "--admin-listen",
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
      {"--init", "--db", dir_.file("c.db"), "--plaintext", "--admin-listen",
       "127.0.0.1:" + std::to_string(admin), "--pop-listen", "127.0.0.1:" + std::to_string(pop)},
      dir_.file("first"));
  ASSERT_TRUE(first.wait_ready({admin, pop})) << first.log();
  ControllerProcess second({"--init", "--db", dir_.file("c.db"), "--plaintext", "--admin-listen",
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
