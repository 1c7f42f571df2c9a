#include "compute/vm_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "api/resource_util.h"
#include "compute/config_drive.h"
#include "compute/vm_plan.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "core/uuid.h"

namespace stratus::compute {

using api::OperationContext;
using storage::kGiB;

namespace {

constexpr int kShutdownTimeoutMs = 30000;

// A VM whose disks are the base of a replica (site recovery's reprotect: this region's stale
// copy of a VM that runs in the paired region) must not start or go: its disks have to stay
// exactly as the replica was built on them until the failback (or the replication's end).
Status NotWhileReplicaBase(const store::Record& vm, const std::string& what) {
  std::string item = vm.internal.value("replicaBaseOf", "");
  if (item.empty()) return Status::Ok();
  return Conflict("VM '" + vm.body.value("name", "") + "' cannot " + what +
                      ": its disks are the base of the reprotected replica '" + item +
                      "' (the VM runs in the paired region). Fail back, or delete that "
                      "replicated item, first.",
                  vm.body.value("id", ""), "VmIsReplicaBase");
}

}  // namespace

std::string VmService::TargetForLun(int lun) {
  int idx = lun + 1;  // vda is the OS disk
  std::string s;
  do {
    s.insert(s.begin(), static_cast<char>('a' + idx % 26));
    idx = idx / 26 - 1;
  } while (idx >= 0);
  return "vd" + s;
}

// ---------------------------------------------------------------------------------------------
// Writes and actions

Result<VmService::WriteResult> VmService::Apply(const ResourceId& id, const Json& body,
                                                const std::string& caller,
                                                const store::WriteCondition& cond,
                                                bool start_paused) {
  auto existing = ctx_.store->Get(id.Key());
  const store::Record* ex = existing.ok() ? &*existing : nullptr;
  if (ex && cond.must_not_exist)
    return PreconditionFailed("VM '" + id.name() + "' already exists (If-None-Match: *).");
  if (ex && cond.if_match && *cond.if_match != "*" && *cond.if_match != ex->etag)
    return PreconditionFailed("The ETag '" + *cond.if_match +
                              "' does not match the current ETag '" + ex->etag + "'.");
  ASSIGN_OR_RETURN(VmPlan plan, Plan(body, id, ex));
  if (ex) {
    std::string old_size = ex->body["properties"]["hardwareProfile"].value("vmSize", "");
    if (!EqualsIgnoreCase(old_size, plan.size.name) && PowerState(*ex) == "running")
      return Conflict("VM '" + id.name() +
                          "' must be stopped or deallocated to change its size "
                          "from " +
                          old_size + " to " + plan.size.name + ".",
                      "properties.hardwareProfile.vmSize", "OperationNotAllowed");
  }
  std::vector<std::string> keys = {id.Key()};
  for (auto& k : plan.new_disk_keys) keys.push_back(k);
  for (auto& k : plan.attach_keys) keys.push_back(k);
  for (auto& k : plan.nic_keys) keys.push_back(k);
  ASSIGN_OR_RETURN(api::ResourceLock lock, ctx_.ops->TryLock(keys));
  // Re-read under the lock: a concurrent request may have changed it since validation.
  auto current = ctx_.store->Get(id.Key());
  if (current.ok() != existing.ok() || (current.ok() && current->etag != existing->etag))
    return Conflict("VM '" + id.name() + "' was changed by another request; retry.", id.ToString());
  if (ex && ex->body["properties"].value("provisioningState", "") == "Succeeded") {
    // A PUT of what the VM already is (a GET body sent back, a template re-applied) changes
    // nothing: same etag, no operation. Checked under the lock: while an operation runs on the
    // VM, even a no-op PUT is a conflict.
    bool same =
        plan.tags == ex->body.value("tags", Json::object()) &&
        (plan.custom_data.empty() || plan.custom_data == ex->internal.value("customData", ""));
    for (auto& [k, v] : plan.properties.items())
      same = same && ex->body["properties"].contains(k) && ex->body["properties"][k] == v;
    if (same) return WriteResult{*ex, "", false};
  }
  store::Record rec;
  if (ex) {
    rec = *ex;
    Json old_props = rec.body["properties"];
    rec.body["tags"] = plan.tags;
    for (auto& [k, v] : plan.properties.items()) rec.body["properties"][k] = v;
    rec.body["properties"]["provisioningState"] = "Updating";
    if (!plan.custom_data.empty()) rec.internal["customData"] = plan.custom_data;
    api::TouchSystemData(rec.body, caller, ctx_.clock->NowMs());
  } else {
    std::string vm_id = NewUuid();
    rec.key = id.Key();
    rec.type = api::TypeKey(id);
    rec.body = api::NewResourceBody(id, plan.location, plan.tags, caller, ctx_.clock->NowMs());
    rec.body["properties"] = plan.properties;
    rec.body["properties"]["vmId"] = vm_id;
    rec.body["properties"]["provisioningState"] = "Creating";
    rec.body["properties"]["timeCreated"] = FormatIso8601(ctx_.clock->NowMs());
    std::string vm_dir = JoinPath(ctx_.data_dir, "vms/" + vm_id);
    rec.internal = {{"domain", DomainName(vm_id)},
                    {"desiredPower", start_paused ? "paused" : "running"},
                    {"customData", plan.custom_data},
                    {"dir", vm_dir},
                    {"configDrive", JoinPath(vm_dir, "config.img")},
                    {"consoleLog", JoinPath(vm_dir, "console.log")},
                    {"image",
                     {{"kernel", plan.image.kernel},
                      {"initrd", plan.image.initrd},
                      {"cmdline", plan.image.cmdline},
                      {"disk", plan.image.disk_path}}},
                    {"attachedDisks", Json::array()}};
  }
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec));
  ASSIGN_OR_RETURN(
      std::string op,
      ctx_.ops->StartLocked(
          std::move(lock), id, "Stratus.Compute/virtualMachines/write", Json::object(),
          [this, id, caller](OperationContext& octx) { return EnsureVm(id, octx, caller); },
          caller));
  return WriteResult{rec, op, ex == nullptr};
}

