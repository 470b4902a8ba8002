// The PoPs and what each has been sent: registration on Hello, the table each
// PoP should run, the decision to push it, and ACK/NACK bookkeeping. Sessions
// reach the registry through TableSink, so all of this is tested without
// gRPC streams.
//
// Rules (docs/design.md "Control protocol"): a PoP is sent a table only when its content (the
// table without its version, and the probe plan) changed; the version is the
// configuration version at which the content was computed; every send has a
// fresh nonce; an ACK moves the PoP's applied version; a NACK leaves it, is
// recorded, and the same content is not sent again until it changes.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/grpc_limits.h"
#include "controlplane/controller/config_store.h"
#include "controlplane/controller/controller_metrics.h"
#include "controlplane/controller/measurement_exchange.h"
#include "controlplane/routing/health_view.h"
#include "controlplane/routing/route_computer.h"
#include "controlplane/routing/route_inputs.h"
#include "dataplane/core/explain.h"
#include "onramp/v1/admin.pb.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::ctl {

// The controller's end of one PoP session.
class TableSink {
 public:
  virtual ~TableSink() = default;
  // Queues a message; never blocks. A newer update replaces one not yet
  // written, and one older than an update already queued is dropped. Taken
  // by value: a push hands every PoP its message without copying it again.
  virtual void send(v1::ControllerMessage message) = 0;
  // Ends the session with `status`.
  virtual void close(const grpc::Status& status) = 0;
};

// What GetRoutes and TraceFlow read: the routes the controller computes for
// a PoP now, from `config`.
struct PopView {
  std::shared_ptr<const Config> config;
  PopRoutes routes;  // table version stamped
  uint64_t applied_version = 0;
};

// What TraceFlow reads: the newest table the controller computed for a PoP
// (the one it runs once it acknowledges it), built as the dataplane builds
// it. Built once per content and shared by every trace until the content
// changes, so a trace costs lookups, not a table build.
struct TraceView {
  std::shared_ptr<const Config> config;
  dp::ExplainableTablePtr table;
  uint64_t version = 0;
  uint64_t applied_version = 0;
  // Why each group got its share, from the same computation.
  std::shared_ptr<const std::vector<v1::ListenerRoute>> routes;
};

class PopRegistry {
 public:
  // How long a session's first probe round may hold back new content that
  // only first verdicts made (docs/routing.md "When a PoP's table changes").
  static constexpr std::chrono::seconds kFirstVerdictHold{5};

  PopRegistry(ConfigStore& store, const RouteComputer& computer, const Clock& clock = real_clock());
  ~PopRegistry();

  // Where the PoPs' measurements that other PoPs' routes need are shared
  // (measurement_exchange.h); by default in process, for one controller.
  // Set before sessions start; `exchange` outlives the registry.
  void set_measurements(MeasurementExchange* exchange);
  // The exchange's stored snapshot of `pop` changed (another replica wrote
  // it, or a write of this one landed): the PoPs that may relay through it
  // are recomputed, every connected PoP when its eligibility changed.
  void shared_changed(const std::string& pop);

  // Where ACK latency, NACKs and route changes are counted (/metrics); null:
  // nowhere. Set before sessions start; `metrics` outlives the registry.
  void set_metrics(ControllerMetrics* metrics) { metrics_ = metrics; }

  // Loads the PoPs the store remembers, all disconnected.
  void load();

  // A session's first message. `identity` is the PoP id its client
  // certificate proves, or "" in plaintext (Hello.pop is taken as it is).
  // Registers or updates the PoP, makes `sink` the session of its host
  // Hello.host (ending an older one of the same host; other hosts keep
  // theirs) and sends the current table when that host does not run it.
  // Returns the status to end the session with when the Hello is refused.
  grpc::Status hello(const std::shared_ptr<TableSink>& sink, const std::string& identity,
                     const v1::Hello& hello);
  void ack(const TableSink* sink, const std::string& pop, const v1::TableAck& ack);
  void status(const TableSink* sink, const std::string& pop, const v1::PopStatus& status);
  // Replaces the PoP's health view with the report and recomputes that PoP
  // alone, as one hysteresis round; a new table goes out at once when its
  // content changed (a verdict, or a nearest group that won its rounds).
  // Until the session's first full round (a report where every endpoint has
  // a verdict), content that only first verdicts changed goes out at most
  // once per kFirstVerdictHold; a verdict that flips goes at once.
  void probes(const TableSink* sink, const std::string& pop, const v1::ProbeReport& report);
  // The session ended; its host is gone unless a newer session of it took
  // over, and the PoP is disconnected when it was its last host. The other
  // hosts keep their table: nothing is recomputed for the PoP.
  void detach(const TableSink* sink, const std::string& pop);

