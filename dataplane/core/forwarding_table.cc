#include "dataplane/core/forwarding_table.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <map>
#include <new>
#include <string_view>
#include <thread>
#include <type_traits>

#include "dataplane/core/encap.h"
#include "dataplane/core/hash.h"
#include "dataplane/core/net_headers.h"

namespace onramp::dp {
namespace {

constexpr uint64_t kEndpointSeed = 0x656e64706f696e74ULL;  // "endpoint"
constexpr uint64_t kListenerSeed = 0x6c697374656e6572ULL;  // "listener"
}  // namespace

uint32_t endpoint_id(const IpAddress& addr) {
  return static_cast<uint32_t>(hash_words(addr.bytes.data(), 16, kEndpointSeed));
}

uint32_t listener_id(const std::string& name) {
  std::vector<uint8_t> padded((name.size() + 7) / 8 * 8, 0);
  std::copy(name.begin(), name.end(), padded.begin());
  return static_cast<uint32_t>(hash_words(padded.data(), padded.size(), kListenerSeed));
}

int Listener::find_endpoint(uint32_t id) const {
  auto it = std::lower_bound(by_id.begin(), by_id.end(), std::pair<uint32_t, uint16_t>{id, 0});
  if (it == by_id.end() || it->first != id) return -1;
  return it->second;
}

namespace {

// Whether `old` was given a Maglev table from the same inputs as `ls` would
// be: the same size, and the same endpoint addresses, in the same order,
// with the same weights counted (0 for unhealthy ones).
bool same_maglev_inputs(const Listener& old, const ListenerSpec& ls, uint32_t maglev_size) {
  if (old.maglev.size() != maglev_size || old.endpoints.size() != ls.endpoints.size()) return false;
  for (size_t i = 0; i < ls.endpoints.size(); ++i) {
    const Endpoint& e = old.endpoints[i];
    const EndpointSpec& s = ls.endpoints[i];
    if (!(e.address == s.address) || (e.healthy ? e.weight : 0u) != (s.healthy ? s.weight : 0u))
      return false;
  }
  return true;
}

// A Maglev table to fill: the backends' order decides the slot values, so it
// is kept as the listener lists them.
struct MaglevJob {
  std::vector<MaglevBackend> backends;
  std::span<uint16_t> slots;
  std::span<const uint16_t> known;  // the same table from the restart cache, or empty
};

// Runs work(i) for every i below n on `threads` threads, the caller's among
// them; each takes the next index left until none is.
template <typename Work>
void run_on_threads(size_t n, unsigned threads, const Work& work) {
  std::atomic<size_t> next{0};
  // Relaxed: the counter only hands out indices; what the jobs write is
  // seen by the caller through the threads' joins.
  auto run = [&] {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) work(i);
  };
  std::vector<std::jthread> helpers;
  const size_t extra = std::min<size_t>(threads > 0 ? threads - 1 : 0, n > 0 ? n - 1 : 0);
  helpers.reserve(extra);
  for (size_t i = 0; i < extra; ++i) helpers.emplace_back(run);
  run();
}  // helpers join here

}  // namespace

// Maglev tables in one arena, held by every forwarding table that uses one of
// them, freed with the last of those.
struct MaglevBlock {
  MaglevBlock(size_t tables, uint32_t slots)
      : tables(tables), arena(tables * (size_t{slots} * sizeof(uint16_t) + 64)) {}
  size_t tables;  // how many it was made for
  TableArena arena;
};

