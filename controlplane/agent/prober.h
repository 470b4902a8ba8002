// Health and latency probes from this PoP to every endpoint of the probe
// plan (docs/design.md "Routing"): TCP connect, HTTP GET with an expected
// status range, the same GET over TLS (HTTPS: OpenSSL, the certificate
// verified unless the check says not), UDP request/response. The RTT is
// always the TCP connect time; an HTTPS handshake's time is reported apart
// (tls_handshake_ms). One thread drives every target with non-blocking
// sockets and epoll; results go through HealthTracker, and whole snapshots
// (ProbeReport) go to the reporter at once when a verdict changes, else at
// the report interval. Every decision reads an injected Clock, and the
// thread only alternates two steps (run_due, poll_io) that tests call
// themselves with a FakeClock. Every check is normalised by
// common/health_check.h, as the controller validates it; a target whose
// check it refuses is reported failing and never probed.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "controlplane/agent/health_tracker.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::agent {

struct ProberOptions {
  // How often a whole report goes out when no verdict changes.
  std::chrono::milliseconds report_interval{1000};
  // Weight of the newest RTT in the smoothed RTT.
  double rtt_alpha = 0.3;
  // Each round's interval is stretched or shrunk by up to this fraction, so
  // PoPs (and targets) started together drift apart.
  double jitter = 0.05;
  // Seed of the jitter; 0 seeds from std::random_device.
  uint64_t seed = 0;
};

// The identity of a target across plan updates: a target whose key is
// unchanged keeps its state (thresholds, RTT). Its health check counts as
// normalise_health_check fills it in.
std::string probe_target_key(const v1::ProbeTarget& target);

// The delay before the next round: `interval` ± up to `jitter` of it.
std::chrono::milliseconds jittered_interval(std::chrono::milliseconds interval, double jitter,
                                            std::mt19937_64& rng);
// The first round of a new target starts at a random offset in [0, interval).
std::chrono::milliseconds first_probe_offset(std::chrono::milliseconds interval,
                                             std::mt19937_64& rng);

class Prober {
 public:
  using Reporter = std::function<void(const v1::ProbeReport&)>;

  // `clock` must outlive the prober.
  Prober(ProberOptions options, Reporter report, Clock& clock = real_clock());
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Starts the probe thread (run_due and poll_io in turn) and the thread
  // that hands reports to the reporter.
  void start();
  void stop();
  // Starts only the thread that hands reports to the reporter (start() does
  // it too): a prober whose steps a test drives then never waits for a
  // slow reporter, as under start().
  void start_reporting();

  // The probe loop's two steps, for the thread and for tests that drive a
  // prober without start(), on a FakeClock:
  // run_due takes a new plan, ends attempts past their deadline, starts
  // those due, and hands out a report when a verdict changed or the report
  // interval passed (on the calling thread when the prober is not started).
  // Returns when it next has something to do.
  Clock::time_point run_due();
  // Waits up to `timeout` of real time for socket events (an attempt's
  // connect, send or reply, or a wake-up) and handles those that came,
  // each at the clock's now. Returns how many came.
  size_t poll_io(std::chrono::milliseconds timeout);
  // Attempts started and not yet finished.
  size_t attempts_in_flight() const;

  // Replaces the plan (from any thread); the probe thread picks it up at
  // once. Targets whose key is unchanged keep their state; removed ones are
  // dropped, with an attempt in flight abandoned.
  void set_plan(const v1::ProbePlan& plan);

  // Asks for a report now rather than at the report interval (from any
  // thread): something beside the verdicts changed, a mesh path went down.
  void report_soon();

  // Every target of the current plan, as the next report would carry it.
  v1::ProbeReport snapshot() const;
  size_t target_count() const;
  // Reports produced so far (a report not yet taken by the reporter is
  // replaced by a newer one).
  uint64_t reports_sent() const { return reports_.load(std::memory_order_relaxed); }

 private:
  struct Target;

  void loop();
  void publish(v1::ProbeReport report);
  void apply_plan_locked(const v1::ProbePlan& plan, Clock::time_point now);
  void start_attempt_locked(Target& t, Clock::time_point now);
  void on_io_locked(Target& t, uint32_t events, Clock::time_point now);
  void on_connected_locked(Target& t, Clock::time_point now);
  void send_request_locked(Target& t, Clock::time_point now);
  // HTTPS: after the TCP connect (whose time stays the RTT), a non-blocking
  // OpenSSL handshake driven by the same epoll loop, then the request.
  void start_tls_locked(Target& t, Clock::time_point now);
  void continue_tls_locked(Target& t, Clock::time_point now);
  bool tls_wait_locked(Target& t, int ssl_error, Clock::time_point now);
  void finish_locked(Target& t, const Status& result, double rtt_ms, Clock::time_point now);
  // A target whose health check normalise_health_check refuses is never
  // probed: it is reported failing with that error at once, and logged once.
  void refuse_locked(Target& t, const Status& why);
  bool watch_locked(Target& t, uint32_t events);
  v1::ProbeReport snapshot_locked() const;

  const ProberOptions options_;
  const Reporter report_;
  Clock& clock_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: a new plan, or stop

  mutable std::mutex mu_;  // guards everything below
  std::optional<v1::ProbePlan> pending_plan_;
  std::vector<std::unique_ptr<Target>> targets_;  // in plan order
  std::unordered_map<uint64_t, Target*> by_id_;   // epoll data -> target
  uint64_t next_id_ = 1;                          // 0 is the wake fd
  bool changed_ = false;                          // a verdict or the target set changed
  std::optional<Clock::time_point> next_report_;  // set by the first run_due
  bool stopping_ = false;
  bool out_of_fds_logged_ = false;  // logged once until a socket opens again
  std::mt19937_64 rng_;

  // Reports leave through an outbox drained by their own thread, so a slow
  // reporter (a controller stream under flow control) never stalls probes
  // and never turns their late completions into timeouts. Only the newest
  // report waits: each one is a whole snapshot.
  void report_loop();
  std::mutex outbox_mu_;
  std::condition_variable outbox_cv_;
  std::optional<v1::ProbeReport> outbox_;
  bool outbox_stopping_ = false;
  bool outbox_running_ = false;  // report_thread_ drains the outbox

  // Relaxed: a counter for tests and logs, it orders nothing.
  std::atomic<uint64_t> reports_{0};
  std::thread thread_;
  std::thread report_thread_;
};

}  // namespace onramp::agent
