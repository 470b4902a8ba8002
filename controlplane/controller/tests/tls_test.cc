// TLS with certificates from scripts/dev-ca, against the real binary: a PoP
// is who its certificate says, the admin API wants a client certificate or a
// bearer token, and PoP certificates do not make operators.
#include "controlplane/common/tls.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <fstream>
#include <future>
#include <regex>
#include <sstream>
#include <thread>

#include "controlplane/controller/tests/controller_process.h"
#include "controlplane/controller/tests/dev_ca.h"
#include "controlplane/controller/tests/fake_agent.h"
#include "controlplane/controller/tests/fixtures.h"
#include "onramp/v1/admin.grpc.pb.h"

namespace onramp::ctl::test {
namespace {

using namespace std::chrono_literals;
using grpc::StatusCode;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (controller_binary().empty()) return;
    dir_ = new TempDir();
    certs_ = dir_->file("certs");
    if (!make_dev_ca(certs_, "FRA1 SIN1", dir_->file("dev-ca.log"))) return;
    // A second CA that the controller does not know, with its own operator.
    if (!make_dev_ca(dir_->file("other"), "FRA1", dir_->file("dev-ca.log"))) return;
    if (!expired_certificate(certs_, "operator", dir_->file("expired"))) return;
    if (!expired_certificate(certs_, "FRA1", dir_->file("expired-FRA1"))) return;
    std::ofstream(dir_->file("tokens")) << "# test\n  s3cret-token  \n";
    admin_port_ = free_port();
    pop_port_ = free_port();
    ctl_ = new ControllerProcess(
        with_dev_ca_tls(certs_, {"--init", "--db", dir_->file("c.db"), "--admin-listen",
                                 "127.0.0.1:" + std::to_string(admin_port_), "--pop-listen",
                                 "127.0.0.1:" + std::to_string(pop_port_), "--admin-token-file",
                                 dir_->file("tokens")}),
        dir_->file("controller.log"));
    ready_ = ctl_->wait_ready({admin_port_, pop_port_});
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

  // A TLS channel to `port` verified against the dev CA, presenting the
  // client certificate `who` ("" for none).
  std::shared_ptr<grpc::Channel> channel(int port, const std::string& who) {
    return tls_channel(port, dev_identity(certs_, who));
  }
  grpc::Status list_with(const cp::TlsFiles& files, v1::ListAcceleratorsResponse* out = nullptr) {
    auto stub = v1::AdminService::NewStub(tls_channel(admin_port_, files));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::ListAcceleratorsResponse ignored;
    return stub->ListAccelerators(&ctx, v1::ListRequest(), out ? out : &ignored);
  }
  // grpc.health.v1.Health/Check of the whole server (an empty request) on
  // `port`: a service the controller's own handlers do not guard.
  grpc::Status health_with(int port, const cp::TlsFiles& files) {
    return health_with_channel(tls_channel(port, files));
  }
  grpc::Status health_with_channel(std::shared_ptr<grpc::Channel> channel) {
    grpc::GenericStub stub(std::move(channel));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    grpc::ByteBuffer request, response;
    grpc::Slice empty("");
    request = grpc::ByteBuffer(&empty, 1);
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", {}, &request, &response,
                   [&](grpc::Status s) { done.set_value(s); });
    return done.get_future().get();
  }
  cp::TlsFiles files(const std::string& cert, const std::string& key) const {
    return {.ca = certs_ + "/ca.pem", .cert = cert, .key = key};
  }
  cp::TlsFiles other_ca(const std::string& who) const {
    return files(dir_->file("other") + "/" + who + ".pem",
                 dir_->file("other") + "/" + who + "-key.pem");
  }
  cp::TlsFiles expired(const std::string& who) const {
    std::string base = dir_->file(who == "operator" ? "expired" : "expired-" + who);
    return files(base + ".pem", base + "-key.pem");
  }
  cp::TlsFiles own(const std::string& who) const { return dev_identity(certs_, who); }
  // Lines of the controller's log that match `pattern`.
  static size_t log_lines_matching(const std::string& pattern) {
    std::regex re(pattern);
    std::istringstream in(ctl_->log());
    size_t n = 0;
    for (std::string line; std::getline(in, line);) n += std::regex_search(line, re);
    return n;
  }
  grpc::Status list(const std::string& who, const std::string& token = "") {
    auto stub = v1::AdminService::NewStub(channel(admin_port_, who));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::ListAcceleratorsResponse out;
    return stub->ListAccelerators(&ctx, v1::ListRequest(), &out);
  }

