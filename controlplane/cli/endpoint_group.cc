// `onrampctl endpoint-group ...`: the endpoints of one region serving a
// listener, with their traffic dial, health check and port overrides.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>
#include <optional>

#include "common/table_spec.h"
#include "common/text.h"
#include "controlplane/cli/args.h"
#include "controlplane/cli/call.h"
#include "controlplane/cli/resource_tables.h"

namespace onramp::cli {
namespace {

struct GroupFlags {
  std::string name;
  std::string accelerator;
  std::string listener;
  std::string region;
  uint32_t traffic_dial = 100;
  uint32_t unhealthy_drain_s = kDefaultUnhealthyDrainS;
  std::string health_check = "tcp";
  uint32_t health_port = 0;
  std::string health_path;
  uint32_t health_interval_ms = 0;
  uint32_t health_timeout_ms = 0;
  uint32_t healthy_threshold = 0;
  uint32_t unhealthy_threshold = 0;
  std::string health_status;
  std::string health_sni;
  bool health_insecure = false;
  std::string health_ca_file;
  std::vector<std::string> port_overrides;
  bool no_port_overrides = false;
  std::string port_rewrite;
  // Given or not (update changes only what is given).
  std::vector<std::pair<CLI::Option*, std::function<void(const GroupFlags&, v1::EndpointGroup&)>>>
      setters;
};

const CLI::Validator kPortOverride(
    [](std::string& text) { return parse_port_override(text).error(); },
    "LISTENER_PORT:ENDPOINT_PORT");

const CLI::Validator kStatusRange(
    [](std::string& text) -> std::string {
      // Same shape as a port range: MIN-MAX.
      Result<std::vector<PortSpan>> spans = parse_port_ranges(text);
      if (!spans.ok() || spans->size() != 1 || spans->at(0).first < 100 || spans->at(0).last > 599)
        return "\"" + text + "\" is not a status range MIN-MAX within 100..599";
      return "";
    },
    "MIN-MAX");

// The fields each flag sets: an update's mask.
const std::map<std::string, std::vector<std::string>> kFlagPaths = {
    {"--region", {"region"}},
    {"--traffic-dial", {"traffic_dial_percent"}},
    {"--unhealthy-drain-s", {"unhealthy_drain_s"}},
    {"--health-check", {"health_check.protocol"}},
    {"--health-port", {"health_check.port"}},
    {"--health-path", {"health_check.path"}},
    {"--health-status", {"health_check.expected_status_min", "health_check.expected_status_max"}},
    {"--health-sni", {"health_check.tls_server_name"}},
    {"--health-insecure", {"health_check.tls_skip_verify"}},
    {"--health-ca-file", {"health_check.tls_ca_file"}},
    {"--health-interval-ms", {"health_check.interval_ms"}},
    {"--health-timeout-ms", {"health_check.timeout_ms"}},
    {"--healthy-threshold", {"health_check.healthy_threshold"}},
    {"--unhealthy-threshold", {"health_check.unhealthy_threshold"}},
    {"--port-override", {"port_overrides"}},
    {"--no-port-overrides", {"port_overrides"}},
    {"--port-rewrite", {"port_rewrite"}},
};

// The update mask of the flags given; nullopt when one of them has no entry
// in kFlagPaths.
std::optional<std::vector<std::string>> given_paths(const GroupFlags& f) {
  std::vector<std::string> paths;
  for (const auto& [opt, set] : f.setters) {
    if (opt->count() == 0) continue;
    auto it = kFlagPaths.find(opt->get_name());
    if (it == kFlagPaths.end()) return std::nullopt;
    for (const std::string& p : it->second)
      if (std::find(paths.begin(), paths.end(), p) == paths.end()) paths.push_back(p);
  }
  return paths;
}

void apply_flags(const GroupFlags& f, v1::EndpointGroup& g, bool only_given) {
  for (const auto& [opt, set] : f.setters)
    if (!only_given || opt->count() > 0) set(f, g);
}

void add_settings(CommandTree& tree, CLI::App& cmd, GroupFlags& f, bool create) {
  auto& s = f.setters;
  CLI::Option* o =
      cmd.add_option("--region", f.region, "Region name, e.g. eu-central (shown in routes)");
  if (create) o->required();
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) { g.set_region(f.region); });

