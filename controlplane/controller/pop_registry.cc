#include "controlplane/controller/pop_registry.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "common/grpc_limits.h"
#include "common/ip_address.h"
#include "common/log.h"
#include "common/options.h"
#include "common/text.h"
#include "controlplane/controller/table_check.h"
#include "controlplane/controller/validation.h"

namespace onramp::ctl {
namespace {

using grpc::StatusCode;

constexpr size_t kMaxOutstanding = 16;

grpc::Status check_hello(const std::string& identity, const v1::Hello& h,
                         v1::TunnelSource& tunnel) {
  if (!is_pop_id(h.pop()))
    return grpc::Status(
        StatusCode::INVALID_ARGUMENT,
        "hello.pop: \"" + h.pop() + "\" must be an IATA code plus a number, [A-Z]{3}[0-9]{1,2}");
  if (!identity.empty() && identity != h.pop())
    return grpc::Status(StatusCode::PERMISSION_DENIED, "hello.pop: " + h.pop() +
                                                           " is not the PoP of the client "
                                                           "certificate, " +
                                                           identity);
  if (!h.host().empty() && !opts::is_host_name(h.host()))
    return grpc::Status(StatusCode::INVALID_ARGUMENT,
                        "hello.host: " + quote(h.host()) +
                            " is not a host name: 1 to 63 of a-z, 0-9 and '-', not first or last");
  if (!h.iata().empty() && (h.iata().size() != 3 || !is_pop_id(h.iata() + "0")))
    return grpc::Status(StatusCode::INVALID_ARGUMENT,
                        "hello.iata: \"" + h.iata() + "\" is not an IATA code ([A-Z]{3})");
  if (!std::isfinite(h.latitude()) || std::fabs(h.latitude()) > 90)
    return grpc::Status(StatusCode::INVALID_ARGUMENT, "hello.latitude: outside -90..90");
  if (!std::isfinite(h.longitude()) || std::fabs(h.longitude()) > 180)
    return grpc::Status(StatusCode::INVALID_ARGUMENT, "hello.longitude: outside -180..180");
  tunnel.Clear();
  if (!h.tunnel_source().ipv4().empty()) {
    auto a = IpAddress::parse(h.tunnel_source().ipv4());
    if (!a || !a->is_v4())
      return grpc::Status(
          StatusCode::INVALID_ARGUMENT,
          "hello.tunnel_source.ipv4: \"" + h.tunnel_source().ipv4() + "\" is not an IPv4 address");
    tunnel.set_ipv4(a->to_string());
  }
  if (!h.tunnel_source().ipv6().empty()) {
    auto a = IpAddress::parse(h.tunnel_source().ipv6());
    if (!a || a->is_v4())
      return grpc::Status(
          StatusCode::INVALID_ARGUMENT,
          "hello.tunnel_source.ipv6: \"" + h.tunnel_source().ipv6() + "\" is not an IPv6 address");
    tunnel.set_ipv6(a->to_string());
  }
  return grpc::Status::OK;
}

bool same_tunnel(const v1::TunnelSource& a, const v1::TunnelSource& b) {
  return a.ipv4() == b.ipv4() && a.ipv6() == b.ipv6();
}

// The routing memory as the store keeps it: RouteInputs with only `memory`.
std::string saved_memory(const RouteMemory& memory) {
  v1::RouteInputs kept;
  memory_to_proto(memory, *kept.mutable_memory());
  return kept.SerializeAsString();
}

}  // namespace

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void PopRegistry::Actions::run() {
  for (auto& [sink, status] : closes) sink->close(status);
  for (auto& [sink, message] : sends) sink->send(std::move(message));
}

PopRegistry::PopRegistry(ConfigStore& store, const RouteComputer& computer, const Clock& clock)
    : store_(store), computer_(computer), clock_(clock), rng_(std::random_device{}()) {}

PopRegistry::~PopRegistry() {
  if (measurements_ != &local_measurements_) measurements_->follow({});
}

void PopRegistry::set_measurements(MeasurementExchange* exchange) {
  measurements_ = exchange ? exchange : &local_measurements_;
  measurements_->follow([this](const std::string& pop) { shared_changed(pop); });
  // What is stored already (PoPs connected to other replicas).
  Actions actions;
  {
    std::lock_guard lock(mu_);
    for (const auto& [pop, snapshot] : measurements_->all()) take_shared_locked(pop, actions);
  }
  actions.run();
}

void PopRegistry::shared_changed(const std::string& pop) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    take_shared_locked(pop, actions);
  }
  actions.run();
}

bool PopRegistry::share_locked(const PopState& st, Actions& actions) {
  SharedSnapshot snapshot;
  if (st.connected()) {
    auto m = std::make_shared<v1::SharedMeasurements>();
    m->set_pop(st.pop.id());
    *m->mutable_tunnel_source() = st.pop.tunnel_source();
    m->set_dataplane_healthy(st.pop.dataplane_healthy());
    m->set_bgp_announced(st.pop.bgp_announced());
    // Its first host's report (by name): the hosts of one PoP measure from
    // one place, and one report keeps what is shared as it was before hosts.
    *m->mutable_probes() = st.hosts.begin()->second.shared_probes;
    for (const auto& [name, host] : st.hosts)
      if (!same_tunnel(host.host.tunnel_source(), st.pop.tunnel_source()))
        *m->add_host_tunnel_sources() = host.host.tunnel_source();
    snapshot = std::move(m);
  }
  return measurements_->publish(st.pop.id(), std::move(snapshot)) &&
         take_shared_locked(st.pop.id(), actions);
}

