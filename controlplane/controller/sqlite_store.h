// ConfigStore on an embedded SQLite database: one file, WAL journal,
// synchronous=FULL, one transaction per commit with the version bump inside
// it, so the configuration survives kill -9 or power loss at any moment. The
// whole configuration is also held in memory as an immutable snapshot; reads
// never touch the file.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "controlplane/controller/config_store.h"

struct sqlite3;

namespace onramp::ctl {

// How SqliteStore::open treats the file.
struct StoreOpenOptions {
  // Create the store (and its folder) when the file is missing or empty;
  // an initialised store is opened as it is. Without it such a path is
  // refused: a mistyped --db or a lost file must not start a controller
  // with an empty configuration that it would push to every PoP.
  bool init = false;
  // Raise the store's epoch by one (after restoring a backup): PoPs then
  // accept its tables even at versions below the ones they run.
  bool new_epoch = false;
};

class SqliteStore final : public ConfigStore {
 public:
  using OpenOptions = StoreOpenOptions;
  // Opens the database at `path` and loads the configuration. Only one
  // process may hold it: a second one is refused. The error names the flag
  // (--db, --init).
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path,
                                                   OpenOptions options = {});
  ~SqliteStore() override;

  std::shared_ptr<const Config> snapshot() const override;
  CommitResult commit(const ConfigChange& change, uint64_t expected_version) override;
  std::vector<PopRecord> pops() const override;
  Status put_pops(const std::vector<PopRecord>& records) override;
  StoreIdentity identity() const override { return identity_; }
  // The only writer of its file: nothing to follow.
  void follow(std::function<void()>) override {}

 private:
  SqliteStore() = default;
  // Brings an older database's schema up to this build's (kMigrations).
  Status migrate();
  Status load(Config& out);
  Status load_identity(bool new_epoch);
  Status write_change(const ConfigChange& change, uint64_t version);

  sqlite3* db_ = nullptr;
  int lock_fd_ = -1;
  StoreIdentity identity_;
  // Serialises writers and guards snapshot_ (the pointer, not the Config).
  mutable std::mutex mu_;
  std::shared_ptr<const Config> snapshot_;
};

}  // namespace onramp::ctl
