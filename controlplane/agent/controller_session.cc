#include "controlplane/agent/controller_session.h"

#include <random>

#include "common/clock.h"
#include "common/grpc_limits.h"
#include "common/log.h"
#include "controlplane/agent/replica_rotation.h"

namespace onramp::agent {
namespace {

// Why the controller refused this PoP's client certificate, or "" when the
// session did not end for that. A controller verifies certificates itself
// and says why (UNAUTHENTICATED); an older one ends the handshake, which
// gRPC reports as UNAVAILABLE, and the certificate is looked at closer.
std::string certificate_refused(const grpc::Status& status, const std::string& controller,
                                const cp::TlsFiles& tls) {
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) return status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE)
    return cp::certificate_refusal(controller, tls);
  return "";
}

}  // namespace

ControllerSession::ControllerSession(SessionConfig config, SessionHandler& handler)
    : config_(std::move(config)), handler_(handler) {}

std::unique_ptr<v1::PopSessionService::Stub> ControllerSession::new_stub(
    const cp::Replica& replica) const {
  grpc::ChannelArguments args;
  cp::name_channel(args, replica);
  // gRPC gives one connection attempt max(this, its backoff) to complete.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(config_.connect_timeout.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(config_.keepalive_time.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(config_.keepalive_timeout.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A channel of its own for every attempt: our backoff spaces the attempts,
  // and a fresh subchannel connects at once instead of waiting out the
  // reconnect delay an old one grew while the controller was away.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  limit_messages(args);
  return v1::PopSessionService::NewStub(
      grpc::CreateCustomChannel(replica.target, config_.credentials, args));
}

ControllerSession::~ControllerSession() { stop(); }

void ControllerSession::start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void ControllerSession::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (context_) context_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ControllerSession::send(const v1::AgentMessage& msg) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return stream_ && stream_->Write(msg);
}

std::string ControllerSession::controller() const {
  std::lock_guard<std::mutex> lock(mu_);
  return replica_;
}

void ControllerSession::run() {
  Result<std::vector<cp::ControllerAddress>> list = cp::parse_controller_list(config_.controller);
  if (!list.ok()) {  // main checks the flag first: only a caller's mistake gets here
    log::error("no controller to connect to", {{"error", list.error()}});
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return stopping_; });
    return;
  }
  ReplicaRotation rotation(*list, config_.resolver, config_.backoff, real_clock(),
                           std::random_device{}());
  ReplicaRotation::Attempt attempt = rotation.first();
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      replica_ = attempt.replica.authority;
    }
    bool heard = serve_once(attempt.replica, rotation);
    attempt = rotation.next(heard);
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, attempt.delay, [this] { return stopping_; })) return;
  }
}

bool ControllerSession::serve_once(const cp::Replica& replica, ReplicaRotation& rotation) {
  grpc::ClientContext ctx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    context_ = &ctx;
  }
  bool heard = false;
  bool write_failed = false;
  auto stub = new_stub(replica);
  auto stream = stub->Connect(&ctx);
  v1::AgentMessage hello;
  *hello.mutable_hello() = handler_.hello();
  bool started_up = false;
  if (stream->Write(hello)) {
    started_up = true;
    rotation.opened();
    // Counted before the stream is shared: whoever sends on it after the
    // Hello finds the session counted.
    sessions_.fetch_add(1, std::memory_order_relaxed);
    connected_.store(true, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      stream_ = stream.get();
    }
    log::info("session to the controller open",
              {{"controller", replica.authority},
               {"address", replica.target},
               {"applied_version", hello.hello().applied_version()}});
    handler_.on_session(true, "session to " + replica.authority + " open");
    v1::ControllerMessage msg;
    while (stream->Read(&msg)) {
      heard = true;
      if (!msg.has_update()) continue;  // a newer controller's message we do not know
      v1::AgentMessage ack;
      *ack.mutable_ack() = handler_.on_update(msg.update());
      std::lock_guard<std::mutex> lock(write_mu_);
      if (!stream->Write(ack)) {
        write_failed = true;
        break;
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    stream_ = nullptr;
  }
  connected_.store(false, std::memory_order_relaxed);
  if (write_failed) ctx.TryCancel();  // the stream may still be open: end it
  grpc::Status status = stream->Finish();
  {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = nullptr;
    if (stopping_) return false;
  }
  if (started_up)
    handler_.on_session(
        false, "session to " + replica.authority + " ended: " +
                   (status.error_message().empty() ? "stream closed" : status.error_message()));
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    // The admin port (7443) answers gRPC but has no PoP session service.
    log::error(
        "the controller does not serve PoP sessions at this address: is it its admin "
        "port? Agents connect to the PoP port (--pop-listen, 7444 by default)",
        {{"controller", replica.authority}, {"error", status.error_message()}});
  } else if (std::string why = certificate_refused(status, replica.authority, config_.tls);
             !why.empty()) {
    log::error(
        "the controller refuses this PoP's client certificate",
        {{"controller", replica.authority}, {"certificate", config_.tls.cert}, {"reason", why}});
  } else {
    log::warn("session to the controller ended; next: the next replica",
              {{"controller", replica.authority},
               {"address", replica.target},
               {"code", static_cast<int>(status.error_code())},
               {"error", status.error_message()}});
  }
  return heard;
}

}  // namespace onramp::agent
