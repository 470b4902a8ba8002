// Takes flow log records from the dataplane (StreamFlowLogs) and writes them
// to the flow log files, on a thread of its own; when the stream ends (the
// dataplane restarts) it opens another a second later.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "controlplane/agent/dataplane_client.h"
#include "controlplane/agent/flow_log_file.h"

namespace onramp::agent {

class FlowLogShipper {
 public:
  FlowLogShipper(DataplaneClient& dataplane, FlowLogFileOptions options)
      : dataplane_(dataplane), file_(std::move(options)) {}
  ~FlowLogShipper() { stop(); }
  FlowLogShipper(const FlowLogShipper&) = delete;
  FlowLogShipper& operator=(const FlowLogShipper&) = delete;

  void start();
  void stop();

  struct Counts {
    uint64_t written = 0;  // records written to the files
    uint64_t lost = 0;     // records the agent could not write
    uint64_t batches = 0;
  };
  Counts counts() const;

 private:
  void run();

  DataplaneClient& dataplane_;
  mutable std::mutex mu_;  // guards everything below
  FlowLogFile file_;
  uint64_t batches_ = 0;
  bool stopping_ = false;
  bool failing_ = false;  // the last write failed (logged once until it works)
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace onramp::agent
