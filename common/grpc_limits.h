// The size limits of every onramp gRPC channel and server, set in one place.
// gRPC's default refuses received messages over 4 MiB, which a table of a
// few thousand endpoints with long names passes; onramp's messages are
// bounded by what the admin API and the table loader accept instead
// (docs/security.md). Error texts that travel in messages (NACKs, probe
// errors) are cut to kMaxErrorBytes where they are made and where they are
// received.
#pragma once

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>

#include <cstddef>

namespace onramp {

inline constexpr int kMaxGrpcMessageBytes = 256 << 20;
inline constexpr size_t kMaxErrorBytes = 4096;

inline void limit_messages(grpc::ChannelArguments& args) {
  args.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
  args.SetMaxSendMessageSize(kMaxGrpcMessageBytes);
}

inline void limit_messages(grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
  builder.SetMaxSendMessageSize(kMaxGrpcMessageBytes);
}

}  // namespace onramp
