#include "controlplane/controller/status_server.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <optional>

#include "common/log.h"
#include "common/text.h"
#include "controlplane/common/http.h"
#include "controlplane/common/tls.h"
#include "controlplane/controller/validation.h"
#include "status_page_html.h"

namespace onramp::ctl {
namespace {

constexpr auto kSampleEvery = std::chrono::milliseconds(250);
constexpr size_t kThreads = 4;

// The common name of the client certificate the TLS handshake verified
// against the client CA; "" when there is none.
std::string verified_client_name(const SSL* ssl) {
  if (ssl == nullptr) return "";
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return "";
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) <= 0)
    return "";
  return cn;
}

void security_headers(httplib::Response& res) {
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                 "connect-src 'self'; img-src data:");
}

}  // namespace

Status StatusServer::check(const StatusOptions& o) {
  if (o.listen.empty()) return ok_status();
  if (!cp::parse_listen_address(o.listen))
    return error("--status-listen: " + quote(o.listen) + " is not ADDR:PORT");
  if (cp::is_loopback_target(o.listen)) return ok_status();
  if (o.plaintext || o.tls.cert.empty() || o.tls.key.empty())
    return error("--status-listen: " + o.listen +
                 " is not a loopback address: off loopback the status page is served over TLS "
                 "only (--tls-cert, --tls-key, not --plaintext)");
  if (!o.tokens && o.tls.client_ca.empty())
    return error("--status-listen: " + o.listen +
                 " is not a loopback address: off loopback callers must authenticate, with a "
                 "token of --admin-token-file or a client certificate of --tls-client-ca");
  return ok_status();
}

Result<std::unique_ptr<StatusServer>> StatusServer::start(const StatusOptions& o,
                                                          const AdminAuth& auth,
                                                          StatusBoard& board) {
  ONRAMP_RETURN_IF_ERROR(check(o));
  const cp::ListenAddress where = *cp::parse_listen_address(o.listen);
  const bool tls = !cp::is_loopback_target(o.listen);

  std::unique_ptr<StatusServer> server(new StatusServer(auth, board));
  // Off loopback always; on loopback when tokens guard the admin API too.
  server->need_auth_ = tls || o.tokens;
  if (tls) {
    bool loaded = false;
    server->http_ = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
      loaded = cp::load_tls_identity(ctx, o.tls.cert, o.tls.key);
      if (loaded && !o.tls.client_ca.empty()) {
        loaded = SSL_CTX_load_verify_locations(&ctx, o.tls.client_ca.c_str(), nullptr) == 1;
        // Asked for and verified when given; a caller without one may
        // still send a token.
        SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, nullptr);
      }
      return loaded;
    });
    if (!loaded || !server->http_->is_valid())
      return error("--status-listen: cannot load --tls-cert, --tls-key or --tls-client-ca for " +
                   o.listen);
  } else {
    server->http_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& http = *server->http_;
  http.new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  http.set_read_timeout(std::chrono::seconds(10));
  http.set_write_timeout(std::chrono::seconds(10));
  http.set_payload_max_length(0);  // read-only: a request has no body
  StatusServer* self = server.get();
  auto handler = [self](const httplib::Request& req, httplib::Response& res) {
    self->handle(req, res);
  };
  http.Get(".*", handler);
  auto read_only = [](const httplib::Request&, httplib::Response& res) {
    security_headers(res);
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_content("the status page is read-only\n", "text/plain; charset=utf-8");
  };
  http.Post(".*", read_only);
  http.Put(".*", read_only);
  http.Delete(".*", read_only);
  http.Patch(".*", read_only);

  board.sample(now_ms());
  server->port_ = cp::bind_listener(http, where);
  if (server->port_ == 0) return error("--status-listen: cannot listen on " + o.listen);
  server->serving_ = std::thread([self] { self->http_->listen_after_bind(); });
  server->sampler_ = std::thread([self] {
    while (!self->stop_.load()) {
      std::this_thread::sleep_for(kSampleEvery);
      self->board_.sample(now_ms());
    }
  });
  log::info("status page serving", {{"status_listen", o.listen},
                                    {"status_port", server->port_},
                                    {"transport", tls ? "TLS" : "plain HTTP, loopback"},
                                    {"authentication", server->need_auth_}});
  return server;
}

StatusServer::StatusServer(const AdminAuth& auth, StatusBoard& board)
    : auth_(auth), board_(board) {}

StatusServer::~StatusServer() {
  stop_ = true;
  if (http_) http_->stop();
  if (serving_.joinable()) serving_.join();
  if (sampler_.joinable()) sampler_.join();
}

bool StatusServer::authorized(const httplib::Request& req, httplib::Response& res) const {
  if (!need_auth_) return true;
  std::string cn = verified_client_name(req.ssl);
  // A PoP's certificate is signed by the same CA but makes no operator.
  if (!cn.empty() && !is_pop_id(cn)) return true;
  if (req.has_header("Authorization")) {
    std::string value = req.get_header_value("Authorization");
    if (auth_.bearer_name(value)) return true;
    if (auto given = cp::basic_credentials(value))
      if (auth_.bearer_name("Bearer " + given->password)) return true;
  }
  log::warn("status page request refused: no credentials",
            {{"peer", req.remote_addr}, {"path", req.path}, {"certificate", cn}});
  res.status = 401;
  res.set_header("WWW-Authenticate", "Basic realm=\"onramp status\", charset=\"UTF-8\"");
  res.set_content(
      "give a client certificate signed by the controller's client CA, or a token of "
      "--admin-token-file (\"Authorization: Bearer <token>\", or as the password of HTTP "
      "Basic)\n",
      "text/plain; charset=utf-8");
  return false;
}

void StatusServer::handle(const httplib::Request& req, httplib::Response& res) const {
  security_headers(res);
  if (!authorized(req, res)) return;
  if (req.path == "/" || req.path == "/index.html") {
    res.set_content(kStatusPageHtml.data(), kStatusPageHtml.size(), "text/html; charset=utf-8");
  } else if (req.path == "/api/status") {
    res.set_content(board_.json(), "application/json");
  } else {
    res.status = 404;
    res.set_content("not found: / and /api/status are served\n", "text/plain; charset=utf-8");
  }
}

}  // namespace onramp::ctl
