// onramp-agent: runs beside onramp-dataplane at each PoP, keeps a session to
// the controller and the dataplane on the last good table (docs/agent.md).
#include <arpa/inet.h>
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <regex>

#include "controlplane/agent/agent.h"
#include "controlplane/agent/controller_session.h"
#include "controlplane/agent/log.h"
#include "controlplane/common/tls.h"

namespace {

using onramp::agent::LogLevel;

// CLI11 checks with messages that say what is expected.
const CLI::Validator kPopId(
    [](std::string& s) -> std::string {
      static const std::regex re("[A-Z]{3}[0-9]{1,2}");
      return std::regex_match(s, re) ? "" : "\"" + s + "\" is not IATA code + number, e.g. FRA1";
    },
    "POP");
const CLI::Validator kIpv4(
    [](std::string& s) -> std::string {
      in_addr a{};
      return inet_pton(AF_INET, s.c_str(), &a) == 1 ? "" : "\"" + s + "\" is not an IPv4 address";
    },
    "IPV4");
const CLI::Validator kIpv6(
    [](std::string& s) -> std::string {
      in6_addr a{};
      return inet_pton(AF_INET6, s.c_str(), &a) == 1 ? "" : "\"" + s + "\" is not an IPv6 address";
    },
    "IPV6");
const CLI::Validator kMac(
    [](std::string& s) -> std::string {
      static const std::regex re("([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}");
      return std::regex_match(s, re) ? "" : "\"" + s + "\" is not a MAC address aa:bb:cc:dd:ee:ff";
    },
    "MAC");

}  // namespace

int main(int argc, char** argv) {
  onramp::agent::AgentConfig config;
  config.agent_version = ONRAMP_VERSION;
  onramp::agent::SessionConfig session_config;
  session_config.controller = "127.0.0.1:7443";
  onramp::cp::TlsFiles tls;
  bool plaintext = false;
  std::string socket = "/run/onramp/dataplane.sock";
  uint32_t status_interval_ms = 1000;
  uint32_t report_interval_ms = 1000;
  bool no_probes = false;

  CLI::App app(
      "onramp-agent: keeps this PoP's onramp-dataplane on the controller's tables, "
      "and on the last good one whenever the controller is away.",
      "onramp-agent");
  app.add_option("--controller", session_config.controller, "Controller address, HOST:PORT")
      ->capture_default_str();
  app.add_option("--tls-ca", tls.ca, "PEM CA of the controller's certificate");
  app.add_option("--tls-cert", tls.cert, "PEM certificate of this PoP (its identity)");
  app.add_option("--tls-key", tls.key, "PEM private key of --tls-cert");
  app.add_flag("--plaintext", plaintext, "No TLS; refused unless the controller is loopback");
  auto& id = config.identity;
  app.add_option("--pop", id.pop, "PoP id: IATA code + number, e.g. FRA1")
      ->required()
      ->check(kPopId);
  app.add_option("--iata", id.iata, "IATA code (default: the first three letters of --pop)");
  app.add_option("--city", id.city, "City, e.g. Frankfurt");
  app.add_option("--country", id.country, "ISO 3166-1 alpha-2 country, e.g. DE");
  app.add_option("--lat", id.latitude, "Latitude, degrees")->check(CLI::Range(-90.0, 90.0));
  app.add_option("--lon", id.longitude, "Longitude, degrees")->check(CLI::Range(-180.0, 180.0));
  app.add_option("--tunnel-source-v4", config.tunnel_source_v4,
                 "Outer IPv4 source of encapsulated packets")
      ->check(kIpv4);
  app.add_option("--tunnel-source-v6", config.tunnel_source_v6,
                 "Outer IPv6 source of encapsulated packets")
      ->check(kIpv6);
  app.add_option("--next-hop-mac", config.next_hop_mac,
                 "Ethernet address of the next hop towards the endpoints")
      ->check(kMac);
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
  app.add_option("--bird-config", config.bird_config,
                 "Include file of the BIRD config the agent writes its VIPs to (docs/bgp.md); "
                 "without it the agent does not touch BIRD");
  app.add_option("--bird-socket", config.bird_socket, "BIRD's control socket")
      ->capture_default_str();
  app.footer(
      "Example:\n"
      "  onramp-agent --controller ctl.example.net:7443 --tls-ca ca.pem --tls-cert fra1.pem \\\n"
      "    --tls-key fra1.key --pop FRA1 --city Frankfurt --country DE --lat 50.03 --lon 8.57 \\\n"
      "    --tunnel-source-v4 192.0.2.1 --tunnel-source-v6 2001:db8:f1::1 \\\n"
      "    --next-hop-mac 02:00:00:00:00:fe --dataplane-socket /run/onramp/dataplane.sock");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "onramp-agent: " << e.what() << "\nRun with --help for usage.\n";
    return 2;
  }
  if (id.iata.empty()) id.iata = id.pop.substr(0, 3);
  config.status_interval = std::chrono::milliseconds(status_interval_ms);
  config.report_interval = std::chrono::milliseconds(report_interval_ms);
  config.probes = !no_probes;

  auto credentials = onramp::cp::client_credentials(session_config.controller, tls, plaintext);
  if (!credentials.ok()) {
    std::cerr << "onramp-agent: " << credentials.error() << '\n';
    return 2;
  }
  session_config.credentials = *credentials;

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

  onramp::agent::set_log_pop(id.pop);
  auto dataplane = onramp::agent::make_grpc_dataplane_client(socket);
  onramp::agent::Agent agent(config, *dataplane);
  onramp::agent::ControllerSession session(session_config, agent);
  agent.set_sender([&session](const onramp::v1::AgentMessage& m) { return session.send(m); });
  onramp::agent::log(LogLevel::kInfo,
                     "starting " + std::string(ONRAMP_VERSION) + ", dataplane " + socket +
                         ", controller " + session_config.controller +
                         (config.bird_config.empty()
                              ? std::string(", no BIRD")
                              : ", BIRD " + config.bird_config + " via " + config.bird_socket));
  agent.start();
  session.start();

  int sig = 0;
  sigwait(&signals, &sig);
  onramp::agent::log(LogLevel::kInfo,
                     std::string("stopping on ") + strsignal(sig) +
                         "; the dataplane keeps forwarding and BIRD keeps announcing");
  session.stop();
  agent.stop();
  return 0;
}
