#include "dataplane/config/table_loader.h"

#include "common/text.h"
#include "common/textproto.h"

namespace onramp::dp {
namespace {

namespace pb = onramp::v1;

Result<IpAddress> address(const std::string& where, const std::string& text) {
  auto a = IpAddress::parse(text);
  if (!a) return error(where + ": " + quote(text) + " is not an IPv4 or IPv6 address");
  return *a;
}

Status listener_from_proto(const pb::ForwardingListener& l, const std::string& where,
                           ListenerSpec& out) {
  out.name = l.name();
  for (int i = 0; i < l.vips_size(); ++i) {
    auto a = address(where + ".vips[" + std::to_string(i) + "]", l.vips(i));
    if (!a.ok()) return a.status();
    out.vips.push_back(*a);
  }
  switch (l.protocol()) {
    case pb::TCP:
      out.protocol = Protocol::tcp;
      break;
    case pb::UDP:
      out.protocol = Protocol::udp;
      break;
    case pb::TCP_UDP:
      out.protocol = Protocol::tcp_udp;
      break;
    default:
      return error(where + ".protocol: required (TCP, UDP or TCP_UDP)");
  }
  for (int i = 0; i < l.port_ranges_size(); ++i) {
    const auto& r = l.port_ranges(i);
    uint32_t last = r.last() ? r.last() : r.first();
    if (r.first() < 1 || r.first() > 65535 || last > 65535 || last < r.first())
      return error(where + ".port_ranges[" + std::to_string(i) + "]: " + std::to_string(r.first()) +
                   ".." + std::to_string(last) + " is not a range within 1..65535");
    out.port_ranges.push_back({static_cast<uint16_t>(r.first()), static_cast<uint16_t>(last)});
  }
  if (l.affinity() != pb::NONE && l.affinity() != pb::SOURCE_IP)
    return error(where + ".affinity: unknown value " + std::to_string(l.affinity()));
  out.affinity = l.affinity() == pb::SOURCE_IP ? Affinity::source_ip : Affinity::none;
  out.tcp_idle_s = l.tcp_idle_timeout_s() ? l.tcp_idle_timeout_s() : kDefaultTcpIdleS;
  out.udp_idle_s = l.udp_idle_timeout_s() ? l.udp_idle_timeout_s() : kDefaultUdpIdleS;
  out.flow_log_sample_ppm = l.flow_log_sample_ppm();
  for (int i = 0; i < l.endpoints_size(); ++i) {
    const auto& e = l.endpoints(i);
    std::string ew = where + ".endpoints[" + std::to_string(i) + "]";
    EndpointSpec es;
    auto a = address(ew + ".address", e.address());
    if (!a.ok()) return a.status();
    es.address = *a;
    if (e.weight() > 255)
      return error(ew + ".weight: " + std::to_string(e.weight()) + " is outside 0..255");
    es.weight = e.weight();
    if (e.mode() != pb::ENCAP_IPIP && e.mode() != pb::ENCAP_GUE)
      return error(ew + ".mode: unknown value " + std::to_string(e.mode()));
    es.mode = e.mode() == pb::ENCAP_GUE ? ForwardingMode::gue : ForwardingMode::ipip;
    if (e.gue_port() > 65535)
      return error(ew + ".gue_port: " + std::to_string(e.gue_port()) + " is outside 1..65535");
    es.gue_port = static_cast<uint16_t>(e.gue_port());
    es.healthy = !e.unhealthy();
    if (e.has_unhealthy_drain_s()) {
      if (e.unhealthy_drain_s() > kMaxUnhealthyDrainS)
        return error(ew + ".unhealthy_drain_s: " + std::to_string(e.unhealthy_drain_s()) +
                     " is outside 0.." + std::to_string(kMaxUnhealthyDrainS));
      es.unhealthy_drain_s = e.unhealthy_drain_s();
    }
    es.label = e.label();
    if (!e.relay().empty()) {
      auto relay = address(ew + ".relay", e.relay());
      if (!relay.ok()) return relay.status();
      es.relay = *relay;
    }
    out.endpoints.push_back(std::move(es));
  }
  return ok_status();
}

}  // namespace

Result<TableSpec> table_spec_from_proto(const pb::ForwardingTable& msg) {
  TableSpec out;
  out.version = msg.version();
  out.pop = msg.pop();
  if (!msg.tunnel_source().ipv4().empty()) {
    auto a = address("tunnel_source.ipv4", msg.tunnel_source().ipv4());
    if (!a.ok()) return a.status();
    out.tunnel_source_v4 = *a;
  }
  if (!msg.tunnel_source().ipv6().empty()) {
    auto a = address("tunnel_source.ipv6", msg.tunnel_source().ipv6());
    if (!a.ok()) return a.status();
    out.tunnel_source_v6 = *a;
  }
  // Empty: all zeros, to be learned (the dataplane checks that it can).
  if (!msg.next_hop_mac().empty()) {
    auto mac = parse_mac(msg.next_hop_mac());
    if (!mac)
      return error("next_hop_mac: " + quote(msg.next_hop_mac()) + " is not aa:bb:cc:dd:ee:ff");
    if (auto why = unusable_mac_reason(*mac))
      return error("next_hop_mac: " + msg.next_hop_mac() + " " + *why);
    out.next_hop_mac = *mac;
  }
  out.maglev_size = msg.maglev_table_size() ? msg.maglev_table_size() : kDefaultMaglevSize;
  if (msg.gue_port() > 65535)
    return error("gue_port: " + std::to_string(msg.gue_port()) + " is outside 1..65535");
  out.gue_port = msg.gue_port() ? static_cast<uint16_t>(msg.gue_port()) : kDefaultGuePort;
  if (msg.mtu() > 9216)
    return error("mtu: " + std::to_string(msg.mtu()) + " is outside 1280..9216");
  out.mtu = msg.mtu() ? static_cast<uint16_t>(msg.mtu()) : kDefaultMtu;
  for (int i = 0; i < msg.relay_peers_size(); ++i) {
    auto a = address("relay_peers[" + std::to_string(i) + "]", msg.relay_peers(i));
    if (!a.ok()) return a.status();
    out.relay_peers.push_back(*a);
  }
  if (msg.relay_port() > 65535)
    return error("relay_port: " + std::to_string(msg.relay_port()) + " is outside 1..65535");
  out.relay_port = static_cast<uint16_t>(msg.relay_port());
  for (int i = 0; i < msg.listeners_size(); ++i) {
    ListenerSpec l;
    ONRAMP_RETURN_IF_ERROR(
        listener_from_proto(msg.listeners(i), "listeners[" + std::to_string(i) + "]", l));
    out.listeners.push_back(std::move(l));
  }
  ONRAMP_RETURN_IF_ERROR(validate_table_spec(out));
  return out;
}

Result<TableSpec> parse_table_text(std::string_view text) {
  pb::ForwardingTable msg;
  ONRAMP_RETURN_IF_ERROR(parse_text_proto(text, msg));
  return table_spec_from_proto(msg);
}

Result<TableSpec> load_table_file(const std::string& path) {
  pb::ForwardingTable msg;
  ONRAMP_RETURN_IF_ERROR(load_text_proto_file(path, msg));
  auto spec = table_spec_from_proto(msg);
  if (!spec.ok()) return spec.status().prefixed(path);
  return spec;
}

}  // namespace onramp::dp
