// `onrampctl version`: which build this onrampctl is, and which the
// controller runs, for a bug report or before an upgrade.
#include <google/protobuf/struct.pb.h>

#include <CLI/CLI.hpp>

#include "common/options.h"
#include "controlplane/cli/call.h"

namespace onramp::cli {

void add_version_command(CommandTree& tree) {
  tree.command(tree.root, "version", "Show the versions of onrampctl and of the controller",
               "  onrampctl version\n  onrampctl version -o json\n", [](Context& ctx) {
                 v1::GetVersionResponse controller;
                 grpc::Status s =
                     ctx.admin(&AdminStub::GetVersion, v1::GetVersionRequest(), controller);
                 // {"client": ..., "controller": ...} in JSON and YAML; the
                 // controller's is missing when it could not be asked.
                 google::protobuf::Struct both;
                 auto& fields = *both.mutable_fields();
                 fields["client"].set_string_value(opts::version());
                 if (s.ok()) fields["controller"].set_string_value(controller.version());
                 int printed = print_response(ctx, both, [&](std::ostream& out) {
                   Fields f;
                   f.add("client", opts::version());
                   if (s.ok()) f.add("controller", controller.version());
                   f.print(out);
                 });
                 if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED)
                   return ctx.fail(kExitError, "controller " + ctx.globals.controller +
                                                   " is too old to say its version");
                 if (!s.ok()) return ctx.fail(s);
                 return printed;
               });
}

}  // namespace onramp::cli
