#include "dataplane/app/options.h"

#include <getopt.h>

#include <cerrno>
#include <cstdlib>
#include <limits>

namespace onramp::dp {
namespace {

bool parse_u32(const char* text, uint64_t max, uint32_t& out) {
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno || !end || *end || end == text || v > max) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

const char* options_usage() {
  return R"(usage: onramp-dataplane [EAL options] -- [--table FILE] [--api-socket PATH] [options]

Forwards TCP/UDP flows for anycast VIPs to backend endpoints (IPIP or GUE).

  --table FILE             forwarding table, protobuf text format; without it
                           the dataplane starts empty (every packet non_vip)
                           until a table is applied through the local API
  --flows-per-lcore N      flow table capacity per worker lcore (default 1048576)
  --burst N                RX burst size, 1..64 (default 32)
  --mbuf-size N            frame bytes per packet buffer, 1024..60000 (default
                           2048; 9216 for jumbo frames)
  --rx-desc N, --tx-desc N descriptors per queue (default 1024)
  --mbufs N                packet buffers per pool, at least (default: sized for
                           the rings; a net_pcap capture replayed with
                           infinite_rx=1 needs one per packet on top)
  --idle-spin-polls N      empty polls before sleeping (default 256)
  --idle-sleep-max-us N    longest idle sleep, 0 = busy-poll (default 500)
  --exit-on-idle-ms N      exit when no packet arrived for N ms (pcap replay)
  --promiscuous            put every port in promiscuous mode
  --print-flows            list every live flow and its endpoint at exit
  --stats-json FILE        write the final counters as JSON to FILE
  --api-socket PATH        serve the local gRPC API (apply table, stats, trace,
                           health) on this unix socket, root only
                           (e.g. /run/onramp/dataplane.sock)
  --help                   this text

Example (replay a capture, no NIC needed):
  onramp-dataplane --no-pci --no-huge -m 512 --no-shconf -l 0 \
    --vdev=net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap -- \
    --table table.textproto --exit-on-idle-ms 300
)";
}

std::string parse_options(int argc, char** argv, Options& out, bool& help) {
  enum {
    kTable = 256,
    kFlows,
    kBurst,
    kMbufSize,
    kRxDesc,
    kTxDesc,
    kSpin,
    kSleep,
    kExitIdle,
    kPromisc,
    kPrintFlows,
    kStatsJson,
    kApiSocket,
    kMbufs,
    kHelp
  };
  static const option long_opts[] = {
      {"table", required_argument, nullptr, kTable},
      {"flows-per-lcore", required_argument, nullptr, kFlows},
      {"burst", required_argument, nullptr, kBurst},
      {"mbuf-size", required_argument, nullptr, kMbufSize},
      {"rx-desc", required_argument, nullptr, kRxDesc},
      {"tx-desc", required_argument, nullptr, kTxDesc},
      {"idle-spin-polls", required_argument, nullptr, kSpin},
      {"idle-sleep-max-us", required_argument, nullptr, kSleep},
      {"exit-on-idle-ms", required_argument, nullptr, kExitIdle},
      {"promiscuous", no_argument, nullptr, kPromisc},
      {"print-flows", no_argument, nullptr, kPrintFlows},
      {"stats-json", required_argument, nullptr, kStatsJson},
      {"api-socket", required_argument, nullptr, kApiSocket},
      {"mbufs", required_argument, nullptr, kMbufs},
      {"help", no_argument, nullptr, kHelp},
      {nullptr, 0, nullptr, 0},
  };
  help = false;
  optind = 1;
  opterr = 0;
  int c;
  uint32_t v;
  while ((c = getopt_long(argc, argv, "", long_opts, nullptr)) != -1) {
    auto number = [&](const char* name, uint64_t min, uint64_t max) -> std::string {
      if (!parse_u32(optarg, max, v) || v < min)
        return std::string("--") + name + ": \"" + optarg + "\" is not a number in " +
               std::to_string(min) + ".." + std::to_string(max);
      return "";
    };
    std::string err;
    switch (c) {
      case kTable:
        out.table_path = optarg;
        break;
      case kFlows:
        if ((err = number("flows-per-lcore", 8, 1u << 28)).empty()) out.flows_per_lcore = v;
        break;
      case kBurst:
        if ((err = number("burst", 1, 64)).empty()) out.burst = static_cast<uint16_t>(v);
        break;
      case kMbufSize:
        if ((err = number("mbuf-size", 1024, 60000)).empty())
          out.mbuf_size = static_cast<uint16_t>(v);
        break;
      case kRxDesc:
        if ((err = number("rx-desc", 32, 16384)).empty())
          out.rx_descriptors = static_cast<uint16_t>(v);
        break;
      case kTxDesc:
        if ((err = number("tx-desc", 32, 16384)).empty())
          out.tx_descriptors = static_cast<uint16_t>(v);
        break;
      case kSpin:
        if ((err = number("idle-spin-polls", 0, std::numeric_limits<uint32_t>::max())).empty())
          out.idle_spin_polls = v;
        break;
      case kSleep:
        if ((err = number("idle-sleep-max-us", 0, 100000)).empty()) out.idle_sleep_max_us = v;
        break;
      case kExitIdle:
        if ((err = number("exit-on-idle-ms", 1, 3600000)).empty()) out.exit_on_idle_ms = v;
        break;
      case kPromisc:
        out.promiscuous = true;
        break;
      case kPrintFlows:
        out.print_flows = true;
        break;
      case kStatsJson:
        out.stats_json = optarg;
        break;
      case kApiSocket:
        out.api_socket = optarg;
        break;
      case kMbufs:
        if ((err = number("mbufs", 0, 1u << 26)).empty()) out.mbufs = v;
        break;
      case kHelp:
        help = true;
        return "";
      default:
        return std::string("unknown option \"") + argv[optind - 1] + "\"";
    }
    if (!err.empty()) return err;
  }
  if (optind < argc) return std::string("unexpected argument \"") + argv[optind] + "\"";
  return "";
}

}  // namespace onramp::dp
