// `onrampctl dataplane ...`: this PoP's onramp-dataplane, over its local
// unix socket (DataplaneService): apply a table, stats, trace, health.
#include <grpcpp/support/status.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <iterator>

#include "common/files.h"
#include "common/textproto.h"
#include "controlplane/cli/args.h"
#include "controlplane/cli/call.h"
#include "controlplane/cli/command.h"
#include "controlplane/cli/exit_code.h"
#include "controlplane/cli/output.h"
#include "controlplane/cli/stats_table.h"
#include "dataplane/config/table_loader.h"
#include "onramp/v1/dataplane.pb.h"

namespace onramp::cli {
namespace {

struct ApplyFlags {
  std::string file;
  bool no_validate = false;
};

int apply(Context& ctx, const ApplyFlags& flags) {
  std::string text;
  std::string name = flags.file == "-" ? "<stdin>" : flags.file;
  if (flags.file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    Result<std::string> file = read_file(flags.file);
    if (!file.ok()) return ctx.fail(kExitUsage, file.error());
    text = std::move(*file);
  }
  // Check it here first: a bad file is reported with its line or field
  // before anything reaches the PoP.
  if (!flags.no_validate) {
    if (auto spec = dp::parse_table_text(text); !spec.ok())
      return ctx.fail(kExitInvalid, name + ": " + spec.error());
  }
  v1::ApplyTableRequest req;
  if (Status s = parse_text_proto(text, *req.mutable_table()); !s.ok())
    return ctx.fail(kExitInvalid, name + ": " + s.message());

  v1::ApplyTableResponse resp;
  grpc::Status s = ctx.dataplane(&DataplaneStub::ApplyTable, req, resp);
  if (!s.ok()) return ctx.fail(s);
  return print_response(ctx, resp, [&](std::ostream& out) {
    Fields f;
    f.add("version", std::to_string(resp.version()));
    f.add("build_us", std::to_string(resp.build_us()));
    f.add("publish_us", std::to_string(resp.publish_us()));
    f.print(out);
  });
}

int health(Context& ctx) {
  v1::DataplaneHealthResponse resp;
  grpc::Status s = ctx.dataplane(&DataplaneStub::Health, v1::DataplaneHealthRequest(), resp);
  if (!s.ok()) return ctx.fail(s);
  return print_response(ctx, resp, [&](std::ostream& out) {
    Fields f;
    f.add("healthy", yes_no(resp.healthy()));
    f.add("pop", resp.pop());
    f.add("table_version", std::to_string(resp.table_version()));
    f.add("ports_up", std::to_string(resp.ports_up()) + " of " + std::to_string(resp.ports()));
    f.add("vips", join(resp.vips(), ", "));
    if (const std::string nh = next_hop_text(resp.next_hop()); !nh.empty()) f.add("next_hop", nh);
    f.print(out);
  });
}

int stats(Context& ctx) {
  v1::DataplaneStats resp;
  grpc::Status s = ctx.dataplane(&DataplaneStub::GetStats, v1::DataplaneStatsRequest(), resp);
  if (!s.ok()) return ctx.fail(s);
  return print_response(ctx, resp, [&](std::ostream& out) { print_dataplane_stats(out, resp); });
}

int trace_flow(Context& ctx, const FlowFlags& flow) {
  v1::DataplaneTraceRequest req;
  if (Status s = fill_flow_request(flow, req); !s.ok()) return ctx.fail(kExitUsage, s.message());
  v1::DataplaneTraceResponse resp;
  grpc::Status s = ctx.dataplane(&DataplaneStub::TraceFlow, req, resp);
  if (!s.ok()) return ctx.fail(s);
  return print_response(ctx, resp, [&](std::ostream& out) {
    Fields f;
    f.add("listener", resp.listener());
    f.add("endpoint", resp.endpoint());
    f.add("decided_by", resp.decided_by());
    f.add("table_version", std::to_string(resp.table_version()));
    f.print(out);
    print_explanation(out, resp.explanation());
  });
}

}  // namespace

void add_dataplane_commands(CommandTree& tree, Globals& globals) {
  CLI::App* dp =
      tree.group(tree.root, "dataplane", "This PoP's onramp-dataplane, over its local unix socket");
  tree.file(dp->add_option("--socket", globals.dataplane_socket,
                           "The dataplane's API socket (onramp-dataplane --api-socket)")
                ->envname("ONRAMP_DATAPLANE_SOCKET")
                ->capture_default_str());

  auto a = std::make_shared<ApplyFlags>();
  CLI::App* apply_cmd = tree.command(
      *dp, "apply", "Validate a forwarding table file and make it the dataplane's table",
      "  onrampctl dataplane apply table.textproto\n"
      "  onrampctl dataplane apply - --socket /tmp/dp.sock < table.textproto\n",
      [a](Context& ctx) { return apply(ctx, *a); });
  tree.file(apply_cmd
                ->add_option("file", a->file,
                             "onramp.v1.ForwardingTable in protobuf text format; - reads stdin")
                ->required());
  apply_cmd->add_flag("--no-validate", a->no_validate,
                      "Send the table without checking it here first (the dataplane checks it "
                      "anyway)");

  tree.command(*dp, "health", "Is the dataplane healthy, which table version and VIPs it runs",
               "  onrampctl dataplane health\n  onrampctl dataplane health -o json\n",
               [](Context& ctx) { return health(ctx); });

  tree.command(*dp, "stats", "The dataplane's counters: totals, drops, listeners, endpoints",
               "  onrampctl dataplane stats\n  onrampctl dataplane stats -o yaml\n",
               [](Context& ctx) { return stats(ctx); });

  auto t = std::make_shared<FlowFlags>();
  CLI::App* trace = tree.command(
      *dp, "trace", "Which listener and endpoint a flow would reach, and why",
      "  onrampctl dataplane trace --client 198.51.100.200:40000 --vip 203.0.113.10 --port 443 "
      "--protocol tcp\n"
      "  onrampctl dataplane trace --client [2001:db8::5]:5353 --vip 203.0.113.10 --port 53 "
      "--protocol udp\n",
      [t](Context& ctx) { return trace_flow(ctx, *t); });
  add_flow_options(tree, trace, *t);
}

}  // namespace onramp::cli
