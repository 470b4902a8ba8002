#include "dataplane/app/stats_report.h"

#include <google/protobuf/util/json_util.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>

#include <sstream>

#include "dataplane/core/net_headers.h"

namespace onramp::dp {
namespace {

namespace pb = onramp::v1;

uint64_t get(const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); }

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

std::string addr_port(const IpAddress& a, uint16_t port) {
  return a.is_v4() ? a.to_string() + ":" + std::to_string(port)
                   : "[" + a.to_string() + "]:" + std::to_string(port);
}

// Calls f(key, value, listener, endpoint) for every live flow of every worker.
template <class F>
void each_flow(const StatsSources& in, F&& f) {
  auto now = static_cast<uint32_t>(clock_ms());
  const ForwardingTable& table = in.publisher->table();
  for (const WorkerContext* w : *in.workers)
    w->processor->flows().for_each_live(now, [&](const FlowKey& k, const FlowValue& v) {
      const Listener* l = nullptr;
      const Endpoint* e = endpoint_by_id(table, v.endpoint_id, &l);
      f(k, l, e);
    });
}

}  // namespace

pb::NextHop next_hop_status(const TableSpec& spec, const NeighbourWatch* neighbours) {
  pb::NextHop nh;
  NeighbourWatch::View v;
  if (neighbours) {
    v = neighbours->view();
    if (v.address) nh.set_address(v.address->to_string());
    nh.set_changes(v.changes);
  }
  if (spec.next_hop_mac != MacAddress{}) {
    nh.set_source("table");
    nh.set_mac(mac_to_string(spec.next_hop_mac));
  } else if (!neighbours) {
    nh.set_source("none");
    nh.set_mac(mac_to_string(spec.next_hop_mac));
  } else if (v.mac) {
    nh.set_source("learned");
    nh.set_mac(mac_to_string(*v.mac));
  } else {
    nh.set_source("unresolved");
  }
  return nh;
}

