#include "controlplane/common/server_tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/server_credentials.h>

#include "controlplane/common/client_certificate.h"
#include "controlplane/common/tls.h"

namespace onramp::cp {

Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const std::string& listen,
                                                                    const ServerTlsFiles& files,
                                                                    ClientCertificates clients,
                                                                    bool plaintext) {
  if (plaintext) {
    if (!is_loopback_target(listen))
      return error("--plaintext: refused for " + listen +
                   ", which is not a loopback address; plaintext is for local testing only, "
                   "give --tls-cert, --tls-key and --tls-client-ca");
    return grpc::InsecureServerCredentials();
  }
  if (files.cert.empty() || files.key.empty())
    return error("--tls-cert and --tls-key: required to serve " + listen +
                 " (or --plaintext on loopback)");
  Result<std::string> cert = read_pem("--tls-cert", files.cert);
  if (!cert.ok()) return cert.status();
  Result<std::string> key = read_pem("--tls-key", files.key);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  pair.cert_chain = std::move(*cert);
  pair.private_key = std::move(*key);
  // The handshake takes any client certificate; ClientCertificateGate
  // verifies it on every call, before any handler, so that a refusal is
  // logged with the peer's address (docs/security.md, "Client certificates").
  grpc::SslServerCredentialsOptions opts(
      clients == ClientCertificates::required
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY
          : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  opts.pem_key_cert_pairs.push_back(std::move(pair));
  if (files.client_ca.empty()) {
    if (clients == ClientCertificates::required)
      return error("--tls-client-ca: required: " + listen +
                   " takes only clients with certificates");
  } else {
    Result<std::string> ca = read_pem("--tls-client-ca", files.client_ca);
    if (!ca.ok()) return ca.status();
    opts.pem_root_certs = std::move(*ca);
  }
  // Without a client CA every presented certificate is refused.
  auto verifier = ClientCertificateVerifier::from_pem(opts.pem_root_certs);
  if (!verifier.ok()) return verifier.status();
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::SslServerCredentials(opts);
  creds->SetAuthMetadataProcessor(std::make_shared<ClientCertificateGate>(
      std::shared_ptr<const ClientCertificateVerifier>(std::move(*verifier)), listen));
  return creds;
}

std::string peer_certificate_name(const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) return "";
  // The handshake does not verify client certificates, but every call whose
  // certificate does not verify is refused by ClientCertificateGate before
  // it reaches a handler: a handler only sees verified certificates.
  for (const auto& v : auth.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME))
    if (!v.empty()) return std::string(v.data(), v.size());
  for (const auto& v : auth.FindPropertyValues(GRPC_PEER_DNS_PROPERTY_NAME))
    if (!v.empty()) return std::string(v.data(), v.size());
  return "";
}

}  // namespace onramp::cp
