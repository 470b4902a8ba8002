#include "common/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/text.h"

namespace onramp {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::init("onramp-test");
    log::set_level(log::Level::info);
  }
  void TearDown() override { log::set_level(log::Level::info); }

  std::string capture(const std::function<void()>& fn) {
    ::testing::internal::CaptureStderr();
    fn();
    return ::testing::internal::GetCapturedStderr();
  }
};

TEST_F(LogTest, OneLogfmtLineWithTimeLevelProgramContextMessageAndFields) {
  log::set_context("pop", "FRA1");
  std::string out = capture([] {
    log::info("applied table", {{"version", 12}, {"listeners", std::string("3")}});
  });
  EXPECT_THAT(out, MatchesRegex("ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z level=info "
                                "prog=onramp-test pop=FRA1 msg=\"applied table\" version=12 "
                                "listeners=3\n"));
}

TEST_F(LogTest, LevelsFilterAndChangeAtRunTime) {
  EXPECT_TRUE(log::set_level("warn").ok());
  std::string out = capture([] {
    log::info("hidden");
    log::warn("shown");
  });
  EXPECT_THAT(out, Not(HasSubstr("hidden")));
  EXPECT_THAT(out, HasSubstr("level=warn "));
  EXPECT_TRUE(log::set_level("debug").ok());
  EXPECT_THAT(capture([] { log::debug("detail"); }), HasSubstr("msg=detail"));
  EXPECT_TRUE(log::set_level("off").ok());
  EXPECT_EQ(capture([] { log::error("nothing"); }), "");
}

TEST_F(LogTest, AnUnknownLevelIsRefusedWithTheNamesThatWork) {
  Status s = log::set_level("loud");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("\"loud\""));
  EXPECT_THAT(s.message(), HasSubstr("debug, info, warn, error, off"));
}

// A PoP's Hello fields reach the log: newlines and ANSI escapes must not
// forge a second line or colour the operator's terminal.
TEST_F(LogTest, ValuesCannotForgeLinesOrEscapes) {
  std::string out = capture([] {
    log::info("hello", {{"city", "x\n2026-01-01T00:00:00Z level=info msg=forged\x1b[31m"}});
  });
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  EXPECT_THAT(out, Not(HasSubstr("\x1b")));
  EXPECT_THAT(out, HasSubstr("city=\"x\\n2026-01-01T00:00:00Z level=info msg=forged\\x1b[31m\""));
}

TEST_F(LogTest, LongValuesAreCut) {
  std::string big(100 * 1024, 'a');
  std::string out = capture([&] { log::info("big", {{"field", big}}); });
  EXPECT_LT(out.size(), log::kMaxValueBytes + 200);
  EXPECT_THAT(out, HasSubstr("...\""));
}

TEST(EscapeValue, PlainTokensStayBareOthersAreQuoted) {
  EXPECT_EQ(log::escape_value("FRA1"), "FRA1");
  EXPECT_EQ(log::escape_value("198.51.100.7:80"), "198.51.100.7:80");
  EXPECT_EQ(log::escape_value(""), "\"\"");
  EXPECT_EQ(log::escape_value("two words"), "\"two words\"");
  EXPECT_EQ(log::escape_value("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
  EXPECT_EQ(log::escape_value("a=b"), "\"a=b\"");
}

TEST(Printable, ControlBytesAreShownNotObeyed) {
  EXPECT_EQ(printable("FRA1"), "FRA1");
  EXPECT_EQ(printable("a\nb\rc\td\x1b[0m"), "a\\nb\\rc\\td\\x1b[0m");
  EXPECT_EQ(printable("Zürich"), "Zürich");
  EXPECT_EQ(printable(std::string(10, 'x'), 4), "xxxx...");
  EXPECT_EQ(quote("fe80::1\n"), "\"fe80::1\\n\"");
}

}  // namespace
}  // namespace onramp
