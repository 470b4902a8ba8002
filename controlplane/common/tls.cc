#include "controlplane/common/tls.h"

#include <arpa/inet.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <fstream>
#include <sstream>

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

std::string read_file(const std::string& path, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = path + ": cannot open";
    return "";
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::shared_ptr<grpc::ChannelCredentials> client_credentials(const std::string& target,
                                                             const TlsFiles& files, bool plaintext,
                                                             std::string& error) {
  if (plaintext) {
    if (!is_loopback_target(target)) {
      error = "--plaintext: refused for " + target + ", which is not a loopback address";
      return nullptr;
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions opts;
  if (!files.ca.empty() && (opts.pem_root_certs = read_file(files.ca, error)).empty()) {
    error = "--tls-ca: " + error;
    return nullptr;
  }
  if (files.cert.empty() != files.key.empty()) {
    error = "--tls-cert and --tls-key: give both or neither";
    return nullptr;
  }
  if (!files.cert.empty()) {
    if ((opts.pem_cert_chain = read_file(files.cert, error)).empty()) {
      error = "--tls-cert: " + error;
      return nullptr;
    }
    if ((opts.pem_private_key = read_file(files.key, error)).empty()) {
      error = "--tls-key: " + error;
      return nullptr;
    }
  }
  return grpc::SslCredentials(opts);
}

}  // namespace onramp::cp