  // Recomputes every connected PoP's table from the newest configuration and
  // sends those whose content changed.
  void push_all();

  // Writes PoP records changed since the last flush, in one transaction;
  // on failure they stay due for the next one.
  Status flush();

  // Marks the PoP so that its next table carries TableUpdate.adopt, and
  // sends it now when the PoP is connected (even the content it refused):
  // the operator's confirmation of a table that takes the PoP backwards.
  // Returns the PoP as ListPops shows it, or an error when no PoP has that
  // id.
  Result<v1::Pop> adopt(const std::string& pop);

  bool known(const std::string& pop) const;
  v1::ListPopsResponse list_pops() const;
  // Every PoP's tunnel sources, by PoP id. Behind a lock of its own: admin
  // validation reads it on every mutation and must not wait for a push.
  std::map<std::string, v1::TunnelSource> tunnel_sources() const;
  // The own tunnel sources of a connected PoP's other hosts (a PoP of
  // several servers), by PoP id, as its stored snapshot lists them; the
  // same lock.
  std::map<std::string, std::vector<v1::TunnelSource>> host_tunnel_sources() const;
  // The PoP's view, or an error when no PoP has that id.
  Result<PopView> view(const std::string& pop) const;
  // The PoP's table for TraceFlow, or an error when no PoP has that id or
  // the table cannot be built.
  Result<TraceView> trace_view(const std::string& pop) const;
  // The latest dataplane stats of every connected host of `pop` (every PoP
  // when empty), one PopStats per host.
  std::vector<v1::PopStats> stats(const std::string& pop) const;
  // Every connected PoP's mesh probe results to the other PoPs, beside each
  // PoP's RTT to each region as its latest routes rank them.
  v1::GetPopMatrixResponse matrix() const;
  // Every PoP's routes with their reasons as last computed (no computation:
  // the status page reads it several times a second); null for a PoP not
  // computed since the controller started.
  std::map<std::string, std::shared_ptr<const std::vector<v1::ListenerRoute>>> latest_routes()
      const;
  // Every endpoint of every enabled accelerator as every connected PoP sees
  // it, filtered as the request says; UNKNOWN where a PoP reported nothing.
  // It grows with endpoints x PoPs: past `max_bytes` the answer is
  // RESOURCE_EXHAUSTED, asking for a filter, instead of a message no client
  // can receive.
  grpc::Status health(const v1::GetHealthRequest& request, v1::GetHealthResponse& out,
                      size_t max_bytes = kMaxGrpcMessageBytes - (1 << 20)) const;

 private:
  struct Sent {
    uint64_t version;
    int64_t created_ms;
    std::string digest;
    uint64_t inputs_version;  // the configuration version of its route inputs
  };
  // One server of a PoP and its session (Hello.host).
  struct HostState {
    std::shared_ptr<TableSink> sink;
    v1::PopHost host;                   // as ListPops shows it
    std::string applied_digest;         // content of host.applied_version
    uint64_t session_sent_version = 0;  // last sent on this session
    // The configuration version of the route inputs the agent keeps (its
    // Hello, then each ACK), and of the last sent on this session.
    uint64_t inputs_version = 0;
    uint64_t session_sent_inputs = 0;
    // The session's first probe round is still coming in (some endpoint has
    // no verdict yet), and when a table was last sent or held back on it.
    bool first_round = false;
    Clock::time_point first_round_push{};
    std::map<std::string, Sent> outstanding;  // by nonce, awaiting ACK/NACK
    std::optional<v1::PopStats> stats;
    PopHealth health;  // its latest probe report
    // That report as the other PoPs' routes read it (shared_probes); the
    // PoP shares its first host's.
    v1::ProbeReport shared_probes;
  };
  struct PopState {
    v1::Pop pop;
    // The version and content every connected host runs (the PoP's
    // applied version), as of the last time they all agreed.
    std::string applied_digest;
    std::string nacked_digest;
    // The connected hosts, by name; the PoP is connected while one is.
    std::map<std::string, HostState> hosts;
    // The newest table computed for the PoP: its content digest, version
    // and the messages themselves. The same for every host.
    std::string digest;
    uint64_t version = 0;
    v1::ForwardingTable table;
    v1::ProbePlan probe_plan;
    // The hosts' probe reports merged (PopHealth::merged), cleared when the
    // last session ends, and what routing remembers between rounds (kept
    // across sessions, so that a reconnecting PoP keeps its nearest group
    // until its RTTs are back).
    PopHealth health;
    RouteMemory memory;
    std::string saved_memory;  // `memory` as the store keeps it (PopRecord)
    bool dirty = false;        // record changed since the last flush
    // The routes' explanations from the latest computation; `table` as
    // TraceFlow reads it, and the digest it was built from.
    std::shared_ptr<const std::vector<v1::ListenerRoute>> routes;
    mutable dp::ExplainableTablePtr explainable;
    mutable std::string explainable_digest;
    bool connected() const { return !hosts.empty(); }
  };
  // Work done after the lock is released: a sink's send or close may run
  // gRPC reactions inline, and those call back into the registry.
  struct Actions {
    std::vector<std::pair<std::shared_ptr<TableSink>, v1::ControllerMessage>> sends;
    std::vector<std::pair<std::shared_ptr<TableSink>, grpc::Status>> closes;
    void run();
  };