bool PopRegistry::take_shared_locked(const std::string& pop, Actions& actions) {
  SharedSnapshot now = measurements_->get(pop);
  auto it = shared_.find(pop);
  SharedSnapshot before = it == shared_.end() ? nullptr : it->second.snapshot;
  if (now == before) return false;
  // Connected or not, eligible or not, reachable where: every PoP may
  // start or stop relaying through it. Otherwise only its measurements
  // moved, which are the relayed leg of the PoPs relaying through it.
  const bool eligibility = !now || !before ||
                           before->dataplane_healthy() != now->dataplane_healthy() ||
                           before->bgp_announced() != now->bgp_announced() ||
                           !same_tunnel(before->tunnel_source(), now->tunnel_source()) ||
                           !same_host_tunnels(*before, *now);
  if (now) {
    SharedPeer& peer = shared_[pop];
    peer.snapshot = now;
    peer.health = health_from_report(now->probes());
    // A PoP registered through another replica is known here too: every
    // replica gives a PoP the same peers.
    auto [known, created] = pops_.try_emplace(pop);
    if (created) {
      known->second.pop.set_id(pop);
      known->second.pop.set_state(v1::POP_DISCONNECTED);
      log::info("learned from another replica's measurements", {{"pop", pop}});
    }
    if (!known->second.connected() &&
        !same_tunnel(known->second.pop.tunnel_source(), now->tunnel_source())) {
      *known->second.pop.mutable_tunnel_source() = now->tunnel_source();
      std::lock_guard tunnels(tunnels_mu_);
      tunnels_[pop] = now->tunnel_source();
    }
  } else {
    shared_.erase(pop);
  }
  {
    std::lock_guard tunnels(tunnels_mu_);
    if (now && now->host_tunnel_sources_size() > 0)
      host_tunnels_[pop].assign(now->host_tunnel_sources().begin(),
                                now->host_tunnel_sources().end());
    else
      host_tunnels_.erase(pop);
  }
  // The newest snapshot for each, as refresh_peers_of takes it.
  for (auto& [id, other] : pops_)
    if (other.connected() && id != pop && (eligibility || relays_through(other, pop)))
      refresh(other, *store_.snapshot(), actions);
  return eligibility;
}

void PopRegistry::load() {
  std::lock_guard lock(mu_);
  for (PopRecord& r : store_.pops()) {
    PopState& st = pops_[r.pop.id()];
    st.pop = std::move(r.pop);
    st.pop.set_state(v1::POP_DISCONNECTED);
    st.pop.set_dataplane_healthy(false);
    st.pop.set_bgp_announced(false);
    st.applied_digest = std::move(r.applied_digest);
    st.nacked_digest = std::move(r.nacked_digest);
    std::lock_guard tunnels(tunnels_mu_);
    tunnels_[st.pop.id()] = st.pop.tunnel_source();
    v1::RouteInputs kept;
    if (!r.route_memory.empty() && kept.ParseFromString(r.route_memory)) {
      st.memory = memory_from_proto(kept.memory());
      st.saved_memory = std::move(r.route_memory);
    }
  }
}

std::string PopRegistry::nonce() {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng_()),
                static_cast<unsigned long long>(rng_()));
  return buf;
}

// A version for new content of this PoP: the configuration version, unless
// the PoP already knows that number with other content (its tunnel sources
// changed, or the database is younger than the agent's table). Then the
// configuration version is bumped, so every (PoP, version) names one table.
uint64_t PopRegistry::fresh_version(uint64_t wanted, const PopState& st) {
  bool named = wanted == st.version || wanted == st.pop.applied_version() ||
               wanted == st.pop.nacked_version();
  uint64_t known = std::max({st.version, st.pop.applied_version(), st.pop.nacked_version()});
  for (const auto& [name, host] : st.hosts) {
    named = named || wanted == host.host.applied_version();
    known = std::max(known, host.host.applied_version());
  }
  if (!named) return wanted;
  // The store may be past every version this PoP knows already (another
  // PoP's bump in the same push, another replica's commit): that version
  // names nothing for this PoP yet, so it needs no commit of its own. On
  // etcd each commit is a raft write that every replica reads back.
  if (const uint64_t newest = store_.snapshot()->version; newest > known) return newest;
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto cfg = store_.snapshot();
    CommitResult r = store_.commit(ConfigChange{}, cfg->version);
    if (r.outcome == CommitResult::Outcome::committed) {
      log::info(
          "its table changed outside the configuration (probe verdicts, tunnel sources): "
          "configuration version bumped",
          {{"pop", st.pop.id()}, {"config_version", r.config->version}});
      return r.config->version;
    }
    if (r.outcome == CommitResult::Outcome::failed ||
        r.outcome == CommitResult::Outcome::unavailable) {
      log::error("cannot bump the configuration version",
                 {{"pop", st.pop.id()}, {"error", r.error}});
      break;
    }
  }
  return wanted;
}

PopContext PopRegistry::context_of(const PopState& st) const {
  PopContext ctx{.id = st.pop.id(), .tunnel_source = st.pop.tunnel_source()};
  for (const auto& [id, other] : pops_) {
    if (&other == &st) continue;
    // Connected to some replica: its stored snapshot, the same on every
    // replica, whichever holds its session (this one's included).
    auto shared = shared_.find(id);
    const SharedPeer* peer = shared == shared_.end() ? nullptr : &shared->second;
    const v1::TunnelSource& tunnel =
        peer ? peer->snapshot->tunnel_source() : other.pop.tunnel_source();
    if (tunnel.ipv4().empty() && tunnel.ipv6().empty()) continue;
    ctx.peers.push_back(PeerPop{
        .id = id,
        .tunnel_source = tunnel,
        .host_tunnel_sources =
            peer ? std::vector<v1::TunnelSource>(peer->snapshot->host_tunnel_sources().begin(),
                                                 peer->snapshot->host_tunnel_sources().end())
                 : std::vector<v1::TunnelSource>{},
        .connected = peer != nullptr,
        .dataplane_healthy = peer && peer->snapshot->dataplane_healthy(),
        .bgp_announced = peer && peer->snapshot->bgp_announced(),
        .health = peer ? &peer->health : nullptr});
  }
  return ctx;
}

bool PopRegistry::relays_through(const PopState& st, const std::string& relay) {
  for (const auto& [listener, m] : st.memory)
    for (const auto& [group, path] : m.paths)
      if (path.via == relay) return true;
  return false;
}

void PopRegistry::refresh_peers_of(const PopState& changed, Actions& actions) {
  // The newest snapshot for each: a PoP whose table changed outside the
  // configuration bumps its version once, and the next PoP's table takes
  // that version instead of bumping it again.
  for (auto& [id, st] : pops_)
    if (st.connected() && &st != &changed) refresh(st, *store_.snapshot(), actions);
}

