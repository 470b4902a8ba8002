// The controller's configuration and where it is kept. ConfigStore is the
// interface the rest of the controller sees: an immutable snapshot to read,
// and atomic commits that each bump the configuration version. SQLite
// (sqlite_store.h) and etcd (etcd_store.h, several replicas) implement it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "common/status.h"
#include "controlplane/routing/config.h"
#include "onramp/v1/resources.pb.h"

namespace onramp::ctl {

namespace v1 = onramp::v1;

using Resource = std::variant<v1::Accelerator, v1::Listener, v1::EndpointGroup, v1::Endpoint>;

// What one commit does. Erasures only need the key fields filled.
struct ConfigChange {
  std::vector<Resource> puts;
  std::vector<Resource> erasures;
};

struct CommitResult {
  enum class Outcome {
    committed,
    conflict,  // the configuration moved on since expected_version
    failed,    // the store refused or could not write; nothing changed
    // The store could not be reached (an etcd replica cut off from its
    // cluster): the write is refused, `error` says so for an operator.
    unavailable,
  };
  Outcome outcome = Outcome::failed;
  std::string error;
  std::shared_ptr<const Config> config;  // the new snapshot when committed
};

// A PoP as the registry keeps it across restarts. Pop's runtime-only fields
// (state, sent_version, dataplane_healthy, bgp_announced) are not persisted.
struct PopRecord {
  v1::Pop pop;
  // Digests of the table content the PoP acknowledged last and refused last,
  // so a restarted controller neither resends what a PoP already runs nor
  // repeats a table it refused.
  std::string applied_digest;
  std::string nacked_digest;
  // The routing memory of the PoP's last computation (v1.RouteInputs with
  // only `memory` set, serialised): primaries, challengers, spill order,
  // fail-open state. A restarted controller that forgot them could compute
  // another table than the one the PoP runs, and move new flows.
  std::string route_memory;
};

// Which store a configuration comes from (docs/controller.md "Store
// identity"): a random id written once when the store is created, and an
// epoch an operator raises after restoring a backup. Every table a PoP is
// sent carries both, so that its agent notices a table that would take it
// backwards.
struct StoreIdentity {
  std::string store_id;  // 16 hex digits; "" for a store without one
  uint64_t epoch = 0;    // >= 1 once initialised
};

// Applies the puts and erasures of `change` to `config`, each put stamped
// with resource_version = config.version (the caller sets the new version
// first): the in-memory half of a commit, shared by every store.
void apply_change(Config& config, const ConfigChange& change);

class ConfigStore {
 public:
  virtual ~ConfigStore() = default;

  // The newest committed configuration.
  virtual std::shared_ptr<const Config> snapshot() const = 0;

  // Applies `change` as one transaction and bumps the version by one, if the
  // configuration is still at `expected_version`; every resource put gets the
  // new version as its resource_version. Durable when it returns
  // committed: the change survives a crash of the process or the machine.
  virtual CommitResult commit(const ConfigChange& change, uint64_t expected_version) = 0;

  // The PoP registry. Writes are batched: one transaction for all records.
  virtual std::vector<PopRecord> pops() const = 0;
  virtual Status put_pops(const std::vector<PopRecord>& records) = 0;

  // The store's identity; fixed while the process runs.
  virtual StoreIdentity identity() const { return {}; }

  // Calls `on_change` (from a thread of the store's) each time the store
  // takes a configuration that another writer committed: another replica
  // over the same etcd. A store with one writer (SQLite) never calls it.
  // follow({}) stops; the callback is not running when it returns. Pure, so
  // that a store wrapping another cannot forget to pass it on.
  virtual void follow(std::function<void()> on_change) = 0;
};

}  // namespace onramp::ctl
