#include "dataplane/core/forwarding_table.h"

#include <algorithm>
#include <bit>
#include <map>

#include "dataplane/core/hash.h"
#include "dataplane/core/net_headers.h"

namespace onramp::dp {
namespace {

constexpr uint64_t kEndpointSeed = 0x656e64706f696e74ULL;  // "endpoint"
constexpr uint64_t kListenerSeed = 0x6c697374656e6572ULL;  // "listener"
constexpr uint64_t kVipSeed = 0x7669702d6d617020ULL;       // "vip-map "

uint64_t vip_hash(const IpAddress& a) { return hash_words(a.bytes.data(), 16, kVipSeed); }

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

std::unique_ptr<ForwardingTable> ForwardingTable::build(const TableSpec& spec, unsigned lcores,
                                                        std::string& error) {
  std::unique_ptr<ForwardingTable> t(new ForwardingTable());
  t->spec_ = spec;
  t->lcores_ = lcores;
  std::map<IpAddress, size_t> vip_index;
  uint32_t endpoint_counters = 0;
  for (size_t li = 0; li < spec.listeners.size(); ++li) {
    const ListenerSpec& ls = spec.listeners[li];
    Listener l{.name = ls.name,
               .id = listener_id(ls.name),
               .affinity = ls.affinity,
               .tcp_idle_ms = ls.tcp_idle_s * 1000,
               .udp_idle_ms = ls.udp_idle_s * 1000,
               .endpoints = {},
               .maglev = {},
               .by_id = {}};
    std::vector<MaglevBackend> backends;
    for (size_t ei = 0; ei < ls.endpoints.size(); ++ei) {
      const EndpointSpec& es = ls.endpoints[ei];
      Endpoint e{.address = es.address,
                 .id = endpoint_id(es.address),
                 .gue_port = es.gue_port ? es.gue_port : spec.gue_port,
                 .weight = static_cast<uint8_t>(es.weight),
                 .mode = es.mode,
                 .healthy = es.healthy,
                 .v4 = es.address.is_v4(),
                 .counter_index = endpoint_counters++,
                 .label = es.label};
      l.by_id.emplace_back(e.id, static_cast<uint16_t>(ei));
      // Unhealthy endpoints and drained ones (weight 0) take no new flows.
      backends.push_back({.address = es.address, .weight = es.healthy ? es.weight : 0});
      l.endpoints.push_back(std::move(e));
    }
    std::sort(l.by_id.begin(), l.by_id.end());
    for (size_t i = 1; i < l.by_id.size(); ++i) {
      if (l.by_id[i].first == l.by_id[i - 1].first) {
        error = "listeners[" + std::to_string(li) +
                "].endpoints: " + l.endpoints[l.by_id[i].second].address.to_string() + " and " +
                l.endpoints[l.by_id[i - 1].second].address.to_string() +
                " share an endpoint id; list one of them in another listener";
        return nullptr;
      }
    }
    l.maglev = build_maglev(backends, spec.maglev_size);
    for (const IpAddress& vip : ls.vips) {
      auto [it, added] = vip_index.emplace(vip, t->vips_.size());
      if (added) t->vips_.push_back(Vip{.address = vip, .tcp = {}, .udp = {}});
      Vip& v = t->vips_[it->second];
      for (const auto& r : ls.port_ranges) {
        PortRangeEntry pe{r.first, r.last, static_cast<uint16_t>(li)};
        if (static_cast<int>(ls.protocol) & static_cast<int>(Protocol::tcp)) v.tcp.push_back(pe);
        if (static_cast<int>(ls.protocol) & static_cast<int>(Protocol::udp)) v.udp.push_back(pe);
      }
    }
    t->listeners_.push_back(std::move(l));
  }
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
    uint32_t s = static_cast<uint32_t>(vip_hash(t->vips_[i].address)) & t->vip_mask_;
    while (t->vip_slots_[s] >= 0) s = (s + 1) & t->vip_mask_;
    t->vip_slots_[s] = static_cast<int32_t>(i);
  }
  t->stride_ = t->listeners_.size() + endpoint_counters;
  t->counters_ = std::make_unique<TrafficCounters[]>(t->stride_ * lcores + 1);
  return t;
}

const Vip* ForwardingTable::find_vip(const IpAddress& addr) const {
  uint32_t s = static_cast<uint32_t>(vip_hash(addr)) & vip_mask_;
  while (true) {
    int32_t i = vip_slots_[s];
    if (i < 0) return nullptr;
    if (vips_[i].address == addr) return &vips_[i];
    s = (s + 1) & vip_mask_;
  }
}

int ForwardingTable::find_listener(const Vip& vip, uint8_t l4_proto, uint16_t port) {
  const std::vector<PortRangeEntry>* ranges;
  if (l4_proto == kProtoTcp) {
    ranges = &vip.tcp;
  } else if (l4_proto == kProtoUdp) {
    ranges = &vip.udp;
  } else {
    return -1;
  }
  // The last range whose first port is <= port is the only candidate.
  auto it = std::upper_bound(ranges->begin(), ranges->end(), port,
                             [](uint16_t p, const PortRangeEntry& r) { return p < r.first; });
  if (it == ranges->begin()) return -1;
  --it;
  return port <= it->last ? it->listener : -1;
}

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

TrafficTotals ForwardingTable::listener_totals(size_t listener) const { return sum(listener); }

TrafficTotals ForwardingTable::endpoint_totals(const Endpoint& e) const {
  return sum(listeners_.size() + e.counter_index);
}

}  // namespace onramp::dp
