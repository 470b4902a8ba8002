// The controller binary's /metrics, scraped with curl: served on loopback,
// refused off loopback without authentication or TLS, with basic auth, and
// over HTTPS (certificates from scripts/dev-ca).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "controlplane/controller/tests/controller_process.h"
#include "controlplane/controller/tests/dev_ca.h"
#include "controlplane/controller/tests/fixtures.h"

namespace onramp::ctl::test {
namespace {

// curl's output (body, or with -w the status code), as a shell runs it.
std::string curl(const std::string& args) {
  std::string out;
  FILE* p = ::popen(("curl -s --max-time 10 " + args).c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

class MetricsProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (controller_binary().empty()) GTEST_SKIP() << "ONRAMP_CONTROLLER is not set";
  }
  std::vector<std::string> args(int admin, int pop) {
    return {"--db",           dir_.file("c.db"),
            "--init",         "--plaintext",
            "--admin-listen", "127.0.0.1:" + std::to_string(admin),
            "--pop-listen",   "127.0.0.1:" + std::to_string(pop)};
  }
  TempDir dir_;
};

TEST_F(MetricsProcessTest, ScrapedOnLoopback) {
  int admin = free_port(), pop = free_port(), metrics = free_port();
  auto a = args(admin, pop);
  a.insert(a.end(), {"--metrics-listen", "127.0.0.1:" + std::to_string(metrics)});
  ControllerProcess p(a, dir_.file("log"));
  ASSERT_TRUE(p.wait_ready({admin, pop, metrics})) << p.log();
  std::string url = "http://127.0.0.1:" + std::to_string(metrics) + "/metrics";
  std::string body = curl(url);
  EXPECT_NE(body.find("# TYPE onramp_pops gauge"), std::string::npos) << body;
  EXPECT_NE(body.find("onramp_pops{state=\"connected\"} 0"), std::string::npos) << body;
  EXPECT_NE(body.find("onramp_config_version "), std::string::npos) << body;
  EXPECT_NE(p.log().find("serving metrics"), std::string::npos) << p.log();
  p.signal(SIGTERM);
  int st = p.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << p.log();
}

TEST_F(MetricsProcessTest, OffLoopbackWithoutAuthIsRefused) {
  auto a = args(free_port(), free_port());
  a.insert(a.end(), {"--metrics-listen", "0.0.0.0:" + std::to_string(free_port())});
  ControllerProcess p(a, dir_.file("log"));
  int st = p.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << p.log();
  EXPECT_NE(p.log().find("--metrics-listen: \"0.0.0.0:"), std::string::npos) << p.log();
  EXPECT_NE(p.log().find("is not loopback: give --metrics-basic-auth-file or --metrics-tls-cert"),
            std::string::npos)
      << p.log();
}

TEST_F(MetricsProcessTest, BasicAuthIsRequiredWhenConfigured) {
  { std::ofstream(dir_.file("users")) << "# scrapers\nprometheus:s3cret\n"; }
  int admin = free_port(), pop = free_port(), metrics = free_port();
  auto a = args(admin, pop);
  a.insert(a.end(), {"--metrics-listen", "0.0.0.0:" + std::to_string(metrics),
                     "--metrics-basic-auth-file", dir_.file("users")});
  ControllerProcess p(a, dir_.file("log"));
  ASSERT_TRUE(p.wait_ready({admin, pop, metrics})) << p.log();
  std::string url = "http://127.0.0.1:" + std::to_string(metrics) + "/metrics";
  EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' " + url), "401");
  EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' -u prometheus:wrong " + url), "401");
  EXPECT_NE(curl("-u prometheus:s3cret " + url).find("onramp_pops"), std::string::npos);
}

TEST_F(MetricsProcessTest, ServedOverTlsOffLoopback) {
  if (!std::getenv("ONRAMP_DEV_CA")) GTEST_SKIP() << "ONRAMP_DEV_CA is not set";
  const std::string certs = dir_.file("certs");
  ASSERT_TRUE(make_dev_ca(certs, "FRA1", dir_.file("dev-ca.log")));
  int admin = free_port(), pop = free_port(), metrics = free_port();
  auto a = args(admin, pop);
  a.insert(a.end(),
           {"--metrics-listen", "0.0.0.0:" + std::to_string(metrics), "--metrics-tls-cert",
            certs + "/controller.pem", "--metrics-tls-key", certs + "/controller-key.pem"});
  ControllerProcess p(a, dir_.file("log"));
  ASSERT_TRUE(p.wait_ready({admin, pop, metrics})) << p.log();
  const std::string where = "127.0.0.1:" + std::to_string(metrics) + "/metrics";
  EXPECT_NE(curl("--cacert " + certs + "/ca.pem https://" + where).find("onramp_pops"),
            std::string::npos);
  // Plain HTTP to the TLS port gets no metrics.
  EXPECT_EQ(curl("http://" + where).find("onramp_pops"), std::string::npos);
}

TEST_F(MetricsProcessTest, ATlsCertificateWithoutItsKeyIsRefused) {
  auto a = args(free_port(), free_port());
  a.insert(a.end(), {"--metrics-listen", "127.0.0.1:" + std::to_string(free_port()),
                     "--metrics-tls-cert", dir_.file("cert.pem")});
  ControllerProcess p(a, dir_.file("log"));
  int st = p.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << p.log();
  EXPECT_NE(p.log().find("--metrics-tls-cert and --metrics-tls-key: give both or neither"),
            std::string::npos)
      << p.log();
}

}  // namespace
}  // namespace onramp::ctl::test
