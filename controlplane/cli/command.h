// What every onrampctl command is built from: the global flags, the
// connections it may open (behind an interface, so commands are tested with a
// fake and no server), and the tree each resource file adds its commands to.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "controlplane/common/tls.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace google::protobuf {
class Message;
}

namespace grpc {
class Status;
}

namespace onramp::cli {

enum class Format { kTable, kJson, kYaml };

// Flags that apply to every command (docs/cli.md lists them with their
// environment variables).
struct Globals {
  std::string controller = "127.0.0.1:7443";
  cp::TlsFiles tls;
  std::string token;
  bool plaintext = false;
  double timeout_s = 10;
  Format format = Format::kTable;
  std::string dataplane_socket = "/run/onramp/dataplane.sock";
};

// One unary call to a gRPC method by its full name
// ("/onramp.v1.AdminService/CreateAccelerator"). The implementation owns the
// deadline and the credentials.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual grpc::Status call(const std::string& method, const google::protobuf::Message& request,
                            google::protobuf::Message& response) = 0;
};

// Opens transports to the controller and to the local dataplane. Returns
// nullptr and sets `error` (naming the flag at fault) when it cannot.
class Connector {
 public:
  virtual ~Connector() = default;
  virtual std::unique_ptr<Transport> controller(const Globals& globals, std::string& error) = 0;
  virtual std::unique_ptr<Transport> dataplane(const Globals& globals, std::string& error) = 0;
};

// The real thing: gRPC with TLS (or loopback plaintext), bearer token and a
// deadline on every call.
std::unique_ptr<Connector> make_grpc_connector();

// What a running command uses. Connections open on first use, so a command
// that talks to the dataplane needs no controller flags and the other way
// round.
class Context {
 public:
  Context(const Globals& globals, Connector& connector, std::ostream& out, std::ostream& err)
      : globals(globals), out(out), err(err), connector_(connector) {}

  // Calls AdminService/<method> on the controller, or DataplaneService/<method>
  // on the dataplane's socket. A failure to connect comes back as UNAVAILABLE
  // or INVALID_ARGUMENT (bad TLS flags).
  grpc::Status admin(const std::string& method, const google::protobuf::Message& request,
                     google::protobuf::Message& response);
  grpc::Status dataplane(const std::string& method, const google::protobuf::Message& request,
                         google::protobuf::Message& response);

  // Prints `onrampctl: <message>` to err and returns the exit code for it.
  int fail(const grpc::Status& status);
  int fail(int exit_code, const std::string& message);

  const Globals& globals;
  std::ostream& out;
  std::ostream& err;

 private:
  Connector& connector_;
  std::unique_ptr<Transport> admin_;
  std::unique_ptr<Transport> dataplane_;
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

// The completion script for "bash" or "zsh", from the tree as built.
std::string completion_script(const CommandTree& tree, const std::string& shell);

// Full method names.
std::string admin_method(const std::string& name);
std::string dataplane_method(const std::string& name);

}  // namespace onramp::cli
