#include "controlplane/agent/prober.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "common/health_check.h"
#include "common/ip_address.h"
#include "common/log.h"
#include "common/text.h"

namespace onramp::agent {
namespace {

// An HTTP status line longer than this is not one.
constexpr size_t kMaxStatusLine = 4096;

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// "Connection refused" -> "connection refused", as the rest of our errors.
std::string error_text(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// Fills `ss` from a textual IPv4 or IPv6 address and a port.
bool to_sockaddr(const std::string& address, uint32_t port, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// The newest OpenSSL error of this thread, in words ("" when none), and
// the queue emptied for the next call.
// A failed system call (a CA file that cannot be opened) is named by its
// errno rather than as OpenSSL's "system lib".
std::string openssl_error() {
  std::string s;
  while (unsigned long e = ERR_get_error()) {
    if (ERR_GET_LIB(e) == ERR_LIB_SYS) {
      s = error_text(ERR_GET_REASON(e));
      break;
    }
    const char* reason = ERR_reason_error_string(e);
    s = reason ? reason : "error " + std::to_string(e);
  }
  ERR_clear_error();
  return s;
}

// One TLS context per HTTPS target: its CA file (or the system's roots)
// loaded once, not at every attempt.
Result<SSL_CTX*> make_tls_context(const v1::HealthCheck& check) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return error("TLS: context: " + openssl_error());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A server that closes without close_notify after its answer has still
  // answered: its end of stream reads as one.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (!check.tls_skip_verify()) {
    int loaded = check.tls_ca_file().empty()
                     ? SSL_CTX_set_default_verify_paths(ctx)
                     : SSL_CTX_load_verify_locations(ctx, check.tls_ca_file().c_str(), nullptr);
    if (loaded != 1) {
      std::string why = openssl_error();
      SSL_CTX_free(ctx);
      return error("TLS: CA file " + quote(check.tls_ca_file()) + ": " + why);
    }
  }
  return ctx;
}

const char* verdict_name(const HealthTracker& t) {
  return !t.known() ? "unknown" : t.healthy() ? "healthy" : "unhealthy";
}

}  // namespace

// Where a target's attempt stands.
enum class ProbePhase { kIdle, kConnecting, kTlsHandshake, kSending, kReading, kAwaitReply };

struct Prober::Target {
  uint64_t id = 0;
  std::string key;
  v1::ProbeTarget spec;  // health_check normalised when the normaliser accepts it
  HealthTracker tracker;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  Status usable;  // ok, or why every attempt fails without a packet sent

  Clock::time_point next_start{};
  // The attempt in flight.
  int fd = -1;
  bool watched = false;  // fd is in the epoll set
  ProbePhase phase = ProbePhase::kIdle;
  Clock::time_point started;
  Clock::time_point deadline;
  double connect_ms = -1;
  // HTTPS: the context (made at the first attempt, kept while the check
  // is), the attempt's connection, when its handshake began, and the
  // latest successful probe's handshake time (reported, never the RTT).
  SSL_CTX* tls_ctx = nullptr;
  SSL* tls = nullptr;
  Clock::time_point handshake_started;
  double handshake_ms = -1;
  double last_handshake_ms = -1;
  std::string out;
  size_t out_done = 0;
  std::string in;

  Target(uint64_t id_in, std::string key_in, v1::ProbeTarget spec_in, double alpha)
      : id(id_in),
        key(std::move(key_in)),
        spec(std::move(spec_in)),
        tracker(spec.health_check().healthy_threshold(), spec.health_check().unhealthy_threshold(),
                alpha) {
    if (spec.port() == 0 || spec.port() > 65535)
      usable = error("no port to probe (" + std::to_string(spec.port()) + ")");
    else if (!to_sockaddr(spec.address(), spec.port(), addr, addr_len))
      usable = error("\"" + spec.address() + "\" is not an IPv4 or IPv6 address");
  }
  ~Target() {
    close_fd();
    if (tls_ctx) SSL_CTX_free(tls_ctx);
  }

