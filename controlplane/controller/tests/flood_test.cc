// Connection floods against the real binary (hardening review, finding 1):
// 1100 idle TCP connections from one address exhausted the controller's
// descriptors, gRPC logged "Failed accept4: Too many open files" once, and
// the PoP port never accepted again. Here the flood comes from 127.0.0.2
// while an operator and a PoP use 127.0.0.1, under a descriptor limit of 512.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <string_view>

#include "controlplane/controller/tests/controller_process.h"
#include "controlplane/controller/tests/fake_agent.h"
#include "controlplane/controller/tests/fixtures.h"
#include "onramp/v1/admin.grpc.pb.h"

namespace onramp::ctl::test {
namespace {

using namespace std::chrono_literals;

// A non-blocking connection to 127.0.0.1:port from `source`, sending nothing.
int idle_connection(const char* source, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  ::inet_pton(AF_INET, source, &from.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
    ::close(fd);
    return -1;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(static_cast<uint16_t>(port));
  ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
  return fd;
}

// True when the server ended the connection (EOF or reset) within `timeout`;
// whatever the server sent before is read and ignored.
bool closed_by_server(int fd, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    char buf[512];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(50ms);
  }
}

class FloodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (controller_binary().empty()) GTEST_SKIP() << "ONRAMP_CONTROLLER is not set";
    admin_ = free_port();
    pop_ = free_port();
    status_ = free_port();
    metrics_ = free_port();
    ctl_ = std::make_unique<ControllerProcess>(
        std::vector<std::string>{"--init", "--db", dir_.file("c.db"), "--plaintext",
                                 "--admin-listen", "127.0.0.1:" + std::to_string(admin_),
                                 "--pop-listen", "127.0.0.1:" + std::to_string(pop_),
                                 "--status-listen", "127.0.0.1:" + std::to_string(status_),
                                 "--metrics-listen", "127.0.0.1:" + std::to_string(metrics_),
                                 "--max-connections-per-peer", "16", "--handshake-timeout-ms",
                                 "1000"},
        dir_.file("controller.log"), 512);
    ASSERT_TRUE(ctl_->wait_ready({admin_, pop_, status_, metrics_})) << ctl_->log();
  }

  // 40 connections from 127.0.0.2 to `port`, each sending `hello` and then
  // nothing; the first 16 older than the rest by two sweeps (the guard tells
  // age by when it first saw a connection, not by its descriptor, which the
  // server may have reused out of order). After the sweeps that follow, the
  // number the server ended; the oldest 16 must all be open.
  int closed_of_forty(int port, std::string_view hello) {
    std::vector<int> mine;
    for (int i = 0; i < 40; ++i) {
      if (i == 16) std::this_thread::sleep_for(600ms);
      int fd = idle_connection("127.0.0.2", port);
      EXPECT_GE(fd, 0);
      if (fd < 0) break;
      pollfd p{fd, POLLOUT, 0};
      EXPECT_EQ(::poll(&p, 1, 2000), 1);
      EXPECT_EQ(::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL),
                static_cast<ssize_t>(hello.size()));
      mine.push_back(fd);
    }
    // Sweeps run every quarter second.
    std::this_thread::sleep_for(1500ms);
    int closed = 0;
    for (int fd : mine) closed += closed_by_server(fd, 0ms) ? 1 : 0;
    for (size_t i = 0; i < 16 && i < mine.size(); ++i)
      EXPECT_FALSE(closed_by_server(mine[i], 0ms)) << "connection " << i;
    for (int fd : mine) ::close(fd);
    return closed;
  }

  // An operator's call from 127.0.0.1, on a fresh connection each time.
  grpc::Status list_accelerators() {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    auto stub = v1::AdminService::NewStub(grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(admin_), grpc::InsecureChannelCredentials(), args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    v1::ListAcceleratorsResponse out;
    return stub->ListAccelerators(&ctx, v1::ListRequest(), &out);
  }
  // A PoP from 127.0.0.1 says Hello and gets its table.
  bool pop_gets_table() {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    FakeAgent agent(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(pop_),
                                              grpc::InsecureChannelCredentials(), args));
    return agent.hello("FRA1") && agent.next(3s).has_value();
  }
  // `check` holds within `timeout`, tried again and again.
  template <typename Check>
  bool within(std::chrono::seconds timeout, Check check) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end)
      if (check()) return true;
    return false;
  }

  TempDir dir_;
  int admin_ = 0, pop_ = 0, status_ = 0, metrics_ = 0;
  std::unique_ptr<ControllerProcess> ctl_;
};

TEST_F(FloodTest, IdleFloodFromOneAddressNeverStopsOperatorsAndPops) {
  {
    auto stub = v1::AdminService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(admin_),
                                                              grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::Accelerator a;
    ASSERT_TRUE(stub->CreateAccelerator(&ctx, accelerator("web", {"203.0.113.10"}), &a).ok());
  }
  // 1100 idle connections to each port: more than the descriptors there are.
  std::vector<int> flood;
  for (int i = 0; i < 1100; ++i)
    for (int port : {pop_, admin_})
      if (int fd = idle_connection("127.0.0.2", port); fd >= 0) flood.push_back(fd);
  ASSERT_GT(flood.size(), 2000u);

  // While the flood holds its connections, both ports serve others.
  EXPECT_TRUE(within(20s, [&] { return list_accelerators().ok(); })) << ctl_->log();
  EXPECT_TRUE(within(20s, [&] { return pop_gets_table(); })) << ctl_->log();
  for (int fd : flood) ::close(fd);

  // After the flood, as before it.
  EXPECT_TRUE(within(10s, [&] { return list_accelerators().ok(); })) << ctl_->log();
  EXPECT_TRUE(within(10s, [&] { return pop_gets_table(); })) << ctl_->log();
  EXPECT_FALSE(ctl_->exited()) << ctl_->log();
  EXPECT_NE(ctl_->log().find("closed connections over the limits"), std::string::npos)
      << ctl_->log();
}

TEST_F(FloodTest, UnfinishedHandshakeIsClosedWithinSeconds) {
  int fd = idle_connection("127.0.0.2", pop_);
  ASSERT_GE(fd, 0);
  // --handshake-timeout-ms 1000: gone well before gRPC's default of 120 s.
  EXPECT_TRUE(closed_by_server(fd, 6s));
  ::close(fd);
}

TEST_F(FloodTest, PeerOverItsShareLosesItsNewestConnections) {
  // Finished HTTP/2 handshakes (client preface and SETTINGS), so that no
  // handshake timeout ends them: only the share of 16 per peer does.
  const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
  EXPECT_EQ(closed_of_forty(admin_, {kPreface, sizeof kPreface - 1}), 24);
}

TEST_F(FloodTest, StatusPagePeerOverItsShareLosesItsNewestConnections) {
  // Requests that never finish (a slow client's first line): the status
  // page's four threads would wait 10 s on each, and the sockets behind them
  // would queue without bound but for the guard.
  EXPECT_EQ(closed_of_forty(status_, "GET /status HTTP/1.1\r\n"), 24);
}

TEST_F(FloodTest, MetricsPeerOverItsShareLosesItsNewestConnections) {
  // The same against /metrics, whose HTTP server is started beside the
  // controller's: its port is guarded as well.
  EXPECT_EQ(closed_of_forty(metrics_, "GET /metrics HTTP/1.1\r\n"), 24);
}

}  // namespace
}  // namespace onramp::ctl::test
