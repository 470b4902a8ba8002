// The packet core alone (PacketProcessor::process_burst, no DPDK, no PMD):
// nanoseconds per packet for established and new flows, with few flows (the
// flow table in cache) and with a million (in DRAM). It separates what the
// fast path costs from what net_pcap's copy costs, and it runs under perf or
// callgrind without an EAL. Frames are 64-byte TCP/IPv4 to one listener of
// 64 endpoints, as in the W1/W2 workloads. Relaying over the backbone has two
// cases of its own: the ingress with every endpoint behind a relay PoP
// (W1's frames, two layers of headers out), and the relay hop (W1's frames as
// an ingress relays them, 102 bytes, sent on to their endpoint).
#include <benchmark/benchmark.h>
#include <time.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "dataplane/core/net_headers.h"
#include "dataplane/core/processor.h"

namespace {

using namespace onramp;
using namespace onramp::dp;

constexpr uint32_t kHeadroom = 128;
constexpr uint32_t kSlot = 256;  // bytes per packet buffer
constexpr uint32_t kFrame = 60;
// Flow table slots per flow for the established case: a quarter full, as W1.
constexpr uint32_t kTableFactor = 4;

const MacAddress kPortMac = {2, 0x70, 0x63, 0x61, 0x70, 0};

IpAddress v4(uint32_t n) {
  uint8_t b[4] = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                  static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  return IpAddress::from_v4(b);
}

// Which path the packets take (see the file comment).
enum class Path { direct, ingress_relayed, relay_hop };

constexpr uint32_t kTunnel = 0xC0000201;  // this PoP
constexpr uint32_t kPeer = 0xC0000209;    // the other PoP: relay, or the ingress it relays for

std::unique_ptr<ForwardingTable> w1_table(bool gue, Path path = Path::direct) {
  TableSpec spec{.version = 1,
                 .pop = "BEN1",
                 .tunnel_source_v4 = v4(kTunnel),
                 .next_hop_mac = {2, 0, 0, 0, 0, 0xfe}};
  if (path == Path::relay_hop) spec.relay_peers = {v4(kPeer)};
  ListenerSpec l{.name = "web", .vips = {v4(0xCB00710A)}, .port_ranges = {{80, 80}}};
  for (uint32_t i = 1; i <= 64; ++i) {
    l.endpoints.push_back({.address = v4(0x0A010000 + i),
                           .weight = 100,
                           .mode = gue ? ForwardingMode::gue : ForwardingMode::ipip});
    if (path == Path::ingress_relayed) l.endpoints.back().relay = v4(kPeer);
  }
  spec.listeners.push_back(l);
  auto built = ForwardingTable::build(spec, 1);
  if (!built.ok()) return nullptr;
  return std::move(*built);
}

void write_frame(uint8_t* f, uint32_t client, uint16_t sport, uint8_t flags) {
  std::memset(f, 0, kFrame);
  const uint8_t eth[14] = {2, 0x70, 0x63, 0x61, 0x70, 0, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
  std::memcpy(f, eth, 14);
  uint8_t* ip = f + 14;
  ip[0] = 0x45;
  store_be16(ip + 2, 40);
  store_be16(ip + 6, 0x4000);
  ip[8] = 64;
  ip[9] = kProtoTcp;
  store_be32(ip + 12, client);
  store_be32(ip + 16, 0xCB00710A);
  store_be16(ip + 10, checksum_fold(checksum_partial(ip, 20)));
  uint8_t* tcp = ip + 20;
  store_be16(tcp, sport);
  store_be16(tcp + 2, 80);
  tcp[12] = 0x50;
  tcp[13] = flags;
}

// The frame an ingress (kPeer) sends this PoP to relay W1's frame `f` to
// endpoint `endpoint`: IPv4 + UDP to port 6080, then IPIP. kRelayedFrame
// bytes.
constexpr uint32_t kRelayedFrame = kFrame - 6 + 48;  // less the padding of a 60-byte frame
void wrap_relayed(uint8_t* out, const uint8_t* f, uint32_t endpoint) {
  std::memcpy(out, f, 14);
  uint8_t* ip = out + 14;
  std::memset(ip, 0, 48);
  ip[0] = 0x45;
  store_be16(ip + 2, 20 + 8 + 20 + 40);
  store_be16(ip + 6, 0x4000);
  ip[8] = 64;
  ip[9] = kProtoUdp;
  store_be32(ip + 12, kPeer);
  store_be32(ip + 16, kTunnel);
  store_be16(ip + 10, checksum_fold(checksum_partial(ip, 20)));
  uint8_t* udp = ip + 20;
  store_be16(udp, 0x8000 | (endpoint & 0x7fff));
  store_be16(udp + 2, kDefaultGuePort);
  store_be16(udp + 4, 8 + 20 + 40);
  uint8_t* tunnel = udp + 8;
  tunnel[0] = 0x45;
  store_be16(tunnel + 2, 20 + 40);
  store_be16(tunnel + 6, 0x4000);
  tunnel[8] = 64;
  tunnel[9] = kProtoIpip;
  store_be32(tunnel + 12, kPeer);
  store_be32(tunnel + 16, endpoint);
  store_be16(tunnel + 10, checksum_fold(checksum_partial(tunnel, 20)));
  std::memcpy(tunnel + 20, f + 14, 40);
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Replays `flows` distinct flows in random order through one processor.
// new_flows: SYNs against a flow table half their number, so nearly every
// packet misses and evicts (W2); otherwise a table 4x the flows, warmed up
// by one pass, so every packet hits (W1).
void run(benchmark::State& state, bool new_flows, bool gue, bool pipelined = true,
         Path path = Path::direct) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  auto table = w1_table(gue, path);
  PacketProcessor proc(0, new_flows ? flows / 2 : flows * kTableFactor);
  const uint32_t frame_len = path == Path::relay_hop ? kRelayedFrame : kFrame;
  std::vector<uint8_t> frames(size_t{flows} * frame_len);
  std::vector<uint32_t> order(flows);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(1));
  uint8_t plain[kFrame];
  for (uint32_t i = 0; i < flows; ++i) {
    uint8_t* f = &frames[size_t{i} * frame_len];
    write_frame(path == Path::relay_hop ? plain : f, 0x64400000 + order[i],
                static_cast<uint16_t>(1024 + order[i] % 60000), new_flows ? 0x02 : 0x10);
    // Spread over the 64 endpoints, as the ingress's Maglev would.
    if (path == Path::relay_hop) wrap_relayed(f, plain, 0x0A010001 + order[i] % 64);
  }
  const auto kBurst = static_cast<uint16_t>(state.range(1));
  // Two sets of buffers: as the DPDK worker does, one burst is classified
  // while the one before it waits to be finished (PacketProcessor::classify).
  std::vector<uint8_t> bufs(2 * size_t{kBurst} * kSlot);
  PacketBuf pkts[2][PacketProcessor::kMaxBurst];
  Action actions[2][PacketProcessor::kMaxBurst];
  uint32_t next = 0;
  uint64_t packets = 0;
  uint32_t now_ms = 1000;  // a millisecond a burst: the eviction order is by age
  int cur = 0;
  bool pending = false;
  auto burst = [&] {
    // What the PMD does: copy the next frames into (hot) buffers.
    for (uint16_t i = 0; i < kBurst; ++i) {
      uint8_t* data = &bufs[(static_cast<size_t>(cur) * kBurst + i) * kSlot + kHeadroom];
      std::memcpy(data, &frames[size_t{next} * frame_len], frame_len);
      pkts[cur][i] = PacketBuf{data, frame_len, kHeadroom};
      if (++next == flows) next = 0;
    }
    if (!pipelined) {
      proc.process_burst(*table, pkts[cur], actions[cur], kBurst, kPortMac, now_ms++);
      return;
    }
    proc.classify(cur, *table, pkts[cur], actions[cur], kBurst, kPortMac, pending ? cur ^ 1 : -1);
    if (pending) proc.finish(cur ^ 1, now_ms++);
    pending = true;
    cur ^= 1;
  };
  for (uint32_t i = 0; i < flows / kBurst + 1; ++i) burst();  // every flow placed once
  const uint64_t tsc_start = __rdtsc();
  const auto wall_start = std::chrono::steady_clock::now();
  const double cpu_start = thread_cpu_seconds();
  for (auto _ : state) {
    burst();
    packets += kBurst;
  }
  const double cpu = thread_cpu_seconds() - cpu_start;
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  const double tsc_hz = static_cast<double>(__rdtsc() - tsc_start) / wall;
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  // TSC cycles a packet (the unit of the dataplane's busy_cycles), of the
  // thread's CPU time: on a shared machine the wall clock also counts the
  // time others ran.
  state.counters["cycles_per_packet"] =
      tsc_hz * cpu / static_cast<double>(std::max<uint64_t>(packets, 1));
  if (proc.stats().dropped() != 0) state.SkipWithError("packets were dropped");
  state.counters["ns_per_packet"] = benchmark::Counter(
      static_cast<double>(packets), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["new_share"] = static_cast<double>(proc.stats().new_flows.load()) /
                                static_cast<double>(proc.stats().rx_packets.load());
}

void BM_Established(benchmark::State& s) { run(s, false, false); }
void BM_EstablishedOneStage(benchmark::State& s) { run(s, false, false, false); }
void BM_EstablishedGue(benchmark::State& s) { run(s, false, true); }
void BM_NewFlows(benchmark::State& s) { run(s, true, false); }
void BM_EstablishedRelayed(benchmark::State& s) {
  run(s, false, false, true, Path::ingress_relayed);
}
void BM_RelayHop(benchmark::State& s) { run(s, false, false, true, Path::relay_hop); }
// Arguments: flows, burst size. OneStage: process_burst, each burst on its
// own, for comparison with the two bursts in flight of the others.
BENCHMARK(BM_Established)->ArgsProduct({{1024, 1 << 20}, {32, 64}});
BENCHMARK(BM_EstablishedOneStage)->ArgsProduct({{1024, 1 << 20}, {32}});
BENCHMARK(BM_EstablishedGue)->ArgsProduct({{1024, 1 << 20}, {32}});
BENCHMARK(BM_NewFlows)->ArgsProduct({{1024, 1 << 21}, {32, 64}});
// Relaying: the ingress (W1 with every endpoint behind a relay) and the relay
// hop (no flow table: its flows figure is only the number of frames cycled).
BENCHMARK(BM_EstablishedRelayed)->ArgsProduct({{1024, 1 << 20}, {32}});
BENCHMARK(BM_RelayHop)->ArgsProduct({{1024, 1 << 20}, {32}});

}  // namespace

BENCHMARK_MAIN();
