// Connection limits on the controller's ports (admin, PoP, status page,
// /metrics), enforced beside gRPC and the HTTP servers.
//
// gRPC 1.51 (Debian 12) has no cap on connections, per peer or in total, and
// when accept() fails for want of descriptors it stops accepting on that port
// for good. So the controller looks at its own sockets, from the main loop
// every quarter second: a peer over its share, or everyone over the total,
// has its newest connections shut down (shutdown(2): gRPC sees the end and
// closes them itself), and a listener that stopped accepting is reported so
// that the server can be rebuilt on the same port. Connections whose client
// certificate was refused are shut as well (close_also). docs/security.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace onramp::ctl {

struct ConnectionLimits {
  uint32_t per_peer = 32;  // connections from one address, all its ports together
  uint32_t total = 4096;   // connections on all its ports together
};

// One accepted connection on a guarded port.
struct GuardedConnection {
  int fd = -1;
  std::string peer;  // the remote address, no port
  // When the guard first saw it (a sweep count): older connections have
  // lower numbers. Descriptors are reused, so they do not tell age alone.
  uint64_t first_seen = 0;
  uint64_t inode = 0;  // the socket's, which names it across sweeps
};

// The connections to shut so that no peer keeps more than `per_peer` and all
// together no more than `total`: a peer's newest (latest first seen, then
// highest descriptor) first;
// over the total, from the peers that hold the most. Never a peer's last
// connections while another peer holds more.
std::vector<int> connections_over_limits(std::vector<GuardedConnection> connections,
                                         const ConnectionLimits& limits);

class ConnectionGuard {
 public:
  using Clock = std::chrono::steady_clock;
  // A listener whose accept queue stays non-empty this long has stopped
  // accepting (gRPC accepts within milliseconds).
  static constexpr std::chrono::seconds kStuckAfter{2};

  ConnectionGuard(ConnectionLimits limits, std::vector<int> ports);
  ~ConnectionGuard();
  // One more port to guard (a listener started after the guard: /metrics).
  void add_port(int port) { ports_.push_back(port); }
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  // Each sweep also shuts the connections whose remote address ("ip:port",
  // "[v6]:port") `remotes` names: those whose client certificate was refused
  // (cp::connections_with_refused_certificates).
  void close_also(std::function<std::vector<std::string>()> remotes) {
    remotes_ = std::move(remotes);
  }

  struct Sweep {
    uint32_t connections = 0;  // on the guarded ports, after the sweep
    uint32_t closed = 0;       // shut down by this sweep for the limits
    uint32_t refused = 0;      // shut down by this sweep as close_also named them
    std::vector<int> stuck;    // guarded ports whose listener stopped accepting
  };
  // Reads this process's sockets (/proc/self/fd), shuts what is over the
  // limits, and checks every guarded listener's accept queue.
  Sweep sweep(Clock::time_point now);

 private:
  ConnectionLimits limits_;
  std::vector<int> ports_;
  // Per port: since when its accept queue has been non-empty.
  std::map<int, Clock::time_point> queued_since_;
  // Per socket inode: the sweep that first saw the connection.
  std::map<uint64_t, uint64_t> first_seen_;
  uint64_t sweeps_ = 0;
  std::function<std::vector<std::string>()> remotes_;
  // A descriptor held in reserve: reading /proc/self/fd needs one, and the
  // sweep matters most when a flood has taken every other.
  int reserve_ = -1;
};

// Raises this process's soft descriptor limit to its hard limit and returns
// the limit now in force.
uint64_t raise_descriptor_limit();

}  // namespace onramp::ctl
