// Durability: the controller is killed with SIGKILL in the middle of a
// stream of mutations, restarted on the same database, and every mutation it
// acknowledged is there — several times over.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <mutex>
#include <random>
#include <set>

#include "controlplane/controller/tests/controller_process.h"
#include "controlplane/controller/tests/fixtures.h"
#include "onramp/v1/admin.grpc.pb.h"

namespace onramp::ctl::test {
namespace {

using namespace std::chrono_literals;

std::string address_of(int n) {
  return "10." + std::to_string((n >> 16) & 255) + "." + std::to_string((n >> 8) & 255) + "." +
         std::to_string(n & 255);
}

TEST(Crash, EveryAcknowledgedMutationSurvivesSigkill) {
  if (controller_binary().empty()) GTEST_SKIP() << "ONRAMP_CONTROLLER is not set";
  TempDir dir;
  std::set<std::string> acknowledged;
  uint64_t acknowledged_version = 0;
  std::mt19937 rng(12345);
  std::atomic<int> next_address{1};
  constexpr int kRounds = 4;
  constexpr int kWriters = 3;

  for (int round = 0; round < kRounds; ++round) {
    int admin = free_port(), pop = free_port();
    ControllerProcess ctl({"--init", "--db", dir.file("c.db"), "--plaintext", "--admin-listen",
                           "127.0.0.1:" + std::to_string(admin), "--pop-listen",
                           "127.0.0.1:" + std::to_string(pop), "--debounce-ms", "20"},
                          dir.file("controller.log"));
    ASSERT_TRUE(ctl.wait_ready({admin, pop})) << ctl.log();
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(admin),
                                       grpc::InsecureChannelCredentials());
    auto stub = v1::AdminService::NewStub(channel);

    // Everything acknowledged before the last kill is there.
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 10s);
      v1::ListEndpointsResponse eps;
      ASSERT_TRUE(stub->ListEndpoints(&ctx, v1::ListRequest(), &eps).ok());
      std::set<std::string> present;
      for (const auto& e : eps.endpoints()) present.insert(e.address());
      for (const auto& a : acknowledged)
        ASSERT_TRUE(present.count(a)) << "round " << round << ": acknowledged " << a << " is lost";
      grpc::ClientContext ctx2;
      ctx2.set_deadline(std::chrono::system_clock::now() + 10s);
      v1::ListPopsResponse pops;
      ASSERT_TRUE(stub->ListPops(&ctx2, v1::ListPopsRequest(), &pops).ok());
      EXPECT_GE(pops.config_version(), acknowledged_version);
    }
    if (round == 0) {
      grpc::ClientContext c1, c2, c3;
      v1::Accelerator a;
      v1::Listener l;
      v1::EndpointGroup g;
      ASSERT_TRUE(stub->CreateAccelerator(&c1, accelerator("web", {"203.0.113.10"}), &a).ok());
      ASSERT_TRUE(stub->CreateListener(&c2, listener("web", "http", {{80, 0}}), &l).ok());
      ASSERT_TRUE(stub->CreateEndpointGroup(&c3, group("web", "http", "eu"), &g).ok());
    }
    if (round == kRounds - 1) break;

    // Writers create endpoints as fast as they can until the kill.
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w)
      writers.emplace_back([&] {
        while (!stop.load()) {
          std::string addr = address_of(next_address.fetch_add(1));
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + 5s);
          v1::Endpoint out;
          auto s = stub->CreateEndpoint(&ctx, endpoint("web", "http", "eu", addr), &out);
          if (!s.ok()) {
            if (s.error_code() == grpc::StatusCode::UNAVAILABLE) return;
            continue;
          }
          std::lock_guard lock(mu);
          acknowledged.insert(addr);
        }
      });
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 700));
    ctl.signal(SIGKILL);
    int st = ctl.wait();
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    stop = true;
    for (auto& t : writers) t.join();
    std::lock_guard lock(mu);
    // Three creates before the endpoints, one version each.
    acknowledged_version = 3 + acknowledged.size();
    ASSERT_GT(acknowledged.size(), 0u) << "no mutation got through in round " << round;
  }

  // The file itself is sound.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(dir.file("c.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "ok");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  std::printf("%zu acknowledged mutations survived %d SIGKILLs\n", acknowledged.size(),
              kRounds - 1);
}

}  // namespace
}  // namespace onramp::ctl::test
