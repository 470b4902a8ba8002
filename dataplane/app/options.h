// Command-line options of onramp-dataplane (after the EAL's own, past "--").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace onramp::dp {

struct Options {
  std::string table_path;
  // Where the Maglev tables in force are kept for the next start
  // (maglev_cache_file.h); "" keeps none.
  std::string maglev_cache;
  uint32_t flows_per_lcore = 1u << 20;
  uint16_t burst = 32;
  // Frame bytes one mbuf holds (its data room less the headroom). Frames
  // larger than this are dropped (oversized_frame): set it to the largest
  // frame the PoP's links carry, e.g. 9216 for jumbo frames.
  uint16_t mbuf_size = 2048;
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  // Packet buffers per pool, at least; 0: sized for the queues' rings. A
  // net_pcap port with infinite_rx keeps its whole capture in buffers of
  // this pool, so a benchmark replaying a big capture raises it.
  uint32_t mbufs = 0;
  // Adaptive idle sleep: after this many empty polls in a row a worker sleeps,
  // doubling from 1 us up to idle_sleep_max_us, and spins again on traffic.
  uint32_t idle_spin_polls = 256;
  uint32_t idle_sleep_max_us = 500;
  // The main lcore's own cap, when it moves the exception path's packets:
  // workers that busy-poll (idle_sleep_max_us 0) do not make it spin.
  uint32_t main_idle_sleep_max_us = 500;
  // Exit once no port has received a packet for this long (0: run until a
  // signal). For pcap replay.
  uint32_t exit_on_idle_ms = 0;
  // Threads that fill Maglev tables (0: one per CPU the process may use
  // that no polling lcore holds; at start, before any polls, every CPU).
  uint32_t build_threads = 0;
  // Flow logs: records each worker's ring holds (0: no flow logs and no
  // memory for them), and the capture window of long flows.
  uint32_t flow_log_ring = 8192;
  uint32_t flow_log_window_s = 60;
  bool promiscuous = false;
  bool print_flows = false;
  std::string stats_json;
  // Unix socket of the local gRPC API (onramp.v1.DataplaneService); empty:
  // no API.
  std::string api_socket;
  // The XDP program net_af_xdp ports load (xdp_prog=, unless their --vdev
  // names one): onramp's steering program, installed with the dataplane.
  // "none": the PMD's own program, which sends every packet to the dataplane.
  std::string xdp_program;
  // The exception path (docs/dataplane.md): a vdev for the kernel's side,
  // e.g. "net_tap0,iface=onramp0"; empty: off, and what is not for a VIP is
  // dropped (non_ip, non_vip).
  std::string exception_vdev;
  // Packets each worker's exception ring holds.
  uint32_t exception_ring = 1024;
};

// Parses argv (the part after the EAL arguments; argv[0] the program) into
// `out`. nullopt: go on; otherwise main returns the value: 0 after --help or
// --version, 2 after a usage error (its message, naming the flag, on stderr).
std::optional<int> parse_options(int argc, char** argv, Options& out);

}  // namespace onramp::dp
