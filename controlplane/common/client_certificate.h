// Client certificates of onramp's gRPC servers, checked by our code rather
// than inside gRPC's TLS layer: gRPC 1.51 refuses a certificate during the
// handshake without telling the application who was refused. The servers
// take any certificate in the handshake and this gate, run by gRPC for every
// call before any handler (health and reflection included), refuses each
// call whose certificate does not verify, and logs the peer's address, the
// certificate's subject and the reason. docs/security.md, "Client
// certificates".
#pragma once

#include <grpcpp/security/auth_metadata_processor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace onramp::cp {

// Verifies client certificates against a CA bundle: signature chain to one of
// its certificates, validity dates at the time of the check, and the TLS
// client purpose.
class ClientCertificateVerifier {
 public:
  // `ca_pem`: one or more PEM certificates; "" makes a verifier that refuses
  // every certificate. The error names --tls-client-ca.
  static Result<std::unique_ptr<ClientCertificateVerifier>> from_pem(const std::string& ca_pem);
  ~ClientCertificateVerifier();

  struct Verdict {
    bool ok = false;
    std::string subject;  // "CN=operator,O=...", as the certificate says; may be ""
    std::string reason;   // why it is refused, for people; "" when ok
  };
  // `leaf_pem`: the client's certificate; `chain_pem`: what else it sent
  // (intermediate CAs, may also hold the leaf), used as untrusted links.
  Verdict verify(std::string_view leaf_pem, std::string_view chain_pem) const;

 private:
  ClientCertificateVerifier() = default;
  struct Store;
  std::unique_ptr<Store> store_;
};

// The AuthMetadataProcessor of a TLS server. A call without a client
// certificate passes (the handshake already refuses those where a
// certificate is required; the admin API then asks for a token); a call with
// one passes only when `verifier` accepts it. Refusals are UNAUTHENTICATED,
// with the reason, and logged at most kLogsPerSecond times a second (the
// rest are counted in the next line).
class ClientCertificateGate : public grpc::AuthMetadataProcessor {
 public:
  static constexpr int kLogsPerSecond = 20;

  // `listen`: the server's address, named in the log lines.
  ClientCertificateGate(std::shared_ptr<const ClientCertificateVerifier> verifier,
                        std::string listen);

  // Runs in gRPC's own thread: checks are quick and never wait.
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed, OutputMetadata* response) override;

 private:
  // True when this refusal may be logged now; `suppressed` gets how many
  // were not since the last that was.
  bool may_log(uint64_t& suppressed);

  std::shared_ptr<const ClientCertificateVerifier> verifier_;
  std::string listen_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point window_;  // GUARDED_BY(mu_)
  int logged_in_window_ = 0;                      // GUARDED_BY(mu_)
  uint64_t suppressed_ = 0;                       // GUARDED_BY(mu_)
};

// The connections (remote "ip:port", as peers_presenting gives them) of this
// process's servers whose client certificate a ClientCertificateGate refused
// in the last `within` (a sweep closes them long before), found with one
// channelz query; empty, and no query, when none was refused. The
// controller's connection guard closes them: a refused certificate keeps no
// connection open. A certificate is named once `grace` has passed since its
// last refusal, so that the client reads its UNAUTHENTICATED status before
// the connection ends (shut sooner, it saw "Socket closed", as from a server
// that is down), or once it has been refused again and again for `within`.
std::vector<std::string> connections_with_refused_certificates(
    std::chrono::seconds within = std::chrono::seconds(5),
    std::chrono::seconds grace = std::chrono::seconds(1));

}  // namespace onramp::cp
