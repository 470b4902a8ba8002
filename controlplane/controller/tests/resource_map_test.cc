// ResourceMap against std::map: the same answers for every read after any
// mix of writes and erasures, and copies that share what they do not change.
#include "controlplane/routing/resource_map.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace onramp::ctl::test {
namespace {

template <typename T>
void expect_same(const ResourceMap<T>& got, const std::map<std::string, T>& want) {
  ASSERT_EQ(got.size(), want.size());
  ASSERT_EQ(got.empty(), want.empty());
  auto g = got.begin();
  for (const auto& [key, value] : want) {
    ASSERT_NE(g, got.end());
    EXPECT_EQ(g->first, key);
    EXPECT_EQ(g->second, value);
    ++g;
  }
  EXPECT_EQ(g, got.end());
}

std::string key(int i) { return "k" + std::to_string(i); }

TEST(ResourceMap, AnswersAsAStdMapDoes) {
  std::mt19937 rng(12);
  ResourceMap<int> got;
  std::map<std::string, int> want;
  for (int step = 0; step < 20000; ++step) {
    int k = static_cast<int>(rng() % 3000);
    if (rng() % 4 == 0) {
      EXPECT_EQ(got.erase(key(k)), want.erase(key(k)));
    } else {
      got[key(k)] = step;
      want[key(k)] = step;
    }
  }
  expect_same(got, want);
  for (int k = -1; k < 3001; k += 7) {
    const std::string probe = k < 0 ? "" : key(k);
    auto g = got.lower_bound(probe);
    auto w = want.lower_bound(probe);
    if (w == want.end()) {
      EXPECT_EQ(g, got.end());
    } else {
      ASSERT_NE(g, got.end());
      EXPECT_EQ(g->first, w->first);
    }
    EXPECT_EQ(got.count(probe), want.count(probe));
    EXPECT_EQ(got.find(probe) == got.end(), want.find(probe) == want.end());
  }
  for (const std::string prefix : {"", "k", "k1", "k12", "k299", "k3000", "j", "l"}) {
    size_t n = 0;
    for (const auto& [k, v] : want) n += k.starts_with(prefix);
    EXPECT_EQ(got.count_prefix(prefix), n) << prefix;
  }
  // Erased to nothing, and filled again from the front.
  for (const auto& [k, v] : want) got.erase(k);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(got.begin(), got.end());
  got["b"] = 2;
  got["a"] = 1;
  EXPECT_EQ(got.begin()->first, "a");
  EXPECT_EQ(got.at("b"), 2);
  EXPECT_THROW(static_cast<void>(got.at("c")), std::out_of_range);
}

TEST(ResourceMap, ACopySharesWhatItDoesNotChange) {
  ResourceMap<int> original;
  for (int i = 0; i < 10000; ++i) original[key(i)] = i;
  ResourceMap<int> copy = original;
  EXPECT_EQ(copy.shared_with(original), 10000u);
  copy[key(5000)] = -1;
  copy.erase(key(20));
  copy["k5000a"] = 7;
  EXPECT_EQ(original.at(key(5000)), 5000);  // the original is untouched
  EXPECT_TRUE(original.contains(key(20)));
  EXPECT_FALSE(original.contains("k5000a"));
  EXPECT_GE(copy.shared_with(original), 10000u - 4 * ResourceMap<int>::kChunk);
  EXPECT_EQ(copy.size(), 10000u);
  EXPECT_FALSE(copy == original);
}

}  // namespace
}  // namespace onramp::ctl::test
