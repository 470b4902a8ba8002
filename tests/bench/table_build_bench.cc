// How long the control side takes to compile a forwarding table
// (ForwardingTable::build: Maglev tables, VIP map, port ranges), the work a
// table swap does before its one pointer store: from scratch (a dataplane
// starting, on 1 or more build threads), and next to the table in force with
// one listener changed (a swap), and a restart that copies its Maglev tables
// from the cache. The targets: 1000 listeners x 64 endpoints in 50 ms for a
// swap, 200 ms for a restart's first table (docs/performance.md).
// Google Benchmark; scripts/bench runs it and reports the means.
#include <benchmark/benchmark.h>

#include <string>

#include "common/table_spec.h"
#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/maglev.h"
#include "dataplane/core/maglev_cache.h"

namespace {

using namespace onramp;
using namespace onramp::dp;

IpAddress v4(uint32_t n) {
  uint8_t b[4] = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                  static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  return IpAddress::from_v4(b);
}

// `listeners` TCP listeners on 16 VIPs, each with `endpoints` endpoints of
// its own (no two listeners share an endpoint set, so no work can be shared)
// and weights spread over 50..199.
TableSpec make_spec(int listeners, int endpoints) {
  TableSpec spec{.version = 1,
                 .pop = "BEN1",
                 .tunnel_source_v4 = v4(0xC0000201),
                 .next_hop_mac = {2, 0, 0, 0, 0, 0xfe}};
  for (int i = 0; i < listeners; ++i) {
    ListenerSpec l{.name = "l" + std::to_string(i),
                   .vips = {v4(0xCB007100 + static_cast<uint32_t>(i % 16))},
                   .port_ranges = {{.first = static_cast<uint16_t>(10000 + i / 16),
                                    .last = static_cast<uint16_t>(10000 + i / 16)}}};
    for (int j = 0; j < endpoints; ++j) {
      auto n = static_cast<uint32_t>(i * endpoints + j);
      l.endpoints.push_back({.address = v4(0x0A000000 + n), .weight = 50 + (n * 37) % 150});
    }
    spec.listeners.push_back(std::move(l));
  }
  return spec;
}

void BM_ForwardingTableBuild(benchmark::State& state) {
  const TableSpec spec =
      make_spec(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  if (Status s = validate_table_spec(spec); !s.ok()) {
    state.SkipWithError(s.message().c_str());
    return;
  }
  const auto threads = static_cast<unsigned>(state.range(2));
  for (auto _ : state) {
    auto t = ForwardingTable::build(spec, 1, nullptr, threads);
    if (!t.ok()) state.SkipWithError(t.error().c_str());
    benchmark::DoNotOptimize(t);
  }
  state.counters["listeners"] = static_cast<double>(state.range(0));
  state.counters["endpoints_per_listener"] = static_cast<double>(state.range(1));
  state.counters["build_threads"] = static_cast<double>(threads);
}
// The third argument is the number of build threads (a dataplane starting
// uses one per CPU it may run on). Real time: with threads, CPU time of the
// calling thread alone would undercount.
BENCHMARK(BM_ForwardingTableBuild)
    ->Args({1000, 64, 1})
    ->Args({1000, 64, 2})
    ->Args({100, 64, 1})
    ->Args({1000, 10, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

// A table swap: the same table with one listener's weights changed, built
// next to the one in force, which shares the Maglev tables that stay the
// same (what TablePublisher::apply does).
void BM_ForwardingTableSwap(benchmark::State& state) {
  const TableSpec before =
      make_spec(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  TableSpec after = before;
  after.version = 2;
  after.listeners[0].endpoints[0].weight = 7;
  auto current = ForwardingTable::build(before, 1);
  if (!current.ok()) {
    state.SkipWithError(current.error().c_str());
    return;
  }
  for (auto _ : state) {
    auto t = ForwardingTable::build(after, 1, current->get());
    if (!t.ok()) state.SkipWithError(t.error().c_str());
    benchmark::DoNotOptimize(t);
  }
  state.counters["listeners"] = static_cast<double>(state.range(0));
  state.counters["endpoints_per_listener"] = static_cast<double>(state.range(1));
}
BENCHMARK(BM_ForwardingTableSwap)->Args({1000, 64})->Unit(benchmark::kMillisecond)->MinTime(2.0);

// A restart with the Maglev cache (maglev_cache.h): the file's bytes decoded
// and checked (as the dataplane does after mapping the file), then the table
// built with every Maglev table copied from it.
void BM_ForwardingTableBuildFromCache(benchmark::State& state) {
  const TableSpec spec =
      make_spec(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  auto before = ForwardingTable::build(spec, 1);
  if (!before.ok()) {
    state.SkipWithError(before.error().c_str());
    return;
  }
  const std::string file = encode_maglev_cache((*before)->maglev_tables().entries);
  const auto threads = static_cast<unsigned>(state.range(2));
  for (auto _ : state) {
    auto cache = MaglevCache::decode(std::string_view(file), nullptr);
    if (!cache.ok()) state.SkipWithError(cache.error().c_str());
    auto t = ForwardingTable::build(spec, 1, nullptr, threads, 0, &*cache);
    if (!t.ok() || (*t)->maglev_filled() != 0)
      state.SkipWithError("not every table from the cache");
    benchmark::DoNotOptimize(t);
  }
  state.counters["listeners"] = static_cast<double>(state.range(0));
  state.counters["endpoints_per_listener"] = static_cast<double>(state.range(1));
  state.counters["build_threads"] = static_cast<double>(threads);
}
BENCHMARK(BM_ForwardingTableBuildFromCache)
    ->Args({1000, 64, 1})
    ->Args({1000, 64, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

// One listener's Maglev table, M = 65537: the unit of the work above.
void BM_MaglevBuild(benchmark::State& state) {
  std::vector<MaglevBackend> backends;
  for (int j = 0; j < state.range(0); ++j)
    backends.push_back({.address = v4(0x0A000000 + static_cast<uint32_t>(j)),
                        .weight = 50 + (static_cast<uint32_t>(j) * 37) % 150});
  for (auto _ : state) benchmark::DoNotOptimize(build_maglev(backends, kDefaultMaglevSize));
}
BENCHMARK(BM_MaglevBuild)->Arg(64)->Arg(10)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
