// onramp-decap: runs on each endpoint host; strips the PoPs' IPIP/GUE
// encapsulation in XDP so applications see the client's address and answer
// it directly, and applies the endpoint group's port overrides both ways
// (docs/endpoint-setup.md).
#include <net/if.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <iostream>

#include "common/log.h"
#include "common/options.h"
#include "common/service.h"
#include "dataplane/decap/decap_program.h"
#include "dataplane/decap/prefix.h"

namespace {

namespace log = onramp::log;
using onramp::Result;
using onramp::Status;
using onramp::decap::AttachMode;
using onramp::decap::Counters;
using onramp::decap::DecapProgram;
using onramp::decap::PortOverride;
using onramp::decap::Prefix;

constexpr int kExitFailure = 1;

void print_counters(const std::string& interface, const Counters& c) {
  std::cout << "interface=" << interface << ' ' << onramp::decap::format_counters(c) << std::endl;
}

const CLI::Validator kPrefix(
    [](std::string& s) -> std::string { return onramp::decap::parse_prefix(s).error(); }, "PREFIX");
const CLI::Validator kPortOverride(
    [](std::string& s) -> std::string { return onramp::decap::parse_port_override(s).error(); },
    "VIP:PORT=PORT");

// One instance per interface and network namespace: an abstract unix socket
// is both (its name space is the network namespace's) and the kernel frees
// it when the process dies, however it dies. Returns the socket, or an error
// when another instance holds it.
Result<int> take_instance_lock(const std::string& interface) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return onramp::error(std::string("cannot create the instance lock socket: ") +
                         std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "onramp-decap/" + interface;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    Status why = onramp::error(
        errno == EADDRINUSE
            ? "another onramp-decap already runs on " + interface + " in this network namespace"
            : std::string("cannot take the instance lock: ") + std::strerror(errno));
    close(fd);
    return why;
  }
  return fd;
}

// Logs what onramp-decap could not do, and why; returns the exit status.
int fail(std::string_view what, const std::string& interface, const Status& why) {
  log::error(what, {{"interface", interface}, {"error", why.message()}});
  return kExitFailure;
}

