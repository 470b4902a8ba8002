// The status page and the audit log against the real binary, with
// certificates from scripts/dev-ca: the page off loopback is HTTPS and wants
// an operator's certificate or an admin token (Bearer, or HTTP Basic's
// password); every admin mutation writes one audit line naming its caller;
// SIGUSR1 raises the log level of the running process.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "controlplane/common/tls.h"
#include "controlplane/controller/tests/controller_process.h"
#include "controlplane/controller/tests/dev_ca.h"
#include "controlplane/controller/tests/fixtures.h"
#include "onramp/v1/admin.grpc.pb.h"

namespace onramp::ctl::test {
namespace {

using namespace std::chrono_literals;

struct Answer {
  int code = 0;
  std::string body;
};

class StatusPageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (controller_binary().empty()) return;
    dir_ = new TempDir();
    certs_ = dir_->file("certs");
    if (!make_dev_ca(certs_, "FRA1", dir_->file("dev-ca.log"))) return;
    // A named token and an unnamed one.
    std::ofstream(dir_->file("tokens")) << "# test\nci s3cret-ci\nplain-token\n";
    admin_port_ = free_port();
    status_port_ = free_port();
    ctl_ = new ControllerProcess(
        with_dev_ca_tls(certs_, {"--init", "--db", dir_->file("c.db"), "--admin-listen",
                                 "127.0.0.1:" + std::to_string(admin_port_), "--pop-listen",
                                 "127.0.0.1:" + std::to_string(free_port()), "--admin-token-file",
                                 dir_->file("tokens"), "--status-listen",
                                 "0.0.0.0:" + std::to_string(status_port_)}),
        dir_->file("controller.log"));
    ready_ = ctl_->wait_ready({admin_port_, status_port_});
  }
  static void TearDownTestSuite() {
    delete ctl_;
    delete dir_;
    ctl_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (controller_binary().empty() || !std::getenv("ONRAMP_DEV_CA"))
      GTEST_SKIP() << "ONRAMP_CONTROLLER or ONRAMP_DEV_CA is not set";
    ASSERT_TRUE(ready_) << (ctl_ ? ctl_->log() : "scripts/dev-ca failed");
  }

