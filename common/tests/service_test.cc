// The notifications a Type=notify unit waits for, read from a socket that
// stands in for systemd's.
#include "common/service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

namespace onramp {
namespace {

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/tmp/onramp-notify-" + std::to_string(::getpid());
    ::unlink(path_.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // The next message, or "" when none is waiting.
  std::string next() {
    char buf[512];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

  std::string path_;
  int fd_ = -1;
};

TEST_F(ServiceTest, ReadyStatusAndStoppingReachSystemd) {
  service::ready("serving 2 ports, table version 7");
  EXPECT_EQ(next(), "READY=1\nSTATUS=serving 2 ports, table version 7");
  service::status("controller away, last good table");
  EXPECT_EQ(next(), "STATUS=controller away, last good table");
  service::stopping();
  EXPECT_EQ(next(), "STOPPING=1");
  EXPECT_EQ(next(), "");
}

TEST_F(ServiceTest, OutsideSystemdNothingIsSentAndNothingFails) {
  ::unsetenv("NOTIFY_SOCKET");
  service::ready("x");
  service::watchdog();
  EXPECT_EQ(next(), "");
}

TEST_F(ServiceTest, TheWatchdogIsFedAtMostEveryHalfInterval) {
  EXPECT_EQ(service::watchdog_interval().count(), 0);
  ::setenv("WATCHDOG_USEC", "20000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  EXPECT_EQ(service::watchdog_interval(), std::chrono::seconds(20));
  service::watchdog();
  service::watchdog();  // 10 s have not passed
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  EXPECT_EQ(next(), "WATCHDOG=1");
  EXPECT_EQ(next(), "");
}

}  // namespace
}  // namespace onramp
