// A real etcd member as a child process for the store tests: one member on
// loopback ports of its own, with its own data directory, started from
// $ONRAMP_ETCD (meson sets it to the etcd it found) and stopped by PID.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/controller/tests/controller_process.h"

namespace onramp::ctl::test {

inline std::string etcd_binary() {
  const char* p = std::getenv("ONRAMP_ETCD");
  return p ? p : "";
}

class EtcdProcess {
 public:
  EtcdProcess() {
    char dir[] = "/tmp/onramp-etcd-test-XXXXXX";
    dir_ = ::mkdtemp(dir);
    client_port_ = free_port();
    int peer_port = free_port();
    std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
    std::vector<std::string> args = {etcd_binary(),
                                     "--name=t",
                                     "--data-dir=" + dir_ + "/data",
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=t=" + peer,
                                     "--log-level=warn"};
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open((dir_ + "/etcd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !port_open(client_port_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~EtcdProcess() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  bool listening() const { return pid_ > 0 && port_open(client_port_); }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int client_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace onramp::ctl::test
