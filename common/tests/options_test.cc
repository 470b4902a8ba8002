#include "common/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
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

// Runs a command line that must be refused as a usage error (exit 2) and
// returns what it said on stderr.
std::string refused(CLI::App& app, std::vector<std::string> args) {
  ::testing::internal::CaptureStderr();
  auto rc = run(app, std::move(args));
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, std::optional<int>(2)) << err;
  return err;
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
  EXPECT_THAT(refused(again, {"--log-level", "chatty"}), HasSubstr("\"chatty\""));
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
  EXPECT_EQ(check(opts::kHostName, "fra1-a"), "");
  EXPECT_EQ(check(opts::kHostName, std::string(63, 'a')), "");
  for (const char* bad : {"", "-fra1", "fra1-", "FRA1-a", "fra1.a", "fra1_a"})
    EXPECT_THAT(check(opts::kHostName, bad), HasSubstr("is not a host name")) << bad;
  EXPECT_FALSE(opts::is_host_name(std::string(64, 'a')));
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/onramp-config-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& text) {
    std::string path = dir_ + "/agent.conf";
    std::ofstream(path) << text;
    return path;
  }
  // An app like a daemon's: a few flags, the common ones, a config file.
  void make_app(const std::string& default_path) {
    app_ = std::make_unique<CLI::App>("test", "onramp-test");
    app_->add_option("--pop", pop_)->check(opts::kPopId);
    app_->add_option("--port", port_)->check(CLI::Range(1, 65535));
    app_->add_option("--vips", vips_);
    opts::add_common_flags(*app_);
    opts::add_config_file(*app_, default_path);
  }

  std::string dir_;
  std::unique_ptr<CLI::App> app_;
  std::string pop_;
  int port_ = 7444;
  std::vector<std::string> vips_;
};

TEST_F(ConfigFileTest, TheFileSetsFlagsAndTheCommandLineOverridesIt) {
  std::string path =
      write("# PoP\npop = \"FRA1\"\nport = 7000\nvips = [\"203.0.113.10\", \"2001:db8::10\"]\n");
  make_app(path);
  EXPECT_FALSE(run(*app_, {}).has_value());
  EXPECT_EQ(pop_, "FRA1");
  EXPECT_EQ(port_, 7000);
  EXPECT_EQ(vips_, (std::vector<std::string>{"203.0.113.10", "2001:db8::10"}));

  make_app(path);
  EXPECT_FALSE(run(*app_, {"--port", "7444"}).has_value());
  EXPECT_EQ(port_, 7444);
  EXPECT_EQ(pop_, "FRA1");
}

TEST_F(ConfigFileTest, AMissingDefaultFileIsFineAMissingNamedFileIsNot) {
  make_app(dir_ + "/absent.conf");
  EXPECT_FALSE(run(*app_, {"--pop", "SIN1"}).has_value());
  EXPECT_EQ(pop_, "SIN1");

  make_app("");
  EXPECT_THAT(refused(*app_, {"--config", dir_ + "/absent.conf"}), HasSubstr("absent.conf"));
}

TEST_F(ConfigFileTest, ABadValueNamesTheFileTheLineAndTheKey) {
  std::string path = write("pop = \"FRA1\"\n\n# the PoP port\nport = 99999\n");
  make_app(path);
  EXPECT_THAT(refused(*app_, {}), ::testing::StartsWith(path + ":4: port: "));
}

TEST_F(ConfigFileTest, AnUnknownKeyNamesTheFileAndTheLine) {
  std::string path = write("pop = \"FRA1\"\nprot = 7000\n");
  make_app(path);
  EXPECT_THAT(refused(*app_, {}), ::testing::StartsWith(path + ":2: prot: "));
}

}  // namespace
}  // namespace onramp
