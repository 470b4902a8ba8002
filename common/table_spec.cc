#include "common/table_spec.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

namespace onramp {
namespace {

std::string at(size_t li, const char* field, size_t i) {
  std::ostringstream os;
  os << "listeners[" << li << "]." << field << "[" << i << "]";
  return os.str();
}

}  // namespace

std::pair<std::string, std::string> split_listener_name(const std::string& name) {
  const size_t slash = name.find('/');
  if (slash == std::string::npos) return {"", name};
  return {name.substr(0, slash), name.substr(slash + 1)};
}

bool is_prime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

Status validate_table_spec(const TableSpec& spec) {
  if (!is_prime(spec.maglev_size) || spec.maglev_size < kMinMaglevSize ||
      spec.maglev_size > kMaxMaglevSize)
    return error("maglev_table_size: " + std::to_string(spec.maglev_size) +
                 " is not a prime in 1021..1048573");
  if (spec.mtu < 1280 || spec.mtu > 9216)
    return error("mtu: " + std::to_string(spec.mtu) + " is outside 1280..9216");
  if (spec.gue_port == 0) return error("gue_port: must be 1..65535");
  if (spec.tunnel_source_v4 && !spec.tunnel_source_v4->is_v4())
    return error("tunnel_source.ipv4: " + spec.tunnel_source_v4->to_string() + " is not IPv4");
  if (spec.tunnel_source_v6 && spec.tunnel_source_v6->is_v4())
    return error("tunnel_source.ipv6: " + spec.tunnel_source_v6->to_string() + " is not IPv6");
  for (const auto& [field, source] : {std::pair{"tunnel_source.ipv4", &spec.tunnel_source_v4},
                                      std::pair{"tunnel_source.ipv6", &spec.tunnel_source_v6}})
    if (*source)
      if (auto why = unusable_address_reason(**source))
        return error(std::string(field) + ": " + (*source)->to_string() + " " + *why);
  if (spec.listeners.size() > 0xffff) return error("listeners: more than 65535");
  std::set<IpAddress> peers;
  for (size_t pi = 0; pi < spec.relay_peers.size(); ++pi) {
    const IpAddress& a = spec.relay_peers[pi];
    const std::string where = "relay_peers[" + std::to_string(pi) + "]: " + a.to_string();
    if (auto why = unusable_address_reason(a)) return error(where + " " + *why);
    if (a == spec.tunnel_source_v4 || a == spec.tunnel_source_v6)
      return error(where + " is this PoP's tunnel source");
    if (!peers.insert(a).second) return error(where + " is listed twice");
  }

  // Every VIP of the table: no endpoint may be one (the PoP would
  // encapsulate to itself, again and again).
  std::set<IpAddress> vips;
  for (const auto& l : spec.listeners) vips.insert(l.vips.begin(), l.vips.end());

  // (vip, protocol bit) -> ranges with their listener, to find overlaps.
  struct Owner {
    uint16_t first, last;
    size_t listener, range;
  };
  std::map<std::pair<IpAddress, int>, std::vector<Owner>> ranges;
  uint64_t with_endpoints = 0;
  for (const auto& l : spec.listeners) with_endpoints += l.endpoints.empty() ? 0 : 1;
  if (uint64_t bytes = with_endpoints * spec.maglev_size * sizeof(uint16_t);
      bytes > kMaxMaglevBytes)
    return error("maglev_table_size: " + std::to_string(with_endpoints) + " listeners x " +
                 std::to_string(spec.maglev_size) + " slots need " + std::to_string(bytes >> 20) +
                 " MiB of Maglev tables; at most " + std::to_string(kMaxMaglevBytes >> 20) +
                 " MiB are built (a smaller maglev_table_size, or fewer listeners per PoP)");
  std::set<std::string> names;
  for (size_t li = 0; li < spec.listeners.size(); ++li) {
    const auto& l = spec.listeners[li];
    std::string where = "listeners[" + std::to_string(li) + "]";
    if (l.name.empty()) return error(where + ".name: required");
    if (!names.insert(l.name).second)
      return error(where + ".name: \"" + l.name + "\" is used twice");
    if (l.vips.empty()) return error(where + ".vips: at least one VIP is required");
    for (size_t vi = 0; vi < l.vips.size(); ++vi)
      if (auto why = unusable_address_reason(l.vips[vi]))
        return error(at(li, "vips", vi) + ": " + l.vips[vi].to_string() + " " + *why);
    if (l.port_ranges.empty()) return error(where + ".port_ranges: at least one range is required");
    if (l.tcp_idle_s < 1 || l.tcp_idle_s > 86400)
      return error(where + ".tcp_idle_timeout_s: " + std::to_string(l.tcp_idle_s) +
                   " is outside 1..86400");
    if (l.udp_idle_s < 1 || l.udp_idle_s > 86400)
      return error(where + ".udp_idle_timeout_s: " + std::to_string(l.udp_idle_s) +
                   " is outside 1..86400");
    if (l.flow_log_sample_ppm > kMaxFlowLogSamplePpm)
      return error(where + ".flow_log_sample_ppm: " + std::to_string(l.flow_log_sample_ppm) +
                   " is outside 0.." + std::to_string(kMaxFlowLogSamplePpm));
    if (l.endpoints.size() >= 0xffff) return error(where + ".endpoints: more than 65534");
    if (uint64_t need = uint64_t{kMaglevSlotsPerEndpoint} * l.endpoints.size();
        need > spec.maglev_size)
      return error(where + ".endpoints: " + std::to_string(l.endpoints.size()) +
                   " endpoints need a maglev_table_size of at least " + std::to_string(need) +
                   " (" + std::to_string(kMaglevSlotsPerEndpoint) + " slots each); it is " +
                   std::to_string(spec.maglev_size));
    for (size_t ri = 0; ri < l.port_ranges.size(); ++ri) {
      const auto& r = l.port_ranges[ri];
      if (r.first == 0 || r.last < r.first)
        return error(at(li, "port_ranges", ri) + ": " + std::to_string(r.first) + ".." +
                     std::to_string(r.last) + " is not a range within 1..65535");
      for (size_t vi = 0; vi < l.vips.size(); ++vi) {
        for (int proto_bit : {1, 2}) {
          if (!(static_cast<int>(l.protocol) & proto_bit)) continue;
          auto& owners = ranges[{l.vips[vi], proto_bit}];
          for (const auto& o : owners) {
            if (r.first <= o.last && o.first <= r.last) {
              std::ostringstream os;
              os << at(li, "port_ranges", ri) << ": " << r.first << ".." << r.last
                 << " overlaps listeners[" << o.listener << "].port_ranges[" << o.range
                 << "] on VIP " << l.vips[vi].to_string() << " ("
                 << (proto_bit == 1 ? "TCP" : "UDP") << ")";
              return error(os.str());
            }
          }
          owners.push_back({r.first, r.last, li, ri});
        }
      }
    }
    std::set<IpAddress> addresses;
    for (size_t ei = 0; ei < l.endpoints.size(); ++ei) {
      const auto& e = l.endpoints[ei];
      if (e.weight > 255)
        return error(at(li, "endpoints", ei) + ".weight: " + std::to_string(e.weight) +
                     " is outside 0..255");
      if (e.unhealthy_drain_s > kMaxUnhealthyDrainS)
        return error(at(li, "endpoints", ei) +
                     ".unhealthy_drain_s: " + std::to_string(e.unhealthy_drain_s) +
                     " is outside 0.." + std::to_string(kMaxUnhealthyDrainS));
      if (!addresses.insert(e.address).second)
        return error(at(li, "endpoints", ei) + ".address: " + e.address.to_string() +
                     " is listed twice");
      if (auto why = unusable_address_reason(e.address))
        return error(at(li, "endpoints", ei) + ".address: " + e.address.to_string() + " " + *why);
      if (vips.count(e.address))
        return error(at(li, "endpoints", ei) + ".address: " + e.address.to_string() +
                     " is a VIP of this table; traffic to it would loop through the PoP");
      if (e.address == spec.tunnel_source_v4 || e.address == spec.tunnel_source_v6)
        return error(at(li, "endpoints", ei) + ".address: " + e.address.to_string() +
                     " is this PoP's tunnel source");
      if (e.address.is_v4() && !spec.tunnel_source_v4)
        return error(at(li, "endpoints", ei) + ".address: IPv4 endpoint " + e.address.to_string() +
                     " needs tunnel_source.ipv4");
      if (!e.address.is_v4() && !spec.tunnel_source_v6)
        return error(at(li, "endpoints", ei) + ".address: IPv6 endpoint " + e.address.to_string() +
                     " needs tunnel_source.ipv6");
      if (e.relay) {
        const std::string where = at(li, "endpoints", ei) + ".relay: " + e.relay->to_string();
        if (e.relay->is_v4() != e.address.is_v4())
          return error(where + " is not of the family of endpoint " + e.address.to_string());
        if (auto why = unusable_address_reason(*e.relay)) return error(where + " " + *why);
        if (*e.relay == spec.tunnel_source_v4 || *e.relay == spec.tunnel_source_v6)
          return error(where + " is this PoP's tunnel source; a PoP does not relay to itself");
        if (vips.count(*e.relay)) return error(where + " is a VIP of this table");
      }
    }
  }
  return ok_status();
}

}  // namespace onramp