  void close_fd() {
    // No close_notify: the probe is over either way, and a shutdown could
    // block on a full socket.
    if (tls) SSL_free(tls);
    tls = nullptr;
    if (fd >= 0) ::close(fd);  // also leaves the epoll set
    fd = -1;
    watched = false;
  }
  std::chrono::milliseconds interval() const {
    return std::chrono::milliseconds(spec.health_check().interval_ms());
  }
};

std::string probe_target_key(const v1::ProbeTarget& target) {
  // Normalised, so that a default left unset and the same value written out
  // are one check; a check the normaliser refuses is keyed as it is.
  Result<v1::HealthCheck> normalised = normalise_health_check(target.health_check());
  std::string check;
  (normalised.ok() ? *normalised : target.health_check()).SerializeToString(&check);
  std::string key;
  for (const std::string* part :
       {&target.accelerator(), &target.listener(), &target.endpoint_group(), &target.address()}) {
    key += *part;
    key += '\0';
  }
  key += std::to_string(target.port());
  key += '\0';
  key += check;
  return key;
}

std::chrono::milliseconds jittered_interval(std::chrono::milliseconds interval, double jitter,
                                            std::mt19937_64& rng) {
  if (jitter <= 0) return interval;
  std::uniform_real_distribution<double> d(-jitter, jitter);
  double ms = static_cast<double>(interval.count()) * (1.0 + d(rng));
  return std::chrono::milliseconds(std::max<int64_t>(1, static_cast<int64_t>(ms)));
}

std::chrono::milliseconds first_probe_offset(std::chrono::milliseconds interval,
                                             std::mt19937_64& rng) {
  if (interval.count() <= 1) return std::chrono::milliseconds(0);
  std::uniform_int_distribution<int64_t> d(0, interval.count() - 1);
  return std::chrono::milliseconds(d(rng));
}

Prober::Prober(ProberOptions options, Reporter report, Clock& clock)
    : options_(options),
      report_(std::move(report)),
      clock_(clock),
      rng_(options.seed ? options.seed : std::random_device{}()) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    log::error("probes disabled: epoll or eventfd failed", {{"error", error_text(errno)}});
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
}

Prober::~Prober() {
  stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    by_id_.clear();
    targets_.clear();
  }
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Prober::start() {
  if (epoll_fd_ < 0 || wake_fd_ < 0 || thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  start_reporting();
  thread_ = std::thread([this] { loop(); });
}

void Prober::start_reporting() {
  {
    std::lock_guard<std::mutex> lock(outbox_mu_);
    if (outbox_running_) return;
    outbox_stopping_ = false;
    outbox_running_ = true;
  }
  report_thread_ = std::thread([this] { report_loop(); });
}

void Prober::report_loop() {
  while (true) {
    v1::ProbeReport report;
    {
      std::unique_lock<std::mutex> lock(outbox_mu_);
      outbox_cv_.wait(lock, [this] { return outbox_stopping_ || outbox_; });
      if (outbox_stopping_) return;
      report = std::move(*outbox_);
      outbox_.reset();
    }
    if (report_) report_(report);
  }
}

void Prober::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(outbox_mu_);
    outbox_stopping_ = true;
  }
  outbox_cv_.notify_all();
  if (report_thread_.joinable()) report_thread_.join();
  std::lock_guard<std::mutex> lock(outbox_mu_);
  outbox_running_ = false;
}

void Prober::set_plan(const v1::ProbePlan& plan) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_plan_ = plan;
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
}

size_t Prober::target_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_plan_) return static_cast<size_t>(pending_plan_->targets_size());
  return targets_.size();
}

v1::ProbeReport Prober::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_locked();
}

