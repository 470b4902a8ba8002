// OpenSSL objects owned by unique_ptr, and the few conversions to text the
// control plane's TLS code needs (tls.cc, client_certificate.cc).
#pragma once

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>
#include <string>
#include <string_view>

namespace onramp::cp::ossl {

template <auto fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    fn(p);
  }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using Ctx = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using Ssl = std::unique_ptr<SSL, Deleter<SSL_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;

// A read-only memory BIO over `text` (which must outlive it).
inline Bio memory(std::string_view text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// What a memory BIO holds.
inline std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : "";
}

// "Dec  4 07:14:09 2026 GMT"; "?" when it cannot be printed.
inline std::string asn1_time(const ASN1_TIME* t) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || ASN1_TIME_print(bio.get(), t) != 1) return "?";
  return bio_text(bio.get());
}

}  // namespace onramp::cp::ossl
