#include "controlplane/common/server_tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/server_credentials.h>

#include "controlplane/common/tls.h"

namespace onramp::cp {

std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::string& listen,
                                                            const ServerTlsFiles& files,
                                                            ClientCertificates clients,
                                                            bool plaintext, std::string& error) {
  if (plaintext) {
    if (!is_loopback_target(listen)) {
      error = "--plaintext: refused for " + listen +
              ", which is not a loopback address; plaintext is for local testing only, "
              "give --tls-cert, --tls-key and --tls-client-ca";
      return nullptr;
    }
    return grpc::InsecureServerCredentials();
  }
  if (files.cert.empty() || files.key.empty()) {
    error =
        "--tls-cert and --tls-key: required to serve " + listen + " (or --plaintext on loopback)";
    return nullptr;
  }
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  if ((pair.cert_chain = read_file(files.cert, error)).empty()) {
    error = "--tls-cert: " + (error.empty() ? files.cert + ": empty" : error);
    return nullptr;
  }
  if ((pair.private_key = read_file(files.key, error)).empty()) {
    error = "--tls-key: " + (error.empty() ? files.key + ": empty" : error);
    return nullptr;
  }
  grpc::SslServerCredentialsOptions opts(
      clients == ClientCertificates::required
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
          : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  opts.pem_key_cert_pairs.push_back(std::move(pair));
  if (files.client_ca.empty()) {
    if (clients == ClientCertificates::required) {
      error = "--tls-client-ca: required: " + listen + " takes only clients with certificates";
      return nullptr;
    }
  } else if ((opts.pem_root_certs = read_file(files.client_ca, error)).empty()) {
    error = "--tls-client-ca: " + (error.empty() ? files.client_ca + ": empty" : error);
    return nullptr;
  }
  return grpc::SslServerCredentials(opts);
}

std::string peer_certificate_name(const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) return "";
  // gRPC only reports x509 properties of a certificate the handshake
  // verified against the client CA.
  for (const auto& v : auth.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME))
    if (!v.empty()) return std::string(v.data(), v.size());
  for (const auto& v : auth.FindPropertyValues(GRPC_PEER_DNS_PROPERTY_NAME))
    if (!v.empty()) return std::string(v.data(), v.size());
  return "";
}

}  // namespace onramp::cp