Status VmService::Resume(const ResourceId& id) {
  ASSIGN_OR_RETURN(store::Record vm, ctx_.store->Get(id.Key()));
  RETURN_IF_ERROR(hv_->Start(vm.internal.value("domain", "")));  // resumes a paused domain
  return store::PutWithRetry(ctx_.store, id.Key(), [](store::Record& r) {
    if (r.internal.value("desiredPower", "") != "paused") return false;
    r.internal["desiredPower"] = "running";
    return true;
  });
}

Result<std::string> VmService::Write(const ResourceId& id, const Json& body,
                                     const std::string& caller) {
  ASSIGN_OR_RETURN(WriteResult w, Apply(id, body, caller));
  return w.operation;
}

Result<std::string> VmService::Act(const ResourceId& id, const std::string& action,
                                   const std::string& caller) {
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  std::string state = rec.body["properties"].value("provisioningState", "");
  if (state == "Creating" || state == "Deleting")
    return Conflict("VM '" + id.name() + "' is " + state + ".", id.ToString(),
                    "OperationNotAllowed");
  return StartAction(id, action, Json::object(), caller);
}

Result<std::string> VmService::StartAction(const ResourceId& id, const std::string& action,
                                           Json params, const std::string& caller,
                                           std::vector<std::string> extra_keys) {
  if (action == "start" || action == "restart") {
    ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
    RETURN_IF_ERROR(NotWhileReplicaBase(rec, action));
  }
  return ctx_.ops->Start(
      id, "Stratus.Compute/virtualMachines/" + action + "/action",
      Json{{"action", action}, {"params", params}},
      [this, id, action, params, caller](OperationContext& octx) {
        return RunAction(id, action, params, octx, caller);
      },
      extra_keys, caller);
}

Result<std::string> VmService::Delete(const ResourceId& id, int delete_disks,
                                      const std::string& caller) {
  ASSIGN_OR_RETURN(api::ResourceLock lock, ctx_.ops->TryLock({id.Key()}));
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  RETURN_IF_ERROR(NotWhileReplicaBase(rec, "be deleted"));
  rec.body["properties"]["provisioningState"] = "Deleting";
  RETURN_IF_ERROR(ctx_.store->Put(rec).status());
  return ctx_.ops->StartLocked(
      std::move(lock), id, "Stratus.Compute/virtualMachines/delete",
      Json{{"deleteDisks", delete_disks}},
      [this, id, delete_disks](OperationContext& octx) {
        return DeleteVm(id, delete_disks, &octx);
      },
      caller);
}

Status VmService::DeleteNow(const ResourceId& id) {
  return DeleteVm(id, /*delete_disks=*/1, nullptr);
}

// ---------------------------------------------------------------------------------------------
// Engine work

Result<IoTune> VmService::TuneFor(const VmSize& size, const std::string& disk_key) {
  ASSIGN_OR_RETURN(store::Record d, ctx_.store->Get(disk_key));
  ASSIGN_OR_RETURN(storage::DiskTier t, storage::FindDiskTier(d.body["sku"].value("name", "")));
  IoTune tune;
  tune.total_iops_sec = std::min(t.iops, size.max_disk_iops);
  tune.total_bytes_sec = std::min(t.mbps, size.max_disk_mbps) * 1000 * 1000;
  return tune;
}

