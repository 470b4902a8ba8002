#include "controlplane/agent/agent.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>

#include "common/grpc_limits.h"
#include "common/log.h"
#include "common/text.h"
#include "dataplane/config/table_loader.h"

namespace onramp::agent {
namespace {

uint32_t ms_between(Clock::time_point t0, Clock::time_point t1) {
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0).count());
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The dataplane said no to the table itself; anything else (unreachable,
// timed out, shutting down) may work when tried again.
bool refused(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNIMPLEMENTED:
      return true;
    default:
      return false;
  }
}

}  // namespace

Agent::Agent(AgentConfig config, DataplaneClient& dataplane, Clock& clock)
    : config_(std::move(config)), dataplane_(dataplane), clock_(clock), store_(config_.state_dir) {
  if (config_.probes)
    prober_ = std::make_unique<Prober>(
        ProberOptions{.report_interval = config_.report_interval},
        [this](const v1::ProbeReport& report) {
          v1::AgentMessage msg;
          *msg.mutable_probes() = with_peers(report);
          send(msg);
          route_on_own(report);
        },
        clock_);
  if (config_.probes && config_.mesh_port &&
      (!config_.tunnel_source_v4.empty() || !config_.tunnel_source_v6.empty()))
    mesh_ =
        std::make_unique<MeshProber>(MeshOptions{.port = config_.mesh_port,
                                                 .interval = config_.mesh_interval,
                                                 .timeout = std::chrono::milliseconds(1000),
                                                 .down_after = config_.mesh_down_after},
                                     config_.tunnel_source_v4, config_.tunnel_source_v6, clock_);
  // A path that goes down (or comes back) is reported now, not at the next
  // report interval: a relay over it must be left within a second.
  if (mesh_ && prober_) mesh_->set_on_change([this] { prober_->report_soon(); });
  if (!config_.bird_config.empty())
    bird_ = std::make_unique<BirdAnnouncer>(
        BirdOptions{.config_path = config_.bird_config, .socket_path = config_.bird_socket});
}

Agent::~Agent() { stop(); }

void Agent::set_sender(std::function<bool(const v1::AgentMessage&)> send) {
  send_ = std::move(send);
}

void Agent::restore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Result<std::optional<LastGood>> stored = store_.load_last_good();
    if (!stored.ok()) {
      // Not applied: the controller hears that the agent cannot vouch for
      // what the dataplane runs (Hello.applied_digest empty) and re-sends.
      log::error("the stored last good table fails its check: not applied",
                 {{"error", stored.error()}});
      if (Result<std::optional<TableOrigin>> origin = store_.load_origin(); origin.ok())
        damaged_origin_ = *origin;
    } else if (*stored) {
      log::info("last good table loaded", {{"version", (*stored)->table.version()},
                                           {"file", store_.path()},
                                           {"store_id", (*stored)->meta.store_id},
                                           {"epoch", (*stored)->meta.epoch},
                                           {"verified", (*stored)->verified}});
      last_good_ = std::move((*stored)->table);
      last_good_meta_ = std::move((*stored)->meta);
    } else {
      log::info("no last good table yet", {{"state_dir", config_.state_dir}});
    }
    Result<std::optional<v1::AgentRouteState>> state = store_.load_routing();
    if (!state.ok()) {
      log::warn("ignoring the stored route inputs: the agent cannot route on its own",
                {{"error", state.error()}});
    } else if (*state && (*state)->has_inputs() && last_good_ &&
               (*state)->version() == last_good_->version()) {
      v1::AgentRouteState& st = **state;
      routing_ = OwnRouting{.version = st.version(),
                            .inputs = std::move(*st.mutable_inputs()),
                            .controller_digest = st.controller_digest(),
                            .local_digest = st.local_digest()};
      routing_->local = ctl::local_inputs(routing_->inputs);
    }
  }
  if (prober_) {
    // The controller sends no update when the dataplane already runs its
    // version, so a restarted agent probes from the plan it kept.
    Result<std::optional<v1::ProbePlan>> plan = store_.load_plan();
    if (!plan.ok()) {
      log::warn("ignoring the stored probe plan", {{"error", plan.error()}});
    } else if (*plan) {
      prober_->set_plan(**plan);
      if (mesh_) mesh_->set_peers((*plan)->peers());
      std::lock_guard<std::mutex> lock(mu_);
      plan_ = std::move(**plan);
    }
  }
}

