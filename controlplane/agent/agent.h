// The PoP agent's logic: turns the controller's table updates into applied,
// persisted tables (or NACKs), keeps the dataplane on the last good table
// whatever restarts, and reports the PoP's status. It knows the dataplane
// only through DataplaneClient and the controller only through the callbacks
// of ControllerSession, so all of it is tested with fakes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/clock.h"
#include "controlplane/agent/bird_announcer.h"
#include "controlplane/agent/dataplane_client.h"
#include "controlplane/agent/mesh_prober.h"
#include "controlplane/agent/prober.h"
#include "controlplane/agent/table_origin.h"
#include "controlplane/agent/table_store.h"
#include "controlplane/routing/route_inputs.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::agent {

// Who this PoP is (sent in Hello, docs/design.md "Data model").
struct PopIdentity {
  std::string pop;      // "FRA1"
  std::string host;     // "fra1-a": this server of the PoP (empty: none said)
  std::string iata;     // "FRA"
  std::string city;     // "Frankfurt"
  std::string country;  // "DE"
  double latitude = 0;
  double longitude = 0;
};

struct AgentConfig {
  PopIdentity identity;
  // Filled into every table from the controller: the outer source of
  // encapsulated packets, and the next hop towards the endpoints. Empty:
  // keep what the controller sent.
  std::string tunnel_source_v4;
  std::string tunnel_source_v6;
  std::string next_hop_mac;
  std::string state_dir = "/var/lib/onramp/agent";
  std::chrono::milliseconds status_interval{1000};
  std::string agent_version;
  // Probes of the controller's probe plan; a whole ProbeReport goes out at
  // once when a verdict changes, else every report_interval.
  bool probes = true;
  std::chrono::milliseconds report_interval{1000};
  // BIRD include file and control socket (docs/bgp.md); empty bird_config:
  // nothing about BIRD happens.
  std::string bird_config;
  std::string bird_socket = "/run/bird/bird.ctl";
  // The mesh echo's UDP port on the tunnel addresses, and how often each
  // peer PoP of the plan is probed (docs/routing.md "Relaying over the
  // backbone"); 0: no echo and no peer probes. A peer's path is down after
  // mesh_down_after probes in a row went unanswered (0: never), and the
  // report goes out at once.
  uint16_t mesh_port = 0;
  std::chrono::milliseconds mesh_interval{200};
  uint32_t mesh_down_after = 3;
};

// What the controller session asks of the agent.
class SessionHandler {
 public:
  virtual ~SessionHandler() = default;
  // The first message of every session.
  virtual v1::Hello hello() = 0;
  // Applies (or refuses) one update; the answer goes back on the stream.
  virtual v1::TableAck on_update(const v1::TableUpdate& update) = 0;
  // A session opened (its Hello was written: `up`) or ended, and why.
  virtual void on_session(bool up, const std::string& reason) {
    (void)up;
    (void)reason;
  }
};

class Agent final : public SessionHandler {
 public:
  // `clock` times applies and ACKs, and drives the prober; it must outlive
  // the agent.
  Agent(AgentConfig config, DataplaneClient& dataplane, Clock& clock = real_clock());
  ~Agent() override;
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Where status reports and late ACKs go (ControllerSession::send); returns
  // false when no session is up. Set before start().
  void set_sender(std::function<bool(const v1::AgentMessage&)> send);

  // Loads the last good table and the stored probe plan (the plan goes to
  // the prober). start() does it first; tests call it, then tick().
  void restore();
  // restore(), then starts the prober and the watch thread, whose first
  // round re-applies the last good table at once, whether the controller
  // answers or not. The watch thread only calls tick() every status
  // interval.
  void start();
  void stop();

  v1::Hello hello() override;
  v1::TableAck on_update(const v1::TableUpdate& update) override;
  // While no session is up the agent routes on its own (static stability,
  // docs/agent.md): it recomputes its PoP's table from the last update's
  // RouteInputs and its own probes at every probe report.
  void on_session(bool up, const std::string& reason) override;

  // One routing round of the agent's own, for a probe report (the prober
  // calls it after sending the report; tests call it with reports of their
  // own). Nothing happens while a controller session is up, without route
  // inputs, or before every endpoint of the report has its first verdict.
  // The table is recomputed by the controller's rule (controlplane/routing)
  // and applied when its content differs from what the dataplane runs.
  // `new_round` counts a hysteresis round, as the controller counts a report.
  void route_on_own(const v1::ProbeReport& report, bool new_round = true);
  // True while no session is up and the agent has route inputs: it routes
  // on its own.
  bool routes_on_own() const;
  // The content digest of the table the agent computed itself and the
  // dataplane runs; "" when it runs the controller's.
  std::string local_digest() const;

  // One status interval: re-apply the last good table if the dataplane lost
  // it (restarted, or runs another version), apply a table that waited for
  // the dataplane, send PopStatus. The watch thread calls it; tests too.
  void tick();

