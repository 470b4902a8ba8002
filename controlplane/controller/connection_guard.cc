#include "controlplane/controller/connection_guard.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <tuple>

namespace onramp::ctl {
namespace {

// The address of `a` as text, IPv4-mapped IPv6 addresses as IPv4; "" for
// other families.
std::string address_text(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    ::inet_ntop(AF_INET, &v4.sin_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr))
      ::inet_ntop(AF_INET, &v6.sin6_addr.s6_addr[12], buf, sizeof buf);
    else
      ::inet_ntop(AF_INET6, &v6.sin6_addr, buf, sizeof buf);
  }
  return buf;
}

int port_of(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return -1;
}

std::string peer_of(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "";
  return address_text(a);
}

// "ip:port" ("[v6]:port") of the far end of `fd`, as gRPC names peers.
std::string remote_of(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "";
  std::string ip = address_text(a);
  if (ip.empty()) return "";
  if (ip.find(':') != std::string::npos) ip = "[" + ip + "]";
  return ip + ":" + std::to_string(port_of(a));
}

struct Listener {
  int port = 0;
  uint32_t queued = 0;  // connections waiting in its accept queue
};

// Every TCP socket of this process whose local port is one of `ports`.
void scan(const std::vector<int>& ports, std::vector<GuardedConnection>& connections,
          std::vector<Listener>& listeners) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return;
  const int own = ::dirfd(dir);
  while (const dirent* e = ::readdir(dir)) {
    int fd = -1;
    const char* end = e->d_name + std::strlen(e->d_name);
    if (std::from_chars(e->d_name, end, fd).ptr != end || fd == own) continue;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) continue;
    int port = port_of(local);
    if (port <= 0 || std::find(ports.begin(), ports.end(), port) == ports.end()) continue;
    int type = 0, listening = 0;
    socklen_t ilen = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) != 0 || type != SOCK_STREAM) continue;
    ilen = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) != 0) continue;
    if (listening) {
      // For a listener the kernel reports its accept queue as tcpi_unacked.
      tcp_info info{};
      socklen_t tlen = sizeof info;
      if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &tlen) == 0)
        listeners.push_back({port, info.tcpi_unacked});
      continue;
    }
    std::string peer = peer_of(fd);
    if (!peer.empty())
      connections.push_back({.fd = fd, .peer = std::move(peer), .inode = st.st_ino});
  }
  ::closedir(dir);
}

}  // namespace

std::vector<int> connections_over_limits(std::vector<GuardedConnection> connections,
                                         const ConnectionLimits& limits) {
  // Per peer, oldest (first seen, then lowest descriptor) first.
  std::map<std::string, std::vector<int>> by_peer;
  std::sort(connections.begin(), connections.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first_seen, a.fd) < std::tie(b.first_seen, b.fd);
  });
  for (const GuardedConnection& c : connections) by_peer[c.peer].push_back(c.fd);

  std::vector<int> close;
  size_t kept = 0;
  for (auto& [peer, fds] : by_peer) {
    while (fds.size() > limits.per_peer) {
      close.push_back(fds.back());
      fds.pop_back();
    }
    kept += fds.size();
  }
  // Over the total: one at a time from whoever holds the most.
  while (kept > limits.total) {
    auto most = std::max_element(by_peer.begin(), by_peer.end(), [](const auto& a, const auto& b) {
      return a.second.size() < b.second.size();
    });
    close.push_back(most->second.back());
    most->second.pop_back();
    --kept;
  }
  return close;
}

ConnectionGuard::ConnectionGuard(ConnectionLimits limits, std::vector<int> ports)
    : limits_(limits), ports_(std::move(ports)), reserve_(::open("/dev/null", O_RDONLY)) {}

ConnectionGuard::~ConnectionGuard() {
  if (reserve_ >= 0) ::close(reserve_);
}

ConnectionGuard::Sweep ConnectionGuard::sweep(Clock::time_point now) {
  std::vector<GuardedConnection> connections;
  std::vector<Listener> listeners;
  if (reserve_ >= 0) ::close(reserve_);
  scan(ports_, connections, listeners);
  reserve_ = ::open("/dev/null", O_RDONLY);

  // Each connection's age, by the sweep that first saw it; connections gone
  // are forgotten.
  ++sweeps_;
  std::map<uint64_t, uint64_t> seen;
  for (GuardedConnection& c : connections) {
    auto it = first_seen_.find(c.inode);
    c.first_seen = it == first_seen_.end() ? sweeps_ : it->second;
    seen[c.inode] = c.first_seen;
  }
  first_seen_ = std::move(seen);

  Sweep s;
  std::map<int, std::string> peers;
  for (const GuardedConnection& c : connections) peers[c.fd] = c.peer;
  for (int fd : connections_over_limits(std::move(connections), limits_)) {
    // The descriptor may have been closed and reused since the scan: shut it
    // only if it still belongs to the same peer.
    if (peer_of(fd) != peers[fd]) continue;
    if (::shutdown(fd, SHUT_RDWR) == 0) ++s.closed;
  }
  if (remotes_) {
    std::vector<std::string> refused = remotes_();
    if (!refused.empty())
      for (const auto& [fd, peer] : peers) {
        std::string remote = remote_of(fd);
        if (!remote.empty() && std::find(refused.begin(), refused.end(), remote) != refused.end() &&
            ::shutdown(fd, SHUT_RDWR) == 0)
          ++s.refused;
      }
  }
  s.connections = static_cast<uint32_t>(peers.size() - s.closed - s.refused);

  std::map<int, Clock::time_point> queued;
  for (const Listener& l : listeners) {
    if (l.queued == 0) continue;
    auto it = queued_since_.find(l.port);
    Clock::time_point since = it == queued_since_.end() ? now : it->second;
    queued[l.port] = since;
    if (now - since >= kStuckAfter) s.stuck.push_back(l.port);
  }
  queued_since_ = std::move(queued);
  return s;
}

uint64_t raise_descriptor_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  if (r.rlim_cur < r.rlim_max) {
    rlimit raised = r;
    raised.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) r = raised;
  }
  return r.rlim_cur;
}

}  // namespace onramp::ctl