  // Recomputes the PoP's routes; `new_round` counts a probe report. With
  // `hold`, new content is not adopted (no version, nothing sent): the PoP
  // keeps what it was last given; the routing memory still moves.
  void refresh(PopState& st, const Config& config, Actions& actions, bool new_round = false,
               bool hold = false);
  void maybe_send(PopState& st, const Config& config, Actions& actions);
  void maybe_send(PopState& st, HostState& host, const Config& config, Actions& actions);
  // Makes the hosts' common applied version the PoP's when every connected
  // host runs the same version and content; returns whether they do.
  bool sync_applied(PopState& st);
  // The PoP's health, flags, next hop and tunnel sources from its hosts.
  // Caller holds mu_.
  void merge_hosts(PopState& st);
  // A PoP's snapshot as the exchange stores it, and the health view built
  // from it once: what the other PoPs' computations read of it.
  struct SharedPeer {
    SharedSnapshot snapshot;
    PopHealth health;
  };

  // The PoP with every other known PoP as its peers: connected, eligible
  // and measured as the exchange stores them. Caller holds mu_.
  PopContext context_of(const PopState& st) const;
  // Publishes what the PoP of `st` shares now (null sink: withdrawn); when
  // the exchange stores it at once, takes it. Caller holds mu_.
  // True when every other connected PoP was recomputed.
  bool share_locked(const PopState& st, Actions& actions);
  // Takes the exchange's stored snapshot of `pop` and recomputes the PoPs
  // it may change. True when every other connected PoP was recomputed.
  // Caller holds mu_.
  bool take_shared_locked(const std::string& pop, Actions& actions);
  // Recomputes every connected PoP but `changed`, whose connection (and so
  // their peers) changed. Caller holds mu_.
  void refresh_peers_of(const PopState& changed, Actions& actions);
  // A status from `host` of the PoP of `st`. Caller holds mu_.
  void status_locked(PopState& st, HostState& host, const v1::PopStatus& status, Actions& actions);
  // Whether `st` reaches some group through `relay`, as its memory says.
  static bool relays_through(const PopState& st, const std::string& relay);
  // The last session of `st` ended. Caller holds mu_.
  void detach_locked(PopState& st, Actions& actions);
  // The configuration part of RouteInputs, built once per configuration
  // version. Caller holds mu_.
  const v1::RouteInputs& slice_of(const Config& config);
  // The PoP and host whose current session is `sink`, their last-seen time
  // set to now; nulls for a session a newer one replaced. Caller holds mu_.
  std::pair<PopState*, HostState*> heard_from(const TableSink* sink, const std::string& pop);
  uint64_t fresh_version(uint64_t wanted, const PopState& st);
  std::string nonce();

  ConfigStore& store_;
  const RouteComputer& computer_;
  const Clock& clock_;
  ControllerMetrics* metrics_ = nullptr;
  LocalMeasurements local_measurements_;
  MeasurementExchange* measurements_ = &local_measurements_;
  // Held while a table is built for traces (outside mu_): concurrent traces
  // wait for the one build instead of each building the same table.
  mutable std::mutex trace_build_mu_;
  mutable std::mutex mu_;  // guards everything below
  std::map<std::string, PopState> pops_;
  std::map<std::string, SharedPeer> shared_;  // by PoP id, as taken from measurements_
  std::optional<v1::RouteInputs> slice_;
  uint64_t slice_version_ = 0;
  // The configuration version since which the slice's content is the same
  // (a change to a disabled accelerator leaves it as it was): route inputs
  // of that version or newer are current.
  uint64_t slice_since_ = 0;
  std::mt19937_64 rng_;
  // Guards tunnels_ and host_tunnels_; taken inside mu_, never around it.
  mutable std::mutex tunnels_mu_;
  std::map<std::string, v1::TunnelSource> tunnels_;
  std::map<std::string, std::vector<v1::TunnelSource>> host_tunnels_;
};

int64_t now_ms();

}  // namespace onramp::ctl