void PopRegistry::refresh(PopState& st, const Config& config, Actions& actions, bool new_round,
                          bool hold) {
  PopContext ctx = context_of(st);
  PopRoutes routes = computer_.compute(config, ctx, &st.health, &st.memory, new_round);
  for (const v1::ListenerRoute& lr : routes.listeners) {
    std::string name = table_listener_name(lr.accelerator(), lr.listener());
    auto before = st.memory.find(name);
    bool was_open = before != st.memory.end() && before->second.fail_open;
    const ListenerMemory& now = routes.memory[name];
    if (metrics_) {
      if (lr.fail_open() != was_open)
        metrics_->route_change(st.pop.id(), lr.fail_open() ? "fail_open" : "fail_open_cleared");
      if (before != st.memory.end() && !before->second.primary.empty() &&
          before->second.primary != now.primary && !now.primary.empty())
        metrics_->route_change(st.pop.id(), "nearest_group");
    }
    if (lr.fail_open() && !was_open)
      log::warn(
          "listener fails open: no healthy endpoint in any group; every new flow goes to the "
          "nearest group",
          {{"pop", st.pop.id()}, {"listener", name}, {"fail_open_count", now.fail_open_entered}});
    else if (!lr.fail_open() && was_open)
      log::info("listener no longer fails open: an endpoint is healthy",
                {{"pop", st.pop.id()}, {"listener", name}});
    if (before != st.memory.end() && !before->second.primary.empty() &&
        before->second.primary != now.primary && !now.primary.empty())
      log::info("nearest group changed", {{"pop", st.pop.id()},
                                          {"listener", name},
                                          {"group", now.primary},
                                          {"was", before->second.primary}});
  }
  st.memory = std::move(routes.memory);
  if (std::string m = saved_memory(st.memory); m != st.saved_memory) {
    st.saved_memory = std::move(m);
    st.dirty = true;
  }
  if (hold && !st.digest.empty() && content_digest(routes.table, routes.probe_plan) != st.digest)
    return;  // the table, its explanation and its version stay as they are
  st.routes = std::make_shared<const std::vector<v1::ListenerRoute>>(std::move(routes.listeners));
  if (auto spec = check_table(routes.table); !spec.ok()) {
    // A bug, not an operator's mistake: validation should have refused the
    // configuration. The PoP keeps its table.
    log::error("table fails the dataplane's validation, not sent",
               {{"pop", st.pop.id()},
                {"config_version", config.version},
                {"error", "table." + spec.error()}});
    return;
  }
  std::string digest = content_digest(routes.table, routes.probe_plan);
  if (digest != st.digest) {
    // The first computation of a PoP since the controller started is no
    // change; later ones are due to a probe round or to the configuration.
    if (metrics_ && !st.digest.empty())
      metrics_->route_change(st.pop.id(), new_round ? "probes" : "configuration");
    // The applied version names this content only while nothing newer was
    // sent: content that comes back while a newer table is on its way (a
    // peer reconnecting before the PoP's ACK) gets a fresh version, never
    // the older one the agent would refuse as going backwards.
    if (st.pop.applied_version() && digest == st.applied_digest &&
        st.pop.applied_version() >= st.version)
      st.version = st.pop.applied_version();
    else if (st.pop.nacked_version() && digest == st.nacked_digest)
      st.version = st.pop.nacked_version();
    else
      st.version = fresh_version(config.version, st);
    st.digest = digest;
    st.table = std::move(routes.table);
    st.table.set_version(st.version);
    st.probe_plan = std::move(routes.probe_plan);
  }
  // What the PoP should run, sent this session or already running (after a
  // controller restart nothing needs sending): ListPops shows it as sent.
  st.pop.set_sent_version(st.version);
  maybe_send(st, config, actions);
}

const v1::RouteInputs& PopRegistry::slice_of(const Config& config) {
  if (!slice_ || slice_version_ != config.version) {
    v1::RouteInputs next = config_slice(config);
    if (slice_) {
      v1::RouteInputs before = *slice_;
      before.set_config_version(next.config_version());
      if (!google::protobuf::util::MessageDifferencer::Equals(before, next))
        slice_since_ = config.version;
    } else {
      slice_since_ = config.version;
    }
    slice_ = std::move(next);
    slice_version_ = config.version;
  }
  return *slice_;
}

void PopRegistry::maybe_send(PopState& st, const Config& config, Actions& actions) {
  if (st.digest.empty()) return;
  for (auto& [name, host] : st.hosts) maybe_send(st, host, config, actions);
}

// Every host of a PoP gets the same message but its nonce: the table holds
// nothing of one host (its tunnel sources and next hop are the agent's, put
// in on the host), so the hosts' dataplanes decide every flow alike.
void PopRegistry::maybe_send(PopState& st, HostState& host, const Config& config,
                             Actions& actions) {
  // A host that runs the table is sent it again only when the route inputs
  // it keeps are from an older configuration (a change that left its table
  // as it was): it must not route on its own from a stale one.
  slice_of(config);
  const bool inputs_current = host.inputs_version >= slice_since_;
  if (st.version == host.host.applied_version() && st.digest == host.applied_digest &&
      inputs_current)
    return;
  // Refused once: wait for different content rather than loop on a NACK.
  if (st.version == st.pop.nacked_version() && st.digest == st.nacked_digest) return;
  if (st.version == host.session_sent_version && host.session_sent_inputs >= slice_since_) return;
  v1::ControllerMessage msg;
  v1::TableUpdate* u = msg.mutable_update();
  u->set_version(st.version);
  u->set_nonce(nonce());
  *u->mutable_table() = st.table;
  *u->mutable_probe_plan() = st.probe_plan;
  u->set_created_ms(now_ms());
  const StoreIdentity identity = store_.identity();
  u->set_store_id(identity.store_id);
  u->set_epoch(identity.epoch);
  u->set_adopt(st.pop.adopt_pending());
  // What the table was computed from, for the agent to route on its own
  // while this controller is away: the table is a function of these and the
  // PoP's probes.
  *u->mutable_route_inputs() =
      route_inputs(slice_of(config), context_of(st), st.memory, computer_.policy());
  host.outstanding[u->nonce()] = Sent{st.version, u->created_ms(), st.digest, config.version};
  while (host.outstanding.size() > kMaxOutstanding) {
    auto oldest = host.outstanding.begin();
    for (auto it = host.outstanding.begin(); it != host.outstanding.end(); ++it)
      if (it->second.version < oldest->second.version) oldest = it;
    host.outstanding.erase(oldest);
  }
  host.session_sent_version = st.version;
  host.session_sent_inputs = config.version;
  st.pop.set_sent_version(st.version);
  log::info("sending table", {{"pop", st.pop.id()},
                              {"host", host.host.name()},
                              {"version", st.version},
                              {"adopt", u->adopt()},
                              {"listeners", st.table.listeners_size()},
                              {"nonce", u->nonce()}});
  actions.sends.emplace_back(host.sink, std::move(msg));
}

