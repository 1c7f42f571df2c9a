// VM-level backup and restore on top of the vault and the NBD data path: all disks of one VM at
// one instant into one recovery point, and points back into disk files.
//
// Running VM: one libvirt pull-mode backup exports all disks as they were at one instant over an
// NBD unix socket (guest file systems frozen through the agent when asked) and creates the
// checkpoint "stratus-<point id>"; the next backup exports the dirty bitmap since the previous
// point's checkpoint and reads only those extents. Stopped VM: qemu-nbd reads the qcow2 files,
// with the checkpoint's persistent bitmap of the same name (QEMU keeps it up to date). Without a
// usable checkpoint or bitmap (VM redefined, disk replaced or restored, unclean stop) the
// allocated extents are read and deduplicated ("FullDedup"): a backup never fails for lack of
// history, and every point restores on its own.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "compute/hypervisor.h"
#include "core/json.h"
#include "core/status.h"
#include "recovery/consistency.h"
#include "recovery/vault/vault.h"
#include "storage/disk_engine.h"

namespace stratus::recovery::service {

struct VmDisk {
  std::string name;        // inside the point: "osdisk", "lun0", "lun1", ...
  int lun = -1;            // -1 for the OS disk
  std::string path;        // the managed disk's qcow2 file
  std::string target_dev;  // "vda", "vdb", ... (running VMs)
};

struct VmBackupRequest {
  std::string domain;  // libvirt domain; used when `running`
  bool running = false;
  std::vector<VmDisk> disks;
  const vault::RecoveryPoint* previous = nullptr;  // the item's newest point, if any
  Consistency wanted = Consistency::kFileSystem;
  Json vm_config = Json::object();
  Json metadata = Json::object();
  std::string scratch_dir;  // on the disks' file system; emptied afterwards
  int threads = 0;          // 0 = hardware threads + 1
  int hook_timeout_s = 60;  // per guest backup hook (ApplicationConsistent, running VM)
  // (bytes done, bytes total) across disks; called from worker threads.
  std::function<void(uint64_t, uint64_t)> progress;
};

struct VmBackupResult {
  vault::RecoveryPoint point;
  std::string backup_type;       // "Full", "Incremental" or "FullDedup"
  std::string fallback_reason;   // why not incremental ("" if it was, or the first backup)
  std::string consistency;       // what the point is
  std::string consistency_reason;  // why it is lower than asked ("" if not)
  uint64_t bytes_read = 0;
  uint64_t bytes_added = 0;      // stored bytes added to the vault
  uint64_t bytes_total = 0;      // virtual size of all disks
  int64_t duration_ms = 0;
  Json disk_stats = Json::array();
  Json hooks = Json::array();  // guest backup hooks that ran (GuestHookRun::ToJson), if any
};

// `engine` keeps the stopped disks' change-tracking bitmaps.
Result<VmBackupResult> BackupVm(vault::Vault& vault, compute::Hypervisor* hv,
                                storage::DiskEngine* engine, const VmBackupRequest& request);

// Name of the persistent bitmap that tracks a disk's writes since `point_id`.
std::string BitmapForPoint(const std::string& point_id);

// Restores disk `disk_name` of `point` into a new qcow2 file `dest` (checked chunk by chunk;
// nothing is left at `dest` on failure).
Status RestoreVmDisk(vault::Vault& vault, const vault::RecoveryPoint& point,
                     const std::string& disk_name, const std::string& dest,
                     std::function<void(uint64_t, uint64_t)> progress = nullptr);

}  // namespace stratus::recovery::service