v1::ProbeReport Prober::snapshot_locked() const {
  v1::ProbeReport report;
  for (const auto& t : targets_) {
    v1::ProbeResult* r = report.add_results();
    r->set_accelerator(t->spec.accelerator());
    r->set_listener(t->spec.listener());
    r->set_endpoint_group(t->spec.endpoint_group());
    r->set_address(t->spec.address());
    r->set_known(t->tracker.known());
    r->set_healthy(t->tracker.known() && t->tracker.healthy());
    r->set_rtt_ms(t->tracker.smoothed_rtt_ms());
    r->set_last_rtt_ms(t->tracker.last_rtt_ms());
    r->set_consecutive(t->tracker.consecutive());
    r->set_last_error(t->tracker.last_error());
    r->set_last_change_ms(t->tracker.last_change_ms());
    r->set_tls_handshake_ms(t->last_handshake_ms);
  }
  report.set_time_ms(unix_ms());
  return report;
}

void Prober::apply_plan_locked(const v1::ProbePlan& plan, Clock::time_point now) {
  std::unordered_map<std::string, std::unique_ptr<Target>> old;
  for (auto& t : targets_) old.emplace(t->key, std::move(t));
  targets_.clear();
  by_id_.clear();
  bool same_set = true;
  std::unordered_map<std::string, bool> seen;
  for (const v1::ProbeTarget& in : plan.targets()) {
    v1::ProbeTarget spec = in;
    Result<v1::HealthCheck> check = normalise_health_check(in.health_check());
    if (check.ok()) *spec.mutable_health_check() = *check;
    std::string key = probe_target_key(in);
    if (!seen.emplace(key, true).second) continue;  // listed twice: probe once
    auto it = old.find(key);
    if (it != old.end()) {
      it->second->spec = std::move(spec);  // the region may have changed
      targets_.push_back(std::move(it->second));
      old.erase(it);
    } else {
      same_set = false;
      auto t = std::make_unique<Target>(next_id_++, key, std::move(spec), options_.rtt_alpha);
      if (check.ok())
        t->next_start = now + first_probe_offset(t->interval(), rng_);
      else
        refuse_locked(*t, check.status());
      targets_.push_back(std::move(t));
    }
    by_id_[targets_.back()->id] = targets_.back().get();
  }
  if (!old.empty()) same_set = false;
  old.clear();  // closes the sockets of removed targets
  if (!same_set) {
    changed_ = true;
    log::info("new probe plan", {{"targets", targets_.size()}});
  }
}

void Prober::refuse_locked(Target& t, const Status& why) {
  t.usable = why;
  t.next_start = Clock::time_point::max();
  t.tracker.set_thresholds(1, 1);
  t.tracker.record(why, -1, unix_ms());
  changed_ = true;
  log::warn("health check refused: the target is not probed", {{"endpoint", t.spec.address()},
                                                               {"port", t.spec.port()},
                                                               {"group", t.spec.endpoint_group()},
                                                               {"listener", t.spec.listener()},
                                                               {"error", why.message()}});
}

bool Prober::watch_locked(Target& t, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = t.id;
  if (epoll_ctl(epoll_fd_, t.watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, t.fd, &ev) != 0) return false;
  t.watched = true;
  return true;
}

