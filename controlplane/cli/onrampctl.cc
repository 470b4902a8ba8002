// The root of the command tree: global flags, parsing, and turning what
// happened into an exit code.
#include "controlplane/cli/onrampctl.h"

#include <grpcpp/support/status.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <optional>
#include <string_view>

#include "common/options.h"
#include "common/text.h"
#include "controlplane/cli/exit_code.h"
#include "controlplane/cli/jsonpath.h"
#include "controlplane/cli/suggest.h"
#include "controlplane/common/controller_list.h"

namespace onramp::cli {
namespace {

constexpr std::string_view kJsonPathPrefix = "jsonpath=";

// -o: one of the names, or jsonpath= with an expression that parses.
const CLI::Validator kOutputFormat(
    [](std::string& value) -> std::string {
      const std::vector<std::string> names = {"table", "wide", "json", "yaml"};
      if (std::find(names.begin(), names.end(), value) != names.end()) return "";
      if (value.rfind(kJsonPathPrefix, 0) == 0) {
        Result<JsonPath> path = JsonPath::parse(value.substr(kJsonPathPrefix.size()));
        return path.ok() ? "" : "jsonpath: " + path.error();
      }
      if (value == "jsonpath") return "jsonpath needs an expression: -o jsonpath='{.name}'";
      std::string msg =
          quote(value) + " is not an output format (table, wide, json, yaml, jsonpath=EXPR)";
      if (auto best = nearest(value, names)) msg += "; did you mean " + quote(*best) + "?";
      return msg;
    },
    "FORMAT");

}  // namespace

int run_onrampctl(const std::vector<std::string>& args, Connector& connector, std::ostream& out,
                  std::ostream& err) {
  Globals globals;
  CLI::App app(
      "Operate an onramp anycast accelerator: configure it through the controller, "
      "look at PoPs, routes and traces, drive a PoP's dataplane.",
      "onrampctl");
  // Global flags may come after the subcommand too: `onrampctl pop list -o json`.
  app.fallthrough();
  app.require_subcommand(1);
  opts::add_common_flags(app, out);

  std::string format = "table";
  const std::vector<std::string> formats = {"table", "wide", "json", "yaml", "jsonpath="};
  CLI::Option* output =
      app.add_option("-o,--output", format,
                     "Output format: table, wide (more columns), json, yaml or jsonpath=EXPR "
                     "(e.g. jsonpath='{.pops[*].id}')")
          ->check(kOutputFormat)
          ->capture_default_str();
  std::string query;
  app.add_option("--query", query,
                 "JSONPath for scripts, the same as -o jsonpath=EXPR (e.g. --query "
                 "'{.pops[*].id}')")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            Result<JsonPath> path = JsonPath::parse(value);
            return path.ok() ? "" : "jsonpath: " + path.error();
          },
          "EXPR"))
      ->excludes(output);
  app.add_option("--controller", globals.controller,
                 "Controller replicas, HOST:PORT[,HOST:PORT...]; reads go to the next one when "
                 "one does not answer")
      ->envname("ONRAMP_CONTROLLER")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            Result<std::vector<cp::ControllerAddress>> list = cp::parse_controller_list(value);
            return list.ok() ? "" : list.error();
          },
          "HOST:PORT[,HOST:PORT...]"));
  CLI::Option* ca =
      app.add_option("--tls-ca", globals.tls.ca,
                     "PEM file of the CA that signed the controller's certificate (default: the "
                     "system roots)")
          ->envname("ONRAMP_TLS_CA");
  CLI::Option* cert =
      app.add_option("--tls-cert", globals.tls.cert, "PEM client certificate (with --tls-key)")
          ->envname("ONRAMP_TLS_CERT");
  CLI::Option* key = app.add_option("--tls-key", globals.tls.key, "PEM private key of --tls-cert")
                         ->envname("ONRAMP_TLS_KEY");
  app.add_option("--token", globals.token, "Bearer token sent with every call")
      ->envname("ONRAMP_TOKEN");
  app.add_flag("--plaintext", globals.plaintext,
               "No TLS; refused unless the controller is a loopback address");
  app.add_option("--timeout", globals.timeout_s, "Deadline of each call, seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.footer(
      "Environment: ONRAMP_CONTROLLER, ONRAMP_TLS_CA, ONRAMP_TLS_CERT, ONRAMP_TLS_KEY, "
      "ONRAMP_TOKEN,\nONRAMP_DATAPLANE_SOCKET. Exit codes: 0 ok, 1 other error, 2 usage, 3 not "
      "found,\n4 invalid argument, 5 unavailable, 6 already exists, 7 failed precondition, 8 "
      "denied,\n9 conflict (changed since it was read).\n\nExamples:\n"
      "  onrampctl accelerator create web --vip 203.0.113.10\n"
      "  onrampctl pop list -o yaml\n"
      "  onrampctl pop list -o jsonpath='{.pops[*].id}'\n"
      "  onrampctl pop list --query '{.pops[*].id}'\n"
      "  onrampctl version\n"
      "  onrampctl dataplane health --socket /run/onramp/dataplane.sock");

  CommandTree tree(app);
  tree.choices(output, formats);
  for (const CLI::Option* o : {ca, cert, key}) tree.file(o);
  add_accelerator_commands(tree);
  add_listener_commands(tree);
  add_endpoint_group_commands(tree);
  add_endpoint_commands(tree);
  add_pop_commands(tree);
  add_route_commands(tree);
  add_health_commands(tree);
  add_config_commands(tree);
  add_dataplane_commands(tree, globals);
  add_completion_commands(tree);
  add_version_command(tree);

  // CLI11 takes the arguments without the program name, last first (and
  // consumes them).
  const std::vector<std::string> given(args.size() > 1 ? args.begin() + 1 : args.end(), args.end());
  std::vector<std::string> rest(given.rbegin(), given.rend());
  try {
    app.parse(rest);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::Success&) {  // --version
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    // A mistyped command or flag is named, with what was probably meant,
    // rather than CLI11's "A subcommand is required".
    std::optional<std::string> unknown = explain_unknown(app, given);
    err << "onrampctl: " << (unknown ? *unknown : std::string(e.what()))
        << "\nRun with --help for usage.\n";
    return kExitUsage;
  }
  if (!query.empty()) format = std::string(kJsonPathPrefix) + query;
  if (format.rfind(kJsonPathPrefix, 0) == 0) {
    globals.format = Format::kJsonPath;
    globals.jsonpath = format.substr(kJsonPathPrefix.size());
  } else {
    globals.format = format == "json"   ? Format::kJson
                     : format == "yaml" ? Format::kYaml
                     : format == "wide" ? Format::kWide
                                        : Format::kTable;
  }
  if (!tree.selected) {  // cannot happen: every group requires a subcommand
    err << "onrampctl: no command given\n";
    return kExitUsage;
  }
  Context ctx(globals, connector, out, err);
  return tree.selected(ctx);
}

}  // namespace onramp::cli
