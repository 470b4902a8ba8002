#include "common/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace onramp {
namespace {

Status fails_when(bool fail) { return fail ? error("it failed") : ok_status(); }

Status returns_early(bool fail, int& reached) {
  ONRAMP_RETURN_IF_ERROR(fails_when(fail));
  ++reached;
  return ok_status();
}

Result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return error(std::string("'") + c + "' is not a digit");
  return c - '0';
}

TEST(Status, OkByDefaultAndCarriesTheMessageOfAnError) {
  EXPECT_TRUE(Status().ok());
  EXPECT_EQ(Status().message(), "");
  Status e = error("port: outside 1..65535");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.message(), "port: outside 1..65535");
}

TEST(Status, PrefixedNamesWhereAndLeavesOkAlone) {
  EXPECT_EQ(error("line 3:1: bad").prefixed("table.textproto").message(),
            "table.textproto: line 3:1: bad");
  EXPECT_TRUE(ok_status().prefixed("table.textproto").ok());
  EXPECT_EQ(ok_status().prefixed("x").message(), "");
}

TEST(Status, ReturnIfErrorStopsAtTheFirstError) {
  int reached = 0;
  EXPECT_TRUE(returns_early(false, reached).ok());
  EXPECT_EQ(reached, 1);
  Status s = returns_early(true, reached);
  EXPECT_EQ(s.message(), "it failed");
  EXPECT_EQ(reached, 1);
}

TEST(Result, HoldsAValueOrAnError) {
  Result<int> seven = parse_digit('7');
  ASSERT_TRUE(seven.ok());
  EXPECT_EQ(*seven, 7);
  EXPECT_EQ(seven.error(), "");
  EXPECT_TRUE(seven.status().ok());

  Result<int> bad = parse_digit('x');
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), "'x' is not a digit");
  EXPECT_EQ(bad.status().message(), "'x' is not a digit");
}

TEST(Result, MovesOnlyValuesOut) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(5);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 5);
}

}  // namespace
}  // namespace onramp