void Prober::start_attempt_locked(Target& t, Clock::time_point now) {
  t.started = now;
  t.deadline = now + std::chrono::milliseconds(t.spec.health_check().timeout_ms());
  t.connect_ms = -1;
  t.handshake_ms = -1;
  t.out.clear();
  t.out_done = 0;
  t.in.clear();
  if (!t.usable.ok()) {
    finish_locked(t, t.usable, -1, now);
    return;
  }
  const v1::HealthCheck& check = t.spec.health_check();
  if (check.protocol() == v1::HEALTH_CHECK_HTTPS && !t.tls_ctx) {
    // An unreadable CA file fails the attempt (and is tried again at the
    // next one, once someone has fixed it).
    Result<SSL_CTX*> ctx = make_tls_context(check);
    if (!ctx.ok()) {
      finish_locked(t, ctx.status(), -1, now);
      return;
    }
    t.tls_ctx = *ctx;
  }
  bool udp = check.protocol() == v1::HEALTH_CHECK_UDP;
  t.fd = ::socket(t.addr.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (t.fd < 0 && (errno == EMFILE || errno == ENFILE)) {
    // Out of file descriptors is this agent's problem, not the endpoint's:
    // the attempt is skipped, not counted, and tried again shortly.
    if (!out_of_fds_logged_)
      log::error(
          "probes: out of file descriptors; attempts are postponed, raise the limit "
          "(ulimit -n)",
          {{"error", error_text(errno)}});
    out_of_fds_logged_ = true;
    t.next_start = now + std::chrono::milliseconds(kMinProbeIntervalMs);
    return;
  }
  if (t.fd < 0) {
    finish_locked(t, error("socket: " + error_text(errno)), -1, now);
    return;
  }
  out_of_fds_logged_ = false;
  int rc = ::connect(t.fd, reinterpret_cast<const sockaddr*>(&t.addr), t.addr_len);
  if (udp) {
    // A connected UDP socket hears the ICMP port unreachable as ECONNREFUSED.
    if (rc != 0) {
      finish_locked(t, error("UDP: connect: " + error_text(errno)), -1, now);
      return;
    }
    const std::string& req = check.udp_request();
    if (::send(t.fd, req.data(), req.size(), MSG_NOSIGNAL) < 0) {
      finish_locked(t, error("UDP: send: " + error_text(errno)), -1, now);
      return;
    }
    t.phase = ProbePhase::kAwaitReply;
    if (!watch_locked(t, EPOLLIN)) finish_locked(t, error("epoll: " + error_text(errno)), -1, now);
    return;
  }
  if (rc == 0) {
    on_connected_locked(t, now);
    return;
  }
  if (errno != EINPROGRESS) {
    finish_locked(t, error("connect: " + error_text(errno)), -1, now);
    return;
  }
  t.phase = ProbePhase::kConnecting;
  if (!watch_locked(t, EPOLLOUT)) finish_locked(t, error("epoll: " + error_text(errno)), -1, now);
}

void Prober::on_connected_locked(Target& t, Clock::time_point now) {
  // The RTT of TCP and HTTP probes is the connect time: one round trip of
  // the network, without the server's think time.
  t.connect_ms = ms_between(t.started, now);
  const v1::HealthCheck& check = t.spec.health_check();
  if (check.protocol() == v1::HEALTH_CHECK_HTTPS) {
    start_tls_locked(t, now);
    return;
  }
  if (check.protocol() != v1::HEALTH_CHECK_HTTP) {
    finish_locked(t, ok_status(), t.connect_ms, now);
    return;
  }
  send_request_locked(t, now);
}

void Prober::send_request_locked(Target& t, Clock::time_point now) {
  const v1::HealthCheck& check = t.spec.health_check();
  // HTTPS with a server name asks for that virtual host; otherwise the
  // address, as a client that dialled it would.
  std::string host = t.spec.address();
  if (t.addr.ss_family == AF_INET6) host = "[" + host + "]";
  if (!check.tls_server_name().empty()) host = check.tls_server_name();
  if (t.tls ? t.spec.port() != 443 : t.spec.port() != 80)
    host += ":" + std::to_string(t.spec.port());
  t.out = "GET " + check.path() + " HTTP/1.1\r\nHost: " + host +
          "\r\nUser-Agent: onramp-agent\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  t.phase = ProbePhase::kSending;
  if (!watch_locked(t, EPOLLOUT)) finish_locked(t, error("epoll: " + error_text(errno)), -1, now);
}

void Prober::start_tls_locked(Target& t, Clock::time_point now) {
  const v1::HealthCheck& check = t.spec.health_check();
  ERR_clear_error();
  t.tls = SSL_new(t.tls_ctx);
  if (!t.tls || SSL_set_fd(t.tls, t.fd) != 1) {
    finish_locked(t, error("TLS: " + openssl_error()), -1, now);
    return;
  }
  const std::string& name = check.tls_server_name();
  bool name_is_address = !name.empty() && IpAddress::parse(name).has_value();
  // SNI carries host names only (RFC 6066): none for an address.
  if (!name.empty() && !name_is_address && SSL_set_tlsext_host_name(t.tls, name.c_str()) != 1) {
    finish_locked(t, error("TLS: server name: " + openssl_error()), -1, now);
    return;
  }
  if (!check.tls_skip_verify()) {
    SSL_set_verify(t.tls, SSL_VERIFY_PEER, nullptr);
    // The certificate must name the server name, else the address dialled.
    const std::string& expected = name.empty() ? t.spec.address() : name;
    bool set = (name.empty() || name_is_address)
                   ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t.tls), expected.c_str()) == 1
                   : SSL_set1_host(t.tls, expected.c_str()) == 1;
    if (!set) {
      finish_locked(t, error("TLS: name to verify " + quote(expected) + ": " + openssl_error()), -1,
                    now);
      return;
    }
  }
  t.handshake_started = now;
  t.phase = ProbePhase::kTlsHandshake;
  continue_tls_locked(t, now);
}

