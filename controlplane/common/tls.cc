#include "controlplane/common/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/security/credentials.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "common/files.h"
#include "controlplane/common/openssl_util.h"

namespace onramp::cp {

Result<HostPort> split_host_port(std::string_view target) {
  for (std::string_view scheme : {"dns:///", "dns:", "ipv4:", "ipv6:"})
    if (target.substr(0, scheme.size()) == scheme) {
      target.remove_prefix(scheme.size());
      break;
    }
  HostPort out;
  if (!target.empty() && target[0] == '[') {
    size_t end = target.find(']');
    if (end == std::string_view::npos) return error(std::string(target) + ": \"[\" without \"]\"");
    out.host = std::string(target.substr(1, end - 1));
    std::string_view rest = target.substr(end + 1);
    if (!rest.empty()) {
      if (rest[0] != ':')
        return error(std::string(target) + ": after \"]\" only \":port\" may follow");
      out.port = std::string(rest.substr(1));
    }
  } else if (std::count(target.begin(), target.end(), ':') == 1) {
    size_t colon = target.find(':');
    out.host = std::string(target.substr(0, colon));
    out.port = std::string(target.substr(colon + 1));
  } else {
    out.host = std::string(target);
  }
  if (out.host.empty()) return error(std::string(target) + ": no host");
  return out;
}

std::optional<ListenAddress> parse_listen_address(std::string_view listen) {
  Result<HostPort> split = split_host_port(listen);
  if (!split.ok() || split->port.empty() || split->port.size() > 5 ||
      split->port.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  const int port = std::stoi(split->port);
  if (port > 65535) return std::nullopt;
  return ListenAddress{split->host, port};
}

bool is_loopback_target(const std::string& target) {
  if (target.rfind("unix:", 0) == 0) return true;
  Result<HostPort> split = split_host_port(target);
  if (!split.ok()) return false;
  const std::string& host = split->host;
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

namespace {

using ossl::asn1_time;
using ossl::Bio;
using ossl::Ctx;
using ossl::Ssl;
using ossl::X509Ptr;

// The dates of the first certificate in `path`: "" when valid now.
std::string outside_dates(const std::string& path) {
  Result<std::string> pem = read_file(path);
  if (!pem.ok()) return "";
  Bio bio = ossl::memory(*pem);
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return "";
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) < 0)
    return "it expired on " + asn1_time(X509_get0_notAfter(cert.get()));
  if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) > 0)
    return "it is not valid before " + asn1_time(X509_get0_notBefore(cert.get()));
  return "";
}

// A TCP connection to host:port within the timeout, or -1.
int connect_to(const std::string& target, int timeout_ms) {
  Result<HostPort> split = split_host_port(target);
  if (!split.ok() || split->port.empty()) return -1;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(split->host.c_str(), split->port.c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int err = 0;
    socklen_t len = sizeof(err);
    pollfd p{fd, POLLOUT, 0};
    if ((connect(fd, a->ai_addr, a->ai_addrlen) != 0 &&
         (errno != EINPROGRESS || poll(&p, 1, timeout_ms) != 1 ||
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0))) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) return -1;
  // Blocking from here on, each read and write bounded by the timeout.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

}  // namespace

std::string certificate_refusal(const std::string& target, const TlsFiles& files, int timeout_ms) {
  if (files.cert.empty() || files.key.empty()) return "";
  if (std::string dates = outside_dates(files.cert); !dates.empty()) return dates;

  Ctx ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx || SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    ERR_clear_error();
    return "";
  }
  // Only the server's verdict on our certificate matters here, not ours on
  // its certificate; gRPC servers speak HTTP/2 only.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof(kAlpn));
  // The alert the server sends, if any, seen through the info callback.
  static thread_local std::string alert;
  alert.clear();
  SSL_CTX_set_info_callback(ctx.get(), [](const SSL*, int where, int ret) {
    if ((where & SSL_CB_READ_ALERT) && SSL_alert_type_string(ret)[0] == 'F')
      alert = SSL_alert_desc_string_long(ret);
  });

  int fd = connect_to(target, timeout_ms);
  if (fd < 0) return "";
  Ssl ssl(SSL_new(ctx.get()));
  std::string reason;
  if (ssl && SSL_set_fd(ssl.get(), fd) == 1) {
    // TLS 1.3 servers judge the client certificate after the client's side
    // of the handshake is done, and a gRPC server speaks first (its HTTP/2
    // settings) once it has: a server that closes the connection, with an
    // alert or without a word, before its first byte refused the
    // certificate. A server that says nothing within the timeout is
    // inconclusive.
    bool refused = false;
    if (SSL_connect(ssl.get()) == 1) {
      char byte;
      if (SSL_read(ssl.get(), &byte, 1) <= 0) {
        int err = SSL_get_error(ssl.get(), 0);
        refused = err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SSL ||
                  (err == SSL_ERROR_SYSCALL && errno != EAGAIN && errno != EWOULDBLOCK);
      }
    } else {
      refused = !alert.empty();
    }
    if (refused)
      reason = alert.empty() ? "the server closed the connection after the TLS handshake"
                             : "the server sent TLS alert \"" + alert + "\"";
    if (refused)
      reason += " (a certificate not signed by the CA the server trusts, or one it revokes)";
  }
  ERR_clear_error();
  close(fd);
  return reason;
}

}  // namespace onramp::cp