Result<DomainSpec> VmService::BuildDomainSpec(const store::Record& vm) {
  const Json& p = vm.body["properties"];
  ASSIGN_OR_RETURN(VmSize size, FindVmSize(p["hardwareProfile"].value("vmSize", "")));
  DomainSpec spec;
  spec.name = vm.internal.value("domain", "");
  spec.uuid = p.value("vmId", "");
  spec.vcpus = size.vcpus;
  spec.memory_mib = size.memory_mib;
  const Json& img = vm.internal["image"];
  spec.kernel = img.value("kernel", "");
  spec.initrd = img.value("initrd", "");
  spec.cmdline = img.value("cmdline", "");
  spec.console_log_path = vm.internal.value("consoleLog", "");
  spec.metadata_json = Json{{"resourceId", vm.body.value("id", "")}, {"vmId", spec.uuid}}.dump();
  const Json& sp = p["storageProfile"];
  auto add = [&](const std::string& disk_id, const std::string& target,
                 const std::string& serial) -> Status {
    ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(disk_id));
    ASSIGN_OR_RETURN(std::string path, disks_->PathOf(did));
    DiskAttachment a;
    a.target_dev = target;
    a.path = path;
    a.serial = serial;
    ASSIGN_OR_RETURN(a.iotune, TuneFor(size, did.Key()));
    spec.disks.push_back(a);
    return Status::Ok();
  };
  RETURN_IF_ERROR(add(sp["osDisk"]["managedDisk"].value("id", ""), "vda", "os"));
  for (auto& d : sp["dataDisks"]) {
    int lun = d.value("lun", 0);
    RETURN_IF_ERROR(
        add(d["managedDisk"].value("id", ""), TargetForLun(lun), "lun" + std::to_string(lun)));
  }
  if (nics_) {
    std::vector<std::string> ids = NicIds(p);
    if (!ids.empty()) {
      ASSIGN_OR_RETURN(auto plugs, nics_->Resolve(ids, vm.body.value("id", "")));
      for (auto& n : plugs) spec.nics.push_back({n.mac, n.bridge, n.tap});
    }
  }
  DiskAttachment cfg;
  cfg.target_dev = "vdzz";
  cfg.path = vm.internal.value("configDrive", "");
  cfg.format = "raw";
  cfg.read_only = true;
  cfg.serial = kConfigDriveSerial;
  spec.disks.push_back(cfg);
  return spec;
}

std::vector<std::string> VmService::NicIds(const Json& properties) {
  std::vector<std::string> ids;
  const Json* nics = JsonPath(properties, "networkProfile.networkInterfaces");
  if (!nics || !nics->is_array()) return ids;
  for (auto& n : *nics) {
    if (n["properties"].value("primary", false)) {
      ids.insert(ids.begin(), n.value("id", ""));
    } else {
      ids.push_back(n.value("id", ""));
    }
  }
  return ids;
}

Status VmService::BindNics(const store::Record& vm) {
  if (!nics_) return Status::Ok();
  const Json& p = vm.body["properties"];
  std::string vm_id = vm.body.value("id", "");
  std::string host = p["osProfile"].value("computerName", "");
  std::vector<std::string> ids = NicIds(p);
  std::set<std::string> wanted;
  for (size_t i = 0; i < ids.size(); ++i) {
    RETURN_IF_ERROR(nics_->Bind(ids[i], vm_id, i == 0, host));
    wanted.insert(ToLower(ids[i]));
  }
  for (auto& n : vm.internal.value("boundNics", Json::array())) {
    std::string id = n.get<std::string>();
    if (!wanted.count(ToLower(id))) RETURN_IF_ERROR(nics_->Unbind(id, vm_id, false));
  }
  return Status::Ok();
}

Status VmService::SetProvisioningState(const ResourceId& id, const std::string& state) {
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  rec.body["properties"]["provisioningState"] = state;
  return ctx_.store->Put(rec).status();
}

