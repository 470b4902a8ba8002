// The controller's status page (docs/observability.md "Status page"): its
// own HTTP listener serving one self-contained page and /api/status, the
// StatusBoard's JSON, read-only. On loopback it is plain HTTP; off loopback
// it is HTTPS with the controller's certificate, and every request must
// authenticate as on the admin API: a client certificate signed by the
// client CA (not a PoP's), or a token of --admin-token-file ("Bearer" or
// as the password of HTTP Basic, which browsers ask for themselves).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "controlplane/common/server_tls.h"
#include "controlplane/controller/auth.h"
#include "controlplane/controller/status_board.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace onramp::ctl {

struct StatusOptions {
  std::string listen;  // ADDR:PORT; "" serves no page
  bool plaintext = false;
  cp::ServerTlsFiles tls;
  bool tokens = false;  // an --admin-token-file is given
};

class StatusServer {
 public:
  // Refuses a set-up the page would serve unsafely, naming the flag:
  // off loopback it needs TLS and a way for callers to authenticate.
  static Status check(const StatusOptions& options);
  // Serves `board` (sampled every 250 ms from here on) on options.listen.
  static Result<std::unique_ptr<StatusServer>> start(const StatusOptions& options,
                                                     const AdminAuth& auth, StatusBoard& board);
  ~StatusServer();

  int port() const { return port_; }

 private:
  StatusServer(const AdminAuth& auth, StatusBoard& board);
  void handle(const httplib::Request& req, httplib::Response& res) const;
  // Whether the request may read the page; answers 401 itself when not.
  bool authorized(const httplib::Request& req, httplib::Response& res) const;

  const AdminAuth& auth_;
  StatusBoard& board_;
  bool need_auth_ = false;
  std::unique_ptr<httplib::Server> http_;
  std::thread serving_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread sampler_;
};

}  // namespace onramp::ctl