// A TLS call that could not finish now: wait for what it asked for.
// Returns false when the attempt has failed (and is finished).
bool Prober::tls_wait_locked(Target& t, int ssl_error, Clock::time_point now) {
  uint32_t events = ssl_error == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
  if (watch_locked(t, events)) return true;
  finish_locked(t, error("epoll: " + error_text(errno)), -1, now);
  return false;
}

void Prober::continue_tls_locked(Target& t, Clock::time_point now) {
  ERR_clear_error();
  int rc = SSL_connect(t.tls);
  if (rc == 1) {
    t.handshake_ms = ms_between(t.handshake_started, now);
    send_request_locked(t, now);
    return;
  }
  int err = SSL_get_error(t.tls, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    tls_wait_locked(t, err, now);
    return;
  }
  // Without verification the result is still computed, but it is no
  // reason for a failure.
  long verify = SSL_get_verify_result(t.tls);
  if (!t.spec.health_check().tls_skip_verify() && verify != X509_V_OK) {
    ERR_clear_error();
    finish_locked(t,
                  error(std::string("TLS: certificate verify failed: ") +
                        X509_verify_cert_error_string(verify)),
                  -1, now);
    return;
  }
  int saved_errno = errno;
  std::string why = openssl_error();
  if (why.empty())
    why = err == SSL_ERROR_SYSCALL && saved_errno ? error_text(saved_errno)
                                                  : "connection closed during the handshake";
  finish_locked(t, error("TLS: handshake failed: " + why), -1, now);
}

