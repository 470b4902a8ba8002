// `onrampctl accelerator ...`: sets of anycast VIPs.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>

#include "controlplane/cli/call.h"
#include "controlplane/cli/resource_tables.h"

namespace onramp::cli {
namespace {

struct AcceleratorFlags {
  std::string name;
  std::vector<std::string> vips;
  bool disabled = false;  // create
  std::string relay;      // "on", "off", "" unchanged
  bool enable = false;    // update
  bool disable = false;   // update
  std::string flow_logs;  // "on" or "off"; empty: unchanged (update), off (create)
  double flow_log_sample_percent = 100;
  CLI::Option* flow_log_sample = nullptr;
};

// The flow log flags into the request; the mask paths they change.
void set_flow_logs(const AcceleratorFlags& f, v1::Accelerator& a, std::vector<std::string>& paths) {
  if (!f.flow_logs.empty()) {
    a.set_flow_logs(f.flow_logs == "on");
    paths.push_back("flow_logs");
  }
  if (f.flow_log_sample && f.flow_log_sample->count() > 0) {
    // Percent to millionths; the controller checks the range.
    a.set_flow_log_sample_ppm(
        static_cast<uint32_t>(std::lround(f.flow_log_sample_percent * 10000.0)));
    paths.push_back("flow_log_sample_ppm");
  }
}

void add_flow_log_flags(CLI::App& cmd, AcceleratorFlags& f) {
  cmd.add_option("--flow-logs", f.flow_logs,
                 "Flow logs for this accelerator's flows on every PoP: on or off")
      ->check(CLI::IsMember({"on", "off"}));
  f.flow_log_sample =
      cmd.add_option("--flow-log-sample", f.flow_log_sample_percent,
                     "Percent of flows logged when flow logs are on, 0.01..100 (default 100)")
          ->check(CLI::Range(0.01, 100.0));
}

// "off", or the sample: "on (1%)".
std::string flow_log_state(const v1::Accelerator& a) {
  if (!a.flow_logs()) return "off";
  const uint32_t ppm = a.flow_log_sample_ppm() ? a.flow_log_sample_ppm() : 1000000;
  char buf[32];
  std::snprintf(buf, sizeof buf, "on (%g%%)", ppm / 10000.0);
  return buf;
}

Table accelerator_table(bool wide) {
  return Table({"NAME", "ENABLED", "VIPS", "UPDATED"}, {"CREATED", "FLOW LOGS"}, wide);
}

void accelerator_row(Table& t, const v1::Accelerator& a) {
  t.row({a.name(), yes_no(a.enabled()), join(a.vips()), format_time_ms(a.update_time_ms())},
        {format_time_ms(a.create_time_ms()), flow_log_state(a)});
}

}  // namespace

void print_accelerator(std::ostream& out, const v1::Accelerator& a, bool wide) {
  Table t = accelerator_table(wide);
  accelerator_row(t, a);
  t.print(out);
}

void print_accelerators(std::ostream& out, const v1::ListAcceleratorsResponse& list, bool wide) {
  Table t = accelerator_table(wide);
  for (const v1::Accelerator& a : list.accelerators()) accelerator_row(t, a);
  t.print(out);
}

void add_accelerator_commands(CommandTree& tree) {
  CLI::App* g = tree.group(tree.root, "accelerator", "Accelerators: sets of anycast VIPs");

  auto c = std::make_shared<AcceleratorFlags>();
  CLI::App* create =
      tree.command(*g, "create", "Create an accelerator",
                   "  onrampctl accelerator create web --vip 203.0.113.10 --vip 2001:db8:10::10\n"
                   "  onrampctl accelerator create staging --vip 203.0.113.20 --disabled\n"
                   "  onrampctl accelerator create web --vip 203.0.113.10 --flow-logs on "
                   "--flow-log-sample 1\n",
                   [c](Context& ctx) {
                     v1::Accelerator req;
                     req.set_name(c->name);
                     req.set_enabled(!c->disabled);
                     req.set_relay_off(c->relay == "off");
                     for (const std::string& v : c->vips) req.add_vips(v);
                     std::vector<std::string> unused;
                     set_flow_logs(*c, req, unused);
                     return call_and_print<v1::Accelerator>(ctx, &AdminStub::CreateAccelerator, req,
                                                            print_accelerator);
                   });
  create->add_option("name", c->name, "Name: [a-z0-9-], starting with a letter")->required();
  create->add_option("--vip", c->vips, "An anycast VIP, IPv4 or IPv6 (repeat, or a,b)")
      ->required()
      ->delimiter(',');
  create->add_flag("--disabled", c->disabled, "Keep it, but push it to no PoP");
  add_flow_log_flags(*create, *c);
  create
      ->add_option("--relay", c->relay,
                   "on (the default): PoPs reach endpoints through a relay PoP where that is "
                   "faster; off: always directly")
      ->check(CLI::IsMember({"on", "off"}));

  auto get = std::make_shared<AcceleratorFlags>();
  tree.command(*g, "get", "Show one accelerator", "  onrampctl accelerator get web -o yaml\n",
               [get](Context& ctx) {
                 v1::AcceleratorKey key;
                 key.set_name(get->name);
                 return call_and_print<v1::Accelerator>(ctx, &AdminStub::GetAccelerator, key,
                                                        print_accelerator);
               })
      ->add_option("name", get->name, "Accelerator name")
      ->required();

  tree.command(*g, "list", "List the accelerators",
               "  onrampctl accelerator list\n  onrampctl accelerator list -o json\n",
               [](Context& ctx) {
                 return call_and_print<v1::ListAcceleratorsResponse>(
                     ctx, &AdminStub::ListAccelerators, v1::ListRequest(), print_accelerators);
               });

  auto u = std::make_shared<AcceleratorFlags>();
  CLI::App* update =
      tree.command(*g, "update", "Change an accelerator; only the flags given change",
                   "  onrampctl accelerator update web --disable\n"
                   "  onrampctl accelerator update web --vip 203.0.113.10 --vip 203.0.113.11\n"
                   "  onrampctl accelerator update web --relay off\n"
                   "  onrampctl accelerator update web --flow-logs on --flow-log-sample 1\n",
                   [u](Context& ctx) {
                     v1::UpdateAcceleratorRequest req;
                     v1::Accelerator& a = *req.mutable_accelerator();
                     a.set_name(u->name);
                     std::vector<std::string> paths;
                     if (!u->vips.empty()) {
                       for (const std::string& v : u->vips) a.add_vips(v);
                       paths.push_back("vips");
                     }
                     if (u->enable || u->disable) {
                       a.set_enabled(u->enable);
                       paths.push_back("enabled");
                     }
                     set_flow_logs(*u, a, paths);
                     if (!u->relay.empty()) {
                       a.set_relay_off(u->relay == "off");
                       paths.push_back("relay_off");
                     }
                     return update_fields<v1::Accelerator>(ctx, &AdminStub::UpdateAccelerator, req,
                                                           paths, print_accelerator);
                   });
  update->add_option("name", u->name, "Accelerator name")->required();
  update->add_option("--vip", u->vips, "The new VIP set, replacing the old (repeat, or a,b)")
      ->delimiter(',');
  CLI::Option* enable = update->add_flag("--enable", u->enable, "Push it to the PoPs again");
  update->add_flag("--disable", u->disable, "Withdraw it from every PoP, keep the config")
      ->excludes(enable);
  add_flow_log_flags(*update, *u);
  update
      ->add_option("--relay", u->relay,
                   "on: PoPs reach endpoints through a relay PoP where that is faster; off: "
                   "always directly")
      ->check(CLI::IsMember({"on", "off"}));

  auto d = std::make_shared<AcceleratorFlags>();
  tree.command(*g, "delete", "Delete an accelerator (it must have no listeners)",
               "  onrampctl accelerator delete staging\n",
               [d](Context& ctx) {
                 v1::AcceleratorKey key;
                 key.set_name(d->name);
                 return delete_resource(ctx, &AdminStub::DeleteAccelerator, key,
                                        "accelerator " + d->name);
               })
      ->add_option("name", d->name, "Accelerator name")
      ->required();
}

}  // namespace onramp::cli