Result<std::unique_ptr<ForwardingTable>> ForwardingTable::build(
    const TableSpec& spec, unsigned lcores, const ForwardingTable* previous, unsigned build_threads,
    uint32_t now_ms, const MaglevCache* cache) {
  std::map<std::string_view, const Listener*> previous_by_name;
  if (previous)
    for (const Listener& l : previous->listeners_) previous_by_name.emplace(l.name, &l);
  // Everything the table holds comes from one arena, sized up front so that
  // it is one block (in huge pages when it is big).
  size_t estimate = 64 << 10;
  size_t n_endpoints = 0;
  for (const ListenerSpec& ls : spec.listeners) {
    n_endpoints += ls.endpoints.size();
    estimate += sizeof(Listener) + ls.endpoints.size() * (sizeof(Endpoint) + 8) +
                ls.vips.size() * ls.port_ranges.size() * 2 * sizeof(PortRangeEntry);
  }
  estimate += (n_endpoints + 1) * lcores * sizeof(TrafficCounters);
  estimate += n_endpoints * sizeof(RelayTarget);
  std::unique_ptr<ForwardingTable> t(new ForwardingTable(estimate));
  std::pmr::memory_resource* mem = t->arena_->resource();
  t->listeners_.reserve(spec.listeners.size());
  t->spec_ = spec;
  t->lcores_ = lcores;
  // Listeners whose Maglev inputs are as in `previous` keep their table
  // (kept[li]); they share it where its block stays at least half in use,
  // and copy it into the new block otherwise. The rest are built there.
  std::vector<const Listener*> kept(spec.listeners.size(), nullptr);
  std::map<uint32_t, uint32_t> shared;  // previous's block -> listeners keeping a table in it
  for (size_t li = 0; li < spec.listeners.size(); ++li) {
    auto old = previous_by_name.find(spec.listeners[li].name);
    if (old == previous_by_name.end() ||
        !same_maglev_inputs(*old->second, spec.listeners[li], spec.maglev_size))
      continue;
    kept[li] = old->second;
    ++shared[old->second->maglev_block];
  }
  size_t fresh = spec.listeners.size();
  std::erase_if(shared, [&](const auto& b) {
    return 2 * b.second < previous->maglev_blocks_[b.first]->tables;
  });
  for (auto& [b, n] : shared) fresh -= n;
  std::shared_ptr<MaglevBlock> block;
  if (fresh > 0) {
    block = std::make_shared<MaglevBlock>(fresh, spec.maglev_size);
    t->maglev_blocks_.push_back(block);
  }
  for (auto& [b, index] : shared) {  // from now on: its index in t->maglev_blocks_
    index = static_cast<uint32_t>(t->maglev_blocks_.size());
    t->maglev_blocks_.push_back(previous->maglev_blocks_[b]);
  }

  // Maglev tables are filled after the loop below, on build_threads
  // threads; a listener whose backends (addresses and weights, in order)
  // another listener already has gets a copy of that one's table.
  std::vector<MaglevJob> jobs;
  std::map<std::vector<std::pair<IpAddress, uint32_t>>, size_t> job_of_backends;
  std::vector<std::pair<std::span<uint16_t>, size_t>> copies;  // (to, job)

  std::map<IpAddress, size_t> vip_index;
  uint32_t endpoint_counters = 0;
  for (size_t li = 0; li < spec.listeners.size(); ++li) {
    const ListenerSpec& ls = spec.listeners[li];
    auto before = previous_by_name.find(ls.name);
    const Listener* was = before == previous_by_name.end() ? nullptr : before->second;
    Listener l{.id = listener_id(ls.name),
               .affinity = ls.affinity,
               .tcp_idle_ms = ls.tcp_idle_s * 1000,
               .udp_idle_ms = ls.udp_idle_s * 1000,
               .first_counter = endpoint_counters,
               .endpoints = std::pmr::vector<Endpoint>(mem),
               .maglev_block = 0,
               .maglev = {},
               .by_id = std::pmr::vector<std::pair<uint32_t, uint16_t>>(mem),
               .name = ls.name};
    l.endpoints.reserve(ls.endpoints.size());
    l.by_id.reserve(ls.endpoints.size());
    std::vector<MaglevBackend> backends;
    for (size_t ei = 0; ei < ls.endpoints.size(); ++ei) {
      const EndpointSpec& es = ls.endpoints[ei];
      Endpoint e{.outer_header = {},
                 .outer_sum = 0,
                 .outer_addr_sum = 0,
                 .id = endpoint_id(es.address),
                 .counter_index = endpoint_counters++,
                 .gue_port = es.gue_port ? es.gue_port : spec.gue_port,
                 .weight = static_cast<uint8_t>(es.weight),
                 .mode = es.mode,
                 .healthy = es.healthy,
                 .v4 = es.address.is_v4(),
                 .relayed = es.relay.has_value(),
                 .relay_header = {},
                 .relay_sum = 0,
                 .relay_addr_sum = 0,
                 .relay_port = spec.resolved_relay_port(),
                 .address = es.address,
                 .relay = es.relay,
                 .drain_ms = es.healthy ? 0 : es.unhealthy_drain_s * 1000,
                 .unhealthy_since_ms = now_ms,
                 .label = es.label};
      if (!e.healthy && was)
        if (int old = was->find_endpoint(e.id); old >= 0 && !was->endpoints[old].healthy)
          e.unhealthy_since_ms = was->endpoints[old].unhealthy_since_ms;
      prepare_encap(e, spec);
      l.by_id.emplace_back(e.id, static_cast<uint16_t>(ei));
      t->relay_targets_.push_back(
          {.address = e.address,
           .mode = e.mode,
           .gue_port = e.mode == ForwardingMode::gue ? e.gue_port : uint16_t{0}});
      // Unhealthy endpoints and drained ones (weight 0) take no new flows.
      backends.push_back({.address = es.address, .weight = es.healthy ? es.weight : 0});
      l.endpoints.push_back(std::move(e));
    }
    std::sort(l.by_id.begin(), l.by_id.end());
    for (size_t i = 1; i < l.by_id.size(); ++i) {
      if (l.by_id[i].first == l.by_id[i - 1].first) {
        return error("listeners[" + std::to_string(li) +
                     "].endpoints: " + l.endpoints[l.by_id[i].second].address.to_string() +
                     " and " + l.endpoints[l.by_id[i - 1].second].address.to_string() +
                     " share an endpoint id; list one of them in another listener");
      }
    }
    if (const Listener* old = kept[li]; old && shared.contains(old->maglev_block)) {
      l.maglev_block = shared[old->maglev_block];
      l.maglev = old->maglev;
    } else {
      std::span<uint16_t> slots(std::pmr::polymorphic_allocator<uint16_t>(block->arena.resource())
                                    .allocate(spec.maglev_size),
                                spec.maglev_size);
      if (old) {
        std::copy(old->maglev.begin(), old->maglev.end(), slots.begin());
      } else {
        std::vector<std::pair<IpAddress, uint32_t>> key;
        key.reserve(backends.size());
        for (const MaglevBackend& b : backends) key.emplace_back(b.address, b.weight);
        auto [job, added] = job_of_backends.emplace(std::move(key), jobs.size());
        if (added) {
          std::span<const uint16_t> known =
              cache ? cache->find(backends, spec.maglev_size) : std::span<const uint16_t>{};
          jobs.push_back({.backends = std::move(backends), .slots = slots, .known = known});
        } else {
          copies.emplace_back(slots, job->second);
        }
      }
      l.maglev = slots;
    }
    const bool flow_hash_early = ls.flow_log_sample_ppm > 0 ||
                                 std::any_of(l.endpoints.begin(), l.endpoints.end(),
                                             [](const Endpoint& e) { return uses_flow_hash(e); });
    for (const IpAddress& vip : ls.vips) {
      auto [it, added] = vip_index.emplace(vip, t->vips_.size());
      if (added)
        t->vips_.push_back(Vip{.address = vip,
                               .tcp = std::pmr::vector<PortRangeEntry>(mem),
                               .udp = std::pmr::vector<PortRangeEntry>(mem)});
      Vip& v = t->vips_[it->second];
      for (const auto& r : ls.port_ranges) {
        PortRangeEntry pe{.first = r.first,
                          .last = r.last,
                          .listener = static_cast<uint16_t>(li),
                          .affinity = l.affinity,
                          .flow_hash_early = flow_hash_early,
                          .listener_id = l.id,
                          .tcp_idle_ms = l.tcp_idle_ms,
                          .udp_idle_ms = l.udp_idle_ms,
                          .flow_log_ppm = ls.flow_log_sample_ppm};
        if (static_cast<int>(ls.protocol) & static_cast<int>(Protocol::tcp)) v.tcp.push_back(pe);
        if (static_cast<int>(ls.protocol) & static_cast<int>(Protocol::udp)) v.udp.push_back(pe);
      }
    }
    t->listeners_.push_back(std::move(l));
  }
  run_on_threads(jobs.size(), build_threads, [&](size_t i) {
    if (jobs[i].known.empty())
      build_maglev(jobs[i].backends, jobs[i].slots);
    else
      std::copy(jobs[i].known.begin(), jobs[i].known.end(), jobs[i].slots.begin());
  });
  for (const MaglevJob& j : jobs) ++(j.known.empty() ? t->maglev_filled_ : t->maglev_from_cache_);
  for (const auto& [to, job] : copies)
    std::copy(jobs[job].slots.begin(), jobs[job].slots.end(), to.begin());

  auto by_first = [](const PortRangeEntry& a, const PortRangeEntry& b) {
    return a.first < b.first;
  };
  for (Vip& v : t->vips_) {
    std::sort(v.tcp.begin(), v.tcp.end(), by_first);
    std::sort(v.udp.begin(), v.udp.end(), by_first);
  }
  // Load factor at most 1/2.
  uint32_t slots = std::bit_ceil(static_cast<uint32_t>(t->vips_.size() * 2 + 2));
  t->vip_mask_ = slots - 1;
  t->vip_slots_.assign(slots, -1);
  for (size_t i = 0; i < t->vips_.size(); ++i) {
    uint32_t s = t->vip_slot(t->vips_[i].address);
    while (t->vip_slots_[s] >= 0) s = (s + 1) & t->vip_mask_;
    t->vip_slots_[s] = static_cast<int32_t>(i);
  }
  std::sort(t->relay_targets_.begin(), t->relay_targets_.end());
  t->relay_port_ = spec.resolved_relay_port();
  t->stride_ = endpoint_counters;
  const size_t n_counters = t->stride_ * lcores + 1;
  auto* counters = std::pmr::polymorphic_allocator<TrafficCounters>(mem).allocate(n_counters);
  for (size_t i = 0; i < n_counters; ++i) new (&counters[i]) TrafficCounters();
  t->counters_ = std::span<TrafficCounters>(counters, n_counters);
  return t;
}

