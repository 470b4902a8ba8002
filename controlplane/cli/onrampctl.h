// onrampctl as a function: the command line in, the exit code out, with the
// connections behind a Connector so tests run it without a server.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "controlplane/cli/command.h"

namespace onramp::cli {

// args[0] is the program name. Prints to `out` and `err`, returns the exit
// code (exit_code.h).
int run_onrampctl(const std::vector<std::string>& args, Connector& connector, std::ostream& out,
                  std::ostream& err);

}  // namespace onramp::cli
