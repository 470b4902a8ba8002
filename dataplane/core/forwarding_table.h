// The compiled, immutable forwarding table an lcore reads per packet: a VIP
// hash map, per-VIP sorted port ranges, and per listener its endpoints and
// Maglev table. Built off the fast path from a TableSpec; never modified after
// build except for counters, each slice of which one lcore alone writes.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/ip_address.h"
#include "common/status.h"
#include "common/table_spec.h"
#include "dataplane/core/maglev.h"
#include "dataplane/core/maglev_cache.h"
#include "dataplane/core/table_memory.h"

namespace onramp::dp {

// What the fast path reads of an endpoint comes first and fills exactly one
// cache line (a flow's packet reads that line and no other); the rest is
// for the control side, but for the drain of an unhealthy endpoint, read
// only by the packets of flows on one.
struct alignas(64) Endpoint {
  // The outer IP header as far as it is the same for every packet (IPv4:
  // 20 bytes, IPv6: 40), and one's-complement sums (big-endian words) of
  // that header and of its two addresses, for the IPv4 header checksum and
  // the UDP pseudo-header. Filled by prepare_encap (encap.h).
  std::array<uint8_t, 40> outer_header;
  uint32_t outer_sum;
  uint32_t outer_addr_sum;
  uint32_t id;             // hash of the address: a flow's identity for its endpoint
  uint32_t counter_index;  // into the table's endpoint counters
  uint16_t gue_port;       // resolved: the endpoint's or the table's
  uint8_t weight;
  ForwardingMode mode;
  bool healthy;
  bool v4;
  // Sent over the backbone: after the endpoint's encapsulation, wrapped in
  // IP + UDP + GUE to the relay PoP (encap.h, wrap_for_relay).
  bool relayed;
  // Read only for relayed endpoints, in the second line: the relay's outer
  // IP header as far as it is the same for every packet (next header UDP),
  // its sums (as outer_sum and outer_addr_sum), and the relay's port.
  std::array<uint8_t, 40> relay_header;
  uint32_t relay_sum;
  uint32_t relay_addr_sum;
  uint16_t relay_port;
  IpAddress address;
  std::optional<IpAddress> relay;  // the relay PoP's tunnel address
  // An unhealthy endpoint's drain (read only for flows on an unhealthy
  // endpoint, so off the hot line): an established TCP flow stays while
  // less than drain_ms has passed since unhealthy_since_ms, on the clock of
  // PacketProcessor's now_ms; drain_ms 0 moves flows at once.
  uint32_t drain_ms;
  uint32_t unhealthy_since_ms;
  std::string label;

  // Flows already here may stay: present and healthy (weight 0 drains, so it
  // keeps its flows). An unhealthy endpoint keeps only its established TCP
  // flows, and only while draining().
  bool keeps_flows() const { return healthy; }
  // Whether an unhealthy endpoint's drain is still running at now_ms. Signed:
  // a table built a moment after the burst's clock was read still drains
  // (and a flow idles out long before the difference could wrap).
  bool draining(uint32_t now_ms) const {
    return drain_ms != 0 &&
           static_cast<int32_t>(now_ms - unhealthy_since_ms) < static_cast<int32_t>(drain_ms);
  }
};

// What a flow's packet reads comes first: its endpoints in the first cache
// line, its Maglev slots (new flows only) in the second. (Stage one reads
// none of it: PortRangeEntry carries what classifying needs.)
struct alignas(64) Listener {
  uint32_t id;  // hash of the name; part of SOURCE_IP flow keys
  Affinity affinity;
  uint32_t tcp_idle_ms;
  uint32_t udp_idle_ms;
  uint32_t first_counter;                // endpoints[i].counter_index == first_counter + i
  std::pmr::vector<Endpoint> endpoints;  // in the table's arena (table_memory.h)
  uint32_t maglev_block;                 // which of the table's Maglev blocks holds `maglev`
  // Slot -> endpoint index, or kMaglevEmpty. In a Maglev block, which the
  // table may share with the tables before and after it.
  std::span<const uint16_t> maglev;
  std::pmr::vector<std::pair<uint32_t, uint16_t>> by_id;  // sorted (endpoint id, index)
  std::string name;