pb::DataplaneStats collect_stats(const StatsSources& in) {
  pb::DataplaneStats s;
  auto lock = in.publisher->lock();
  const ForwardingTable& table = in.publisher->table();
  s.set_table_version(table.spec().version);
  s.set_pop(table.spec().pop);
  s.set_workers(static_cast<uint32_t>(in.workers->size()));
  s.set_tables_applied(in.publisher->tables_applied());
  s.set_uptime_ms(clock_ms());
  uint64_t drops[kDropReasonCount] = {};
  auto now = static_cast<uint32_t>(clock_ms());
  for (const WorkerContext* w : *in.workers) {
    const LcoreStats& c = w->processor->stats();
    s.set_rx_packets(s.rx_packets() + get(c.rx_packets));
    s.set_rx_bytes(s.rx_bytes() + get(c.rx_bytes));
    s.set_forwarded(s.forwarded() + get(c.forwarded));
    s.set_echo_replies(s.echo_replies() + get(c.echo_replies));
    s.set_icmp_errors_forwarded(s.icmp_errors_forwarded() + get(c.icmp_errors_forwarded));
    s.set_icmp_too_big_sent(s.icmp_too_big_sent() + get(c.icmp_too_big_sent));
    s.set_fragmented(s.fragmented() + get(c.fragmented));
    s.set_fragments_sent(s.fragments_sent() + get(c.fragments_sent));
    s.set_fragments_forwarded(s.fragments_forwarded() + get(c.fragments_forwarded));
    // Plain counters of another lcore, read while it runs, like the flow
    // table's: approximate until the workers stop.
    const FragmentTableStats& ft = w->processor->fragment_trains().stats();
    s.set_fragment_trains(s.fragment_trains() + ft.trains);
    s.set_fragment_trains_completed(s.fragment_trains_completed() + ft.completed);
    s.set_fragment_trains_timed_out(s.fragment_trains_timed_out() + ft.timed_out);
    s.set_fragment_trains_evicted(s.fragment_trains_evicted() + ft.evicted);
    s.set_new_flows(s.new_flows() + get(c.new_flows));
    s.set_flows_moved(s.flows_moved() + get(c.flows_moved));
    s.set_drained_packets(s.drained_packets() + get(c.drained_packets));
    s.set_relayed_out(s.relayed_out() + get(c.relayed_out));
    s.set_relayed_in(s.relayed_in() + get(c.relayed_in));
    s.set_to_exception(s.to_exception() + get(c.to_exception));
    for (int r = 0; r < kDropReasonCount; ++r) drops[r] += get(c.drops[r]);
    const FlowTable& f = w->processor->flows();
    s.set_flow_capacity(s.flow_capacity() + f.capacity());
    // Racy read of another lcore's table while it runs: an approximate
    // count, good enough for a gauge. Exact at exit.
    s.set_flows_live(s.flows_live() + f.live(now));
    s.set_flow_evictions(s.flow_evictions() + f.stats().evictions);
    s.set_flow_inserts(s.flow_inserts() + f.stats().inserts);
    s.set_flow_expired(s.flow_expired() + f.stats().expired);
    s.set_flow_bytes_per_flow(FlowTable::bytes_per_flow(f.keeps_keys()));
    s.set_idle_sleeps(s.idle_sleeps() + get(w->idle_sleeps));
    s.set_busy_cycles(s.busy_cycles() + get(w->busy_cycles));
    if (const FlowLog* log = w->processor->flow_log()) {
      s.set_flow_log_records(s.flow_log_records() + get(log->stats().records));
      s.set_flow_log_dropped(s.flow_log_dropped() + get(log->stats().dropped));
      s.set_flow_log_flows(s.flow_log_flows() + get(log->stats().logged_flows));
    }
  }
  s.set_tsc_hz(rte_get_tsc_hz());
  if (in.exception) {
    const ExceptionCounters& x = in.exception->counters();
    s.set_exception_interface(in.exception->name());
    s.set_to_kernel(get(x.to_kernel));
    s.set_to_kernel_refused(get(x.to_kernel_refused));
    s.set_from_kernel(get(x.from_kernel));
    s.set_from_kernel_refused(get(x.from_kernel_refused));
  }
  *s.mutable_next_hop() = next_hop_status(table.spec(), in.neighbours);
  for (int r = 0; r < kDropReasonCount; ++r) {
    (*s.mutable_drops())[drop_reason_name(static_cast<DropReason>(r))] = drops[r];
    s.set_dropped(s.dropped() + drops[r]);
  }
  for (size_t li = 0; li < table.listeners().size(); ++li) {
    const Listener& l = table.listener(li);
    TrafficTotals lt = table.listener_totals(li);
    TrafficTotals lh = in.publisher->listener_history(l.name);
    pb::ListenerStats* ls = s.add_listeners();
    ls->set_name(l.name);
    ls->set_packets(lt.packets + lh.packets);
    ls->set_bytes(lt.bytes + lh.bytes);
    ls->set_new_flows(lt.new_flows + lh.new_flows);
    for (const Endpoint& e : l.endpoints) {
      TrafficTotals et = table.endpoint_totals(e);
      TrafficTotals eh = in.publisher->endpoint_history(l.name, e.address);
      pb::EndpointStats* es = ls->add_endpoints();
      es->set_address(e.address.to_string());
      es->set_label(e.label);
      es->set_weight(e.weight);
      es->set_healthy(e.healthy);
      es->set_packets(et.packets + eh.packets);
      es->set_bytes(et.bytes + eh.bytes);
      es->set_new_flows(et.new_flows + eh.new_flows);
    }
  }
  for (const PortInfo& p : *in.ports) {
    rte_eth_stats st{};
    rte_eth_stats_get(p.id, &st);
    pb::PortStats* ps = s.add_ports();
    ps->set_id(p.id);
    ps->set_name(p.name);
    ps->set_mac(mac_to_string(p.mac));
    ps->set_rx_packets(st.ipackets);
    ps->set_tx_packets(st.opackets);
    ps->set_missed(st.imissed);
  }
  // Present, zeros included, like every other counter.
  pb::XdpSteeringStats* x = s.mutable_xdp_steering();
  if (in.steering) {
    const SteeringCounters c = in.steering->counters();
    x->set_ports(c.ports);
    x->set_destinations(c.destinations);
    x->set_map_updates(c.map_updates);
    x->set_map_errors(c.map_errors);
  }
  return s;
}

