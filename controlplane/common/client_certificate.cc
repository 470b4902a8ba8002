#include "controlplane/common/client_certificate.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <map>

#include "common/log.h"
#include "controlplane/common/channelz_peers.h"
#include "controlplane/common/openssl_util.h"

namespace onramp::cp {
namespace {

using ossl::asn1_time;
using ossl::Bio;
using ossl::bio_text;
using ossl::memory;
using ossl::StoreCtx;
using ossl::X509Ptr;

struct StackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509Stack = std::unique_ptr<STACK_OF(X509), StackDeleter>;

std::string subject_of(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0)
    return "";
  return bio_text(bio.get());
}

// Every certificate in `pem`, in order.
X509Stack certificates(std::string_view pem) {
  X509Stack out(sk_X509_new_null());
  Bio bio = memory(pem);
  while (bio && out) {
    X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (!c) break;
    if (sk_X509_push(out.get(), c) <= 0) X509_free(c);
  }
  ERR_clear_error();  // the end of the text reads as an error
  return out;
}

// Why OpenSSL refused, in an operator's words.
std::string refusal(int err, X509* at, bool leaf) {
  const std::string whose = leaf ? "it" : "its CA certificate " + subject_of(at);
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return whose + " expired on " + asn1_time(X509_get0_notAfter(at));
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return whose + " is not valid before " + asn1_time(X509_get0_notBefore(at));
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return "unknown CA: it is not signed by the client CA this server trusts";
    case X509_V_ERR_INVALID_PURPOSE:
      return whose + " is not for TLS clients (its key usage does not allow it)";
    default:
      return std::string("certificate verify failed: ") + X509_verify_cert_error_string(err);
  }
}

// Certificates refused lately, by certificate_hash: the first and the last
// refusal of a run of them (a run ends after `within` without one).
struct Refusals {
  std::chrono::steady_clock::time_point first, last;
};
std::mutex refused_mu;
std::map<size_t, Refusals> refused;  // GUARDED_BY(refused_mu)
constexpr size_t kMaxRemembered = 4096;

void remember_refused(std::string_view pem) {
  const size_t h = certificate_hash(pem);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(refused_mu);
  auto it = refused.find(h);
  if (it != refused.end())
    it->second.last = now;
  else if (refused.size() < kMaxRemembered)
    refused.emplace(h, Refusals{now, now});
}

}  // namespace

std::vector<std::string> connections_with_refused_certificates(std::chrono::seconds within,
                                                               std::chrono::seconds grace) {
  std::vector<size_t> hashes;
  {
    std::lock_guard<std::mutex> lock(refused_mu);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = refused.begin(); it != refused.end();)
      it = now - it->second.last > within ? refused.erase(it) : std::next(it);
    for (const auto& [h, r] : refused)
      if (now - r.last >= grace || now - r.first >= within) hashes.push_back(h);
  }
  if (hashes.empty()) return {};
  return peers_presenting_any(hashes);
}

struct ClientCertificateVerifier::Store {
  ~Store() { X509_STORE_free(store); }
  X509_STORE* store = nullptr;
};

ClientCertificateVerifier::~ClientCertificateVerifier() = default;

Result<std::unique_ptr<ClientCertificateVerifier>> ClientCertificateVerifier::from_pem(
    const std::string& ca_pem) {
  std::unique_ptr<ClientCertificateVerifier> v(new ClientCertificateVerifier());
  v->store_ = std::make_unique<Store>();
  v->store_->store = X509_STORE_new();
  if (!v->store_->store) return error("--tls-client-ca: out of memory");
  X509Stack cas = certificates(ca_pem);
  const int n = cas ? sk_X509_num(cas.get()) : 0;
  if (!ca_pem.empty() && n == 0) return error("--tls-client-ca: no PEM certificate in it");
  for (int i = 0; i < n; ++i)
    if (X509_STORE_add_cert(v->store_->store, sk_X509_value(cas.get(), i)) != 1) {
      ERR_clear_error();
      return error("--tls-client-ca: certificate " + std::to_string(i + 1) + " is refused");
    }
  return v;
}

ClientCertificateVerifier::Verdict ClientCertificateVerifier::verify(
    std::string_view leaf_pem, std::string_view chain_pem) const {
  Verdict out;
  Bio bio = memory(leaf_pem);
  X509Ptr leaf(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!leaf) {
    ERR_clear_error();
    out.reason = "the certificate cannot be read";
    return out;
  }
  out.subject = subject_of(leaf.get());
  X509Stack untrusted = certificates(chain_pem);
  StoreCtx ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store_->store, leaf.get(), untrusted.get()) != 1 ||
      X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT) != 1) {
    ERR_clear_error();
    out.reason = "the certificate cannot be checked (out of memory)";
    return out;
  }
  if (X509_verify_cert(ctx.get()) == 1) {
    out.ok = true;
    return out;
  }
  const int err = X509_STORE_CTX_get_error(ctx.get());
  X509* at = X509_STORE_CTX_get_current_cert(ctx.get());
  const bool is_leaf = X509_STORE_CTX_get_error_depth(ctx.get()) == 0 || at == nullptr;
  out.reason = refusal(err, at ? at : leaf.get(), is_leaf);
  ERR_clear_error();
  return out;
}

ClientCertificateGate::ClientCertificateGate(
    std::shared_ptr<const ClientCertificateVerifier> verifier, std::string listen)
    : verifier_(std::move(verifier)), listen_(std::move(listen)) {}

bool ClientCertificateGate::may_log(uint64_t& suppressed) {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - window_ >= std::chrono::seconds(1)) {
    window_ = now;
    logged_in_window_ = 0;
  }
  if (logged_in_window_ >= kLogsPerSecond) {
    ++suppressed_;
    return false;
  }
  ++logged_in_window_;
  suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

grpc::Status ClientCertificateGate::Process(const InputMetadata& metadata,
                                            grpc::AuthContext* context, OutputMetadata*,
                                            OutputMetadata*) {
  auto leaf = context->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  // No certificate: nothing to verify. Where one is required the handshake
  // has already refused the connection.
  if (leaf.empty()) return grpc::Status::OK;
  auto chain = context->FindPropertyValues(GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME);
  std::string_view leaf_pem(leaf.front().data(), leaf.front().size());
  std::string_view chain_pem = chain.empty()
                                   ? std::string_view()
                                   : std::string_view(chain.front().data(), chain.front().size());
  ClientCertificateVerifier::Verdict v = verifier_->verify(leaf_pem, chain_pem);
  if (v.ok) return grpc::Status::OK;
  remember_refused(leaf_pem);

  uint64_t suppressed = 0;
  if (may_log(suppressed)) {
    std::string peers;
    for (const std::string& p : peers_presenting(leaf_pem)) peers += (peers.empty() ? "" : ",") + p;
    std::string call;
    if (auto it = metadata.find(":path"); it != metadata.end())
      call.assign(it->second.data(), it->second.size());
    log::warn("client certificate refused", {{"listen", listen_},
                                             {"peer", peers.empty() ? "unknown" : peers},
                                             {"subject", v.subject},
                                             {"reason", v.reason},
                                             {"call", call},
                                             {"refusals_not_logged", suppressed}});
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "the server refuses the client certificate " +
                          (v.subject.empty() ? std::string() : "(" + v.subject + ")") + ": " +
                          v.reason);
}

}  // namespace onramp::cp
