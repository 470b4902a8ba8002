// Small local servers the prober and announcer tests talk to: a TCP
// listener, an HTTP server answering a fixed status (or never), the same
// over TLS with certificates made at test time, a UDP echo, and a fake BIRD
// control socket. Each serves on loopback (or a unix socket
// in a temporary folder) from its own thread until destroyed.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace onramp::agent::test {

// A bound loopback socket of `type` (127.0.0.1, or ::1 when `v6`); its
// port in `port`; -1 when it cannot be bound.
inline int bind_loopback(int type, uint16_t& port, bool v6 = false) {
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  }
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                  : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}

// A loopback port nothing listens on (bound once, then closed).
inline uint16_t closed_port(int type = SOCK_STREAM) {
  uint16_t port = 0;
  int fd = bind_loopback(type, port);
  ::close(fd);
  return port;
}

// Runs `serve(fd)` for each readable poll of `fd` on a thread until stopped.
class PollThread {
 public:
  ~PollThread() { stop(); }
  template <typename F>
  void run(int fd, F serve) {
    fd_ = fd;
    thread_ = std::thread([this, serve] {
      while (!stop_.load()) {
        pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
        if (::poll(&p, 1, 20) > 0) serve(fd_);
      }
    });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Accepts connections and closes them at once: a TCP connect succeeds.
class TcpListener {
 public:
  TcpListener() {
    int fd = bind_loopback(SOCK_STREAM, port);
    ::listen(fd, 64);
    poll_.run(fd, [](int l) {
      int c = ::accept(l, nullptr, nullptr);
      if (c >= 0) ::close(c);
    });
  }
  uint16_t port = 0;

 private:
  PollThread poll_;
};

// Answers every request with `status` (0: accepts and never answers).
class HttpServer {
 public:
  explicit HttpServer(int status, bool v6 = false) : status_(status) {
    int fd = bind_loopback(SOCK_STREAM, port, v6);
    ok = fd >= 0;
    ::listen(fd, 64);
    poll_.run(fd, [this](int l) {
      int c = ::accept(l, nullptr, nullptr);
      if (c < 0) return;
      if (status_.load() == 0) {
        std::lock_guard<std::mutex> lock(mu_);
        held_.push_back(c);
        return;
      }
      std::string req;
      char buf[1024];
      while (req.find("\r\n\r\n") == std::string::npos) {
        pollfd p{.fd = c, .events = POLLIN, .revents = 0};
        if (::poll(&p, 1, 500) <= 0) break;
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
      }
      std::string resp = "HTTP/1.1 " + std::to_string(status_.load()) +
                         " Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      [[maybe_unused]] ssize_t n = ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~HttpServer() {
    poll_.stop();
    for (int c : held_) ::close(c);
  }
  void set_status(int s) { status_ = s; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  uint16_t port = 0;
  bool ok = false;

 private:
  std::atomic<int> status_;
  std::mutex mu_;
  std::vector<int> held_;
  std::vector<std::string> requests_;
  PollThread poll_;
};

// A test CA, a second CA nobody trusts, and a server certificate from the
// first for 127.0.0.1 and "probe.test", made with the openssl command in a
// temporary folder (removed when destroyed). `ok` is false when openssl
// failed.
struct TestCertificates {
  TestCertificates() {
    char tmpl[] = "/tmp/onramp-tls-XXXXXX";
    if (!::mkdtemp(tmpl)) return;
    dir = tmpl;
    ca = dir + "/ca.pem";
    other_ca = dir + "/other-ca.pem";
    cert = dir + "/server.pem";
    key = dir + "/server.key";
    const std::string d = dir;
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string script =
        "cd " + d + " && exec >openssl.log 2>&1 && " + "openssl req -x509" + ec +
        " -keyout ca.key -out ca.pem -days 2 -subj /CN=onramp-test-ca" + " && openssl req -x509" +
        ec + " -keyout other.key -out other-ca.pem -days 2 -subj /CN=someone-else" +
        " && openssl req" + ec + " -keyout server.key -out server.csr -subj /CN=probe.test" +
        " && printf 'subjectAltName=IP:127.0.0.1,DNS:probe.test\\n' > san.ext" +
        " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial" +
        " -out server.pem -days 2 -extfile san.ext";
    ok = std::system(script.c_str()) == 0;
  }
  ~TestCertificates() {
    if (dir.empty()) return;
    [[maybe_unused]] int rc = std::system(("rm -rf " + dir).c_str());
  }
  std::string dir, ca, other_ca, cert, key;
  bool ok = false;
};

// HttpServer over TLS with `certs`' server certificate: answers `status`
// after waiting `handshake_delay` (real time) before its handshake, and
// keeps the SNI name each client sent ("" when none).
class HttpsServer {
 public:
  HttpsServer(const TestCertificates& certs, int status,
              std::chrono::milliseconds handshake_delay = std::chrono::milliseconds(0))
      : status_(status), delay_(handshake_delay) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    ok = ctx_ && SSL_CTX_use_certificate_chain_file(ctx_, certs.cert.c_str()) == 1 &&
         SSL_CTX_use_PrivateKey_file(ctx_, certs.key.c_str(), SSL_FILETYPE_PEM) == 1;
    int fd = bind_loopback(SOCK_STREAM, port);
    ok = ok && fd >= 0;
    ::listen(fd, 64);
    poll_.run(fd, [this](int l) { serve(l); });
  }
  ~HttpsServer() {
    poll_.stop();
    SSL_CTX_free(ctx_);
  }
  // Every request's text, and the SNI name of every handshake.
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  std::vector<std::string> server_names() {
    std::lock_guard<std::mutex> lock(mu_);
    return server_names_;
  }
  uint16_t port = 0;
  bool ok = false;

 private:
  void serve(int l) {
    int c = ::accept(l, nullptr, nullptr);
    if (c < 0) return;
    timeval tv{.tv_sec = 1, .tv_usec = 0};  // a client that gave up never hangs the server
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, c);
    bool accepted = SSL_accept(ssl) == 1;
    // The client's name, even when it then refused the certificate.
    const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    {
      std::lock_guard<std::mutex> lock(mu_);
      server_names_.push_back(sni ? sni : "");
    }
    if (accepted) {
      std::string req;
      char buf[1024];
      while (req.find("\r\n\r\n") == std::string::npos) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
      }
      std::string resp = "HTTP/1.1 " + std::to_string(status_) +
                         " Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ::close(c);
  }

  const int status_;
  const std::chrono::milliseconds delay_;
  SSL_CTX* ctx_ = nullptr;
  std::mutex mu_;
  std::vector<std::string> requests_;
  std::vector<std::string> server_names_;
  PollThread poll_;
};

// Sends back `prefix` + each datagram it receives.
class UdpEcho {
 public:
  explicit UdpEcho(std::string prefix = "") : prefix_(std::move(prefix)) {
    int fd = bind_loopback(SOCK_DGRAM, port);
    poll_.run(fd, [this](int s) {
      char buf[2048];
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(s, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) return;
      std::string out = prefix_ + std::string(buf, static_cast<size_t>(n));
      ::sendto(s, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    });
  }
  uint16_t port = 0;

 private:
  std::string prefix_;
  PollThread poll_;
};

// BIRD's control socket as far as the agent uses it: a greeting, then
// "configure" answered with `reply` (default: reconfigured).
class FakeBird {
 public:
  explicit FakeBird(const std::string& path) : path(path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ::unlink(path.c_str());
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 8);
    poll_.run(fd, [this](int l) {
      int c = ::accept(l, nullptr, nullptr);
      if (c < 0) return;
      std::string hello = "0001 BIRD 2.0.12 ready.\n";
      [[maybe_unused]] ssize_t w = ::send(c, hello.data(), hello.size(), MSG_NOSIGNAL);
      std::string line;
      char ch;
      while (::recv(c, &ch, 1, 0) == 1 && ch != '\n') line += ch;
      std::string answer;
      {
        std::lock_guard<std::mutex> lock(mu_);
        commands_.push_back(line);
        answer = line == "configure" ? reply_ : "9001 Parse error\n";
      }
      w = ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~FakeBird() {
    poll_.stop();
    ::unlink(path.c_str());
  }
  void set_reply(std::string r) {
    std::lock_guard<std::mutex> lock(mu_);
    reply_ = std::move(r);
  }
  std::vector<std::string> commands() {
    std::lock_guard<std::mutex> lock(mu_);
    return commands_;
  }
  std::string path;

 private:
  std::mutex mu_;
  std::string reply_ = "0002-Reading configuration from /etc/bird/bird.conf\n0003 Reconfigured\n";
  std::vector<std::string> commands_;
  PollThread poll_;
};

}  // namespace onramp::agent::test
