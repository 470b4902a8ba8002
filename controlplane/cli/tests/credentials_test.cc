// The TLS flags onrampctl, the agent and the controller share: what each
// refuses, and that the error names the flag at fault.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "controlplane/common/server_tls.h"
#include "controlplane/common/tls.h"

namespace onramp::cp {
namespace {

class PemFile {
 public:
  explicit PemFile(const std::string& text) {
    char name[] = "/tmp/onramp-pem-test-XXXXXX";
    int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    close(fd);
    path = name;
    std::ofstream(path) << text;
  }
  ~PemFile() { std::remove(path.c_str()); }
  std::string path;
};

TEST(ClientCredentials, PlaintextOnlyForLoopback) {
  EXPECT_TRUE(client_credentials("127.0.0.1:7443", {}, true).ok());
  EXPECT_TRUE(client_credentials("unix:/run/onramp/dataplane.sock", {}, true).ok());
  EXPECT_EQ(client_credentials("10.0.0.1:7443", {}, true).error(),
            "--plaintext: refused for 10.0.0.1:7443, which is not a loopback address");
}

TEST(ClientCredentials, FilesNameTheFlag) {
  PemFile empty("");
  PemFile pem("-----BEGIN CERTIFICATE-----\n");
  EXPECT_EQ(client_credentials("ctl:7443", {.ca = "/nonexistent/ca.pem"}, false).error(),
            "--tls-ca: /nonexistent/ca.pem: No such file or directory");
  EXPECT_EQ(client_credentials("ctl:7443", {.ca = empty.path}, false).error(),
            "--tls-ca: " + empty.path + ": empty");
  EXPECT_EQ(client_credentials("ctl:7443", {.cert = pem.path}, false).error(),
            "--tls-cert and --tls-key: give both or neither");
  EXPECT_EQ(client_credentials("ctl:7443", {.cert = pem.path, .key = empty.path}, false).error(),
            "--tls-key: " + empty.path + ": empty");
  EXPECT_EQ(client_credentials("ctl:7443", {.cert = "/tmp", .key = pem.path}, false).error(),
            "--tls-cert: /tmp: not a regular file");
}

TEST(ServerCredentials, RefusesWhatCannotServe) {
  PemFile pem("-----BEGIN CERTIFICATE-----\n");
  EXPECT_TRUE(server_credentials("127.0.0.1:0", {}, ClientCertificates::optional, true).ok());
  EXPECT_EQ(server_credentials("0.0.0.0:7443", {}, ClientCertificates::optional, true)
                .error()
                .rfind("--plaintext: refused for 0.0.0.0:7443", 0),
            0u);
  EXPECT_EQ(
      server_credentials("0.0.0.0:7443", {}, ClientCertificates::optional, false).error(),
      "--tls-cert and --tls-key: required to serve 0.0.0.0:7443 (or --plaintext on loopback)");
  EXPECT_EQ(server_credentials("0.0.0.0:7444", {.cert = pem.path, .key = pem.path},
                               ClientCertificates::required, false)
                .error(),
            "--tls-client-ca: required: 0.0.0.0:7444 takes only clients with certificates");
  EXPECT_EQ(server_credentials("0.0.0.0:7444",
                               {.cert = pem.path, .key = pem.path, .client_ca = "/nonexistent"},
                               ClientCertificates::optional, false)
                .error(),
            "--tls-client-ca: /nonexistent: No such file or directory");
}

}  // namespace
}  // namespace onramp::cp
