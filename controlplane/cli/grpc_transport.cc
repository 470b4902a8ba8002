// The gRPC side of onrampctl: one channel per server, every call made through
// the generic stub by method name, with a deadline and the bearer token.
#include <google/protobuf/message.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <chrono>
#include <future>

#include "controlplane/cli/command.h"

namespace onramp::cli {
namespace {

class GrpcTransport final : public Transport {
 public:
  GrpcTransport(std::shared_ptr<grpc::Channel> channel, std::string token, double timeout_s)
      : channel_(std::move(channel)),
        stub_(channel_),
        token_(std::move(token)),
        timeout_s_(timeout_s) {}

  grpc::Status call(const std::string& method, const google::protobuf::Message& request,
                    google::protobuf::Message& response) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(timeout_s_ * 1000)));
    if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
    std::promise<grpc::Status> done;
    stub_.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                    [&done](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  grpc::TemplatedGenericStub<google::protobuf::Message, google::protobuf::Message> stub_;
  std::string token_;
  double timeout_s_;
};

class GrpcConnector final : public Connector {
 public:
  std::unique_ptr<Transport> controller(const Globals& g, std::string& error) override {
    auto creds = cp::client_credentials(g.controller, g.tls, g.plaintext, error);
    if (!creds) return nullptr;
    return std::make_unique<GrpcTransport>(grpc::CreateChannel(g.controller, creds), g.token,
                                           g.timeout_s);
  }

  std::unique_ptr<Transport> dataplane(const Globals& g, std::string& error) override {
    // A unix socket that only root opens: no TLS, no token (DESIGN.md §6).
    std::string target = "unix:" + g.dataplane_socket;
    auto creds = cp::client_credentials(target, {}, /*plaintext=*/true, error);
    if (!creds) return nullptr;
    return std::make_unique<GrpcTransport>(grpc::CreateChannel(target, creds), "", g.timeout_s);
  }
};

}  // namespace

std::unique_ptr<Connector> make_grpc_connector() { return std::make_unique<GrpcConnector>(); }

}  // namespace onramp::cli
