// onramp-decap: runs on each endpoint host; strips the PoPs' IPIP/GUE
// encapsulation in XDP so applications see the client's address and answer
// it directly (docs/endpoint-setup.md).
#include <net/if.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>

#include "dataplane/decap/decap_program.h"
#include "dataplane/decap/prefix.h"

namespace {

using onramp::decap::AttachMode;
using onramp::decap::Counters;
using onramp::decap::DecapProgram;
using onramp::decap::Prefix;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

void say(const std::string& msg) { std::cerr << "onramp-decap: " << msg << std::endl; }

void print_counters(const std::string& interface, const Counters& c) {
  std::cout << "interface=" << interface << ' ' << onramp::decap::format_counters(c) << std::endl;
}

const CLI::Validator kPrefix(
    [](std::string& s) -> std::string {
      Prefix p;
      return onramp::decap::parse_prefix(s, p);
    },
    "PREFIX");

// One instance per interface and network namespace: an abstract unix socket
// is both (its name space is the network namespace's) and the kernel frees
// it when the process dies, however it dies. Returns the socket, or -1 when
// another instance holds it.
int take_instance_lock(const std::string& interface, std::string& error) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("cannot create the instance lock socket: ") + std::strerror(errno);
    return -1;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "onramp-decap/" + interface;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    error = errno == EADDRINUSE
                ? "another onramp-decap already runs on " + interface + " in this network namespace"
                : std::string("cannot take the instance lock: ") + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

int show_stats(const std::string& interface, int ifindex) {
  Counters c{};
  if (auto err = onramp::decap::read_attached_counters(ifindex, c); !err.empty()) {
    say(interface + ": " + err);
    return kExitFailure;
  }
  print_counters(interface, c);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string interface;
  std::vector<std::string> allow_text;
  std::vector<uint16_t> gue_ports{6080};
  std::string mode_text = "auto";
  unsigned stats_interval_s = 60;
  bool stats_only = false;

  CLI::App app(
      "onramp-decap: strips the PoPs' IPIP/GUE encapsulation (XDP) from packets sent by the "
      "allowed PoP prefixes, so applications see the client's address and reply directly.",
      "onramp-decap");
  app.add_option("--interface", interface, "Interface the PoPs' tunnel packets arrive on")
      ->required();
  app.add_option("--allow", allow_text,
                 "PoP tunnel source prefix to accept (repeatable; IPv4 or IPv6)")
      ->check(kPrefix);
  app.add_option("--gue-port", gue_ports, "UDP destination port of GUE (repeatable)")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--mode", mode_text,
                 "XDP mode: native (driver), generic (skb), or auto (native, else generic)")
      ->check(CLI::IsMember({"auto", "native", "generic"}))
      ->capture_default_str();
  app.add_option("--stats-interval-s", stats_interval_s,
                 "Print the counters every N seconds (0: only on exit)")
      ->capture_default_str();
  app.add_flag("--stats", stats_only,
               "Print the counters of the onramp-decap running on --interface, then exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }

  const unsigned ifindex = if_nametoindex(interface.c_str());
  if (ifindex == 0) {
    say("--interface: unknown interface \"" + interface + "\" (in this network namespace)");
    return kExitUsage;
  }
  if (stats_only) return show_stats(interface, static_cast<int>(ifindex));

  if (allow_text.empty()) {
    say("--allow is required: the PoP tunnel source prefixes to accept tunnel packets from");
    return kExitUsage;
  }
  std::vector<Prefix> allow;
  for (const auto& text : allow_text) {
    Prefix p;
    onramp::decap::parse_prefix(text, p);  // checked by kPrefix
    allow.push_back(p);
  }
  std::sort(gue_ports.begin(), gue_ports.end());
  gue_ports.erase(std::unique(gue_ports.begin(), gue_ports.end()), gue_ports.end());
  const AttachMode mode = mode_text == "native"    ? AttachMode::native
                          : mode_text == "generic" ? AttachMode::generic
                                                   : AttachMode::automatic;

  std::string error;
  const int lock = take_instance_lock(interface, error);
  if (lock < 0) {
    say(error);
    return kExitFailure;
  }

  // Signals are taken synchronously by the main loop (sigtimedwait), so
  // nothing runs in a handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);

  std::unique_ptr<DecapProgram> program;
  if (auto err = DecapProgram::load(program); !err.empty()) {
    say(err);
    return kExitFailure;
  }
  if (auto err = program->configure(allow, gue_ports); !err.empty()) {
    say(err);
    return kExitFailure;
  }
  std::string mode_used, note;
  if (auto err = program->attach(static_cast<int>(ifindex), mode, mode_used, note); !err.empty()) {
    say(interface + ": " + err);
    return kExitFailure;
  }
  if (!note.empty()) say(interface + ": " + note);
  std::string allowed, ports;
  for (const auto& p : allow) allowed += (allowed.empty() ? "" : ",") + to_string(p);
  for (uint16_t p : gue_ports) ports += (ports.empty() ? "" : ",") + std::to_string(p);
  say("attached to " + interface + " (" + mode_used + " mode); allow " + allowed + "; GUE ports " +
      ports);

  int status = 0;
  for (;;) {
    timespec wait{.tv_sec = stats_interval_s ? static_cast<time_t>(stats_interval_s) : 3600,
                  .tv_nsec = 0};
    const int sig = sigtimedwait(&stop_signals, nullptr, &wait);
    if (sig > 0) {
      say(std::string("caught ") + strsignal(sig) + ", detaching");
      break;
    }
    if (errno == EAGAIN && stats_interval_s) {
      Counters c{};
      if (auto err = program->read_counters(c); !err.empty())
        say(err);
      else
        print_counters(interface, c);
    }
  }
  Counters c{};
  if (auto err = program->read_counters(c); !err.empty()) {
    say(err);
    status = kExitFailure;
  } else {
    print_counters(interface, c);
  }
  if (auto err = program->detach(); !err.empty()) {
    say(interface + ": " + err);
    status = kExitFailure;
  }
  close(lock);
  return status;
}
