// DataplaneClient over gRPC on the dataplane's unix socket.
#include <grpcpp/grpcpp.h>

#include <mutex>
#include <thread>

#include "common/grpc_limits.h"
#include "controlplane/agent/dataplane_client.h"
#include "onramp/v1/dataplane.grpc.pb.h"

namespace onramp::agent {
namespace {

class GrpcDataplaneClient final : public DataplaneClient {
 public:
  GrpcDataplaneClient(const std::string& socket_path, DataplaneDeadlines deadlines)
      : target_("unix:" + socket_path), deadlines_(deadlines) {}

  grpc::Status apply_table(const v1::ForwardingTable& table,
                           v1::ApplyTableResponse& response) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadlines_.apply);
    v1::ApplyTableRequest req;
    *req.mutable_table() = table;
    return checked(stub()->ApplyTable(&ctx, req, &response));
  }

  grpc::Status health(v1::DataplaneHealthResponse& response) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadlines_.read);
    return checked(stub()->Health(&ctx, v1::DataplaneHealthRequest(), &response));
  }

  grpc::Status stats(v1::DataplaneStats& response) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadlines_.read);
    return checked(stub()->GetStats(&ctx, v1::DataplaneStatsRequest(), &response));
  }

  grpc::Status stream_flow_logs(
      const std::function<void(const v1::FlowLogBatch&)>& on_batch) override {
    // No deadline: the stream lasts as long as the dataplane runs (its exit
    // closes the socket, which ends the stream) or until cancel_flow_logs.
    grpc::ClientContext ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (flow_logs_cancelled_)
        return grpc::Status(grpc::StatusCode::CANCELLED, "flow logs cancelled");
      flow_logs_ctx_ = &ctx;
    }
    auto reader = stub()->StreamFlowLogs(&ctx, v1::FlowLogStreamRequest());
    v1::FlowLogBatch batch;
    while (reader->Read(&batch)) on_batch(batch);
    grpc::Status s = reader->Finish();
    {
      std::lock_guard<std::mutex> lock(mu_);
      flow_logs_ctx_ = nullptr;
    }
    return checked(s);
  }

  bool wait_connection_lost(std::chrono::milliseconds timeout) override {
    std::shared_ptr<grpc::Channel> ch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ch = channel_;
    }
    // Not connected (no call yet, or the dataplane is away): nothing to lose
    // until a call connects again.
    if (!ch || ch->GetState(false) != GRPC_CHANNEL_READY) {
      std::this_thread::sleep_for(timeout);
      return false;
    }
    // On the monotonic clock: a step of the wall clock must not stretch it.
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(timeout.count(), GPR_TIMESPAN));
    return ch->WaitForStateChange(GRPC_CHANNEL_READY, deadline);
  }

  void cancel_flow_logs() override {
    std::lock_guard<std::mutex> lock(mu_);
    flow_logs_cancelled_ = true;
    if (flow_logs_ctx_) flow_logs_ctx_->TryCancel();
  }

 private:
  // A dataplane that went away comes back on the same socket, usually within
  // seconds. A gRPC channel that failed to connect waits out a growing
  // reconnect delay (several seconds here, whatever the backoff arguments
  // say) and fails every call meanwhile. So after a failure to reach the
  // dataplane the next call gets a new channel with its own subchannel,
  // which connects at once.
  std::shared_ptr<v1::DataplaneService::Stub> stub() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stub_) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      limit_messages(args);
      // The socket is local and root-only (docs/design.md "Security"): no TLS.
      channel_ = grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args);
      stub_ = v1::DataplaneService::NewStub(channel_);
    }
    return stub_;
  }

  grpc::Status checked(grpc::Status s) {
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      std::lock_guard<std::mutex> lock(mu_);
      stub_.reset();
      channel_.reset();
    }
    return s;
  }

  const std::string target_;
  const DataplaneDeadlines deadlines_;
  std::mutex mu_;  // guards channel_, stub_, flow_logs_ctx_, flow_logs_cancelled_
  std::shared_ptr<grpc::Channel> channel_;  // stub_'s
  std::shared_ptr<v1::DataplaneService::Stub> stub_;
  grpc::ClientContext* flow_logs_ctx_ = nullptr;  // the stream in progress
  bool flow_logs_cancelled_ = false;
};

}  // namespace

std::unique_ptr<DataplaneClient> make_grpc_dataplane_client(const std::string& socket_path,
                                                            DataplaneDeadlines deadlines) {
  return std::make_unique<GrpcDataplaneClient>(socket_path, deadlines);
}

}  // namespace onramp::agent
