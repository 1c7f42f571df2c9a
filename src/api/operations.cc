#include "api/operations.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "api/http_types.h"
#include "core/uuid.h"

namespace stratus::api {

void OperationContext::SetProgress(int percent, const std::string& message) {
  mgr_->Persist(*this, percent, message);
}

void OperationContext::SaveInternal(const Json& internal) {
  internal_ = internal;
  mgr_->Persist(*this, -1, {});
}

ResourceLock& ResourceLock::operator=(ResourceLock&& o) noexcept {
  if (mgr_) mgr_->Release(keys_);
  mgr_ = o.mgr_;
  keys_ = std::move(o.keys_);
  o.mgr_ = nullptr;
  return *this;
}

ResourceLock::~ResourceLock() {
  if (mgr_) mgr_->Release(keys_);
}

OperationManager::OperationManager(store::Store* store, Clock* clock, int workers)
    : store_(store), clock_(clock) {
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { Worker(); });
}

OperationManager::~OperationManager() { Shutdown(); }

void OperationManager::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

void OperationManager::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && running_ == 0; });
}

std::string OperationManager::Holder(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = locks_.find(key);
  return it == locks_.end() ? std::string() : it->second;
}

static Status Busy(const std::string& key, const std::string& holder) {
  return Conflict("Another operation ('" + holder + "') is in progress on '" + key +
                      "'; retry when it has finished.",
                  key, "OperationNotAllowed");
}

Result<ResourceLock> OperationManager::TryLock(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& k : keys) {
    auto it = locks_.find(k);
    if (it != locks_.end()) return Busy(k, it->second);
  }
  for (auto& k : keys) locks_[k] = "synchronous request";
  ResourceLock l;
  l.mgr_ = this;
  l.keys_ = keys;
  return l;
}

void OperationManager::Release(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& k : keys) locks_.erase(k);
}

Result<std::string> OperationManager::Start(const ResourceId& resource, const std::string& name,
                                            Json internal, OperationFn fn,
                                            const std::vector<std::string>& extra_keys,
                                            const std::string& caller) {
  return StartImpl(resource, name, std::move(internal), std::move(fn), extra_keys, caller,
                   nullptr);
}

Result<std::string> OperationManager::StartImpl(const ResourceId& resource,
                                                const std::string& name, Json internal,
                                                OperationFn fn,
                                                const std::vector<std::string>& extra_keys,
                                                const std::string& caller, ResourceLock* adopt) {
  Job job;
  job.id = NewUuid();
  job.caller = caller;
  job.fn = std::move(fn);
  job.keys = extra_keys;
  job.keys.insert(job.keys.begin(), resource.Key());
  int64_t now = clock_->NowMs();
  store::OperationRecord& rec = job.record;
  rec.id = job.id;
  rec.subscription = resource.subscription();
  rec.resource_key = resource.Key();
  rec.status = "InProgress";
  rec.body = {{"id", "/subscriptions/" + resource.subscription() +
                         "/providers/Stratus.Resources/operations/" + job.id},
              {"name", job.id},
              {"operation", name},
              {"resourceId", resource.ToString()},
              {"status", "InProgress"},
              {"percentComplete", 0},
              {"startTime", FormatIso8601(now)}};
  // "keys": every lock the operation holds, re-taken if a restarted daemon resumes it.
  rec.internal = {{"name", name}, {"caller", caller}, {"keys", job.keys},
                  {"data", std::move(internal)}};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Unavailable("The region daemon is shutting down.");
    // Keys the caller already holds (adopt) are ours; any other key must be free.
    for (auto& k : job.keys) {
      if (adopt && std::find(adopt->keys_.begin(), adopt->keys_.end(), k) != adopt->keys_.end())
        continue;
      auto it = locks_.find(k);
      if (it != locks_.end()) return Busy(k, it->second);
    }
    // The caller's held keys become the operation's, atomically.
    if (adopt) adopt->mgr_ = nullptr;
    for (auto& k : job.keys) locks_[k] = job.id;
  }
  Status st = store_->PutOperation(rec);
  if (!st.ok()) {
    Release(job.keys);
    return st;
  }
  std::string id = job.id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return id;
}

Result<std::string> OperationManager::StartLocked(ResourceLock lock, const ResourceId& resource,
                                                  const std::string& name, Json internal,
                                                  OperationFn fn, const std::string& caller) {
  std::vector<std::string> extra;
  for (auto& k : lock.keys_)
    if (k != resource.Key()) extra.push_back(k);
  return StartImpl(resource, name, std::move(internal), std::move(fn), extra, caller, &lock);
}