ForwardingTable::MaglevTables ForwardingTable::maglev_tables() const {
  MaglevTables out;
  out.memory.assign(maglev_blocks_.begin(), maglev_blocks_.end());
  out.backends.reserve(listeners_.size());
  for (const Listener& l : listeners_) {
    std::vector<MaglevBackend>& b = out.backends.emplace_back();
    b.reserve(l.endpoints.size());
    for (const Endpoint& e : l.endpoints)
      b.push_back({.address = e.address, .weight = e.healthy ? e.weight : 0u});
  }
  out.entries.reserve(listeners_.size());
  for (size_t i = 0; i < listeners_.size(); ++i)
    out.entries.push_back({.backends = out.backends[i], .slots = listeners_[i].maglev});
  return out;
}

ForwardingTable::ForwardingTable(size_t arena_estimate)
    : arena_(std::make_unique<TableArena>(arena_estimate)),
      listeners_(arena_->resource()),
      vips_(arena_->resource()),
      vip_slots_(arena_->resource()),
      relay_targets_(arena_->resource()) {}

bool ForwardingTable::is_relay_target(const IpAddress& a, ForwardingMode mode,
                                      uint16_t gue_port) const {
  const RelayTarget want{
      .address = a, .mode = mode, .gue_port = mode == ForwardingMode::gue ? gue_port : uint16_t{0}};
  return std::binary_search(relay_targets_.begin(), relay_targets_.end(), want);
}

// The counters are trivially destructible and go with the arena.
ForwardingTable::~ForwardingTable() = default;
static_assert(std::is_trivially_destructible_v<TrafficCounters>);

TrafficTotals ForwardingTable::sum(size_t slot) const {
  TrafficTotals t;
  for (unsigned c = 0; c < lcores_; ++c) {
    const TrafficCounters& k = counters_[c * stride_ + slot];
    t.packets += k.packets.load(std::memory_order_relaxed);
    t.bytes += k.bytes.load(std::memory_order_relaxed);
    t.new_flows += k.new_flows.load(std::memory_order_relaxed);
  }
  return t;
}

TrafficTotals ForwardingTable::listener_totals(size_t listener) const {
  TrafficTotals t;
  for (const Endpoint& e : listeners_[listener].endpoints) {
    TrafficTotals et = endpoint_totals(e);
    t.packets += et.packets;
    t.bytes += et.bytes;
    t.new_flows += et.new_flows;
  }
  return t;
}

TrafficTotals ForwardingTable::endpoint_totals(const Endpoint& e) const {
  return sum(e.counter_index);
}

}  // namespace onramp::dp
