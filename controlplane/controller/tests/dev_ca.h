// The development CA (scripts/dev-ca, given as $ONRAMP_DEV_CA) for the
// tests that run the controller with TLS: certificates made into a folder,
// the controller's TLS flags for them, and TLS channels presenting one of
// their identities.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "controlplane/common/tls.h"

namespace onramp::ctl::test {

// Certificates for the controller, an operator and the PoPs in `pops`
// (space-separated) made into `certs`, the script's output into `log`.
// False when $ONRAMP_DEV_CA is not set or the script failed.
inline bool make_dev_ca(const std::string& certs, const std::string& pops, const std::string& log) {
  const char* dev_ca = std::getenv("ONRAMP_DEV_CA");
  if (!dev_ca) return false;
  const std::string cmd = std::string(dev_ca) + " " + certs + " " + pops + " > " + log + " 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// `flags` and the controller's flags for its certificate from `certs`,
// client certificates verified against that CA.
inline std::vector<std::string> with_dev_ca_tls(const std::string& certs,
                                                std::vector<std::string> flags) {
  flags.insert(flags.end(), {"--tls-cert", certs + "/controller.pem", "--tls-key",
                             certs + "/controller-key.pem", "--tls-client-ca", certs + "/ca.pem"});
  return flags;
}

// The files of identity `who` made into `certs` ("": none, the CA alone).
inline cp::TlsFiles dev_identity(const std::string& certs, const std::string& who) {
  cp::TlsFiles files{.ca = certs + "/ca.pem"};
  if (!who.empty()) {
    files.cert = certs + "/" + who + ".pem";
    files.key = certs + "/" + who + "-key.pem";
  }
  return files;
}

// A TLS channel to localhost:`port` presenting `files`, on a connection of
// its own: no connection is shared across identities.
inline std::shared_ptr<grpc::Channel> tls_channel(int port, const cp::TlsFiles& files) {
  const std::string target = "localhost:" + std::to_string(port);
  auto creds = cp::client_credentials(target, files, false);
  EXPECT_TRUE(creds.ok()) << creds.error();
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return grpc::CreateCustomChannel(target, creds.ok() ? *creds : nullptr, args);
}

}  // namespace onramp::ctl::test