  // The version of the last good table; 0 when there is none.
  uint64_t last_good_version() const;

  // The probe state now (every target of the current plan); empty when
  // probes are off.
  v1::ProbeReport probe_snapshot() const;
  // The prober (null when probes are off), for tests that drive its steps
  // by hand instead of start()ing the agent.
  Prober* prober() { return prober_.get(); }
  MeshProber* mesh() { return mesh_.get(); }
  // True when BIRD last accepted a non-empty set of VIPs (PopStatus).
  bool bgp_announced() const;
  // True when the agent drives BIRD (--bird-config).
  bool bgp_configured() const;

  // The last table applied, for /metrics: its version, how long the apply
  // took (the dataplane's build and publish, as the agent waited for it),
  // and the applies the dataplane refused or did not answer since start.
  struct ApplyRecord {
    uint64_t version = 0;
    double seconds = 0;
    uint64_t failures = 0;
  };
  ApplyRecord last_apply() const;

 private:
  struct Pending {
    v1::ForwardingTable table;
    std::string nonce;
    Clock::time_point received;
    v1::TableUpdate inputs;  // route_inputs, and the table and plan to digest
  };
  // What the agent routes on its own from: the last applied update's
  // RouteInputs, parsed, with the memory its own rounds leave.
  struct OwnRouting {
    uint64_t version = 0;  // of that update; the agent's own tables keep it
    v1::RouteInputs inputs;
    ctl::LocalInputs local;
    std::string controller_digest;  // of that update's table and plan
    std::string local_digest;       // of the agent's own table; "" none
    const std::string& running() const {
      return local_digest.empty() ? controller_digest : local_digest;
    }
  };

  // `table` as this PoP applies it: `version`, the PoP's own tunnel source
  // and next hop.
  v1::ForwardingTable localise(const v1::ForwardingTable& table, uint64_t version) const;
  // The update just applied becomes what the agent routes from on its own
  // (none when it carries no route inputs). Call with mu_ held.
  void adopt_inputs_locked(const v1::TableUpdate& update);
  void save_routing_locked();
  void route_on_own_locked(const v1::ProbeReport& report, bool new_round);
  // Applies `table`; on success it becomes the last good one and is saved,
  // with `from` (the controller update it came from) when given, else with
  // what the last good table had. Call with mu_ held.
  grpc::Status apply_locked(const v1::ForwardingTable& table, uint32_t& apply_ms,
                            const v1::TableUpdate* from = nullptr);
  // Where the last good table came from; nullopt when there is none.
  std::optional<TableOrigin> running_origin_locked() const;
  void send(const v1::AgentMessage& msg);
  void watch_loop();
  // Wakes watch_loop as soon as the connection to the dataplane is lost, so
  // a dead dataplane's VIPs are withdrawn at once, not at the next round.
  void dataplane_watch_loop();
  // The endpoint probes' report with the mesh probes' results beside them.
  v1::ProbeReport with_peers(v1::ProbeReport report) const;
  // Hands the update's plan to the prober and keeps it on disk.
  void take_plan(const v1::ProbePlan& plan);

  const AgentConfig config_;
  DataplaneClient& dataplane_;
  Clock& clock_;
  TableStore store_;
  std::function<bool(const v1::AgentMessage&)> send_;
  std::unique_ptr<Prober> prober_;       // null when probes are off
  std::unique_ptr<MeshProber> mesh_;     // null without mesh_port or a tunnel address
  std::unique_ptr<BirdAnnouncer> bird_;  // null without bird_config

  mutable std::mutex mu_;  // guards everything below; one apply at a time
  std::optional<v1::ForwardingTable> last_good_;
  TableMeta last_good_meta_;  // kept with it: store, epoch, content digest
  // Where a stored table that failed its check came from (its header):
  // until a table is applied, tables are judged against it.
  std::optional<TableOrigin> damaged_origin_;
  std::optional<Pending> pending_;   // received while the dataplane was unreachable
  uint64_t last_uptime_ms_ = 0;      // the dataplane's, to notice it restarting
  bool dataplane_reachable_ = true;  // logged when it changes
  uint64_t applies_ = 0;             // tables applied, to spot a stale health answer
  ApplyRecord applied_;
  std::optional<v1::ProbePlan> plan_;  // the last plan saved, to skip rewriting it
  std::optional<OwnRouting> routing_;
  bool session_up_ = false;
  // Why the agent routes on its own, and whether that was logged: at start
  // it is logged with its first own table, the session usually comes first.
  std::string own_reason_ = "no controller session since the agent started";
  bool own_logged_ = false;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;   // guarded by stop_mu_, as is round_now_
  bool round_now_ = false;  // the dataplane's connection was lost: a round now
  std::thread watch_;
  std::thread dataplane_watch_;
};

}  // namespace onramp::agent
