// The /metrics listener of the agent and the controller: prometheus-cpp's
// pull exposer (civetweb), with the same flags and the same rule in both
// daemons: off by default; a loopback address may be open; any other address
// needs basic authentication, or the daemon refuses to start
// (docs/observability.md "Flags"). No TLS: Debian 12's civetweb calls a null
// function after a TLS request (its OpenSSL loaded at run time) and takes the
// process down; TLS is terminated in front of a loopback listener instead.
#pragma once

#include <prometheus/collectable.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace onramp::cp {

struct MetricsHttpOptions {
  // ADDR:PORT ("127.0.0.1:9470", "[::1]:9470", "0.0.0.0:9470"); empty: no
  // listener.
  std::string listen;
  // Lines "user:password"; a scrape must present one of them.
  std::string basic_auth_file;
};

// Adds --metrics-listen and --metrics-basic-auth-file.
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
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace onramp::cp
