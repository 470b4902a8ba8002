#include "controlplane/controller/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>

namespace onramp::ctl {
namespace {

// Bodies are the resources' own protobuf encoding; the key columns exist for
// the primary keys and the foreign keys, which guard the invariants
// validation already checks (no orphan, no parent deleted under children).
// This is schema version 1; kMigrations below bring it to the newest.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('config_version', 0);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', 1);
CREATE TABLE IF NOT EXISTS accelerators (
  name TEXT PRIMARY KEY,
  body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS listeners (
  accelerator TEXT NOT NULL REFERENCES accelerators (name),
  name TEXT NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (accelerator, name)
);
CREATE TABLE IF NOT EXISTS endpoint_groups (
  accelerator TEXT NOT NULL,
  listener TEXT NOT NULL,
  name TEXT NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (accelerator, listener, name),
  FOREIGN KEY (accelerator, listener) REFERENCES listeners (accelerator, name)
);
CREATE TABLE IF NOT EXISTS endpoints (
  accelerator TEXT NOT NULL,
  listener TEXT NOT NULL,
  endpoint_group TEXT NOT NULL,
  address TEXT NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (accelerator, listener, endpoint_group, address),
  FOREIGN KEY (accelerator, listener, endpoint_group)
    REFERENCES endpoint_groups (accelerator, listener, name)
);
CREATE TABLE IF NOT EXISTS pops (
  id TEXT PRIMARY KEY,
  body BLOB NOT NULL,
  applied_digest TEXT NOT NULL DEFAULT '',
  nacked_digest TEXT NOT NULL DEFAULT ''
);
)sql";

// Schema changes after version 1, in order: kMigrations[i] takes a database
// from schema version i + 1 to i + 2, in the same transaction as the bump.
constexpr const char* kMigrations[] = {
    // 2: resource versions. Rows written before get the configuration
    // version of the moment of the upgrade: older than any later write.
    R"sql(
ALTER TABLE accelerators ADD COLUMN resource_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE listeners ADD COLUMN resource_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoint_groups ADD COLUMN resource_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN resource_version INTEGER NOT NULL DEFAULT 0;
UPDATE accelerators SET resource_version = (SELECT value FROM meta WHERE key = 'config_version');
UPDATE listeners SET resource_version = (SELECT value FROM meta WHERE key = 'config_version');
UPDATE endpoint_groups SET resource_version = (SELECT value FROM meta WHERE key = 'config_version');
UPDATE endpoints SET resource_version = (SELECT value FROM meta WHERE key = 'config_version');
)sql",
    // 3: the store's identity, written once: a random id and epoch 1. A
    // store created before gets its identity at the upgrade.
    R"sql(
CREATE TABLE store_identity (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  store_id TEXT NOT NULL,
  epoch INTEGER NOT NULL
);
INSERT INTO store_identity (id, store_id, epoch) VALUES (1, lower(hex(randomblob(8))), 1);
)sql",
    // 4: each PoP's routing memory (v1.RouteInputs with only `memory`), so a
    // restarted controller computes the tables its PoPs run.
    R"sql(
ALTER TABLE pops ADD COLUMN route_memory BLOB NOT NULL DEFAULT x'';
)sql",
};

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  Stmt& text(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& integer(int i, uint64_t v) {
    sqlite3_bind_int64(stmt_, i, static_cast<sqlite3_int64>(v));
    return *this;
  }
  Stmt& blob(int i, const std::string& s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  std::string column_text(int i) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : "";
  }
  std::string column_blob(int i) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : "";
  }
  int64_t column_int(int i) const { return sqlite3_column_int64(stmt_, i); }
  std::string error() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

Status exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) == SQLITE_OK) return ok_status();
  std::string err = msg ? msg : sqlite3_errmsg(db);
  sqlite3_free(msg);
  return error(std::move(err));
}

// Runs a statement that returns no row.
Status run(Stmt& s, const char* what) {
  if (!s.ok()) return error(std::string(what) + ": " + s.error());
  int rc = s.step();
  if (rc != SQLITE_DONE) return error(std::string(what) + ": " + s.error());
  return ok_status();
}

