#include "recovery/service/backup_jobs.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "api/resource_util.h"
#include "compute/vm_service.h"
#include "core/clock.h"
#include "core/fs.h"
#include "recovery/policy/retention.h"
#include "recovery/service/records.h"
#include "recovery/service/vm_backup.h"

namespace stratus::recovery::service {

using api::ApiRequest;
using api::ApiResponse;
using api::OperationContext;

Result<ApiResponse> BackupJobs::OnDemand(const ApiRequest& req, const ResourceId& item) {
  const Json& b = req.body.is_object() ? req.body : Json::object();
  RETURN_IF_ERROR(api::RejectUnknownKeys(b, {"retainUntil"}, ""));
  int64_t until = 0;
  if (b.contains("retainUntil")) {
    ASSIGN_OR_RETURN(std::string s, api::GetString(b, "retainUntil"));
    ASSIGN_OR_RETURN(until, ParseIso8601(s, "retainUntil"));
    if (until <= ctx_.clock->NowMs())
      return InvalidArgument("retainUntil must be in the future.", "retainUntil");
  }
  return Start(item, req.caller, until, 0, &req);
}

Status BackupJobs::Scheduled(const ResourceId& item, int64_t scheduled_ms) {
  return Start(item, "scheduler", 0, scheduled_ms, nullptr).status();
}

Result<ApiResponse> BackupJobs::Start(const ResourceId& item_id, const std::string& caller,
                                      int64_t retain_until_ms, int64_t scheduled_ms,
                                      const ApiRequest* req) {
  ASSIGN_OR_RETURN(store::Record item, ctx_.store->Get(item_id.Key()));
  if (item.body["properties"].value("protectionState", "") != "Protected")
    return Conflict("Protection of '" + item_id.name() +
                        "' is stopped; enable it again to back "
                        "up.",
                    item_id.ToString(), "ProtectionStopped");
  ResourceId vault_id = item_id.Parent();
  if (req) {
    // Fail fast on a locked vault rather than queueing a job that cannot run.
    RETURN_IF_ERROR(d_.vaults->Open(vault_id).status());
  }
  Json props = {{"entityFriendlyName", item.body["properties"].value("friendlyName", "")},
                {"protectedItemId", item.body.value("id", "")},
                {"onDemand", scheduled_ms == 0}};
  if (retain_until_ms) props["retainUntil"] = FormatIso8601(retain_until_ms);
  if (scheduled_ms) props["scheduledTime"] = FormatIso8601(scheduled_ms);
  ASSIGN_OR_RETURN(store::Record job, d_.jobs->Create(vault_id, "Backup", props, caller));
  ASSIGN_OR_RETURN(ResourceId job_id, ResourceId::Parse(job.body.value("id", "")));
  ASSIGN_OR_RETURN(std::string op, d_.jobs->Run(job_id, kBackupOperation, caller,
                                                [this, job_id](OperationContext& octx) {
                                                  return Run(job_id, octx);
                                                }));
  if (!req) return ApiResponse::NoContent(202);
  return api::AcceptedResponse(*req, item_id.subscription(), op, api::ToArm(job), 202);
}

namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Status BackupJobs::Run(const ResourceId& job_id, OperationContext& octx) {
  Status st = [&]() -> Status {
    ASSIGN_OR_RETURN(store::Record job, ctx_.store->Get(job_id.Key()));
    ASSIGN_OR_RETURN(ResourceId item_id,
                     ResourceId::Parse(job.body["properties"].value("protectedItemId", "")));
    ASSIGN_OR_RETURN(store::Record item, ctx_.store->Get(item_id.Key()));
    ASSIGN_OR_RETURN(ResourceId vm_id,
                     ResourceId::Parse(item.body["properties"].value("sourceResourceId", "")));
    // At most one job per VM: wait (Queued) for the item's and the VM's locks.
    octx.SetProgress(0, "queued");
    // "/datapath": the VM's one backup job slot, which replication cycles take too.
    ASSIGN_OR_RETURN(api::ResourceLock lock, d_.jobs->WaitForLock({item_id.Key(), vm_id.Key(),
                                                                   vm_id.Key() + "/datapath"}));
    int64_t started = ctx_.clock->NowMs();
    d_.jobs->Update(job_id, [&](Json& p) {
      p["status"] = "InProgress";
      p["startTime"] = FormatIso8601(started);
    });
    auto vm = ctx_.store->Get(vm_id.Key());
    if (!vm.ok())
      return NotFound("The protected VM '" + vm_id.ToString() + "' no longer exists.",
                      vm_id.ToString(), "SourceVmNotFound");
    ASSIGN_OR_RETURN(vault::Vault * v, d_.vaults->Open(item_id.Parent()));
    ASSIGN_OR_RETURN(policy::BackupPolicy pol, PolicyOf(ctx_.store, item));

    // The VM's disks.
    const Json& sp = vm->body["properties"]["storageProfile"];
    VmBackupRequest breq;
    breq.domain = vm->internal.value("domain", "");
    auto info = d_.hv->Info(breq.domain);
    breq.running = info.ok() && info->state == compute::PowerState::kRunning;
    auto add_disk = [&](const Json& d, int lun) -> Status {
      std::string did_s = d["managedDisk"].value("id", "");
      ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(did_s));
      auto path = d_.disks->PathOf(did);
      if (!path.ok())
        return NotFound("Disk '" + did.name() + "' of VM '" + vm_id.name() + "' vanished.", did_s,
                        "DiskNotFound");
      VmDisk vd;
      vd.name = DiskKeyName(lun);
      vd.lun = lun;
      vd.path = *path;
      vd.target_dev = std::string("vd") + static_cast<char>('a' + (lun + 1));
      breq.disks.push_back(vd);
      return Status::Ok();
    };
    RETURN_IF_ERROR(add_disk(sp["osDisk"], -1));
    for (auto& d : sp["dataDisks"]) RETURN_IF_ERROR(add_disk(d, d.value("lun", 0)));
    // Its network interfaces too, so that a restore can give the new VM the same ones.
    breq.vm_config = VmConfigWithNetwork(*vm, d_.networks, /*with_vnets=*/false);
    breq.metadata = {{"protectedItemId", item.body.value("id", "")}, {"jobId", job_id.ToString()}};
    breq.wanted = pol.consistency;
    breq.scratch_dir = JoinPath(ctx_.data_dir, "scratch/" + job_id.name());
    int64_t t0 = WallMs();
    breq.progress = [&](uint64_t done, uint64_t total) {
      static thread_local int64_t last = 0;
      int64_t now = WallMs();
      if (now - last < 1000 && done < total) return;
      last = now;
      double secs = std::max<int64_t>(1, now - t0) / 1000.0;
      d_.jobs->Update(job_id, [&](Json& p) {
        p["progress"] = {{"bytesDone", done},
                         {"bytesTotal", total},
                         {"percent", total ? static_cast<int>(done * 100 / total) : 0},
                         {"rateBytesPerSecond", static_cast<uint64_t>(done / secs)}};
      });
      octx.SetProgress(total ? static_cast<int>(5 + done * 90 / total) : 5, "reading disks");
    };
    // The previous point: the newest of this item.
    const vault::RecoveryPoint* prev = nullptr;
    vault::RecoveryPoint prev_point;
    ASSIGN_OR_RETURN(auto pts, ListAll(ctx_.store, item_id.Key() + "/recoverypoints/", kPointType));
    if (!pts.empty()) {
      // Newest by capture time (names sort by second only).
      auto newest = std::max_element(pts.begin(), pts.end(),
                                     [](const store::Record& a, const store::Record& b) {
                                       return a.body["properties"].value("recoveryPointTime", "") <
                                              b.body["properties"].value("recoveryPointTime", "");
                                     });
      auto p = v->ReadPoint(newest->body.value("name", ""));
      if (p.ok()) {
        prev_point = std::move(p).value();
        prev = &prev_point;
      } else {
        spdlog::warn("backup {}: previous point unreadable ({}); taking a full backup",
                     job_id.name(), p.status().ToString());
      }
    }
    breq.previous = prev;
    auto res = BackupVm(*v, d_.hv, d_.disks->engine(), breq);
    RemoveTree(breq.scratch_dir);
    if (!res.ok()) return res.status();

    // Index the point, update item and job.
    int64_t now = ctx_.clock->NowMs();
    ResourceId point_id = item_id.Child("recoveryPoints", res->point.point_id);
    store::Record pr;
    pr.key = point_id.Key();
    pr.type = api::TypeKey(point_id);
    pr.body = {
        {"id", point_id.ToString()}, {"name", res->point.point_id}, {"type", point_id.FullType()}};
    Json disks_out = Json::array();
    for (auto& d : res->point.disks) {
      int lun = d.name == "osdisk" ? -1 : std::atoi(d.name.c_str() + 3);
      disks_out.push_back({{"name", d.name}, {"lun", lun}, {"sizeBytes", d.size}});
    }
    pr.body["properties"] = {{"recoveryPointTime", FormatIso8601(res->point.created_ms)},
                             {"recoveryPointType", res->backup_type},
                             {"consistency", res->consistency},
                             {"consistencyReason", res->consistency_reason},
                             {"disks", disks_out},
                             {"sourceVmSize", breq.vm_config.value("vmSize", "")},
                             {"networkInterfaces",
                              breq.vm_config.value("networkInterfaces", Json::array())},
                             {"networkInterfacesComplete",
                              !breq.vm_config.contains("networkInterfacesMissing")},
                             {"sourceResourceId", vm->body.value("id", "")},
                             {"onDemand", job.body["properties"].value("onDemand", true)},
                             {"jobId", job_id.ToString()},
                             {"bytesAdded", res->bytes_added}};
    if (job.body["properties"].contains("retainUntil"))
      pr.body["properties"]["retainUntil"] = job.body["properties"]["retainUntil"];
    if (job.body["properties"].contains("scheduledTime"))
      pr.body["properties"]["scheduledTime"] = job.body["properties"]["scheduledTime"];
    // The VM's user script may hold secrets: it stays in the state store (with the VM's own
    // copy), never in the vault, whose manifests are signed but not encrypted. A restored VM
    // gets it back.
    pr.internal = {{"customData", vm->internal.value("customData", "")}};
    RETURN_IF_ERROR(ctx_.store->Put(pr).status());
    ASSIGN_OR_RETURN(item, ctx_.store->Get(item_id.Key()));
    item.body["properties"]["lastBackupTime"] = FormatIso8601(res->point.created_ms);
    item.body["properties"]["lastBackupStatus"] = "Completed";
    item.body["properties"]["lastRecoveryPointId"] = point_id.ToString();
    RETURN_IF_ERROR(ctx_.store->Put(item).status());
    Json final_props;
    d_.jobs->Update(job_id, [&](Json& p) {
      p["status"] = "Completed";
      StampJobEnd(p, started, now);
      p["bytesRead"] = res->bytes_read;
      p["bytesAdded"] = res->bytes_added;
      p["backupType"] = res->backup_type;
      if (!res->fallback_reason.empty()) p["fallbackReason"] = res->fallback_reason;
      p["consistency"] = res->consistency;
      if (!res->consistency_reason.empty()) p["consistencyReason"] = res->consistency_reason;
      if (!res->hooks.empty()) p["guestHooks"] = res->hooks;
      p["recoveryPointId"] = point_id.ToString();
      p["disks"] = res->disk_stats;
      p["progress"]["bytesDone"] = p["progress"].value("bytesTotal", uint64_t{0});
      p["progress"]["percent"] = 100;
      final_props = p;
    });
    octx.result() = final_props;
    Status pst = Prune(item_id, pol, now);
    if (!pst.ok()) spdlog::warn("prune of {}: {}", item_id.ToString(), pst.ToString());
    d_.redundancy->CopySoon(item_id.Parent(), "backup");  // never fails the backup
    return Status::Ok();
  }();
  if (!st.ok()) {
    d_.jobs->Fail(job_id, st);
    MarkItemFailed(job_id);
  }
  return st;
}

