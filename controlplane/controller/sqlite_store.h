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

class SqliteStore final : public ConfigStore {
 public:
  // Opens the database at `path`, creating it (and its folder) when missing,
  // and loads the configuration. Only one process may hold it: a second one
  // is refused. The error names the flag (--db).
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;

  std::shared_ptr<const Config> snapshot() const override;
  CommitResult commit(const ConfigChange& change, uint64_t expected_version) override;
  std::vector<PopRecord> pops() const override;
  Status put_pops(const std::vector<PopRecord>& records) override;

 private:
  SqliteStore() = default;
  // Brings an older database's schema up to this build's (kMigrations).
  Status migrate();
  Status load(Config& out);
  Status write_change(const ConfigChange& change, uint64_t version);

  sqlite3* db_ = nullptr;
  int lock_fd_ = -1;
  // Serialises writers and guards snapshot_ (the pointer, not the Config).
  mutable std::mutex mu_;
  std::shared_ptr<const Config> snapshot_;
};

}  // namespace onramp::ctl
