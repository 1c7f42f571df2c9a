#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include "core/json.h"
#include "core/uuid.h"

namespace stratus::store {
namespace {

// Schema version 1. See docs/architecture.md "State store".
const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
  key TEXT PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL, internal TEXT NOT NULL,
  etag TEXT NOT NULL, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS resources_type ON resources(type, key);
CREATE TABLE IF NOT EXISTS operations (
  id TEXT PRIMARY KEY, subscription TEXT NOT NULL, resource_key TEXT NOT NULL,
  status TEXT NOT NULL, body TEXT NOT NULL, internal TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS operations_status ON operations(status);
CREATE TABLE IF NOT EXISTS activity (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, subscription TEXT NOT NULL,
  body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS activity_sub ON activity(subscription, seq);
CREATE INDEX IF NOT EXISTS activity_time ON activity(time_ms);
INSERT OR IGNORE INTO meta(name, value) VALUES ('schema_version', '1');
)sql";

// RAII prepared statement.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) s_ = nullptr;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return s_ != nullptr; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(s_); }
  std::string Text(int col) {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  int64_t Int(int col) { return sqlite3_column_int64(s_, col); }
  Status Error(const std::string& what) const {
    return Internal("state store: " + what + ": " + sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

Json ParseStored(const std::string& s) {
  return s.empty() ? Json::object() : Json::parse(s, nullptr, /*allow_exceptions=*/false);
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                       Durability durability) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Internal("cannot open state store '" + path + "': " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<SqliteStore> store(new SqliteStore(db));
  // The state holds token hashes, VM user scripts and the activity log: owner only, also for
  // a database created before this rule (SQLite's journal files follow the main file's mode).
  for (const char* suffix : {"", "-wal", "-shm"}) ::chmod((path + suffix).c_str(), 0600);
  RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL;"));
  RETURN_IF_ERROR(store->Exec(durability == Durability::kFull ? "PRAGMA synchronous=FULL;"
                                                              : "PRAGMA synchronous=NORMAL;"));
  RETURN_IF_ERROR(store->Exec(kSchema));
  for (const char* suffix : {"-wal", "-shm"}) ::chmod((path + suffix).c_str(), 0600);
  return store;
}

SqliteStore::~SqliteStore() { sqlite3_close(db_); }

Status SqliteStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Internal(std::string("state store: '") + sql + "' failed: " + msg);
  }
  return Status::Ok();
}

Result<Record> SqliteStore::GetLocked(const std::string& key) {
  Stmt st(db_, "SELECT type, body, internal, etag, version FROM resources WHERE key = ?");
  if (!st.ok()) return st.Error("prepare get");
  st.Bind(1, key);
  int rc = st.Step();
  if (rc == SQLITE_DONE) return NotFound("Resource '" + key + "' was not found.", key);
  if (rc != SQLITE_ROW) return st.Error("get " + key);
  Record r;
  r.key = key;
  r.type = st.Text(0);
  r.body = ParseStored(st.Text(1));
  r.internal = ParseStored(st.Text(2));
  r.etag = st.Text(3);
  r.version = st.Int(4);
  return r;
}

Result<Record> SqliteStore::Get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  return GetLocked(key);
}

Result<Record> SqliteStore::Put(Record rec, const WriteCondition& cond) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE;"));
  auto fail = [&](Status st) {
    Exec("ROLLBACK;");
    return st;
  };
  auto existing = GetLocked(rec.key);
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound)
    return fail(existing.status());
  if (existing.ok()) {
    if (cond.must_not_exist)
      return fail(Status(StatusCode::kPreconditionFailed, "PreconditionFailed",
                         "Resource '" + rec.key + "' already exists (If-None-Match: *)."));
    if (cond.if_match && *cond.if_match != "*" && *cond.if_match != existing->etag)
      return fail(PreconditionFailed("The ETag '" + *cond.if_match + "' does not match the "
                                     "current ETag '" + existing->etag + "' of '" + rec.key +
                                     "'."));
    rec.version = existing->version + 1;
  } else {
    // RFC 9110 13.1.1: If-Match (even "*") fails when there is no current representation.
    if (cond.if_match)
      return fail(PreconditionFailed("Resource '" + rec.key + "' does not exist (If-Match: " +
                                     *cond.if_match + ")."));
    if (cond.must_exist)
      return fail(NotFound("Resource '" + rec.key + "' was not found.", rec.key));
    rec.version = 1;
  }
  rec.etag = "\"" + RandomHex(8) + "\"";
  Stmt st(db_,
          "INSERT INTO resources(key, type, body, internal, etag, version) VALUES (?,?,?,?,?,?) "
          "ON CONFLICT(key) DO UPDATE SET type=excluded.type, body=excluded.body, "
          "internal=excluded.internal, etag=excluded.etag, version=excluded.version");
  if (!st.ok()) return fail(st.Error("prepare put"));
  st.Bind(1, rec.key).Bind(2, rec.type).Bind(3, DumpJson(rec.body)).Bind(4, DumpJson(rec.internal));
  st.Bind(5, rec.etag).Bind(6, rec.version);
  if (st.Step() != SQLITE_DONE) return fail(st.Error("put " + rec.key));
  // A failed COMMIT (disk full, I/O error) may leave the transaction open: roll it back, or
  // every later BEGIN would fail.
  Status commit = Exec("COMMIT;");
  if (!commit.ok()) return fail(commit);
  return rec;
}

Status SqliteStore::Delete(const std::string& key, std::optional<std::string> if_match) {
  std::lock_guard<std::mutex> lock(mu_);
  if (if_match && *if_match != "*") {
    ASSIGN_OR_RETURN(Record existing, GetLocked(key));
    if (existing.etag != *if_match)
      return PreconditionFailed("The ETag '" + *if_match + "' does not match the current ETag '" +
                                existing.etag + "' of '" + key + "'.");
  }
  Stmt st(db_, "DELETE FROM resources WHERE key = ?");
  if (!st.ok()) return st.Error("prepare delete");
  st.Bind(1, key);
  if (st.Step() != SQLITE_DONE) return st.Error("delete " + key);
  if (sqlite3_changes(db_) == 0) return NotFound("Resource '" + key + "' was not found.", key);
  return Status::Ok();
}

Result<Page> SqliteStore::List(const std::string& key_prefix, const std::string& type,
                               const std::string& after_key, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  // Keys are lowercase ASCII; '\x7f' sorts after every character they can hold.
  std::string lo = after_key.empty() ? key_prefix : after_key;
  std::string hi = key_prefix + "\x7f";
  Stmt st(db_, type.empty()
                   ? "SELECT key, type, body, internal, etag, version FROM resources "
                     "WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3"
                   : "SELECT key, type, body, internal, etag, version FROM resources "
                     "WHERE key > ?1 AND key < ?2 AND type = ?4 ORDER BY key LIMIT ?3");
  if (!st.ok()) return st.Error("prepare list");
  // The prefix is a collection path ("/.../virtualmachines/"), never a key itself.
  st.Bind(1, lo).Bind(2, hi).Bind(3, static_cast<int64_t>(limit + 1));
  if (!type.empty()) st.Bind(4, type);
  Page page;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    Record r;
    r.key = st.Text(0);
    r.type = st.Text(1);
    r.body = ParseStored(st.Text(2));
    r.internal = ParseStored(st.Text(3));
    r.etag = st.Text(4);
    r.version = st.Int(5);
    page.records.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return st.Error("list " + key_prefix);
  if (static_cast<int>(page.records.size()) > limit) {
    page.records.pop_back();
    page.next_key = page.records.back().key;
  }
  return page;
}

Status SqliteStore::PutOperation(const OperationRecord& op) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "INSERT OR REPLACE INTO operations(id, subscription, resource_key, status, body, "
          "internal) VALUES (?,?,?,?,?,?)");
  if (!st.ok()) return st.Error("prepare put operation");
  st.Bind(1, op.id).Bind(2, op.subscription).Bind(3, op.resource_key).Bind(4, op.status);
  st.Bind(5, DumpJson(op.body)).Bind(6, DumpJson(op.internal));
  if (st.Step() != SQLITE_DONE) return st.Error("put operation " + op.id);
  return Status::Ok();
}

