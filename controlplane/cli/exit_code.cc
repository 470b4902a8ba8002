#include "controlplane/cli/exit_code.h"

namespace onramp::cli {

int exit_code_for(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return kExitInvalid;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    case grpc::StatusCode::ALREADY_EXISTS:
      return kExitAlreadyExists;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return kExitFailedPrecondition;
    case grpc::StatusCode::ABORTED:
      return kExitConflict;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kExitDenied;
    default:
      return kExitError;
  }
}

}  // namespace onramp::cli
