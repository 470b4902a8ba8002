// TLS credentials for onramp's gRPC clients and servers (docs/design.md, Security).
// Plaintext exists only for loopback, and only when asked for.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace grpc {
class ChannelCredentials;
}

namespace onramp::cp {

struct TlsFiles {
  std::string ca;    // PEM: CA that signed the peer's certificate
  std::string cert;  // PEM: our certificate (client certificate on a client)
  std::string key;   // PEM: its private key
};

struct HostPort {
  std::string host;  // without brackets: "::1", "127.0.0.1", "controller.example.net"
  std::string port;  // "" when the target has none
};

// A gRPC target split into host and port: "host:port", "[v6]:port",
// "[v6]", a bare host or a bare IPv6 address (more than one colon, no
// brackets: all host), each with or without a "dns:", "dns:///", "ipv4:" or
// "ipv6:" scheme. An error for an unclosed bracket, text after "]" that is
// not ":port", or an empty host.
Result<HostPort> split_host_port(std::string_view target);

// A listening address: "host:port" or "[v6]:port" with a port 0..65535 (0:
// any free port), as the HTTP listeners' flags take it.
struct ListenAddress {
  std::string host;  // without brackets
  int port = 0;
};
// Nullopt when `listen` is not one (no port, a port out of range, no host).
std::optional<ListenAddress> parse_listen_address(std::string_view listen);

// True for 127.0.0.0/8, ::1, "localhost" and unix sockets, with or without
// a port ("127.0.0.1:7443", "[::1]:7443", "localhost:7443", "unix:/run/x").
bool is_loopback_target(const std::string& target);

// Credentials to reach `target`. plaintext: insecure, refused unless the
// target is loopback. Otherwise TLS verified against files.ca (the system
// roots when empty), presenting files.cert/key as a client certificate when
// given. The error names the flag at fault.
Result<std::shared_ptr<grpc::ChannelCredentials>> client_credentials(const std::string& target,
                                                                     const TlsFiles& files,
                                                                     bool plaintext);

// The PEM text of the file `flag` names; an empty file is an error too.
Result<std::string> read_pem(const std::string& flag, const std::string& path);

// Why the TLS server at `target` ("host:port") refuses the client
// certificate `files.cert`, for a caller whose call failed as UNAVAILABLE:
// gRPC reports a refused certificate as "Socket closed", like a server that
// is down. The certificate's own dates are checked first ("it expired on
// ..."); then one handshake with it shows whether the server closes the
// connection (or sends a TLS alert) instead of speaking first, as a gRPC
// server does once it accepts a client. "" when there is no client
// certificate, the server cannot be reached at all, or it answers: the
// certificate is not the problem then.
std::string certificate_refusal(const std::string& target, const TlsFiles& files,
                                int timeout_ms = 2000);

}  // namespace onramp::cp