Result<store::OperationRecord> OperationManager::Get(const std::string& id) {
  return store_->GetOperation(id);
}

void OperationManager::RegisterRecovery(const std::string& name, RecoveryFn fn) {
  std::lock_guard<std::mutex> lock(mu_);
  recovery_[name] = std::move(fn);
}

Status OperationManager::RecoverInterrupted() {
  ASSIGN_OR_RETURN(auto ops, store_->ListOperationsWithStatus("InProgress"));
  for (auto& rec : ops) {
    std::string name = rec.internal.value("name", "");
    RecoveryFn handler;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = recovery_.find(name);
      if (it != recovery_.end()) handler = it->second;
    }
    auto parsed = ResourceId::Parse(rec.body.value("resourceId", ""));
    Job job;
    job.id = rec.id;
    job.caller = rec.internal.value("caller", "");
    job.keys = {rec.resource_key};
    if (rec.internal.contains("keys") && rec.internal["keys"].is_array())
      for (auto& k : rec.internal["keys"])
        if (k.is_string() && k.get<std::string>() != rec.resource_key) job.keys.push_back(k);
    job.record = rec;
    if (handler && parsed.ok()) {
      job.fn = [handler, rec](OperationContext& ctx) { return handler(rec, ctx); };
    } else {
      job.fn = [name](OperationContext&) {
        return Internal("Operation '" + name + "' was interrupted by a restart of stratusd and "
                        "cannot be resumed.");
      };
    }
    spdlog::info("resuming operation {} ({}) on {}", rec.id, name, rec.resource_key);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& k : job.keys) locks_[k] = rec.id;
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
  }
  return Status::Ok();
}

void OperationManager::Worker() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    Run(job);  // releases the job's locks as it records the final status
    {
      std::lock_guard<std::mutex> lock(mu_);
      --running_;
    }
    idle_cv_.notify_all();
  }
}

void OperationManager::Persist(OperationContext& ctx, int percent, const std::string& message) {
  std::lock_guard<std::mutex> lock(persist_mu_);
  auto rec = store_->GetOperation(ctx.id_);
  if (!rec.ok()) return;
  if (percent >= 0) rec->body["percentComplete"] = percent;
  if (!message.empty()) rec->body["message"] = message;
  rec->internal["data"] = ctx.internal_;
  Status st = store_->PutOperation(*rec);
  if (!st.ok()) spdlog::warn("persisting progress of operation {}: {}", ctx.id_, st.ToString());
}

void OperationManager::Run(Job& job) {
  OperationContext ctx;
  ctx.mgr_ = this;
  ctx.id_ = job.id;
  auto rid = ResourceId::Parse(job.record.body.value("resourceId", ""));
  if (rid.ok()) ctx.resource_ = *rid;
  ctx.internal_ = job.record.internal.value("data", Json::object());
  Status st;
  try {
    st = job.fn(ctx);
  } catch (const std::exception& e) {
    st = Internal(std::string("operation failed with an unexpected error: ") + e.what());
  }
  std::lock_guard<std::mutex> lock(persist_mu_);
  auto rec = store_->GetOperation(job.id);
  store::OperationRecord final_rec = rec.ok() ? *rec : job.record;
  final_rec.status = st.ok() ? "Succeeded" : "Failed";
  final_rec.body["status"] = final_rec.status;
  final_rec.body["endTime"] = FormatIso8601(clock_->NowMs());
  if (st.ok()) final_rec.body["percentComplete"] = 100;
  if (!ctx.result_.empty()) final_rec.body["properties"] = ctx.result_;
  if (!st.ok()) final_rec.body["error"] = ErrorBody(st)["error"];
  final_rec.internal["data"] = ctx.internal_;
  Status pst;
  {
    // The final status and the release of the locks are one step as seen by clients: whoever
    // reads "Succeeded" can act on the resource at once without a 409.
    std::lock_guard<std::mutex> lock(mu_);
    pst = store_->PutOperation(final_rec);
    for (auto& k : job.keys) {
      auto it = locks_.find(k);
      if (it != locks_.end() && it->second == job.id) locks_.erase(it);
    }
  }
  if (!pst.ok()) spdlog::error("recording end of operation {}: {}", job.id, pst.ToString());
  if (!st.ok()) spdlog::warn("operation {} failed: {}", job.id, st.ToString());
  if (on_finish) on_finish(final_rec, job.caller);
}

}  // namespace stratus::api
