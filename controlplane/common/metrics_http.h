// The /metrics listener of the agent and the controller, with the same flags
// and the same rule in both daemons: off by default; a loopback address may
// be open; any other address needs basic authentication or TLS (or both), or
// the daemon refuses to start (docs/observability.md "Flags"). The HTTP
// server is cpp-httplib, as for the controller's status page; prometheus-cpp
// only collects and writes the text format (its own civetweb exposer dies on
// a TLS request with Debian 12's OpenSSL).
#pragma once

#include <prometheus/collectable.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace onramp::cp {

struct MetricsHttpOptions {
  // ADDR:PORT ("127.0.0.1:9470", "[::1]:9470", "0.0.0.0:9470"); empty: no
  // listener.
  std::string listen;
  // Lines "user:password"; a scrape must present one of them.
  std::string basic_auth_file;
  // HTTPS with this certificate chain and key (PEM); both or neither.
  std::string tls_cert;
  std::string tls_key;
};

// Adds --metrics-listen, --metrics-basic-auth-file, --metrics-tls-cert and
// --metrics-tls-key.
void add_metrics_flags(CLI::App& app, MetricsHttpOptions& options);

// The flags' rule alone: ok, or the problem naming the flag.
Status check_metrics_options(const MetricsHttpOptions& options);

// "user:password" lines, "#" comments and blank lines skipped; an error
// names the file and the line.
Result<std::vector<std::pair<std::string, std::string>>> load_basic_auth(const std::string& path);

class MetricsHttpServer {
 public:
  // Serves every collectable on /metrics, or says why it cannot (the
  // address taken, a file unreadable), naming the flag.
  static Result<std::unique_ptr<MetricsHttpServer>> start(
      const MetricsHttpOptions& options,
      const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The port bound (useful with port 0 in tests).
  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;
  // The text of one scrape: every collectable, collected now.
  std::string scrape() const;
  // True when `authorization` (the request's header) names one of users_.
  bool authorized(const std::string& authorization) const;

  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::vector<std::pair<std::string, std::string>> users_;
  std::unique_ptr<httplib::Server> http_;
  std::thread serving_;
  int port_ = 0;
};

}  // namespace onramp::cp
