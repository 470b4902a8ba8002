#include "controlplane/cli/stats_table.h"

#include <algorithm>
#include <map>

#include "controlplane/cli/output.h"

namespace onramp::cli {

std::string next_hop_text(const v1::NextHop& nh) {
  if (nh.source().empty()) return "";
  std::string text = nh.mac().empty() ? "unresolved" : nh.mac();
  if (!nh.address().empty()) text += " via " + nh.address();
  if (nh.source() != "unresolved") {
    text += " (" + nh.source();
    if (nh.source() == "learned")
      text += ", " + std::to_string(nh.changes()) + (nh.changes() == 1 ? " change" : " changes");
    text += ")";
  }
  return text;
}

void print_dataplane_stats(std::ostream& out, const v1::DataplaneStats& s) {
  Fields f;
  f.add("pop", s.pop());
  f.add("table_version", std::to_string(s.table_version()));
  f.add("tables_applied", std::to_string(s.tables_applied()));
  f.add("uptime", format_number(static_cast<double>(s.uptime_ms()) / 1000.0, 3) + " s");
  f.add("workers", std::to_string(s.workers()));
  f.add("rx_packets", std::to_string(s.rx_packets()));
  f.add("rx_bytes", std::to_string(s.rx_bytes()));
  f.add("forwarded", std::to_string(s.forwarded()));
  f.add("echo_replies", std::to_string(s.echo_replies()));
  f.add("icmp_errors_forwarded", std::to_string(s.icmp_errors_forwarded()));
  // Path MTU and fragments (docs/dataplane.md).
  f.add("icmp_too_big_sent", std::to_string(s.icmp_too_big_sent()));
  f.add("fragmented", std::to_string(s.fragmented()) + " packets, " +
                          std::to_string(s.fragments_sent()) + " frames more");
  f.add("fragments_forwarded", std::to_string(s.fragments_forwarded()));
  f.add("fragment_trains", std::to_string(s.fragment_trains()) + " (" +
                               std::to_string(s.fragment_trains_completed()) + " completed, " +
                               std::to_string(s.fragment_trains_timed_out()) + " timed out, " +
                               std::to_string(s.fragment_trains_evicted()) + " evicted)");
  f.add("dropped", std::to_string(s.dropped()));
  f.add("new_flows", std::to_string(s.new_flows()));
  f.add("flows_moved", std::to_string(s.flows_moved()));
  f.add("drained_packets", std::to_string(s.drained_packets()));
  // Relaying over the backbone (docs/routing.md), at PoPs that relay.
  if (s.relayed_out() > 0 || s.relayed_in() > 0)
    f.add("relayed", std::to_string(s.relayed_out()) + " out (through a relay PoP), " +
                         std::to_string(s.relayed_in()) + " in (relayed for a peer PoP)");
  f.add("flows_live", std::to_string(s.flows_live()) + " of " + std::to_string(s.flow_capacity()));
  f.add("flow_inserts", std::to_string(s.flow_inserts()));
  f.add("flow_expired", std::to_string(s.flow_expired()));
  f.add("flow_evictions", std::to_string(s.flow_evictions()));
  f.add("idle_sleeps", std::to_string(s.idle_sleeps()));
  // Only with AF_XDP ports that onramp's steering program serves.
  if (const v1::XdpSteeringStats& x = s.xdp_steering(); x.ports() > 0)
    f.add("xdp_steering",
          std::to_string(x.destinations()) + " destinations on " + std::to_string(x.ports()) +
              (x.ports() == 1 ? " port, " : " ports, ") + std::to_string(x.map_updates()) +
              " map updates, " + std::to_string(x.map_errors()) + " errors");
  // Flow logs (docs/observability.md): lost = no room on a worker's ring.
  f.add("flow_logs", std::to_string(s.flow_log_flows()) + " flows, " +
                         std::to_string(s.flow_log_records()) + " records, " +
                         std::to_string(s.flow_log_dropped()) + " lost");
  // The exception path and the next hop (docs/dataplane.md), when in use.
  if (!s.exception_interface().empty()) {
    f.add("exception_interface", s.exception_interface());
    f.add("to_exception", std::to_string(s.to_exception()));
    f.add("to_kernel", std::to_string(s.to_kernel()) + " (" +
                           std::to_string(s.to_kernel_refused()) + " refused)");
    f.add("from_kernel", std::to_string(s.from_kernel()) + " (" +
                             std::to_string(s.from_kernel_refused()) + " refused)");
  }
  if (const std::string nh = next_hop_text(s.next_hop()); !nh.empty()) f.add("next_hop", nh);
  f.print(out);

  // Only the reasons that happened; the JSON and YAML views have them all.
  std::map<std::string, uint64_t> drops;
  for (const auto& [reason, n] : s.drops())
    if (n > 0) drops[reason] = n;
  if (!drops.empty()) {
    out << '\n';
    Table t({"DROP_REASON", "PACKETS"});
    for (const auto& [reason, n] : drops) t.row({reason, std::to_string(n)});
    t.print(out);
  }

  if (s.listeners_size() > 0) {
    out << '\n';
    Table t(
        {"LISTENER", "ENDPOINT", "LABEL", "WEIGHT", "HEALTHY", "PACKETS", "BYTES", "NEW_FLOWS"});
    for (const v1::ListenerStats& l : s.listeners()) {
      t.row({l.name(), "*", "", "", "", std::to_string(l.packets()), std::to_string(l.bytes()),
             std::to_string(l.new_flows())});
      for (const v1::EndpointStats& e : l.endpoints())
        t.row({l.name(), e.address(), e.label(), std::to_string(e.weight()), yes_no(e.healthy()),
               std::to_string(e.packets()), std::to_string(e.bytes()),
               std::to_string(e.new_flows())});
    }
    t.print(out);
  }

  if (s.ports_size() > 0) {
    out << '\n';
    Table t({"PORT", "NAME", "MAC", "RX_PACKETS", "TX_PACKETS", "MISSED"});
    for (const v1::PortStats& p : s.ports())
      t.row({std::to_string(p.id()), p.name(), p.mac(), std::to_string(p.rx_packets()),
             std::to_string(p.tx_packets()), std::to_string(p.missed())});
    t.print(out);
  }
}

}  // namespace onramp::cli
