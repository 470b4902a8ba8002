#include "common/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "common/log.h"

namespace onramp {
namespace {

using ::testing::HasSubstr;

std::optional<int> run(CLI::App& app, std::vector<std::string> args) {
  std::vector<char*> argv;
  std::string name = app.get_name();
  argv.push_back(name.data());
  for (auto& a : args) argv.push_back(a.data());
  return opts::parse(app, static_cast<int>(argv.size()), argv.data());
}

TEST(Options, VersionPrintsTheProgramAndVersionAndExitsZero) {
  CLI::App app("test", "onramp-test");
  opts::add_common_flags(app);
  ::testing::internal::CaptureStdout();
  auto rc = run(app, {"--version"});
  std::string out = ::testing::internal::GetCapturedStdout();
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 0);
  EXPECT_EQ(out, std::string("onramp-test ") + opts::version() + "\n");
  EXPECT_STRNE(opts::version(), "");
}

TEST(Options, LogLevelSetsTheCommonLoggerAndRefusesUnknownNames) {
  CLI::App app("test", "onramp-test");
  opts::add_common_flags(app);
  EXPECT_FALSE(run(app, {"--log-level", "debug"}).has_value());
  EXPECT_EQ(log::level(), log::Level::debug);
  log::set_level(log::Level::info);

  CLI::App again("test", "onramp-test");
  opts::add_common_flags(again);
  ::testing::internal::CaptureStderr();
  auto rc = run(again, {"--log-level", "chatty"});
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(rc.has_value());
  EXPECT_NE(*rc, 0);
  EXPECT_THAT(err, HasSubstr("\"chatty\""));
}

TEST(Options, AddressChecksSayWhatIsExpected) {
  auto check = [](const CLI::Validator& v, std::string value) { return v(value); };
  EXPECT_EQ(check(opts::kIpv4, "192.0.2.1"), "");
  EXPECT_EQ(check(opts::kIpv4, "2001:db8::1"), "\"2001:db8::1\" is not an IPv4 address");
  EXPECT_EQ(check(opts::kIpv6, "2001:db8::1"), "");
  EXPECT_EQ(check(opts::kIpv6, "192.0.2.1"), "\"192.0.2.1\" is not an IPv6 address");
  EXPECT_EQ(check(opts::kIpAddress, "bad"), "\"bad\" is not an IPv4 or IPv6 address");
  EXPECT_EQ(check(opts::kMac, "02:00:00:00:00:01"), "");
  EXPECT_THAT(check(opts::kMac, "02:00"), HasSubstr("is not a MAC address"));
  EXPECT_EQ(check(opts::kPopId, "FRA1"), "");
  EXPECT_THAT(check(opts::kPopId, "fra1"), HasSubstr("is not IATA code + number"));
}

}  // namespace
}  // namespace onramp
