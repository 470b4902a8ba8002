// `onrampctl endpoint ...`: the backends of an endpoint group, their weight
// (0 drains) and forwarding mode.
#include <CLI/CLI.hpp>

#include "controlplane/cli/args.h"
#include "controlplane/cli/call.h"
#include "controlplane/cli/resource_tables.h"

namespace onramp::cli {
namespace {

struct EndpointFlags {
  std::string address;
  std::string accelerator;
  std::string listener;
  std::string group;
  uint32_t weight = 128;
  std::string mode = "ipip";
  CLI::Option* weight_opt = nullptr;
  CLI::Option* mode_opt = nullptr;
};

void add_identity(CLI::App& cmd, EndpointFlags& f) {
  cmd.add_option("address", f.address, "The endpoint's IPv4 or IPv6 address")->required();
  cmd.add_option("--accelerator", f.accelerator, "The accelerator")->required();
  cmd.add_option("--listener", f.listener, "The listener")->required();
  cmd.add_option("--endpoint-group", f.group, "The endpoint group")->required();
}

void add_settings(CommandTree& tree, CLI::App& cmd, EndpointFlags& f, bool create) {
  f.weight_opt = cmd.add_option("--weight", f.weight,
                                "Share of new flows, 0..255; 0 drains (no new flows, existing "
                                "flows stay)")
                     ->check(CLI::Range(0, 255));
  f.mode_opt = cmd.add_option("--mode", f.mode, "Encapsulation: ipip (IP-in-IP) or gue (UDP/GUE)")
                   ->transform(CLI::IsMember(kModeNames, CLI::ignore_case));
  if (create) {
    f.weight_opt->capture_default_str();
    f.mode_opt->capture_default_str();
  }
  tree.choices(f.mode_opt, kModeNames);
}

void apply_flags(const EndpointFlags& f, v1::Endpoint& e, bool only_given) {
  if (!only_given || f.weight_opt->count() > 0) e.set_weight(f.weight);
  if (!only_given || f.mode_opt->count() > 0) e.set_mode(mode_from_name(f.mode));
}

v1::EndpointKey key_of(const EndpointFlags& f) {
  v1::EndpointKey key;
  key.set_accelerator(f.accelerator);
  key.set_listener(f.listener);
  key.set_endpoint_group(f.group);
  key.set_address(f.address);
  return key;
}

Table endpoint_table(bool wide) {
  return Table({"ACCELERATOR", "LISTENER", "ENDPOINT_GROUP", "ADDRESS", "WEIGHT", "MODE"},
               {"CREATED", "UPDATED"}, wide);
}

void endpoint_row(Table& t, const v1::Endpoint& e) {
  std::string weight = e.has_weight() ? std::to_string(e.weight()) : "128";
  if (e.has_weight() && e.weight() == 0) weight += " (draining)";
  t.row(
      {e.accelerator(), e.listener(), e.endpoint_group(), e.address(), weight, mode_name(e.mode())},
      {format_time_ms(e.create_time_ms()), format_time_ms(e.update_time_ms())});
}

}  // namespace

void print_endpoint(std::ostream& out, const v1::Endpoint& e, bool wide) {
  Table t = endpoint_table(wide);
  endpoint_row(t, e);
  t.print(out);
}

void print_endpoints(std::ostream& out, const v1::ListEndpointsResponse& list, bool wide) {
  Table t = endpoint_table(wide);
  for (const v1::Endpoint& e : list.endpoints()) endpoint_row(t, e);
  t.print(out);
}

void add_endpoint_commands(CommandTree& tree) {
  CLI::App* g = tree.group(tree.root, "endpoint", "Endpoints: the backends of an endpoint group");

  auto a = std::make_shared<EndpointFlags>();
  CLI::App* add = tree.command(
      *g, "add", "Add an endpoint to a group",
      "  onrampctl endpoint add 198.51.100.11 --accelerator web --listener https "
      "--endpoint-group fra\n"
      "  onrampctl endpoint add 2001:db8:ae::21 --accelerator web --listener https "
      "--endpoint-group sin --weight 64 --mode gue\n",
      [a](Context& ctx) {
        v1::Endpoint req;
        req.set_accelerator(a->accelerator);
        req.set_listener(a->listener);
        req.set_endpoint_group(a->group);
        req.set_address(a->address);
        apply_flags(*a, req, /*only_given=*/false);
        return call_and_print<v1::Endpoint>(ctx, &AdminStub::CreateEndpoint, req, print_endpoint);
      });
  add_identity(*add, *a);
  add_settings(tree, *add, *a, /*create=*/true);

  auto get = std::make_shared<EndpointFlags>();
  add_identity(*tree.command(*g, "get", "Show one endpoint",
                             "  onrampctl endpoint get 198.51.100.11 --accelerator web "
                             "--listener https --endpoint-group fra\n",
                             [get](Context& ctx) {
                               return call_and_print<v1::Endpoint>(ctx, &AdminStub::GetEndpoint,
                                                                   key_of(*get), print_endpoint);
                             }),
               *get);

  auto l = std::make_shared<EndpointFlags>();
  CLI::App* list = tree.command(
      *g, "list", "List endpoints, all or those of an accelerator, listener or group",
      "  onrampctl endpoint list\n"
      "  onrampctl endpoint list --accelerator web --listener https --endpoint-group fra\n",
      [l](Context& ctx) {
        v1::ListRequest req;
        req.set_accelerator(l->accelerator);
        req.set_listener(l->listener);
        req.set_endpoint_group(l->group);
        return call_and_print<v1::ListEndpointsResponse>(ctx, &AdminStub::ListEndpoints, req,
                                                         print_endpoints);
      });
  list->add_option("--accelerator", l->accelerator, "Only this accelerator's endpoints");
  list->add_option("--listener", l->listener, "Only this listener's endpoints");
  list->add_option("--endpoint-group", l->group, "Only this group's endpoints");

  auto u = std::make_shared<EndpointFlags>();
  CLI::App* update =
      tree.command(*g, "update", "Change an endpoint's weight or mode; only the flags given change",
                   "  onrampctl endpoint update 198.51.100.11 --accelerator web --listener https "
                   "--endpoint-group fra --weight 0     # drain\n",
                   [u](Context& ctx) {
                     v1::UpdateEndpointRequest req;
                     v1::Endpoint& e = *req.mutable_endpoint();
                     e.set_accelerator(u->accelerator);
                     e.set_listener(u->listener);
                     e.set_endpoint_group(u->group);
                     e.set_address(u->address);
                     apply_flags(*u, e, /*only_given=*/true);
                     std::vector<std::string> paths;
                     if (u->weight_opt->count() > 0) paths.push_back("weight");
                     if (u->mode_opt->count() > 0) paths.push_back("mode");
                     return update_fields<v1::Endpoint>(ctx, &AdminStub::UpdateEndpoint, req, paths,
                                                        print_endpoint);
                   });
  add_identity(*update, *u);
  add_settings(tree, *update, *u, /*create=*/false);

  auto r = std::make_shared<EndpointFlags>();
  add_identity(*tree.command(*g, "remove", "Remove an endpoint; its flows move to others",
                             "  onrampctl endpoint remove 198.51.100.11 --accelerator web "
                             "--listener https --endpoint-group fra\n",
                             [r](Context& ctx) {
                               return delete_resource(ctx, &AdminStub::DeleteEndpoint, key_of(*r),
                                                      "endpoint " + r->address);
                             }),
               *r);
}

}  // namespace onramp::cli
