#include "controlplane/agent/controller_session.h"

#include "common/grpc_limits.h"
#include "common/log.h"

namespace onramp::agent {
namespace {

// Why the controller refused this PoP's client certificate, or "" when the
// session did not end for that. A controller verifies certificates itself
// and says why (UNAUTHENTICATED); an older one ends the handshake, which
// gRPC reports as UNAVAILABLE, and the certificate is looked at closer.
std::string certificate_refused(const grpc::Status& status, const SessionConfig& config) {
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) return status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE)
    return cp::certificate_refusal(config.controller, config.tls);
  return "";
}

}  // namespace

ControllerSession::ControllerSession(SessionConfig config, SessionHandler& handler)
    : config_(std::move(config)), handler_(handler) {}

std::unique_ptr<v1::PopSessionService::Stub> ControllerSession::new_stub() const {
  grpc::ChannelArguments args;
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
      grpc::CreateCustomChannel(config_.controller, config_.credentials, args));
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

void ControllerSession::run() {
  Backoff backoff(config_.backoff);
  while (true) {
    if (serve_once()) backoff.reset();
    auto delay = backoff.next();
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, delay, [this] { return stopping_; })) return;
  }
}

bool ControllerSession::serve_once() {
  grpc::ClientContext ctx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    context_ = &ctx;
  }
  auto started = std::chrono::steady_clock::now();
  bool heard = false;
  bool write_failed = false;
  auto stub = new_stub();
  auto stream = stub->Connect(&ctx);
  v1::AgentMessage hello;
  *hello.mutable_hello() = handler_.hello();
  bool started_up = false;
  if (stream->Write(hello)) {
    started_up = true;
    // Counted before the stream is shared: whoever sends on it after the
    // Hello finds the session counted.
    sessions_.fetch_add(1, std::memory_order_relaxed);
    connected_.store(true, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      stream_ = stream.get();
    }
    log::info(
        "session to the controller open",
        {{"controller", config_.controller}, {"applied_version", hello.hello().applied_version()}});
    handler_.on_session(true, "session to " + config_.controller + " open");
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
        false, "session to " + config_.controller + " ended: " +
                   (status.error_message().empty() ? "stream closed" : status.error_message()));
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    // The admin port (7443) answers gRPC but has no PoP session service.
    log::error(
        "the controller does not serve PoP sessions at this address: is it its admin "
        "port? Agents connect to the PoP port (--pop-listen, 7444 by default)",
        {{"controller", config_.controller}, {"error", status.error_message()}});
  } else if (std::string why = certificate_refused(status, config_); !why.empty()) {
    log::error(
        "the controller refuses this PoP's client certificate",
        {{"controller", config_.controller}, {"certificate", config_.tls.cert}, {"reason", why}});
  } else {
    log::warn("session to the controller ended", {{"controller", config_.controller},
                                                  {"code", static_cast<int>(status.error_code())},
                                                  {"error", status.error_message()}});
  }
  // A session that carried something, or stayed up longer than the longest
  // backoff, worked: the next attempt starts from the shortest delay.
  return heard || std::chrono::steady_clock::now() - started > config_.backoff.max;
}

}  // namespace onramp::agent
