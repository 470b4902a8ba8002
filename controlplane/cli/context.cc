// Context (connections on first use, errors to exit codes) and CommandTree
// (how commands hang together, what completion needs to know).
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <CLI/CLI.hpp>
#include <chrono>

#include "controlplane/cli/command.h"
#include "controlplane/cli/exit_code.h"
#include "controlplane/common/tls.h"

namespace onramp::cli {

Result<AdminStub*> Context::admin_stub() {
  if (!admin_) {
    Result<std::unique_ptr<AdminStub>> stub = connector_.controller(globals);
    if (!stub.ok()) return stub.status();
    admin_ = std::move(*stub);
  }
  return admin_.get();
}

Result<DataplaneStub*> Context::dataplane_stub() {
  if (!dataplane_) {
    Result<std::unique_ptr<DataplaneStub>> stub = connector_.dataplane(globals);
    if (!stub.ok()) return stub.status();
    dataplane_ = std::move(*stub);
  }
  return dataplane_.get();
}

void Context::start_call(grpc::ClientContext& call, const std::string& token) const {
  call.set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(globals.timeout_s * 1000)));
  if (!token.empty()) call.AddMetadata("authorization", "Bearer " + token);
}

grpc::Status Context::refused(const Status& status) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, status.message());
}

// gRPC's own words for "could not connect" do not say to what.
grpc::Status Context::name_the_server(grpc::Status s, const std::string& what) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
    return grpc::Status(s.error_code(), what + ": " + s.error_message());
  return s;
}

grpc::Status Context::name_the_controller(grpc::Status s) const {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && !globals.plaintext) {
    std::string why = cp::certificate_refusal(globals.controller, globals.tls);
    if (!why.empty())
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "controller " + globals.controller + " refused the client certificate " +
                              globals.tls.cert + ": " + why);
  }
  return name_the_server(s, "controller " + globals.controller);
}

int Context::fail(const grpc::Status& status) {
  std::string msg = status.error_message();
  if (msg.empty()) msg = "failed with gRPC status " + std::to_string(status.error_code());
  return fail(exit_code_for(status.error_code()), msg);
}

int Context::fail(int exit_code, const std::string& message) {
  err << "onrampctl: " << message << '\n';
  return exit_code;
}

CLI::App* CommandTree::group(CLI::App& parent, const std::string& name,
                             const std::string& description) {
  CLI::App* g = parent.add_subcommand(name, description);
  g->require_subcommand(1);
  return g;
}

CLI::App* CommandTree::command(CLI::App& parent, const std::string& name,
                               const std::string& description, const std::string& examples,
                               Action action) {
  CLI::App* c = parent.add_subcommand(name, description);
  if (!examples.empty()) {
    c->footer("Examples:\n" + examples);
    // A group's help shows the first example of each of its commands.
    if (&parent != &root) {
      std::string& text = group_examples_[&parent];
      text += examples.substr(0, examples.find('\n') + 1);
      parent.footer("Examples:\n" + text);
    }
  }
  c->callback([this, action = std::move(action)] { selected = action; });
  return c;
}

void CommandTree::choices(const CLI::Option* option, std::vector<std::string> values) {
  choices_[option] = std::move(values);
}

void CommandTree::file(const CLI::Option* option) { files_[option] = true; }

const std::vector<std::string>* CommandTree::choices_of(const CLI::Option* option) const {
  auto it = choices_.find(option);
  return it == choices_.end() ? nullptr : &it->second;
}

bool CommandTree::is_file(const CLI::Option* option) const { return files_.count(option) > 0; }

}  // namespace onramp::cli
