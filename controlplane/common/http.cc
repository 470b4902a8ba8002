#include "controlplane/common/http.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>

namespace onramp::cp {

std::optional<BasicCredentials> basic_credentials(std::string_view authorization) {
  constexpr std::string_view kBasic = "Basic ";
  if (authorization.substr(0, kBasic.size()) != kBasic) return std::nullopt;
  std::string_view encoded = authorization.substr(kBasic.size());
  if (encoded.empty() || encoded.size() % 4 != 0 || encoded.size() > 4096) return std::nullopt;
  std::string decoded(encoded.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(encoded.data()),
                                static_cast<int>(encoded.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as decoded zero bytes.
  size_t size = static_cast<size_t>(n);
  for (size_t i = encoded.size(); i > 0 && encoded[i - 1] == '=' && size > 0; --i) --size;
  decoded.resize(size);
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded.substr(0, colon), decoded.substr(colon + 1)};
}

bool equal_in_constant_time(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool load_tls_identity(SSL_CTX& ctx, const std::string& cert, const std::string& key) {
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  return SSL_CTX_use_certificate_chain_file(&ctx, cert.c_str()) == 1 &&
         SSL_CTX_use_PrivateKey_file(&ctx, key.c_str(), SSL_FILETYPE_PEM) == 1 &&
         SSL_CTX_check_private_key(&ctx) == 1;
}

int bind_listener(httplib::Server& http, const ListenAddress& where) {
  if (where.port == 0) return std::max(http.bind_to_any_port(where.host), 0);
  return http.bind_to_port(where.host, where.port) ? where.port : 0;
}

}  // namespace onramp::cp
