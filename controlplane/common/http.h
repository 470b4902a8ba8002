// What the HTTP listeners (the /metrics listener of both daemons, the
// controller's status page; both cpp-httplib) share: HTTP Basic credentials
// (RFC 7617), the server's TLS identity, and binding the listening address.
#pragma once

#include <openssl/ssl.h>

#include <optional>
#include <string>
#include <string_view>

#include "controlplane/common/tls.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace onramp::cp {

struct BasicCredentials {
  std::string user;
  std::string password;
};

// The user and password of an "Authorization: Basic <base64 user:password>"
// header value; nullopt for another scheme, text that is not base64, a
// value over 4 KiB, or no colon.
std::optional<BasicCredentials> basic_credentials(std::string_view authorization);

// a == b in time that depends on their sizes only, not on where they first
// differ (for passwords and tokens).
bool equal_in_constant_time(std::string_view a, std::string_view b);

// Sets up a server's TLS: 1.2 or later, the certificate chain `cert` and its
// key `key` (PEM files). False when they cannot be loaded or do not match.
bool load_tls_identity(SSL_CTX& ctx, const std::string& cert, const std::string& key);

// Binds `http` to `where` (port 0: any free port); the port bound, or 0 when
// it cannot.
int bind_listener(httplib::Server& http, const ListenAddress& where);

}  // namespace onramp::cp