bool PopRegistry::sync_applied(PopState& st) {
  if (st.hosts.empty()) return false;
  const HostState& first = st.hosts.begin()->second;
  for (const auto& [name, host] : st.hosts)
    if (host.host.applied_version() != first.host.applied_version() ||
        host.applied_digest != first.applied_digest)
      return false;
  if (st.pop.applied_version() != first.host.applied_version() ||
      st.applied_digest != first.applied_digest) {
    st.pop.set_applied_version(first.host.applied_version());
    st.applied_digest = first.applied_digest;
    st.dirty = true;
  }
  return true;
}

void PopRegistry::merge_hosts(PopState& st) {
  std::vector<const PopHealth*> views;
  bool dataplane = false, bgp = false;
  const v1::PopHost* next_hop = nullptr;
  for (const auto& [name, host] : st.hosts) {
    views.push_back(&host.health);
    dataplane = dataplane || host.host.dataplane_healthy();
    bgp = bgp || host.host.bgp_announced();
    // The PoP's next hop is its first unresolved host's, else its first
    // host's that reported one: a host that cannot send is what to see.
    const std::string& source = host.host.next_hop_source();
    if (!source.empty() &&
        (!next_hop || (source == "unresolved" && next_hop->next_hop_source() != "unresolved")))
      next_hop = &host.host;
  }
  st.health = views.empty() ? PopHealth{} : PopHealth::merged(views);
  st.pop.set_dataplane_healthy(dataplane);
  st.pop.set_bgp_announced(bgp);
  st.pop.set_next_hop_source(next_hop ? next_hop->next_hop_source() : "");
  st.pop.set_next_hop_mac(next_hop ? next_hop->next_hop_mac() : "");
  st.pop.set_next_hop_address(next_hop ? next_hop->next_hop_address() : "");
}

grpc::Status PopRegistry::hello(const std::shared_ptr<TableSink>& sink, const std::string& identity,
                                const v1::Hello& h) {
  v1::TunnelSource tunnel;
  if (grpc::Status s = check_hello(identity, h, tunnel); !s.ok()) {
    log::warn("hello refused",
              {{"pop", identity.empty() ? h.pop() : identity}, {"error", s.error_message()}});
    return s;
  }
  // Replicas: the PoP's session may have been on another one, whose
  // routing memory (relays and nearest groups that won their rounds) is
  // in the store; without it the first table here could differ from the
  // one the PoP runs. Read before the lock: the store may be remote.
  std::optional<PopRecord> stored;
  if (measurements_ != &local_measurements_)
    for (PopRecord& r : store_.pops())
      if (r.pop.id() == h.pop()) stored = std::move(r);
  Actions actions;
  {
    std::lock_guard lock(mu_);
    auto [it, created] = pops_.try_emplace(h.pop());
    PopState& st = it->second;
    if (created) {
      st.pop.set_id(h.pop());
      log::info("registered", {{"pop", h.pop()}});
    }
    SharedSnapshot moved_from;
    // A PoP moving from another replica keeps its status as that replica
    // shared it until its first PopStatus here: its dataplane did not
    // change because its controller did, and a relay must not be dropped
    // by the move.
    if (auto shared = shared_.find(h.pop()); shared != shared_.end() && !st.connected())
      moved_from = shared->second.snapshot;
    if (stored && !st.connected() && stored->route_memory != st.saved_memory) {
      v1::RouteInputs kept;
      if (!stored->route_memory.empty() && kept.ParseFromString(stored->route_memory)) {
        st.memory = memory_from_proto(kept.memory());
        st.saved_memory = std::move(stored->route_memory);
      }
    }
    // The PoP's first host: no other host is connected (a new session of
    // its only host is a first one too, as a PoP's was before hosts).
    const bool first_host =
        st.hosts.empty() || (st.hosts.size() == 1 && st.hosts.begin()->first == h.host());
    auto [hit, new_host] = st.hosts.try_emplace(h.host());
    HostState& host = hit->second;
    if (!new_host && host.sink != sink) {
      log::warn("a new session replaces the current one", {{"pop", h.pop()}, {"host", h.host()}});
      actions.closes.emplace_back(
          host.sink, grpc::Status(StatusCode::ABORTED,
                                  "superseded by a newer session of " + h.pop() +
                                      (h.host().empty() ? std::string() : " host " + h.host())));
    }
    host = HostState{};
    host.sink = sink;
    host.host.set_name(h.host());
    host.host.set_agent_version(h.agent_version());
    *host.host.mutable_tunnel_source() = tunnel;
    host.host.set_connected_ms(now_ms());
    host.host.set_last_seen_ms(host.host.connected_ms());
    if (moved_from) {
      host.host.set_dataplane_healthy(moved_from->dataplane_healthy());
      host.host.set_bgp_announced(moved_from->bgp_announced());
    }
    // The PoP's tunnel sources (its peers' relay_peers, the table's) stay
    // while a connected host has them, so that hosts coming and going do
    // not change the table; the first host of a PoP sets them.
    bool keep_tunnel = false;
    for (const auto& [name, other] : st.hosts)
      keep_tunnel = keep_tunnel || (&other != &host && same_tunnel(other.host.tunnel_source(),
                                                                   st.pop.tunnel_source()));
    bool tunnel_changed = !keep_tunnel && !same_tunnel(st.pop.tunnel_source(), tunnel);
    if (tunnel_changed) {
      *st.pop.mutable_tunnel_source() = tunnel;
      std::lock_guard tunnels(tunnels_mu_);
      tunnels_[h.pop()] = tunnel;
    }
    st.pop.set_iata(h.iata());
    st.pop.set_city(h.city());
    st.pop.set_country(h.country());
    st.pop.set_latitude(h.latitude());
    st.pop.set_longitude(h.longitude());
    st.pop.set_agent_version(h.agent_version());
    st.pop.set_state(v1::POP_CONNECTED);
    st.pop.set_last_seen_ms(now_ms());
    // The agent knows what its dataplane runs; believe it over the record,
    // content included: a host that reports the version the record has but
    // another digest, or none (its last good table failed its check at
    // start, or an older agent), is sent the table again.
    host.host.set_applied_version(h.applied_version());
    host.applied_digest = h.applied_digest().substr(0, 16);
    if (first_host && (h.applied_version() != st.pop.applied_version() ||
                       h.applied_digest() != st.applied_digest)) {
      if (!h.applied_digest().empty() && h.applied_digest() != st.applied_digest)
        log::warn("its agent reports other content than the controller recorded: table re-sent",
                  {{"pop", h.pop()},
                   {"host", h.host()},
                   {"applied_version", h.applied_version()},
                   {"applied_digest", printable(h.applied_digest(), 16)},
                   {"recorded_digest", st.applied_digest}});
      else if (h.applied_digest().empty() && h.applied_version() != 0)
        log::warn("its agent cannot vouch for the content it runs: table re-sent",
                  {{"pop", h.pop()}, {"host", h.host()}, {"applied_version", h.applied_version()}});
    }
    if (tunnel_changed && !created)
      log::info("tunnel sources changed",
                {{"pop", h.pop()}, {"ipv4", tunnel.ipv4()}, {"ipv6", tunnel.ipv6()}});
    // The host's verdicts as they are now, so that its first table is not
    // computed from an empty view (every endpoint healthy).
    if (h.has_probes()) {
      PopHealth::Update u = host.health.replace(h.probes(), now_ms());
      if (u.dropped)
        log::warn("probe results without accelerator, listener, group or address dropped",
                  {{"pop", h.pop()}, {"host", h.host()}, {"dropped", u.dropped}});
    }
    host.shared_probes = shared_probes(h.probes());
    // The memory that made the table the PoP's first host runs: what the
    // store holds may be older (flushed once a second, so a controller
    // killed just after a nearest-group change lost that change), and the
    // host's own rounds are newer. Computed by the same rule from the same
    // verdicts, our table equals the one it runs and nothing is sent;
    // otherwise the new content gets a new version.
    if (first_host && h.route_memory_size()) st.memory = memory_from_proto(h.route_memory());
    if (!h.local_digest().empty()) {
      // The host routed on its own while this controller was away: its
      // dataplane runs applied_version with the agent's content.
      host.applied_digest = h.local_digest().substr(0, 16);
      if (first_host) st.digest.clear();
      log::info("its agent routed on its own while the controller was away",
                {{"pop", h.pop()},
                 {"host", h.host()},
                 {"applied_version", h.applied_version()},
                 {"local_digest", host.applied_digest}});
    }
    if (first_host) {
      st.pop.set_own_table(!h.local_digest().empty());
      st.pop.set_applied_version(h.applied_version());
      st.applied_digest = host.applied_digest;
    } else {
      sync_applied(st);
    }
    host.inputs_version = h.route_inputs_version();
    host.first_round = true;
    host.first_round_push = clock_.now();
    merge_hosts(st);
    st.dirty = true;
    log::info("connected", {{"pop", h.pop()},
                            {"host", h.host()},
                            {"hosts", st.hosts.size()},
                            {"agent_version", h.agent_version().empty() ? "?" : h.agent_version()},
                            {"applied_version", h.applied_version()}});
    auto config = store_.snapshot();
    refresh(st, *config, actions);
    // Every other PoP probes the new one, and may relay through it once
    // the exchange stores it; a host joining a connected PoP changes nothing
    // for them unless it moved the PoP's tunnel sources or sends from a
    // tunnel source of its own (their relay_peers accept it).
    if (!share_locked(st, actions) && (first_host || tunnel_changed)) refresh_peers_of(st, actions);
  }
  actions.run();
  return grpc::Status::OK;
}