void Agent::start() {
  restore();
  if (prober_) prober_->start();
  if (mesh_) {
    // Peers then count this PoP's path as lost; its own probes still go
    // out from the families that did bind.
    if (Status s = mesh_->open(); !s.ok())
      log::warn("mesh echo not served on every tunnel address", {{"error", s.message()}});
    mesh_->start();
  }
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = false;
  }
  watch_ = std::thread([this] { watch_loop(); });
  dataplane_watch_ = std::thread([this] { dataplane_watch_loop(); });
}

void Agent::stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (watch_.joinable()) watch_.join();
  if (dataplane_watch_.joinable()) dataplane_watch_.join();
  if (prober_) prober_->stop();
  if (mesh_) mesh_->stop();
}

void Agent::watch_loop() {
  while (true) {
    tick();
    std::unique_lock<std::mutex> lock(stop_mu_);
    stop_cv_.wait_for(lock, config_.status_interval, [this] { return stopping_ || round_now_; });
    if (stopping_) return;
    round_now_ = false;
  }
}

void Agent::dataplane_watch_loop() {
  // Short waits, so that stop() is not held up.
  constexpr std::chrono::milliseconds kWait{100};
  while (true) {
    bool lost = dataplane_.wait_connection_lost(kWait);
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopping_) return;
    if (lost) {
      round_now_ = true;
      stop_cv_.notify_all();
    }
  }
}

uint64_t Agent::last_good_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_good_ ? last_good_->version() : 0;
}

v1::Hello Agent::hello() {
  v1::Hello h;
  const PopIdentity& id = config_.identity;
  h.set_pop(id.pop);
  h.set_host(id.host);
  h.set_iata(id.iata);
  h.set_city(id.city);
  h.set_country(id.country);
  h.set_latitude(id.latitude);
  h.set_longitude(id.longitude);
  h.mutable_tunnel_source()->set_ipv4(config_.tunnel_source_v4);
  h.mutable_tunnel_source()->set_ipv6(config_.tunnel_source_v6);
  h.set_agent_version(config_.agent_version);
  h.add_capabilities("status");
  if (prober_) h.add_capabilities("probes");
  if (bird_) h.add_capabilities("bgp");
  // What the dataplane runs; when it cannot be asked, the last good table,
  // which the watch puts back as soon as it answers.
  v1::DataplaneHealthResponse health;
  if (dataplane_.health(health).ok())
    h.set_applied_version(health.table_version());
  else
    h.set_applied_version(last_good_version());
  // The verdicts as they are, so the controller's first table uses them;
  // the memory that made the table the dataplane runs (the controller's, or
  // the agent's own rounds'), so the controller carries on from there; and
  // when that table is one of the agent's own, which one.
  if (prober_) *h.mutable_probes() = with_peers(prober_->snapshot());
  std::lock_guard<std::mutex> lock(mu_);
  // The content the agent vouches for: the controller's digest kept with
  // the last good table, when that is what the dataplane runs.
  if (last_good_ && h.applied_version() == last_good_->version())
    h.set_applied_digest(last_good_meta_.content_digest);
  if (routing_) {
    h.set_route_inputs_version(routing_->inputs.config_version());
    ctl::memory_to_proto(routing_->local.memory, *h.mutable_route_memory());
    h.set_local_digest(routing_->local_digest);
  }
  return h;
}

v1::ForwardingTable Agent::localise(const v1::ForwardingTable& from, uint64_t version) const {
  v1::ForwardingTable table = from;
  // The update's version is the one the controller tracks and we ACK; a
  // table the agent computed itself keeps the version of its inputs.
  table.set_version(version);
  if (table.pop().empty()) table.set_pop(config_.identity.pop);
  if (!config_.tunnel_source_v4.empty())
    table.mutable_tunnel_source()->set_ipv4(config_.tunnel_source_v4);
  if (!config_.tunnel_source_v6.empty())
    table.mutable_tunnel_source()->set_ipv6(config_.tunnel_source_v6);
  if (!config_.next_hop_mac.empty()) table.set_next_hop_mac(config_.next_hop_mac);
  return table;
}

