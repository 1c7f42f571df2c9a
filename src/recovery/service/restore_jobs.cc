#include "recovery/service/restore_jobs.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "api/resource_util.h"
#include "compute/vm_sizes.h"
#include "core/clock.h"
#include "core/fs.h"
#include "recovery/service/records.h"
#include "recovery/service/vm_backup.h"

namespace stratus::recovery::service {

using api::ApiRequest;
using api::ApiResponse;
using api::OperationContext;

namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RestoreJobs::RestoreJobs(api::RegionContext ctx, Deps deps)
    : ctx_(std::move(ctx)),
      d_(deps),
      instant_(std::make_unique<InstantRestore>(ctx_, deps.hv, deps.disks, deps.vaults)),
      network_(ctx_, deps.networks) {}

RestoreJobs::~RestoreJobs() { Stop(); }

void RestoreJobs::Stop() {
  if (instant_) instant_->Stop();
}

Result<ApiResponse> RestoreJobs::Start(const ApiRequest& req, const ResourceId& point_id) {
  const Json& b = req.body.is_object() ? req.body : Json::object();
  RETURN_IF_ERROR(api::RejectUnknownKeys(b,
                                         {"restoreType", "targetResourceGroup", "vmName", "vmSize",
                                          "disks", "diskNamePrefix", "instant", "networkProfile"},
                                         ""));
  ASSIGN_OR_RETURN(store::Record point, ctx_.store->Get(point_id.Key()));
  ASSIGN_OR_RETURN(std::string type, api::GetString(b, "restoreType"));
  ASSIGN_OR_RETURN(std::string rg,
                   api::GetString(b, "targetResourceGroup", point_id.resource_group()));
  RETURN_IF_ERROR(ValidateResourceGroupName(rg));
  ResourceId group = ResourceId::Group(point_id.subscription(), rg);
  RETURN_IF_ERROR(api::CheckGroupExists(ctx_.store, group));
  ResourceId vault_id = point_id.Parent().Parent();
  RETURN_IF_ERROR(d_.vaults->Open(vault_id).status());
  // Which disks.
  std::vector<std::string> all;
  for (auto& d : point.body["properties"]["disks"]) all.push_back(d.value("name", ""));
  std::vector<std::string> chosen = all;
  if (b.contains("disks")) {
    if (!b["disks"].is_array() || b["disks"].empty())
      return InvalidArgument("'disks' must be a non-empty list of disk names of the point (" +
                                 fmt::format("{}", fmt::join(all, ", ")) + ").",
                             "disks");
    chosen.clear();
    for (auto& d : b["disks"]) {
      std::string n = d.is_string() ? d.get<std::string>() : "";
      if (std::find(all.begin(), all.end(), n) == all.end())
        return InvalidArgument("The recovery point has no disk '" + n + "'; it has " +
                                   fmt::format("{}", fmt::join(all, ", ")) + ".",
                               "disks");
      if (std::find(chosen.begin(), chosen.end(), n) != chosen.end())
        return InvalidArgument("Disk '" + n + "' is listed twice.", "disks");
      chosen.push_back(n);
    }
  }
  Json params = {{"restoreType", type},
                 {"targetResourceGroup", rg},
                 {"disks", chosen},
                 {"recoveryPointId", point_id.ToString()}};
  std::vector<std::string> disk_names;
  if (EqualsIgnoreCase(type, "AlternateLocation")) {
    params["restoreType"] = "AlternateLocation";
    ASSIGN_OR_RETURN(std::string vm_name, api::GetString(b, "vmName"));
    RETURN_IF_ERROR(ValidateResourceName(vm_name, "VM", 64));
    ResourceId vm = ResourceId::Resource(point_id.subscription(), rg, "Stratus.Compute",
                                         "virtualMachines", vm_name);
    if (ctx_.store->Get(vm.Key()).ok())
      return Conflict("VM '" + vm_name + "' already exists in resource group '" + rg +
                          "'; choose another name.",
                      "vmName", "ResourceExists");
    if (std::find(chosen.begin(), chosen.end(), "osdisk") == chosen.end())
      return InvalidArgument("A new VM needs its OS disk: include 'osdisk' in 'disks'.", "disks");
    std::string size = point.body["properties"].value("sourceVmSize", "");
    if (b.contains("vmSize")) {
      ASSIGN_OR_RETURN(size, api::GetString(b, "vmSize"));
    }
    ASSIGN_OR_RETURN(compute::VmSize vs, compute::FindVmSize(size));
    if (static_cast<int>(chosen.size()) - 1 > vs.max_data_disks)
      return InvalidArgument(
          "VM size '" + vs.name + "' allows " + std::to_string(vs.max_data_disks) +
              " data disks; the restore has " + std::to_string(chosen.size() - 1) + ".",
          "vmSize", "TooManyDataDisks");
    params["vmName"] = vm_name;
    params["vmSize"] = vs.name;
    ASSIGN_OR_RETURN(params["network"],
                     network_.Plan(b, point.body["properties"].value("networkInterfaces", Json::array()),
                                   vm, vs));
    if (!point.body["properties"].value("networkInterfacesComplete", true) &&
        !b.contains("networkProfile"))
      params["network"]["notes"].push_back(
          "The recovery point lacks some of the VM's network interfaces (they could not be read "
          "when it was taken): the VM gets only those it recorded; pass a networkProfile to give "
          "it others.");
    if (b.contains("instant")) {
      if (!b["instant"].is_boolean())
        return InvalidArgument("'instant' must be true or false.", "instant");
      params["instant"] = b["instant"].get<bool>();
    }
    for (auto& d : chosen)
      disk_names.push_back(d == "osdisk" ? vm_name + "_OsDisk"
                                         : vm_name + "_DataDisk_" + d.substr(3));
  } else if (EqualsIgnoreCase(type, "RestoreDisks")) {
    params["restoreType"] = "RestoreDisks";
    ASSIGN_OR_RETURN(std::string prefix, api::GetString(b, "diskNamePrefix"));
    RETURN_IF_ERROR(ValidateResourceName(prefix, "disk name prefix", 60));
    for (auto& d : chosen) disk_names.push_back(prefix + "-" + d);
  } else if (EqualsIgnoreCase(type, "OriginalLocation")) {
    // The VM keeps its identity; its disks' contents are replaced by the point's.
    params["restoreType"] = "OriginalLocation";
    std::string src = point.body["properties"].value("sourceResourceId", "");
    ASSIGN_OR_RETURN(ResourceId vm_id, ResourceId::Parse(src));
    auto vm = ctx_.store->Get(vm_id.Key());
    if (!vm.ok())
      return NotFound("The source VM '" + src +
                          "' no longer exists; restore as a new VM "
                          "(AlternateLocation) instead.",
                      "restoreType", "SourceVmNotFound");
    const Json& sp = vm->body["properties"]["storageProfile"];
    Json in_place = Json::array();
    for (auto& d : chosen) {
      std::string disk_id;
      if (d == "osdisk") {
        disk_id = sp["osDisk"]["managedDisk"].value("id", "");
      } else {
        for (auto& dd : sp["dataDisks"])
          if ("lun" + std::to_string(dd.value("lun", -1)) == d)
            disk_id = dd["managedDisk"].value("id", "");
      }
      if (disk_id.empty())
        return Conflict("VM '" + vm_id.name() + "' has no disk at " + d +
                            " any more; choose the "
                            "disks to restore with 'disks'.",
                        "disks", "DiskNotFound");
      in_place.push_back({{"disk", d}, {"diskId", disk_id}});
    }
    params["targets"] = in_place;
    params["vmId"] = vm->body.value("id", src);
  } else {
    return InvalidArgument(
        "restoreType must be AlternateLocation, RestoreDisks or "
        "OriginalLocation.",
        "restoreType");
  }
  if (b.contains("networkProfile") && !params.contains("network"))
    return InvalidArgument("'networkProfile' is for a restore as a new VM: use restoreType "
                           "AlternateLocation.",
                           "networkProfile");
  if (b.value("instant", false) && !params.value("instant", false))
    return InvalidArgument("'instant' restores start a new VM: use restoreType AlternateLocation.",
                           "instant");
  Json targets = Json::array();
  for (size_t i = 0; i < disk_names.size(); ++i) {
    ResourceId did = ResourceId::Resource(point_id.subscription(), rg, "Stratus.Storage", "disks",
                                          disk_names[i]);
    RETURN_IF_ERROR(ValidateResourceName(did.name(), "disk", 80));
    if (ctx_.store->Get(did.Key()).ok())
      return Conflict("Disk '" + did.name() + "' already exists in resource group '" + rg + "'.",
                      "disks", "ResourceExists");
    targets.push_back({{"disk", chosen[i]}, {"diskId", did.ToString()}});
  }
  if (!params.contains("targets")) params["targets"] = targets;
  std::string source_vm = point.body["properties"].value("sourceResourceId", "");
  Json props = {{"entityFriendlyName", source_vm.substr(source_vm.rfind('/') + 1)},
                {"sourceResourceId", source_vm},
                {"protectedItemId", point_id.Parent().ToString()},
                {"recoveryPointId", point_id.ToString()},
                {"restoreType", params["restoreType"]}};
  if (params.value("instant", false)) props["instant"] = true;
  ASSIGN_OR_RETURN(store::Record job, d_.jobs->Create(vault_id, "Restore", props, req.caller));
  ASSIGN_OR_RETURN(ResourceId job_id, ResourceId::Parse(job.body.value("id", "")));
  job.internal = {{"params", params}};
  RETURN_IF_ERROR(ctx_.store->Put(job).status());
  ASSIGN_OR_RETURN(std::string op, d_.jobs->Run(job_id, kRestoreOperation, req.caller,
                                                [this, job_id](OperationContext& octx) {
                                                  return Run(job_id, octx);
                                                }));
  return api::AcceptedResponse(req, point_id.subscription(), op, api::ToArm(job), 202);
}

Status RestoreJobs::Run(const ResourceId& job_id, OperationContext& octx) {
  Status st = [&]() -> Status {
    ASSIGN_OR_RETURN(store::Record job, ctx_.store->Get(job_id.Key()));
    const Json params = job.internal.value("params", Json::object());
    ASSIGN_OR_RETURN(ResourceId point_id, ResourceId::Parse(params.value("recoveryPointId", "")));
    ResourceId vault_id = point_id.Parent().Parent();
    ASSIGN_OR_RETURN(vault::Vault * v, d_.vaults->Open(vault_id));
    ASSIGN_OR_RETURN(vault::RecoveryPoint point, v->ReadPoint(point_id.name()));
    int64_t started = ctx_.clock->NowMs();
    d_.jobs->Update(job_id, [&](Json& p) { p["status"] = "InProgress"; });
    if (params.value("restoreType", "") == "OriginalLocation") {
      RETURN_IF_ERROR(RestoreInPlace(job_id, params, *v, point, octx));
      int64_t now = ctx_.clock->NowMs();
      Json final_props;
      d_.jobs->Update(job_id, [&](Json& p) {
        p["status"] = "Completed";
        StampJobEnd(p, started, now);
        p["result"] = {{"vmId", params.value("vmId", "")}};
        final_props = p;
      });
      octx.result() = final_props;
      return Status::Ok();
    }
    uint64_t total = 0;
    for (auto& t : params["targets"]) {
      const vault::DiskIndex* d = point.FindDisk(t.value("disk", ""));
      if (!d) return NotFound("The recovery point has no disk '" + t.value("disk", "") + "'.");
      total += d->size;
    }
    uint64_t base = 0;
    int64_t t0 = WallMs();
    std::string caller = job.body["systemData"].value("createdBy", "");
    // The new VM's network interfaces first: a refused address fails the restore before any
    // disk is read.
    const bool new_vm = params.value("restoreType", "") == "AlternateLocation";
    if (new_vm) {
      octx.SetProgress(1, "creating network interfaces");
      Status made = network_.Make(params.value("network", Json::object()),
                                  RestoreNetwork::Creator(caller, job_id.name()));
      if (!made.ok()) {
        RemoveMade(job_id);
        return made;
      }
    }
    // From here until the VM exists, a failure removes what the restore made: the disks it
    // restored so far, its network interfaces and public IPs.
    Json disk_ids = Json::object();
    auto fail = [&](const Status& st) {
      instant_->Abandon(job_id);
      for (auto& [disk, id] : disk_ids.items()) {
        auto did = ResourceId::Parse(id.get<std::string>());
        Status gone = did.ok() ? d_.disks->DeleteDisk(*did) : did.status();
        if (!gone.ok() && gone.code() != StatusCode::kNotFound)
          spdlog::warn("restore {}: could not remove disk {} it made: {}", job_id.name(),
                       id.get<std::string>(), gone.ToString());
      }
      if (new_vm) RemoveMade(job_id);
      return st;
    };
    for (auto& t : params["targets"]) {
      std::string disk = t.value("disk", "");
      ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(t.value("diskId", "")));
      const vault::DiskIndex* d = point.FindDisk(disk);
      std::string tmp =
          JoinPath(ctx_.data_dir, "disks/restore-" + job_id.name() + "-" + disk + ".qcow2");
      RemoveFile(tmp);
      RETURN_IF_ERROR(MakeDirs(JoinPath(ctx_.data_dir, "disks"), 0711));
      const bool instant = params.value("instant", false);
      Status rs = instant ? instant_->PrepareDisk(job_id, *v, point, disk, tmp)
                          : RestoreVmDisk(*v, point, disk, tmp, [&](uint64_t done, uint64_t) {
                              static thread_local int64_t last = 0;
                              int64_t now = WallMs();
                              if (now - last < 1000) return;
                              last = now;
                              uint64_t all = base + done;
                              double secs = std::max<int64_t>(1, now - t0) / 1000.0;
                              d_.jobs->Update(job_id, [&](Json& p) {
                                p["progress"] = {
                                    {"bytesDone", all},
                                    {"bytesTotal", total},
                                    {"percent", total ? static_cast<int>(all * 100 / total) : 0},
                                    {"rateBytesPerSecond", static_cast<uint64_t>(all / secs)}};
                              });
                              octx.SetProgress(total ? static_cast<int>(all * 80 / total) : 0,
                                               "restoring disks");
                            });
      if (!rs.ok()) {
        RemoveFile(tmp);
        return fail(rs);
      }
      base += d->size;
      storage::DiskSpec spec;
      spec.id = did;
      spec.location = ctx_.region;
      std::string sku = "Standard_LRS";
      if (disk == "osdisk") sku = point.vm_config["osDisk"].value("sku", sku);
      for (auto& dd : point.vm_config.value("dataDisks", Json::array()))
        if ("lun" + std::to_string(dd.value("lun", -2)) == disk) sku = dd.value("sku", sku);
      spec.sku = sku;
      spec.option = storage::CreateOption::kAdopt;
      spec.source_path = tmp;
      spec.creation_data = {{"createOption", "Restore"}, {"sourceResourceId", point_id.ToString()}};
      // The name was free when the restore was accepted; a disk made there since is someone
      // else's: never adopted, never removed by this job's cleanup.
      if (ctx_.store->Get(did.Key()).ok()) {
        RemoveFile(tmp);
        return fail(Conflict("Disk '" + did.name() + "' was created while the restore ran.",
                             did.ToString(), "ResourceExists"));
      }
      auto made = d_.disks->EnsureDisk(spec, caller);
      if (!made.ok()) {
        RemoveFile(tmp);
        return fail(made.status());
      }
      disk_ids[disk] = did.ToString();
    }
    Json result = {{"disks", disk_ids}};
    if (params.value("restoreType", "") == "AlternateLocation") {
      octx.SetProgress(85, "creating the VM");
      std::string vm_name = params.value("vmName", "");
      ResourceId vm =
          ResourceId::Resource(point_id.subscription(), params.value("targetResourceGroup", ""),
                               "Stratus.Compute", "virtualMachines", vm_name);
      Json data = Json::array();
      for (auto& [disk, id] : disk_ids.items())
        if (disk != "osdisk")
          data.push_back({{"lun", std::atoi(disk.c_str() + 3)},
                          {"createOption", "Attach"},
                          {"deleteOption", "Delete"},
                          {"managedDisk", {{"id", id}}}});
      std::string custom_data;
      if (auto prec = ctx_.store->Get(point_id.Key()); prec.ok())
        if (prec->internal.is_object()) custom_data = prec->internal.value("customData", "");
      Json body = {{"location", ctx_.region},
                   {"tags", point.vm_config.value("tags", Json::object())},
                   {"properties",
                    {{"hardwareProfile", {{"vmSize", params.value("vmSize", "")}}},
                     {"storageProfile",
                      {{"imageReference", {{"id", point.vm_config.value("imageReference", "")}}},
                       {"osDisk",
                        {{"createOption", "Attach"},
                         {"deleteOption", "Delete"},
                         {"managedDisk", {{"id", disk_ids.value("osdisk", "")}}}}},
                       {"dataDisks", data}}},
                     {"osProfile", {{"computerName", vm_name}, {"customData", custom_data}}}}}};
      const Json net = params.value("network", Json::object());
      if (!net.value("nics", Json::array()).empty())
        body["properties"]["networkProfile"] = RestoreNetwork::VmNetworkProfile(net);
      // Create-only: a VM of that name made while the restore ran is left alone.
      store::WriteCondition create_only;
      create_only.must_not_exist = true;
      auto applied = d_.vms->Apply(vm, body, caller, create_only);
      if (!applied.ok()) return fail(applied.status());
      const std::string op = applied->operation;
      Status created = op.empty() ? Status::Ok() : d_.jobs->WaitOperation(op);
      if (!created.ok()) {
        // The VM record exists (Failed): delete it with the disks (their deleteOption is
        // Delete), which lets go of the NICs; then remove the NICs and public IPs the restore
        // made, so that a failed restore leaves nothing behind.
        instant_->Abandon(job_id);
        std::string left;
        auto del = d_.vms->Delete(vm, /*delete_disks=*/1, caller);
        Status deleted = del.ok() ? d_.jobs->WaitOperation(*del) : del.status();
        if (deleted.ok()) {
          disk_ids = Json::object();  // gone with the VM
          fail(Status::Ok());
        } else {
          left = " The failed VM could not be removed (" + deleted.message() +
                 "); delete it, then its network interfaces.";
          spdlog::warn("restore {}: {}", job_id.name(), left);
        }
        return Status(created.code(), created.arm_code(),
                      "The restored VM could not be created: " + created.message() + left);
      }
      result["vmId"] = vm.ToString();
      if (!net.value("nics", Json::array()).empty())
        result["networkInterfaces"] = network_.Summary(net);
      if (!net.value("notes", Json::array()).empty()) result["notes"] = net["notes"];
      if (params.value("instant", false))
        RETURN_IF_ERROR(instant_->Fill(job_id, point_id, vm, params["targets"], started, octx));
    }
    int64_t now = ctx_.clock->NowMs();
    Json final_props;
    d_.jobs->Update(job_id, [&](Json& p) {
      p["status"] = "Completed";
      StampJobEnd(p, started, now);
      p["bytesRestored"] = total;
      p["result"] = result;
      p["progress"] = {
          {"bytesDone", total},
          {"bytesTotal", total},
          {"percent", 100},
          {"rateBytesPerSecond",
           static_cast<uint64_t>(total / (std::max<int64_t>(1, WallMs() - t0) / 1000.0))}};
      final_props = p;
    });
    octx.result() = final_props;
    return Status::Ok();
  }();
  // A suspended instant restore goes on at the next start (InstantRestore::Start).
  if (!st.ok() && st.arm_code() != kInstantRestoreSuspended) d_.jobs->Fail(job_id, st);
  return st;
}

