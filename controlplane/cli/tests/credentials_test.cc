// The TLS flags onrampctl, the agent and the controller share: what each
// refuses, and that the error names the flag at fault.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "controlplane/common/http.h"
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

// The HTTP listeners' addresses: a host and a port 0..65535, nothing else.
TEST(ListenAddress, HostAndPortOnly) {
  auto parse = [](std::string_view l) {
    auto r = parse_listen_address(l);
    return r ? r->host + "|" + std::to_string(r->port) : std::string("none");
  };
  EXPECT_EQ(parse("127.0.0.1:9470"), "127.0.0.1|9470");
  EXPECT_EQ(parse("[::1]:0"), "::1|0");
  EXPECT_EQ(parse("0.0.0.0:65535"), "0.0.0.0|65535");
  EXPECT_EQ(parse("127.0.0.1:65536"), "none");
  EXPECT_EQ(parse("127.0.0.1"), "none");
  EXPECT_EQ(parse("127.0.0.1:"), "none");
  EXPECT_EQ(parse("127.0.0.1:94x0"), "none");
  EXPECT_EQ(parse("127.0.0.1:-1"), "none");
  EXPECT_EQ(parse(":9470"), "none");
  EXPECT_EQ(parse("::1:9470"), "none");  // bare IPv6 is all host
}

// HTTP Basic as the /metrics listener and the status page read it.
TEST(BasicCredentials, DecodedOrRefused) {
  auto read = [](std::string_view h) {
    auto c = basic_credentials(h);
    return c ? c->user + "|" + c->password : std::string("none");
  };
  EXPECT_EQ(read("Basic cHJvbWV0aGV1czpzM2NyZXQ="), "prometheus|s3cret");
  EXPECT_EQ(read("Basic YTpiOmM="), "a|b:c");     // the password may hold colons
  EXPECT_EQ(read("Basic OnB3"), "|pw");           // an empty user
  EXPECT_EQ(read("Basic bm9jb2xvbg=="), "none");  // "nocolon"
  EXPECT_EQ(read("Bearer cHJvbWV0aGV1czpzM2NyZXQ="), "none");
  EXPECT_EQ(read("Basic cHJvbWV0aGV1czpzM2NyZXQ"), "none");  // not a multiple of 4
  EXPECT_EQ(read("Basic !!!!"), "none");
  EXPECT_EQ(read("Basic " + std::string(8192, 'A')), "none");
  EXPECT_TRUE(equal_in_constant_time("s3cret", "s3cret"));
  EXPECT_FALSE(equal_in_constant_time("s3cret", "s3creT"));
  EXPECT_FALSE(equal_in_constant_time("s3cret", "s3cre"));
}

// One way to split a target, shared by is_loopback_target and the
// certificate probe: IPv6 in brackets, bare IPv6 all host, schemes dropped.
TEST(SplitHostPort, EveryFormOfTarget) {
  auto split = [](std::string_view t) {
    Result<HostPort> r = split_host_port(t);
    return r.ok() ? r->host + "|" + r->port : "error: " + r.error();
  };
  EXPECT_EQ(split("127.0.0.1:7443"), "127.0.0.1|7443");
  EXPECT_EQ(split("controller.example.net:7444"), "controller.example.net|7444");
  EXPECT_EQ(split("localhost"), "localhost|");
  EXPECT_EQ(split("[::1]:7443"), "::1|7443");
  EXPECT_EQ(split("[2001:db8::1]"), "2001:db8::1|");
  EXPECT_EQ(split("2001:db8::1"), "2001:db8::1|");
  EXPECT_EQ(split("ipv6:[::1]:7443"), "::1|7443");
  EXPECT_EQ(split("ipv4:127.0.0.1:7443"), "127.0.0.1|7443");
  EXPECT_EQ(split("dns:///localhost:7443"), "localhost|7443");
  EXPECT_EQ(split("dns:localhost:7443"), "localhost|7443");
  EXPECT_EQ(split("[::1"), "error: [::1: \"[\" without \"]\"");
  EXPECT_EQ(split("[::1]7443"), "error: [::1]7443: after \"]\" only \":port\" may follow");
  EXPECT_EQ(split(":7443"), "error: :7443: no host");
  EXPECT_EQ(split("[]:7443"), "error: []:7443: no host");

  EXPECT_TRUE(is_loopback_target("[::1]:7443"));
  EXPECT_TRUE(is_loopback_target("::1"));
  EXPECT_TRUE(is_loopback_target("dns:///localhost:7443"));
  EXPECT_TRUE(is_loopback_target("127.0.0.2:1"));
  EXPECT_FALSE(is_loopback_target("[::1"));
  EXPECT_FALSE(is_loopback_target("[2001:db8::1]:7443"));
  EXPECT_FALSE(is_loopback_target("10.0.0.1:7443"));
  // A target the probe cannot split or that names no port: nothing to say.
  EXPECT_EQ(certificate_refusal("[::1", {.cert = "x", .key = "y"}), "");
}

}  // namespace
}  // namespace onramp::cp
