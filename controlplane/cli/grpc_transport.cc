// The gRPC side of onrampctl: a channel per server (per controller replica)
// and the generated stubs on it; the deadline and the bearer token go on each call (Context).
#include <grpcpp/create_channel.h>

#include "common/grpc_limits.h"
#include "controlplane/cli/command.h"

namespace onramp::cli {
namespace {

grpc::ChannelArguments channel_args() {
  grpc::ChannelArguments args;
  limit_messages(args);
  return args;
}

class GrpcConnector final : public Connector {
 public:
  Result<std::shared_ptr<grpc::Channel>> controller(const Globals& g,
                                                    const cp::Replica& replica) override {
    auto creds = cp::client_credentials(replica.authority, g.tls, g.plaintext);
    if (!creds.ok()) return creds.status();
    grpc::ChannelArguments args = channel_args();
    cp::name_channel(args, replica);
    return grpc::CreateCustomChannel(replica.target, *creds, args);
  }

  Result<std::unique_ptr<DataplaneStub>> dataplane(const Globals& g) override {
    // A unix socket that only root opens: no TLS, no token (docs/design.md, Security).
    std::string target = "unix:" + g.dataplane_socket;
    auto creds = cp::client_credentials(target, {}, /*plaintext=*/true);
    if (!creds.ok()) return creds.status();
    return std::unique_ptr<DataplaneStub>(
        v1::DataplaneService::NewStub(grpc::CreateCustomChannel(target, *creds, channel_args())));
  }
};

}  // namespace

std::unique_ptr<Connector> make_grpc_connector() { return std::make_unique<GrpcConnector>(); }

}  // namespace onramp::cli