grpc::Status Agent::apply_locked(const v1::ForwardingTable& table, uint32_t& apply_ms,
                                 const v1::TableUpdate* from) {
  Clock::time_point t0 = clock_.now();
  v1::ApplyTableResponse resp;
  grpc::Status s = dataplane_.apply_table(table, resp);
  apply_ms = ms_between(t0, clock_.now());
  if (!s.ok()) {
    ++applied_.failures;
    return s;
  }
  ++applies_;
  applied_.seconds = apply_ms / 1000.0;
  applied_.version = table.version();
  last_good_ = table;
  if (from)
    last_good_meta_ =
        TableMeta{.store_id = from->store_id(),
                  .epoch = from->epoch(),
                  .content_digest = ctl::content_digest(from->table(), from->probe_plan())};
  if (Status saved = store_.save(table, last_good_meta_); !saved.ok())
    log::error("table applied but not saved as the last good table",
               {{"version", table.version()}, {"error", saved.message()}});
  return s;
}

v1::ProbeReport Agent::probe_snapshot() const {
  return prober_ ? prober_->snapshot() : v1::ProbeReport();
}

bool Agent::bgp_announced() const { return bird_ && bird_->announced(); }

bool Agent::bgp_configured() const { return bird_ != nullptr; }

Agent::ApplyRecord Agent::last_apply() const {
  std::lock_guard<std::mutex> lock(mu_);
  return applied_;
}

v1::ProbeReport Agent::with_peers(v1::ProbeReport report) const {
  if (mesh_)
    for (v1::PeerResult& r : mesh_->snapshot()) *report.add_peers() = std::move(r);
  return report;
}

void Agent::take_plan(const v1::ProbePlan& plan) {
  if (!prober_) return;
  if (mesh_) mesh_->set_peers(plan.peers());
  prober_->set_plan(plan);
  std::lock_guard<std::mutex> lock(mu_);
  if (plan_ && google::protobuf::util::MessageDifferencer::Equals(*plan_, plan)) return;
  plan_ = plan;
  if (Status saved = store_.save_plan(plan); !saved.ok())
    log::warn("probe plan not saved", {{"error", saved.message()}});
}

std::optional<TableOrigin> Agent::running_origin_locked() const {
  if (!last_good_) return damaged_origin_;
  return TableOrigin{.store_id = last_good_meta_.store_id,
                     .epoch = last_good_meta_.epoch,
                     .version = last_good_->version()};
}

v1::TableAck Agent::on_update(const v1::TableUpdate& update) {
  Clock::time_point received = clock_.now();
  v1::TableAck ack;
  ack.set_version(update.version());
  ack.set_nonce(update.nonce());
  // A table that would take the PoP backwards (a controller on an empty or
  // restored store) is refused, plan and all, before anything changes: the
  // dataplane keeps forwarding on what it runs.
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::optional<TableOrigin> running = running_origin_locked();
    TableOrigin offered{
        .store_id = update.store_id(), .epoch = update.epoch(), .version = update.version()};
    if (Status may = may_apply(running, offered, update.adopt()); !may.ok()) {
      ack.set_error(printable(may.message(), kMaxErrorBytes));
      log::warn("table refused: it would take the PoP backwards",
                {{"version", update.version()}, {"error", ack.error()}});
      return ack;
    }
    if (update.adopt() && running && running->store_id != update.store_id())
      log::warn("adopting a table from another store, as an operator confirmed",
                {{"version", update.version()},
                 {"store_id", printable(update.store_id(), 64)},
                 {"was_store_id", running->store_id}});
  }
  // The plan is taken even when the dataplane refuses the table: it names
  // the endpoints the controller wants health for, which it needs all the
  // more while this PoP is stuck on an older table.
  take_plan(update.probe_plan());

  v1::ForwardingTable table = localise(update.table(), update.version());
  auto spec = dp::table_spec_from_proto(table);
  if (!spec.ok()) {
    ack.set_error(printable("table." + spec.error(), kMaxErrorBytes));
    log::warn("table refused", {{"version", update.version()}, {"error", ack.error()}});
    return ack;
  }

  std::lock_guard<std::mutex> lock(mu_);
  pending_.reset();  // this update supersedes one that waited
  uint32_t apply_ms = 0;
  grpc::Status s = apply_locked(table, apply_ms, &update);
  if (s.ok()) {
    adopt_inputs_locked(update);
    ack.set_ok(true);
    ack.set_apply_ms(ms_between(received, clock_.now()));
    log::info("table applied", {{"version", update.version()}, {"apply_ms", apply_ms}});
  } else if (refused(s)) {
    ack.set_error(printable(s.error_message(), kMaxErrorBytes));
    log::warn("the dataplane refused the table",
              {{"version", update.version()}, {"error", ack.error()}});
  } else {
    pending_ =
        Pending{.table = table, .nonce = update.nonce(), .received = received, .inputs = update};
    ack.set_error(printable("dataplane unavailable: " + s.error_message() +
                                "; the table will be applied when it answers",
                            kMaxErrorBytes));
    log::warn("table waits for the dataplane",
              {{"version", update.version()}, {"error", s.error_message()}});
  }
  return ack;
}

