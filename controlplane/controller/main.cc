// onramp-controller: opens the configuration store, serves the admin and PoP
// APIs, and runs until SIGINT or SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <iostream>

#include "common/files.h"
#include "common/log.h"
#include "common/options.h"
#include "common/service.h"
#include "common/text.h"
#include "controlplane/common/grpc_log.h"
#include "controlplane/common/metrics_http.h"
#include "controlplane/common/tls.h"
#include "controlplane/controller/auth.h"
#include "controlplane/controller/controller_metrics.h"
#include "controlplane/controller/controller_server.h"
#include "controlplane/controller/etcd_measurements.h"
#include "controlplane/controller/etcd_store.h"
#include "controlplane/controller/sqlite_store.h"

namespace {

constexpr const char* kProgram = "onramp-controller";
constexpr uint32_t kMaxDebounceMs = 60000;

// --debounce-ms: a whole number of milliseconds, 0..60000.
const CLI::Validator kDebounceMs(
    [](std::string& s) -> std::string {
      uint32_t v = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      bool ok =
          !s.empty() && ec == std::errc() && end == s.data() + s.size() && v <= kMaxDebounceMs;
      return ok ? ""
                : onramp::quote(s) + " is not a number in 0.." + std::to_string(kMaxDebounceMs);
    },
    "");

// How the controller reaches etcd (the --etcd-* flags).
struct EtcdAccess {
  onramp::cp::TlsFiles tls;
  uint32_t timeout_ms = 5000;  // deadline of every etcd call
  std::string user;            // etcd's own authentication, with the password in
  std::string password_file;   // a file: never on the command line
  // The single-owner jobs (docs/controller.md "Single owner").
  uint32_t owner_ttl_s = 10;
  // The lease of the PoPs' shared measurements (docs/controller.md "Shared
  // measurements").
  uint32_t measurements_ttl_s = 5;
  uint32_t compact_every_s = 300;
};

// The password of --etcd-user: the file's first line (a trailing newline
// is not part of it).
onramp::Result<std::string> etcd_password(const std::string& path) {
  auto text = onramp::read_file(path, 4096);
  if (!text.ok()) return text.status().prefixed("--etcd-password-file");
  std::string password = text->substr(0, text->find('\n'));
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.empty()) return onramp::error("--etcd-password-file: " + path + ": empty");
  return password;
}

// The etcd cluster of --store and how to reach it: members with TLS when
// --etcd-ca is given, else in plaintext, which is refused unless every
// member is on loopback.
struct EtcdTarget {
  onramp::ctl::EtcdUrl url;
  onramp::ctl::EtcdClient::Options client;
};
onramp::Result<EtcdTarget> etcd_target(const std::string& url, const EtcdAccess& etcd) {
  const onramp::cp::TlsFiles& etcd_tls = etcd.tls;
  using namespace onramp::ctl;
  auto parsed = parse_etcd_url(url);
  if (!parsed.ok()) return parsed.status().prefixed("--store");
  EtcdClient::Options client;
  client.timeout = std::chrono::milliseconds(etcd.timeout_ms);
  if (!etcd.user.empty()) {
    auto password = etcd_password(etcd.password_file);
    if (!password.ok()) return password.status();
    client.user = etcd.user;
    client.password = std::move(*password);
  }
  bool plaintext = etcd_tls.ca.empty() && etcd_tls.cert.empty();
  for (const onramp::cp::ControllerAddress& member : parsed->endpoints) {
    auto creds = onramp::cp::client_credentials(member.text(), etcd_tls, plaintext);
    if (!creds.ok())
      return onramp::error(
          "--store: " + creds.error() +
          (plaintext ? " (give --etcd-ca, and --etcd-cert/--etcd-key if etcd asks for one)" : ""));
    client.credentials = *creds;
  }
  return EtcdTarget{.url = std::move(*parsed), .client = std::move(client)};
}

// --db FILE or --store etcd://...: the store, opened (or created with --init).
onramp::Result<std::unique_ptr<onramp::ctl::ConfigStore>> open_store(
    const std::string& db, const std::string& url, const EtcdAccess& etcd,
    onramp::ctl::StoreOpenOptions options) {
  using namespace onramp::ctl;
  if (url.empty()) {
    auto s = SqliteStore::open(db, options);
    if (!s.ok()) return s.status();
    return std::unique_ptr<ConfigStore>(std::move(*s));
  }
  auto target = etcd_target(url, etcd);
  if (!target.ok()) return target.status();
  auto s = EtcdStore::open(target->url, std::move(target->client), options);
  if (!s.ok()) return s.status();
  return std::unique_ptr<ConfigStore>(std::move(*s));
}