template <typename T>
Status load_rows(sqlite3* db, const char* sql, const char* what, ResourceMap<T>& out) {
  Stmt s(db, sql);
  if (!s.ok()) return error(std::string(what) + ": " + s.error());
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    T msg;
    if (!msg.ParseFromString(s.column_blob(0)))
      return error(std::string(what) + ": a row does not parse; the database is damaged");
    msg.set_resource_version(static_cast<uint64_t>(s.column_int(1)));
    out[key_of(msg)] = std::move(msg);
  }
  return rc == SQLITE_DONE ? ok_status() : error(std::string(what) + ": " + s.error());
}

// Upserts, one per kind of resource; `version` is the resource version the
// row gets (the configuration version of this commit).
Status put_row(sqlite3* db, const v1::Accelerator& a, uint64_t version) {
  Stmt s(db,
         "INSERT INTO accelerators (name, body, resource_version) VALUES (?1, ?2, ?3) "
         "ON CONFLICT (name) DO UPDATE SET body = excluded.body, "
         "resource_version = excluded.resource_version");
  if (!s.ok()) return error(s.error());
  s.text(1, a.name()).blob(2, a.SerializeAsString()).integer(3, version);
  return run(s, "accelerators");
}
Status put_row(sqlite3* db, const v1::Listener& l, uint64_t version) {
  Stmt s(db,
         "INSERT INTO listeners (accelerator, name, body, resource_version) "
         "VALUES (?1, ?2, ?3, ?4) "
         "ON CONFLICT (accelerator, name) DO UPDATE SET body = excluded.body, "
         "resource_version = excluded.resource_version");
  if (!s.ok()) return error(s.error());
  s.text(1, l.accelerator()).text(2, l.name()).blob(3, l.SerializeAsString());
  s.integer(4, version);
  return run(s, "listeners");
}
Status put_row(sqlite3* db, const v1::EndpointGroup& g, uint64_t version) {
  Stmt s(db,
         "INSERT INTO endpoint_groups (accelerator, listener, name, body, resource_version) "
         "VALUES (?1, ?2, ?3, ?4, ?5) "
         "ON CONFLICT (accelerator, listener, name) DO UPDATE SET body = excluded.body, "
         "resource_version = excluded.resource_version");
  if (!s.ok()) return error(s.error());
  s.text(1, g.accelerator()).text(2, g.listener()).text(3, g.name()).blob(4, g.SerializeAsString());
  s.integer(5, version);
  return run(s, "endpoint_groups");
}
Status put_row(sqlite3* db, const v1::Endpoint& e, uint64_t version) {
  Stmt s(db,
         "INSERT INTO endpoints (accelerator, listener, endpoint_group, address, body, "
         "resource_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
         "ON CONFLICT (accelerator, listener, endpoint_group, address) "
         "DO UPDATE SET body = excluded.body, resource_version = excluded.resource_version");
  if (!s.ok()) return error(s.error());
  s.text(1, e.accelerator())
      .text(2, e.listener())
      .text(3, e.endpoint_group())
      .text(4, e.address())
      .blob(5, e.SerializeAsString())
      .integer(6, version);
  return run(s, "endpoints");
}

