#include "dataplane/config/table_loader.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>

namespace onramp::dp {
namespace {

namespace pb = onramp::v1;

class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (first_.empty())
      first_ =
          "line " + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

std::string address(const std::string& where, const std::string& text, IpAddress& out) {
  auto a = IpAddress::parse(text);
  if (!a) return where + ": \"" + text + "\" is not an IPv4 or IPv6 address";
  out = *a;
  return "";
}

std::string listener_from_proto(const pb::ForwardingListener& l, const std::string& where,
                                ListenerSpec& out) {
  out.name = l.name();
  for (int i = 0; i < l.vips_size(); ++i) {
    IpAddress a;
    if (auto e = address(where + ".vips[" + std::to_string(i) + "]", l.vips(i), a); !e.empty())
      return e;
    out.vips.push_back(a);
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
      return where + ".protocol: required (TCP, UDP or TCP_UDP)";
  }
  for (int i = 0; i < l.port_ranges_size(); ++i) {
    const auto& r = l.port_ranges(i);
    uint32_t last = r.last() ? r.last() : r.first();
    if (r.first() < 1 || r.first() > 65535 || last > 65535 || last < r.first())
      return where + ".port_ranges[" + std::to_string(i) + "]: " + std::to_string(r.first()) +
             ".." + std::to_string(last) + " is not a range within 1..65535";
    out.port_ranges.push_back({static_cast<uint16_t>(r.first()), static_cast<uint16_t>(last)});
  }
  if (l.affinity() != pb::NONE && l.affinity() != pb::SOURCE_IP)
    return where + ".affinity: unknown value " + std::to_string(l.affinity());
  out.affinity = l.affinity() == pb::SOURCE_IP ? Affinity::source_ip : Affinity::none;
  out.tcp_idle_s = l.tcp_idle_timeout_s() ? l.tcp_idle_timeout_s() : kDefaultTcpIdleS;
  out.udp_idle_s = l.udp_idle_timeout_s() ? l.udp_idle_timeout_s() : kDefaultUdpIdleS;
  for (int i = 0; i < l.endpoints_size(); ++i) {
    const auto& e = l.endpoints(i);
    std::string ew = where + ".endpoints[" + std::to_string(i) + "]";
    EndpointSpec es;
    if (auto err = address(ew + ".address", e.address(), es.address); !err.empty()) return err;
    if (e.weight() > 255)
      return ew + ".weight: " + std::to_string(e.weight()) + " is outside 0..255";
    es.weight = e.weight();
    if (e.mode() != pb::ENCAP_IPIP && e.mode() != pb::ENCAP_GUE)
      return ew + ".mode: unknown value " + std::to_string(e.mode());
    es.mode = e.mode() == pb::ENCAP_GUE ? ForwardingMode::gue : ForwardingMode::ipip;
    if (e.gue_port() > 65535)
      return ew + ".gue_port: " + std::to_string(e.gue_port()) + " is outside 1..65535";
    es.gue_port = static_cast<uint16_t>(e.gue_port());
    es.healthy = !e.unhealthy();
    es.label = e.label();
    out.endpoints.push_back(std::move(es));
  }
  return "";
}

}  // namespace

std::string table_spec_from_proto(const pb::ForwardingTable& msg, TableSpec& out) {
  out = TableSpec{};
  out.version = msg.version();
  out.pop = msg.pop();
  if (!msg.tunnel_source().ipv4().empty()) {
    IpAddress a;
    if (auto e = address("tunnel_source.ipv4", msg.tunnel_source().ipv4(), a); !e.empty()) return e;
    out.tunnel_source_v4 = a;
  }
  if (!msg.tunnel_source().ipv6().empty()) {
    IpAddress a;
    if (auto e = address("tunnel_source.ipv6", msg.tunnel_source().ipv6(), a); !e.empty()) return e;
    out.tunnel_source_v6 = a;
  }
  if (msg.next_hop_mac().empty()) return "next_hop_mac: required";
  auto mac = parse_mac(msg.next_hop_mac());
  if (!mac) return "next_hop_mac: \"" + msg.next_hop_mac() + "\" is not aa:bb:cc:dd:ee:ff";
  out.next_hop_mac = *mac;
  out.maglev_size = msg.maglev_table_size() ? msg.maglev_table_size() : kDefaultMaglevSize;
  if (msg.gue_port() > 65535)
    return "gue_port: " + std::to_string(msg.gue_port()) + " is outside 1..65535";
  out.gue_port = msg.gue_port() ? static_cast<uint16_t>(msg.gue_port()) : kDefaultGuePort;
  if (msg.mtu() > 9216) return "mtu: " + std::to_string(msg.mtu()) + " is outside 1280..9216";
  out.mtu = msg.mtu() ? static_cast<uint16_t>(msg.mtu()) : kDefaultMtu;
  for (int i = 0; i < msg.listeners_size(); ++i) {
    ListenerSpec l;
    if (auto e = listener_from_proto(msg.listeners(i), "listeners[" + std::to_string(i) + "]", l);
        !e.empty())
      return e;
    out.listeners.push_back(std::move(l));
  }
  return validate_table_spec(out);
}

std::string parse_table_text(const std::string& text, TableSpec& out) {
  pb::ForwardingTable msg;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &msg))
    return errors.first().empty() ? "not a ForwardingTable in text format" : errors.first();
  return table_spec_from_proto(msg, out);
}

std::string load_table_file(const std::string& path, TableSpec& out) {
  std::ifstream in(path);
  if (!in) return path + ": cannot open";
  std::stringstream buf;
  buf << in.rdbuf();
  std::string err = parse_table_text(buf.str(), out);
  return err.empty() ? "" : path + ": " + err;
}

}  // namespace onramp::dp