Status VmService::EnsureVm(const ResourceId& id, OperationContext& octx,
                           const std::string& caller) {
  Status st = [&]() -> Status {
    ASSIGN_OR_RETURN(store::Record vm, ctx_.store->Get(id.Key()));
    const Json& p = vm.body["properties"];
    const Json& sp = p["storageProfile"];
    std::string vm_id = vm.body.value("id", "");
    octx.SetProgress(5, "creating disks");
    // OS disk from the image (or an existing disk, createOption Attach).
    if (sp["osDisk"].value("createOption", "") == "Attach") {
      ASSIGN_OR_RETURN(ResourceId did,
                       ResourceId::Parse(sp["osDisk"]["managedDisk"].value("id", "")));
      RETURN_IF_ERROR(disks_->SetAttachment(did, vm_id));
    } else {
      ASSIGN_OR_RETURN(ResourceId did,
                       ResourceId::Parse(sp["osDisk"]["managedDisk"].value("id", "")));
      storage::DiskSpec ds;
      ds.id = did;
      ds.location = vm.body.value("location", ctx_.region);
      ds.sku = sp["osDisk"]["managedDisk"].value("storageAccountType", "Standard_LRS");
      ds.size_gb = sp["osDisk"].value("diskSizeGB", int64_t{1});
      ds.option = storage::CreateOption::kFromImage;
      ds.source_path = vm.internal["image"].value("disk", "");
      ds.creation_data = {{"createOption", "FromImage"},
                          {"imageReference", {{"id", sp["imageReference"].value("id", "")}}}};
      RETURN_IF_ERROR(disks_->EnsureDisk(ds, caller).status());
      RETURN_IF_ERROR(disks_->SetAttachment(did, vm_id));
    }
    std::set<std::string> wanted;
    int i = 0;
    for (auto& d : sp["dataDisks"]) {
      octx.SetProgress(10 + 30 * i++ / std::max<int>(1, sp["dataDisks"].size()),
                       "creating data disks");
      ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(d["managedDisk"].value("id", "")));
      if (d.value("createOption", "") == "Empty") {
        storage::DiskSpec ds;
        ds.id = did;
        ds.location = vm.body.value("location", ctx_.region);
        ds.sku = d["managedDisk"].value("storageAccountType", "Standard_LRS");
        ds.size_gb = d.value("diskSizeGB", int64_t{1});
        ds.option = storage::CreateOption::kEmpty;
        ds.creation_data = {{"createOption", "Empty"}};
        RETURN_IF_ERROR(disks_->EnsureDisk(ds, caller).status());
      }
      RETURN_IF_ERROR(disks_->SetAttachment(did, vm_id, d.value("lun", 0)));
      wanted.insert(did.Key());
    }
    // Disks that left the model: detach from the domain and release.
    std::string dom = vm.internal.value("domain", "");
    auto info = hv_->Info(dom);
    bool defined = info.ok();
    bool running = defined && info->state == compute::PowerState::kRunning;
    Json attached = vm.internal.value("attachedDisks", Json::array());
    for (auto& a : attached) {
      std::string key = a.value("key", "");
      if (wanted.count(key)) continue;
      if (defined) {
        Status ds = hv_->DetachDisk(dom, a.value("target", ""));
        if (!ds.ok() && ds.code() != StatusCode::kNotFound) return ds;
      }
      auto did = ResourceId::Parse(a.value("id", ""));
      if (did.ok()) {
        Status rs = disks_->SetAttachment(*did, "");
        if (!rs.ok() && rs.code() != StatusCode::kNotFound) return rs;
      }
    }
    // Network interfaces: held by this VM (its name in the VNET's DNS), plugged below. Those
    // that left the model are unplugged from the domain first (while still bound: their MAC).
    octx.SetProgress(42, "binding network interfaces");
    std::set<std::string> bound_before;
    for (auto& n : vm.internal.value("boundNics", Json::array())) bound_before.insert(ToLower(n.get<std::string>()));
    if (defined && nics_) {
      std::set<std::string> wanted_nics;
      for (auto& n : NicIds(p)) wanted_nics.insert(ToLower(n));
      for (auto& n : vm.internal.value("boundNics", Json::array())) {
        std::string nic_id = n.get<std::string>();
        if (wanted_nics.count(ToLower(nic_id))) continue;
        auto plug = nics_->Resolve({nic_id}, vm_id);
        if (!plug.ok()) continue;  // gone already
        const network::NicPlug& gone = (*plug)[0];
        Status ds = hv_->DetachNic(dom, {gone.mac, gone.bridge, gone.tap});
        if (!ds.ok() && ds.code() != StatusCode::kNotFound) return ds;
      }
    }
    RETURN_IF_ERROR(BindNics(vm));
    // Config drive.
    octx.SetProgress(45, "writing config drive");
    RETURN_IF_ERROR(MakeDirs(vm.internal.value("dir", ""), 0711));
    ConfigDriveContent cfg;
    std::vector<std::string> nic_ids = NicIds(p);
    if (nics_ && !nic_ids.empty()) {
      // The same settings DHCP gives, for guests without a DHCP client.
      ASSIGN_OR_RETURN(auto plugs, nics_->Resolve(nic_ids, vm_id));
      for (size_t i = 0; i < plugs.size(); ++i) {
        const network::NicPlug& n = plugs[i];
        std::string f = "MAC=" + n.mac + "\nIFACE=eth" + std::to_string(i) + "\n";
        for (auto& a : n.addresses) f += "ADDRESS=" + a + "\n";
        if (i == 0) {
          f += "GATEWAY=" + n.gateway + "\n";
          for (auto& d : n.dns) f += "DNS=" + d + "\n";
          f += "SEARCH=" + n.search + "\n";
        }
        f += "MTU=" + std::to_string(n.mtu) + "\n";
        if (i == 0) {
          cfg.network = f;
        } else {
          cfg.more_networks.push_back(f);
        }
      }
    }
    cfg.hostname = p["osProfile"].value("computerName", id.name());
    cfg.user_script = vm.internal.value("customData", "");
    cfg.meta_json = Json{
        {"version", 1},
        {"vmId", p.value("vmId", "")},
        {"name", id.name()},
        {"resourceId",
         vm_id}}.dump();
    RETURN_IF_ERROR(BuildConfigDrive(vm.internal.value("configDrive", ""), cfg));
    // Domain.
    octx.SetProgress(60, "defining the domain");
    ASSIGN_OR_RETURN(DomainSpec spec, BuildDomainSpec(vm));
    std::string desired = vm.internal.value("desiredPower", "running");
    if (running) {
      // Hot-plug the disks the running domain lacks.
      std::set<std::string> had;
      for (auto& a : attached) had.insert(a.value("key", ""));
      for (auto& d : sp["dataDisks"]) {
        auto did = ResourceId::Parse(d["managedDisk"].value("id", ""));
        if (!did.ok() || had.count(did->Key())) continue;
        std::string target = TargetForLun(d.value("lun", 0));
        for (auto& a : spec.disks)
          if (a.target_dev == target) RETURN_IF_ERROR(hv_->AttachDisk(dom, a));
      }
      // And the NICs it lacks (the guest sees a new interface; DHCP serves it).
      std::vector<std::string> ids = NicIds(p);
      for (size_t k = 0; k < ids.size() && k < spec.nics.size(); ++k)
        if (!bound_before.count(ToLower(ids[k]))) RETURN_IF_ERROR(hv_->AttachNic(dom, spec.nics[k]));
    } else if (desired != "deallocated") {
      RETURN_IF_ERROR(hv_->Define(spec));
    }
    Json now_attached = Json::array();
    for (auto& d : sp["dataDisks"])
      now_attached.push_back({{"key", ToLower(d["managedDisk"].value("id", ""))},
                              {"id", d["managedDisk"].value("id", "")},
                              {"target", TargetForLun(d.value("lun", 0))}});
    if (desired == "running" && !running) {
      octx.SetProgress(80, "starting");
      RETURN_IF_ERROR(hv_->Start(dom));  // a paused domain is resumed
    } else if (desired == "paused" && !running) {
      octx.SetProgress(80, "starting paused");
      RETURN_IF_ERROR(hv_->StartPaused(dom));
    }
    ASSIGN_OR_RETURN(vm, ctx_.store->Get(id.Key()));
    vm.internal["attachedDisks"] = now_attached;
    vm.internal["boundNics"] = nic_ids;
    vm.body["properties"]["provisioningState"] = "Succeeded";
    return ctx_.store->Put(vm).status();
  }();
  if (!st.ok()) SetProvisioningState(id, "Failed");
  return st;
}

