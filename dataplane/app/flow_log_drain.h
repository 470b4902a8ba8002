// The reading side of the workers' flow log rings: takes their records and
// turns them into FlowLogRecord messages, with the accelerator, listener and
// endpoint named from the table in force and times in Unix milliseconds. The
// local API streams what it takes to the agent (StreamFlowLogs).
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

#include "dataplane/app/table_publisher.h"
#include "dataplane/app/worker.h"
#include "onramp/v1/dataplane.pb.h"

namespace onramp::dp {

class FlowLogDrain {
 public:
  FlowLogDrain(const TablePublisher& publisher, const std::vector<WorkerContext*>& workers)
      : publisher_(publisher), workers_(workers) {}

  // Moves up to `max` records from the rings into `batch` (also its pop
  // and dropped_total); returns how many.
  size_t drain(onramp::v1::FlowLogBatch& batch, size_t max);

 private:
  const TablePublisher& publisher_;
  const std::vector<WorkerContext*>& workers_;
  std::mutex mu_;  // each ring has one reader: one drain at a time
};

}  // namespace onramp::dp
