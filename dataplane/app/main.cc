// onramp-dataplane: the DPDK shell around the packet core. Loads and checks
// the forwarding table before touching any device, sets up ports and worker
// lcores, forwards until a signal (or until idle, for replays), and prints the
// final counters.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/files.h"
#include "common/log.h"
#include "common/service.h"
#include "dataplane/app/build_cpus.h"
#include "dataplane/app/exception_path.h"
#include "dataplane/app/local_api.h"
#include "dataplane/app/maglev_cache_file.h"
#include "dataplane/app/neighbour_watch.h"
#include "dataplane/app/options.h"
#include "dataplane/app/ports.h"
#include "dataplane/app/stats_report.h"
#include "dataplane/app/table_publisher.h"
#include "dataplane/app/worker.h"
#include "dataplane/config/table_loader.h"
#include "dataplane/xdp/bpf_steering_maps.h"
#include "dataplane/xdp/steering.h"

namespace {

using namespace onramp;
using namespace onramp::dp;

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

// Exit-on-idle: stop once every worker has been without packets for the
// configured time.
bool all_idle(const std::vector<WorkerContext*>& workers, uint32_t idle_ms) {
  uint64_t now = clock_ms();
  for (const WorkerContext* w : workers)
    if (now - w->last_rx_ms.load(std::memory_order_relaxed) < idle_ms) return false;
  return true;
}

// Logs what the dataplane could not do, and why; returns its exit status.
int fail(std::string_view what, const Status& why) {
  log::error(what, {{"error", why.message()}});
  return 1;
}

// Where our arguments start: after the EAL's, past "--". Without "--", a
// plain --version or --help is ours too, answered without starting the EAL.
int app_arguments_start(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) return i + 1;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--version") == 0 || std::strcmp(argv[i], "--help") == 0) return 1;
  return argc;
}

// The maps of the steering program on every net_af_xdp port, or null when
// there is none. `required`: the dataplane gave the ports its program, so a
// port without its maps is an error; otherwise (a --vdev that names a
// program of its own) such a port is left to its program.
Result<std::unique_ptr<VipSteering>> open_steering(const Options& opts,
                                                   const std::vector<PortInfo>& ports,
                                                   bool required) {
  std::vector<std::unique_ptr<SteeringMaps>> maps;
  for (const PortInfo& p : ports) {
    if (p.driver != "net_af_xdp" || opts.xdp_program == "none") continue;
    auto opened = open_steering_maps(p.if_index);
    if (!opened.ok()) {
      if (required) return opened.status().prefixed("port " + std::to_string(p.id));
      log::warn("port left to its own XDP program: no VIP steering on it",
                {{"port", p.id}, {"error", opened.status().message()}});
      continue;
    }
    log::info("steering VIP traffic to the dataplane with XDP",
              {{"port", p.id}, {"interface_index", p.if_index}});
    maps.push_back(std::move(*opened));
  }
  if (maps.empty()) return std::unique_ptr<VipSteering>();
  return std::make_unique<VipSteering>(std::move(maps));
}

}  // namespace