Status VmService::RunAction(const ResourceId& id, const std::string& action, const Json& params,
                            OperationContext& octx, const std::string& caller) {
  if (action == "capturesnapshots") return CaptureSnapshots(id, params, octx, caller);
  ASSIGN_OR_RETURN(store::Record vm, ctx_.store->Get(id.Key()));
  std::string dom = vm.internal.value("domain", "");
  auto set_desired = [&](const std::string& d) -> Status {
    ASSIGN_OR_RETURN(vm, ctx_.store->Get(id.Key()));
    vm.internal["desiredPower"] = d;
    ASSIGN_OR_RETURN(vm, ctx_.store->Put(vm));
    return Status::Ok();
  };
  if (action == "start") {
    RETURN_IF_ERROR(set_desired("running"));
    return EnsureVm(id, octx, caller);
  }
  if (action == "poweroff") {
    RETURN_IF_ERROR(set_desired("stopped"));
    if (!hv_->Info(dom).ok()) return Status::Ok();
    octx.SetProgress(20, "shutting down the guest");
    return params.value("skipShutdown", false) ? hv_->PowerOff(dom)
                                               : hv_->Shutdown(dom, kShutdownTimeoutMs);
  }
  if (action == "deallocate") {
    RETURN_IF_ERROR(set_desired("deallocated"));
    if (!hv_->Info(dom).ok()) return Status::Ok();
    octx.SetProgress(20, "shutting down the guest");
    RETURN_IF_ERROR(hv_->Shutdown(dom, kShutdownTimeoutMs));
    return hv_->Undefine(dom);
  }
  if (action == "restart") {
    auto info = hv_->Info(dom);
    if (info.ok() && info->state == compute::PowerState::kRunning) return hv_->Reboot(dom);
    RETURN_IF_ERROR(set_desired("running"));
    return EnsureVm(id, octx, caller);
  }
  if (action == "resize") {
    auto info = hv_->Info(dom);
    if (info.ok() && info->state == compute::PowerState::kRunning)
      return Conflict("VM '" + id.name() + "' was started before the resize ran.", "vmSize",
                      "OperationNotAllowed");
    vm.body["properties"]["hardwareProfile"]["vmSize"] = params.value("vmSize", "");
    api::TouchSystemData(vm.body, caller, ctx_.clock->NowMs());
    RETURN_IF_ERROR(ctx_.store->Put(vm).status());
    if (info.ok()) {
      ASSIGN_OR_RETURN(DomainSpec spec, BuildDomainSpec(vm));
      RETURN_IF_ERROR(hv_->Define(spec));
    }
    return Status::Ok();
  }
  return InvalidArgument("unknown action " + action);
}

