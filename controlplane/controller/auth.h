// Who may call the admin API (docs/design.md "Security"): a client certificate signed by
// the client CA, or "authorization: Bearer <token>" with a token from the
// token file. A PoP's certificate is signed by the same CA but does not make
// its holder an operator: certificates named like a PoP id are refused here.
// In plaintext (loopback only) tokens are still required when a token file
// is given; otherwise anyone who can reach the loopback port is trusted.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace onramp::ctl {

class AdminAuth {
 public:
  AdminAuth(bool plaintext, std::vector<std::string> tokens);

  // Reads one token per line; blank lines and lines starting with '#' are
  // skipped. A line of two words is "NAME TOKEN": the name the audit log
  // gives its caller (otherwise "line-N", N counting tokens from 1). An error (naming
  // --admin-token-file) when the file cannot be read or holds no token.
  static Result<std::vector<std::string>> load_tokens(const std::string& path);

  // OK, or UNAUTHENTICATED saying what is missing. Refusals are logged with
  // the peer's address.
  grpc::Status check(const grpc::CallbackServerContext& ctx) const;

  // Who an authenticated call comes from, for the audit log:
  // "cert:<certificate common name>", "token:<name>", or "anonymous"
  // (plaintext on loopback without a token file).
  std::string caller(const grpc::CallbackServerContext& ctx) const;

  // The name of the token in an "authorization" header value ("Bearer T"),
  // or nullopt when it is none of the accepted tokens.
  std::optional<std::string> bearer_name(const std::string& header) const;
  bool has_tokens() const { return !tokens_.empty(); }

 private:
  struct Token {
    std::string name;
    std::string secret;
  };
  // The accepted token equal to `presented`, compared in constant time.
  const Token* token_matching(const std::string& presented) const;

  bool plaintext_;
  std::vector<Token> tokens_;
};

// The PoP id a PoP session runs as: the client certificate's name under
// mutual TLS, "" in plaintext (then Hello.pop is taken as it is).
std::string pop_session_identity(const grpc::CallbackServerContext& ctx);

}  // namespace onramp::ctl
