// The Maglev restart cache (core/maglev_cache.h) on disk: read once at start,
// written again after the tables change, on a thread of its own that runs off
// the polling lcores. A write replaces the file atomically; one that fails (a
// full disk) is logged, and the forwarding goes on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"
#include "dataplane/app/build_cpus.h"
#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/maglev_cache.h"

namespace onramp::dp {

// The file's tables, or why they cannot be used (missing, damaged, from
// another Maglev population).
Result<MaglevCache> read_maglev_cache(const std::string& path);

class MaglevCacheWriter {
 public:
  // Writes to `path` from a thread started on `cpus`, at most once per
  // `every`: tables offered meanwhile wait, and only the latest is written.
  MaglevCacheWriter(std::string path, const BuildCpus& cpus, std::chrono::milliseconds every);
  // Writes what is still waiting, then stops.
  ~MaglevCacheWriter();
  MaglevCacheWriter(const MaglevCacheWriter&) = delete;
  MaglevCacheWriter& operator=(const MaglevCacheWriter&) = delete;

  // The tables of a table just published.
  void offer(ForwardingTable::MaglevTables tables);

 private:
  void run();

  const std::string path_;
  const std::chrono::milliseconds every_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::optional<ForwardingTable::MaglevTables> waiting_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace onramp::dp
