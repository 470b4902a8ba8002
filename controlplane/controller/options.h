// Command-line flags of onramp-controller.
#pragma once

#include <string>

#include "controlplane/controller/controller_server.h"

namespace onramp::ctl {

struct Options {
  std::string db = "/var/lib/onramp/controller.db";
  std::string admin_token_file;
  ServerOptions server;
};

const char* options_usage();

// "" and `out` filled, or the problem (naming the flag). `help` is set when
// --help was given.
std::string parse_options(int argc, char** argv, Options& out, bool& help);

}  // namespace onramp::ctl