void BackupJobs::MarkItemFailed(const ResourceId& job_id) {
  auto job = ctx_.store->Get(job_id.Key());
  if (!job.ok()) return;
  auto item_id = ResourceId::Parse(job->body["properties"].value("protectedItemId", ""));
  if (!item_id.ok()) return;
  auto item = ctx_.store->Get(item_id->Key());
  if (!item.ok()) return;
  item->body["properties"]["lastBackupStatus"] = "Failed";
  ctx_.store->Put(*item);
}

Status BackupJobs::Prune(const ResourceId& item_id, const policy::BackupPolicy& pol,
                         int64_t now_ms) {
  ASSIGN_OR_RETURN(auto pts, ListAll(ctx_.store, item_id.Key() + "/recoverypoints/", kPointType));
  std::vector<policy::PointInfo> infos;
  std::map<std::string, std::string> key_of;
  for (auto& p : pts) {
    policy::PointInfo pi;
    pi.id = p.body.value("name", "");
    const Json& pp = p.body["properties"];
    ASSIGN_OR_RETURN(pi.time_ms,
                     ParseIso8601(pp.value("recoveryPointTime", ""), "recoveryPointTime"));
    pi.on_demand = pp.value("onDemand", true);
    if (pp.contains("retainUntil")) {
      ASSIGN_OR_RETURN(pi.retain_until_ms,
                       ParseIso8601(pp.value("retainUntil", ""), "retainUntil"));
    }
    if (pp.contains("scheduledTime")) {
      ASSIGN_OR_RETURN(pi.scheduled_ms,
                       ParseIso8601(pp.value("scheduledTime", ""), "scheduledTime"));
    }
    key_of[pi.id] = p.key;
    infos.push_back(pi);
  }
  auto result = policy::Prune(pol, infos, now_ms);
  if (result.expire.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(vault::Vault * v, d_.vaults->Open(item_id.Parent()));
  for (auto& e : result.expire) {
    if (d_.instant->PointInUse(e.id)) continue;  // an instant restore serves it; next prune
    Status st = v->DeletePoint(e.id);
    if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
    RETURN_IF_ERROR(ctx_.store->Delete(key_of[e.id]));
    spdlog::info("retention: expired recovery point {} of {}", e.id, item_id.ToString());
  }
  // Free the chunks only the expired points held.
  auto gc = v->Gc();
  if (!gc.ok()) spdlog::warn("vault gc after prune: {}", gc.status().ToString());
  return Status::Ok();
}

void BackupJobs::RegisterRecovery() {
  ctx_.ops->RegisterRecovery(
      kBackupOperation, [this](const store::OperationRecord& op, OperationContext&) -> Status {
        Status st = Internal("The job was interrupted by a restart of stratusd; run it again.");
        auto id = ResourceId::Parse(op.body.value("resourceId", ""));
        if (!id.ok()) return st;
        RemoveTree(JoinPath(ctx_.data_dir, "scratch/" + id->name()));
        d_.jobs->Fail(*id, st);
        MarkItemFailed(*id);
        return st;
      });
}

}  // namespace stratus::recovery::service