  o = cmd.add_option("--traffic-dial", f.traffic_dial,
                     "Percent of a PoP's traffic this group takes when nearest, 0..100")
          ->check(CLI::Range(0, 100));
  if (create) o->capture_default_str();
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.set_traffic_dial_percent(f.traffic_dial);
  });

  o = cmd.add_option("--unhealthy-drain-s", f.unhealthy_drain_s,
                     "Seconds an established TCP connection stays on an endpoint that turned "
                     "unhealthy before it moves, 0..3600 (0: at once; new connections and UDP "
                     "move at once regardless)")
          ->check(CLI::Range(0u, kMaxUnhealthyDrainS));
  if (create) o->capture_default_str();
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.set_unhealthy_drain_s(f.unhealthy_drain_s);
  });

  o = cmd.add_option("--health-check", f.health_check,
                     "tcp (connect), http (GET, expect a status), https (the same over TLS) or udp "
                     "(request/response)")
          ->transform(CLI::IsMember(kHealthProtocolNames, CLI::ignore_case));
  if (create) o->capture_default_str();
  tree.choices(o, kHealthProtocolNames);
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.mutable_health_check()->set_protocol(health_protocol_from_name(f.health_check));
  });

  o = cmd.add_option("--health-port", f.health_port,
                     "Port probed (default: the listener's first port, after overrides)")
          ->check(CLI::Range(1, 65535));
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.mutable_health_check()->set_port(f.health_port);
  });

  o = cmd.add_option("--health-path", f.health_path, "HTTP(S) path probed (default /)");
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.mutable_health_check()->set_path(f.health_path);
  });

  o = cmd.add_option("--health-status", f.health_status,
                     "HTTP(S) statuses that count as healthy, MIN-MAX (default 200-399)")
          ->check(kStatusRange);
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    Result<std::vector<PortSpan>> spans = parse_port_ranges(f.health_status);
    if (!spans.ok()) return;  // not given (create)
    g.mutable_health_check()->set_expected_status_min(spans->at(0).first);
    g.mutable_health_check()->set_expected_status_max(spans->at(0).last);
  });

  o = cmd.add_option("--health-sni", f.health_sni,
                     "HTTPS: the server name sent as SNI and checked in the certificate, a DNS "
                     "name or an address (default: no SNI, the certificate must name the "
                     "endpoint's address)");
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.mutable_health_check()->set_tls_server_name(f.health_sni);
  });

  o = cmd.add_flag("--health-insecure", f.health_insecure,
                   "HTTPS: do not verify the certificate (default: verify; "
                   "--health-insecure=false verifies again)");
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.mutable_health_check()->set_tls_skip_verify(f.health_insecure);
  });

  o = cmd.add_option("--health-ca-file", f.health_ca_file,
                     "HTTPS: absolute path on the PoPs of the PEM CAs that verify the "
                     "certificate (default: the system's roots)");
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.mutable_health_check()->set_tls_ca_file(f.health_ca_file);
  });

  o = cmd.add_option("--health-interval-ms", f.health_interval_ms,
                     "Probe interval, 100..300000 ms (default 10000)")
          ->check(CLI::Range(100, 300000));
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.mutable_health_check()->set_interval_ms(f.health_interval_ms);
  });

  o = cmd.add_option("--health-timeout-ms", f.health_timeout_ms,
                     "Probe timeout, 10 ms..the interval (default min(2000, interval))")
          ->check(CLI::Range(10, 300000));
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.mutable_health_check()->set_timeout_ms(f.health_timeout_ms);
  });

  o = cmd.add_option("--healthy-threshold", f.healthy_threshold,
                     "Successes in a row to become healthy, 1..10 (default 3)")
          ->check(CLI::Range(1, 10));
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.mutable_health_check()->set_healthy_threshold(f.healthy_threshold);
  });

  o = cmd.add_option("--unhealthy-threshold", f.unhealthy_threshold,
                     "Failures in a row to become unhealthy, 1..10 (default 3)")
          ->check(CLI::Range(1, 10));
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.mutable_health_check()->set_unhealthy_threshold(f.unhealthy_threshold);
  });

  o = cmd.add_option("--port-override", f.port_overrides,
                     "LISTENER_PORT:ENDPOINT_PORT, e.g. 80:8080 (repeat, or a,b); on update "
                     "the list replaces the old one")
          ->delimiter(',')
          ->check(kPortOverride);
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.clear_port_overrides();
    for (const std::string& text : f.port_overrides)
      if (Result<v1::PortOverride> o = parse_port_override(text); o.ok())
        *g.add_port_overrides() = *o;  // kPortOverride checked each
  });

  if (!create) {
    CLI::Option* none =
        cmd.add_flag("--no-port-overrides", f.no_port_overrides, "Remove every port override")
            ->excludes(o);
    s.emplace_back(none, [](const GroupFlags&, v1::EndpointGroup& g) { g.clear_port_overrides(); });
  }

  o = cmd.add_option("--port-rewrite", f.port_rewrite,
                     "Who applies the port overrides: decap (every endpoint of the group runs "
                     "onramp-decap with --port-override VIP:LISTENER_PORT=ENDPOINT_PORT, "
                     "docs/endpoint-setup.md) or none; port overrides need decap")
          ->check(CLI::IsMember({"decap", "none"}));
  s.emplace_back(o, [](const GroupFlags& f, v1::EndpointGroup& g) {
    g.set_port_rewrite(f.port_rewrite == "decap" ? v1::PORT_REWRITE_DECAP
                                                 : v1::PORT_REWRITE_UNSPECIFIED);
  });
}

