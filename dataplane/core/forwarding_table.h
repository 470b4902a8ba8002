// The compiled, immutable forwarding table an lcore reads per packet: a VIP
// hash map, per-VIP sorted port ranges, and per listener its endpoints and
// Maglev table. Built off the fast path from a TableSpec; never modified after
// build except for counters, each slice of which one lcore alone writes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/core/ip_address.h"
#include "dataplane/core/table_spec.h"

namespace onramp::dp {

struct Endpoint {
  IpAddress address;
  uint32_t id;        // hash of the address: a flow's identity for its endpoint
  uint16_t gue_port;  // resolved: the endpoint's or the table's
  uint8_t weight;
  ForwardingMode mode;
  bool healthy;
  bool v4;
  uint32_t counter_index;  // into the table's endpoint counters
  std::string label;

  // Flows already here may stay: present and healthy (weight 0 drains, so it
  // keeps its flows).
  bool keeps_flows() const { return healthy; }
};

struct Listener {
  std::string name;
  uint32_t id;  // hash of the name; part of SOURCE_IP flow keys
  Affinity affinity;
  uint32_t tcp_idle_ms;
  uint32_t udp_idle_ms;
  std::vector<Endpoint> endpoints;
  std::vector<uint16_t> maglev;                      // slot -> endpoint index, or kMaglevEmpty
  std::vector<std::pair<uint32_t, uint16_t>> by_id;  // sorted (endpoint id, index)

  // Index of the endpoint with this id, or -1.
  int find_endpoint(uint32_t id) const;
  // The endpoint for a new flow of this hash, or -1 when none takes flows.
  int pick(uint64_t hash) const {
    if (maglev.empty()) return -1;
    uint16_t e = maglev[hash % maglev.size()];
    return e == kMaglevEmpty ? -1 : e;
  }
};

struct PortRangeEntry {
  uint16_t first;
  uint16_t last;
  uint16_t listener;
};

struct Vip {
  IpAddress address;
  std::vector<PortRangeEntry> tcp;  // sorted, disjoint
  std::vector<PortRangeEntry> udp;
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

class ForwardingTable {
 public:
  // Builds from a spec that validate_table_spec accepted; counters for
  // `lcores` lcores. Returns nullptr and sets `error` on failure.
  static std::unique_ptr<ForwardingTable> build(const TableSpec& spec, unsigned lcores,
                                                std::string& error);

  const Vip* find_vip(const IpAddress& addr) const;
  // Listener index for (protocol, port) on this VIP, or -1.
  static int find_listener(const Vip& vip, uint8_t l4_proto, uint16_t port);

  const std::vector<Listener>& listeners() const { return listeners_; }
  const Listener& listener(size_t i) const { return listeners_[i]; }
  const std::vector<Vip>& vips() const { return vips_; }
  const TableSpec& spec() const { return spec_; }
  const uint8_t* tunnel_v4() const { return spec_.tunnel_source_v4->v4(); }
  const uint8_t* tunnel_v6() const { return spec_.tunnel_source_v6->v6(); }

  TrafficCounters& listener_counters(unsigned lcore, size_t listener) {
    return counters_[lcore * stride_ + listener];
  }
  TrafficCounters& endpoint_counters(unsigned lcore, const Endpoint& e) {
    return counters_[lcore * stride_ + listeners_.size() + e.counter_index];
  }
  TrafficTotals listener_totals(size_t listener) const;
  TrafficTotals endpoint_totals(const Endpoint& e) const;

 private:
  ForwardingTable() = default;
  TrafficTotals sum(size_t slot) const;

  TableSpec spec_;
  std::vector<Listener> listeners_;
  std::vector<Vip> vips_;
  std::vector<int32_t> vip_slots_;  // open addressing into vips_, -1 empty
  uint32_t vip_mask_ = 0;
  unsigned lcores_ = 0;
  size_t stride_ = 0;  // counters per lcore: listeners then endpoints
  std::unique_ptr<TrafficCounters[]> counters_;
};

uint32_t endpoint_id(const IpAddress& addr);
uint32_t listener_id(const std::string& name);

}  // namespace onramp::dp