void Agent::tick() {
  uint64_t applies_before = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    applies_before = applies_;
  }
  v1::DataplaneHealthResponse health;
  grpc::Status hs = dataplane_.health(health);
  v1::DataplaneStats stats;
  grpc::Status ss = hs.ok() ? dataplane_.stats(stats) : hs;

  std::optional<v1::TableAck> late_ack;
  std::vector<std::string> vips;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // An update applied while the dataplane was asked: its answer is older
    // than that table, which it runs now.
    bool stale = applies_ != applies_before;
    // The version the dataplane runs once this tick is done.
    uint64_t running = !hs.ok() ? 0 : stale ? last_good_->version() : health.table_version();
    // Uptime going backwards means a new dataplane process, which may run a
    // table file of the same version number as ours.
    bool restarted = ss.ok() && stats.uptime_ms() < last_uptime_ms_;
    if (ss.ok()) last_uptime_ms_ = stats.uptime_ms();
    if (hs.ok() != dataplane_reachable_) {
      dataplane_reachable_ = hs.ok();
      if (hs.ok())
        log::info("the dataplane answers again", {{"version", health.table_version()}});
      else
        log::warn("the dataplane does not answer", {{"error", hs.error_message()}});
    }
    if (hs.ok() && pending_) {
      uint32_t apply_ms = 0;
      grpc::Status s = apply_locked(pending_->table, apply_ms, &pending_->inputs);
      if (s.ok()) {
        running = pending_->table.version();
        adopt_inputs_locked(pending_->inputs);
      }
      if (s.ok() || refused(s)) {
        late_ack.emplace();
        late_ack->set_version(pending_->table.version());
        late_ack->set_nonce(pending_->nonce);
        late_ack->set_ok(s.ok());
        late_ack->set_error(printable(s.error_message(), kMaxErrorBytes));
        late_ack->set_apply_ms(ms_between(pending_->received, clock_.now()));
        if (s.ok())
          log::info("table applied once the dataplane answered",
                    {{"version", pending_->table.version()}});
        else
          log::warn("the dataplane refused the table",
                    {{"version", pending_->table.version()}, {"error", s.error_message()}});
        pending_.reset();
      }
    } else if (hs.ok() && !stale && last_good_ &&
               (health.table_version() != last_good_->version() || restarted)) {
      log::warn("the dataplane runs another table: re-applying the last good one",
                {{"running", health.table_version()},
                 {"restarted", restarted},
                 {"last_good", last_good_->version()}});
      v1::ForwardingTable table = *last_good_;
      uint32_t apply_ms = 0;
      running = 0;  // until the re-apply succeeds, what it runs is not ours
      grpc::Status s = apply_locked(table, apply_ms);
      if (s.ok())
        running = table.version();
      else
        log::error("cannot re-apply the last good table",
                   {{"version", table.version()}, {"error", s.error_message()}});
    }
    // Announce only what the dataplane forwards now: it answers, says it is
    // healthy, and runs our last good table (not a stale table file).
    if (bird_) {
      bool runs_last_good = last_good_ && running == last_good_->version();
      vips = vips_to_announce(runs_last_good ? &*last_good_ : nullptr, hs.ok() && health.healthy());
    }
  }
  // Outside mu_: BIRD may take a while to answer, updates must not wait.
  if (bird_) bird_->update(vips);
  if (late_ack) {
    v1::AgentMessage msg;
    *msg.mutable_ack() = *late_ack;
    send(msg);
  }

  v1::AgentMessage msg;
  v1::PopStatus* status = msg.mutable_status();
  status->set_dataplane_healthy(hs.ok() && health.healthy());
  status->set_bgp_announced(bgp_announced());
  if (ss.ok()) *status->mutable_stats() = std::move(stats);
  status->set_time_ms(unix_ms());
  send(msg);
}

void Agent::adopt_inputs_locked(const v1::TableUpdate& update) {
  if (!update.has_route_inputs()) {
    if (routing_)
      log::warn("the controller sent no route inputs: the agent cannot route on its own",
                {{"version", update.version()}});
    routing_.reset();
  } else {
    routing_ =
        OwnRouting{.version = update.version(),
                   .inputs = update.route_inputs(),
                   .controller_digest = ctl::content_digest(update.table(), update.probe_plan())};
    routing_->local = ctl::local_inputs(routing_->inputs);
  }
  save_routing_locked();
}