void RestoreJobs::RemoveMade(const ResourceId& job_id) {
  auto job = ctx_.store->Get(job_id.Key());
  if (!job.ok() || !job->internal.is_object()) return;
  const Json& sys = job->body.value("systemData", Json::object());
  network_.RemoveMade(
      job->internal.value("params", Json::object()).value("network", Json::object()),
      RestoreNetwork::Creator(sys.is_object() ? sys.value("createdBy", "") : "", job_id.name()));
}

Status RestoreJobs::VmAction(const ResourceId& vm, const std::string& action,
                             const std::string& caller) {
  ASSIGN_OR_RETURN(std::string op, d_.vms->Act(vm, action, caller));
  return d_.jobs->WaitOperation(op);
}

Status RestoreJobs::RestoreInPlace(const ResourceId& job_id, const Json& params, vault::Vault& v,
                                   const vault::RecoveryPoint& point, OperationContext& octx) {
  ASSIGN_OR_RETURN(ResourceId vm_id, ResourceId::Parse(params.value("vmId", "")));
  ASSIGN_OR_RETURN(store::Record vm, ctx_.store->Get(vm_id.Key()));
  std::string dom = vm.internal.value("domain", "");
  auto info = d_.hv->Info(dom);
  bool was_running = info.ok() && info->state == compute::PowerState::kRunning;
  const std::string caller = "restore " + job_id.name();
  // 1. Restore every disk next to its target while the VM still runs.
  std::vector<std::pair<std::string, std::string>> swaps;  // restored file -> disk file
  auto cleanup = [&] {
    for (auto& sw : swaps) RemoveFile(sw.first);
  };
  int i = 0;
  const int n = static_cast<int>(params["targets"].size());
  for (auto& t : params["targets"]) {
    std::string disk = t.value("disk", "");
    ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(t.value("diskId", "")));
    auto path = d_.disks->PathOf(did);
    if (!path.ok()) {
      cleanup();
      return path.status();
    }
    std::string tmp = *path + ".restoring";
    RemoveFile(tmp);
    octx.SetProgress(5 + 60 * i++ / std::max(1, n), "restoring " + disk);
    Status rs = RestoreVmDisk(v, point, disk, tmp);
    if (!rs.ok()) {
      RemoveFile(tmp);
      cleanup();
      return rs;
    }
    swaps.push_back({tmp, *path});
  }
  // 2. Stop the VM (gracefully), swap the files under the VM's lock, start it again.
  if (was_running) {
    octx.SetProgress(70, "stopping the VM");
    Status st = VmAction(vm_id, "poweroff", caller);
    if (!st.ok()) {
      cleanup();
      return st;
    }
  }
  {
    auto lock = d_.jobs->WaitForLock({vm_id.Key()});
    if (!lock.ok()) {
      cleanup();
      return lock.status();
    }
    // The disks' change history ends here: drop the checkpoints of the old contents.
    if (auto cps = d_.hv->ListCheckpoints(dom); cps.ok())
      for (auto& cp : *cps) d_.hv->DeleteCheckpoint(dom, cp);
    octx.SetProgress(80, "replacing the disks");
    for (auto& sw : swaps) {
      // A disk grown after the point keeps its current size.
      auto cur = d_.disks->engine()->Usage(sw.second);
      auto restored = d_.disks->engine()->Usage(sw.first);
      if (cur.ok() && restored.ok() && cur->virtual_bytes > restored->virtual_bytes)
        d_.disks->engine()->Grow(sw.first, cur->virtual_bytes);
      if (::rename(sw.first.c_str(), sw.second.c_str()) != 0) {
        cleanup();
        return Internal("replacing disk file '" + sw.second + "' failed");
      }
      sw.first.clear();
    }
    swaps.clear();
  }
  if (was_running) {
    octx.SetProgress(90, "starting the VM");
    RETURN_IF_ERROR(VmAction(vm_id, "start", caller));
  }
  return Status::Ok();
}

