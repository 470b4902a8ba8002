// Flow state, measured: what one flow costs in memory, and how full the flow
// table can get before flows start pushing each other out.
//
//   flow-state [CAPACITY]      (default 1048576)
//
// Prints one JSON object: the layout's bytes per flow slot, the resident
// memory the process gains by creating a table of CAPACITY slots (read from
// /proc/self/status, so it is what the kernel really hands out), and for
// several loads (distinct flows / slots) the share of flows a second pass
// still finds, with the resident bytes per flow that stayed. Then the same
// for flow logs (dataplane/core/flow_log.h): their state per slot by layout,
// and the resident memory it takes with no flow logged, with 1 % of a 90 %
// full table's flows logged, and with all of them.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "dataplane/core/flow_log.h"
#include "dataplane/core/flow_table.h"

namespace {

using namespace onramp;
using namespace onramp::dp;

uint64_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

FlowKey key(uint32_t i) {
  FlowKey k;
  uint32_t a = 0x64400000 + i;  // 100.64.0.0/10 holds 4 M clients
  uint8_t c[4] = {static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16),
                  static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(a)};
  uint8_t v[4] = {203, 0, 113, 10};
  k.client = IpAddress::from_v4(c);
  k.vip = IpAddress::from_v4(v);
  k.client_port = static_cast<uint16_t>(1024 + i % 60000);
  k.vip_port = 80;
  k.proto = 6;
  return k;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t capacity = argc > 1 ? static_cast<uint32_t>(std::stoul(argv[1])) : 1u << 20;
  const uint32_t idle_ms = 340000;

  uint64_t before = rss_bytes();
  auto* table = new FlowTable(capacity);
  uint64_t after = rss_bytes();
  const double measured = static_cast<double>(after - before) / table->capacity();
  std::printf(
      "{\"capacity\": %u, \"bytes_per_flow_layout\": %zu, \"rss_bytes\": %llu, "
      "\"bytes_per_flow_measured\": %.2f, \"loads\": [",
      table->capacity(), FlowTable::bytes_per_flow(),
      static_cast<unsigned long long>(after - before), measured);
  delete table;

  const double loads[] = {0.25, 0.5, 0.75, 0.9, 1.0};
  for (size_t li = 0; li < std::size(loads); ++li) {
    FlowTable t(capacity);
    auto n = static_cast<uint32_t>(loads[li] * t.capacity());
    // Distinct flows in random order, as a capture replay would see them.
    std::vector<uint32_t> order(n);
    for (uint32_t i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937(7));
    for (uint32_t i : order) {
      FlowKey k = key(i);
      uint64_t h = FlowTable::index_hash(k);
      if (t.lookup(h, 1, idle_ms) == FlowTable::kNone) t.insert(k, h, FlowValue{i, 0}, 1, idle_ms);
    }
    uint64_t found = 0;
    for (uint32_t i : order) {
      uint32_t slot = t.lookup(FlowTable::index_hash(key(i)), 2, idle_ms);
      if (slot != FlowTable::kNone && t.value(slot).endpoint_id == i) ++found;
    }
    std::printf(
        "%s\n  {\"load\": %.2f, \"flows\": %u, \"kept\": %.5f, \"evictions\": %llu, "
        "\"bytes_per_kept_flow\": %.1f}",
        li ? "," : "", loads[li], n, static_cast<double>(found) / n,
        static_cast<unsigned long long>(t.stats().evictions),
        found ? static_cast<double>(after - before) / static_cast<double>(found) : 0.0);
  }
  std::printf("\n],\n\"flow_log\": {\"bytes_per_flow_layout\": %.3f", FlowLog::bytes_per_flow());
  // Flow log state for `ppm` of a 90 % full table's flows: what the process
  // gains by creating it and logging them.
  for (uint32_t ppm : {0u, 10000u, 1000000u}) {
    FlowTable t(capacity);
    const uint64_t base = rss_bytes();
    auto* log = new FlowLog(t.capacity(), 8192, 60000);
    auto n = static_cast<uint32_t>(0.9 * t.capacity());
    uint64_t logged = 0;
    FlowLogRecord drained[256];
    for (uint32_t i = 0; i < n; ++i) {
      FlowKey k = key(i);
      uint64_t h = FlowTable::index_hash(k);
      const FlowTable::Placed p = t.insert(k, h, FlowValue{i, 0}, 1, idle_ms);
      log->replaced(p);
      if (!FlowLog::sampled(h, ppm)) continue;
      log->start(p.slot, k.client, k.client_port, k.vip, k.vip_port, k.proto, 1, i, k.client, 60,
                 1);
      ++logged;
      while (log->ring().pop(drained, std::size(drained)) > 0) {
      }
    }
    const uint64_t gained = rss_bytes() - base;
    std::printf(
        ", \"logged_%s\": {\"flows\": %u, \"logged\": %llu, \"rss_bytes\": %llu, "
        "\"bytes_per_slot\": %.2f, \"bytes_per_logged_flow\": %.1f}",
        ppm == 0       ? "none"
        : ppm == 10000 ? "1pct"
                       : "all",
        n, static_cast<unsigned long long>(logged), static_cast<unsigned long long>(gained),
        static_cast<double>(gained) / t.capacity(),
        logged ? static_cast<double>(gained) / static_cast<double>(logged) : 0.0);
    delete log;
  }
  std::printf("}}\n");
  return 0;
}
