// OperationManager: long-running operations (LROs) with progress, persisted so that a restarted
// daemon can report or finish what a killed one started.
//
// An operation holds an exclusive lock on its resource key (and any extra keys it names) from
// Start() until its function returns: a second write to the same resource gets 409 Conflict
// naming the running operation, never a corrupted state. Synchronous writes take the same locks
// through TryLock().
//
// Threading: work runs on a fixed pool of worker threads; all public methods are thread-safe.
// mu_ guards locks_, queue_, running_ and stopping_.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/resource_id.h"
#include "store/store.h"

namespace stratus::api {

class OperationManager;

// Handed to an operation's function. Thread-compatible (used by that one worker).
class OperationContext {
 public:
  const std::string& id() const { return id_; }
  const ResourceId& resource() const { return resource_; }
  // Reports progress (0..100) with a short message; persisted, visible to pollers.
  void SetProgress(int percent, const std::string& message = {});
  // Extra result fields shown in the operation's "properties" when it ends.
  Json& result() { return result_; }
  // Data a restarted daemon needs to resume/clean up; persisted immediately.
  void SaveInternal(const Json& internal);
  const Json& internal() const { return internal_; }

 private:
  friend class OperationManager;
  OperationManager* mgr_ = nullptr;
  std::string id_;
  ResourceId resource_;
  Json result_ = Json::object();
  Json internal_ = Json::object();
};

using OperationFn = std::function<Status(OperationContext&)>;

// RAII lock on resource keys; released on destruction.
class ResourceLock {
 public:
  ResourceLock() = default;
  ResourceLock(ResourceLock&& o) noexcept : mgr_(o.mgr_), keys_(std::move(o.keys_)) {
    o.mgr_ = nullptr;
  }
  ResourceLock& operator=(ResourceLock&& o) noexcept;
  ~ResourceLock();

 private:
  friend class OperationManager;
  OperationManager* mgr_ = nullptr;
  std::vector<std::string> keys_;
};

class OperationManager {
 public:
  // `base_path` is prefixed to operation ids in URLs (set by the HTTP layer).
  OperationManager(store::Store* store, Clock* clock, int workers);
  ~OperationManager();

  // Takes the locks for `resource` and `extra_keys`, persists the operation as InProgress and
  // queues `fn`. Conflict if any key is held. `name` is e.g. "Stratus.Compute/virtualMachines/write".
  Result<std::string> Start(const ResourceId& resource, const std::string& name, Json internal,
                            OperationFn fn, const std::vector<std::string>& extra_keys = {},
                            const std::string& caller = {});
  // Like Start, but adopts locks the caller already holds (TryLock), so that the caller can
  // write the resource's record before the operation can possibly run.
  Result<std::string> StartLocked(ResourceLock lock, const ResourceId& resource,
                                  const std::string& name, Json internal, OperationFn fn,
                                  const std::string& caller = {});
  // Lock without an operation (synchronous writes). Conflict if held.
  Result<ResourceLock> TryLock(const std::vector<std::string>& keys);
  // The id of the operation holding `key`, or "" if none.
  std::string Holder(const std::string& key);

  Result<store::OperationRecord> Get(const std::string& id);

  // Called at start-up for every operation a previous process left InProgress, by name.
  // The handler returns the outcome to record (OK = Succeeded). If no handler is registered
  // for a name the operation is marked Failed with "interrupted by a daemon restart".
  using RecoveryFn = std::function<Status(const store::OperationRecord&, OperationContext&)>;
  void RegisterRecovery(const std::string& name, RecoveryFn fn);
  // Resumes/reports interrupted operations (runs each through the pool). Call once at start.
  Status RecoverInterrupted();

  // Finishes queued work and joins the workers.
  void Shutdown();
  // Blocks until no operation is queued or running (tests, benchmarks).
  void WaitIdle();

  // Hook called when an operation ends (activity log). Set before use.
  std::function<void(const store::OperationRecord&, const std::string& caller)> on_finish;

 private:
  friend class OperationContext;
  friend class ResourceLock;
  struct Job {
    std::string id;
    std::string caller;
    store::OperationRecord record;
    OperationFn fn;
    std::vector<std::string> keys;
  };
  Result<std::string> StartImpl(const ResourceId& resource, const std::string& name,
                                Json internal, OperationFn fn,
                                const std::vector<std::string>& extra_keys,
                                const std::string& caller, ResourceLock* adopt);
  void Worker();
  void Run(Job& job);
  void Release(const std::vector<std::string>& keys);
  void Persist(OperationContext& ctx, int percent, const std::string& message);

  store::Store* store_;
  Clock* clock_;
  std::mutex mu_;
  std::condition_variable cv_;       // work available / stopping
  std::condition_variable idle_cv_;  // queue drained
  std::map<std::string, std::string> locks_;  // key -> operation id ("sync" for TryLock)
  std::deque<Job> queue_;
  int running_ = 0;
  bool stopping_ = false;
  std::map<std::string, RecoveryFn> recovery_;
  std::mutex persist_mu_;  // serialises read-modify-write of operation records
  std::vector<std::thread> workers_;
};

}  // namespace stratus::api
