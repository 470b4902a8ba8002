#include "dataplane/app/maglev_cache_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/files.h"
#include "common/log.h"

namespace onramp::dp {

// 1000 listeners with 64 endpoints and 65 537 slots each make 130 MB.
constexpr size_t kMaxCacheBytes = size_t{2} << 30;

Result<MaglevCache> read_maglev_cache(const std::string& path) {
  // Mapped, not read: no copy of 100 MB and more, and the pages come in
  // while the checksum reads them.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error(path + ": " + std::strerror(errno));
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  const size_t size = regular ? static_cast<size_t>(st.st_size) : 0;
  if (!regular || size == 0 || size > kMaxCacheBytes) {
    ::close(fd);
    return error(path + ": not a regular file of 1 to " + std::to_string(kMaxCacheBytes) +
                 " bytes");
  }
  void* at = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (at == MAP_FAILED) return error(path + ": " + std::strerror(errno));
  std::shared_ptr<const void> mapping(
      at, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  auto cache =
      MaglevCache::decode(std::string_view(static_cast<const char*>(at), size), std::move(mapping));
  if (!cache.ok()) return cache.status().prefixed(path);
  return cache;
}

MaglevCacheWriter::MaglevCacheWriter(std::string path, const BuildCpus& cpus,
                                     std::chrono::milliseconds every)
    : path_(std::move(path)), every_(every) {
  // A thread inherits the CPUs of the one that starts it.
  cpus.run([this] {
    thread_ = std::thread([this] { run(); });
    return 0;
  });
}

MaglevCacheWriter::~MaglevCacheWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void MaglevCacheWriter::offer(ForwardingTable::MaglevTables tables) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_ = std::move(tables);
  }
  wake_.notify_one();
}

void MaglevCacheWriter::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || waiting_.has_value(); });
    if (!waiting_) return;  // stopping, nothing left to write
    ForwardingTable::MaglevTables tables = std::move(*waiting_);
    waiting_.reset();
    const bool stopping = stop_;
    lock.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    Status written = write_file_atomically(path_, encode_maglev_cache(tables.entries), 0600);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    if (written.ok())
      log::debug("Maglev cache written",
                 {{"path", path_}, {"tables", tables.entries.size()}, {"write_ms", ms}});
    else
      log::warn("cannot write the Maglev cache; a restart builds its tables from scratch",
                {{"error", written.message()}});
    tables = {};  // lets go of the slots before waiting
    lock.lock();
    if (stopping) continue;  // the last one, if another came meanwhile
    // At most one write per `every_`; a stop cuts the wait short.
    wake_.wait_for(lock, every_, [this] { return stop_; });
  }
}

}  // namespace onramp::dp
