// `onrampctl pop ...`: the PoPs the controller knows, their session state,
// which table version each one runs, and the servers (hosts) of each.
#include <CLI/CLI.hpp>
#include <map>
#include <set>

#include "controlplane/cli/call.h"
#include "controlplane/cli/resource_tables.h"
#include "controlplane/common/state_names.h"

namespace onramp::cli {
namespace {

std::string version(uint64_t v) { return v == 0 ? "" : std::to_string(v); }

std::string coordinates(const v1::Pop& p) {
  return format_number(p.latitude(), 4) + "," + format_number(p.longitude(), 4);
}

// "192.0.2.1, 2001:db8::1", or whichever of the two is set.
std::string tunnel_source(const v1::TunnelSource& t) {
  return t.ipv4() + (t.ipv4().empty() || t.ipv6().empty() ? "" : ", ") + t.ipv6();
}
std::string tunnel_source(const v1::Pop& p) { return tunnel_source(p.tunnel_source()); }

// "02:00:00:00:00:01 (learned)", "unresolved via 10.0.0.1", "" when not
// reported.
template <typename PopOrHost>
std::string next_hop(const PopOrHost& p) {
  if (p.next_hop_source().empty()) return "";
  if (p.next_hop_source() == "unresolved")
    return "unresolved" + (p.next_hop_address().empty() ? "" : " via " + p.next_hop_address());
  return p.next_hop_mac() + " (" + p.next_hop_source() + ")";
}

// A PoP x PoP cell: "45.2/0.8 ms 0%", "no reply (100% loss)", and "down: "
// before either while the measuring agent holds the path down.
std::string path_cell(const v1::PopPath& p) {
  const std::string measured =
      p.rtt_ms() < 0 ? "no reply (" + format_number(p.loss_percent(), 0) + "% loss)"
                     : format_number(p.rtt_ms()) + "/" + format_number(p.jitter_ms()) + " ms " +
                           format_number(p.loss_percent(), 0) + "%";
  return p.down() ? "down: " + measured : measured;
}

}  // namespace

void print_pops(std::ostream& out, const v1::ListPopsResponse& list, bool wide) {
  Table t({"POP", "CITY", "COUNTRY", "STATE", "APPLIED", "SENT", "DATAPLANE", "BGP", "APPLY_MS",
           "LAST_SEEN", "AGENT"},
          {"IATA", "LOCATION", "TUNNEL_SOURCE", "NACKED", "NEXT_HOP", "REPLICA"}, wide);
  for (const v1::Pop& p : list.pops())
    t.row({p.id(), p.city(), p.country(), std::string(cp::pop_state_name(p.state())),
           version(p.applied_version()) + (p.own_table() ? " (own)" : ""),
           version(p.sent_version()), p.dataplane_healthy() ? "healthy" : "unhealthy",
           p.bgp_announced() ? "announced" : "withdrawn", std::to_string(p.last_apply_latency_ms()),
           format_time_ms(p.last_seen_ms()), p.agent_version()},
          {p.iata(), coordinates(p), tunnel_source(p), version(p.nacked_version()), next_hop(p),
           p.replica()});
  t.print(out);
  // The servers of each PoP (agents that name their host), one row each: a
  // PoP of several servers behind its router's ECMP shows them all.
  bool named = false;
  for (const v1::Pop& p : list.pops())
    for (const v1::PopHost& h : p.hosts()) named = named || !h.name().empty();
  if (named) {
    Table hosts({"POP", "HOST", "APPLIED", "DATAPLANE", "BGP", "APPLY_MS", "LAST_SEEN", "AGENT"},
                {"CONNECTED", "TUNNEL_SOURCE", "NEXT_HOP"}, wide);
    for (const v1::Pop& p : list.pops())
      for (const v1::PopHost& h : p.hosts())
        hosts.row(
            {p.id(), h.name().empty() ? "-" : h.name(), version(h.applied_version()),
             h.dataplane_healthy() ? "healthy" : "unhealthy",
             h.bgp_announced() ? "announced" : "withdrawn",
             std::to_string(h.last_apply_latency_ms()), format_time_ms(h.last_seen_ms()),
             h.agent_version()},
            {format_time_ms(h.connected_ms()), tunnel_source(h.tunnel_source()), next_hop(h)});
    out << '\n';
    hosts.print(out);
  }
  out << "\nconfig version " << list.config_version() << '\n';
  for (const v1::Pop& p : list.pops())
    if (p.own_table())
      out << p.id() << " runs a table its agent computed while the controller was away\n";
  for (const v1::Pop& p : list.pops())
    if (p.adopt_pending())
      out << p.id() << " adopts the controller's next table, backwards or not (pop adopt)\n";
  for (const v1::Pop& p : list.pops())
    if (p.next_hop_source() == "unresolved")
      out << p.id() << " does not know its next hop's MAC ("
          << printable(next_hop(p), kMaxFieldBytes) << "): its tunnel packets are dropped\n";
  for (const v1::Pop& p : list.pops())
    if (p.nacked_version() != 0)
      out << p.id() << " refused version " << p.nacked_version() << ": "
          << printable(p.nack_error(), kMaxFieldBytes) << '\n';
}

void print_pop(std::ostream& out, const v1::Pop& p) {
  Fields f;
  f.add("id", p.id());
  f.add("iata", p.iata());
  f.add("location", p.city() + ", " + p.country() + " (" + format_number(p.latitude(), 4) + ", " +
                        format_number(p.longitude(), 4) + ")");
  f.add("tunnel_source", tunnel_source(p));
  f.add("state", std::string(cp::pop_state_name(p.state())));
  f.add("applied_version", version(p.applied_version()) +
                               (p.own_table() ? " (computed by its agent while the controller "
                                                "was away)"
                                              : ""));
  f.add("sent_version", version(p.sent_version()));
  if (p.nacked_version() != 0)
    f.add("nacked", "version " + std::to_string(p.nacked_version()) + ": " + p.nack_error());
  if (p.adopt_pending()) f.add("adopt", "pending: the next table is taken, backwards or not");
  f.add("dataplane", p.dataplane_healthy() ? "healthy" : "unhealthy");
  f.add("bgp", p.bgp_announced() ? "announced" : "withdrawn");
  if (!p.next_hop_source().empty()) f.add("next_hop", next_hop(p));
  f.add("last_apply_latency_ms", std::to_string(p.last_apply_latency_ms()));
  f.add("last_seen", format_time_ms(p.last_seen_ms()));
  f.add("agent_version", p.agent_version());
  if (!p.replica().empty()) f.add("replica", p.replica());
  for (const v1::PopHost& h : p.hosts())
    f.add("host " + (h.name().empty() ? std::string("-") : printable(h.name(), 63)),
          std::string(h.dataplane_healthy() ? "dataplane healthy" : "dataplane unhealthy") +
              (h.bgp_announced() ? ", announced" : ", withdrawn") + ", applied " +
              (h.applied_version() ? std::to_string(h.applied_version()) : "none") +
              ", tunnel source " + tunnel_source(h.tunnel_source()));
  f.print(out);
}

void print_pop_matrix(std::ostream& out, const v1::GetPopMatrixResponse& m) {
  // Rows are the measuring PoP, columns the one measured (PoP x PoP) or
  // the region (PoP x region), so a relayed path reads along one row:
  // FRA1 -> SIN1 in the first grid, then SIN1 -> the region in the second.
  std::set<std::string> pops, regions;
  std::map<std::pair<std::string, std::string>, const v1::PopPath*> paths;
  std::map<std::pair<std::string, std::string>, double> region_rtt;
  for (const v1::PopPath& p : m.paths()) {
    pops.insert(p.from());
    pops.insert(p.to());
    paths[{p.from(), p.to()}] = &p;
  }
  for (const v1::PopRegionRtt& r : m.regions()) {
    pops.insert(r.pop());
    regions.insert(r.region());
    region_rtt[{r.pop(), r.region()}] = r.rtt_ms();
  }
  if (pops.empty()) {
    out << "no PoP x PoP measurement yet: no PoP is connected, or none reported\n";
    return;
  }
  std::vector<std::string> header{"FROM \\ TO"};
  header.insert(header.end(), pops.begin(), pops.end());
  Table pp(header);
  for (const std::string& from : pops) {
    std::vector<std::string> row{from};
    for (const std::string& to : pops) {
      auto it = paths.find({from, to});
      if (from == to)
        row.push_back("-");
      else if (it == paths.end())
        row.push_back("");
      else
        row.push_back(path_cell(*it->second));
    }
    pp.row(std::move(row));
  }
  out << "PoP x PoP: smoothed RTT/jitter, loss (mesh probes)\n";
  pp.print(out);
  if (regions.empty()) return;
  std::vector<std::string> rheader{"POP \\ REGION"};
  rheader.insert(rheader.end(), regions.begin(), regions.end());
  Table pr(rheader);
  for (const std::string& pop : pops) {
    std::vector<std::string> row{pop};
    for (const std::string& region : regions) {
      auto it = region_rtt.find({pop, region});
      row.push_back(it == region_rtt.end() ? ""
                    : it->second < 0       ? "unmeasured"
                                           : format_number(it->second) + " ms");
    }
    pr.row(std::move(row));
  }
  out << "\nPoP x region: RTT of the nearest group (endpoint probes)\n";
  pr.print(out);
}

void add_pop_commands(CommandTree& tree) {
  CLI::App* g = tree.group(tree.root, "pop", "PoPs: registered when their agent connects");

  tree.command(*g, "list", "List the PoPs, their state and table versions",
               "  onrampctl pop list\n  onrampctl pop list -o json\n", [](Context& ctx) {
                 return call_and_print<v1::ListPopsResponse>(ctx, &AdminStub::ListPops,
                                                             v1::ListPopsRequest(), print_pops);
               });

  auto id = std::make_shared<std::string>();
  tree.command(*g, "get", "Show one PoP", "  onrampctl pop get FRA1\n",
               [id](Context& ctx) {
                 v1::ListPopsResponse all;
                 grpc::Status s = ctx.admin(&AdminStub::ListPops, v1::ListPopsRequest(), all);
                 if (!s.ok()) return ctx.fail(s);
                 for (const v1::Pop& p : all.pops())
                   if (p.id() == *id) {
                     return print_response(ctx, p, [&](std::ostream& out) { print_pop(out, p); });
                   }
                 return ctx.fail(kExitNotFound, "pop: no PoP \"" + *id + "\"");
               })
      ->add_option("id", *id, "PoP id, e.g. FRA1")
      ->required();

  tree.command(*g, "matrix",
               "Show the PoP x PoP RTT, jitter and loss the PoPs measure of each other, beside "
               "each PoP's RTT to each region",
               "  onrampctl pop matrix\n  onrampctl pop matrix -o json\n", [](Context& ctx) {
                 return call_and_print<v1::GetPopMatrixResponse>(
                     ctx, &AdminStub::GetPopMatrix, v1::GetPopMatrixRequest(), print_pop_matrix);
               });

  auto adopt_id = std::make_shared<std::string>();
  tree.command(*g, "adopt",
               "Let a PoP take the controller's table although it would take the PoP backwards "
               "(another store, a lower epoch or version: see its NACK in pop list)",
               "  onrampctl pop adopt FRA1\n",
               [adopt_id](Context& ctx) {
                 v1::AdoptPopRequest req;
                 req.set_pop(*adopt_id);
                 v1::AdoptPopResponse resp;
                 grpc::Status s = ctx.admin(&AdminStub::AdoptPop, req, resp);
                 if (!s.ok()) return ctx.fail(s);
                 return print_response(ctx, resp.pop(),
                                       [&](std::ostream& out) { print_pop(out, resp.pop()); });
               })
      ->add_option("id", *adopt_id, "PoP id, e.g. FRA1")
      ->required();
}

}  // namespace onramp::cli