  // curl against the page, verified against the dev CA; `extra`: its
  // credentials.
  static Answer get(const std::string& path, const std::string& extra = "") {
    std::string body = dir_->file("body");
    std::remove(body.c_str());
    std::string cmd = "curl -s --max-time 10 --cacert " + certs_ + "/ca.pem -o " + body +
                      " -w '%{http_code}' " + extra +
                      " https://localhost:" + std::to_string(status_port_) + path;
    Answer a;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
      char buf[16] = {};
      size_t n = std::fread(buf, 1, sizeof buf - 1, p);
      ::pclose(p);
      a.code = std::atoi(std::string(buf, n).c_str());
    }
    std::ifstream in(body);
    a.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return a;
  }
  static std::string as(const std::string& who) {
    const cp::TlsFiles id = dev_identity(certs_, who);
    return "--cert " + id.cert + " --key " + id.key;
  }

  // An admin call with a token or an operator's certificate.
  grpc::Status create(const std::string& name, const std::string& token, const std::string& who) {
    auto stub = v1::AdminService::NewStub(tls_channel(admin_port_, dev_identity(certs_, who)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::Accelerator req, out;
    req.set_name(name);
    static int next = 10;  // VIPs are unique across accelerators
    req.add_vips("192.0.2." + std::to_string(next++));
    return stub->CreateAccelerator(&ctx, req, &out);
  }

  // The first log line holding every one of `parts`, waiting up to 2 s.
  static std::string line_with(const std::vector<std::string>& parts) {
    for (int i = 0; i < 40; ++i) {
      std::istringstream log(ctl_->log());
      for (std::string line; std::getline(log, line);) {
        bool all = true;
        for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
        if (all) return line;
      }
      std::this_thread::sleep_for(50ms);
    }
    return "";
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string certs_;
  static inline ControllerProcess* ctl_ = nullptr;
  static inline int admin_port_ = 0, status_port_ = 0;
  static inline bool ready_ = false;
};

TEST_F(StatusPageTest, OffLoopbackTheStatusPageWantsCredentials) {
  Answer a = get("/api/status");
  EXPECT_EQ(a.code, 401) << a.body;
  EXPECT_EQ(get("/", "-H 'Authorization: Bearer wrong'").code, 401);
  // A PoP's certificate is signed by the same CA but is not an operator's.
  EXPECT_EQ(get("/api/status", as("FRA1")).code, 401);
}

TEST_F(StatusPageTest, AnOperatorCertificateOrATokenReadsIt) {
  Answer a = get("/api/status", as("operator"));
  ASSERT_EQ(a.code, 200) << a.body;
  google::protobuf::Struct doc;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(a.body, &doc).ok()) << a.body;
  for (const char* key :
       {"generated_ms", "config_version", "pops", "endpoints", "routes", "changes"})
    EXPECT_TRUE(doc.fields().count(key)) << key << " missing in " << a.body;
  EXPECT_EQ(get("/api/status", "-H 'Authorization: Bearer s3cret-ci'").code, 200);
  // Browsers ask for HTTP Basic themselves: the token is the password.
  EXPECT_EQ(get("/api/status", "-u anyone:plain-token").code, 200);
  Answer page = get("/", as("operator"));
  EXPECT_EQ(page.code, 200);
  EXPECT_NE(page.body.find("<svg id=\"map\""), std::string::npos);
  EXPECT_EQ(get("/nothing", as("operator")).code, 404);
  // Read-only.
  EXPECT_EQ(get("/api/status", as("operator") + " -X POST -d ''").code, 405);
}

TEST_F(StatusPageTest, EveryAdminMutationIsAuditedWithItsCaller) {
  ASSERT_TRUE(create("web", "s3cret-ci", "").ok());
  EXPECT_NE(line_with({"msg=audit", "caller=token:ci", "method=CreateAccelerator", "resource=web",
                       "result=OK"}),
            "")
      << ctl_->log();
  ASSERT_TRUE(create("shop", "plain-token", "").ok());
  EXPECT_NE(line_with({"msg=audit", "caller=token:line-2", "resource=shop", "result=OK"}), "");
  ASSERT_TRUE(create("mail", "", "operator").ok());
  EXPECT_NE(line_with({"msg=audit", "caller=cert:operator", "resource=mail", "result=OK"}), "");
  // Refused mutations are audited too, with the reason.
  EXPECT_FALSE(create("mail", "", "operator").ok());
  EXPECT_NE(
      line_with({"msg=audit", "caller=cert:operator", "resource=mail", "result=ALREADY_EXISTS"}),
      "")
      << ctl_->log();
  EXPECT_FALSE(create("nobody", "wrong", "").ok());
  EXPECT_NE(line_with({"msg=audit", "caller=unauthenticated", "resource=nobody",
                       "result=UNAUTHENTICATED"}),
            "");
  // The page's last changes show the configuration moving.
  std::this_thread::sleep_for(400ms);
  Answer a = get("/api/status", as("operator"));
  EXPECT_NE(a.body.find("configuration version: 0 -> "), std::string::npos) << a.body;
}

TEST_F(StatusPageTest, SigusrStepsTheLogLevelOfTheRunningController) {
  ctl_->signal(SIGUSR1);
  EXPECT_NE(line_with({"msg=\"log level changed\"", "new_level=debug", "signal=SIGUSR1"}), "")
      << ctl_->log();
  ctl_->signal(SIGUSR2);
  EXPECT_NE(line_with({"msg=\"log level changed\"", "new_level=info", "signal=SIGUSR2"}), "");
  EXPECT_FALSE(ctl_->exited());
}

// Off loopback without TLS, the page would be readable by anyone on the
// network: the controller does not start.
TEST(StatusPageRefusal, OffLoopbackInPlaintextIsRefused) {
  if (controller_binary().empty()) GTEST_SKIP() << "ONRAMP_CONTROLLER is not set";
  TempDir dir;
  ControllerProcess p({"--init", "--db", dir.file("c.db"), "--plaintext", "--admin-listen",
                       "127.0.0.1:" + std::to_string(free_port()), "--pop-listen",
                       "127.0.0.1:" + std::to_string(free_port()), "--status-listen",
                       "0.0.0.0:" + std::to_string(free_port())},
                      dir.file("log"));
  int st = p.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << p.log();
  EXPECT_NE(p.log().find("--status-listen: 0.0.0.0:"), std::string::npos) << p.log();
  EXPECT_NE(p.log().find("served over TLS only"), std::string::npos) << p.log();
}

// On loopback it is plain HTTP, and open when no token file guards the
// admin API.
TEST(StatusPageLoopback, PlainHttpOnLoopback) {
  if (controller_binary().empty()) GTEST_SKIP() << "ONRAMP_CONTROLLER is not set";
  TempDir dir;
  int admin = free_port(), status = free_port();
  ControllerProcess p({"--init", "--db", dir.file("c.db"), "--plaintext", "--admin-listen",
                       "127.0.0.1:" + std::to_string(admin), "--pop-listen",
                       "127.0.0.1:" + std::to_string(free_port()), "--status-listen",
                       "127.0.0.1:" + std::to_string(status), "--log-format", "json"},
                      dir.file("log"));
  ASSERT_TRUE(p.wait_ready({admin, status})) << p.log();
  std::string cmd =
      "curl -s --max-time 10 http://127.0.0.1:" + std::to_string(status) + "/api/status";
  std::string body;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) body.append(buf, n);
    ::pclose(f);
  }
  EXPECT_NE(body.find("\"changes\":[{\"ms\":"), std::string::npos) << body;
  // Every line of the JSON log parses.
  std::istringstream log(p.log());
  int lines = 0;
  for (std::string line; std::getline(log, line); ++lines) {
    google::protobuf::Struct doc;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &doc).ok()) << line;
  }
  EXPECT_GT(lines, 2);
  p.signal(SIGTERM);
  p.wait();
}

}  // namespace
}  // namespace onramp::ctl::test