int main(int argc, char** argv) {
  log::init("onramp-dataplane");
  // EAL arguments come first, ours after "--". Ours are read, and the table
  // checked, before the EAL touches any device.
  const int app_start = app_arguments_start(argc, argv);
  const int eal_argc = app_start == argc ? argc : app_start - 1;
  std::vector<char*> app_argv{argv[0]};
  for (int i = app_start; i < argc; ++i) app_argv.push_back(argv[i]);
  Options opts;
  if (auto code = parse_options(static_cast<int>(app_argv.size()), app_argv.data(), opts))
    return *code;
  // SIGUSR1/SIGUSR2 step the log level; before the EAL starts its threads.
  if (Status s = log::step_level_on_signals(); !s.ok())
    log::warn("log level stays as set", {{"error", s.message()}});
  TableSpec spec;  // empty until a table is loaded or applied
  if (!opts.table_path.empty()) {
    auto loaded = load_table_file(opts.table_path);
    if (loaded.ok() && opts.exception_vdev.empty()) {
      if (Status s = check_next_hop_given(*loaded); !s.ok()) loaded = s.prefixed(opts.table_path);
    }
    if (!loaded.ok()) return fail("cannot load the forwarding table", loaded.status());
    spec = std::move(*loaded);
  }

  // Before the EAL pins this thread to the main lcore's CPU.
  const BuildCpus process_cpus = BuildCpus::of_calling_thread();
  // net_af_xdp ports load onramp's steering program (xdp_prog=) unless their
  // --vdev names one: the PMD puts each queue's socket in the program's
  // xsks_map, and the dataplane fills its VIP maps below.
  bool xdp_program_added = false;
  std::vector<std::string> eal_args = with_xdp_program(
      std::vector<std::string>(argv, argv + eal_argc),
      opts.xdp_program == "none" ? std::string_view() : std::string_view(opts.xdp_program),
      &xdp_program_added);
  if (xdp_program_added && access(opts.xdp_program.c_str(), R_OK) != 0)
    return fail("cannot read the XDP steering program",
                error(opts.xdp_program + ": " + std::strerror(errno) +
                      " (--xdp-program names it; \"none\" sends every packet to the dataplane)"));
  std::vector<char*> eal_argv;
  for (std::string& a : eal_args) eal_argv.push_back(a.data());
  eal_argv.push_back(nullptr);
  if (rte_eal_init(eal_argc, eal_argv.data()) < 0)
    return fail("cannot start the EAL", error(rte_strerror(rte_errno)));

  // Worker lcores forward; the main lcore supervises, or forwards too when it
  // is the only one.
  std::vector<std::unique_ptr<WorkerContext>> owned;
  std::vector<unsigned> worker_lcores;
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) worker_lcores.push_back(lcore);
  const bool main_forwards = worker_lcores.empty();
  unsigned n_workers = main_forwards ? 1 : static_cast<unsigned>(worker_lcores.size());

  int exception_port = -1;
  if (!opts.exception_vdev.empty()) {
    auto probed = ExceptionPath::probe(opts.exception_vdev);
    if (!probed.ok()) {
      rte_eal_cleanup();
      return fail("cannot start the exception path", probed.status());
    }
    exception_port = *probed;
  }
  auto set_up = setup_ports(opts, static_cast<uint16_t>(n_workers), exception_port);
  if (!set_up.ok()) {
    rte_eal_cleanup();
    return fail("cannot set up the ports", set_up.status());
  }
  std::vector<PortInfo> ports = std::move(*set_up);
  auto steering_opened = open_steering(opts, ports, xdp_program_added);
  if (!steering_opened.ok()) {
    stop_ports(ports);
    rte_eal_cleanup();
    return fail("cannot find the XDP steering program's maps", steering_opened.status());
  }
  std::unique_ptr<VipSteering> steering = std::move(*steering_opened);
  // The kernel's frames leave by the first port, on the TX queue after the
  // workers'.
  std::unique_ptr<ExceptionPath> exception;
  if (exception_port >= 0) {
    auto started = ExceptionPath::start(opts.exception_vdev, static_cast<uint16_t>(exception_port),
                                        ports.front(), static_cast<uint16_t>(n_workers), n_workers,
                                        opts.exception_ring);
    if (!started.ok()) {
      stop_ports(ports);
      rte_eal_cleanup();
      return fail("cannot start the exception path", started.status());
    }
    exception = std::move(*started);
    log::info("exception path started", {{"port", exception->name()},
                                         {"ifindex", exception->ifindex()},
                                         {"nic", ports.front().name},
                                         {"mac", mac_to_string(ports.front().mac)}});
  }
  // The next hop's MAC, from the exception interface's neighbour table.
  std::unique_ptr<NeighbourWatch> neighbours;
  if (exception && exception->ifindex() > 0) {
    auto opened = NeighbourWatch::open(exception->ifindex());
    if (opened.ok())
      neighbours = std::move(*opened);
    else
      log::warn("the next hop's MAC is not learned", {{"error", opened.status().message()}});
  } else if (exception) {
    log::warn(
        "the next hop's MAC is not learned: the exception interface's kernel index is "
        "unknown (give iface= in --exception-vdev)",
        {{"exception_vdev", opts.exception_vdev}});
  }
  // No lcore polls yet: the first table is built on every CPU the process
  // was given (a restart's time to forward is mostly this build). Later
  // builds use the CPUs the polling lcores leave.
  // The Maglev tables of the previous run, if it left them: a restart with
  // the same table copies them instead of filling them.
  std::optional<MaglevCache> maglev_cache;
  if (!opts.maglev_cache.empty()) {
    const auto read_started = std::chrono::steady_clock::now();
    auto read = read_maglev_cache(opts.maglev_cache);
    if (read.ok()) {
      log::info("Maglev cache read",
                {{"path", opts.maglev_cache},
                 {"tables", read->tables()},
                 {"read_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - read_started)
                                 .count()}});
      maglev_cache = std::move(*read);
    } else {
      log::info("Maglev cache not used: tables are filled from scratch",
                {{"reason", read.status().message()}});
    }
  }
  const unsigned first_threads = process_cpus.threads(opts.build_threads);
  const auto build_started = std::chrono::steady_clock::now();
  auto table = process_cpus.run([&] {
    return ForwardingTable::build(spec, n_workers, nullptr, first_threads,
                                  static_cast<uint32_t>(clock_ms()),
                                  maglev_cache ? &*maglev_cache : nullptr);
  });
  const auto build_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - build_started)
                            .count();
  if (!table.ok()) {
    stop_ports(ports);
    rte_eal_cleanup();
    return fail(
        "cannot build the forwarding table",
        opts.table_path.empty() ? table.status() : table.status().prefixed(opts.table_path));
  }
  std::vector<unsigned> polling = worker_lcores;
  if (main_forwards) polling.push_back(rte_get_main_lcore());
  const BuildCpus swap_cpus = process_cpus.without_lcores(polling);
  const unsigned swap_threads = swap_cpus.threads(opts.build_threads);
  log::info("forwarding table built", {{"listeners", spec.listeners.size()},
                                       {"build_ms", build_ms},
                                       {"maglev_filled", (*table)->maglev_filled()},
                                       {"maglev_from_cache", (*table)->maglev_from_cache()},
                                       {"build_threads", first_threads},
                                       {"swap_build_threads", swap_threads}});
  std::unique_ptr<MaglevCacheWriter> cache_writer;
  if (!opts.maglev_cache.empty()) {
    cache_writer =
        std::make_unique<MaglevCacheWriter>(opts.maglev_cache, swap_cpus, std::chrono::seconds(5));
    // A start whose every table came from the file leaves it as it is.
    if (!spec.listeners.empty() && (*table)->maglev_filled() > 0)
      cache_writer->offer((*table)->maglev_tables());
  }
  TablePublisher publisher(n_workers, std::move(*table), swap_cpus, swap_threads);
  // An empty first table (the agent sends the real one) leaves the cache to
  // the first table applied.
  publisher.set_maglev_cache(spec.listeners.empty() ? std::move(maglev_cache) : std::nullopt,
                             cache_writer.get());
  if (steering) {
    // The relay port joins the set once the table carries it (relaying).
    steering->before_swap(steering_set(spec));
    publisher.set_swap_hooks(
        {.before = [&](const TableSpec& next) { steering->before_swap(steering_set(next)); },
         .after = [&](const TableSpec& next) { steering->after_swap(steering_set(next)); }});
  }
  // Ethernet + two VLAN tags around an MTU-sized packet.
  if (spec.mtu + 22u > opts.mbuf_size)
    log::warn(
        "frames the table's MTU allows are larger than --mbuf-size: they are dropped "
        "(oversized_frame)",
        {{"mtu", spec.mtu}, {"frame_bytes", spec.mtu + 22u}, {"mbuf_size", opts.mbuf_size}});

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  // A peer that went away (vhost-user socket, local API client) must not kill
  // us with SIGPIPE before the final counters are out.
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<WorkerContext*> workers;
  for (unsigned i = 0; i < n_workers; ++i) {
    auto w = std::make_unique<WorkerContext>();
    w->index = i;
    w->opts = &opts;
    w->ports = &ports;
    w->publisher = &publisher;
    w->stop = &g_stop;
    w->processor =
        std::make_unique<PacketProcessor>(i, opts.flows_per_lcore, opts.print_flows,
                                          opts.flow_log_ring, opts.flow_log_window_s * 1000);
    if (exception) {
      w->processor->set_exception_path(true);
      w->exception_ring = exception->ring(i);
    }
    if (neighbours) w->processor->set_learned_next_hop(&neighbours->learned());
    workers.push_back(w.get());
    owned.push_back(std::move(w));
  }
  log::info("started", {{"ports", ports.size()},
                        {"workers", n_workers},
                        {"listeners", spec.listeners.size()},
                        {"table_version", spec.version},
                        {"pop", spec.pop}});
  for (const PortInfo& p : ports)
    log::info("port started", {{"id", p.id}, {"name", p.name}, {"mac", mac_to_string(p.mac)}});
  // What the local API and the final statistics read.
  const StatsSources sources{.publisher = &publisher,
                             .ports = &ports,
                             .workers = &workers,
                             .steering = steering.get(),
                             .exception = exception.get(),
                             .neighbours = neighbours.get()};
  std::unique_ptr<LocalApi> api;
  if (!opts.api_socket.empty()) {
    auto started = LocalApi::start(opts.api_socket, publisher, sources);
    if (!started.ok()) {
      stop_ports(ports);
      rte_eal_cleanup();
      return fail("cannot start the local API", started.status());
    }
    api = std::move(*started);
    log::info("serving the local API", {{"socket", "unix:" + opts.api_socket}});
  }

  service::ready("forwarding: " + std::to_string(ports.size()) + " ports, table version " +
                 std::to_string(spec.version));
  if (main_forwards) {
    uint64_t next_check = 0;
    uint64_t next_exception = 0;
    const uint64_t exception_gap = rte_get_tsc_hz() / 50000;
    workers[0]->on_poll = [&] {
      // One lcore for all: the exception path runs between the worker's
      // polls (and keeps it from sleeping while the kernel talks).
      // At most every 20 us: net_tap's receive is a system call, which
      // would otherwise cost every busy poll a microsecond.
      if (exception && rte_rdtsc() >= next_exception) {
        next_exception = rte_rdtsc() + exception_gap;
        if (exception->poll()) workers[0]->last_rx_ms.store(clock_ms(), std::memory_order_relaxed);
      }
      uint64_t now = clock_ms();
      if (now < next_check) return;
      if (neighbours) neighbours->poll(now);
      next_check = now + 5;
      service::watchdog();
      if (opts.exit_on_idle_ms && all_idle(workers, opts.exit_on_idle_ms))
        g_stop.store(true, std::memory_order_relaxed);
    };
    worker_main(workers[0]);
  } else {
    for (unsigned i = 0; i < n_workers; ++i)
      rte_eal_remote_launch(worker_main, workers[i], worker_lcores[i]);
    // The main lcore supervises, and moves the exception path's packets
    // with an adaptive idle sleep of its own: spins while the kernel talks,
    // sleeps up to --main-idle-sleep-max-us when it does not (workers that
    // busy-poll do not make it spin on a path that is mostly idle).
    uint64_t next_check = 0;
    uint32_t sleep_us = 1;
    while (!g_stop.load(std::memory_order_relaxed)) {
      if (!exception) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      } else if (exception->poll()) {
        sleep_us = 1;
      } else if (opts.main_idle_sleep_max_us) {
        std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
        sleep_us = std::min(sleep_us * 2, opts.main_idle_sleep_max_us);
      }
      const uint64_t now = clock_ms();
      if (now < next_check) continue;
      next_check = now + 5;
      service::watchdog();
      if (neighbours) neighbours->poll(now);
      if (opts.exit_on_idle_ms && all_idle(workers, opts.exit_on_idle_ms)) g_stop.store(true);
    }
    rte_eal_mp_wait_lcore();
  }

  service::stopping();
  api.reset();
  onramp::v1::DataplaneStats final_stats = collect_stats(sources);
  std::fputs(stats_text(final_stats).c_str(), stdout);
  if (opts.print_flows) std::fputs(flows_text(sources).c_str(), stdout);
  std::fflush(stdout);
  if (!opts.stats_json.empty()) {
    if (opts.print_flows) add_flows(sources, final_stats);
    auto json = stats_json(final_stats);
    Status written =
        json.ok() ? write_file_atomically(opts.stats_json, *json, 0644) : json.status();
    if (!written.ok())
      log::error("cannot write the counters",
                 {{"file", opts.stats_json}, {"error", written.message()}});
  }
  neighbours.reset();
  exception.reset();
  stop_ports(ports);
  rte_eal_cleanup();
  return 0;
}
