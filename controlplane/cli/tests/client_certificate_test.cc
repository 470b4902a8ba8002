// How the controller's servers judge a client certificate (hardening finding
// 10): the verdict and the reason given for each way a certificate fails, and
// how a channelz socket name becomes the peer's address.
#include "controlplane/common/client_certificate.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "controlplane/common/channelz_peers.h"

namespace onramp::cp {
namespace {

struct Issued {
  std::string pem;
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
};

std::string pem_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// A certificate for `cn`, valid from `from_days` to `to_days` from now,
// signed by `issuer` (itself when null: a CA). `usage`: an extended key
// usage, "" for none.
Issued issue(const std::string& cn, const Issued* issuer, long from_days = -1, long to_days = 30,
             const std::string& usage = "") {
  Issued out;
  out.key = EVP_EC_gen("P-256");
  out.cert = X509_new();
  X509_set_version(out.cert, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(out.cert), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(out.cert), from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(out.cert), to_days * 86400);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(out.cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(out.cert, X509_get_subject_name(issuer ? issuer->cert : out.cert));
  X509_set_pubkey(out.cert, out.key);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer->cert : out.cert, out.cert, nullptr, nullptr, 0);
  auto add = [&](int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(out.cert, ext, -1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
  if (!usage.empty()) add(NID_ext_key_usage, usage.c_str());
  X509_sign(out.cert, issuer ? issuer->key : out.key, EVP_sha256());
  out.pem = pem_of(out.cert);
  return out;
}

class ClientCertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = issue("onramp test CA", nullptr);
    other_ca_ = issue("another CA", nullptr);
    auto v = ClientCertificateVerifier::from_pem(ca_.pem);
    ASSERT_TRUE(v.ok()) << v.error();
    verifier_ = std::move(*v);
  }
  void TearDown() override {
    for (Issued* i : {&ca_, &other_ca_}) {
      X509_free(i->cert);
      EVP_PKEY_free(i->key);
    }
  }
  ClientCertificateVerifier::Verdict verdict(Issued leaf) {
    auto v = verifier_->verify(leaf.pem, "");
    X509_free(leaf.cert);
    EVP_PKEY_free(leaf.key);
    return v;
  }

  Issued ca_, other_ca_;
  std::unique_ptr<ClientCertificateVerifier> verifier_;
};

TEST_F(ClientCertificateTest, Finding10AValidCertificatePasses) {
  auto v = verdict(issue("FRA1", &ca_));
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.subject, "CN=FRA1");
  EXPECT_TRUE(verdict(issue("operator", &ca_, -1, 30, "clientAuth")).ok);
}

TEST_F(ClientCertificateTest, Finding10EachRefusalSaysWhy) {
  auto v = verdict(issue("FRA1", &other_ca_));
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.subject, "CN=FRA1");
  EXPECT_EQ(v.reason, "unknown CA: it is not signed by the client CA this server trusts");

  v = verdict(issue("FRA1", nullptr));  // self-signed
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "unknown CA: it is not signed by the client CA this server trusts");

  v = verdict(issue("FRA1", &ca_, -3, -1));
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason.rfind("it expired on ", 0), 0u) << v.reason;

  v = verdict(issue("FRA1", &ca_, 2, 30));
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason.rfind("it is not valid before ", 0), 0u) << v.reason;

  v = verdict(issue("FRA1", &ca_, -1, 30, "serverAuth"));
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, "it is not for TLS clients (its key usage does not allow it)");

  EXPECT_EQ(verifier_->verify("not a certificate", "").reason, "the certificate cannot be read");
}

TEST_F(ClientCertificateTest, Finding10WithoutAClientCaEveryCertificateIsRefused) {
  auto none = ClientCertificateVerifier::from_pem("");
  ASSERT_TRUE(none.ok());
  Issued leaf = issue("FRA1", &ca_);
  EXPECT_FALSE((*none)->verify(leaf.pem, "").ok);
  X509_free(leaf.cert);
  EVP_PKEY_free(leaf.key);
  EXPECT_EQ(ClientCertificateVerifier::from_pem("garbage").error(),
            "--tls-client-ca: no PEM certificate in it");
}

TEST(ChannelzPeers, SocketNamesGiveTheAddressAndPort) {
  EXPECT_EQ(address_of_socket_name("chttp2 ipv4:127.0.0.1:58306"), "127.0.0.1:58306");
  EXPECT_EQ(address_of_socket_name("ipv6:[2001:db8::1]:40112"), "[2001:db8::1]:40112");
  EXPECT_EQ(address_of_socket_name("unix:/run/x"), "unix:/run/x");
  // Nothing served in this process: nobody presents anything.
  EXPECT_TRUE(peers_presenting("-----BEGIN CERTIFICATE-----").empty());
}

}  // namespace
}  // namespace onramp::cp