Result<bool> VmService::LiveSnapshot(
    const std::string& vm_id, const std::vector<std::pair<std::string, std::string>>& targets,
    bool quiesce) {
  ASSIGN_OR_RETURN(store::Record vm, ctx_.store->Get(ToLower(vm_id)));
  std::string dom = vm.internal.value("domain", "");
  auto info = hv_->Info(dom);
  if (!info.ok() || info->state != compute::PowerState::kRunning)
    return NotFound("VM '" + vm_id + "' is not running.");
  const Json& sp = vm.body["properties"]["storageProfile"];
  std::vector<SnapshotTarget> st;
  for (auto& [disk_key, dest] : targets) {
    std::string target;
    if (ToLower(sp["osDisk"]["managedDisk"].value("id", "")) == disk_key) target = "vda";
    for (auto& d : sp["dataDisks"])
      if (ToLower(d["managedDisk"].value("id", "")) == disk_key)
        target = TargetForLun(d.value("lun", 0));
    if (target.empty()) return Internal("disk '" + disk_key + "' is not attached to " + vm_id);
    st.push_back({target, dest});
  }
  return hv_->SnapshotDisks(dom, st, quiesce);
}

Status VmService::CaptureSnapshots(const ResourceId& id, const Json& params, OperationContext& octx,
                                   const std::string& caller) {
  ASSIGN_OR_RETURN(store::Record vm, ctx_.store->Get(id.Key()));
  const Json& sp = vm.body["properties"]["storageProfile"];
  std::string prefix = params.value("snapshotNamePrefix", "");
  struct Item {
    ResourceId disk;
    ResourceId snap;
    std::string path;
  };
  std::vector<Item> items;
  auto add = [&](const Json& d) -> Status {
    ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(d["managedDisk"].value("id", "")));
    Item it{did,
            ResourceId::Resource(id.subscription(), id.resource_group(), "Stratus.Storage",
                                 "snapshots", prefix + "-" + d.value("name", did.name())),
            ""};
    std::string uid;
    it.path = disks_->NewSnapshotPath(&uid);
    items.push_back(it);
    return Status::Ok();
  };
  RETURN_IF_ERROR(add(sp["osDisk"]));
  for (auto& d : sp["dataDisks"]) RETURN_IF_ERROR(add(d));
  RETURN_IF_ERROR(MakeDirs(JoinPath(ctx_.data_dir, "snapshots"), 0711));
  std::vector<std::pair<std::string, std::string>> targets;
  for (auto& it : items) targets.emplace_back(it.disk.Key(), it.path);
  octx.SetProgress(10, "capturing all disks at one instant");
  std::string consistency;
  auto frozen = LiveSnapshot(id.ToString(), targets, params.value("quiesce", true));
  auto cleanup = [&] {
    for (auto& it : items) RemoveFile(it.path);
  };
  if (frozen.ok()) {
    consistency = *frozen ? "FileSystemConsistent" : "CrashConsistent";
  } else if (frozen.status().code() == StatusCode::kNotFound) {
    // Stopped or deallocated: the files are quiescent.
    for (auto& it : items) {
      ASSIGN_OR_RETURN(std::string src, disks_->PathOf(it.disk));
      Status s = disks_->engine()->CreateFromSource(it.path, src, 0, "");
      if (!s.ok()) {
        cleanup();
        return s;
      }
    }
    consistency = "FileSystemConsistent";
  } else {
    cleanup();
    return frozen.status();
  }
  octx.SetProgress(80, "recording snapshots");
  Json ids = Json::array();
  for (auto& it : items) {
    ASSIGN_OR_RETURN(store::Record r,
                     disks_->RecordSnapshot(it.snap, vm.body.value("location", ctx_.region),
                                            it.disk, it.path, consistency, caller));
    ids.push_back(r.body.value("id", ""));
  }
  octx.result() = {{"snapshots", ids}, {"consistency", consistency}};
  return Status::Ok();
}

