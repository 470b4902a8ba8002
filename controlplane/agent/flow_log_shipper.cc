#include "controlplane/agent/flow_log_shipper.h"

#include <chrono>

#include "common/log.h"

namespace onramp::agent {

void FlowLogShipper::start() {
  thread_ = std::thread([this] { run(); });
}

void FlowLogShipper::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  dataplane_.cancel_flow_logs();
  if (thread_.joinable()) thread_.join();
}

FlowLogShipper::Counts FlowLogShipper::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {file_.written(), file_.lost(), batches_};
}

void FlowLogShipper::run() {
  log::info("writing flow logs", {{"file", file_.path()}});
  bool streaming_logged = false;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    grpc::Status s = dataplane_.stream_flow_logs([this](const v1::FlowLogBatch& batch) {
      std::lock_guard<std::mutex> guard(mu_);
      ++batches_;
      Status written = file_.write(batch);
      if (!written.ok() && !failing_)
        log::error("cannot write flow logs",
                   {{"file", file_.path()}, {"error", written.message()}});
      else if (written.ok() && failing_)
        log::info("writing flow logs again", {{"file", file_.path()}});
      failing_ = !written.ok();
    });
    lock.lock();
    if (stopping_) break;
    if (!streaming_logged)
      log::warn("flow log stream ended; trying again every second",
                {{"code", static_cast<int>(s.error_code())}, {"error", s.error_message()}});
    streaming_logged = true;
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
  }
}

}  // namespace onramp::agent
