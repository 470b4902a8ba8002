#include "controlplane/agent/table_store.h"

#include <fcntl.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dataplane/config/table_loader.h"

namespace onramp::agent {
namespace {

// Keeps the first syntax error for our message instead of protobuf's log.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error.empty())
      error =
          "line " + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  std::string error;
};

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

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

}  // namespace

std::string write_file_atomically(const std::string& path, const std::string& text, unsigned mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return errno_text(tmp);
  if (!write_all(fd, text) || ::fsync(fd) != 0) {
    std::string err = errno_text(tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return err;
  }
  if (::close(fd) != 0) {
    std::string err = errno_text(tmp);
    ::unlink(tmp.c_str());
    return err;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = errno_text(path);
    ::unlink(tmp.c_str());
    return err;
  }
  // The rename is durable only once the folder's entry is on disk.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno_text(dir);
  int rc = ::fsync(dfd);
  std::string err = rc == 0 ? "" : errno_text(dir);
  ::close(dfd);
  return err;
}

TableStore::TableStore(std::string dir)
    : dir_(std::move(dir)),
      path_(dir_ + "/last_good_table.textproto"),
      plan_path_(dir_ + "/probe_plan.textproto") {}

std::string TableStore::make_dir() const {
  std::error_code ec;
  if (!std::filesystem::exists(dir_, ec)) {
    std::filesystem::create_directories(dir_, ec);
    if (ec) return dir_ + ": " + ec.message();
    ::chmod(dir_.c_str(), 0700);
  }
  return "";
}

std::string TableStore::save(const v1::ForwardingTable& table) const {
  if (std::string err = make_dir(); !err.empty()) return err;
  std::string text = "# The last table this PoP's dataplane accepted, written by onramp-agent.\n";
  std::string body;
  if (!google::protobuf::TextFormat::PrintToString(table, &body)) return "cannot print the table";
  return write_file_atomically(path_, text + body, 0600);
}

std::string TableStore::save_plan(const v1::ProbePlan& plan) const {
  if (std::string err = make_dir(); !err.empty()) return err;
  std::string text = "# The last probe plan from the controller, written by onramp-agent.\n";
  std::string body;
  if (!google::protobuf::TextFormat::PrintToString(plan, &body)) return "cannot print the plan";
  return write_file_atomically(plan_path_, text + body, 0600);
}

bool TableStore::load_plan(v1::ProbePlan& plan, std::string& error) const {
  error.clear();
  std::error_code ec;
  if (!std::filesystem::exists(plan_path_, ec)) return false;
  std::ifstream in(plan_path_);
  if (!in) {
    error = plan_path_ + ": cannot open";
    return false;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  plan.Clear();
  google::protobuf::TextFormat::Parser parser;
  FirstError syntax;
  parser.RecordErrorsTo(&syntax);
  if (!parser.ParseFromString(buf.str(), &plan)) {
    error = plan_path_ + ": " + syntax.error;
    return false;
  }
  return true;
}

bool TableStore::load(v1::ForwardingTable& table, std::string& error) const {
  error.clear();
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return false;  // nothing stored yet
  std::ifstream in(path_);
  if (!in) {
    error = path_ + ": cannot open";
    return false;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  table.Clear();
  google::protobuf::TextFormat::Parser parser;
  FirstError syntax;
  parser.RecordErrorsTo(&syntax);
  if (!parser.ParseFromString(buf.str(), &table)) {
    error = path_ + ": " + syntax.error;
    return false;
  }
  if (auto spec = dp::table_spec_from_proto(table); !spec.ok()) {
    error = path_ + ": " + spec.error();
    return false;
  }
  return true;
}

}  // namespace onramp::agent
