// onrampctl: the operator's command line (docs/cli.md).
#include <iostream>

#include "controlplane/cli/onrampctl.h"

int main(int argc, char** argv) {
  auto connector = onramp::cli::make_grpc_connector();
  return onramp::cli::run_onrampctl(std::vector<std::string>(argv, argv + argc), *connector,
                                    std::cout, std::cerr);
}
