// BackupJobs: backups of protected items (POST {item}/backup and the scheduler's runs) and the
// retention that follows each one.
//
// A backup is a job (jobs.h) run as operation kBackupOperation on the job's id. It first takes
// the item's and the VM's locks, waiting (Queued) while another job of the same VM runs; reads
// the VM's disks into the vault (vm_backup.h: incremental from the item's newest point when it
// can be), indexes the new point (vaults/{v}/protectedItems/{i}/recoveryPoints/{point}),
// updates the item, prunes what the policy no longer keeps, and asks for a vault copy. A backup
// cut by a restart is marked Failed; the vault stays consistent (an uncommitted session leaves
// no point) and the next backup runs normally.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <string>

#include "api/provider.h"
#include "compute/hypervisor.h"
#include "network/network_service.h"
#include "recovery/policy/backup_policy.h"
#include "recovery/service/instant_restore.h"
#include "recovery/service/jobs.h"
#include "recovery/service/vault_redundancy.h"
#include "recovery/service/vault_registry.h"
#include "storage/disk_service.h"

namespace stratus::recovery::service {

inline constexpr char kBackupOperation[] = "Stratus.RecoveryServices/vaults/backupJobs/backup";

class BackupJobs {
 public:
  // Everything it uses; all outlive it.
  struct Deps {
    compute::Hypervisor* hv = nullptr;
    storage::DiskService* disks = nullptr;
    VaultRegistry* vaults = nullptr;
    JobBook* jobs = nullptr;
    VaultRedundancy* redundancy = nullptr;
    const InstantRestore* instant = nullptr;  // points it serves are kept by retention
    network::NetworkService* networks = nullptr;  // the VM's NICs a point records; may be null
  };
  BackupJobs(api::RegionContext ctx, Deps deps) : ctx_(std::move(ctx)), d_(deps) {}

  // POST {item}/backup {"retainUntil"?}: 202 with the job. Conflict "ProtectionStopped" when
  // the item's protection is stopped, "VaultLocked" for a locked vault; InvalidArgument for a
  // retainUntil that is not a future ISO 8601 UTC time.
  Result<api::ApiResponse> OnDemand(const api::ApiRequest& req, const ResourceId& item);
  // A scheduled run of `item` for the policy's run at `scheduled_ms`.
  Status Scheduled(const ResourceId& item, int64_t scheduled_ms);

  // Registers what happens to backups a restart cut (failed, scratch removed, item Failed).
  void RegisterRecovery();

 private:
  // `req` null for a scheduled run (then no response body is built).
  Result<api::ApiResponse> Start(const ResourceId& item, const std::string& caller,
                                 int64_t retain_until_ms, int64_t scheduled_ms,
                                 const api::ApiRequest* req);
  Status Run(const ResourceId& job, api::OperationContext& octx);
  // Deletes the item's points the policy no longer keeps (not those an instant restore
  // serves), then frees their chunks.
  Status Prune(const ResourceId& item, const policy::BackupPolicy& policy, int64_t now_ms);
  // Marks the item of a failed backup job lastBackupStatus Failed.
  void MarkItemFailed(const ResourceId& job);

  api::RegionContext ctx_;
  Deps d_;
};

}  // namespace stratus::recovery::service