std::string stats_text(const pb::DataplaneStats& s) {
  std::ostringstream os;
  os << "onramp-dataplane counters (pop " << (s.pop().empty() ? "-" : s.pop()) << ", table version "
     << s.table_version() << ", " << s.workers() << " worker lcore" << (s.workers() == 1 ? "" : "s")
     << ", " << s.tables_applied() << " table" << (s.tables_applied() == 1 ? "" : "s")
     << " applied)\n";
  os << "  rx " << s.rx_packets() << " packets " << s.rx_bytes() << " bytes; forwarded "
     << s.forwarded() << "; echo replies " << s.echo_replies() << "; icmp errors forwarded "
     << s.icmp_errors_forwarded() << "; dropped " << s.dropped() << "\n";
  if (!s.exception_interface().empty())
    os << "  exception path " << s.exception_interface() << ": " << s.to_exception()
       << " for the kernel, " << s.to_kernel() << " sent to it (" << s.to_kernel_refused()
       << " refused); " << s.from_kernel() << " from it sent out (" << s.from_kernel_refused()
       << " refused)\n";
  if (s.has_next_hop() && s.next_hop().source() != "none")
    os << "  next hop " << (s.next_hop().address().empty() ? "-" : s.next_hop().address()) << " "
       << (s.next_hop().mac().empty() ? "-" : s.next_hop().mac()) << " (" << s.next_hop().source()
       << ", " << s.next_hop().changes() << " changes)\n";
  if (s.icmp_too_big_sent() || s.fragmented())
    os << "  too big for the tunnel: " << s.icmp_too_big_sent() << " answered with ICMP, "
       << s.fragmented() << " split into " << s.fragmented() + s.fragments_sent() << " fragments\n";
  if (s.fragments_forwarded() || s.fragment_trains())
    os << "  fragments to VIPs: " << s.fragments_forwarded() << " forwarded; trains "
       << s.fragment_trains() << ", " << s.fragment_trains_completed() << " completed, "
       << s.fragment_trains_timed_out() << " timed out, " << s.fragment_trains_evicted()
       << " evicted\n";
  os << "  flows: " << s.new_flows() << " new, " << s.flows_moved() << " moved; table "
     << s.flows_live() << " live of " << s.flow_capacity() << ", " << s.flow_evictions()
     << " evicted (" << s.flow_bytes_per_flow() << " bytes per flow)\n";
  if (s.xdp_steering().ports())
    os << "  xdp steering: " << s.xdp_steering().destinations() << " destinations on "
       << s.xdp_steering().ports() << " port" << (s.xdp_steering().ports() == 1 ? "" : "s") << ", "
       << s.xdp_steering().map_updates() << " map updates, " << s.xdp_steering().map_errors()
       << " errors\n";
  if (s.flow_log_records() || s.flow_log_dropped())
    os << "  flow logs: " << s.flow_log_flows() << " flows sampled, " << s.flow_log_records()
       << " records, " << s.flow_log_dropped() << " lost to full rings\n";
  if (s.rx_packets() && s.tsc_hz())
    os << "  busy " << s.busy_cycles() << " TSC cycles, " << s.busy_cycles() / s.rx_packets()
       << " per packet received, at " << s.tsc_hz() / 1000000 << " MHz\n";
  for (const auto& l : s.listeners()) {
    os << "  listener " << l.name() << ": " << l.packets() << " packets " << l.bytes() << " bytes "
       << l.new_flows() << " new flows\n";
    for (const auto& e : l.endpoints()) {
      os << "    endpoint " << e.address();
      if (!e.label().empty()) os << " (" << e.label() << ")";
      os << " weight " << e.weight() << (e.healthy() ? "" : " unhealthy") << ": " << e.packets()
         << " packets " << e.bytes() << " bytes " << e.new_flows() << " new flows\n";
    }
  }
  if (s.dropped()) {
    os << "  drops:\n";
    for (int r = 0; r < kDropReasonCount; ++r) {
      auto reason = static_cast<DropReason>(r);
      auto it = s.drops().find(drop_reason_name(reason));
      if (it == s.drops().end() || it->second == 0) continue;
      os << "    " << it->first << " " << it->second << "  (" << drop_reason_description(reason)
         << ")\n";
    }
  }
  for (const auto& p : s.ports())
    os << "  port " << p.id() << " " << p.name() << " " << p.mac() << ": rx " << p.rx_packets()
       << " tx " << p.tx_packets() << " missed " << p.missed() << "\n";
  return os.str();
}

Result<std::string> stats_json(const pb::DataplaneStats& s) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  // snake_case names, as in the proto and onrampctl's -o json; every field
  // printed, zeros included, so a reader never meets a missing counter.
  // 64-bit counters come out as strings (the proto JSON mapping).
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  if (auto st = google::protobuf::util::MessageToJsonString(s, &out, opts); !st.ok())
    return error("cannot print the counters as JSON: " + st.ToString());
  return out;
}

std::string flows_text(const StatsSources& in) {
  std::ostringstream os;
  os << "  flows:\n";
  each_flow(in, [&](const FlowKey& k, const Listener* l, const Endpoint* e) {
    os << "    ";
    if (k.kind == FlowKind::source_ip) {
      os << "client " << k.client.to_string() << " (source-ip affinity)";
    } else {
      os << proto_name(k.proto) << " " << addr_port(k.client, k.client_port) << " -> "
         << addr_port(k.vip, k.vip_port);
    }
    os << " => " << (e ? e->address.to_string() : "?");
    if (e && !e->label.empty()) os << " (" << e->label << ")";
    if (l) os << " [" << l->name << "]";
    os << "\n";
  });
  return os.str();
}

void add_flows(const StatsSources& in, pb::DataplaneStats& s) {
  each_flow(in, [&](const FlowKey& k, const Listener* l, const Endpoint* e) {
    pb::FlowEntry* f = s.add_flows();
    f->set_client(k.client.to_string());
    if (k.kind == FlowKind::five_tuple) {
      f->set_client_port(k.client_port);
      f->set_vip(k.vip.to_string());
      f->set_vip_port(k.vip_port);
      f->set_proto(proto_name(k.proto));
    }
    if (e) f->set_endpoint(e->address.to_string());
    if (l) f->set_listener(l->name);
  });
}

}  // namespace onramp::dp