std::pair<PopRegistry::PopState*, PopRegistry::HostState*> PopRegistry::heard_from(
    const TableSink* sink, const std::string& pop) {
  auto it = pops_.find(pop);
  if (it == pops_.end()) return {nullptr, nullptr};
  for (auto& [name, host] : it->second.hosts)
    if (host.sink.get() == sink) {
      const int64_t now = now_ms();
      it->second.pop.set_last_seen_ms(now);
      host.host.set_last_seen_ms(now);
      return {&it->second, &host};
    }
  return {nullptr, nullptr};
}

void PopRegistry::ack(const TableSink* sink, const std::string& pop, const v1::TableAck& ack) {
  std::lock_guard lock(mu_);
  auto [found, host] = heard_from(sink, pop);
  if (!found) return;
  PopState& st = *found;
  const std::string& name = host->host.name();
  int64_t now = st.pop.last_seen_ms();
  auto sent = host->outstanding.find(ack.nonce());
  if (sent == host->outstanding.end()) {
    log::warn(ack.ok() ? "ACK with unknown nonce ignored" : "NACK with unknown nonce ignored",
              {{"pop", pop}, {"host", name}, {"version", ack.version()}, {"nonce", ack.nonce()}});
    return;
  }
  Sent s = sent->second;
  if (ack.version() != s.version)
    log::warn("ACK/NACK names another version than its nonce's; the nonce decides",
              {{"pop", pop},
               {"host", name},
               {"version", ack.version()},
               {"nonce", ack.nonce()},
               {"nonce_version", s.version}});
  if (ack.ok()) {
    host->host.set_applied_version(s.version);
    host->applied_digest = s.digest;
    host->inputs_version = std::max(host->inputs_version, s.inputs_version);
    int64_t latency = std::max<int64_t>(0, now - s.created_ms);
    const auto latency_ms = static_cast<uint32_t>(std::min<int64_t>(latency, UINT32_MAX));
    host->host.set_last_apply_latency_ms(latency_ms);
    if (metrics_) metrics_->acked(pop, name, static_cast<double>(latency) / 1000.0);
    log::info("applied table", {{"pop", pop},
                                {"host", name},
                                {"version", s.version},
                                {"latency_ms", latency},
                                {"agent_apply_ms", ack.apply_ms()}});
    // The PoP runs the table once every connected host does; its latency
    // is the last host's.
    if (sync_applied(st)) {
      st.pop.set_last_apply_latency_ms(latency_ms);
      st.pop.set_nacked_version(0);
      st.pop.clear_nack_error();
      st.pop.set_own_table(false);
      st.pop.set_adopt_pending(false);
      st.nacked_digest.clear();
    }
  } else {
    st.pop.set_nacked_version(s.version);
    // What an agent says is cut to a bound: a 4 MB NACK once broke `pop list`.
    st.pop.set_nack_error(printable(ack.error(), kMaxErrorBytes));
    st.nacked_digest = s.digest;
    if (metrics_) metrics_->nacked(pop);
    log::warn("refused table", {{"pop", pop},
                                {"host", name},
                                {"version", s.version},
                                {"keeps_version", host->host.applied_version()},
                                {"error", ack.error()}});
  }
  // A NACK keeps its own nonce: an agent whose dataplane did not answer
  // NACKs ("the table will be applied when it answers") and ACKs the same
  // nonce once it has applied the table. Dropped, that late ACK was ignored
  // and the PoP never counted as in sync (the chaos suite's dataplane kill).
  for (auto o = host->outstanding.begin(); o != host->outstanding.end();) {
    bool done = ack.ok() ? o->second.version <= s.version : o->second.version < s.version;
    o = done ? host->outstanding.erase(o) : std::next(o);
  }
  st.dirty = true;
}