void add_identity(CLI::App& cmd, GroupFlags& f) {
  cmd.add_option("name", f.name, "Endpoint group name, unique in its listener")->required();
  cmd.add_option("--accelerator", f.accelerator, "The accelerator")->required();
  cmd.add_option("--listener", f.listener, "The listener it serves")->required();
}

v1::EndpointGroupKey key_of(const GroupFlags& f) {
  v1::EndpointGroupKey key;
  key.set_accelerator(f.accelerator);
  key.set_listener(f.listener);
  key.set_name(f.name);
  return key;
}

// The values the controller uses, defaults filled in (resources.proto).
std::string health_summary(const v1::HealthCheck& h) {
  std::string s = health_protocol_name(h.protocol());
  if (h.port() != 0) s += ":" + std::to_string(h.port());
  if (h.protocol() == v1::HEALTH_CHECK_HTTP || h.protocol() == v1::HEALTH_CHECK_HTTPS) {
    s += h.path().empty() ? "/" : h.path();
    uint32_t lo = h.expected_status_min() ? h.expected_status_min() : 200;
    uint32_t hi = h.expected_status_max() ? h.expected_status_max() : 399;
    s += " " + std::to_string(lo) + "-" + std::to_string(hi);
  }
  if (h.protocol() == v1::HEALTH_CHECK_HTTPS) {
    if (!h.tls_server_name().empty()) s += " sni=" + printable(h.tls_server_name());
    if (h.tls_skip_verify())
      s += " insecure";
    else
      s += " ca=" + (h.tls_ca_file().empty() ? std::string("system") : printable(h.tls_ca_file()));
  }
  return s;
}

Table group_table(bool wide) {
  return Table({"ACCELERATOR", "LISTENER", "NAME", "REGION", "DIAL", "HEALTH_CHECK", "INTERVAL_MS",
                "TIMEOUT_MS", "UP/DOWN", "DRAIN_S", "PORT_OVERRIDES"},
               {"CREATED", "UPDATED"}, wide);
}

void group_row(Table& t, const v1::EndpointGroup& g) {
  const v1::HealthCheck& h = g.health_check();
  uint32_t interval = h.interval_ms() ? h.interval_ms() : 10000;
  uint32_t timeout = h.timeout_ms() ? h.timeout_ms() : std::min<uint32_t>(2000, interval);
  uint32_t up = h.healthy_threshold() ? h.healthy_threshold() : 3;
  uint32_t down = h.unhealthy_threshold() ? h.unhealthy_threshold() : 3;
  std::string overrides;
  for (const v1::PortOverride& o : g.port_overrides()) {
    if (!overrides.empty()) overrides += ',';
    overrides += std::to_string(o.listener_port()) + ":" + std::to_string(o.endpoint_port());
  }
  // Who rewrites the ports: onramp-decap at the endpoints, or nobody yet (a
  // group stored before port_rewrite existed; its next update must set it).
  if (!overrides.empty())
    overrides += g.port_rewrite() == v1::PORT_REWRITE_DECAP ? " (decap)" : " (not applied)";
  uint32_t dial = g.has_traffic_dial_percent() ? g.traffic_dial_percent() : 100;
  uint32_t drain = g.has_unhealthy_drain_s() ? g.unhealthy_drain_s() : kDefaultUnhealthyDrainS;
  t.row({g.accelerator(), g.listener(), g.name(), g.region(), std::to_string(dial) + "%",
         health_summary(h), std::to_string(interval), std::to_string(timeout),
         std::to_string(up) + "/" + std::to_string(down), std::to_string(drain), overrides},
        {format_time_ms(g.create_time_ms()), format_time_ms(g.update_time_ms())});
}

}  // namespace

void print_endpoint_group(std::ostream& out, const v1::EndpointGroup& g, bool wide) {
  Table t = group_table(wide);
  group_row(t, g);
  t.print(out);
}

void print_endpoint_groups(std::ostream& out, const v1::ListEndpointGroupsResponse& list,
                           bool wide) {
  Table t = group_table(wide);
  for (const v1::EndpointGroup& g : list.endpoint_groups()) group_row(t, g);
  t.print(out);
}

