// Where the controller's errors meet gRPC: an onramp::Status becomes the
// grpc::Status a handler answers with, its message unchanged.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "common/status.h"

namespace onramp::ctl {

// OK when `status` is ok; otherwise `code` with the status's message.
inline grpc::Status to_grpc(const onramp::Status& status, grpc::StatusCode code) {
  return status.ok() ? grpc::Status::OK : grpc::Status(code, status.message());
}

// INVALID_ARGUMENT with `message`, which names the field.
inline grpc::Status invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

}  // namespace onramp::ctl