Status VmService::DeleteVm(const ResourceId& id, int delete_disks, OperationContext* octx) {
  auto vm = ctx_.store->Get(id.Key());
  if (!vm.ok()) return Status::Ok();
  std::string dom = vm->internal.value("domain", "");
  if (octx) octx->SetProgress(10, "powering off");
  if (hv_->Info(dom).ok()) {
    RETURN_IF_ERROR(hv_->PowerOff(dom));
    RETURN_IF_ERROR(hv_->Undefine(dom));
  }
  if (octx) octx->SetProgress(40, "releasing network interfaces");
  if (nics_) {
    std::set<std::string> seen;
    const Json* list = JsonPath(vm->body["properties"], "networkProfile.networkInterfaces");
    if (list && list->is_array())
      for (auto& n : *list) {
        std::string nic = n.value("id", "");
        seen.insert(ToLower(nic));
        bool del = n["properties"].value("deleteOption", "") == "Delete";
        RETURN_IF_ERROR(nics_->Unbind(nic, vm->body.value("id", ""), del));
      }
    for (auto& n : vm->internal.value("boundNics", Json::array()))
      if (!seen.count(ToLower(n.get<std::string>())))
        RETURN_IF_ERROR(nics_->Unbind(n.get<std::string>(), vm->body.value("id", ""), false));
  }
  if (octx) octx->SetProgress(50, "releasing disks");
  const Json& sp = vm->body["properties"]["storageProfile"];
  std::vector<Json> all;
  all.push_back(sp["osDisk"]);
  for (auto& d : sp["dataDisks"]) all.push_back(d);
  for (auto& d : all) {
    auto did = ResourceId::Parse(d["managedDisk"].value("id", ""));
    if (!did.ok()) continue;
    bool del = delete_disks == 1 || (delete_disks == -1 && d.value("deleteOption", "") == "Delete");
    Status st = del ? disks_->DeleteDisk(*did, /*force=*/true) : disks_->SetAttachment(*did, "");
    if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
  }
  RETURN_IF_ERROR(RemoveTree(vm->internal.value("dir", "")));
  Status st = ctx_.store->Delete(id.Key());
  if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
  return Status::Ok();
}

std::string VmService::PowerState(const store::Record& vm) {
  auto info = hv_->Info(vm.internal.value("domain", ""));
  if (!info.ok()) {
    if (vm.internal.value("desiredPower", "") == "deallocated") return "deallocated";
    return vm.body["properties"].value("provisioningState", "") == "Creating" ? "starting"
                                                                              : "deallocated";
  }
  switch (info->state) {
    case compute::PowerState::kRunning:
      return "running";
    case compute::PowerState::kStopped:
      return "stopped";
    case compute::PowerState::kPaused:
      return "paused";
    case compute::PowerState::kCrashed:
      return "crashed";
    default:
      return "unknown";
  }
}

Json VmService::InstanceView(const store::Record& vm) {
  std::string dom = vm.internal.value("domain", "");
  std::string power = PowerState(vm);
  Json view = {{"powerState", power},
               {"statuses",
                {{{"code", "ProvisioningState/" +
                               ToLower(vm.body["properties"].value("provisioningState", ""))}},
                 {{"code", "PowerState/" + power}}}}};
  auto info = hv_->Info(dom);
  if (info.ok() && info->boot_time_ms > 0) view["bootTime"] = FormatIso8601(info->boot_time_ms);
  Json disks = Json::array();
  const Json& sp = vm.body["properties"]["storageProfile"];
  disks.push_back({{"name", sp["osDisk"].value("name", "")}, {"target", "vda"}});
  for (auto& d : sp["dataDisks"])
    disks.push_back({{"name", d.value("name", "")},
                     {"lun", d.value("lun", 0)},
                     {"target", TargetForLun(d.value("lun", 0))}});
  view["disks"] = disks;
  std::string agent = "NotReady";
  if (power == "running") {
    auto pong = hv_->AgentCommand(dom, Json{{"execute", "guest-ping"}}, 1);
    if (pong.ok()) agent = "Ready";
  }
  view["agent"] = {{"status", agent}};
  return view;
}

bool VmService::IsRunning(const std::string& vm_id) {
  auto rec = ctx_.store->Get(ToLower(vm_id));
  return rec.ok() && PowerState(*rec) == "running";
}

Status VmService::ApplyTier(const std::string& vm_id, const ResourceId& disk) {
  auto rec = ctx_.store->Get(ToLower(vm_id));
  if (!rec.ok()) return Status::Ok();
  std::string dom = rec->internal.value("domain", "");
  if (!hv_->Info(dom).ok()) return Status::Ok();  // deallocated: applied at next define
  ASSIGN_OR_RETURN(VmSize size,
                   FindVmSize(rec->body["properties"]["hardwareProfile"].value("vmSize", "")));
  ASSIGN_OR_RETURN(IoTune tune, TuneFor(size, disk.Key()));
  const Json& sp = rec->body["properties"]["storageProfile"];
  std::string target;
  if (EqualsIgnoreCase(sp["osDisk"]["managedDisk"].value("id", ""), disk.ToString()))
    target = "vda";
  for (auto& d : sp["dataDisks"])
    if (EqualsIgnoreCase(d["managedDisk"].value("id", ""), disk.ToString()))
      target = TargetForLun(d.value("lun", 0));
  if (target.empty()) return Status::Ok();
  return hv_->SetIoTune(dom, target, tune);
}

