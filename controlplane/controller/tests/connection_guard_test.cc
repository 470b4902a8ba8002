// Which connections the guard shuts: a peer's newest beyond its share, then,
// over the total, from whoever holds the most.
#include "controlplane/controller/connection_guard.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace onramp::ctl {
namespace {

std::vector<GuardedConnection> from(const std::string& peer, int first_fd, int n) {
  std::vector<GuardedConnection> out;
  for (int i = 0; i < n; ++i) out.push_back({first_fd + i, peer});
  return out;
}

std::vector<int> sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(ConnectionGuard, WithinLimitsNothingCloses) {
  auto c = from("192.0.2.1", 10, 4);
  EXPECT_TRUE(connections_over_limits(c, {.per_peer = 4, .total = 4}).empty());
}

TEST(ConnectionGuard, APeerOverItsShareLosesItsNewest) {
  auto c = from("192.0.2.1", 10, 6);
  auto other = from("192.0.2.2", 3, 2);
  c.insert(c.begin(), other.begin(), other.end());
  EXPECT_EQ(sorted(connections_over_limits(c, {.per_peer = 4, .total = 100})),
            (std::vector<int>{14, 15}));
}

TEST(ConnectionGuard, OverTheTotalTheBiggestHolderGivesWay) {
  auto c = from("192.0.2.1", 100, 10);    // the flood
  auto op = from("192.0.2.2", 5, 2);      // an operator
  auto pop = from("198.51.100.7", 7, 1);  // a PoP
  c.insert(c.end(), op.begin(), op.end());
  c.insert(c.end(), pop.begin(), pop.end());
  std::vector<int> closed = connections_over_limits(c, {.per_peer = 10, .total = 8});
  EXPECT_EQ(closed.size(), 5u);
  // Every one from the flood; the operator and the PoP keep theirs.
  for (int fd : closed) EXPECT_GE(fd, 100) << fd;
}

TEST(ConnectionGuard, EqualHoldersOverTheTotalShareTheCut) {
  auto c = from("192.0.2.1", 10, 4);
  auto d = from("192.0.2.2", 20, 4);
  c.insert(c.end(), d.begin(), d.end());
  std::vector<int> closed = connections_over_limits(c, {.per_peer = 10, .total = 4});
  EXPECT_EQ(std::count_if(closed.begin(), closed.end(), [](int fd) { return fd < 20; }), 2);
  EXPECT_EQ(std::count_if(closed.begin(), closed.end(), [](int fd) { return fd >= 20; }), 2);
}

}  // namespace
}  // namespace onramp::ctl
