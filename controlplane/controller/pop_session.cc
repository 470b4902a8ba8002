#include "controlplane/controller/pop_session.h"

#include <mutex>
#include <optional>

#include "common/log.h"
#include "controlplane/controller/auth.h"

namespace onramp::ctl {
namespace {

using grpc::StatusCode;

class SessionReactor;

// The write half of a session, shared with the registry. It outlives the
// reactor when it must: once the reactor is done, sends are dropped.
//
// gRPC allows one write in flight per stream, and may run a reaction inline
// on the thread that starts an operation, so no lock is held while calling
// StartWrite or Finish. `writing_` is what keeps the reactor alive between
// unlocking and starting the write: Finish waits for it to clear.
class SessionWriter final : public TableSink {
 public:
  explicit SessionWriter(SessionReactor* reactor) : reactor_(reactor) {}

  void send(v1::ControllerMessage message) override;
  void close(const grpc::Status& status) override;

  // Reactor side.
  void write_done(bool ok);
  void reactor_done();
  // True once the session is being finished: no further read may start.
  bool finishing() {
    std::lock_guard lock(mu_);
    return finish_requested_;
  }

 private:
  std::mutex mu_;
  SessionReactor* reactor_;  // null once the reactor is done
  bool writing_ = false;
  bool broken_ = false;  // a write failed: the stream is gone
  std::optional<v1::ControllerMessage> pending_;
  uint64_t last_version_ = 0;  // newest update queued
  bool finish_requested_ = false;
  bool finished_ = false;
  grpc::Status finish_status_;
};

class SessionReactor final
    : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  SessionReactor(grpc::CallbackServerContext* ctx, PopRegistry& registry, bool plaintext)
      : registry_(registry),
        peer_(ctx->peer()),
        identity_(plaintext ? "" : pop_session_identity(*ctx)),
        plaintext_(plaintext),
        writer_(std::make_shared<SessionWriter>(this)) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The agent closed its side, or the stream broke.
      writer_->close(grpc::Status::OK);
      return;
    }
    if (grpc::Status s = handle(in_); !s.ok()) {
      writer_->close(s);
      return;
    }
    if (!writer_->finishing()) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override { writer_->write_done(ok); }

  void OnCancel() override {
    // Cancelled by the client, a deadline or keepalive failure: the read
    // fails next and closes the session.
  }

  void OnDone() override {
    writer_->reactor_done();
    if (!pop_.empty()) registry_.detach(writer_.get(), pop_);
    delete this;
  }

  void start_write(const v1::ControllerMessage* m) { StartWrite(m); }
  void finish(const grpc::Status& s) { Finish(s); }
  v1::ControllerMessage out_;  // the message in flight; owned by the writer's protocol

 private:
  grpc::Status handle(const v1::AgentMessage& m) {
    if (pop_.empty()) {
      if (m.message_case() != v1::AgentMessage::kHello) {
        log::warn("session refused: no hello",
                  {{"pop", identity_.empty() ? "?" : identity_}, {"peer", peer_}});
        return grpc::Status(StatusCode::INVALID_ARGUMENT, "the first message must be a hello");
      }
      if (!plaintext_ && identity_.empty()) {
        log::warn("PoP session refused: its certificate has no common name or DNS name",
                  {{"peer", peer_}});
        return grpc::Status(StatusCode::PERMISSION_DENIED,
                            "the client certificate names no PoP (no common name, no DNS name)");
      }
      if (grpc::Status s = registry_.hello(writer_, identity_, m.hello()); !s.ok()) return s;
      pop_ = m.hello().pop();
      return grpc::Status::OK;
    }
    switch (m.message_case()) {
      case v1::AgentMessage::kHello:
        // A PoP says who it is once per session: a second hello would
        // re-register it mid-session (its tunnel sources, its location).
        log::warn("session ended: a second hello", {{"pop", pop_}, {"peer", peer_}});
        return grpc::Status(StatusCode::FAILED_PRECONDITION,
                            "hello: already said on this session; reconnect to say it again");
      case v1::AgentMessage::kAck:
        registry_.ack(writer_.get(), pop_, m.ack());
        return grpc::Status::OK;
      case v1::AgentMessage::kProbes:
        registry_.probes(writer_.get(), pop_, m.probes());
        return grpc::Status::OK;
      case v1::AgentMessage::kStatus:
        registry_.status(writer_.get(), pop_, m.status());
        return grpc::Status::OK;
      default:
        log::warn("message of an unknown kind ignored", {{"pop", pop_}});
        return grpc::Status::OK;
    }
  }

  PopRegistry& registry_;
  const std::string peer_;
  const std::string identity_;
  const bool plaintext_;
  std::shared_ptr<SessionWriter> writer_;
  v1::AgentMessage in_;
  std::string pop_;  // set by an accepted hello; read only by reactions
};

void SessionWriter::send(v1::ControllerMessage message) {
  SessionReactor* r;
  {
    std::lock_guard lock(mu_);
    if (!reactor_ || broken_ || finish_requested_) return;
    // Two threads may hand over updates out of order; only newer ones count.
    uint64_t version = message.update().version();
    if (message.has_update() && version < last_version_) return;
    last_version_ = std::max(last_version_, version);
    // Moves swap: `message` leaves with what it replaces, destroyed after
    // the lock is released.
    if (writing_) {
      pending_ = std::move(message);
      return;
    }
    writing_ = true;
    reactor_->out_ = std::move(message);
    r = reactor_;
  }
  r->start_write(&r->out_);
}

void SessionWriter::close(const grpc::Status& status) {
  SessionReactor* r;
  {
    std::lock_guard lock(mu_);
    if (!reactor_ || finish_requested_) return;
    finish_requested_ = true;
    finish_status_ = status;
    if (writing_) return;  // write_done finishes
    finished_ = true;
    r = reactor_;
  }
  r->finish(status);
}

void SessionWriter::write_done(bool ok) {
  SessionReactor* r;
  bool write = false;
  grpc::Status finish;
  {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) {
      broken_ = true;
      pending_.reset();
    }
    if (finish_requested_) {
      if (finished_) return;
      finished_ = true;
      finish = finish_status_;
    } else if (pending_) {
      writing_ = true;
      reactor_->out_ = std::move(*pending_);
      pending_.reset();
      write = true;
    } else {
      return;
    }
    r = reactor_;
  }
  if (write)
    r->start_write(&r->out_);
  else
    r->finish(finish);
}

void SessionWriter::reactor_done() {
  std::lock_guard lock(mu_);
  reactor_ = nullptr;
}

}  // namespace

PopSessionService::PopSessionService(PopRegistry& registry, bool plaintext)
    : registry_(registry), plaintext_(plaintext) {}

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* PopSessionService::Connect(
    grpc::CallbackServerContext* ctx) {
  return new SessionReactor(ctx, registry_, plaintext_);
}

}  // namespace onramp::ctl