// Erasing a row that is not there means the caller's view and the file
// disagree: refuse rather than bump the version for nothing.
Status erased_one(sqlite3* db, Stmt& s, const char* what) {
  ONRAMP_RETURN_IF_ERROR(run(s, what));
  return sqlite3_changes(db) == 1 ? ok_status() : error(std::string(what) + ": no such row");
}
Status erase_row(sqlite3* db, const v1::Accelerator& a) {
  Stmt s(db, "DELETE FROM accelerators WHERE name = ?1");
  if (!s.ok()) return error(s.error());
  s.text(1, a.name());
  return erased_one(db, s, "accelerators");
}
Status erase_row(sqlite3* db, const v1::Listener& l) {
  Stmt s(db, "DELETE FROM listeners WHERE accelerator = ?1 AND name = ?2");
  if (!s.ok()) return error(s.error());
  s.text(1, l.accelerator()).text(2, l.name());
  return erased_one(db, s, "listeners");
}
Status erase_row(sqlite3* db, const v1::EndpointGroup& g) {
  Stmt s(db, "DELETE FROM endpoint_groups WHERE accelerator = ?1 AND listener = ?2 AND name = ?3");
  if (!s.ok()) return error(s.error());
  s.text(1, g.accelerator()).text(2, g.listener()).text(3, g.name());
  return erased_one(db, s, "endpoint_groups");
}
Status erase_row(sqlite3* db, const v1::Endpoint& e) {
  Stmt s(db,
         "DELETE FROM endpoints WHERE accelerator = ?1 AND listener = ?2 AND "
         "endpoint_group = ?3 AND address = ?4");
  if (!s.ok()) return error(s.error());
  s.text(1, e.accelerator()).text(2, e.listener()).text(3, e.endpoint_group()).text(4, e.address());
  return erased_one(db, s, "endpoints");
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path,
                                                       OpenOptions options) {
  std::unique_ptr<SqliteStore> store(new SqliteStore());
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  // Nothing is created without --init: not the folder, not the file.
  const bool dir_missing = !dir.empty() && !std::filesystem::exists(dir, ec);
  const bool file_missing = dir_missing || !std::filesystem::exists(path, ec);
  const bool file_empty = !file_missing && std::filesystem::is_regular_file(path, ec) &&
                          std::filesystem::file_size(path, ec) == 0;
  if (!options.init && (file_missing || file_empty)) {
    std::string why = dir_missing    ? "its folder " + dir.string() + " does not exist"
                      : file_missing ? "no such file"
                                     : "the file is empty";
    return error("--db: " + path + " is not an initialised onramp store (" + why +
                 "); start once with --init to create it");
  }
  if (dir_missing) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return error("--db: cannot create " + dir.string() + ": " + ec.message());
    }
  }
  // The in-memory snapshot is only right while this process is the only
  // writer: a second controller on the same file is refused. The lock lives
  // on a file of its own, away from SQLite's POSIX locks on the database.
  std::string lock_path = path + ".lock";
  store->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (store->lock_fd_ < 0) {
    return error("--db: " + lock_path + ": " + std::strerror(errno));
  }
  if (::flock(store->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return error("--db: " + path + " is in use by another onramp-controller (" + lock_path +
                 " is locked)");
  }
  if (sqlite3_open_v2(path.c_str(), &store->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    return error("--db: " + path + ": " +
                 (store->db_ ? sqlite3_errmsg(store->db_) : "cannot open"));
  }
  sqlite3_busy_timeout(store->db_, 5000);
  {
    // A file that SQLite opens but that holds no onramp schema (another
    // program's database) is not initialised either.
    Stmt meta(store->db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
    bool has_meta = meta.ok() && meta.step() == SQLITE_ROW;
    if (!has_meta && !options.init)
      return error("--db: " + path +
                   " is not an initialised onramp store (no onramp schema in it); start once "
                   "with --init to create it");
  }
  // WAL: a commit is one append and one fsync of the log; synchronous=FULL
  // makes that fsync happen before COMMIT returns, so an acknowledged
  // mutation is on disk.
  {
    Stmt wal(store->db_, "PRAGMA journal_mode=WAL");
    if (!wal.ok() || wal.step() != SQLITE_ROW || wal.column_text(0) != "wal") {
      return error("--db: " + path + ": cannot switch to WAL journal mode");
    }
  }
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (Status s = exec(store->db_, pragma); !s.ok())
      return std::move(s).prefixed("--db: " + path + ": " + pragma);
  }
  if (Status s = exec(store->db_, kSchema); !s.ok())
    return std::move(s).prefixed("--db: " + path + ": creating the schema");
  if (Status s = store->migrate(); !s.ok())
    return std::move(s).prefixed("--db: " + path + ": upgrading the schema");
  if (Status s = store->load_identity(options.new_epoch); !s.ok())
    return std::move(s).prefixed("--db: " + path);
  auto config = std::make_shared<Config>();
  if (Status s = store->load(*config); !s.ok()) return std::move(s).prefixed("--db: " + path);
  config->reindex();
  store->snapshot_ = std::move(config);
  return store;
}

SqliteStore::~SqliteStore() {
  if (db_) sqlite3_close_v2(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Status SqliteStore::migrate() {
  int64_t schema = 0;
  {
    Stmt s(db_, "SELECT value FROM meta WHERE key = 'schema_version'");
    if (!s.ok() || s.step() != SQLITE_ROW) return error("reading the schema version: " + s.error());
    schema = s.column_int(0);
  }
  constexpr int64_t kNewest = 1 + static_cast<int64_t>(std::size(kMigrations));
  if (schema < 1 || schema > kNewest)
    return error("schema version " + std::to_string(schema) +
                 " is not one this controller knows (1.." + std::to_string(kNewest) +
                 "); is the database from a newer onramp-controller?");
  for (; schema < kNewest; ++schema) {
    ONRAMP_RETURN_IF_ERROR(exec(db_, "BEGIN IMMEDIATE"));
    Status s = exec(db_, kMigrations[schema - 1]);
    if (s.ok()) {
      Stmt bump(db_, "UPDATE meta SET value = value + 1 WHERE key = 'schema_version'");
      s = run(bump, "schema version");
    }
    if (s.ok()) s = exec(db_, "COMMIT");
    if (!s.ok()) {
      exec(db_, "ROLLBACK").ignore();
      return std::move(s).prefixed("to schema version " + std::to_string(schema + 1));
    }
  }
  return ok_status();
}

Status SqliteStore::load_identity(bool new_epoch) {
  if (new_epoch) {
    Stmt bump(db_, "UPDATE store_identity SET epoch = epoch + 1 WHERE id = 1");
    ONRAMP_RETURN_IF_ERROR(run(bump, "raising the epoch"));
  }
  Stmt s(db_, "SELECT store_id, epoch FROM store_identity WHERE id = 1");
  if (!s.ok() || s.step() != SQLITE_ROW) return error("reading the store identity: " + s.error());
  identity_.store_id = s.column_text(0);
  identity_.epoch = static_cast<uint64_t>(s.column_int(1));
  if (identity_.store_id.empty() || identity_.epoch == 0)
    return error("the store identity is damaged (empty id or epoch 0)");
  return ok_status();
}

Status SqliteStore::load(Config& out) {
  {
    Stmt s(db_, "SELECT value FROM meta WHERE key = 'config_version'");
    if (!s.ok() || s.step() != SQLITE_ROW) return error("reading the config version: " + s.error());
    out.version = static_cast<uint64_t>(s.column_int(0));
  }
  ONRAMP_RETURN_IF_ERROR(load_rows(db_, "SELECT body, resource_version FROM accelerators",
                                   "accelerators", out.accelerators));
  ONRAMP_RETURN_IF_ERROR(
      load_rows(db_, "SELECT body, resource_version FROM listeners", "listeners", out.listeners));
  ONRAMP_RETURN_IF_ERROR(load_rows(db_, "SELECT body, resource_version FROM endpoint_groups",
                                   "endpoint_groups", out.groups));
  return load_rows(db_, "SELECT body, resource_version FROM endpoints", "endpoints", out.endpoints);
}

std::shared_ptr<const Config> SqliteStore::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

Status SqliteStore::write_change(const ConfigChange& change, uint64_t version) {
  // Children go before parents on erase and after them on put, so the
  // foreign keys hold after every statement.
  auto rank = [](const Resource& r) { return static_cast<int>(r.index()); };
  std::vector<const Resource*> erasures, puts;
  for (const auto& r : change.erasures) erasures.push_back(&r);
  for (const auto& r : change.puts) puts.push_back(&r);
  std::stable_sort(erasures.begin(), erasures.end(),
                   [&](auto* a, auto* b) { return rank(*a) > rank(*b); });
  std::stable_sort(puts.begin(), puts.end(), [&](auto* a, auto* b) { return rank(*a) < rank(*b); });
  for (const Resource* r : erasures)
    ONRAMP_RETURN_IF_ERROR(std::visit([&](const auto& x) { return erase_row(db_, x); }, *r));
  for (const Resource* r : puts)
    ONRAMP_RETURN_IF_ERROR(std::visit([&](const auto& x) { return put_row(db_, x, version); }, *r));
  Stmt bump(db_, "UPDATE meta SET value = value + 1 WHERE key = 'config_version'");
  return run(bump, "config version");
}

CommitResult SqliteStore::commit(const ConfigChange& change, uint64_t expected_version) {
  std::lock_guard lock(mu_);
  CommitResult result;
  if (snapshot_->version != expected_version) {
    result.outcome = CommitResult::Outcome::conflict;
    result.error = "the configuration changed meanwhile (version " +
                   std::to_string(snapshot_->version) + ", expected " +
                   std::to_string(expected_version) + ")";
    return result;
  }
  if (Status s = exec(db_, "BEGIN IMMEDIATE"); !s.ok()) {
    result.error = "store: " + s.message();
    return result;
  }
  Status s = write_change(change, snapshot_->version + 1);
  if (s.ok()) s = exec(db_, "COMMIT");
  if (!s.ok()) {
    // Nothing of a failed transaction stays: neither the rows nor the
    // version bump. ROLLBACK fails harmlessly when SQLite already rolled back.
    exec(db_, "ROLLBACK").ignore();
    result.error = "store: " + s.message();
    return result;
  }
  auto next = std::make_shared<Config>(*snapshot_);
  next->version = snapshot_->version + 1;
  apply_change(*next, change);
  snapshot_ = next;
  result.outcome = CommitResult::Outcome::committed;
  result.config = std::move(next);
  return result;
}

std::vector<PopRecord> SqliteStore::pops() const {
  std::lock_guard lock(mu_);
  std::vector<PopRecord> out;
  Stmt s(db_, "SELECT body, applied_digest, nacked_digest, route_memory FROM pops ORDER BY id");
  if (!s.ok()) return out;
  while (s.step() == SQLITE_ROW) {
    PopRecord r;
    if (!r.pop.ParseFromString(s.column_blob(0))) continue;
    r.applied_digest = s.column_text(1);
    r.nacked_digest = s.column_text(2);
    r.route_memory = s.column_blob(3);
    out.push_back(std::move(r));
  }
  return out;
}

Status SqliteStore::put_pops(const std::vector<PopRecord>& records) {
  if (records.empty()) return ok_status();
  std::lock_guard lock(mu_);
  if (Status s = exec(db_, "BEGIN IMMEDIATE"); !s.ok()) return std::move(s).prefixed("store");
  Status status;
  for (const PopRecord& r : records) {
    Stmt s(db_,
           "INSERT INTO pops (id, body, applied_digest, nacked_digest, route_memory) "
           "VALUES (?1, ?2, ?3, ?4, ?5) "
           "ON CONFLICT (id) DO UPDATE SET body = excluded.body, "
           "applied_digest = excluded.applied_digest, nacked_digest = excluded.nacked_digest, "
           "route_memory = excluded.route_memory");
    if (!s.ok()) {
      status = error(s.error());
      break;
    }
    s.text(1, r.pop.id()).blob(2, r.pop.SerializeAsString());
    s.text(3, r.applied_digest).text(4, r.nacked_digest).blob(5, r.route_memory);
    if (status = run(s, "pops"); !status.ok()) break;
  }
  if (status.ok()) status = exec(db_, "COMMIT");
  if (!status.ok()) {
    exec(db_, "ROLLBACK").ignore();
    return std::move(status).prefixed("store");
  }
  return ok_status();
}

}  // namespace onramp::ctl
