// The last good table on disk: the one the dataplane last accepted, kept so a
// restarted agent (or a restarted dataplane) gets it back before the
// controller answers. Protobuf text format, so `onramp-dataplane --table` and
// `onrampctl dataplane apply` read the file as it is.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"
#include "onramp/v1/forwarding.pb.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::agent {

class TableStore {
 public:
  // `dir` is created (0700) on the first save if missing.
  explicit TableStore(std::string dir);

  // Replaces the stored table atomically (write_file_atomically): a crash
  // leaves the old table or the new one, never a mix.
  Status save(const v1::ForwardingTable& table) const;

  // The stored table when it parses and passes validation; nullopt when
  // none is stored yet; an error naming the file when it is unusable (a
  // syntax error, an invalid table, not a regular file, too big).
  Result<std::optional<v1::ForwardingTable>> load() const;

  // The probe plan of the last update, kept beside the table: a restarted
  // agent whose dataplane already runs the controller's version gets no new
  // update, so it probes from this one. Same contract as save/load.
  Status save_plan(const v1::ProbePlan& plan) const;
  Result<std::optional<v1::ProbePlan>> load_plan() const;

  // What the agent routes on its own from while the controller is away
  // (AgentRouteState), kept beside the table so that a restarted agent
  // still can. Same contract as save/load.
  Status save_routing(const v1::AgentRouteState& state) const;
  Result<std::optional<v1::AgentRouteState>> load_routing() const;

  const std::string& path() const { return path_; }

 private:
  Status make_dir() const;

  std::string dir_;
  std::string path_;
  std::string plan_path_;
  std::string routing_path_;
};

}  // namespace onramp::agent
