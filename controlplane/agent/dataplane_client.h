// What the agent needs from its PoP's onramp-dataplane: apply a table, health,
// counters. An interface, so the agent's logic is tested with a fake
// (docs/contributing.md, "Style": inject what a piece talks to); the real one speaks
// DataplaneService on the dataplane's unix socket.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "onramp/v1/dataplane.pb.h"
#include "onramp/v1/forwarding.pb.h"

namespace onramp::agent {

class DataplaneClient {
 public:
  virtual ~DataplaneClient() = default;
  // INVALID_ARGUMENT: the dataplane refused the table (the message names the
  // field). UNAVAILABLE / DEADLINE_EXCEEDED: it could not be reached.
  virtual grpc::Status apply_table(const v1::ForwardingTable& table,
                                   v1::ApplyTableResponse& response) = 0;
  virtual grpc::Status health(v1::DataplaneHealthResponse& response) = 0;
  virtual grpc::Status stats(v1::DataplaneStats& response) = 0;
  // Flow log batches as the dataplane sends them, each to on_batch, until
  // the stream ends or cancel() is called (from another thread). The default:
  // a dataplane that has none.
  virtual grpc::Status stream_flow_logs(
      const std::function<void(const v1::FlowLogBatch&)>& on_batch) {
    (void)on_batch;
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no flow logs");
  }
  // Ends a stream_flow_logs in progress, and any begun after it.
  virtual void cancel_flow_logs() {}
  // Waits up to `timeout` for the connection to the dataplane to be lost:
  // true when it was connected and is no more (the process exited and its
  // socket closed). The agent's status round then runs at once instead of
  // at its next interval. The default: a client that cannot tell.
  virtual bool wait_connection_lost(std::chrono::milliseconds timeout) {
    std::this_thread::sleep_for(timeout);
    return false;
  }
};

struct DataplaneDeadlines {
  // Building a big table takes tens of milliseconds, publishing waits for
  // every worker: generous. Health and stats are cheap reads.
  std::chrono::milliseconds apply{30000};
  std::chrono::milliseconds read{2000};
};

// DataplaneService over "unix:<socket_path>".
std::unique_ptr<DataplaneClient> make_grpc_dataplane_client(const std::string& socket_path,
                                                            DataplaneDeadlines deadlines = {});

}  // namespace onramp::agent
