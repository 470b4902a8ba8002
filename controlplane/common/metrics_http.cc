#include "controlplane/common/metrics_http.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <optional>

#include "common/files.h"
#include "common/text.h"
#include "controlplane/common/http.h"
#include "controlplane/common/tls.h"

namespace onramp::cp {

void add_metrics_flags(CLI::App& app, MetricsHttpOptions& options) {
  app.add_option("--metrics-listen", options.listen,
                 "Serve Prometheus metrics on ADDR:PORT/metrics (default: off). An address other "
                 "than loopback needs --metrics-basic-auth-file or --metrics-tls-cert/-key")
      ->type_name("ADDR:PORT");
  app.add_option("--metrics-basic-auth-file", options.basic_auth_file,
                 "Lines user:password; a scrape of /metrics must present one (basic auth)")
      ->type_name("FILE");
  app.add_option("--metrics-tls-cert", options.tls_cert,
                 "Serve /metrics over HTTPS with this certificate chain (PEM)")
      ->type_name("FILE");
  app.add_option("--metrics-tls-key", options.tls_key,
                 "The private key (PEM) of --metrics-tls-cert")
      ->type_name("FILE");
}

Status check_metrics_options(const MetricsHttpOptions& options) {
  if (options.tls_cert.empty() != options.tls_key.empty())
    return error("--metrics-tls-cert and --metrics-tls-key: give both or neither");
  if (options.listen.empty()) {
    if (!options.basic_auth_file.empty() || !options.tls_cert.empty())
      return error(std::string(options.tls_cert.empty() ? "--metrics-basic-auth-file"
                                                        : "--metrics-tls-cert") +
                   ": needs --metrics-listen");
    return ok_status();
  }
  if (!parse_listen_address(options.listen))
    return error("--metrics-listen: " + quote(options.listen) + " is not ADDR:PORT");
  if (!is_loopback_target(options.listen) && options.basic_auth_file.empty() &&
      options.tls_cert.empty())
    return error("--metrics-listen: " + quote(options.listen) +
                 " is not loopback: give --metrics-basic-auth-file or --metrics-tls-cert/-key, "
                 "or listen on 127.0.0.1");
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
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  if (!options.basic_auth_file.empty()) {
    auto loaded = load_basic_auth(options.basic_auth_file);
    if (!loaded.ok()) return loaded.status();
    server->users_ = std::move(*loaded);
  }
  server->collectables_ = collectables;
  if (options.tls_cert.empty()) {
    server->http_ = std::make_unique<httplib::Server>();
  } else {
    bool loaded = false;
    server->http_ = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
      loaded = load_tls_identity(ctx, options.tls_cert, options.tls_key);
      return loaded;
    });
    if (!loaded)
      return error("--metrics-tls-cert: cannot load " + quote(options.tls_cert) + " with " +
                   quote(options.tls_key));
  }
  httplib::Server& http = *server->http_;
  // Prometheus scrapes one request at a time per target; two threads leave
  // room for a person's curl beside it.
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  http.set_read_timeout(std::chrono::seconds(10));
  http.set_write_timeout(std::chrono::seconds(10));
  MetricsHttpServer* self = server.get();
  http.Get("/metrics", [self](const httplib::Request& req, httplib::Response& res) {
    if (!self->users_.empty() && !self->authorized(req.get_header_value("Authorization"))) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Basic realm=\"onramp metrics\"");
      res.set_content("authentication required\n", "text/plain");
      return;
    }
    res.set_content(self->scrape(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server->port_ = bind_listener(http, *parse_listen_address(options.listen));
  if (server->port_ == 0)
    return error("--metrics-listen: cannot listen on " + quote(options.listen));
  server->serving_ = std::thread([self] { self->http_->listen_after_bind(); });
  return server;
}

std::string MetricsHttpServer::scrape() const {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& c : collectables_)
    for (prometheus::MetricFamily& f : c->Collect()) families.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(families);
}

bool MetricsHttpServer::authorized(const std::string& authorization) const {
  std::optional<BasicCredentials> given = basic_credentials(authorization);
  if (!given) return false;
  // Every line compared in full, in time that does not depend on where a
  // guess first differs.
  bool match = false;
  for (const auto& [user, password] : users_)
    match |= (user == given->user) & equal_in_constant_time(password, given->password);
  return match;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (http_) http_->stop();
  if (serving_.joinable()) serving_.join();
}

}  // namespace onramp::cp