void Prober::on_io_locked(Target& t, uint32_t events, Clock::time_point now) {
  const v1::HealthCheck& check = t.spec.health_check();
  switch (t.phase) {
    case ProbePhase::kIdle:
      return;
    case ProbePhase::kConnecting: {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(t.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) {
        finish_locked(t, error("connect: " + error_text(err)), -1, now);
        return;
      }
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      on_connected_locked(t, now);
      return;
    }
    case ProbePhase::kTlsHandshake:
      continue_tls_locked(t, now);
      return;
    case ProbePhase::kSending: {
      while (t.tls && t.out_done < t.out.size()) {
        // Without partial writes, a write that must wait is retried with
        // the same bytes, as OpenSSL requires.
        ERR_clear_error();
        int n = SSL_write(t.tls, t.out.data() + t.out_done,
                          static_cast<int>(t.out.size() - t.out_done));
        if (n > 0) {
          t.out_done += static_cast<size_t>(n);
          continue;
        }
        int err = SSL_get_error(t.tls, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
          tls_wait_locked(t, err, now);
          return;
        }
        std::string why = openssl_error();
        finish_locked(t, error("TLS: write: " + (why.empty() ? error_text(errno) : why)), -1, now);
        return;
      }
      while (t.out_done < t.out.size()) {
        ssize_t n =
            ::send(t.fd, t.out.data() + t.out_done, t.out.size() - t.out_done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0) {
          finish_locked(t, error("HTTP: send: " + error_text(errno)), -1, now);
          return;
        }
        t.out_done += static_cast<size_t>(n);
      }
      t.phase = ProbePhase::kReading;
      if (!watch_locked(t, EPOLLIN))
        finish_locked(t, error("epoll: " + error_text(errno)), -1, now);
      return;
    }
    case ProbePhase::kReading: {
      char buf[1024];
      bool eof = false;
      while (t.tls) {
        ERR_clear_error();
        int n = SSL_read(t.tls, buf, sizeof buf);
        if (n > 0) {
          t.in.append(buf, static_cast<size_t>(n));
          if (t.in.find('\n') != std::string::npos || t.in.size() > kMaxStatusLine) break;
          continue;
        }
        int err = SSL_get_error(t.tls, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
          if (!tls_wait_locked(t, err, now)) return;
          break;
        }
        if (err == SSL_ERROR_ZERO_RETURN) {
          eof = true;
          break;
        }
        std::string why = openssl_error();
        finish_locked(t, error("TLS: read: " + (why.empty() ? error_text(errno) : why)), -1, now);
        return;
      }
      while (!t.tls) {
        ssize_t n = ::recv(t.fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0) {
          finish_locked(t, error("HTTP: recv: " + error_text(errno)), -1, now);
          return;
        }
        if (n == 0) {
          eof = true;
          break;
        }
        t.in.append(buf, static_cast<size_t>(n));
        if (t.in.find('\n') != std::string::npos || t.in.size() > kMaxStatusLine) break;
      }
      size_t eol = t.in.find('\n');
      if (eol == std::string::npos) {
        if (t.in.size() > kMaxStatusLine)
          finish_locked(t, error("HTTP: no status line in the first 4096 bytes"), -1, now);
        else if (eof)
          finish_locked(t, error("HTTP: connection closed before the status line"), -1, now);
        return;
      }
      // "HTTP/1.1 200 OK": the code is the three digits after the first space.
      std::string line = t.in.substr(0, eol);
      size_t sp = line.find(' ');
      int code = -1;
      if (line.rfind("HTTP/", 0) == 0 && sp != std::string::npos && line.size() >= sp + 4 &&
          std::isdigit(static_cast<unsigned char>(line[sp + 1])) &&
          std::isdigit(static_cast<unsigned char>(line[sp + 2])) &&
          std::isdigit(static_cast<unsigned char>(line[sp + 3])))
        code = std::stoi(line.substr(sp + 1, 3));
      if (code < 0) {
        finish_locked(t, error("HTTP: not an HTTP status line"), -1, now);
        return;
      }
      bool pass = static_cast<uint32_t>(code) >= check.expected_status_min() &&
                  static_cast<uint32_t>(code) <= check.expected_status_max();
      if (pass && t.tls) t.last_handshake_ms = t.handshake_ms;
      finish_locked(t, pass ? ok_status() : error("HTTP " + std::to_string(code)), t.connect_ms,
                    now);
      return;
    }
    case ProbePhase::kAwaitReply: {
      char buf[2048];
      ssize_t n = ::recv(t.fd, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
      if (n < 0) {
        finish_locked(t, error("UDP: " + error_text(errno)), -1, now);
        return;
      }
      std::string_view reply(buf, static_cast<size_t>(n));
      const std::string& want = check.udp_expected_response();
      if (reply.substr(0, want.size()) != want) {
        finish_locked(t, error("UDP: unexpected response"), -1, now);
        return;
      }
      finish_locked(t, ok_status(), ms_between(t.started, now), now);
      return;
    }
  }
}

void Prober::finish_locked(Target& t, const Status& result, double rtt_ms, Clock::time_point now) {
  t.close_fd();
  t.phase = ProbePhase::kIdle;
  t.out.clear();
  t.in.clear();
  const char* before = verdict_name(t.tracker);
  if (t.tracker.record(result, rtt_ms, unix_ms())) {
    changed_ = true;
    log::info("health verdict changed", {{"endpoint", t.spec.address()},
                                         {"port", t.spec.port()},
                                         {"group", t.spec.endpoint_group()},
                                         {"listener", t.spec.listener()},
                                         {"old", before},
                                         {"new", verdict_name(t.tracker)},
                                         {"error", result.message()}});
  }
  auto next = t.started + jittered_interval(t.interval(), options_.jitter, rng_);
  t.next_start = std::max(next, now);
}

void Prober::loop() {
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    Clock::time_point wake = run_due();
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - clock_.now());
    poll_io(std::max(wait, std::chrono::milliseconds(0)));
  }
}

