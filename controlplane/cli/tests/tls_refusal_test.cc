// onrampctl against a real onramp-controller with TLS, holding a client
// certificate the controller refuses (hardening finding 10): it says why, in
// the controller's words, and exits 8 (denied), not 5 (unreachable).
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include "controlplane/cli/exit_code.h"
#include "controlplane/cli/onrampctl.h"
#include "controlplane/controller/tests/controller_process.h"
#include "controlplane/controller/tests/fixtures.h"

namespace onramp::cli {
namespace {

using ctl::test::ControllerProcess;
using ctl::test::free_port;
using ctl::test::TempDir;

TEST(OnrampctlTls, Finding10ARefusedCertificateExits8WithTheControllersReason) {
  const char* dev_ca = std::getenv("ONRAMP_DEV_CA");
  if (ctl::test::controller_binary().empty() || !dev_ca)
    GTEST_SKIP() << "ONRAMP_CONTROLLER or ONRAMP_DEV_CA is not set";
  TempDir dir;
  const std::string certs = dir.file("certs"), other = dir.file("other");
  for (const std::string& d : {certs, other})
    ASSERT_EQ(std::system((std::string(dev_ca) + " " + d + " > /dev/null 2>&1").c_str()), 0);
  const int admin = free_port(), pop = free_port();
  ControllerProcess ctl(
      {"--init", "--db", dir.file("c.db"), "--admin-listen", "127.0.0.1:" + std::to_string(admin),
       "--pop-listen", "127.0.0.1:" + std::to_string(pop), "--tls-cert", certs + "/controller.pem",
       "--tls-key", certs + "/controller-key.pem", "--tls-client-ca", certs + "/ca.pem"},
      dir.file("controller.log"));
  ASSERT_TRUE(ctl.wait_ready({admin, pop})) << ctl.log();

  auto onrampctl = [&](const std::string& cert_dir, std::string& err) {
    auto connector = make_grpc_connector();
    std::ostringstream out, errs;
    int code =
        run_onrampctl({"onrampctl", "--controller", "localhost:" + std::to_string(admin),
                       "--tls-ca", certs + "/ca.pem", "--tls-cert", cert_dir + "/operator.pem",
                       "--tls-key", cert_dir + "/operator-key.pem", "accelerator", "list"},
                      *connector, out, errs);
    err = errs.str();
    return code;
  };
  std::string err;
  EXPECT_EQ(onrampctl(other, err), kExitDenied) << err;
  EXPECT_NE(err.find("refuses the client certificate (CN=operator,O=onramp development): "
                     "unknown CA"),
            std::string::npos)
      << err;
  EXPECT_EQ(onrampctl(certs, err), 0) << err;
  EXPECT_NE(ctl.log().find("msg=\"client certificate refused\""), std::string::npos) << ctl.log();
}

}  // namespace
}  // namespace onramp::cli