Status VmService::Start() {
  // Resume interrupted VM operations: every step is idempotent.
  auto self = this;
  ctx_.ops->RegisterRecovery(
      "Stratus.Compute/virtualMachines/write",
      [self](const store::OperationRecord& op, OperationContext& octx) -> Status {
        auto id = ResourceId::Parse(op.body.value("resourceId", ""));
        if (!id.ok() || !self->ctx_.store->Get(id->Key()).ok()) return Status::Ok();
        return self->EnsureVm(*id, octx, op.internal.value("caller", ""));
      });
  ctx_.ops->RegisterRecovery(
      "Stratus.Compute/virtualMachines/delete",
      [self](const store::OperationRecord& op, OperationContext& octx) -> Status {
        auto id = ResourceId::Parse(op.body.value("resourceId", ""));
        if (!id.ok()) return Status::Ok();
        return self->DeleteVm(*id, op.internal["data"].value("deleteDisks", -1), &octx);
      });
  for (auto action : {"start", "poweroff", "deallocate", "restart", "resize", "capturesnapshots"}) {
    std::string a = action;
    ctx_.ops->RegisterRecovery(
        "Stratus.Compute/virtualMachines/" + a + "/action",
        [self, a](const store::OperationRecord& op, OperationContext& octx) -> Status {
          auto id = ResourceId::Parse(op.body.value("resourceId", ""));
          if (!id.ok()) return Status::Ok();
          if (a == "capturesnapshots")
            return Internal(
                "Snapshot capture was interrupted by a restart of stratusd; take it "
                "again.");
          return self->RunAction(*id, a, op.internal["data"].value("params", Json::object()), octx,
                                 op.internal.value("caller", ""));
        });
  }
  // Reconcile: VMs that should exist in libvirt but do not (host restarted, domain lost) are
  // defined again and started when they should run. Running domains are never touched.
  // A VM left Creating/Updating with no operation to finish it (the daemon died between storing
  // the VM and recording its operation) gets a fresh one: EnsureVm is idempotent.
  std::set<std::string> in_flight;
  ASSIGN_OR_RETURN(auto pending_ops, ctx_.store->ListOperationsWithStatus("InProgress"));
  for (auto& op : pending_ops) in_flight.insert(op.resource_key);
  std::string after;
  int checked = 0, restored = 0;
  for (;;) {
    ASSIGN_OR_RETURN(
        store::Page page,
        ctx_.store->List("/subscriptions/", "stratus.compute/virtualmachines", after, 200));
    for (auto& vm : page.records) {
      ++checked;
      std::string pstate = vm.body["properties"].value("provisioningState", "");
      if ((pstate == "Creating" || pstate == "Updating") && !in_flight.count(vm.key)) {
        auto id = ResourceId::Parse(vm.body.value("id", ""));
        if (!id.ok()) continue;
        std::string caller = vm.body["systemData"].value("lastModifiedBy", "");
        auto op = ctx_.ops->Start(
            *id, "Stratus.Compute/virtualMachines/write", Json::object(),
            [self, rid = *id, caller](OperationContext& octx) {
              return self->EnsureVm(rid, octx, caller);
            },
            {}, caller);
        if (op.ok()) spdlog::info("reconcile: finishing {} of {} ({})", pstate, vm.key, *op);
        continue;
      }
      if (pstate != "Succeeded") continue;
      std::string desired = vm.internal.value("desiredPower", "running");
      std::string dom = vm.internal.value("domain", "");
      auto info = hv_->Info(dom);
      if (desired == "deallocated" || (info.ok() && info->state == compute::PowerState::kRunning))
        continue;
      if (!info.ok()) {
        auto spec = BuildDomainSpec(vm);
        if (!spec.ok() || !hv_->Define(*spec).ok()) {
          spdlog::warn("reconcile: cannot define domain of {}", vm.body.value("id", ""));
          continue;
        }
      }
      if (desired == "paused") {  // made paused, not resumed yet: it stays so
        (void)hv_->StartPaused(dom);
      } else if (desired == "running") {
        Status st = hv_->Start(dom);
        if (st.ok())
          ++restored;
        else
          spdlog::warn("reconcile: cannot start {}: {}", vm.body.value("id", ""), st.ToString());
      }
    }
    if (page.next_key.empty()) break;
    after = page.next_key;
  }
  spdlog::info("compute: reconciled {} VMs, started {} that should have been running", checked,
               restored);
  return Status::Ok();
}

}  // namespace stratus::compute
