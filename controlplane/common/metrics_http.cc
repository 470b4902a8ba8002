#include "controlplane/common/metrics_http.h"

#include <openssl/crypto.h>
#include <prometheus/exposer.h>

#include <exception>

#include "common/files.h"
#include "common/text.h"
#include "controlplane/common/tls.h"

namespace onramp::cp {

void add_metrics_flags(CLI::App& app, MetricsHttpOptions& options) {
  app.add_option("--metrics-listen", options.listen,
                 "Serve Prometheus metrics on http://ADDR:PORT/metrics (default: off). An address "
                 "other than loopback needs --metrics-basic-auth-file")
      ->type_name("ADDR:PORT");
  app.add_option("--metrics-basic-auth-file", options.basic_auth_file,
                 "Lines user:password; a scrape of /metrics must present one (basic auth)")
      ->type_name("FILE");
}

Status check_metrics_options(const MetricsHttpOptions& options) {
  if (options.listen.empty()) {
    if (!options.basic_auth_file.empty())
      return error("--metrics-basic-auth-file: needs --metrics-listen");
    return ok_status();
  }
  const std::string& l = options.listen;
  size_t colon = l.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == l.size() ||
      l.find_first_not_of("0123456789", colon + 1) != std::string::npos)
    return error("--metrics-listen: " + quote(l) + " is not ADDR:PORT");
  if (!is_loopback_target(l) && options.basic_auth_file.empty())
    return error("--metrics-listen: " + quote(l) +
                 " is not loopback: give --metrics-basic-auth-file, or listen on 127.0.0.1");
  return ok_status();
}

Result<std::vector<std::pair<std::string, std::string>>> load_basic_auth(const std::string& path) {
  Result<std::string> text = read_file(path);
  if (!text.ok()) return text.status().prefixed("--metrics-basic-auth-file");
  std::vector<std::pair<std::string, std::string>> users;
  size_t start = 0;
  for (int line = 1; start < text->size(); ++line) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string entry = text->substr(start, end - start);
    start = end + 1;
    if (!entry.empty() && entry.back() == '\r') entry.pop_back();
    if (entry.empty() || entry[0] == '#') continue;
    size_t colon = entry.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == entry.size())
      return error("--metrics-basic-auth-file: " + path + ":" + std::to_string(line) +
                   ": not user:password");
    users.emplace_back(entry.substr(0, colon), entry.substr(colon + 1));
  }
  if (users.empty()) return error("--metrics-basic-auth-file: " + path + ": no user:password line");
  return users;
}

Result<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::start(
    const MetricsHttpOptions& options,
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables) {
  ONRAMP_RETURN_IF_ERROR(check_metrics_options(options));
  std::vector<std::pair<std::string, std::string>> users;
  if (!options.basic_auth_file.empty()) {
    auto loaded = load_basic_auth(options.basic_auth_file);
    if (!loaded.ok()) return loaded.status();
    users = std::move(*loaded);
  }
  const std::vector<std::string> civet = {"listening_ports", options.listen, "num_threads", "2"};
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  server->collectables_ = collectables;
  try {
    server->exposer_ = std::make_unique<prometheus::Exposer>(civet);
  } catch (const std::exception& e) {
    return error("--metrics-listen: cannot serve " + quote(options.listen) + ": " + e.what());
  }
  if (!users.empty())
    server->exposer_->RegisterAuth(
        [users](const std::string& user, const std::string& password) {
          // Every line compared in full, in time that does not depend on
          // where a guess first differs.
          bool match = false;
          for (const auto& [u, p] : users)
            match |= u == user && p.size() == password.size() &&
                     CRYPTO_memcmp(p.data(), password.data(), p.size()) == 0;
          return match;
        },
        "onramp metrics");
  for (const auto& c : server->collectables_) server->exposer_->RegisterCollectable(c);
  std::vector<int> ports = server->exposer_->GetListeningPorts();
  server->port_ = ports.empty() ? 0 : ports.front();
  return server;
}

MetricsHttpServer::~MetricsHttpServer() = default;

}  // namespace onramp::cp