Result<OperationRecord> SqliteStore::GetOperation(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "SELECT subscription, resource_key, status, body, internal FROM operations WHERE id = ?");
  if (!st.ok()) return st.Error("prepare get operation");
  st.Bind(1, id);
  int rc = st.Step();
  if (rc == SQLITE_DONE)
    return NotFound("Operation '" + id + "' was not found.", id, "OperationNotFound");
  if (rc != SQLITE_ROW) return st.Error("get operation " + id);
  OperationRecord op;
  op.id = id;
  op.subscription = st.Text(0);
  op.resource_key = st.Text(1);
  op.status = st.Text(2);
  op.body = ParseStored(st.Text(3));
  op.internal = ParseStored(st.Text(4));
  return op;
}

Result<std::vector<OperationRecord>> SqliteStore::ListOperationsWithStatus(
    const std::string& status) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "SELECT id, subscription, resource_key, status, body, internal FROM operations "
          "WHERE status = ?");
  if (!st.ok()) return st.Error("prepare list operations");
  st.Bind(1, status);
  std::vector<OperationRecord> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    OperationRecord op;
    op.id = st.Text(0);
    op.subscription = st.Text(1);
    op.resource_key = st.Text(2);
    op.status = st.Text(3);
    op.body = ParseStored(st.Text(4));
    op.internal = ParseStored(st.Text(5));
    out.push_back(std::move(op));
  }
  if (rc != SQLITE_DONE) return st.Error("list operations");
  return out;
}