void Agent::save_routing_locked() {
  v1::AgentRouteState state;
  if (routing_) {
    state.set_version(routing_->version);
    *state.mutable_inputs() = routing_->inputs;
    ctl::memory_to_proto(routing_->local.memory, *state.mutable_inputs()->mutable_memory());
    state.set_controller_digest(routing_->controller_digest);
    state.set_local_digest(routing_->local_digest);
  }
  if (Status saved = store_.save_routing(state); !saved.ok())
    log::error("route inputs not saved: a restarted agent cannot route on its own",
               {{"error", saved.message()}});
}

void Agent::on_session(bool up, const std::string& reason) {
  v1::ProbeReport now;
  if (!up && prober_) now = prober_->snapshot();
  std::lock_guard<std::mutex> lock(mu_);
  session_up_ = up;
  if (up) {
    if (own_logged_)
      log::info("the agent stops routing on its own: the controller's tables take over",
                {{"reason", reason},
                 {"local_digest", routing_ ? routing_->local_digest : std::string()}});
    own_logged_ = false;
    return;
  }
  own_reason_ = reason;
  if (!routing_) {
    log::warn("controller away and no route inputs: the dataplane keeps its table as it is",
              {{"reason", reason}});
    return;
  }
  log::warn("the agent routes on its own: its probes decide until the controller is back",
            {{"reason", reason}, {"version", routing_->version}});
  own_logged_ = true;
  // Verdicts that changed since the controller's last table count at once.
  route_on_own_locked(now, false);
}

bool Agent::routes_on_own() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !session_up_ && routing_.has_value();
}

std::string Agent::local_digest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return routing_ ? routing_->local_digest : std::string();
}

void Agent::route_on_own(const v1::ProbeReport& report, bool new_round) {
  std::lock_guard<std::mutex> lock(mu_);
  route_on_own_locked(report, new_round);
}

void Agent::route_on_own_locked(const v1::ProbeReport& report, bool new_round) {
  if (session_up_ || !routing_ || !last_good_ || pending_ || report.results().empty()) return;
  // An endpoint without a verdict counts as healthy; before every endpoint
  // has one (an agent just started) the table the agent has is the better
  // guess.
  for (const v1::ProbeResult& r : report.results())
    if (!r.known()) return;
  ctl::PopHealth health = ctl::health_from_report(report);
  ctl::RouteComputer computer(routing_->local.policy);
  ctl::PopRoutes routes = computer.compute(routing_->local.config, routing_->local.pop, &health,
                                           &routing_->local.memory, new_round);
  routing_->local.memory = std::move(routes.memory);
  std::string digest = ctl::content_digest(routes.table, routes.probe_plan);
  if (digest == routing_->running()) return;
  if (!own_logged_) {
    log::warn("the agent routes on its own: its probes decide until the controller is back",
              {{"reason", own_reason_}, {"version", routing_->version}});
    own_logged_ = true;
  }
  v1::ForwardingTable table = localise(routes.table, routing_->version);
  if (auto spec = dp::table_spec_from_proto(table); !spec.ok()) {
    log::error("the agent's own table fails validation, not applied",
               {{"version", routing_->version}, {"error", "table." + spec.error()}});
    return;
  }
  uint32_t apply_ms = 0;
  grpc::Status s = apply_locked(table, apply_ms);
  if (!s.ok()) {
    log::warn("the dataplane did not take the agent's own table; next report tries again",
              {{"version", routing_->version}, {"error", s.error_message()}});
    return;
  }
  routing_->local_digest = digest == routing_->controller_digest ? "" : digest;
  save_routing_locked();
  uint64_t unhealthy = 0, fail_open = 0;
  for (const v1::ListenerRoute& l : routes.listeners) {
    fail_open += l.fail_open();
    for (const v1::ForwardingEndpoint& e : l.endpoints()) unhealthy += e.unhealthy();
  }
  log::info("the agent applied a table of its own", {{"version", routing_->version},
                                                     {"digest", digest},
                                                     {"unhealthy_endpoints", unhealthy},
                                                     {"fail_open_listeners", fail_open},
                                                     {"apply_ms", apply_ms}});
}

void Agent::send(const v1::AgentMessage& msg) {
  if (send_) send_(msg);
}

}  // namespace onramp::agent
