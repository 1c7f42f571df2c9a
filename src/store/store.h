// Store: durable state of one region (resources, operations, activity log, settings).
//
// SqliteStore (sqlite_store.h) is the embedded engine; a PostgreSQL engine would implement the
// same interface. Every method is thread-safe and each call is atomic. Keys are lowercased
// resource ids (ResourceId::Key()).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace stratus::store {

struct Record {
  std::string key;        // lowercased id; primary key
  std::string type;       // lowercased full type, e.g. "stratus.compute/virtualmachines"
  Json body;              // the ARM resource as returned by GET (without etag)
  Json internal;          // engine-side state never shown to users (paths, domain names)
  std::string etag;       // set by Put
  int64_t version = 0;    // bumps on every Put
};

struct Page {
  std::vector<Record> records;
  std::string next_key;  // empty when no more
};

// Precondition on a write.
struct WriteCondition {
  std::optional<std::string> if_match;  // etag the record must currently have
  bool must_not_exist = false;          // create only
  bool must_exist = false;              // update only
};

struct OperationRecord {
  std::string id;
  std::string subscription;
  std::string resource_key;
  Json body;  // the operation as the API shows it (status, percentComplete, error, ...)
  Json internal;  // what a restarted daemon needs to resume or clean up
  std::string status;  // "InProgress", "Succeeded", "Failed", "Canceled"
};

struct ActivityEvent {
  int64_t time_ms = 0;
  std::string subscription;
  Json body;
  int64_t seq = 0;  // assigned by AppendActivity, increasing; the paging cursor
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Result<Record> Get(const std::string& key) = 0;
  // Writes `rec` (its etag and version are assigned and returned). PreconditionFailed (412) if
  // `cond` is not met (an If-Match on an absent record included), NotFound if `must_exist` and
  // the record is absent; nothing is changed then.
  virtual Result<Record> Put(Record rec, const WriteCondition& cond = {}) = 0;
  // NotFound if absent; PreconditionFailed on etag mismatch.
  virtual Status Delete(const std::string& key, std::optional<std::string> if_match = {}) = 0;
  // Records whose key starts with `key_prefix` and whose type equals `type` (any type when
  // empty), in key order, after `after_key`, at most `limit`.
  virtual Result<Page> List(const std::string& key_prefix, const std::string& type,
                            const std::string& after_key, int limit) = 0;

  virtual Status PutOperation(const OperationRecord& op) = 0;
  virtual Result<OperationRecord> GetOperation(const std::string& id) = 0;
  virtual Result<std::vector<OperationRecord>> ListOperationsWithStatus(
      const std::string& status) = 0;

  virtual Status AppendActivity(const ActivityEvent& ev) = 0;
  // Newest first, at most `limit`, only events with seq < `before_seq` when it is > 0.
  virtual Result<std::vector<ActivityEvent>> ListActivity(const std::string& subscription,
                                                          int limit, int64_t before_seq = 0) = 0;
  // Deletes events older than `older_than_ms`; returns how many.
  virtual Result<int64_t> PruneActivity(int64_t older_than_ms) = 0;

  virtual Result<std::optional<std::string>> GetSetting(const std::string& name) = 0;
  virtual Status PutSetting(const std::string& name, const std::string& value) = 0;
};

// Reads record `key`, lets `fn` change it (false: no write) and writes it back under its etag,
// again on a concurrent change (ten tries; then Conflict).
inline Status PutWithRetry(Store* store, const std::string& key,
                           const std::function<bool(Record&)>& fn) {
  for (int i = 0; i < 10; ++i) {
    auto rec = store->Get(key);
    if (!rec.ok()) return rec.status();
    if (!fn(*rec)) return Status::Ok();
    WriteCondition c;
    c.if_match = rec->etag;
    auto w = store->Put(*rec, c);
    if (w.ok()) return Status::Ok();
    if (w.status().code() != StatusCode::kPreconditionFailed) return w.status();
  }
  return Conflict("the record '" + key + "' kept changing");
}

// Every record under `prefix` of store type `type` ("" for any), page by page.
inline Result<std::vector<Record>> ListAll(Store* store, const std::string& prefix,
                                           const std::string& type) {
  std::vector<Record> out;
  std::string after;
  for (;;) {
    ASSIGN_OR_RETURN(Page page, store->List(prefix, type, after, 500));
    for (auto& r : page.records) out.push_back(std::move(r));
    if (page.next_key.empty()) break;
    after = page.next_key;
  }
  return out;
}

}  // namespace stratus::store