int fail(int code, const std::string& message) {
  std::cerr << kProgram << ": " << message << '\n';
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace onramp::ctl;
  namespace log = onramp::log;
  log::init(kProgram);
  onramp::cp::route_grpc_logs();
  // Signals are taken by sigwait at the end. Blocked first, before gRPC
  // starts any thread, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::string db = "/var/lib/onramp/controller.db";
  std::string store_url;
  EtcdAccess etcd;
  std::string admin_token_file;
  SqliteStore::OpenOptions store_options;
  bool init_only = false;
  ServerOptions server_options;
  uint32_t debounce_ms = static_cast<uint32_t>(server_options.debounce.count());
  uint32_t handshake_timeout_ms = static_cast<uint32_t>(server_options.handshake_timeout.count());
  uint32_t idle_timeout_s = static_cast<uint32_t>(server_options.idle_timeout.count() / 1000);
  onramp::cp::MetricsHttpOptions metrics_options;

  CLI::App app(
      "Stores onramp's configuration, serves the admin API to onrampctl, and pushes\n"
      "a forwarding table to every PoP's agent.",
      kProgram);
  // "usage: onramp-controller [OPTIONS]", as the hand-written usage said it.
  app.get_formatter()->label("Usage", "usage");
  onramp::opts::add_common_flags(app);
  onramp::opts::add_config_file(app, "/etc/onramp/controller.conf");
  CLI::Option* db_option =
      app.add_option("--db", db, "SQLite database")->type_name("PATH")->capture_default_str();
  app.add_option("--store", store_url,
                 "The configuration in etcd instead of --db, for several replicas: "
                 "etcd://HOST:PORT[,HOST:PORT...]/PREFIX")
      ->type_name("URL")
      ->excludes(db_option);
  app.add_option("--etcd-ca", etcd.tls.ca, "PEM CA of the etcd members' certificates (TLS)");
  app.add_option("--etcd-cert", etcd.tls.cert, "PEM client certificate for etcd (with --etcd-key)");
  app.add_option("--etcd-key", etcd.tls.key, "PEM private key of --etcd-cert");
  app.add_option("--etcd-timeout-ms", etcd.timeout_ms,
                 "Deadline of every call to etcd: an admin write through a replica that lost "
                 "etcd is refused (UNAVAILABLE) after at most this long")
      ->check(CLI::Range(100, 60000))
      ->capture_default_str();
  CLI::Option* etcd_user =
      app.add_option("--etcd-user", etcd.user,
                     "etcd user of this control plane, when etcd's authentication is enabled "
                     "(with --etcd-password-file)");
  CLI::Option* etcd_password_file =
      app.add_option("--etcd-password-file", etcd.password_file,
                     "File whose first line is --etcd-user's password (never on the command "
                     "line)")
          ->check(CLI::ExistingFile);
  app.add_option("--etcd-owner-ttl-s", etcd.owner_ttl_s,
                 "TTL of the etcd lease under which one replica runs the single-owner jobs: "
                 "when it dies another takes over within about this long")
      ->check(CLI::Range(2, 600));
  app.add_option("--etcd-measurements-ttl-s", etcd.measurements_ttl_s,
                 "TTL of the etcd lease under which a replica shares its PoPs' measurements: "
                 "a dead replica's PoPs stop being relays for the others after at most this long")
      ->check(CLI::Range(2, 60))
      ->capture_default_str();
  app.add_option("--etcd-compact-every-s", etcd.compact_every_s,
                 "How often the single owner compacts etcd's history, keeping one interval of "
                 "it; 0: never (etcd compacts on its own, or another program does)")
      ->check(CLI::Range(0, 86400));
  etcd_user->needs(etcd_password_file);
  etcd_password_file->needs(etcd_user);
  app.add_flag("--init", store_options.init,
               "Create the store (and its folder) when --db is missing or empty; an initialised "
               "store is opened as it is. Without it such a --db is refused");
  app.add_flag("--init-only", init_only,
               "As --init, then exit without serving (package installation)");
  app.add_flag("--new-epoch", store_options.new_epoch,
               "Raise the store's epoch by one before serving, after restoring a backup: PoPs then "
               "accept its tables below the versions they run");
  app.add_option("--admin-listen", server_options.admin_listen, "Admin API address")
      ->type_name("ADDR")
      ->capture_default_str();
  app.add_option("--pop-listen", server_options.pop_listen, "PoP API address for agents")
      ->type_name("ADDR")
      ->capture_default_str();
  app.add_option("--tls-cert", server_options.tls.cert, "Server certificate chain, PEM")
      ->type_name("FILE");
  app.add_option("--tls-key", server_options.tls.key, "Its private key, PEM")->type_name("FILE");
  app.add_option("--tls-client-ca", server_options.tls.client_ca,
                 "CA of client certificates, PEM: PoP certificates (CN = PoP id, e.g. FRA1) and "
                 "operator certificates")
      ->type_name("FILE");
  app.add_option("--admin-token-file", admin_token_file,
                 "Bearer tokens accepted on the admin API, one a line")
      ->type_name("FILE");
  app.add_flag("--plaintext", server_options.plaintext,
               "No TLS; refused unless every address is loopback");
  app.add_option("--status-listen", server_options.status_listen,
                 "Serve the read-only status page and /api/status on ADDR:PORT (off by default); "
                 "off loopback only over TLS, to callers with a client certificate or an admin "
                 "token")
      ->type_name("ADDR:PORT");
  app.add_option("--debounce-ms", debounce_ms,
                 "Push a mutation at once after N ms without a push; hold later ones until N ms "
                 "pass without another and push them together, 0..60000")
      ->type_name("N")
      ->check(kDebounceMs)
      ->capture_default_str();
  app.add_option("--max-connections", server_options.limits.total,
                 "Connections on the admin, PoP and status ports together; beyond it the newest of "
                 "the peers holding most are closed")
      ->type_name("N")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  app.add_option("--max-connections-per-peer", server_options.limits.per_peer,
                 "Connections one address may hold on the admin, PoP and status ports together")
      ->type_name("N")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  app.add_option(
         "--handshake-timeout-ms", handshake_timeout_ms,
         "A connection that has not finished its TLS and HTTP/2 handshake by then is closed")
      ->type_name("N")
      ->check(CLI::Range(100u, 120000u))
      ->capture_default_str();
  app.add_option("--idle-timeout-s", idle_timeout_s,
                 "A connection with no call on it for this long is closed")
      ->type_name("N")
      ->check(CLI::Range(1u, 86400u))
      ->capture_default_str();
  onramp::cp::add_metrics_flags(app, metrics_options);
  app.footer(
      "Admin callers present a client certificate signed by --tls-client-ca or\n"
      "\"authorization: Bearer <token>\". Agents must present a client certificate\n"
      "whose common name is their PoP id. Development certificates: scripts/dev-ca.\n"
      "\n"
      "Example (a laptop, no TLS):\n"
      "  onramp-controller --db /tmp/onramp.db --init --plaintext \\\n"
      "    --admin-listen 127.0.0.1:7443 --pop-listen 127.0.0.1:7444");
  // 0 after --help or --version; every usage error exits 2, CLI11's message
  // naming the flag.
  if (auto code = onramp::opts::parse(app, argc, argv)) return *code == 0 ? 0 : 2;
  if (onramp::Status s = log::step_level_on_signals(); !s.ok())
    log::warn("log level stays as set", {{"error", s.message()}});
  server_options.debounce = std::chrono::milliseconds(debounce_ms);
  server_options.handshake_timeout = std::chrono::milliseconds(handshake_timeout_ms);
  server_options.idle_timeout = std::chrono::seconds(idle_timeout_s);
  if (db.empty()) return fail(2, "--db: required");
  const std::string where = store_url.empty() ? db : store_url;
  if (init_only) {
    store_options.init = true;
    auto opened = open_store(db, store_url, etcd, store_options);
    if (!opened.ok()) return fail(1, opened.error());
    StoreIdentity id = (*opened)->identity();
    log::info("store ready", {{"db", where}, {"store_id", id.store_id}, {"epoch", id.epoch}});
    return 0;
  }
  if (server_options.admin_listen.empty()) return fail(2, "--admin-listen: required");
  if (server_options.pop_listen.empty()) return fail(2, "--pop-listen: required");

  // Refuse an unsafe or broken set-up before touching the database.
  if (onramp::Status s = ControllerServer::check(server_options); !s.ok())
    return fail(2, s.message());
  if (onramp::Status s = onramp::cp::check_metrics_options(metrics_options); !s.ok())
    return fail(2, s.message());
  if (!admin_token_file.empty()) {
    auto tokens = AdminAuth::load_tokens(admin_token_file);
    if (!tokens.ok()) return fail(2, tokens.error());
    server_options.admin_tokens = std::move(*tokens);
  }
  // Descriptors are what a connection flood exhausts first: take all the
  // hard limit allows, and keep the connection limit well inside it.
  const uint64_t descriptors = raise_descriptor_limit();
  // Kept for the database, logs and pushes in flight: 256, or half of a
  // small limit.
  const uint64_t room = descriptors > 512 ? descriptors - 256 : descriptors / 2;
  if (server_options.limits.total > room) {
    log::warn("--max-connections lowered to fit the descriptor limit",
              {{"max_connections", room}, {"descriptor_limit", descriptors}});
    server_options.limits.total = static_cast<uint32_t>(std::max<uint64_t>(room, 1));
  }
  auto opened = open_store(db, store_url, etcd, store_options);
  if (!opened.ok()) return fail(1, opened.error());
  std::unique_ptr<ConfigStore> store = std::move(*opened);
  const StoreIdentity identity = store->identity();
  if (store_options.new_epoch)
    log::warn("store epoch raised: PoPs accept its tables below the versions they run",
              {{"db", where}, {"store_id", identity.store_id}, {"epoch", identity.epoch}});
  log::info("configuration loaded", {{"db", where},
                                     {"config_version", store->snapshot()->version},
                                     {"store_id", identity.store_id},
                                     {"epoch", identity.epoch}});
  // Replicas share what one PoP's routes need of the others' measurements
  // through etcd; one controller keeps them in process.
  std::unique_ptr<EtcdMeasurements> measurements;
  if (auto* on_etcd = dynamic_cast<EtcdStore*>(store.get())) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const std::string replica = std::string(host) + " pid " + std::to_string(::getpid()) +
                                " admin " + server_options.admin_listen;
    on_etcd->start_single_owner_jobs({.replica = replica,
                                      .ttl = std::chrono::seconds(etcd.owner_ttl_s),
                                      .compact_every = std::chrono::seconds(etcd.compact_every_s)});
    auto target = etcd_target(store_url, etcd);
    if (!target.ok()) return fail(1, target.error());
    measurements = std::make_unique<EtcdMeasurements>(
        target->url, std::move(target->client),
        EtcdMeasurements::Options{.prefix = target->url.prefix,
                                  .replica = replica,
                                  .ttl = std::chrono::seconds(etcd.measurements_ttl_s)});
    measurements->start();
    server_options.measurements = measurements.get();
  }
  // Store latency is timed between the server and the store; the metrics
  // outlive the server (declared before it).
  ControllerMetrics metrics;
  TimedStore timed_store(*store, metrics);
  server_options.metrics = &metrics;
  auto started = ControllerServer::start(timed_store, server_options);
  if (!started.ok()) return fail(1, started.error());
  std::unique_ptr<ControllerServer> server = std::move(*started);
  std::unique_ptr<onramp::cp::MetricsHttpServer> metrics_server;
  if (!metrics_options.listen.empty()) {
    auto pops = std::make_shared<PopCollector>([&server] { return server->pops(); },
                                               [&store] { return store->snapshot()->version; });
    auto served = onramp::cp::MetricsHttpServer::start(metrics_options, {metrics.registry(), pops});
    if (!served.ok()) {
      server->shutdown();
      return fail(1, served.error());
    }
    metrics_server = std::move(*served);
    // Its HTTP server, like the status page's, queues accepted sockets
    // without bound: under the controller's connection limits too.
    server->guard_port(metrics_server->port());
    log::info("serving metrics", {{"listen", metrics_options.listen},
                                  {"port", metrics_server->port()},
                                  {"basic_auth", !metrics_options.basic_auth_file.empty()},
                                  {"tls", !metrics_options.tls_cert.empty()}});
  }
  onramp::service::ready("admin API on " + server_options.admin_listen + ", PoP API on " +
                         server_options.pop_listen);
  log::info("connection limits", {{"descriptor_limit", descriptors},
                                  {"max_connections", server_options.limits.total},
                                  {"max_connections_per_peer", server_options.limits.per_peer},
                                  {"handshake_timeout_ms", handshake_timeout_ms},
                                  {"idle_timeout_s", idle_timeout_s}});
  // Every quarter second: connection limits enforced, a listener that
  // stopped accepting rebuilt. The watchdog is fed only while the store
  // answers: a wedged store stops the feeding and systemd restarts the
  // controller.
  int sig = -1;
  const timespec tick{.tv_sec = 0, .tv_nsec = 250'000'000};
  while ((sig = sigtimedwait(&signals, nullptr, &tick)) < 0) {
    server->guard_connections();
    (void)store->snapshot();
    onramp::service::watchdog();
  }
  onramp::service::stopping();
  log::info(sig == SIGINT ? "stopping on SIGINT" : "stopping on SIGTERM");
  metrics_server.reset();
  server->shutdown();
  return 0;
}