int show_stats(const std::string& interface, int ifindex) {
  auto c = onramp::decap::read_attached_counters(ifindex);
  if (!c.ok()) return fail("cannot read the counters", interface, c.status());
  print_counters(interface, *c);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  log::init("onramp-decap");
  std::string interface;
  std::vector<std::string> allow_text;
  std::vector<std::string> override_text;
  std::string reply_interface;
  std::vector<uint16_t> gue_ports{6080};
  std::string mode_text = "auto";
  unsigned stats_interval_s = 60;
  bool stats_only = false;

  CLI::App app(
      "onramp-decap: strips the PoPs' IPIP/GUE encapsulation (XDP) from packets sent by the "
      "allowed PoP prefixes, so applications see the client's address and reply directly.",
      "onramp-decap");
  onramp::opts::add_common_flags(app);
  onramp::opts::add_config_file(app, "/etc/onramp/decap.conf");
  app.add_option("--interface", interface, "Interface the PoPs' tunnel packets arrive on")
      ->required();
  app.add_option("--allow", allow_text,
                 "PoP tunnel source prefix to accept (repeatable; IPv4 or IPv6)")
      ->check(kPrefix);
  app.add_option("--gue-port", gue_ports, "UDP destination port of GUE (repeatable)")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--port-override", override_text,
                 "VIP:LISTENER_PORT=ENDPOINT_PORT[/tcp|/udp] (IPv6 VIP in brackets; no protocol: "
                 "both): packets to the VIP's listener port reach the application on the "
                 "endpoint port, its replies leave from the listener port (repeatable)")
      ->check(kPortOverride);
  app.add_option("--reply-interface", reply_interface,
                 "Interface the replies to clients leave by, where the TC egress program that "
                 "rewrites their source port is attached (default: --interface; only with "
                 "--port-override)");
  app.add_option("--mode", mode_text,
                 "XDP mode: native (driver), generic (skb), or auto (native, else generic)")
      ->check(CLI::IsMember({"auto", "native", "generic"}))
      ->capture_default_str();
  app.add_option("--stats-interval-s", stats_interval_s,
                 "Print the counters every N seconds (0: only on exit)")
      ->capture_default_str();
  app.add_flag("--stats", stats_only,
               "Print the counters of the onramp-decap running on --interface, then exit");
  unsigned ifindex = 0, reply_ifindex = 0;
  app.final_callback([&] {
    ifindex = if_nametoindex(interface.c_str());
    if (ifindex == 0)
      throw CLI::ValidationError(
          "--interface", "unknown interface \"" + interface + "\" (in this network namespace)");
    if (!stats_only && allow_text.empty())
      throw CLI::ValidationError(
          "--allow", "required: the PoP tunnel source prefixes to accept tunnel packets from");
    if (reply_interface.empty()) reply_interface = interface;
    reply_ifindex = if_nametoindex(reply_interface.c_str());
    if (reply_ifindex == 0)
      throw CLI::ValidationError("--reply-interface", "unknown interface \"" + reply_interface +
                                                          "\" (in this network namespace)");
  });
  if (auto code = onramp::opts::parse(app, argc, argv)) return *code;
  // SIGUSR1/SIGUSR2 step the log level (docs/observability.md).
  if (Status s = log::step_level_on_signals(); !s.ok())
    log::warn("log level stays as set", {{"error", s.message()}});
  if (stats_only) return show_stats(interface, static_cast<int>(ifindex));

  std::vector<Prefix> allow;
  for (const auto& text : allow_text) allow.push_back(*onramp::decap::parse_prefix(text));
  std::vector<PortOverride> overrides;
  for (const auto& text : override_text) {
    auto parsed = onramp::decap::parse_port_override(text);  // kPortOverride checked it
    if (!parsed.ok()) return fail("cannot start", interface, parsed.status());
    overrides.insert(overrides.end(), parsed->begin(), parsed->end());
  }
  if (Status s = onramp::decap::check_port_overrides(overrides); !s.ok())
    return fail("cannot start", interface, s);
  std::sort(gue_ports.begin(), gue_ports.end());
  gue_ports.erase(std::unique(gue_ports.begin(), gue_ports.end()), gue_ports.end());
  const AttachMode mode = mode_text == "native"    ? AttachMode::native
                          : mode_text == "generic" ? AttachMode::generic
                                                   : AttachMode::automatic;

  auto lock = take_instance_lock(interface);
  if (!lock.ok()) return fail("cannot start", interface, lock.status());

  // Signals are taken synchronously by the main loop (sigtimedwait), so
  // nothing runs in a handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);

  auto loaded = DecapProgram::load();
  if (!loaded.ok()) return fail("cannot load the BPF program", interface, loaded.status());
  std::unique_ptr<DecapProgram> program = std::move(*loaded);
  if (Status s = program->configure(allow, gue_ports); !s.ok())
    return fail("cannot configure the BPF program", interface, s);
  if (Status s = program->set_port_overrides(overrides); !s.ok())
    return fail("cannot configure the BPF program", interface, s);
  // Only packets to this host are unwrapped; its addresses are read again
  // every kLocalRefresh, so an address added or removed is followed.
  auto refresh_local = [&]() -> Status {
    auto addresses = onramp::decap::host_addresses();
    if (!addresses.ok()) return addresses.status();
    return program->set_local_addresses(*addresses);
  };
  if (Status s = refresh_local(); !s.ok())
    return fail("cannot read this host's addresses", interface, s);
  auto attached = program->attach(static_cast<int>(ifindex), mode);
  if (!attached.ok()) return fail("cannot attach", interface, attached.status());
  if (!attached->note.empty())
    log::info("replaced a leftover program", {{"interface", interface}, {"note", attached->note}});
  std::string allowed, ports;
  for (const auto& p : allow) allowed += (allowed.empty() ? "" : ",") + to_string(p);
  for (uint16_t p : gue_ports) ports += (ports.empty() ? "" : ",") + std::to_string(p);
  log::info("attached the XDP program", {{"interface", interface},
                                         {"mode", attached->mode},
                                         {"allow", allowed},
                                         {"gue_ports", ports}});
  // The replies' half of the port overrides. Without overrides there is
  // nothing to rewrite and nothing is attached.
  if (!overrides.empty()) {
    auto reply = program->attach_reply(static_cast<int>(reply_ifindex));
    if (!reply.ok()) {
      if (Status s = program->detach(); !s.ok()) fail("cannot detach", interface, s);
      return fail("cannot attach the reply program", reply_interface, reply.status());
    }
    if (!reply->note.empty())
      log::info("replaced a leftover program",
                {{"interface", reply_interface}, {"note", reply->note}});
    std::string rewrites;
    for (const PortOverride& o : overrides)
      rewrites += (rewrites.empty() ? "" : ",") + onramp::decap::to_string(o);
    log::info("attached the reply program",
              {{"interface", reply_interface}, {"port_overrides", rewrites}});
  } else if (auto removed = program->remove_leftover_reply(static_cast<int>(reply_ifindex));
             !removed.ok()) {
    if (Status s = program->detach(); !s.ok()) fail("cannot detach", interface, s);
    return fail("cannot remove a leftover reply program", reply_interface, removed.status());
  } else if (!removed->empty()) {
    log::info("removed a leftover program", {{"interface", reply_interface}, {"note", *removed}});
  }

  onramp::service::ready("decapsulating on " + interface + " (" + attached->mode + " mode)");
  // Wake for the next counters line, and often enough for systemd's
  // watchdog (half its interval).
  using Clock = std::chrono::steady_clock;
  const std::chrono::nanoseconds stats_period = std::chrono::seconds(stats_interval_s);
  std::chrono::nanoseconds longest_wait = std::chrono::hours(1);
  if (stats_interval_s) longest_wait = std::min(longest_wait, stats_period);
  if (auto w = onramp::service::watchdog_interval(); w.count() > 0)
    longest_wait = std::min<std::chrono::nanoseconds>(longest_wait, w / 2);
  constexpr std::chrono::seconds kLocalRefresh(2);
  longest_wait = std::min<std::chrono::nanoseconds>(longest_wait, kLocalRefresh);
  auto next_stats = Clock::now() + stats_period;
  int status = 0;
  for (;;) {
    const std::chrono::nanoseconds until_stats =
        stats_interval_s ? next_stats - Clock::now() : longest_wait;
    const auto wait = std::clamp<std::chrono::nanoseconds>(until_stats, {}, longest_wait);
    timespec ts{.tv_sec = static_cast<time_t>(wait.count() / 1000000000),
                .tv_nsec = static_cast<long>(wait.count() % 1000000000)};
    const int sig = sigtimedwait(&stop_signals, nullptr, &ts);
    if (sig > 0) {
      log::info("caught a signal, detaching", {{"signal", strsignal(sig)}});
      break;
    }
    onramp::service::watchdog();
    if (Status s = refresh_local(); !s.ok())
      log::warn("cannot refresh this host's addresses",
                {{"interface", interface}, {"error", s.message()}});
    if (stats_interval_s && Clock::now() >= next_stats) {
      next_stats += stats_period;
      if (auto c = program->read_counters(); c.ok())
        print_counters(interface, *c);
      else
        log::warn("cannot read the counters", {{"interface", interface}, {"error", c.error()}});
    }
  }
  onramp::service::stopping();
  if (auto c = program->read_counters(); c.ok())
    print_counters(interface, *c);
  else
    status = fail("cannot read the counters", interface, c.status());
  if (Status s = program->detach(); !s.ok()) status = fail("cannot detach", interface, s);
  if (Status s = program->detach_reply(); !s.ok())
    status = fail("cannot detach the reply program", reply_interface, s);
  close(*lock);
  return status;
}
