#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace onramp {
namespace {

Status errno_error(const std::string& what) { return error(what + ": " + std::strerror(errno)); }

// Writes all of `data` to `fd`, retrying short writes.
bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error a deferred close would hide.
  bool close() {
    int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

}  // namespace

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return errno_error(path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(path);
  if (!S_ISREG(st.st_mode)) return error(path + ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    return error(path + ": " + std::to_string(st.st_size) + " bytes; at most " +
                 std::to_string(max_bytes) + " are read");
  std::string text;
  text.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  // Read to end of file even if the file grew, but never past the bound.
  for (;;) {
    if (done == text.size()) {
      if (text.size() >= max_bytes) break;
      text.resize(std::min(max_bytes, text.size() + 4096));
    }
    ssize_t n = ::read(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(path);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  text.resize(done);
  return text;
}

Status write_file_atomically(const std::string& path, const std::string& text, unsigned mode) {
  std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (fd.get() < 0) return errno_error(tmp);
    if (!write_all(fd.get(), text) || ::fsync(fd.get()) != 0 || !fd.close()) {
      Status s = errno_error(tmp);
      ::unlink(tmp.c_str());
      return s;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = errno_error(path);
    ::unlink(tmp.c_str());
    return s;
  }
  // The rename is durable only once the folder's entry is on disk.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0 || ::fsync(dfd.get()) != 0) return errno_error(dir);
  return ok_status();
}

}  // namespace onramp
