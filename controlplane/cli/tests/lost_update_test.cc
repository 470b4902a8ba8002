// Hardening finding 7, "lost updates": two operators change different fields
// of one endpoint group at the same moment with onrampctl, against a real
// controller (in this process, over loopback gRPC). Both changes must land,
// every time: the CLI sends only the fields given and the controller applies
// them to the stored group inside its transaction.
#include <gtest/gtest.h>

#include <barrier>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/log.h"
#include "controlplane/cli/onrampctl.h"
#include "controlplane/controller/controller_server.h"
#include "controlplane/controller/sqlite_store.h"
#include "controlplane/controller/tests/fixtures.h"

namespace onramp::cli {
namespace {

class LostUpdateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_level(log::Level::off);
    auto opened = ctl::SqliteStore::open(dir_.file("c.db"), {.init = true});
    ASSERT_TRUE(opened.ok()) << opened.error();
    store_ = std::move(*opened);
    ctl::ServerOptions o{.admin_listen = "127.0.0.1:0",
                         .pop_listen = "127.0.0.1:0",
                         .plaintext = true,
                         .clock = &clock_};
    auto started = ctl::ControllerServer::start(*store_, o);
    ASSERT_TRUE(started.ok()) << started.error();
    server_ = std::move(*started);
  }
  void TearDown() override {
    server_.reset();
    log::set_level(log::Level::info);
  }

  // onrampctl with these arguments against the controller; the exit code,
  // stderr in `err`.
  int onrampctl(std::vector<std::string> args, std::string* output = nullptr) {
    std::vector<std::string> argv = {"onrampctl", "--plaintext", "--controller",
                                     "127.0.0.1:" + std::to_string(server_->admin_port())};
    argv.insert(argv.end(), args.begin(), args.end());
    std::ostringstream out, err;
    auto connector = make_grpc_connector();
    int code = run_onrampctl(argv, *connector, out, err);
    if (output) *output = out.str();
    if (code != 0) ADD_FAILURE() << "exit " << code << ": " << err.str();
    return code;
  }

  ctl::test::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<ctl::SqliteStore> store_;
  std::unique_ptr<ctl::ControllerServer> server_;
};

TEST_F(LostUpdateTest, Finding7ConcurrentUpdatesOfDifferentFieldsBothLand) {
  ASSERT_EQ(onrampctl({"accelerator", "create", "web", "--vip", "203.0.113.10"}), 0);
  ASSERT_EQ(onrampctl({"listener", "create", "http", "--accelerator", "web", "--protocol", "tcp",
                       "--ports", "80"}),
            0);
  ASSERT_EQ(onrampctl({"endpoint-group", "create", "eu", "--accelerator", "web", "--listener",
                       "http", "--region", "eu-central"}),
            0);
  const std::vector<std::string> group = {"endpoint-group", "update", "eu", "--accelerator", "web",
                                          "--listener",     "http"};
  constexpr int kRounds = 60;
  auto dial = [](int i) { return (i % 2 ? 30 : 60) + i % 30; };  // 30..89
  auto interval = [](int i) { return 3000 + 100 * i; };
  // Three parties: the two operators, and this thread, which checks each
  // round after both commands returned and before the next starts.
  std::barrier round(3);
  auto operator_run = [&](const std::string& flag, auto value_of) {
    for (int i = 0; i < kRounds; ++i) {
      std::vector<std::string> args = group;
      args.push_back(flag);
      args.push_back(std::to_string(value_of(i)));
      round.arrive_and_wait();  // both operators press enter together
      onrampctl(args);
      round.arrive_and_wait();  // done
      round.arrive_and_wait();  // checked
    }
  };
  std::thread first(operator_run, "--traffic-dial", dial);
  std::thread second(operator_run, "--health-interval-ms", interval);
  int lost = 0;
  for (int i = 0; i < kRounds; ++i) {
    round.arrive_and_wait();
    round.arrive_and_wait();
    std::string got;
    onrampctl({"endpoint-group", "get", "eu", "--accelerator", "web", "--listener", "http", "-o",
               "jsonpath={.traffic_dial_percent} {.health_check.interval_ms}"},
              &got);
    std::string want = std::to_string(dial(i)) + " " + std::to_string(interval(i)) + "\n";
    if (got != want) {
      ++lost;
      ADD_FAILURE() << "round " << i << ": " << got << ", want " << want;
    }
    round.arrive_and_wait();
  }
  first.join();
  second.join();
  EXPECT_EQ(lost, 0) << "of " << kRounds << " rounds lost a change";
}

}  // namespace
}  // namespace onramp::cli
