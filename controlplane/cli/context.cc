// Context (connections on first use, errors to exit codes) and CommandTree
// (how commands hang together, what completion needs to know).
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>

#include "controlplane/cli/command.h"
#include "controlplane/cli/exit_code.h"
#include "controlplane/common/tls.h"

namespace onramp::cli {

Result<Context::Replica*> Context::replica(size_t i) {
  if (!replicas_[i]) {
    Result<std::shared_ptr<grpc::Channel>> channel = connector_.controller(globals, addresses_[i]);
    if (!channel.ok()) return channel.status();
    replicas_[i] = std::make_unique<Replica>(Replica{.address = addresses_[i],
                                                     .channel = *channel,
                                                     .stub = v1::AdminService::NewStub(*channel)});
  }
  return replicas_[i].get();
}

bool Context::reachable(grpc::Channel& channel) const {
  // Long enough for a TCP and TLS handshake across the world, short enough
  // that a replica whose address swallows packets does not use up --timeout.
  auto bound = std::chrono::milliseconds(
      std::min<int64_t>(5000, static_cast<int64_t>(globals.timeout_s * 1000)));
  auto deadline = std::chrono::system_clock::now() + bound;
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) return false;
    if (!channel.WaitForStateChange(state, deadline)) return false;
    state = channel.GetState(/*try_to_connect=*/true);
  }
  return true;
}

grpc::Status Context::on_controller(bool idempotent,
                                    const std::function<grpc::Status(AdminStub&)>& call) {
  if (addresses_.empty()) {
    Result<std::vector<cp::ControllerAddress>> list = cp::parse_controller_list(globals.controller);
    if (!list.ok()) return refused(list.status().prefixed("--controller"));
    addresses_ = cp::resolve_replicas(*list, cp::system_resolver());
    replicas_.resize(addresses_.size());
  }
  std::string passed;  // the replicas left, and why
  for (size_t n = 0; n < addresses_.size(); ++n) {
    size_t i = (current_ + n) % addresses_.size();
    bool last = n + 1 == addresses_.size();
    Result<Replica*> r = replica(i);
    if (!r.ok()) return refused(r.status());
    const std::string& name = (*r)->address.authority;
    if (!last && !reachable(*(*r)->channel)) {
      passed += "controller " + name + ": not reachable; ";
      continue;
    }
    grpc::Status s = call(*(*r)->stub);
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE && idempotent && !last) {
      passed += "controller " + name + ": " + s.error_message() + "; ";
      continue;
    }
    current_ = i;
    s = name_the_controller(s, name);
    if (!s.ok() && !passed.empty()) return grpc::Status(s.error_code(), passed + s.error_message());
    return s;
  }
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no controller replica given");
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

grpc::Status Context::name_the_controller(grpc::Status s, const std::string& replica) const {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && !globals.plaintext) {
    std::string why = cp::certificate_refusal(replica, globals.tls);
    if (!why.empty())
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "controller " + replica + " refused the client certificate " +
                              globals.tls.cert + ": " + why);
  }
  return name_the_server(s, "controller " + replica);
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
