// LibvirtHypervisor as DiskSnapshots: push-mode backups of running domains, the disk engine's
// copies of stopped ones.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "compute/libvirt_hypervisor.h"
#include "compute/libvirt_internal.h"
#include "core/fs.h"

namespace stratus::compute {

namespace {

using libvirt::DomainHandle;
using libvirt::TypedParams;

Status ValidateSnapshotTargets(const std::string& name,
                               const std::vector<SnapshotTarget>& targets) {
  if (targets.empty()) {
    return InvalidArgument("snapshot of domain " + Quoted(name) + ": no disks given", "targets");
  }
  std::set<std::string> devs, dests;
  for (const auto& t : targets) {
    if (!devs.insert(t.target_dev).second) {
      return InvalidArgument(
          "snapshot of domain " + Quoted(name) + ": disk " + t.target_dev + " listed twice",
          "targets");
    }
    if (t.dest_path.empty() || t.dest_path[0] != '/') {
      return InvalidArgument("snapshot of domain " + Quoted(name) + ": destination '" +
                                 t.dest_path + "' for " + t.target_dev + " is not absolute",
                             "targets");
    }
    if (!dests.insert(t.dest_path).second) {
      return InvalidArgument(
          "snapshot of domain " + Quoted(name) + ": destination '" + t.dest_path + "' used twice",
          "targets");
    }
    if (PathExists(t.dest_path)) {
      return Conflict("snapshot of domain " + Quoted(name) + ": destination '" + t.dest_path +
                      "' already exists");
    }
  }
  return Status::Ok();
}

// Removes dest files after a failed snapshot (they did not exist before it started).
void RemoveDests(const std::vector<SnapshotTarget>& targets) {
  for (const auto& t : targets) {
    Status st = RemoveFile(t.dest_path);
    if (!st.ok()) spdlog::warn("cannot remove partial snapshot file: {}", st.message());
  }
}

}  // namespace

Result<bool> LibvirtHypervisor::SnapshotDisks(const std::string& name,
                                              const std::vector<SnapshotTarget>& targets,
                                              bool quiesce) {
  RETURN_IF_ERROR(ValidateSnapshotTargets(name, targets));
  auto m = DomainLock(name);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Result<bool> {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    if (active) return SnapshotRunning(d.get(), name, targets, quiesce);
    return SnapshotStopped(d.get(), name, targets);
  });
}

Result<bool> LibvirtHypervisor::SnapshotRunning(virDomainPtr dom, const std::string& name,
                                                const std::vector<SnapshotTarget>& targets,
                                                bool quiesce) {
  ASSIGN_OR_RETURN(ParsedDomain live, ParsedXml(dom, name, /*inactive=*/false));
  std::vector<std::string> all_disks;
  for (const auto& disk : live.disks) all_disks.push_back(disk.target_dev);
  for (const auto& t : targets) {
    const ParsedDisk* disk = FindDisk(live, t.target_dev);
    if (disk == nullptr || disk->path.empty()) {
      return NotFound("snapshot of domain " + Quoted(name) + ": no disk " + t.target_dev,
                      t.target_dev);
    }
  }

  bool frozen = quiesce && FreezeGuest(dom, name, "snapshot");

  std::string xml = BackupXml(all_disks, targets);
  int rc = virDomainBackupBegin(dom, xml.c_str(), nullptr, 0);
  Status begin_status;
  if (rc < 0) begin_status = LibvirtFailure("start the disk snapshot of domain " + Quoted(name));
  // The point in time is fixed once the backup has started: thaw right away.
  if (frozen) ThawGuest(dom, name);
  if (!begin_status.ok()) {
    RemoveDests(targets);
    return begin_status;
  }

  // Wait for the push-mode job to end, then read its completion record.
  auto delay = std::chrono::milliseconds(10);
  for (;;) {
    int type = VIR_DOMAIN_JOB_NONE;
    TypedParams stats;
    if (virDomainGetJobStats(dom, &type, stats.ptr(), stats.count(), 0) < 0) {
      LastError e = GetLastError();
      auto active = IsActive(dom, name);
      if (active.ok() && !*active) break;  // domain stopped: the job ended with it
      virDomainAbortJob(dom);              // best effort: QEMU must stop writing the files
      RemoveDests(targets);
      return StatusFromError(e, "follow the disk snapshot of domain " + Quoted(name));
    }
    if (type == VIR_DOMAIN_JOB_NONE) break;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(250));
  }
  int type = VIR_DOMAIN_JOB_NONE;
  TypedParams stats;
  if (virDomainGetJobStats(dom, &type, stats.ptr(), stats.count(), VIR_DOMAIN_JOB_STATS_COMPLETED) <
      0) {
    Status st = LibvirtFailure("get the result of the disk snapshot of domain " + Quoted(name));
    RemoveDests(targets);
    return st;
  }
  int operation = -1;
  virTypedParamsGetInt(stats.get(), stats.size(), VIR_DOMAIN_JOB_OPERATION, &operation);
  if (type != VIR_DOMAIN_JOB_COMPLETED ||
      (operation != -1 && operation != VIR_DOMAIN_JOB_OPERATION_BACKUP)) {
    const char* errmsg = nullptr;
    virTypedParamsGetString(stats.get(), stats.size(), VIR_DOMAIN_JOB_ERRMSG, &errmsg);
    std::string why = errmsg != nullptr                  ? errmsg
                      : type == VIR_DOMAIN_JOB_CANCELLED ? "the job was cancelled"
                      : type == VIR_DOMAIN_JOB_NONE      ? "no completion record"
                                                         : "the job failed";
    RemoveDests(targets);
    return Internal("disk snapshot of domain " + Quoted(name) + " failed: " + why);
  }
  for (const auto& t : targets) {
    if (!PathExists(t.dest_path)) {
      RemoveDests(targets);
      return Internal("disk snapshot of domain " + Quoted(name) + " completed but " + t.dest_path +
                      " is missing");
    }
  }
  return frozen;
}

Result<bool> LibvirtHypervisor::SnapshotStopped(virDomainPtr dom, const std::string& name,
                                                const std::vector<SnapshotTarget>& targets) {
  ASSIGN_OR_RETURN(ParsedDomain config, ParsedXml(dom, name, /*inactive=*/true));
  std::vector<const ParsedDisk*> sources;
  for (const auto& t : targets) {
    const ParsedDisk* disk = FindDisk(config, t.target_dev);
    if (disk == nullptr || disk->path.empty()) {
      return NotFound("snapshot of domain " + Quoted(name) + ": no disk " + t.target_dev,
                      t.target_dev);
    }
    sources.push_back(disk);
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    std::string format = sources[i]->format.empty() ? "raw" : sources[i]->format;
    // The engine's copy holds a shared lock on the source, so a concurrent start of the domain
    // fails rather than changing the disk under the copy.
    Status r = options_.disk_engine->CreateFromSource(targets[i].dest_path, sources[i]->path, 0,
                                                      format);
    if (!r.ok()) {
      RemoveDests(targets);
      return Internal("snapshot of disk " + targets[i].target_dev + " of domain " + Quoted(name) +
                      " failed: " + r.message());
    }
  }
  return false;
}

}  // namespace stratus::compute
