// The PoP mesh (docs/routing.md "Relaying over the backbone"): a light UDP
// echo on this PoP's tunnel addresses, and probes from those addresses to
// the echo of every peer PoP in the probe plan, which give each path's RTT,
// jitter and loss (PathTracker) for the ProbeReport.
//
// The echo answers only a well-formed request, with a reply of the same
// size (never an amplifier), and never answers a reply. One socket per
// tunnel family is both the echo and the probes' source, so a probe leaves
// from the address and port a relayed packet's peer would see. Like the
// prober, one thread alternates two steps (run_due, poll_io) that tests
// call themselves.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "controlplane/agent/path_tracker.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::agent {

struct MeshOptions {
  // The UDP port of every PoP's echo (the same flag on every agent).
  uint16_t port = 7445;
  std::chrono::milliseconds interval{200};
  // A probe without a reply after this long counts as lost.
  std::chrono::milliseconds timeout{1000};
  size_t window = 30;  // probes the loss is counted over
  // The path is down (PeerResult.down) once this many probes in a row went
  // unanswered for longer than "late": twice the smoothed RTT plus four
  // times the jitter, at least min_late, at most the timeout. 0: never.
  uint32_t down_after = 3;
  std::chrono::milliseconds min_late{50};
  double rtt_alpha = 0.3;
  double jitter = 0.05;  // each interval stretched or shrunk by up to this
  uint64_t seed = 0;     // of the jitter and the probe nonce; 0: random
};

// The echo's wire format: 32 bytes, "ONME", version 1, a type, two zero
// bytes, the prober's nonce and the probe's sequence number (big endian),
// eight zero bytes.
inline constexpr size_t kMeshEchoBytes = 32;
enum class MeshEchoType : uint8_t { kRequest = 1, kReply = 2 };
std::string mesh_echo_message(MeshEchoType type, uint64_t nonce, uint64_t seq);
// The reply the echo sends for `request`, or "" when it is no well-formed
// request (wrong size, magic, version, type or reserved bytes).
std::string mesh_echo_reply(std::string_view request);

class MeshProber {
 public:
  // `clock` must outlive the prober.
  MeshProber(MeshOptions options, std::string tunnel_v4, std::string tunnel_v6,
             Clock& clock = real_clock());
  ~MeshProber();
  MeshProber(const MeshProber&) = delete;
  MeshProber& operator=(const MeshProber&) = delete;

  // Binds the echo socket of each tunnel family (IP_FREEBIND: the address
  // may come up later). An error names what failed; the families that did
  // bind still serve and probe.
  Status open();
  void start();
  void stop();

  // The peers to probe, replacing the last set (from any thread). A peer
  // whose PoP and address are unchanged keeps its measurements.
  void set_peers(const google::protobuf::RepeatedPtrField<v1::PeerTarget>& peers);
  // One result per peer, in plan order.
  std::vector<v1::PeerResult> snapshot() const;
  // Called (on the prober's thread, no lock held) when a peer's path goes
  // down or comes back, so its report need not wait for the next one. Set
  // before start().
  void set_on_change(std::function<void()> on_change) { on_change_ = std::move(on_change); }

  // The loop's two steps. run_due expires probes past their timeout and
  // sends those due; it returns when it next has something to do. poll_io
  // waits up to `timeout` of real time for datagrams and handles them:
  // answers requests, matches replies. Returns datagrams handled.
  Clock::time_point run_due();
  size_t poll_io(std::chrono::milliseconds timeout);

  // Requests answered, and datagrams refused (not a well-formed request or
  // a reply to a probe of ours). Relaxed counters for tests and metrics.
  uint64_t echoes_answered() const { return answered_.load(std::memory_order_relaxed); }
  uint64_t datagrams_refused() const { return refused_.load(std::memory_order_relaxed); }
  // The port the echo is bound to (the option's, or the kernel's for 0).
  uint16_t bound_port() const { return bound_port_; }

 private:
  struct Peer {
    v1::PeerTarget spec;
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    int fd = -1;  // the socket of the peer's family; -1: none
    PathTracker tracker;
    PathLiveness liveness;
    Clock::time_point next_send{};
    std::map<uint64_t, Clock::time_point> in_flight;  // seq -> sent
    Peer(v1::PeerTarget s, size_t window, double alpha, uint32_t down_after)
        : spec(std::move(s)), tracker(window, alpha), liveness(down_after) {}
  };

  // How long a probe of `p` may go unanswered before it is a miss.
  std::chrono::nanoseconds late(const Peer& p) const;
  // Answers requests and matches replies; true when a path came back up.
  bool handle(int fd, Clock::time_point now);
  void loop();

  const MeshOptions options_;
  const std::string tunnel_v4_;
  const std::string tunnel_v6_;
  Clock& clock_;
  int fd_v4_ = -1;
  int fd_v6_ = -1;
  int wake_fd_ = -1;
  uint16_t bound_port_ = 0;
  uint64_t nonce_ = 0;

  mutable std::mutex mu_;  // guards everything below
  std::vector<std::unique_ptr<Peer>> peers_;
  uint64_t next_seq_ = 1;
  bool stopping_ = false;
  std::mt19937_64 rng_;

  std::function<void()> on_change_;

  std::atomic<uint64_t> answered_{0};
  std::atomic<uint64_t> refused_{0};
  std::thread thread_;
};

}  // namespace onramp::agent
