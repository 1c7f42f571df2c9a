// SqliteStore: Store on one SQLite database file in WAL mode.
//
// Durability: synchronous=FULL by default (every committed write survives power loss);
// NORMAL survives a crash of the process (kill -9) and is faster. One connection guarded by
// mu_; SQLite itself is opened in serialized mode.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "store/store.h"

struct sqlite3;

namespace stratus::store {

class SqliteStore final : public Store {
 public:
  enum class Durability { kFull, kNormal };
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path,
                                                   Durability durability = Durability::kFull);
  ~SqliteStore() override;

  Result<Record> Get(const std::string& key) override;
  Result<Record> Put(Record rec, const WriteCondition& cond) override;
  Status Delete(const std::string& key, std::optional<std::string> if_match) override;
  Result<Page> List(const std::string& key_prefix, const std::string& type,
                    const std::string& after_key, int limit) override;
  Status PutOperation(const OperationRecord& op) override;
  Result<OperationRecord> GetOperation(const std::string& id) override;
  Result<std::vector<OperationRecord>> ListOperationsWithStatus(const std::string& status) override;
  Status AppendActivity(const ActivityEvent& ev) override;
  Result<std::vector<ActivityEvent>> ListActivity(const std::string& subscription, int limit,
                                                  int64_t before_seq) override;
  Result<int64_t> PruneActivity(int64_t older_than_ms) override;
  Result<std::optional<std::string>> GetSetting(const std::string& name) override;
  Status PutSetting(const std::string& name, const std::string& value) override;

 private:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  Result<Record> GetLocked(const std::string& key);

  std::mutex mu_;  // guards db_ use (one statement sequence at a time)
  sqlite3* db_;
};

}  // namespace stratus::store