void add_endpoint_group_commands(CommandTree& tree) {
  CLI::App* g = tree.group(tree.root, "endpoint-group",
                           "Endpoint groups: one region's endpoints for a listener");

  auto c = std::make_shared<GroupFlags>();
  CLI::App* create = tree.command(
      *g, "create", "Create an endpoint group",
      "  onrampctl endpoint-group create fra --accelerator web --listener https "
      "--region eu-central\n"
      "  onrampctl endpoint-group create sin --accelerator web --listener https "
      "--region ap-southeast --traffic-dial 50 --health-check http --health-path /healthz "
      "--health-interval-ms 1000 --port-override 443:8443\n",
      [c](Context& ctx) {
        v1::EndpointGroup req;
        req.set_accelerator(c->accelerator);
        req.set_listener(c->listener);
        req.set_name(c->name);
        apply_flags(*c, req, /*only_given=*/false);
        return call_and_print<v1::EndpointGroup>(ctx, &AdminStub::CreateEndpointGroup, req,
                                                 print_endpoint_group);
      });
  add_identity(*create, *c);
  add_settings(tree, *create, *c, /*create=*/true);

  auto get = std::make_shared<GroupFlags>();
  add_identity(*tree.command(*g, "get", "Show one endpoint group",
                             "  onrampctl endpoint-group get fra --accelerator web --listener "
                             "https -o yaml\n",
                             [get](Context& ctx) {
                               return call_and_print<v1::EndpointGroup>(
                                   ctx, &AdminStub::GetEndpointGroup, key_of(*get),
                                   print_endpoint_group);
                             }),
               *get);

  auto l = std::make_shared<GroupFlags>();
  CLI::App* list =
      tree.command(*g, "list", "List endpoint groups, all or those of an accelerator or listener",
                   "  onrampctl endpoint-group list\n"
                   "  onrampctl endpoint-group list --accelerator web --listener https\n",
                   [l](Context& ctx) {
                     v1::ListRequest req;
                     req.set_accelerator(l->accelerator);
                     req.set_listener(l->listener);
                     return call_and_print<v1::ListEndpointGroupsResponse>(
                         ctx, &AdminStub::ListEndpointGroups, req, print_endpoint_groups);
                   });
  list->add_option("--accelerator", l->accelerator, "Only this accelerator's groups");
  list->add_option("--listener", l->listener, "Only this listener's groups");

  auto u = std::make_shared<GroupFlags>();
  CLI::App* update =
      tree.command(*g, "update", "Change an endpoint group; only the flags given change",
                   "  onrampctl endpoint-group update fra --accelerator web --listener https "
                   "--traffic-dial 20\n"
                   "  onrampctl endpoint-group update fra --accelerator web --listener https "
                   "--no-port-overrides\n",
                   [u](Context& ctx) {
                     std::optional<std::vector<std::string>> paths = given_paths(*u);
                     if (!paths) {
                       // A flag without a field path: read, patch and write the whole
                       // group back, conditional on the version read.
                       v1::UpdateEndpointGroupRequest req;
                       grpc::Status s = ctx.admin(&AdminStub::GetEndpointGroup, key_of(*u),
                                                  *req.mutable_endpoint_group());
                       if (!s.ok()) return ctx.fail(s);
                       apply_flags(*u, *req.mutable_endpoint_group(), /*only_given=*/true);
                       return call_and_print<v1::EndpointGroup>(
                           ctx, &AdminStub::UpdateEndpointGroup, req, print_endpoint_group);
                     }
                     v1::UpdateEndpointGroupRequest req;
                     v1::EndpointGroup& g = *req.mutable_endpoint_group();
                     g.set_accelerator(u->accelerator);
                     g.set_listener(u->listener);
                     g.set_name(u->name);
                     apply_flags(*u, g, /*only_given=*/true);
                     return update_fields<v1::EndpointGroup>(ctx, &AdminStub::UpdateEndpointGroup,
                                                             req, *paths, print_endpoint_group);
                   });
  add_identity(*update, *u);
  add_settings(tree, *update, *u, /*create=*/false);

  auto d = std::make_shared<GroupFlags>();
  add_identity(
      *tree.command(*g, "delete", "Delete an endpoint group (it must have no endpoints)",
                    "  onrampctl endpoint-group delete sin --accelerator web --listener https\n",
                    [d](Context& ctx) {
                      return delete_resource(
                          ctx, &AdminStub::DeleteEndpointGroup, key_of(*d),
                          "endpoint group " + d->accelerator + "/" + d->listener + "/" + d->name);
                    }),
      *d);
}

}  // namespace onramp::cli