  // A certificate for `cn` signed by the CA in `ca_dir` that expired
  // yesterday: `out`.pem and `out`-key.pem.
  static bool expired_certificate(const std::string& ca_dir, const std::string& cn,
                                  const std::string& out) {
    auto read = [](const std::string& path, auto reader) {
      FILE* f = std::fopen(path.c_str(), "r");
      auto* v = f ? reader(f, nullptr, nullptr, nullptr) : nullptr;
      if (f) std::fclose(f);
      return v;
    };
    X509* ca = read(ca_dir + "/ca.pem", PEM_read_X509);
    EVP_PKEY* ca_key = read(ca_dir + "/ca-key.pem", PEM_read_PrivateKey);
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    bool ok = ca && ca_key && key && cert;
    if (ok) {
      X509_set_version(cert, 2);
      ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
      X509_gmtime_adj(X509_getm_notBefore(cert), -2 * 86400);
      X509_gmtime_adj(X509_getm_notAfter(cert), -86400);
      X509_NAME* name = X509_get_subject_name(cert);
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
      X509_set_issuer_name(cert, X509_get_subject_name(ca));
      X509_set_pubkey(cert, key);
      ok = X509_sign(cert, ca_key, EVP_sha256()) > 0;
    }
    if (ok) {
      FILE* c = std::fopen((out + ".pem").c_str(), "w");
      FILE* k = std::fopen((out + "-key.pem").c_str(), "w");
      ok = c && k && PEM_write_X509(c, cert) == 1 &&
           PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
      if (c) std::fclose(c);
      if (k) std::fclose(k);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
    return ok;
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string certs_;
  static inline ControllerProcess* ctl_ = nullptr;
  static inline int admin_port_ = 0, pop_port_ = 0;
  static inline bool ready_ = false;
};

TEST_F(TlsTest, AdminWithoutCertificateOrTokenIsUnauthenticated) {
  auto s = list("");
  EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << s.error_message();
  s = list("", "wrong-token");
  EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << s.error_message();
}

TEST_F(TlsTest, AdminWithTokenIsServed) {
  auto s = list("", "s3cret-token");
  EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(TlsTest, AdminWithOperatorCertificateIsServed) {
  auto s = list("operator");
  EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(TlsTest, APopCertificateIsNotAnOperator) {
  auto s = list("FRA1");
  EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << s.error_message();
}

TEST_F(TlsTest, PopIsWhoItsCertificateSays) {
  FakeAgent agent(channel(pop_port_, "FRA1"));
  ASSERT_TRUE(agent.hello("FRA1"));
  auto u = agent.next(10s);
  ASSERT_TRUE(u) << ctl_->log();
  EXPECT_EQ(u->table().pop(), "FRA1");
}

TEST_F(TlsTest, PopClaimingAnotherIdIsRefused) {
  FakeAgent agent(channel(pop_port_, "FRA1"));
  agent.hello("SIN1");
  auto s = agent.finish(10s);
  EXPECT_EQ(s.error_code(), StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(
      ctl_->log().find(
          "msg=\"hello refused\" pop=FRA1 error=\"hello.pop: SIN1 is not the PoP of the client "
          "certificate, FRA1\""),
      std::string::npos)
      << ctl_->log();
}

TEST_F(TlsTest, PopWithoutCertificateCannotConnect) {
  FakeAgent agent(channel(pop_port_, ""));
  agent.hello("FRA1");
  auto s = agent.finish(10s);
  EXPECT_EQ(s.error_code(), StatusCode::UNAVAILABLE) << s.error_message();
}

// Hardening review, finding 10: a client certificate from another CA, or an
// expired one, came back as "Socket closed" (UNAVAILABLE, onrampctl's exit 5,
// "cannot reach the server"), and the controller could not log who it was.
// The controller now takes the certificate in the handshake and refuses every
// call with it as UNAUTHENTICATED, saying why (onrampctl's exit 8).
// certificate_refusal still reads the certificate's dates first (for older
// controllers that refuse in the handshake), and has nothing to add against
// a controller that answers.
TEST_F(TlsTest, ARefusedClientCertificateIsToldApartFromAnUnreachableController) {
  std::string target = "localhost:" + std::to_string(admin_port_);
  auto s = list_with(other_ca("operator"));
  EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_NE(s.error_message().find("unknown CA"), std::string::npos) << s.error_message();
  EXPECT_EQ(cp::certificate_refusal(target, other_ca("operator")), "");

  s = list_with(expired("operator"));
  EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << s.error_message();
  std::string why = cp::certificate_refusal(target, expired("operator"));
  EXPECT_EQ(why.rfind("it expired on ", 0), 0u) << why;

  // A certificate the controller takes, and a port nobody serves: nothing
  // to say about the certificate.
  EXPECT_EQ(cp::certificate_refusal(target, own("operator")), "");
  EXPECT_EQ(
      cp::certificate_refusal("localhost:" + std::to_string(free_port()), other_ca("operator")),
      "");
  EXPECT_EQ(cp::certificate_refusal(target, {}), "");
}

// Finding 10 on the admin port: a certificate from another CA and an expired
// one are refused on every call, the controller's own services and gRPC's
// health service alike, and nothing is served, not even to a caller that
// also holds a valid token.
TEST_F(TlsTest, Finding10RefusedCertificatesGetNothingFromTheAdminPort) {
  for (const auto& [name, bad] :
       {std::pair{"other CA", other_ca("operator")}, std::pair{"expired", expired("operator")}}) {
    SCOPED_TRACE(name);
    v1::ListAcceleratorsResponse out;
    auto s = list_with(bad, &out);
    EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << s.error_message();
    EXPECT_EQ(out.ByteSizeLong(), 0u);
    s = health_with(admin_port_, bad);
    EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << s.error_message();

    auto stub = v1::AdminService::NewStub(tls_channel(admin_port_, bad));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ctx.AddMetadata("authorization", "Bearer s3cret-token");
    s = stub->ListAccelerators(&ctx, v1::ListRequest(), &out);
    EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << s.error_message();
  }
  auto s = list_with(expired("operator"));
  EXPECT_NE(s.error_message().find("(CN=operator): it expired on "), std::string::npos)
      << s.error_message();
  // A valid certificate still works, on the same services.
  EXPECT_TRUE(list_with(own("operator")).ok());
  auto h = health_with(admin_port_, own("operator"));
  EXPECT_TRUE(h.ok()) << h.error_message();
}

// Finding 10 on the PoP port: a PoP certificate from another CA, or an
// expired one, opens no session: no table, the stream ends UNAUTHENTICATED.
TEST_F(TlsTest, Finding10RefusedCertificatesGetNoTableFromThePopPort) {
  for (const auto& [name, bad] :
       {std::pair{"other CA", other_ca("FRA1")}, std::pair{"expired", expired("FRA1")}}) {
    SCOPED_TRACE(name);
    FakeAgent agent(tls_channel(pop_port_, bad));
    agent.hello("FRA1");
    EXPECT_FALSE(agent.next(2s).has_value());
    auto s = agent.finish(10s);
    EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << s.error_message();
    s = health_with(pop_port_, bad);
    EXPECT_EQ(s.error_code(), StatusCode::UNAUTHENTICATED) << s.error_message();
  }
  // The same PoP with its own certificate is served.
  FakeAgent agent(tls_channel(pop_port_, own("FRA1")));
  ASSERT_TRUE(agent.hello("FRA1"));
  auto u = agent.next(10s);
  ASSERT_TRUE(u) << ctl_->log();
  EXPECT_EQ(u->table().pop(), "FRA1");
}

// Finding 10, the controller's side: each refusal is logged with the peer's
// address and port, the certificate's subject and the reason, on both ports.
TEST_F(TlsTest, Finding10TheControllerLogsWhoseCertificateItRefusedAndWhy) {
  (void)list_with(other_ca("operator"));
  (void)list_with(expired("operator"));
  FakeAgent pop(tls_channel(pop_port_, other_ca("FRA1")));
  pop.hello("FRA1");
  (void)pop.finish(10s);
  FakeAgent late(tls_channel(pop_port_, expired("FRA1")));
  late.hello("FRA1");
  (void)late.finish(10s);

  const std::string refused = "msg=\"client certificate refused\" ";
  const std::string admin = "listen=127\\.0\\.0\\.1:" + std::to_string(admin_port_) + " ";
  const std::string pops = "listen=127\\.0\\.0\\.1:" + std::to_string(pop_port_) + " ";
  const std::string peer = "peer=127\\.0\\.0\\.1:[0-9]+ ";
  const std::string unknown_ca = "reason=\"unknown CA: it is not signed by the client CA";
  const std::string expired = "reason=\"it expired on ";
  EXPECT_GE(log_lines_matching(refused + admin + peer +
                               "subject=\"CN=operator,O=onramp development\" " + unknown_ca),
            1u)
      << ctl_->log();
  EXPECT_GE(log_lines_matching(refused + admin + peer + "subject=\"CN=operator\" " + expired), 1u)
      << ctl_->log();
  EXPECT_GE(log_lines_matching(refused + pops + peer + "subject=\"CN=FRA1,O=onramp development\" " +
                               unknown_ca + ".*call=/onramp\\.v1\\.PopSessionService/"),
            1u)
      << ctl_->log();
  EXPECT_GE(log_lines_matching(refused + pops + peer + "subject=\"CN=FRA1\" " + expired), 1u)
      << ctl_->log();
}

// Finding 10: a refused certificate keeps no connection open. Before, the
// handshake ended it; now the connection guard closes it a second or so
// after the refusal (once the client has read it), on either port.
TEST_F(TlsTest, Finding10AConnectionWithARefusedCertificateIsClosed) {
  for (int port : {admin_port_, pop_port_}) {
    SCOPED_TRACE(port);
    auto channel = tls_channel(port, port == admin_port_ ? other_ca("operator") : other_ca("FRA1"));
    EXPECT_EQ(health_with_channel(channel).error_code(), StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
    auto until = std::chrono::steady_clock::now() + 5s;
    while (channel->GetState(false) == GRPC_CHANNEL_READY &&
           std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(50ms);
    EXPECT_NE(channel->GetState(false), GRPC_CHANNEL_READY);
  }
  EXPECT_GE(log_lines_matching("msg=\"closed connections whose client certificate was refused\""),
            1u)
      << ctl_->log();
  // A valid certificate's connection stays.
  auto good = tls_channel(admin_port_, own("operator"));
  EXPECT_TRUE(health_with_channel(good).ok());
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(good->GetState(false), GRPC_CHANNEL_READY);
}

}  // namespace
}  // namespace onramp::ctl::test
