#include "controlplane/common/grpc_log.h"

#include <grpc/support/log.h>

#include <string>

#include "common/log.h"

namespace onramp::cp {
namespace {

void forward(gpr_log_func_args* args) {
  log::Level level = args->severity == GPR_LOG_SEVERITY_ERROR  ? log::Level::error
                     : args->severity == GPR_LOG_SEVERITY_INFO ? log::Level::info
                                                               : log::Level::debug;
  std::string source =
      std::string(args->file ? args->file : "?") + ":" + std::to_string(args->line);
  log::write(level, "grpc", {{"grpc", args->message ? args->message : ""}, {"source", source}});
}

}  // namespace

void route_grpc_logs() { gpr_set_log_function(forward); }

}  // namespace onramp::cp
