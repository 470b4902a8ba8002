// onrampctl's exit codes (docs/cli.md): one per kind of failure a script may
// want to tell apart, mapped from gRPC status codes.
#pragma once

#include <grpcpp/support/status.h>

namespace onramp::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,     // anything not listed below
  kExitUsage = 2,     // bad command line (unknown flag, malformed value, ...)
  kExitNotFound = 3,  // NOT_FOUND
  kExitInvalid = 4,   // INVALID_ARGUMENT, OUT_OF_RANGE; a table file that fails validation
  kExitUnavailable =
      5,  // UNAVAILABLE, DEADLINE_EXCEEDED: the server or its store cannot be reached
  kExitAlreadyExists = 6,       // ALREADY_EXISTS
  kExitFailedPrecondition = 7,  // FAILED_PRECONDITION (e.g. delete a parent with children)
  kExitDenied = 8,              // UNAUTHENTICATED, PERMISSION_DENIED
  kExitConflict = 9,  // ABORTED: the resource changed since it was read (resource_version)
};

int exit_code_for(grpc::StatusCode code);

}  // namespace onramp::cli