void PopRegistry::status(const TableSink* sink, const std::string& pop,
                         const v1::PopStatus& status) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    auto [found, host] = heard_from(sink, pop);
    if (!found) return;
    status_locked(*found, *host, status, actions);
  }
  actions.run();
}

void PopRegistry::status_locked(PopState& st, HostState& host, const v1::PopStatus& status,
                                Actions& actions) {
  const std::string& pop = st.pop.id();
  const std::string& name = host.host.name();
  int64_t now = st.pop.last_seen_ms();
  if (host.host.dataplane_healthy() != status.dataplane_healthy())
    log::write(status.dataplane_healthy() ? log::Level::info : log::Level::warn,
               status.dataplane_healthy() ? "dataplane healthy" : "dataplane unhealthy",
               {{"pop", pop}, {"host", name}});
  host.host.set_dataplane_healthy(status.dataplane_healthy());
  host.host.set_bgp_announced(status.bgp_announced());
  if (status.has_stats()) {
    const v1::NextHop& nh = status.stats().next_hop();
    if (host.host.next_hop_source() != nh.source() && nh.source() == "unresolved")
      log::warn("next hop unresolved", {{"pop", pop}, {"host", name}, {"address", nh.address()}});
    host.host.set_next_hop_source(nh.source());
    host.host.set_next_hop_mac(nh.mac());
    host.host.set_next_hop_address(nh.address());
    v1::PopStats s;
    s.set_pop(pop);
    s.set_host(name);
    *s.mutable_stats() = status.stats();
    s.set_reported_ms(status.time_ms() ? status.time_ms() : now);
    host.stats = std::move(s);
  }
  // Whether the PoP may relay changes with either (one host healthy and
  // announced is enough): the others are recomputed now, so one relaying
  // through it falls back to direct in the push this status causes (on
  // etcd, once the exchange stores it).
  const bool dataplane = st.pop.dataplane_healthy(), bgp = st.pop.bgp_announced();
  merge_hosts(st);
  if (dataplane != st.pop.dataplane_healthy() || bgp != st.pop.bgp_announced())
    (void)share_locked(st, actions);
}

void PopRegistry::probes(const TableSink* sink, const std::string& pop,
                         const v1::ProbeReport& report) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    auto [found, host] = heard_from(sink, pop);
    if (!found) return;
    PopState& st = *found;
    const std::string& name = host->host.name();
    int64_t now = st.pop.last_seen_ms();
    PopHealth::Update u = host->health.replace(report, now);
    host->shared_probes = shared_probes(report);
    if (u.dropped)
      log::warn("probe results without accelerator, listener, group or address dropped",
                {{"pop", pop},
                 {"host", name},
                 {"dropped", u.dropped},
                 {"dropped_this_session", host->health.dropped_total()}});
    if (u.verdict_changed)
      log::info("probe verdicts changed: routes recomputed", {{"pop", pop}, {"host", name}});
    merge_hosts(st);
    // Every report is one round: the PoP alone is recomputed, and its table
    // sent at once when the content changed; except while the session's
    // first round trickles in: an agent that restarts with thousands of
    // targets would otherwise cause one table (and one configuration
    // version) per report. A flipped verdict is a failover and goes at once.
    bool hold = false;
    if (host->first_round) {
      const Clock::time_point at = clock_.now();
      if (u.unknown == 0) {
        host->first_round = false;
        log::info("first probe round complete", {{"pop", pop}, {"host", name}});
      } else if (!u.verdict_flipped && at - host->first_round_push < kFirstVerdictHold) {
        hold = true;
      } else {
        host->first_round_push = at;
      }
    }
    // One round per report of the PoP's first host (by name): with several
    // hosts reporting, the hysteresis still counts rounds at one agent's
    // pace; the others' reports recompute without counting one.
    const bool round = host == &st.hosts.begin()->second;
    auto config = store_.snapshot();
    refresh(st, *config, actions, round, hold);
    // The PoPs relaying through this one: its endpoint RTTs and verdicts
    // are their relayed leg, so they are recomputed with it once the
    // exchange stores them (no round of theirs: a relay that lost the
    // group is left at once).
    (void)share_locked(st, actions);
  }
  actions.run();
}

void PopRegistry::detach(const TableSink* sink, const std::string& pop) {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    auto it = pops_.find(pop);
    if (it == pops_.end()) return;
    PopState& st = it->second;
    auto host = st.hosts.begin();
    while (host != st.hosts.end() && host->second.sink.get() != sink) ++host;
    if (host == st.hosts.end()) return;  // a newer session of the host took over
    const std::string name = host->first;
    st.hosts.erase(host);
    if (!st.connected()) {
      detach_locked(st, actions);
    } else {
      // The others keep their table: nothing of the PoP is recomputed (its
      // merged view changes; the next round uses it). The hosts left may
      // now all run one version, and the PoP's flags may change.
      log::warn("host disconnected; the PoP's other hosts carry its traffic",
                {{"pop", pop}, {"host", name}, {"hosts", st.hosts.size()}});
      sync_applied(st);
      merge_hosts(st);
      // What it shares may change: its flags, the first host's report, its
      // hosts' tunnel sources.
      (void)share_locked(st, actions);
      st.dirty = true;
    }
  }
  actions.run();
}

