// `onrampctl routes | trace | stats`: what the control plane made of the
// configuration at each PoP, and what the PoPs report back.
#include <CLI/CLI.hpp>

#include "controlplane/cli/args.h"
#include "controlplane/cli/call.h"
#include "controlplane/cli/resource_tables.h"
#include "controlplane/cli/stats_table.h"

namespace onramp::cli {
namespace {

struct TraceFlags {
  std::string pop;
  FlowFlags flow;
};

}  // namespace

void print_routes(std::ostream& out, const v1::GetRoutesResponse& r) {
  out << "pop " << r.pop() << ": computed version " << r.table().version() << ", applied version "
      << r.applied_version() << '\n';
  for (const v1::ListenerRoute& l : r.listeners()) {
    out << '\n' << l.accelerator() << '/' << l.listener() << '\n';
    // Groups in routing order: the first takes traffic first.
    Table groups({"#", "GROUP", "REGION", "RTT", "HEALTHY", "DIAL", "SHARE", "REASON"});
    int n = 0;
    for (const v1::GroupRoute& g : l.groups())
      groups.row({std::to_string(++n), g.endpoint_group(), g.region(),
                  g.rtt_ms() < 0 ? "unmeasured" : format_number(g.rtt_ms()) + " ms",
                  std::to_string(g.healthy_endpoints()) + "/" + std::to_string(g.endpoints()),
                  std::to_string(g.traffic_dial_percent()) + "%",
                  format_number(g.share_percent()) + "%", g.reason()});
    groups.print(out, "  ");
    // How each group is reached, where the controller says (relaying,
    // docs/routing.md "Relaying over the backbone").
    bool paths = false;
    for (const v1::GroupRoute& g : l.groups()) paths = paths || !g.path_reason().empty();
    if (paths) {
      out << "\n";
      Table p({"GROUP", "PATH"});
      for (const v1::GroupRoute& g : l.groups())
        if (!g.path_reason().empty()) p.row({g.endpoint_group(), g.path_reason()});
      p.print(out, "  ");
    }
    if (l.fail_open())
      out << "  FAIL OPEN: no endpoint is healthy from " << r.pop()
          << "; every new flow goes to the nearest group, health ignored\n";
    if (l.endpoints_size() > 0) {
      out << '\n';
      bool relayed = false;
      for (const v1::ForwardingEndpoint& e : l.endpoints()) relayed = relayed || !e.relay().empty();
      std::vector<std::string> headers{"ENDPOINT", "WEIGHT", "HEALTHY", "MODE", "LABEL"};
      if (relayed) headers.push_back("RELAY");
      Table eps(headers);
      for (const v1::ForwardingEndpoint& e : l.endpoints()) {
        std::vector<std::string> row{e.address(), std::to_string(e.weight()),
                                     yes_no(!e.unhealthy()), mode_name(e.mode()), e.label()};
        if (relayed) row.push_back(e.relay());
        eps.row(std::move(row));
      }
      eps.print(out, "  ");
    }
  }
}

void print_trace(std::ostream& out, const v1::TraceFlowResponse& t) {
  Fields f;
  f.add("pop", t.pop());
  f.add("accelerator", t.accelerator());
  f.add("listener", t.listener());
  f.add("endpoint_group", t.endpoint_group());
  f.add("region", t.region());
  f.add("endpoint", t.endpoint());
  f.add("mode", t.endpoint().empty() ? "" : mode_name(t.mode()));
  f.add("table_version", std::to_string(t.table_version()));
  f.print(out);
  print_explanation(out, t.explanation());
}

void print_stats(std::ostream& out, const v1::GetStatsResponse& r, bool detail) {
  if (detail) {
    bool first = true;
    for (const v1::PopStats& p : r.pops()) {
      if (!first) out << '\n';
      first = false;
      out << "pop " << p.pop() << (p.host().empty() ? "" : " host " + printable(p.host(), 63))
          << ", reported " << format_time_ms(p.reported_ms()) << "\n\n";
      print_dataplane_stats(out, p.stats());
    }
    return;
  }
  Table t({"POP", "REPORTED", "TABLE_VERSION", "RX_PACKETS", "FORWARDED", "DROPPED", "NEW_FLOWS",
           "FLOWS_LIVE"});
  for (const v1::PopStats& p : r.pops()) {
    const v1::DataplaneStats& s = p.stats();
    // One row per server of a PoP: FRA1/fra1-a.
    t.row({p.pop() + (p.host().empty() ? "" : "/" + p.host()), format_time_ms(p.reported_ms()),
           std::to_string(s.table_version()), std::to_string(s.rx_packets()),
           std::to_string(s.forwarded()), std::to_string(s.dropped()),
           std::to_string(s.new_flows()), std::to_string(s.flows_live())});
  }
  t.print(out);
}

void add_flow_options(CommandTree& tree, CLI::App* trace, FlowFlags& flags) {
  trace->add_option("--client", flags.client, "Client address, ADDR or ADDR:PORT ([V6]:PORT)")
      ->required();
  trace->add_option("--vip", flags.vip, "The VIP the flow is sent to")->required();
  trace->add_option("--port", flags.port, "Destination port")
      ->required()
      ->check(CLI::Range(1, 65535));
  tree.choices(trace->add_option("--protocol", flags.protocol, "tcp or udp")
                   ->required()
                   ->transform(CLI::IsMember(kFlowProtocolNames, CLI::ignore_case)),
               kFlowProtocolNames);
}

void add_route_commands(CommandTree& tree) {
  auto pop = std::make_shared<std::string>();
  tree.command(tree.root, "routes",
               "The route weights computed for one PoP, and why each endpoint group got its "
               "share",
               "  onrampctl routes --pop FRA1\n  onrampctl routes --pop FRA1 -o yaml\n",
               [pop](Context& ctx) {
                 v1::GetRoutesRequest req;
                 req.set_pop(*pop);
                 return call_and_print<v1::GetRoutesResponse>(ctx, &AdminStub::GetRoutes, req,
                                                              print_routes);
               })
      ->add_option("--pop", *pop, "PoP id, e.g. FRA1")
      ->required();

  auto t = std::make_shared<TraceFlags>();
  CLI::App* trace = tree.command(
      tree.root, "trace",
      "Where a flow arriving at a PoP goes: listener, endpoint group, endpoint, and why",
      "  onrampctl trace --pop FRA1 --client 198.51.100.200:40000 --vip 203.0.113.10 "
      "--port 443 --protocol tcp\n",
      [t](Context& ctx) {
        v1::TraceFlowRequest req;
        if (Status s = fill_flow_request(t->flow, req); !s.ok())
          return ctx.fail(kExitUsage, s.message());
        req.set_pop(t->pop);
        return call_and_print<v1::TraceFlowResponse>(ctx, &AdminStub::TraceFlow, req, print_trace);
      });
  trace->add_option("--pop", t->pop, "PoP id, e.g. FRA1")->required();
  add_flow_options(tree, trace, t->flow);

  auto stats_pop = std::make_shared<std::string>();
  tree.command(tree.root, "stats",
               "Dataplane counters as the PoPs reported them: one line per PoP, or every "
               "counter of one",
               "  onrampctl stats\n  onrampctl stats --pop FRA1\n",
               [stats_pop](Context& ctx) {
                 v1::GetStatsRequest req;
                 req.set_pop(*stats_pop);
                 bool detail = !stats_pop->empty();
                 return call_and_print<v1::GetStatsResponse>(
                     ctx, &AdminStub::GetStats, req,
                     [detail](std::ostream& out, const auto& r) { print_stats(out, r, detail); });
               })
      ->add_option("--pop", *stats_pop, "Only this PoP, with every counter");
}

}  // namespace onramp::cli
