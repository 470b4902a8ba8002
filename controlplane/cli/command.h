// What every onrampctl command is built from: the global flags, the
// generated stubs it calls (opened by a Connector, so commands are tested
// against a fake server), and the tree each resource file adds its commands to.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "common/status.h"
#include "controlplane/common/controller_list.h"
#include "controlplane/common/tls.h"
#include "onramp/v1/admin.grpc.pb.h"
#include "onramp/v1/dataplane.grpc.pb.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace onramp::cli {

// -o: table, wide (the table with more columns, where a command has more
// to show), json, yaml, jsonpath=EXPR (jsonpath.h).
enum class Format { kTable, kWide, kJson, kYaml, kJsonPath };

// Flags that apply to every command (docs/cli.md lists them with their
// environment variables).
struct Globals {
  // The controller replicas, HOST:PORT[,HOST:PORT...] (cp::parse_controller_list).
  std::string controller = "127.0.0.1:7443";
  cp::TlsFiles tls;
  std::string token;
  bool plaintext = false;
  double timeout_s = 10;
  Format format = Format::kTable;
  std::string jsonpath;  // the EXPR of -o jsonpath=EXPR, already checked
  std::string dataplane_socket = "/run/onramp/dataplane.sock";
};

using AdminStub = v1::AdminService::StubInterface;
using DataplaneStub = v1::DataplaneService::StubInterface;

// Opens the channel to a controller replica and the generated stub to the
// local dataplane (the tests hand out ones on an in-process fake). The error
// names the flag at fault.
class Connector {
 public:
  virtual ~Connector() = default;
  virtual Result<std::shared_ptr<grpc::Channel>> controller(const Globals& globals,
                                                            const cp::Replica& replica) = 0;
  virtual Result<std::unique_ptr<DataplaneStub>> dataplane(const Globals& globals) = 0;
};

// The real thing: gRPC with TLS (or loopback plaintext) to the controller, the
// dataplane's unix socket without.
std::unique_ptr<Connector> make_grpc_connector();

// What a running command uses. Connections open on first use, so a command
// that talks to the dataplane needs no controller flags and the other way
// round.
class Context {
 public:
  // A unary method of the generated stub: &AdminStub::GetAccelerator.
  template <typename Request, typename Response>
  using AdminMethod = grpc::Status (AdminStub::*)(grpc::ClientContext*, const Request&, Response*);
  template <typename Request, typename Response>
  using DataplaneMethod = grpc::Status (DataplaneStub::*)(grpc::ClientContext*, const Request&,
                                                          Response*);

  Context(const Globals& globals, Connector& connector, std::ostream& out, std::ostream& err)
      : globals(globals), out(out), err(err), connector_(connector) {}

  // Calls `method` on the controller (with the bearer token), or on the
  // dataplane's socket, with the --timeout deadline. A failure to connect
  // comes back as UNAVAILABLE or INVALID_ARGUMENT (bad TLS flags). With
  // several controller replicas, see on_controller.
  template <typename Request, typename Response>
  grpc::Status admin(AdminMethod<Request, Response> method, const Request& request,
                     Response& response) {
    return on_controller(is_read(method), [&](AdminStub& stub) {
      response.Clear();
      grpc::ClientContext call;
      start_call(call, globals.token);
      return (stub.*method)(&call, request, &response);
    });
  }
  template <typename Request, typename Response>
  grpc::Status dataplane(DataplaneMethod<Request, Response> method, const Request& request,
                         Response& response) {
    Result<DataplaneStub*> stub = dataplane_stub();
    if (!stub.ok()) return refused(stub.status());
    grpc::ClientContext call;
    start_call(call, "");  // a unix socket that only root opens: no token
    return name_the_server(((*stub)->*method)(&call, request, &response),
                           "dataplane " + globals.dataplane_socket);
  }

  // Prints `onrampctl: <message>` to err and returns the exit code for it.
  int fail(const grpc::Status& status);
  int fail(int exit_code, const std::string& message);

  const Globals& globals;
  std::ostream& out;
  std::ostream& err;

