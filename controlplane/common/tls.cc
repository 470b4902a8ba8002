#include "controlplane/common/tls.h"

#include <arpa/inet.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>

#include "common/files.h"

namespace onramp::cp {

bool is_loopback_target(const std::string& target) {
  if (target.rfind("unix:", 0) == 0) return true;
  std::string host = target;
  if (host.rfind("ipv4:", 0) == 0) host = host.substr(5);
  if (host.rfind("ipv6:", 0) == 0) host = host.substr(5);
  if (!host.empty() && host[0] == '[') {
    auto end = host.find(']');
    if (end == std::string::npos) return false;
    host = host.substr(1, end - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

Result<std::string> read_pem(const std::string& flag, const std::string& path) {
  Result<std::string> text = read_file(path);
  if (!text.ok()) return text.status().prefixed(flag);
  if (text->empty()) return error(flag + ": " + path + ": empty");
  return text;
}

Result<std::shared_ptr<grpc::ChannelCredentials>> client_credentials(const std::string& target,
                                                                     const TlsFiles& files,
                                                                     bool plaintext) {
  if (plaintext) {
    if (!is_loopback_target(target))
      return error("--plaintext: refused for " + target + ", which is not a loopback address");
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions opts;
  if (!files.ca.empty()) {
    Result<std::string> ca = read_pem("--tls-ca", files.ca);
    if (!ca.ok()) return ca.status();
    opts.pem_root_certs = std::move(*ca);
  }
  if (files.cert.empty() != files.key.empty())
    return error("--tls-cert and --tls-key: give both or neither");
  if (!files.cert.empty()) {
    Result<std::string> cert = read_pem("--tls-cert", files.cert);
    if (!cert.ok()) return cert.status();
    Result<std::string> key = read_pem("--tls-key", files.key);
    if (!key.ok()) return key.status();
    opts.pem_cert_chain = std::move(*cert);
    opts.pem_private_key = std::move(*key);
  }
  return grpc::SslCredentials(opts);
}

}  // namespace onramp::cp