  // Index of the endpoint with this id, or -1.
  int find_endpoint(uint32_t id) const;
  // The endpoint for a new flow of this hash, or -1 when none takes flows.
  int pick(uint64_t hash) const {
    if (maglev.empty()) return -1;
    uint16_t e = maglev[hash % maglev.size()];
    return e == kMaglevEmpty ? -1 : e;
  }
  // Where pick(hash) will look, so a burst can fetch it ahead.
  void prefetch_pick(uint64_t hash) const {
    if (!maglev.empty()) __builtin_prefetch(&maglev[hash % maglev.size()]);
  }
};
static_assert(offsetof(Endpoint, relayed) < 64, "the fast path's part of an endpoint is one line");
static_assert(offsetof(Endpoint, relay_port) + 2 <= 128,
              "a relayed endpoint's part is the next line");

// A port range of a VIP and what classifying a packet needs of its
// listener, copied here so that stage one reads no Listener.
struct PortRangeEntry {
  uint16_t first;
  uint16_t last;
  uint16_t listener;
  Affinity affinity;
  // Every forwarded packet of the listener needs the flow hash (some
  // endpoint's tunnel carries it, or the listener logs flows): stage one
  // computes it beside the index hash rather than late in stage three.
  bool flow_hash_early;
  uint32_t listener_id;
  uint32_t tcp_idle_ms;
  uint32_t udp_idle_ms;
  uint32_t flow_log_ppm;  // the listener's flow log sample, millionths; 0: none
};

struct Vip {
  IpAddress address;
  std::pmr::vector<PortRangeEntry> tcp;  // sorted, disjoint
  std::pmr::vector<PortRangeEntry> udp;
};

// Counters of one listener or one endpoint as one lcore sees them. Only the
// owning lcore writes (relaxed load + store, no read-modify-write: a single
// writer needs no atomicity, and the atomic type keeps concurrent readers
// free of data races).
struct TrafficCounters {
  std::atomic<uint64_t> packets{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> new_flows{0};

  void add(uint64_t len, bool new_flow) {
    packets.store(packets.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    bytes.store(bytes.load(std::memory_order_relaxed) + len, std::memory_order_relaxed);
    if (new_flow)
      new_flows.store(new_flows.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

struct TrafficTotals {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t new_flows = 0;
};

struct MaglevBlock;

class ForwardingTable {
 public:
  // Builds from a spec that validate_table_spec accepted; counters for
  // `lcores` lcores. Returns the table, or the error that kept it from
  // being built (naming the listener).
  // `previous` (the table in force, or null) shares its Maglev tables: a
  // listener whose endpoints, weights and health are as before keeps the one
  // it had instead of a new build (the same inputs give the same table, so
  // the result is identical). A table swap that changes a few listeners then
  // costs little more than those few builds. Shared tables live in blocks
  // held by every table that uses them; from a block less than half still in
  // use the tables are copied instead, so the memory held stays under twice
  // what the table in force uses.
  // Listeners with the same endpoints and weights (in the same order) get
  // one Maglev build, copied to the others. The Maglev tables left to build
  // are built by `build_threads` threads: the calling thread and
  // build_threads - 1 started for the build (they run where the caller may;
  // the dataplane keeps them off polling lcores). The table is the same for
  // any number of threads.
  // now_ms: the time of the build on the clock the processors' now_ms
  // comes from. An unhealthy endpoint that `previous` listed (same listener
  // name, same address) as unhealthy keeps the time it turned unhealthy;
  // any other unhealthy endpoint turned unhealthy now. Its drain runs from
  // then (Endpoint::draining).
  // `cache` (maglev_cache.h), when given, has Maglev tables from before a
  // restart: a table to fill whose inputs it holds is copied from it.
  static Result<std::unique_ptr<ForwardingTable>> build(const TableSpec& spec, unsigned lcores,
                                                        const ForwardingTable* previous = nullptr,
                                                        unsigned build_threads = 1,
                                                        uint32_t now_ms = 0,
                                                        const MaglevCache* cache = nullptr);

  // Its Maglev tables, each with the inputs it was filled from (what
  // encode_maglev_cache writes). `memory` keeps the slots valid after this
  // table is gone.
  struct MaglevTables {
    std::vector<std::vector<MaglevBackend>> backends;
    std::vector<MaglevCacheEntry> entries;  // views into backends and memory
    std::vector<std::shared_ptr<const MaglevBlock>> memory;
  };
  MaglevTables maglev_tables() const;
  // Maglev tables its build filled, and those it copied from the cache.
  uint32_t maglev_filled() const { return maglev_filled_; }
  uint32_t maglev_from_cache() const { return maglev_from_cache_; }

  const Vip* find_vip(const IpAddress& addr) const {
    for (uint32_t s = vip_slot(addr);; s = (s + 1) & vip_mask_) {
      int32_t i = vip_slots_[s];
      if (i < 0) return nullptr;
      if (vips_[i].address == addr) return &vips_[i];
    }
  }
  // Listener index for (protocol, port) on this VIP, or -1.
  static int find_listener(const Vip& vip, uint8_t l4_proto, uint16_t port) {
    const PortRangeEntry* r = find_range(vip, l4_proto, port);
    return r ? r->listener : -1;
  }
  // The port range (and so the listener) for (protocol, port), or nullptr.
  static const PortRangeEntry* find_range(const Vip& vip, uint8_t l4_proto, uint16_t port) {
    const std::pmr::vector<PortRangeEntry>* ranges;
    if (l4_proto == 6) {
      ranges = &vip.tcp;
    } else if (l4_proto == 17) {
      ranges = &vip.udp;
    } else {
      return nullptr;
    }
    size_t n = ranges->size();
    if (n == 0) return nullptr;
    // The last range whose first port is <= port is the only candidate:
    // a binary search without branches on the data (the compiler turns the
    // step into a conditional move), so mixed ports cost no mispredictions.
    const PortRangeEntry* r = ranges->data();
    while (n > 1) {
      const size_t half = n / 2;
      r = r[half].first <= port ? r + half : r;
      n -= half;
    }
    return r->first <= port && port <= r->last ? r : nullptr;
  }
  // Both lines of a listener, ahead of stage three.
  void prefetch_listener(size_t i) const {
    const char* p = reinterpret_cast<const char*>(&listeners_[i]);
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
  }

  const std::pmr::vector<Listener>& listeners() const { return listeners_; }
  const Listener& listener(size_t i) const { return listeners_[i]; }
  const std::pmr::vector<Vip>& vips() const { return vips_; }
  const TableSpec& spec() const { return spec_; }
  const uint8_t* tunnel_v4() const { return spec_.tunnel_source_v4->v4(); }
  // Whether `a` is one of this PoP's tunnel sources: a packet from there is
  // the PoP's own encapsulated traffic routed back to it.
  bool is_tunnel_source(const IpAddress& a) const {
    return (spec_.tunnel_source_v4 && a == *spec_.tunnel_source_v4) ||
           (spec_.tunnel_source_v6 && a == *spec_.tunnel_source_v6);
  }
  const uint8_t* tunnel_v6() const { return spec_.tunnel_source_v6->v6(); }

  // A relay hop's questions (relay.h), off the fast path of VIP traffic.
  // Whether `a` is a PoP whose relayed packets this PoP forwards.
  bool is_relay_peer(const IpAddress& a) const {
    for (const IpAddress& p : spec_.relay_peers)
      if (p == a) return true;
    return false;
  }
  uint16_t relay_port() const { return relay_port_; }
  // Whether `a` is an endpoint of this table reached by `mode`, for GUE on
  // UDP port `gue_port` (ignored for IPIP).
  bool is_relay_target(const IpAddress& a, ForwardingMode mode, uint16_t gue_port) const;

  // Counters are kept per endpoint only: every packet forwarded for a
  // listener goes to one of its endpoints, so a listener's totals are the
  // sum of its endpoints' (one counter update a packet, not two).
  TrafficCounters& endpoint_counters(unsigned lcore, const Endpoint& e) {
    return counters_[lcore * stride_ + e.counter_index];
  }
  // Those of endpoint `index` of listener `l`, without reading the endpoint.
  void prefetch_endpoint_counters(unsigned lcore, const Listener& l, uint32_t index) const {
    __builtin_prefetch(&counters_[lcore * stride_ + l.first_counter + index]);
  }
  ~ForwardingTable();
  TrafficTotals listener_totals(size_t listener) const;
  TrafficTotals endpoint_totals(const Endpoint& e) const;

 private:
  explicit ForwardingTable(size_t arena_estimate);
  TrafficTotals sum(size_t slot) const;
  // Home slot of a VIP in vip_slots_. Only this table uses it, so it need not
  // be the portable flow hash: a fold and one multiply.
  uint32_t vip_slot(const IpAddress& a) const {
    uint64_t w[2];
    std::memcpy(w, a.bytes.data(), sizeof w);
    uint64_t x = w[0] ^ w[1];
    x ^= x >> 32;
    return static_cast<uint32_t>((x * 0x9e3779b97f4a7c15ULL) >> 32) & vip_mask_;
  }

  TableSpec spec_;
  // Declared first, destroyed last: everything below lives in it.
  std::unique_ptr<TableArena> arena_;
  std::pmr::vector<Listener> listeners_;
  std::pmr::vector<Vip> vips_;
  std::pmr::vector<int32_t> vip_slots_;  // open addressing into vips_, -1 empty
  // Every endpoint of every listener as (address, mode, GUE port; 0 for
  // IPIP), sorted: what a relayed packet may be addressed to.
  struct RelayTarget {
    IpAddress address;
    ForwardingMode mode;
    uint16_t gue_port;
    auto operator<=>(const RelayTarget&) const = default;
  };
  std::pmr::vector<RelayTarget> relay_targets_;
  uint16_t relay_port_ = 0;
  uint32_t vip_mask_ = 0;
  unsigned lcores_ = 0;
  size_t stride_ = 0;                    // counters per lcore: one per endpoint
  std::span<TrafficCounters> counters_;  // in the arena
  // The blocks its listeners' Maglev tables are in (Listener::maglev_block):
  // its own first, when it built any, then those it shares with others.
  std::vector<std::shared_ptr<const MaglevBlock>> maglev_blocks_;
  uint32_t maglev_filled_ = 0;
  uint32_t maglev_from_cache_ = 0;
};

uint32_t endpoint_id(const IpAddress& addr);
uint32_t listener_id(const std::string& name);

}  // namespace onramp::dp