 private:
  // Calls without side effects: onrampctl may send them again to another
  // replica. Everything else is sent once, to one replica.
  template <typename A, typename B>
  static bool same_method(A a, B b) {
    if constexpr (std::is_same_v<A, B>)
      return a == b;
    else
      return false;
  }
  template <typename Method>
  static bool is_read(Method m) {
    return same_method(m, &AdminStub::GetAccelerator) ||
           same_method(m, &AdminStub::ListAccelerators) ||
           same_method(m, &AdminStub::GetListener) || same_method(m, &AdminStub::ListListeners) ||
           same_method(m, &AdminStub::GetEndpointGroup) ||
           same_method(m, &AdminStub::ListEndpointGroups) ||
           same_method(m, &AdminStub::GetEndpoint) || same_method(m, &AdminStub::ListEndpoints) ||
           same_method(m, &AdminStub::ListPops) || same_method(m, &AdminStub::GetRoutes) ||
           same_method(m, &AdminStub::GetPopMatrix) || same_method(m, &AdminStub::GetHealth) ||
           same_method(m, &AdminStub::TraceFlow) || same_method(m, &AdminStub::GetStats) ||
           same_method(m, &AdminStub::GetVersion);
  }

  // Runs `call` on a controller replica: the one that answered last, else
  // the first of --controller. Before a call, a replica that cannot be
  // connected to is left for the next one (nothing was sent to it, so this
  // holds for writes too), except the last one tried, whose own error is
  // reported. A read (`idempotent`) that fails UNAVAILABLE once sent goes
  // to the next replica; a write is not sent twice.
  grpc::Status on_controller(bool idempotent, const std::function<grpc::Status(AdminStub&)>& call);
  struct Replica {
    cp::Replica address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<AdminStub> stub;
  };
  Result<Replica*> replica(size_t i);
  bool reachable(grpc::Channel& channel) const;
  Result<DataplaneStub*> dataplane_stub();
  void start_call(grpc::ClientContext& call, const std::string& token) const;
  static grpc::Status refused(const Status& status);
  static grpc::Status name_the_server(grpc::Status s, const std::string& what);
  // name_the_server for the controller, and a refused client certificate
  // told apart from a controller that cannot be reached (UNAUTHENTICATED).
  grpc::Status name_the_controller(grpc::Status s, const std::string& replica) const;

  Connector& connector_;
  std::vector<cp::Replica> addresses_;              // --controller, resolved on first use
  std::vector<std::unique_ptr<Replica>> replicas_;  // opened on first use, by index
  size_t current_ = 0;                              // the replica that answered last
  std::unique_ptr<DataplaneStub> dataplane_;
};

// A command's body: runs after parsing, returns the exit code.
using Action = std::function<int(Context&)>;

// The command tree as the resource files build it; also what the completion
// script is generated from.
class CommandTree {
 public:
  explicit CommandTree(CLI::App& root) : root(root) {}

  // A node that only holds subcommands ("accelerator").
  CLI::App* group(CLI::App& parent, const std::string& name, const std::string& description);
  // A leaf that runs `action`; `examples` go into its --help.
  CLI::App* command(CLI::App& parent, const std::string& name, const std::string& description,
                    const std::string& examples, Action action);

  // Records the values an option accepts, for completion (the option checks
  // them itself).
  void choices(const CLI::Option* option, std::vector<std::string> values);
  // Marks an option or positional whose value is a file path.
  void file(const CLI::Option* option);

  const std::vector<std::string>* choices_of(const CLI::Option* option) const;
  bool is_file(const CLI::Option* option) const;

  CLI::App& root;
  Action selected;  // set when a leaf is parsed

 private:
  std::map<const CLI::Option*, std::vector<std::string>> choices_;
  std::map<const CLI::Option*, bool> files_;
  std::map<const CLI::App*, std::string> group_examples_;
};

// --client, --vip, --port and --protocol of the two trace commands.
struct FlowFlags;
void add_flow_options(CommandTree& tree, CLI::App* trace, FlowFlags& flags);

// Each resource file adds its commands.
void add_accelerator_commands(CommandTree& tree);
void add_listener_commands(CommandTree& tree);
void add_endpoint_group_commands(CommandTree& tree);
void add_endpoint_commands(CommandTree& tree);
void add_pop_commands(CommandTree& tree);
void add_route_commands(CommandTree& tree);  // routes, trace, stats
void add_health_commands(CommandTree& tree);
void add_dataplane_commands(CommandTree& tree, Globals& globals);
void add_completion_commands(CommandTree& tree);
void add_version_command(CommandTree& tree);
void add_config_commands(CommandTree& tree);  // apply, diff, export

// The completion script for "bash" or "zsh", from the tree as built.
std::string completion_script(const CommandTree& tree, const std::string& shell);

}  // namespace onramp::cli
