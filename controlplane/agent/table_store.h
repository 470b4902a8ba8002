// The last good table on disk: the one the dataplane last accepted, kept so a
// restarted agent (or a restarted dataplane) gets it back before the
// controller answers. Protobuf text format, so `onramp-dataplane --table` and
// `onrampctl dataplane apply` read the file as it is. A comment line at its
// top holds the size and SHA-256 of the text after it, and where the table
// came from (store id, epoch, the controller's content digest): a file cut
// short or changed is refused when read, not applied (docs/agent.md).
#pragma once

#include <optional>
#include <string>

#include "common/files.h"
#include "common/status.h"
#include "controlplane/agent/table_origin.h"
#include "onramp/v1/forwarding.pb.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::agent {

// What is kept with the last good table besides the table.
struct TableMeta {
  // The store and epoch of the controller update the table came from; its
  // version is the table's.
  std::string store_id;
  uint64_t epoch = 0;
  // The controller's content digest of that update (routing's
  // content_digest); "" when unknown.
  std::string content_digest;
};

struct LastGood {
  v1::ForwardingTable table;
  TableMeta meta;
  // False for a file without the header (written by an older agent): it is
  // applied, but the agent cannot vouch for its content.
  bool verified = false;
};

class TableStore {
 public:
  // `dir` is created (0700) on the first save if missing. Files over
  // `max_bytes` are refused unread.
  explicit TableStore(std::string dir, size_t max_bytes = kMaxFileBytes);

  // Replaces the stored table atomically (write_file_atomically): a crash
  // leaves the old table or the new one, never a mix.
  Status save(const v1::ForwardingTable& table, const TableMeta& meta = {}) const;

  // The stored table with what was kept beside it, when it matches the size
  // and digest of its header, parses and passes validation; nullopt when
  // none is stored yet; an error naming the file when it is unusable (cut
  // short or changed, a syntax error, an invalid table, not a regular
  // file, too big).
  Result<std::optional<LastGood>> load_last_good() const;
  // load_last_good(), the table alone.
  Result<std::optional<v1::ForwardingTable>> load() const;
  // Where the stored table came from, read from its header alone: kept
  // even when the table fails its check, so that a damaged file does not
  // let a table from another store in. nullopt when there is no file or no
  // header naming a store.
  Result<std::optional<TableOrigin>> load_origin() const;

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
  size_t max_bytes_;
  std::string path_;
  std::string plan_path_;
  std::string routing_path_;
};

}  // namespace onramp::agent