void PopRegistry::detach_locked(PopState& st, Actions& actions) {
  const std::string& pop = st.pop.id();
  st.hosts.clear();
  st.health = PopHealth{};
  st.pop.set_state(v1::POP_DISCONNECTED);
  st.pop.set_last_seen_ms(now_ms());
  st.dirty = true;
  log::warn("disconnected; keeps forwarding on its table",
            {{"pop", pop}, {"applied_version", st.pop.applied_version()}});
  // The others stop relaying through it, in this push (they keep probing it
  // and accepting its relayed packets: it may still forward); on etcd, once
  // its snapshot is withdrawn.
  (void)share_locked(st, actions);
}

void PopRegistry::push_all() {
  Actions actions;
  {
    std::lock_guard lock(mu_);
    auto config = store_.snapshot();
    actions.sends.reserve(pops_.size());
    for (auto& [id, st] : pops_)
      if (st.connected()) refresh(st, *config, actions);
  }
  actions.run();
}

Result<v1::Pop> PopRegistry::adopt(const std::string& pop) {
  Actions actions;
  v1::Pop out;
  {
    std::lock_guard lock(mu_);
    auto it = pops_.find(pop);
    if (it == pops_.end()) return error("pop: no PoP \"" + printable(pop, 64) + "\"");
    PopState& st = it->second;
    st.pop.set_adopt_pending(true);
    // Forget the refusal, so the same content goes out again, now with the
    // flag that lets the agent take it.
    st.pop.set_nacked_version(0);
    st.nacked_digest.clear();
    for (auto& [name, host] : st.hosts) host.session_sent_version = 0;
    st.dirty = true;
    log::warn("an operator lets the PoP adopt the controller's table, backwards or not",
              {{"pop", pop}, {"connected", st.connected()}});
    if (st.connected()) refresh(st, *store_.snapshot(), actions);
    out = st.pop;
  }
  actions.run();
  return out;
}

Status PopRegistry::flush() {
  std::vector<PopRecord> records;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, st] : pops_) {
      if (!st.dirty) continue;
      st.dirty = false;
      PopRecord r{.pop = st.pop,
                  .applied_digest = st.applied_digest,
                  .nacked_digest = st.nacked_digest,
                  .route_memory = st.saved_memory};
      r.pop.clear_state();
      r.pop.clear_sent_version();
      r.pop.clear_dataplane_healthy();
      r.pop.clear_bgp_announced();
      r.pop.clear_next_hop_source();
      r.pop.clear_next_hop_mac();
      r.pop.clear_next_hop_address();
      r.pop.clear_hosts();
      records.push_back(std::move(r));
    }
  }
  Status saved = store_.put_pops(records);
  if (!saved.ok()) {
    std::lock_guard lock(mu_);
    for (const PopRecord& r : records)
      if (auto it = pops_.find(r.pop.id()); it != pops_.end()) it->second.dirty = true;
  }
  return saved;
}

bool PopRegistry::known(const std::string& pop) const {
  std::lock_guard lock(mu_);
  return pops_.count(pop) > 0;
}

v1::ListPopsResponse PopRegistry::list_pops() const {
  v1::ListPopsResponse out;
  std::lock_guard lock(mu_);
  out.set_config_version(store_.snapshot()->version);
  for (const auto& [id, st] : pops_) {
    v1::Pop& p = *out.add_pops();
    p = st.pop;
    for (const auto& [name, host] : st.hosts) *p.add_hosts() = host.host;
    if (st.connected()) p.set_replica(measurements_->replica());
    // Connected to another replica: its snapshot is stored while that
    // replica holds the session (its lease), so every replica lists it
    // alike.
    if (auto shared = shared_.find(id); !st.connected() && shared != shared_.end()) {
      p.set_state(v1::POP_CONNECTED);
      p.set_dataplane_healthy(shared->second.snapshot->dataplane_healthy());
      p.set_bgp_announced(shared->second.snapshot->bgp_announced());
      p.set_replica(shared->second.snapshot->replica());
    }
  }
  return out;
}

v1::GetPopMatrixResponse PopRegistry::matrix() const {
  v1::GetPopMatrixResponse out;
  std::lock_guard lock(mu_);
  // The mesh rows of PoPs connected to other replicas, as they share them.
  for (const auto& [id, shared] : shared_) {
    auto local = pops_.find(id);
    if (local != pops_.end() && local->second.connected()) continue;
    for (const v1::PeerResult& r : shared.snapshot->probes().peers()) {
      v1::PopPath* p = out.add_paths();
      p->set_from(id);
      p->set_to(r.pop());
      p->set_address(r.address());
      p->set_rtt_ms(r.rtt_ms());
      p->set_loss_percent(r.loss_percent());
      p->set_down(r.down());
      p->set_reported_ms(shared.snapshot->probes().time_ms());
    }
  }
  for (const auto& [id, st] : pops_) {
    if (!st.connected()) continue;
    for (const auto& [peer, r] : st.health.peers()) {
      v1::PopPath* p = out.add_paths();
      p->set_from(id);
      p->set_to(peer);
      p->set_address(r.address());
      p->set_rtt_ms(r.rtt_ms());
      p->set_jitter_ms(r.jitter_ms());
      p->set_loss_percent(r.loss_percent());
      p->set_sent(r.sent());
      p->set_down(r.down());
      p->set_reported_ms(st.health.reported_ms());
    }
    if (!st.routes) continue;
    // A region's RTT is its nearest measured group's, over every listener.
    std::map<std::string, double> regions;
    for (const v1::ListenerRoute& l : *st.routes)
      for (const v1::GroupRoute& g : l.groups()) {
        const std::string& region = g.region().empty() ? g.endpoint_group() : g.region();
        double rtt = g.direct_rtt_ms() >= 0 || !g.via().empty() ? g.direct_rtt_ms() : g.rtt_ms();
        auto [it, fresh] = regions.try_emplace(region, rtt);
        if (rtt >= 0 && (it->second < 0 || rtt < it->second)) it->second = rtt;
      }
    for (const auto& [region, rtt] : regions) {
      v1::PopRegionRtt* r = out.add_regions();
      r->set_pop(id);
      r->set_region(region);
      r->set_rtt_ms(rtt);
    }
  }
  return out;
}

