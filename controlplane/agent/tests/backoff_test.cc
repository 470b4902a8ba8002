// Reconnect delays: doubling, jittered, capped, reset after a good session.
#include "controlplane/agent/backoff.h"

#include <gtest/gtest.h>

namespace onramp::agent {
namespace {

using namespace std::chrono_literals;

TEST(Backoff, DoublesWithJitterUpToTheCeiling) {
  Backoff b({.initial = 100ms, .max = 10s, .multiplier = 2, .jitter = 0.2}, 42);
  double nominal = 100;
  for (int i = 0; i < 12; ++i) {
    double d = static_cast<double>(b.next().count());
    double lo = std::min(10000.0, nominal * 0.8) - 1, hi = std::min(10000.0, nominal * 1.2);
    EXPECT_GE(d, lo) << "attempt " << i;
    EXPECT_LE(d, hi) << "attempt " << i;
    nominal = std::min(10000.0, nominal * 2);
  }
  for (int i = 0; i < 20; ++i) EXPECT_LE(b.next(), 10s);
  b.reset();
  EXPECT_LE(b.next(), 120ms);
}

TEST(Backoff, JitterSpreadsAgentsApart) {
  Backoff a({}, 1), b({}, 2);
  int same = 0;
  for (int i = 0; i < 8; ++i) same += a.next() == b.next();
  EXPECT_LT(same, 8);
}

}  // namespace
}  // namespace onramp::agent
