// `onrampctl listener ...`: which ports and protocols of an accelerator's
// VIPs are served, with which client affinity and idle timeouts.
#include <CLI/CLI.hpp>

#include "controlplane/cli/args.h"
#include "controlplane/cli/call.h"
#include "controlplane/cli/resource_tables.h"

namespace onramp::cli {
namespace {

struct ListenerFlags {
  std::string name;
  std::string accelerator;
  std::string protocol;
  std::string ports;
  std::string affinity;
  uint32_t tcp_idle_s = 0;
  uint32_t udp_idle_s = 0;
  // Which optional flags were given (update changes only those).
  CLI::Option* protocol_opt = nullptr;
  CLI::Option* ports_opt = nullptr;
  CLI::Option* affinity_opt = nullptr;
  CLI::Option* tcp_idle_opt = nullptr;
  CLI::Option* udp_idle_opt = nullptr;
};

// A CLI11 check: the value must parse as a port list.
const CLI::Validator kPortList([](std::string& text) { return parse_port_ranges(text).error(); },
                               "PORTS");

void set_ports(v1::Listener& l, const std::string& text) {
  Result<std::vector<PortSpan>> spans = parse_port_ranges(text);
  if (!spans.ok()) return;  // cannot happen: kPortList checked it
  l.clear_port_ranges();
  for (const PortSpan& s : *spans) {
    v1::PortRange* r = l.add_port_ranges();
    r->set_first(s.first);
    if (s.last != s.first) r->set_last(s.last);
  }
}

// Everything but the identity; `only_given` leaves out flags not on the
// command line (update), otherwise their defaults are used (create).
void apply_flags(const ListenerFlags& f, v1::Listener& l, bool only_given) {
  auto given = [&](const CLI::Option* o) { return !only_given || o->count() > 0; };
  if (given(f.protocol_opt)) l.set_protocol(protocol_from_name(f.protocol));
  if (given(f.ports_opt)) set_ports(l, f.ports);
  if (given(f.affinity_opt)) l.set_affinity(affinity_from_name(f.affinity));
  if (given(f.tcp_idle_opt)) l.set_tcp_idle_timeout_s(f.tcp_idle_s);
  if (given(f.udp_idle_opt)) l.set_udp_idle_timeout_s(f.udp_idle_s);
}

// The update mask of the flags given.
std::vector<std::string> given_paths(const ListenerFlags& f) {
  std::vector<std::string> paths;
  for (const auto& [opt, path] : {std::pair{f.protocol_opt, "protocol"},
                                  {f.ports_opt, "port_ranges"},
                                  {f.affinity_opt, "affinity"},
                                  {f.tcp_idle_opt, "tcp_idle_timeout_s"},
                                  {f.udp_idle_opt, "udp_idle_timeout_s"}})
    if (opt->count() > 0) paths.push_back(path);
  return paths;
}

void add_settings(CommandTree& tree, CLI::App& cmd, ListenerFlags& f, bool create) {
  f.protocol_opt = cmd.add_option("--protocol", f.protocol, "tcp, udp or tcp_udp")
                       ->transform(CLI::IsMember(kProtocolNames, CLI::ignore_case));
  tree.choices(f.protocol_opt, kProtocolNames);
  f.ports_opt =
      cmd.add_option("--ports", f.ports, "Port list, e.g. 80,443,8000-8099")->check(kPortList);
  if (create) {
    f.protocol_opt->required();
    f.ports_opt->required();
  }
  f.affinity = "none";
  f.affinity_opt =
      cmd.add_option("--affinity", f.affinity,
                     "none: each connection hashed on its own; source_ip: a client address "
                     "sticks to one endpoint")
          ->transform(CLI::IsMember(kAffinityNames, CLI::ignore_case));
  if (create) f.affinity_opt->capture_default_str();
  tree.choices(f.affinity_opt, kAffinityNames);
  f.tcp_idle_opt = cmd.add_option("--tcp-idle-timeout", f.tcp_idle_s,
                                  "Seconds a TCP flow may idle, 1..86400 (default 340)")
                       ->check(CLI::Range(1, 86400));
  f.udp_idle_opt = cmd.add_option("--udp-idle-timeout", f.udp_idle_s,
                                  "Seconds a UDP flow may idle, 1..86400 (default 30)")
                       ->check(CLI::Range(1, 86400));
}

std::string idle(uint32_t s, uint32_t default_s) {
  return s == 0 ? std::to_string(default_s) + " (default)" : std::to_string(s);
}

Table listener_table(bool wide) {
  return Table({"ACCELERATOR", "NAME", "PROTOCOL", "PORTS", "AFFINITY", "TCP_IDLE_S", "UDP_IDLE_S"},
               {"CREATED", "UPDATED"}, wide);
}

void listener_row(Table& t, const v1::Listener& l) {
  t.row({l.accelerator(), l.name(), protocol_name(l.protocol()),
         format_port_ranges(l.port_ranges()), affinity_name(l.affinity()),
         idle(l.tcp_idle_timeout_s(), 340), idle(l.udp_idle_timeout_s(), 30)},
        {format_time_ms(l.create_time_ms()), format_time_ms(l.update_time_ms())});
}

v1::ListenerKey key_of(const ListenerFlags& f) {
  v1::ListenerKey key;
  key.set_accelerator(f.accelerator);
  key.set_name(f.name);
  return key;
}

void add_identity(CLI::App& cmd, ListenerFlags& f) {
  cmd.add_option("name", f.name, "Listener name, unique in its accelerator")->required();
  cmd.add_option("--accelerator", f.accelerator, "The accelerator it belongs to")->required();
}

}  // namespace

void print_listener(std::ostream& out, const v1::Listener& l, bool wide) {
  Table t = listener_table(wide);
  listener_row(t, l);
  t.print(out);
}

void print_listeners(std::ostream& out, const v1::ListListenersResponse& list, bool wide) {
  Table t = listener_table(wide);
  for (const v1::Listener& l : list.listeners()) listener_row(t, l);
  t.print(out);
}

void add_listener_commands(CommandTree& tree) {
  CLI::App* g = tree.group(tree.root, "listener", "Listeners: ports and protocols of the VIPs");

  auto c = std::make_shared<ListenerFlags>();
  CLI::App* create = tree.command(
      *g, "create", "Create a listener",
      "  onrampctl listener create https --accelerator web --protocol tcp --ports 80,443\n"
      "  onrampctl listener create dns --accelerator web --protocol udp --ports 53 "
      "--affinity source_ip --udp-idle-timeout 10\n",
      [c](Context& ctx) {
        v1::Listener req;
        req.set_accelerator(c->accelerator);
        req.set_name(c->name);
        apply_flags(*c, req, /*only_given=*/false);
        return call_and_print<v1::Listener>(ctx, &AdminStub::CreateListener, req, print_listener);
      });
  add_identity(*create, *c);
  add_settings(tree, *create, *c, /*create=*/true);

  auto get = std::make_shared<ListenerFlags>();
  add_identity(*tree.command(*g, "get", "Show one listener",
                             "  onrampctl listener get https --accelerator web\n",
                             [get](Context& ctx) {
                               return call_and_print<v1::Listener>(ctx, &AdminStub::GetListener,
                                                                   key_of(*get), print_listener);
                             }),
               *get);

  auto l = std::make_shared<ListenerFlags>();
  tree.command(*g, "list", "List listeners, of every accelerator or of one",
               "  onrampctl listener list\n  onrampctl listener list --accelerator web\n",
               [l](Context& ctx) {
                 v1::ListRequest req;
                 req.set_accelerator(l->accelerator);
                 return call_and_print<v1::ListListenersResponse>(ctx, &AdminStub::ListListeners,
                                                                  req, print_listeners);
               })
      ->add_option("--accelerator", l->accelerator, "Only this accelerator's listeners");

  auto u = std::make_shared<ListenerFlags>();
  CLI::App* update =
      tree.command(*g, "update", "Change a listener; only the flags given change",
                   "  onrampctl listener update https --accelerator web --ports 80,443,8443\n"
                   "  onrampctl listener update https --accelerator web --tcp-idle-timeout 900\n",
                   [u](Context& ctx) {
                     v1::UpdateListenerRequest req;
                     v1::Listener& l = *req.mutable_listener();
                     l.set_accelerator(u->accelerator);
                     l.set_name(u->name);
                     apply_flags(*u, l, /*only_given=*/true);
                     return update_fields<v1::Listener>(ctx, &AdminStub::UpdateListener, req,
                                                        given_paths(*u), print_listener);
                   });
  add_identity(*update, *u);
  add_settings(tree, *update, *u, /*create=*/false);

  auto d = std::make_shared<ListenerFlags>();
  add_identity(*tree.command(*g, "delete", "Delete a listener (it must have no endpoint groups)",
                             "  onrampctl listener delete dns --accelerator web\n",
                             [d](Context& ctx) {
                               return delete_resource(ctx, &AdminStub::DeleteListener, key_of(*d),
                                                      "listener " + d->accelerator + "/" + d->name);
                             }),
               *d);
}

}  // namespace onramp::cli
