#include "dataplane/app/options.h"

#ifndef ONRAMP_XDP_PROGRAM
#define ONRAMP_XDP_PROGRAM "/usr/lib/onramp/onramp-steer.bpf.o"
#endif

#include <limits>

#include "common/options.h"

namespace onramp::dp {
namespace {

constexpr const char* kDescription =
    "Forwards TCP/UDP flows for anycast VIPs to backend endpoints (IPIP or GUE).\n"
    "The options below follow the EAL's, after \"--\":\n"
    "  onramp-dataplane [EAL options] -- [--table FILE] [--api-socket PATH] [options]";

constexpr const char* kExample = R"(
Example (replay a capture, no NIC needed):
  onramp-dataplane --no-pci --no-huge -m 512 --no-shconf -l 0 \
    --vdev=net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap -- \
    --table table.textproto --exit-on-idle-ms 300
)";

}  // namespace

std::optional<int> parse_options(int argc, char** argv, Options& out) {
  CLI::App app(kDescription, "onramp-dataplane");
  app.footer(kExample);
  // A flag given twice takes its last value (a script adds to a default
  // command line).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  opts::add_common_flags(app);
  // No default file: a dataplane is one of several on a host
  // (onramp-dataplane@NAME reads /etc/onramp/dataplane-NAME.conf).
  opts::add_config_file(app, "");
  app.add_option("--table", out.table_path,
                 "Forwarding table, protobuf text format; without it the dataplane starts empty "
                 "(every packet non_vip) until a table is applied through the local API")
      ->type_name("FILE");
  app.add_option("--flows-per-lcore", out.flows_per_lcore, "Flow table capacity per worker lcore")
      ->check(CLI::Range(8u, 1u << 28))
      ->capture_default_str();
  app.add_option("--burst", out.burst, "RX burst size, 1..64")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--mbuf-size", out.mbuf_size,
                 "Frame bytes per packet buffer, 1024..60000 (9216 for jumbo frames)")
      ->check(CLI::Range(1024, 60000))
      ->capture_default_str();
  app.add_option("--rx-desc", out.rx_descriptors, "RX descriptors per queue")
      ->check(CLI::Range(32, 16384))
      ->capture_default_str();
  app.add_option("--tx-desc", out.tx_descriptors, "TX descriptors per queue")
      ->check(CLI::Range(32, 16384))
      ->capture_default_str();
  app.add_option("--mbufs", out.mbufs,
                 "Packet buffers per pool, at least (default: sized for the rings; a net_pcap "
                 "capture replayed with infinite_rx=1 needs one per packet on top)")
      ->check(CLI::Range(0u, 1u << 26));
  app.add_option("--idle-spin-polls", out.idle_spin_polls, "Empty polls before sleeping")
      ->check(CLI::Range(0u, std::numeric_limits<uint32_t>::max()))
      ->capture_default_str();
  app.add_option("--idle-sleep-max-us", out.idle_sleep_max_us, "Longest idle sleep, 0 = busy-poll")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--main-idle-sleep-max-us", out.main_idle_sleep_max_us,
                 "Longest idle sleep of the main lcore when it only moves the exception path's "
                 "packets (workers on other lcores), 0 = busy-poll")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--exit-on-idle-ms", out.exit_on_idle_ms,
                 "Exit when no packet arrived for N ms (pcap replay)")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--build-threads", out.build_threads,
                 "Threads that build Maglev tables; 0: one per CPU no polling lcore holds "
                 "(at start: every CPU the process may use)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--maglev-cache", out.maglev_cache,
                 "Keep the Maglev tables in force in FILE, rewritten after table changes (at most "
                 "every 5 s), so that a restart copies them instead of filling them again; a "
                 "missing or damaged file only costs the fill")
      ->type_name("FILE");
  app.add_option("--flow-log-ring", out.flow_log_ring,
                 "Flow log records each worker's ring holds, rounded up to a power of two; "
                 "0: no flow logs (nor their memory) whatever the table says")
      ->check(CLI::Range(0u, 1u << 20))
      ->capture_default_str();
  app.add_option("--flow-log-window-s", out.flow_log_window_s,
                 "Capture window of flow logs: a long flow gets a record at least this often")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_flag("--promiscuous", out.promiscuous, "Put every port in promiscuous mode");
  app.add_flag("--print-flows", out.print_flows, "List every live flow and its endpoint at exit");
  app.add_option("--stats-json", out.stats_json, "Write the final counters as JSON to FILE")
      ->type_name("FILE");
  app.add_option("--api-socket", out.api_socket,
                 "Serve the local gRPC API (apply table, stats, trace, health) on this unix "
                 "socket, root only (e.g. /run/onramp/dataplane.sock)")
      ->type_name("PATH");
  out.xdp_program = ONRAMP_XDP_PROGRAM;
  app.add_option("--xdp-program", out.xdp_program,
                 "XDP program of net_af_xdp ports: VIP traffic to the dataplane, the rest to "
                 "the kernel; \"none\": the PMD's own (every packet to the dataplane)")
      ->type_name("FILE")
      ->capture_default_str();
  app.add_option("--exception-vdev", out.exception_vdev,
                 "Send what is not for a VIP (ARP, ND, BGP, the PoP's own addresses) to the "
                 "kernel through this DPDK vdev, and the kernel's frames out of the first port: "
                 "net_tap0,iface=onramp0 (or virtio_user0,path=/dev/vhost-net,iface=onramp0)")
      ->type_name("DEVARGS");
  app.add_option("--exception-ring", out.exception_ring,
                 "Packets per worker waiting for the exception interface")
      ->check(CLI::Range(64u, 65536u))
      ->capture_default_str();
  app.final_callback([&out] {
    if (out.table_path.empty() && out.api_socket.empty())
      throw CLI::ValidationError("no --table and no --api-socket: nothing could ever be forwarded");
  });
  return opts::parse(app, argc, argv);
}

}  // namespace onramp::dp