Clock::time_point Prober::run_due() {
  std::optional<v1::ProbeReport> report;
  Clock::time_point wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Clock::time_point now = clock_.now();
    if (!next_report_) next_report_ = now + options_.report_interval;
    if (pending_plan_) {
      apply_plan_locked(*pending_plan_, now);
      pending_plan_.reset();
    }
    wake = now + std::chrono::seconds(1);
    for (auto& t : targets_) {
      if (t->phase != ProbePhase::kIdle && t->deadline <= now)
        finish_locked(
            *t,
            error("timeout after " + std::to_string(t->spec.health_check().timeout_ms()) + " ms"),
            -1, now);
      if (t->phase == ProbePhase::kIdle && t->next_start <= now) start_attempt_locked(*t, now);
      wake = std::min(wake, t->phase == ProbePhase::kIdle ? t->next_start : t->deadline);
    }
    if (changed_ || (now >= *next_report_ && !targets_.empty())) {
      report = snapshot_locked();
      changed_ = false;
      next_report_ = now + options_.report_interval;
    }
    if (targets_.empty()) next_report_ = now + options_.report_interval;
    wake = std::min(wake, *next_report_);
  }
  if (report) publish(std::move(*report));
  return wake;
}

void Prober::report_soon() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed_ = true;
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
}

void Prober::publish(v1::ProbeReport report) {
  reports_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(outbox_mu_);
    if (outbox_running_) {
      outbox_ = std::move(report);  // replaces one not yet sent
      outbox_cv_.notify_one();
      return;
    }
  }
  // Not started: a test drives the steps and takes reports as they come.
  if (report_) report_(report);
}

size_t Prober::attempts_in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(std::count_if(targets_.begin(), targets_.end(), [](const auto& t) {
    return t->phase != ProbePhase::kIdle;
  }));
}

size_t Prober::poll_io(std::chrono::milliseconds timeout) {
  epoll_event events[256];
  int n = epoll_wait(epoll_fd_, events, 256,
                     static_cast<int>(std::min<int64_t>(timeout.count(), 60000)));
  if (n < 0 && errno != EINTR) {
    log::error("probes: epoll_wait failed", {{"error", error_text(errno)}});
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return 0;
  }
  std::lock_guard<std::mutex> lock(mu_);
  Clock::time_point now = clock_.now();
  for (int i = 0; i < n; ++i) {
    uint64_t id = events[i].data.u64;
    if (id == 0) {
      uint64_t count = 0;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof count);
      continue;
    }
    auto it = by_id_.find(id);
    if (it == by_id_.end() || it->second->fd < 0) continue;  // removed or finished meanwhile
    on_io_locked(*it->second, events[i].events, now);
  }
  return n < 0 ? 0 : static_cast<size_t>(n);
}

}  // namespace onramp::agent