std::map<std::string, std::shared_ptr<const std::vector<v1::ListenerRoute>>>
PopRegistry::latest_routes() const {
  std::map<std::string, std::shared_ptr<const std::vector<v1::ListenerRoute>>> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, st] : pops_) out.emplace(id, st.routes);
  return out;
}

std::map<std::string, v1::TunnelSource> PopRegistry::tunnel_sources() const {
  std::lock_guard lock(tunnels_mu_);
  return tunnels_;
}

std::map<std::string, std::vector<v1::TunnelSource>> PopRegistry::host_tunnel_sources() const {
  std::lock_guard lock(tunnels_mu_);
  return host_tunnels_;
}

Result<PopView> PopRegistry::view(const std::string& pop) const {
  std::lock_guard lock(mu_);
  auto it = pops_.find(pop);
  if (it == pops_.end()) return error("pop: no PoP \"" + pop + "\"");
  const PopState& st = it->second;
  PopView out;
  out.config = store_.snapshot();
  // The live computation, as the next round would see it without counting
  // one.
  out.routes = computer_.compute(*out.config, context_of(st), &st.health, &st.memory, false);
  // The PoP's version when the content is what it was last given; the
  // configuration version when a push is still due.
  bool current = content_digest(out.routes.table, out.routes.probe_plan) == st.digest;
  out.routes.table.set_version(current ? st.version : out.config->version);
  out.applied_version = st.pop.applied_version();
  return out;
}

Result<TraceView> PopRegistry::trace_view(const std::string& pop) const {
  std::lock_guard build(trace_build_mu_);
  TraceView out;
  v1::ForwardingTable table;
  std::string digest;
  {
    std::lock_guard lock(mu_);
    auto it = pops_.find(pop);
    if (it == pops_.end()) return error("pop: no PoP \"" + pop + "\"");
    const PopState& st = it->second;
    out.config = store_.snapshot();
    out.applied_version = st.pop.applied_version();
    out.routes = st.routes;
    if (!st.digest.empty() && st.explainable_digest == st.digest) {
      out.table = st.explainable;
      out.version = st.version;
      return out;
    }
    digest = st.digest;
    if (!digest.empty()) {
      table = st.table;
      out.version = st.version;
    }
  }
  if (digest.empty()) {
    // Nothing computed since the controller started (the PoP has not
    // connected): the live computation, not kept.
    auto live = view(pop);
    if (!live.ok()) return live.status();
    table = std::move(live->routes.table);
    out.version = table.version();
    out.routes =
        std::make_shared<const std::vector<v1::ListenerRoute>>(std::move(live->routes.listeners));
  }
  auto spec = check_table(table);
  if (!spec.ok()) return error("the table for " + pop + " is invalid: " + spec.error());
  auto built = dp::build_explainable(*spec);
  if (!built.ok()) return built.status();
  out.table = *built;
  if (!digest.empty()) {
    std::lock_guard lock(mu_);
    auto it = pops_.find(pop);
    if (it != pops_.end() && it->second.digest == digest) {
      it->second.explainable = out.table;
      it->second.explainable_digest = digest;
    }
  }
  return out;
}

std::vector<v1::PopStats> PopRegistry::stats(const std::string& pop) const {
  std::vector<v1::PopStats> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, st] : pops_)
    if (pop.empty() || id == pop)
      for (const auto& [name, host] : st.hosts)
        if (host.stats) out.push_back(*host.stats);
  return out;
}

grpc::Status PopRegistry::health(const v1::GetHealthRequest& req, v1::GetHealthResponse& out,
                                 size_t max_bytes) const {
  size_t bytes = 0;
  std::lock_guard lock(mu_);
  if (!req.pop().empty() && !pops_.count(req.pop()))
    return grpc::Status(StatusCode::NOT_FOUND, "pop: no PoP \"" + req.pop() + "\"");
  auto config = store_.snapshot();
  if (!req.accelerator().empty() && !config->accelerators.count(accelerator_key(req.accelerator())))
    return grpc::Status(StatusCode::NOT_FOUND,
                        "accelerator: no accelerator \"" + req.accelerator() + "\"");
  for (const auto& [id, st] : pops_) {
    if (!st.connected() || (!req.pop().empty() && id != req.pop())) continue;
    for (const auto& [akey, acc] : config->accelerators) {
      if (!acc.enabled() || (!req.accelerator().empty() && acc.name() != req.accelerator()))
        continue;
      for (const v1::Listener* l : Config::children(config->listeners, akey)) {
        if (!req.listener().empty() && l->name() != req.listener()) continue;
        for (const v1::EndpointGroup* g :
             Config::children(config->groups, listener_key(acc.name(), l->name())))
          for (const v1::Endpoint* e :
               Config::children(config->endpoints, group_key(acc.name(), l->name(), g->name()))) {
            const v1::ProbeResult* r =
                st.health.find(acc.name(), l->name(), g->name(), e->address());
            v1::EndpointHealth* h = out.add_endpoints();
            h->set_pop(id);
            h->set_accelerator(acc.name());
            h->set_listener(l->name());
            h->set_endpoint_group(g->name());
            h->set_region(g->region());
            h->set_address(e->address());
            h->set_state(health_state(r));
            h->set_rtt_ms(r ? r->rtt_ms() : -1);
            h->set_tls_handshake_ms(r ? r->tls_handshake_ms() : -1);
            if (r) {
              h->set_consecutive(r->consecutive());
              h->set_last_error(r->last_error());
              h->set_reported_ms(st.health.reported_ms());
              h->set_last_change_ms(r->last_change_ms());
            }
            bytes += h->ByteSizeLong() + 8;
            if (bytes > max_bytes) {
              out.Clear();
              return grpc::Status(StatusCode::RESOURCE_EXHAUSTED,
                                  "the answer would be larger than " + std::to_string(max_bytes) +
                                      " bytes; ask for one PoP or one accelerator");
            }
          }
      }
    }
  }
  return grpc::Status::OK;
}

}  // namespace onramp::ctl