void RestoreJobs::RegisterRecovery() {
  ctx_.ops->RegisterRecovery(
      kRestoreOperation, [this](const store::OperationRecord& op, OperationContext&) -> Status {
        auto id = ResourceId::Parse(op.body.value("resourceId", ""));
        // An instant restore that was filling goes on (InstantRestore::Start resumed it).
        if (id.ok() && instant_->Owns(id->name())) return Status::Ok();
        Status st = Internal("The job was interrupted by a restart of stratusd; run it again.");
        if (!id.ok()) return st;
        RemoveTree(JoinPath(ctx_.data_dir, "scratch/" + id->name()));
        // The restore's partial files.
        auto job = ctx_.store->Get(id->Key());
        if (job.ok() && job->internal.is_object())
          for (auto& t :
               job->internal.value("params", Json::object()).value("targets", Json::array()))
            RemoveFile(JoinPath(ctx_.data_dir, "disks/restore-" + id->name() + "-" +
                                                   t.value("disk", "") + ".qcow2"));
        // The network interfaces it made, unless its VM exists and holds them.
        if (job.ok() && job->internal.is_object()) {
          const Json params = job->internal.value("params", Json::object());
          auto group = ResourceId::Parse(params.value("recoveryPointId", ""));
          bool vm_exists = false;
          if (group.ok() && !params.value("vmName", "").empty())
            vm_exists = ctx_.store
                            ->Get(ResourceId::Resource(group->subscription(),
                                                       params.value("targetResourceGroup", ""),
                                                       "Stratus.Compute", "virtualMachines",
                                                       params.value("vmName", ""))
                                      .Key())
                            .ok();
          if (!vm_exists) RemoveMade(*id);
        }
        d_.jobs->Fail(*id, st);
        return st;
      });
  instant_->Start();
}

}  // namespace stratus::recovery::service
