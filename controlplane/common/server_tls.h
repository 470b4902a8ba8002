// TLS credentials for onramp's gRPC servers (docs/design.md, Security), and who the peer
// of a call is. Plaintext only for loopback listen addresses, and only when
// asked for.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace grpc {
class AuthContext;
class ServerCredentials;
}  // namespace grpc

namespace onramp::cp {

struct ServerTlsFiles {
  std::string cert;       // PEM: the server's certificate chain
  std::string key;        // PEM: its private key
  std::string client_ca;  // PEM: CA that signs client certificates
};

enum class ClientCertificates {
  optional,  // verified against client_ca when presented (admin API)
  required,  // mutual TLS: no certificate, no connection (PoP API)
};

// Credentials to serve on `listen` ("0.0.0.0:7444", "[::1]:7443"). plaintext:
// insecure, refused unless `listen` is loopback. Otherwise TLS with
// files.cert/key, asking for client certificates as `clients` says; a
// presented certificate is verified against files.client_ca on every call by
// ClientCertificateGate (client_certificate.h), which refuses the call and
// logs the peer when it does not verify. The error names the flag at fault.
Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const std::string& listen,
                                                                    const ServerTlsFiles& files,
                                                                    ClientCertificates clients,
                                                                    bool plaintext);

// The name a client certificate gives its holder: the subject's common
// name, or when it has none the first DNS subject alternative name. "" when
// the peer presented no certificate (or the call is plaintext). For use in
// handlers: a call whose certificate does not verify never reaches one
// (ClientCertificateGate refuses it first).
std::string peer_certificate_name(const grpc::AuthContext& auth);

}  // namespace onramp::cp
