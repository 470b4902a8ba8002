// Flow log records written as JSON lines to a file that rotates by size, as
// logrotate's rename scheme does: when the next line would take `name` past
// max_bytes, name.N-1 becomes name.N (the oldest, name.<files - 1>, is
// deleted), ..., name becomes name.1, and a new `name` is begun.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "common/status.h"
#include "onramp/v1/dataplane.pb.h"

namespace onramp::agent {

struct FlowLogFileOptions {
  std::string dir;                           // created (0750) if missing
  std::string name = "flows.log";            // the file being written
  uint64_t max_bytes = uint64_t{100} << 20;  // one file's size, at least 4096
  uint32_t files = 10;                       // files kept, the one written included, 1..1000
};

class FlowLogFile {
 public:
  explicit FlowLogFile(FlowLogFileOptions options) : options_(std::move(options)) {}
  ~FlowLogFile();
  FlowLogFile(const FlowLogFile&) = delete;
  FlowLogFile& operator=(const FlowLogFile&) = delete;

  // Appends a line per record of the batch. On an error the rest of the
  // batch is counted as lost and the file is opened again at the next write.
  Status write(const v1::FlowLogBatch& batch);

  uint64_t written() const { return written_; }  // records
  uint64_t lost() const { return lost_; }        // records that could not be written
  uint64_t rotations() const { return rotations_; }
  std::string path() const { return options_.dir + "/" + options_.name; }

 private:
  Status open();
  Status rotate();
  Status append(const std::string& line);

  FlowLogFileOptions options_;
  int fd_ = -1;
  uint64_t size_ = 0;  // of the open file
  uint64_t written_ = 0;
  uint64_t lost_ = 0;
  uint64_t rotations_ = 0;
};

// One record as a JSON object on one line (no newline), with the PoP and
// the action: the format docs/observability.md describes.
std::string flow_log_json(const v1::FlowLogRecord& r, const std::string& pop);

}  // namespace onramp::agent
