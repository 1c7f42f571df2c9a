#include "recovery/service/jobs.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "api/resource_util.h"
#include "core/clock.h"
#include "core/http_client.h"
#include "recovery/service/records.h"
#include "recovery/vault/manifest.h"

namespace stratus::recovery::service {

Result<store::Record> JobBook::Create(const ResourceId& vault, const std::string& operation,
                                      const Json& props, const std::string& caller) {
  int64_t now = ctx_.clock->NowMs();
  ResourceId id = vault.Child("backupJobs", vault::NewPointId(now));
  store::Record rec;
  rec.key = id.Key();
  rec.type = api::TypeKey(id);
  rec.body = api::NewResourceBody(id, ctx_.region, Json::object(), caller, now);
  rec.body.erase("tags");
  rec.body["properties"] = props;
  rec.body["properties"]["operation"] = operation;
  rec.body["properties"]["status"] = "Queued";
  rec.body["properties"]["startTime"] = FormatIso8601(now);
  rec.body["properties"]["progress"] = {
      {"bytesDone", 0}, {"bytesTotal", 0}, {"percent", 0}, {"rateBytesPerSecond", 0}};
  return ctx_.store->Put(rec, store::WriteCondition{std::nullopt, true, false});
}

Result<std::string> JobBook::Run(const ResourceId& job, const std::string& operation_name,
                                 const std::string& caller,
                                 std::function<Status(api::OperationContext&)> run) {
  ASSIGN_OR_RETURN(std::string op, ctx_.ops->Start(job, operation_name, Json::object(),
                                                   std::move(run), {}, caller));
  Update(job, [&](Json& p) { p["operationId"] = op; });
  return op;
}

void JobBook::Update(const ResourceId& job, const std::function<void(Json&)>& fn) {
  UpdateProperties(ctx_.store, job, fn);
}

void JobBook::Fail(const ResourceId& job, const Status& st) {
  int64_t now = ctx_.clock->NowMs();
  Json props;
  Update(job, [&](Json& p) {
    p["status"] = "Failed";
    p["endTime"] = FormatIso8601(now);
    p["error"] = api::ErrorBody(st)["error"];
    props = p;
  });
  Alert(job.Parent(), job, props);
}

void JobBook::Alert(const ResourceId& vault_id, const ResourceId& job, const Json& props) {
  auto v = ctx_.store->Get(vault_id.Key());
  if (!v.ok()) return;
  Json hooks = v->body["properties"]["alerts"].value("webhooks", Json::array());
  Json payload = {{"vaultId", vault_id.ToString()},
                  {"jobId", job.ToString()},
                  {"operation", props.value("operation", "")},
                  {"protectedItemId", props.value("protectedItemId", "")},
                  {"error", props.value("error", Json::object())}};
  for (auto& h : hooks) {
    std::string url = h.get<std::string>();
    auto r = HttpPostJson(url, payload);
    if (!r.ok() || r->status >= 300)
      spdlog::warn("alert webhook {} for job {} failed: {}", url, job.name(),
                   r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message());
  }
}

bool JobBook::Nap() {
  std::unique_lock<std::mutex> g(mu_);
  if (stopping_) return false;
  cv_.wait_for(g, std::chrono::milliseconds(300));
  return !stopping_;
}

Result<api::ResourceLock> JobBook::WaitForLock(const std::vector<std::string>& keys) {
  for (;;) {
    auto l = ctx_.ops->TryLock(keys);
    if (l.ok()) return l;
    if (!Nap()) return Unavailable("stratusd is stopping; the job did not start.");
  }
}

Status JobBook::WaitOperation(const std::string& operation_id) {
  for (;;) {
    auto rec = ctx_.ops->Get(operation_id);
    if (!rec.ok()) return rec.status();
    if (rec->status != "InProgress") {
      if (rec->status != "Succeeded")
        return Internal(rec->body["error"].value("message", "operation " + rec->status));
      return Status::Ok();
    }
    if (!Nap()) return Unavailable("stratusd is stopping");
  }
}

void JobBook::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

}  // namespace stratus::recovery::service
