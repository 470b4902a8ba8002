// Who may call the admin API (docs/design.md "Security"): a client certificate signed by
// the client CA, or "authorization: Bearer <token>" with a token from the
// token file. A PoP's certificate is signed by the same CA but does not make
// its holder an operator: certificates named like a PoP id are refused here.
// In plaintext (loopback only) tokens are still required when a token file
// is given; otherwise anyone who can reach the loopback port is trusted.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace onramp::ctl {

class AdminAuth {
 public:
  AdminAuth(bool plaintext, std::vector<std::string> tokens);

  // Reads one token per line; blank lines and lines starting with '#' are
  // skipped. An error (naming --admin-token-file) when the file cannot be
  // read or holds no token.
  static Result<std::vector<std::string>> load_tokens(const std::string& path);

  // OK, or UNAUTHENTICATED saying what is missing. Refusals are logged with
  // the peer's address.
  grpc::Status check(const grpc::CallbackServerContext& ctx) const;

 private:
  bool token_matches(const std::string& presented) const;

  bool plaintext_;
  std::vector<std::string> tokens_;
};

// The PoP id a PoP session runs as: the client certificate's name under
// mutual TLS, "" in plaintext (then Hello.pop is taken as it is).
std::string pop_session_identity(const grpc::CallbackServerContext& ctx);

}  // namespace onramp::ctl
