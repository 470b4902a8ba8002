#include "controlplane/agent/bird_announcer.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "common/files.h"
#include "common/log.h"

namespace onramp::agent {
namespace {

std::string error_text(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// Canonical text of an address ("2001:DB8::0001" -> "2001:db8::1"); "" when
// it is none.
std::string canonical(const std::string& address, int& family) {
  char buf[INET6_ADDRSTRLEN] = {};
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) {
    family = AF_INET;
    return inet_ntop(AF_INET, &v4, buf, sizeof buf) ? buf : "";
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
    family = AF_INET6;
    return inet_ntop(AF_INET6, &v6, buf, sizeof buf) ? buf : "";
  }
  return "";
}

std::string join(const std::vector<std::string>& v) {
  if (v.empty()) return "none";
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

// BIRD's control socket speaks lines "DDDD-text" (more lines follow),
// " text" (continues the previous code) and "DDDD text" (the last line of
// the reply). Codes 0xxx end a command well, 8xxx and 9xxx in error.
class BirdConnection {
 public:
  // BIRD's final line of a reply: its code and the whole line.
  struct Reply {
    int code = 0;
    std::string line;
  };

  BirdConnection(int fd, std::chrono::milliseconds timeout) : fd_(fd), timeout_(timeout) {}
  ~BirdConnection() { ::close(fd_); }

  // Reads one whole reply, or says why it could not.
  Result<Reply> read_reply() {
    while (true) {
      Result<std::string> line = read_line();
      if (!line.ok()) return line.status();
      if (line->size() >= 5 && std::all_of(line->begin(), line->begin() + 4, ::isdigit) &&
          (*line)[4] == ' ')
        return Reply{.code = std::stoi(line->substr(0, 4)), .line = std::move(*line)};
    }
  }
  Status send_line(const std::string& line) {
    std::string data = line + "\n";
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return error("send: " + error_text(errno));
      done += static_cast<size_t>(n);
    }
    return ok_status();
  }

 private:
  Result<std::string> read_line() {
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (true) {
      size_t eol = buf_.find('\n');
      if (eol != std::string::npos) {
        std::string line = buf_.substr(0, eol);
        buf_.erase(0, eol + 1);
        return line;
      }
      if (buf_.size() > 65536) return error("reply line too long");
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return error("no answer within " + std::to_string(timeout_.count()) + " ms");
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      int rc = ::poll(&p, 1, static_cast<int>(left.count()));
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return error("poll: " + error_text(errno));
      if (rc == 0) continue;
      char tmp[4096];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) return error("recv: " + error_text(errno));
      if (n == 0) return error("connection closed");
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  int fd_;
  std::chrono::milliseconds timeout_;
  std::string buf_;
};

}  // namespace

std::vector<std::string> vips_to_announce(const v1::ForwardingTable* table,
                                          bool dataplane_healthy) {
  if (!table || !dataplane_healthy) return {};
  std::set<std::string> vips;
  for (const v1::ForwardingListener& l : table->listeners()) {
    bool serves = std::any_of(l.endpoints().begin(), l.endpoints().end(),
                              [](const v1::ForwardingEndpoint& e) { return e.weight() > 0; });
    if (!serves) continue;
    for (const std::string& vip : l.vips()) {
      int family = 0;
      std::string c = canonical(vip, family);
      if (!c.empty()) vips.insert(c);
    }
  }
  return {vips.begin(), vips.end()};
}

std::string render_bird_config(const std::vector<std::string>& vips) {
  std::string v4, v6;
  for (const std::string& vip : vips) {
    int family = 0;
    std::string c = canonical(vip, family);
    if (c.empty()) continue;
    (family == AF_INET ? v4 : v6) +=
        "  route " + c + (family == AF_INET ? "/32" : "/128") + " blackhole;\n";
  }
  std::string out =
      "# Written by onramp-agent (docs/bgp.md); replaced whenever the VIPs it\n"
      "# announces change. Do not edit: export the onramp_* protocols to your\n"
      "# BGP peers, never to the kernel.\n";
  if (v4.empty() && v6.empty()) return out + "# Nothing announced: the VIPs are withdrawn.\n";
  if (!v4.empty()) out += "protocol static onramp_v4 {\n  ipv4;\n" + v4 + "}\n";
  if (!v6.empty()) out += "protocol static onramp_v6 {\n  ipv6;\n" + v6 + "}\n";
  return out;
}

Status bird_configure(const std::string& socket_path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path)
    return error("\"" + socket_path + "\" is not a usable unix socket path");
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error("socket: " + error_text(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    Status err = error(socket_path + ": " + error_text(errno));
    ::close(fd);
    return err;
  }
  BirdConnection conn(fd, timeout);
  Result<BirdConnection::Reply> reply = conn.read_reply();  // "0001 BIRD 2.0.12 ready."
  if (!reply.ok()) return reply.status().prefixed(socket_path);
  if (reply->code != 1) return error(socket_path + ": unexpected greeting \"" + reply->line + "\"");
  ONRAMP_RETURN_IF_ERROR(conn.send_line("configure").prefixed(socket_path));
  reply = conn.read_reply();
  if (!reply.ok()) return reply.status().prefixed(socket_path);
  // 0003 Reconfigured, 0004 in progress, 0005 queued; 0006 means BIRD is
  // shutting down and 8xxx/9xxx are errors (8002: the file does not parse).
  if (reply->code == 3 || reply->code == 4 || reply->code == 5) return ok_status();
  return error("BIRD said \"" + reply->line + "\"");
}

BirdAnnouncer::BirdAnnouncer(BirdOptions options) : options_(std::move(options)) {}

bool BirdAnnouncer::update(const std::vector<std::string>& vips) {
  std::lock_guard<std::mutex> lock(mu_);
  if (accepted_ && *accepted_ == vips) return true;
  if (!written_ || *written_ != vips) {
    Status written = write_file_atomically(options_.config_path, render_bird_config(vips), 0644);
    if (!written.ok()) {
      const std::string& err = written.message();
      if (err != last_error_)
        log::error("cannot write the BIRD include file; will retry", {{"error", err}});
      last_error_ = err;
      return false;
    }
    written_ = vips;
  }
  Status configured = bird_configure(options_.socket_path, options_.timeout);
  if (!configured.ok()) {
    const std::string& err = configured.message();
    if (err != last_error_)
      log::error("cannot reconfigure BIRD; retried every status interval",
                 {{"error", err}, {"vips", join(vips)}});
    last_error_ = err;
    return false;
  }
  last_error_.clear();
  accepted_ = vips;
  if (vips.empty())
    log::info("BIRD withdraws every VIP");
  else
    log::info("BIRD announces", {{"vips", join(vips)}});
  return true;
}

bool BirdAnnouncer::announced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepted_ && !accepted_->empty();
}

std::optional<std::vector<std::string>> BirdAnnouncer::accepted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepted_;
}

}  // namespace onramp::agent
