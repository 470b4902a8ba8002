// onramp-agent: runs beside onramp-dataplane at each PoP, keeps a session to
// the controller and the dataplane on the last good table (docs/agent.md).
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstring>

#include "common/log.h"
#include "common/options.h"
#include "common/service.h"
#include "controlplane/agent/agent.h"
#include "controlplane/agent/agent_metrics.h"
#include "controlplane/agent/controller_session.h"
#include "controlplane/agent/flow_log_shipper.h"
#include "controlplane/agent/host_name.h"
#include "controlplane/common/controller_list.h"
#include "controlplane/common/grpc_log.h"
#include "controlplane/common/metrics_http.h"
#include "controlplane/common/tls.h"

int main(int argc, char** argv) {
  onramp::log::init("onramp-agent");
  onramp::cp::route_grpc_logs();
  onramp::agent::AgentConfig config;
  config.agent_version = onramp::opts::version();
  onramp::agent::SessionConfig session_config;
  session_config.controller = "127.0.0.1:7444";
  onramp::cp::TlsFiles tls;
  bool plaintext = false;
  std::string socket = "/run/onramp/dataplane.sock";
  uint32_t status_interval_ms = 1000;
  uint32_t report_interval_ms = 1000;
  bool no_probes = false;
  onramp::cp::MetricsHttpOptions metrics;
  onramp::agent::FlowLogFileOptions flow_logs;

  CLI::App app(
      "onramp-agent: keeps this PoP's onramp-dataplane on the controller's tables, "
      "and on the last good one whenever the controller is away.",
      "onramp-agent");
  onramp::opts::add_common_flags(app);
  onramp::opts::add_config_file(app, "/etc/onramp/agent.conf");
  app.add_option("--controller", session_config.controller,
                 "Controller replicas, HOST:PORT[,HOST:PORT...]; a name stands for each of its "
                 "addresses. After a session ends the agent moves to the next one")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            auto list = onramp::cp::parse_controller_list(value);
            return list.ok() ? "" : list.error();
          },
          "HOST:PORT[,HOST:PORT...]"));
  app.add_option("--tls-ca", tls.ca, "PEM CA of the controller's certificate");
  app.add_option("--tls-cert", tls.cert, "PEM certificate of this PoP (its identity)");
  app.add_option("--tls-key", tls.key, "PEM private key of --tls-cert");
  app.add_flag("--plaintext", plaintext, "No TLS; refused unless the controller is loopback");
  auto& id = config.identity;
  app.add_option("--pop", id.pop, "PoP id: IATA code + number, e.g. FRA1")
      ->required()
      ->check(onramp::opts::kPopId);
  app.add_option("--host", id.host,
                 "This server of the PoP, a DNS label, e.g. fra1-a; the PoP's servers behind its "
                 "router's ECMP each run an agent with its own (default: the machine's host "
                 "name up to the first dot)")
      ->check(onramp::opts::kHostName);
  app.add_option("--iata", id.iata, "IATA code (default: the first three letters of --pop)");
  app.add_option("--city", id.city, "City, e.g. Frankfurt");
  app.add_option("--country", id.country, "ISO 3166-1 alpha-2 country, e.g. DE");
  app.add_option("--lat", id.latitude, "Latitude, degrees")->check(CLI::Range(-90.0, 90.0));
  app.add_option("--lon", id.longitude, "Longitude, degrees")->check(CLI::Range(-180.0, 180.0));
  app.add_option("--tunnel-source-v4", config.tunnel_source_v4,
                 "Outer IPv4 source of encapsulated packets")
      ->check(onramp::opts::kIpv4);
  app.add_option("--tunnel-source-v6", config.tunnel_source_v6,
                 "Outer IPv6 source of encapsulated packets")
      ->check(onramp::opts::kIpv6);
  app.add_option("--next-hop-mac", config.next_hop_mac,
                 "Ethernet address of the next hop towards the endpoints")
      ->check(onramp::opts::kMac);
  app.add_option("--dataplane-socket", socket, "onramp-dataplane's --api-socket")
      ->capture_default_str();
  app.add_option("--state-dir", config.state_dir, "Where the last good table is kept")
      ->capture_default_str();
  app.add_option("--status-interval-ms", status_interval_ms,
                 "How often to check the dataplane and report status, ms")
      ->check(CLI::Range(50, 60000))
      ->capture_default_str();
  app.add_option("--report-interval-ms", report_interval_ms,
                 "How often the whole probe report goes to the controller when no verdict "
                 "changes, ms")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_flag("--no-probes", no_probes, "Do not run the controller's probe plan");
  config.mesh_port = 7445;
  app.add_option("--mesh-port", config.mesh_port,
                 "UDP port of the mesh echo on the tunnel addresses, the same on every PoP; "
                 "peer PoPs are probed on it (0: no echo, no peer probes)")
      ->capture_default_str();
  uint32_t mesh_interval_ms = 200;
  app.add_option("--mesh-interval-ms", mesh_interval_ms, "How often each peer PoP is probed, ms")
      ->check(CLI::Range(100, 60000))
      ->capture_default_str();
  app.add_option("--mesh-down-after", config.mesh_down_after,
                 "A peer PoP's path is down after this many probes in a row go unanswered, "
                 "and a relay over it is left at once (0: never)")
      ->check(CLI::Range(0, 10))
      ->capture_default_str();
  app.add_option("--bird-config", config.bird_config,
                 "Include file of the BIRD config the agent writes its VIPs to (docs/bgp.md); "
                 "without it the agent does not touch BIRD");
  app.add_option("--bird-socket", config.bird_socket, "BIRD's control socket")
      ->capture_default_str();
  app.add_option("--flow-log-dir", flow_logs.dir,
                 "Write the dataplane's flow log records here as JSON lines (file flows.log, "
                 "docs/observability.md); without it the agent takes none")
      ->type_name("DIR");
  app.add_option("--flow-log-max-bytes", flow_logs.max_bytes,
                 "Size at which flows.log is rotated to flows.log.1")
      ->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--flow-log-files", flow_logs.files,
                 "Flow log files kept, the one being written included (flows.log, flows.log.1, "
                 "...)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  onramp::cp::add_metrics_flags(app, metrics);
  app.footer(
      "Example:\n"
      "  onramp-agent --controller ctl-a.example.net:7444,ctl-b.example.net:7444 --tls-ca ca.pem "
      "\\\n"
      "    --tls-cert fra1.pem --tls-key fra1.key --pop FRA1 --city Frankfurt --country DE \\\n"
      "    --lat 50.03 --lon 8.57 \\\n"
      "    --tunnel-source-v4 192.0.2.1 --tunnel-source-v6 2001:db8:f1::1 \\\n"
      "    --next-hop-mac 02:00:00:00:00:fe --dataplane-socket /run/onramp/dataplane.sock");
  if (auto code = onramp::opts::parse(app, argc, argv)) return *code;
  // Before the first line: every line of the agent names its PoP.
  onramp::log::set_context("pop", id.pop);
  if (onramp::Status s = onramp::log::step_level_on_signals(); !s.ok())
    onramp::log::warn("log level stays as set", {{"error", s.message()}});
  if (id.iata.empty()) id.iata = id.pop.substr(0, 3);
  if (id.host.empty()) {
    // A machine whose name is no DNS label still runs a PoP of one server,
    // as before hosts were named; a second server of its PoP needs --host.
    auto host = onramp::agent::default_host_name();
    if (host.ok())
      id.host = *host;
    else
      onramp::log::warn("this server of the PoP names no host", {{"error", host.error()}});
  }
  config.status_interval = std::chrono::milliseconds(status_interval_ms);
  config.report_interval = std::chrono::milliseconds(report_interval_ms);
  config.probes = !no_probes;
  config.mesh_interval = std::chrono::milliseconds(mesh_interval_ms);

  if (onramp::Status s = onramp::cp::check_metrics_options(metrics); !s.ok()) {
    onramp::log::error("refusing to start", {{"error", s.message()}});
    return 2;
  }

  // One set of credentials for every replica; --plaintext must hold for each.
  auto replicas = onramp::cp::parse_controller_list(session_config.controller);
  if (!replicas.ok()) return 2;  // the flag's check said why
  for (const onramp::cp::ControllerAddress& replica : *replicas) {
    auto credentials = onramp::cp::client_credentials(replica.text(), tls, plaintext);
    if (!credentials.ok()) {
      onramp::log::error("no credentials for the controller", {{"error", credentials.error()}});
      return 2;
    }
    session_config.credentials = *credentials;
  }
  if (!plaintext) session_config.tls = tls;

  // Every thread started below inherits the blocked signals; main waits for
  // them with sigwait, so shutdown runs in ordinary code.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // One socket per probe in flight: take every descriptor the hard limit
  // allows rather than fail probes at the soft limit (often 1024).
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  auto dataplane = onramp::agent::make_grpc_dataplane_client(socket);
  onramp::agent::Agent agent(config, *dataplane);
  std::unique_ptr<onramp::agent::FlowLogShipper> flow_log_shipper;
  if (!flow_logs.dir.empty())
    flow_log_shipper = std::make_unique<onramp::agent::FlowLogShipper>(*dataplane, flow_logs);
  onramp::agent::ControllerSession session(session_config, agent);
  agent.set_sender([&session](const onramp::v1::AgentMessage& m) { return session.send(m); });
  onramp::log::info(
      "starting",
      {{"version", onramp::opts::version()},
       {"host", id.host},
       {"dataplane", socket},
       {"controller", session_config.controller},
       {"bird", config.bird_config.empty() ? std::string("off")
                                           : config.bird_config + " via " + config.bird_socket}});
  // /metrics reads the dataplane's counters at each scrape, over the same
  // client the agent uses (docs/observability.md).
  std::unique_ptr<onramp::cp::MetricsHttpServer> metrics_server;
  if (!metrics.listen.empty()) {
    auto collector = std::make_shared<onramp::agent::AgentMetrics>([&] {
      onramp::agent::AgentSample s;
      s.pop = id.pop;
      onramp::v1::DataplaneStats stats;
      if (dataplane->stats(stats).ok()) s.stats = std::move(stats);
      s.probes = agent.probe_snapshot();
      s.bgp_configured = agent.bgp_configured();
      s.bgp_announced = agent.bgp_announced();
      s.last_good_version = agent.last_good_version();
      onramp::agent::Agent::ApplyRecord applied = agent.last_apply();
      s.last_apply_seconds = applied.seconds;
      s.apply_failures = applied.failures;
      if (flow_log_shipper) {
        onramp::agent::FlowLogShipper::Counts c = flow_log_shipper->counts();
        s.flow_logs = true;
        s.flow_log_written = c.written;
        s.flow_log_lost = c.lost;
      }
      s.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
      s.monotonic_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now().time_since_epoch())
                           .count();
      return s;
    });
    // The PoP matters more than its metrics: an address that cannot be
    // served (taken, a file unreadable) is logged and the agent goes on.
    auto started = onramp::cp::MetricsHttpServer::start(metrics, {collector});
    if (!started.ok()) {
      onramp::log::error("metrics not served", {{"error", started.error()}});
    } else {
      metrics_server = std::move(*started);
      onramp::log::info("serving metrics", {{"listen", metrics.listen},
                                            {"port", metrics_server->port()},
                                            {"basic_auth", !metrics.basic_auth_file.empty()},
                                            {"tls", !metrics.tls_cert.empty()}});
    }
  }
  agent.start();
  session.start();
  if (flow_log_shipper) flow_log_shipper->start();

  // Ready for systemd once the PoP is served: a session to the controller is
  // open, or the last good table is back in force while it is away. The
  // status line follows the session; the watchdog is fed from this loop.
  int sig = -1;
  bool ready = false;
  std::string shown;
  const timespec tick{.tv_sec = 1, .tv_nsec = 0};
  do {
    uint64_t version = agent.last_good_version();
    std::string status =
        session.connected()
            ? "controller " + session.controller() + ", table version " + std::to_string(version)
        : agent.routes_on_own()
            ? "controller away, routing on its own, table version " + std::to_string(version) +
                  (agent.local_digest().empty() ? "" : " (own content)")
            : "controller away, last good table version " + std::to_string(version);
    if (!ready && (session.connected() || version > 0)) {
      onramp::service::ready(status);
      ready = true;
    } else if (ready && status != shown) {
      onramp::service::status(status);
    }
    if (ready) shown = status;
    onramp::service::watchdog();
  } while ((sig = sigtimedwait(&signals, nullptr, &tick)) < 0);
  onramp::service::stopping();
  onramp::log::info("stopping; the dataplane keeps forwarding and BIRD keeps announcing",
                    {{"signal", strsignal(sig)}});
  metrics_server.reset();
  flow_log_shipper.reset();
  session.stop();
  agent.stop();
  return 0;
}
