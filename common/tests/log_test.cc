#include "common/log.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

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
  void TearDown() override {
    log::set_level(log::Level::info);
    log::set_format(log::Format::logfmt);
  }

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

// --log-format json: every line one JSON object, parsed here by a real JSON
// parser (protobuf's), with the same keys as logfmt; numbers stay numbers.
google::protobuf::Struct parse_json_line(const std::string& line) {
  google::protobuf::Struct out;
  auto status = google::protobuf::util::JsonStringToMessage(line, &out);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << line;
  return out;
}

TEST_F(LogTest, JsonLinesCarryTheSameFieldsAndParse) {
  EXPECT_TRUE(log::set_format("json").ok());
  log::set_context("pop", "FRA1");
  std::string out = capture([] {
    log::info("applied table", {{"version", 12}, {"listeners", std::string("3")}, {"up", true}});
  });
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  ASSERT_EQ(out.back(), '\n');
  auto fields = parse_json_line(out.substr(0, out.size() - 1)).fields();
  EXPECT_THAT(fields.at("ts").string_value(), MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"));
  EXPECT_EQ(fields.at("level").string_value(), "info");
  EXPECT_EQ(fields.at("prog").string_value(), "onramp-test");
  EXPECT_EQ(fields.at("pop").string_value(), "FRA1");
  EXPECT_EQ(fields.at("msg").string_value(), "applied table");
  EXPECT_EQ(fields.at("version").number_value(), 12);
  EXPECT_EQ(fields.at("listeners").string_value(), "3");
  EXPECT_TRUE(fields.at("up").bool_value());
}

TEST_F(LogTest, JsonValuesCannotForgeLinesOrBreakTheObject) {
  EXPECT_TRUE(log::set_format("json").ok());
  std::string hostile = "x\"}\n{\"level\":\"error\"\\\x1b[31m\xff\xfe\t";
  std::string out = capture([&] { log::warn("hello", {{"city", hostile}, {"n", 0.5}}); });
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  EXPECT_THAT(out, Not(HasSubstr("\x1b")));
  auto fields = parse_json_line(out.substr(0, out.size() - 1)).fields();
  EXPECT_EQ(fields.at("level").string_value(), "warn");
  // Bytes outside ASCII come back as the code points of their values.
  EXPECT_EQ(fields.at("city").string_value(), "x\"}\n{\"level\":\"error\"\\\x1b[31m\u00ff\u00fe\t");
  EXPECT_EQ(fields.at("n").number_value(), 0.5);
}

TEST_F(LogTest, AnUnknownFormatIsRefusedWithTheNamesThatWork) {
  Status s = log::set_format("xml");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("logfmt, json"));
}

// SIGUSR1 one step more detail, SIGUSR2 one step less, each change said in
// a line even when the new level would hide it.
TEST_F(LogTest, SignalsStepTheLevelAndSaySo) {
  ASSERT_TRUE(log::step_level_on_signals().ok());
  auto wait_for = [](log::Level want) {
    for (int i = 0; i < 200 && log::level() != want; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return log::level();
  };
  ::testing::internal::CaptureStderr();
  raise(SIGUSR1);
  EXPECT_EQ(wait_for(log::Level::debug), log::Level::debug);
  raise(SIGUSR2);
  EXPECT_EQ(wait_for(log::Level::info), log::Level::info);
  raise(SIGUSR2);
  EXPECT_EQ(wait_for(log::Level::warn), log::Level::warn);
  raise(SIGUSR2);
  EXPECT_EQ(wait_for(log::Level::error), log::Level::error);
  raise(SIGUSR2);  // error is the floor: signals never turn the log off
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(log::level(), log::Level::error);
  std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(out, HasSubstr("msg=\"log level changed\" new_level=debug signal=SIGUSR1"));
  EXPECT_THAT(out, HasSubstr("msg=\"log level changed\" new_level=error signal=SIGUSR2"));
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
