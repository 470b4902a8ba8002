#include "controlplane/agent/flow_log_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "common/json.h"

namespace onramp::agent {
namespace {

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

std::string flow_log_json(const v1::FlowLogRecord& r, const std::string& pop) {
  std::ostringstream os;
  auto field = [&os](const char* key, const std::string& value, bool first = false) {
    os << (first ? "{\"" : ",\"") << key << "\":";
    os << json_string(value);
  };
  auto number = [&os](const char* key, auto value) { os << ",\"" << key << "\":" << value; };
  field("event", r.event(), true);
  if (!r.end_reason().empty()) field("end_reason", r.end_reason());
  field("pop", pop);
  field("accelerator", r.accelerator());
  field("listener", r.listener());
  field("protocol", r.protocol());
  field("client_ip", r.client());
  number("client_port", r.client_port());
  field("accelerator_ip", r.vip());
  number("accelerator_port", r.vip_port());
  field("endpoint_ip", r.endpoint());
  number("endpoint_port", r.endpoint_port());
  number("packets", r.packets());
  number("bytes", r.bytes());
  number("start_ms", r.start_ms());
  number("end_ms", r.end_ms());
  field("action", "ACCEPT");
  number("worker", r.worker());
  os << '}';
  return os.str();
}

FlowLogFile::~FlowLogFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status FlowLogFile::open() {
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) return error(options_.dir + ": " + ec.message());
  ::chmod(options_.dir.c_str(), 0750);
  fd_ = ::open(path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) return error(errno_text(path()));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return error(errno_text(path()));
  size_ = static_cast<uint64_t>(st.st_size);
  return ok_status();
}

Status FlowLogFile::rotate() {
  ::close(fd_);
  fd_ = -1;
  const std::string base = path();
  if (options_.files <= 1) {
    if (::unlink(base.c_str()) != 0 && errno != ENOENT) return error(errno_text(base));
  } else {
    // The oldest goes; each other moves one up.
    const std::string oldest = base + "." + std::to_string(options_.files - 1);
    if (::unlink(oldest.c_str()) != 0 && errno != ENOENT) return error(errno_text(oldest));
    for (uint32_t i = options_.files - 1; i-- > 1;) {
      const std::string from = base + "." + std::to_string(i);
      const std::string to = base + "." + std::to_string(i + 1);
      if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT)
        return error(errno_text(from));
    }
    if (::rename(base.c_str(), (base + ".1").c_str()) != 0) return error(errno_text(base));
  }
  ++rotations_;
  return open();
}

Status FlowLogFile::append(const std::string& line) {
  if (fd_ < 0) ONRAMP_RETURN_IF_ERROR(open());
  if (size_ > 0 && size_ + line.size() > options_.max_bytes) ONRAMP_RETURN_IF_ERROR(rotate());
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return error(errno_text(path()));
    }
    done += static_cast<size_t>(n);
  }
  size_ += line.size();
  return ok_status();
}

Status FlowLogFile::write(const v1::FlowLogBatch& batch) {
  for (int i = 0; i < batch.records_size(); ++i) {
    Status s = append(flow_log_json(batch.records(i), batch.pop()) + "\n");
    if (!s.ok()) {
      lost_ += static_cast<uint64_t>(batch.records_size() - i);
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
      return s;
    }
    ++written_;
  }
  return ok_status();
}

}  // namespace onramp::agent
