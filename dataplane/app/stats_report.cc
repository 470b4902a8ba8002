#include "dataplane/app/stats_report.h"

#include <rte_ethdev.h>

#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "dataplane/core/net_headers.h"

namespace onramp::dp {
namespace {

struct Totals {
  uint64_t rx_packets = 0, rx_bytes = 0, forwarded = 0, echo_replies = 0, icmp_errors = 0,
           new_flows = 0, flows_moved = 0, dropped = 0, idle_sleeps = 0;
  uint64_t drops[kDropReasonCount] = {};
  uint64_t flow_capacity = 0, flows_live = 0, inserts = 0, evictions = 0, expired = 0;
};

Totals sum(const StatsInput& in) {
  Totals t;
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  for (const WorkerContext* w : *in.workers) {
    const LcoreStats& s = w->processor->stats();
    t.rx_packets += get(s.rx_packets);
    t.rx_bytes += get(s.rx_bytes);
    t.forwarded += get(s.forwarded);
    t.echo_replies += get(s.echo_replies);
    t.icmp_errors += get(s.icmp_errors_forwarded);
    t.new_flows += get(s.new_flows);
    t.flows_moved += get(s.flows_moved);
    t.idle_sleeps += get(w->idle_sleeps);
    for (int r = 0; r < kDropReasonCount; ++r) t.drops[r] += get(s.drops[r]);
    const FlowTable& f = w->processor->flows();
    t.flow_capacity += f.capacity();
    t.flows_live += f.live(in.now_ms);
    t.inserts += f.stats().inserts;
    t.evictions += f.stats().evictions;
    t.expired += f.stats().expired;
  }
  for (uint64_t d : t.drops) t.dropped += d;
  return t;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

const char* proto_name(uint8_t p) {
  switch (p) {
    case kProtoTcp:
      return "tcp";
    case kProtoUdp:
      return "udp";
    default:
      return "any";
  }
}

// Finds the endpoint a flow points at, by its id, in any listener.
const Endpoint* endpoint_by_id(const ForwardingTable& t, uint32_t id, const Listener** owner) {
  for (const Listener& l : t.listeners()) {
    int e = l.find_endpoint(id);
    if (e >= 0) {
      *owner = &l;
      return &l.endpoints[e];
    }
  }
  return nullptr;
}

std::string endpoint_text(const IpAddress& a, uint16_t port) {
  return a.is_v4() ? a.to_string() + ":" + std::to_string(port)
                   : "[" + a.to_string() + "]:" + std::to_string(port);
}

}  // namespace

std::string stats_text(const StatsInput& in) {
  Totals t = sum(in);
  const TableSpec& spec = in.table->spec();
  std::ostringstream os;
  os << "onramp-dataplane counters (pop " << (spec.pop.empty() ? "-" : spec.pop)
     << ", table version " << spec.version << ", " << in.workers->size() << " worker lcore"
     << (in.workers->size() == 1 ? "" : "s") << ")\n";
  os << "  rx " << t.rx_packets << " packets " << t.rx_bytes << " bytes; forwarded " << t.forwarded
     << "; echo replies " << t.echo_replies << "; icmp errors forwarded " << t.icmp_errors
     << "; dropped " << t.dropped << "\n";
  os << "  flows: " << t.new_flows << " new, " << t.flows_moved << " moved; table " << t.flows_live
     << " live of " << t.flow_capacity << ", " << t.evictions << " evicted, " << t.expired
     << " expired (" << FlowTable::bytes_per_flow() << " bytes per flow)\n";
  for (size_t li = 0; li < in.table->listeners().size(); ++li) {
    const Listener& l = in.table->listener(li);
    TrafficTotals lt = in.table->listener_totals(li);
    os << "  listener " << l.name << ": " << lt.packets << " packets " << lt.bytes << " bytes "
       << lt.new_flows << " new flows\n";
    for (const Endpoint& e : l.endpoints) {
      TrafficTotals et = in.table->endpoint_totals(e);
      os << "    endpoint " << e.address.to_string();
      if (!e.label.empty()) os << " (" << e.label << ")";
      os << " weight " << int{e.weight} << (e.healthy ? "" : " unhealthy") << ": " << et.packets
         << " packets " << et.bytes << " bytes " << et.new_flows << " new flows\n";
    }
  }
  if (t.dropped) {
    os << "  drops:\n";
    for (int r = 0; r < kDropReasonCount; ++r) {
      if (!t.drops[r]) continue;
      auto reason = static_cast<DropReason>(r);
      os << "    " << drop_reason_name(reason) << " " << t.drops[r] << "  ("
         << drop_reason_description(reason) << ")\n";
    }
  }
  for (const PortInfo& p : *in.ports) {
    rte_eth_stats s{};
    rte_eth_stats_get(p.id, &s);
    os << "  port " << p.id << " " << p.name << " " << mac_to_string(p.mac) << ": rx " << s.ipackets
       << " tx " << s.opackets << " missed " << s.imissed << " rx errors " << s.ierrors
       << " tx errors " << s.oerrors << "\n";
  }
  if (in.with_flows) {
    os << "  flows:\n";
    for (const WorkerContext* w : *in.workers) {
      w->processor->flows().for_each_live(in.now_ms, [&](const FlowKey& k, const FlowValue& v) {
        const Listener* l = nullptr;
        const Endpoint* e = endpoint_by_id(*in.table, v.endpoint_id, &l);
        os << "    ";
        if (k.kind == FlowKind::source_ip) {
          os << "client " << k.client.to_string() << " (source-ip affinity)";
        } else {
          os << proto_name(k.proto) << " " << endpoint_text(k.client, k.client_port) << " -> "
             << endpoint_text(k.vip, k.vip_port);
        }
        os << " => " << (e ? e->address.to_string() : "?");
        if (e && !e->label.empty()) os << " (" << e->label << ")";
        if (l) os << " [" << l->name << "]";
        os << "\n";
      });
    }
  }
  return os.str();
}

std::string stats_json(const StatsInput& in) {
  Totals t = sum(in);
  const TableSpec& spec = in.table->spec();
  std::ostringstream os;
  os << "{\n  \"pop\": \"" << json_escape(spec.pop) << "\",\n  \"table_version\": " << spec.version
     << ",\n  \"workers\": " << in.workers->size() << ",\n  \"rx_packets\": " << t.rx_packets
     << ",\n  \"rx_bytes\": " << t.rx_bytes << ",\n  \"forwarded\": " << t.forwarded
     << ",\n  \"echo_replies\": " << t.echo_replies
     << ",\n  \"icmp_errors_forwarded\": " << t.icmp_errors << ",\n  \"new_flows\": " << t.new_flows
     << ",\n  \"flows_moved\": " << t.flows_moved << ",\n  \"dropped\": " << t.dropped
     << ",\n  \"idle_sleeps\": " << t.idle_sleeps << ",\n  \"drops\": {";
  for (int r = 0; r < kDropReasonCount; ++r)
    os << (r ? ", " : "") << "\"" << drop_reason_name(static_cast<DropReason>(r))
       << "\": " << t.drops[r];
  os << "},\n  \"flow_table\": {\"capacity\": " << t.flow_capacity << ", \"live\": " << t.flows_live
     << ", \"inserts\": " << t.inserts << ", \"evictions\": " << t.evictions
     << ", \"expired\": " << t.expired << ", \"bytes_per_flow\": " << FlowTable::bytes_per_flow()
     << "},\n  \"listeners\": [";
  for (size_t li = 0; li < in.table->listeners().size(); ++li) {
    const Listener& l = in.table->listener(li);
    TrafficTotals lt = in.table->listener_totals(li);
    os << (li ? "," : "") << "\n    {\"name\": \"" << json_escape(l.name)
       << "\", \"packets\": " << lt.packets << ", \"bytes\": " << lt.bytes
       << ", \"new_flows\": " << lt.new_flows << ", \"endpoints\": [";
    for (size_t ei = 0; ei < l.endpoints.size(); ++ei) {
      const Endpoint& e = l.endpoints[ei];
      TrafficTotals et = in.table->endpoint_totals(e);
      os << (ei ? ", " : "") << "{\"address\": \"" << e.address.to_string() << "\", \"label\": \""
         << json_escape(e.label) << "\", \"weight\": " << int{e.weight}
         << ", \"healthy\": " << (e.healthy ? "true" : "false") << ", \"packets\": " << et.packets
         << ", \"bytes\": " << et.bytes << ", \"new_flows\": " << et.new_flows << "}";
    }
    os << "]}";
  }
  os << "\n  ],\n  \"ports\": [";
  for (size_t i = 0; i < in.ports->size(); ++i) {
    const PortInfo& p = (*in.ports)[i];
    rte_eth_stats s{};
    rte_eth_stats_get(p.id, &s);
    os << (i ? ", " : "") << "{\"id\": " << p.id << ", \"name\": \"" << json_escape(p.name)
       << "\", \"mac\": \"" << mac_to_string(p.mac) << "\", \"rx\": " << s.ipackets
       << ", \"tx\": " << s.opackets << ", \"missed\": " << s.imissed << "}";
  }
  os << "]";
  if (in.with_flows) {
    os << ",\n  \"flows\": [";
    bool first = true;
    for (const WorkerContext* w : *in.workers) {
      w->processor->flows().for_each_live(in.now_ms, [&](const FlowKey& k, const FlowValue& v) {
        const Listener* l = nullptr;
        const Endpoint* e = endpoint_by_id(*in.table, v.endpoint_id, &l);
        os << (first ? "" : ",") << "\n    {\"client\": \"" << k.client.to_string() << "\"";
        if (k.kind == FlowKind::five_tuple)
          os << ", \"client_port\": " << k.client_port << ", \"vip\": \"" << k.vip.to_string()
             << "\", \"vip_port\": " << k.vip_port << ", \"proto\": \"" << proto_name(k.proto)
             << "\"";
        os << ", \"endpoint\": \"" << (e ? e->address.to_string() : "") << "\", \"listener\": \""
           << (l ? json_escape(l->name) : "") << "\"}";
        first = false;
      });
    }
    os << "\n  ]";
  }
  os << "\n}\n";
  return os.str();
}

}  // namespace onramp::dp
