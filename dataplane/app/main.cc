// onramp-dataplane: the DPDK shell around the packet core. Loads and checks
// the forwarding table before touching any device, sets up ports and worker
// lcores, forwards until a signal (or until idle, for replays), and prints the
// final counters.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "dataplane/app/local_api.h"
#include "dataplane/app/options.h"
#include "dataplane/app/ports.h"
#include "dataplane/app/stats_report.h"
#include "dataplane/app/table_publisher.h"
#include "dataplane/app/worker.h"
#include "dataplane/config/table_loader.h"

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

int fail(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "onramp-dataplane: %s\n", msg.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // EAL arguments come first, ours after "--". Ours are read, and the table
  // checked, before the EAL touches any device.
  int split = argc;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      split = i;
      break;
    }
  std::vector<char*> app_argv{argv[0]};
  for (int i = split + 1; i < argc; ++i) app_argv.push_back(argv[i]);
  Options opts;
  bool help = false;
  std::string err = parse_options(static_cast<int>(app_argv.size()), app_argv.data(), opts, help);
  if (help) {
    std::fputs(options_usage(), stdout);
    return 0;
  }
  if (!err.empty()) {
    std::fprintf(stderr, "onramp-dataplane: %s\n\n%s", err.c_str(), options_usage());
    return 2;
  }
  TableSpec spec;  // empty until a table is loaded or applied
  if (!opts.table_path.empty()) {
    auto loaded = load_table_file(opts.table_path);
    if (!loaded.ok()) return fail(loaded.error());
    spec = std::move(*loaded);
  } else if (opts.api_socket.empty()) {
    std::fprintf(stderr, "onramp-dataplane: %s\n\n%s",
                 "no --table and no --api-socket: nothing could ever be forwarded",
                 options_usage());
    return 2;
  }

  if (rte_eal_init(split, argv) < 0)
    return fail(std::string("EAL init failed: ") + rte_strerror(rte_errno));

  // Worker lcores forward; the main lcore supervises, or forwards too when it
  // is the only one.
  std::vector<std::unique_ptr<WorkerContext>> owned;
  std::vector<unsigned> worker_lcores;
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) worker_lcores.push_back(lcore);
  const bool main_forwards = worker_lcores.empty();
  unsigned n_workers = main_forwards ? 1 : static_cast<unsigned>(worker_lcores.size());

  std::vector<PortInfo> ports;
  if (err = setup_ports(opts, static_cast<uint16_t>(n_workers), ports); !err.empty()) {
    rte_eal_cleanup();
    return fail(err);
  }
  std::unique_ptr<ForwardingTable> table = ForwardingTable::build(spec, n_workers, err);
  if (!table) {
    stop_ports(ports);
    rte_eal_cleanup();
    return fail(opts.table_path + ": " + err);
  }
  TablePublisher publisher(n_workers, std::move(table));
  // Ethernet + two VLAN tags around an MTU-sized packet.
  if (spec.mtu + 22u > opts.mbuf_size)
    std::fprintf(stderr,
                 "onramp-dataplane: warning: table mtu %u needs frames up to %u bytes but "
                 "--mbuf-size is %u: larger frames are dropped (oversized_frame)\n",
                 spec.mtu, spec.mtu + 22u, opts.mbuf_size);

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
    w->processor = std::make_unique<PacketProcessor>(i, opts.flows_per_lcore, opts.print_flows);
    workers.push_back(w.get());
    owned.push_back(std::move(w));
  }
  std::printf(
      "onramp-dataplane: %zu port%s, %u worker lcore%s, %zu listener%s, table version %llu%s\n",
      ports.size(), ports.size() == 1 ? "" : "s", n_workers, n_workers == 1 ? "" : "s",
      spec.listeners.size(), spec.listeners.size() == 1 ? "" : "s",
      static_cast<unsigned long long>(spec.version),
      spec.pop.empty() ? "" : (", pop " + spec.pop).c_str());
  for (const PortInfo& p : ports)
    std::printf("  port %u %s %s\n", p.id, p.name.c_str(), mac_to_string(p.mac).c_str());
  std::unique_ptr<LocalApi> api;
  if (!opts.api_socket.empty()) {
    StatsSources sources{.publisher = &publisher, .ports = &ports, .workers = &workers};
    api = LocalApi::start(opts.api_socket, publisher, sources, err);
    if (!api) {
      stop_ports(ports);
      rte_eal_cleanup();
      return fail(err);
    }
    std::printf("  local API on unix:%s\n", opts.api_socket.c_str());
  }
  std::fflush(stdout);

  if (main_forwards) {
    uint64_t next_check = 0;
    workers[0]->on_poll = [&] {
      uint64_t now = clock_ms();
      if (opts.exit_on_idle_ms && now >= next_check) {
        next_check = now + 5;
        if (all_idle(workers, opts.exit_on_idle_ms)) g_stop.store(true, std::memory_order_relaxed);
      }
    };
    worker_main(workers[0]);
  } else {
    for (unsigned i = 0; i < n_workers; ++i)
      rte_eal_remote_launch(worker_main, workers[i], worker_lcores[i]);
    while (!g_stop.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (opts.exit_on_idle_ms && all_idle(workers, opts.exit_on_idle_ms)) g_stop.store(true);
    }
    rte_eal_mp_wait_lcore();
  }

  api.reset();
  StatsSources sources{.publisher = &publisher, .ports = &ports, .workers = &workers};
  onramp::v1::DataplaneStats final_stats = collect_stats(sources);
  std::fputs(stats_text(final_stats).c_str(), stdout);
  if (opts.print_flows) std::fputs(flows_text(sources).c_str(), stdout);
  std::fflush(stdout);
  if (!opts.stats_json.empty()) {
    std::ofstream out(opts.stats_json);
    out << stats_json(final_stats, opts.print_flows ? flows_json(sources) : "");
    if (!out) std::fprintf(stderr, "onramp-dataplane: cannot write %s\n", opts.stats_json.c_str());
  }
  stop_ports(ports);
  rte_eal_cleanup();
  return 0;
}