Status SqliteStore::AppendActivity(const ActivityEvent& ev) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "INSERT INTO activity(time_ms, subscription, body) VALUES (?,?,?)");
  if (!st.ok()) return st.Error("prepare append activity");
  st.Bind(1, ev.time_ms).Bind(2, ev.subscription).Bind(3, DumpJson(ev.body));
  if (st.Step() != SQLITE_DONE) return st.Error("append activity");
  return Status::Ok();
}

Result<std::vector<ActivityEvent>> SqliteStore::ListActivity(const std::string& subscription,
                                                             int limit, int64_t before_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "SELECT seq, time_ms, subscription, body FROM activity WHERE subscription = ?1 "
          "AND (?3 <= 0 OR seq < ?3) ORDER BY seq DESC LIMIT ?2");
  if (!st.ok()) return st.Error("prepare list activity");
  st.Bind(1, subscription).Bind(2, static_cast<int64_t>(limit)).Bind(3, before_seq);
  std::vector<ActivityEvent> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ActivityEvent ev;
    ev.seq = st.Int(0);
    ev.time_ms = st.Int(1);
    ev.subscription = st.Text(2);
    ev.body = ParseStored(st.Text(3));
    out.push_back(std::move(ev));
  }
  if (rc != SQLITE_DONE) return st.Error("list activity");
  return out;
}

Result<int64_t> SqliteStore::PruneActivity(int64_t older_than_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "DELETE FROM activity WHERE time_ms < ?");
  if (!st.ok()) return st.Error("prepare prune activity");
  st.Bind(1, older_than_ms);
  if (st.Step() != SQLITE_DONE) return st.Error("prune activity");
  return static_cast<int64_t>(sqlite3_changes(db_));
}

Result<std::optional<std::string>> SqliteStore::GetSetting(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT value FROM meta WHERE name = ?");
  if (!st.ok()) return st.Error("prepare get setting");
  st.Bind(1, name);
  int rc = st.Step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return st.Error("get setting " + name);
  return std::optional<std::string>(st.Text(0));
}

Status SqliteStore::PutSetting(const std::string& name, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "INSERT OR REPLACE INTO meta(name, value) VALUES (?,?)");
  if (!st.ok()) return st.Error("prepare put setting");
  st.Bind(1, name).Bind(2, value);
  if (st.Step() != SQLITE_DONE) return st.Error("put setting " + name);
  return Status::Ok();
}

}  // namespace stratus::store
