#include "controlplane/agent/mesh_prober.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace onramp::agent {
namespace {

constexpr char kMagic[4] = {'O', 'N', 'M', 'E'};
constexpr uint8_t kVersion = 1;

void put_u64(std::string& s, size_t at, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    s[at + static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint64_t get_u64(std::string_view s, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

// Whether `m` is a message of ours of `type`: size, magic, version and the
// zero bytes all as written by mesh_echo_message.
bool well_formed(std::string_view m, MeshEchoType type) {
  if (m.size() != kMeshEchoBytes || std::memcmp(m.data(), kMagic, 4) != 0) return false;
  if (static_cast<uint8_t>(m[4]) != kVersion || static_cast<uint8_t>(m[5]) != uint8_t(type))
    return false;
  if (m[6] != 0 || m[7] != 0) return false;
  for (size_t i = 24; i < kMeshEchoBytes; ++i)
    if (m[i] != 0) return false;
  return true;
}

std::string error_text(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

bool to_sockaddr(const std::string& address, uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

std::string mesh_echo_message(MeshEchoType type, uint64_t nonce, uint64_t seq) {
  std::string m(kMeshEchoBytes, '\0');
  std::memcpy(m.data(), kMagic, 4);
  m[4] = static_cast<char>(kVersion);
  m[5] = static_cast<char>(type);
  put_u64(m, 8, nonce);
  put_u64(m, 16, seq);
  return m;
}

std::string mesh_echo_reply(std::string_view request) {
  if (!well_formed(request, MeshEchoType::kRequest)) return "";
  std::string reply(request);
  reply[5] = static_cast<char>(MeshEchoType::kReply);
  return reply;
}

MeshProber::MeshProber(MeshOptions options, std::string tunnel_v4, std::string tunnel_v6,
                       Clock& clock)
    : options_(options),
      tunnel_v4_(std::move(tunnel_v4)),
      tunnel_v6_(std::move(tunnel_v6)),
      clock_(clock),
      rng_(options.seed ? options.seed : std::random_device{}()) {
  nonce_ = rng_();
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

MeshProber::~MeshProber() {
  stop();
  for (int fd : {fd_v4_, fd_v6_, wake_fd_})
    if (fd >= 0) ::close(fd);
}

Status MeshProber::open() {
  std::string failed;
  for (const std::string* address : {&tunnel_v4_, &tunnel_v6_}) {
    if (address->empty()) continue;
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!to_sockaddr(*address, options_.port, ss, len)) {
      failed += (failed.empty() ? "" : "; ") + *address + ": not an IPv4 or IPv6 address";
      continue;
    }
    bool v6 = ss.ss_family == AF_INET6;
    int fd = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      failed += (failed.empty() ? "" : "; ") + *address + ": socket: " + error_text(errno);
      continue;
    }
    int one = 1;
    // The tunnel address may be configured after the agent starts.
    if (v6) {
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
    } else {
      ::setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
      failed += (failed.empty() ? "" : "; ") + *address + " port " + std::to_string(options_.port) +
                ": bind: " + error_text(errno);
      ::close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof bound;
    if (bound_port_ == 0 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) == 0)
      bound_port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                             : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    (v6 ? fd_v6_ : fd_v4_) = fd;
    log::info("mesh echo listening", {{"address", *address}, {"port", bound_port_}});
  }
  if (!failed.empty()) return error("mesh echo: " + failed);
  return ok_status();
}

void MeshProber::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void MeshProber::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
}

void MeshProber::set_peers(const google::protobuf::RepeatedPtrField<v1::PeerTarget>& peers) {
  {
    std::lock_guard lock(mu_);
    std::vector<std::unique_ptr<Peer>> next;
    Clock::time_point now = clock_.now();
    uint16_t port = options_.port ? options_.port : bound_port_;
    for (const v1::PeerTarget& spec : peers) {
      auto same = std::find_if(peers_.begin(), peers_.end(), [&](const auto& p) {
        return p && p->spec.pop() == spec.pop() && p->spec.address() == spec.address();
      });
      if (same != peers_.end()) {
        next.push_back(std::move(*same));
        continue;
      }
      auto p =
          std::make_unique<Peer>(spec, options_.window, options_.rtt_alpha, options_.down_after);
      if (to_sockaddr(spec.address(), port, p->addr, p->addr_len))
        p->fd = p->addr.ss_family == AF_INET6 ? fd_v6_ : fd_v4_;
      // Peers added together do not probe in step.
      int64_t spread = std::max<int64_t>(1, options_.interval.count());
      p->next_send = now + std::chrono::milliseconds(rng_() % static_cast<uint64_t>(spread));
      next.push_back(std::move(p));
    }
    peers_ = std::move(next);
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
}

std::vector<v1::PeerResult> MeshProber::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<v1::PeerResult> out;
  out.reserve(peers_.size());
  for (const auto& p : peers_) {
    v1::PeerResult r;
    r.set_pop(p->spec.pop());
    r.set_address(p->spec.address());
    r.set_rtt_ms(p->tracker.smoothed_rtt_ms());
    r.set_last_rtt_ms(p->tracker.last_rtt_ms());
    r.set_jitter_ms(p->tracker.jitter_ms());
    r.set_loss_percent(p->tracker.loss_percent());
    r.set_sent(p->tracker.decided());
    r.set_down(p->liveness.down());
    out.push_back(std::move(r));
  }
  return out;
}

std::chrono::nanoseconds MeshProber::late(const Peer& p) const {
  std::chrono::nanoseconds timeout = options_.timeout;
  if (p.tracker.smoothed_rtt_ms() < 0) return timeout;
  std::chrono::duration<double, std::milli> ms(2 * p.tracker.smoothed_rtt_ms() +
                                               4 * p.tracker.jitter_ms());
  return std::clamp(std::chrono::duration_cast<std::chrono::nanoseconds>(ms),
                    std::chrono::nanoseconds(options_.min_late), timeout);
}

Clock::time_point MeshProber::run_due() {
  bool changed = false;
  Clock::time_point wake;
  {
    std::lock_guard lock(mu_);
    Clock::time_point now = clock_.now();
    wake = now + std::chrono::seconds(1);
    for (auto& p : peers_) {
      for (auto it = p->in_flight.begin(); it != p->in_flight.end();) {
        if (now - it->second >= options_.timeout) {
          p->tracker.record_loss();
          it = p->in_flight.erase(it);
        } else {
          wake = std::min(wake, it->second + options_.timeout);
          ++it;
        }
      }
      if (p->next_send <= now) {
        uint64_t seq = next_seq_++;
        std::string m = mesh_echo_message(MeshEchoType::kRequest, nonce_, seq);
        bool sent = p->fd >= 0 && ::sendto(p->fd, m.data(), m.size(), MSG_DONTWAIT,
                                           reinterpret_cast<const sockaddr*>(&p->addr),
                                           p->addr_len) == static_cast<ssize_t>(m.size());
        if (sent) {
          p->in_flight.emplace(seq, now);
          wake = std::min(wake, now + options_.timeout);
        } else {
          p->tracker.record_loss();  // no socket of its family, or no route
        }
        p->liveness.sent(seq, now);  // unsent, it is missed all the same
        std::uniform_real_distribution<double> d(-options_.jitter, options_.jitter);
        double ms = static_cast<double>(options_.interval.count()) * (1.0 + d(rng_));
        p->next_send = now + std::chrono::milliseconds(std::max<int64_t>(1, int64_t(ms)));
      }
      wake = std::min(wake, p->next_send);
      std::chrono::nanoseconds late_after = late(*p);
      // Only a reply brings a path back up (handle), so here it only goes down.
      if (p->liveness.check(now, late_after)) {
        changed = true;
        log::warn("mesh path down: its latest probes went unanswered",
                  {{"peer", p->spec.pop()}, {"address", p->spec.address()}});
      }
      wake = std::min(wake, p->liveness.next_miss(late_after));
    }
  }
  if (changed && on_change_) on_change_();
  return wake;
}

bool MeshProber::handle(int fd, Clock::time_point now) {
  bool up_again = false;
  for (int budget = 0; budget < 256; ++budget) {
    char buf[kMeshEchoBytes + 1];
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                           &from_len);
    if (n < 0) break;  // EAGAIN, or an ICMP error a probe's timeout counts
    std::string_view m(buf, static_cast<size_t>(n));
    if (std::string reply = mesh_echo_reply(m); !reply.empty()) {
      if (::sendto(fd, reply.data(), reply.size(), MSG_DONTWAIT,
                   reinterpret_cast<const sockaddr*>(&from), from_len) > 0)
        answered_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    bool matched = false;
    if (well_formed(m, MeshEchoType::kReply) && get_u64(m, 8) == nonce_) {
      uint64_t seq = get_u64(m, 16);
      std::lock_guard lock(mu_);
      for (auto& p : peers_) {
        auto it = p->in_flight.find(seq);
        if (it == p->in_flight.end()) continue;
        p->tracker.record_reply(ms_between(it->second, now));
        p->in_flight.erase(it);
        if (p->liveness.replied(seq)) {
          up_again = true;
          log::info("mesh path up again",
                    {{"peer", p->spec.pop()}, {"address", p->spec.address()}});
        }
        matched = true;
        break;
      }
    }
    if (!matched) refused_.fetch_add(1, std::memory_order_relaxed);
  }
  return up_again;
}

size_t MeshProber::poll_io(std::chrono::milliseconds timeout) {
  pollfd fds[3];
  nfds_t count = 0;
  for (int fd : {fd_v4_, fd_v6_, wake_fd_})
    if (fd >= 0) fds[count++] = pollfd{.fd = fd, .events = POLLIN, .revents = 0};
  int n = ::poll(fds, count, static_cast<int>(std::clamp<int64_t>(timeout.count(), 0, 60000)));
  if (n <= 0) return 0;
  Clock::time_point now = clock_.now();
  size_t handled = 0;
  bool up_again = false;
  for (nfds_t i = 0; i < count; ++i) {
    if (!(fds[i].revents & POLLIN)) continue;
    if (fds[i].fd == wake_fd_) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_, &v, sizeof v);
      continue;
    }
    up_again = handle(fds[i].fd, now) || up_again;
    ++handled;
  }
  if (up_again && on_change_) on_change_();
  return handled;
}

void MeshProber::loop() {
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    Clock::time_point wake = run_due();
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - clock_.now());
    poll_io(std::max(wait, std::chrono::milliseconds(0)));
  }
}

}  // namespace onramp::agent
