#include "controlplane/agent/table_store.h"

#include <google/protobuf/text_format.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/files.h"
#include "common/textproto.h"
#include "dataplane/config/table_loader.h"

namespace onramp::agent {
namespace {

// `header` and `msg` in text format, written atomically with mode 0600.
Status save_text(const std::string& path, const std::string& header,
                 const google::protobuf::Message& msg) {
  std::string body;
  if (!google::protobuf::TextFormat::PrintToString(msg, &body))
    return error("cannot print the " + msg.GetDescriptor()->name());
  return write_file_atomically(path, header + body, 0600);
}

// True when something (a file, a link, even a dangling one) is at `path`.
bool present(const std::string& path) {
  std::error_code ec;
  return std::filesystem::symlink_status(path, ec).type() != std::filesystem::file_type::not_found;
}

}  // namespace

TableStore::TableStore(std::string dir)
    : dir_(std::move(dir)),
      path_(dir_ + "/last_good_table.textproto"),
      plan_path_(dir_ + "/probe_plan.textproto"),
      routing_path_(dir_ + "/route_state.textproto") {}

Status TableStore::make_dir() const {
  std::error_code ec;
  if (!std::filesystem::exists(dir_, ec)) {
    std::filesystem::create_directories(dir_, ec);
    if (ec) return error(dir_ + ": " + ec.message());
    ::chmod(dir_.c_str(), 0700);
  }
  return ok_status();
}

Status TableStore::save(const v1::ForwardingTable& table) const {
  ONRAMP_RETURN_IF_ERROR(make_dir());
  return save_text(
      path_, "# The last table this PoP's dataplane accepted, written by onramp-agent.\n", table);
}

Status TableStore::save_plan(const v1::ProbePlan& plan) const {
  ONRAMP_RETURN_IF_ERROR(make_dir());
  return save_text(plan_path_,
                   "# The last probe plan from the controller, written by onramp-agent.\n", plan);
}

Result<std::optional<v1::ProbePlan>> TableStore::load_plan() const {
  if (!present(plan_path_)) return std::optional<v1::ProbePlan>();
  v1::ProbePlan plan;
  ONRAMP_RETURN_IF_ERROR(load_text_proto_file(plan_path_, plan));
  return std::optional<v1::ProbePlan>(std::move(plan));
}

Status TableStore::save_routing(const v1::AgentRouteState& state) const {
  ONRAMP_RETURN_IF_ERROR(make_dir());
  return save_text(routing_path_,
                   "# What onramp-agent routes on its own from while the controller is away.\n",
                   state);
}

Result<std::optional<v1::AgentRouteState>> TableStore::load_routing() const {
  if (!present(routing_path_)) return std::optional<v1::AgentRouteState>();
  v1::AgentRouteState state;
  ONRAMP_RETURN_IF_ERROR(load_text_proto_file(routing_path_, state));
  return std::optional<v1::AgentRouteState>(std::move(state));
}

Result<std::optional<v1::ForwardingTable>> TableStore::load() const {
  if (!present(path_)) return std::optional<v1::ForwardingTable>();  // nothing stored yet
  v1::ForwardingTable table;
  ONRAMP_RETURN_IF_ERROR(load_text_proto_file(path_, table));
  if (auto spec = dp::table_spec_from_proto(table); !spec.ok())
    return spec.status().prefixed(path_);
  return std::optional<v1::ForwardingTable>(std::move(table));
}

}  // namespace onramp::agent
