// RestoreJobs: POST {recoveryPoint}/restore — the three restores of a point, classic and instant,
// as one flow.
//
//   RestoreDisks       the point's disks become new managed disks.
//   AlternateLocation  ... and a new VM is created from them (compute::VmService). With
//                      "instant": true the VM starts before its disks hold any data and they
//                      fill in behind it (instant_restore.h). Its network interfaces are the
//                      request's networkProfile, or like those the point recorded
//                      (restore_network.h); they are made before the disks are restored and
//                      removed again if the restore fails before the VM exists.
//   OriginalLocation   the VM keeps its identity; its disks' contents are replaced by the
//                      point's (restored next to the disks while it runs, swapped while it is
//                      stopped, the VM started again if it ran).
// A restore is a job (jobs.h) run as operation kRestoreOperation; every byte restored is
// checked against the vault's chunk hashes (backup/restore_disk.h), and a failed restore leaves
// no partial file behind. Request validation happens before the job exists: a bad request
// changes nothing.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "api/provider.h"
#include "compute/hypervisor.h"
#include "compute/vm_service.h"
#include "recovery/service/instant_restore.h"
#include "recovery/service/jobs.h"
#include "recovery/service/restore_network.h"
#include "recovery/service/vault_registry.h"
#include "storage/disk_service.h"

namespace stratus::recovery::service {

inline constexpr char kRestoreOperation[] = "Stratus.RecoveryServices/vaults/backupJobs/restore";

class RestoreJobs {
 public:
  // Everything it uses; all outlive it.
  struct Deps {
    compute::Hypervisor* hv = nullptr;
    compute::VmService* vms = nullptr;
    storage::DiskService* disks = nullptr;
    VaultRegistry* vaults = nullptr;
    JobBook* jobs = nullptr;
    network::NetworkService* networks = nullptr;  // restored VMs' NICs; may be null
  };
  RestoreJobs(api::RegionContext ctx, Deps deps);
  ~RestoreJobs();

  // Validates the request and starts the job: 202 with the job. InvalidArgument naming the
  // field, NotFound for a missing group or source VM, Conflict "ResourceExists" for a VM or
  // disk name that is taken.
  Result<api::ApiResponse> Start(const api::ApiRequest& req, const ResourceId& point);

  // Registers what happens to restores a restart cut (failed, partial files removed; instant
  // restores that were filling go on) and resumes the instant restores' fills.
  void RegisterRecovery();
  // Instant restores' fills stop (they resume at the next start).
  void Stop();

  // The instant restores (their servers keep points from being pruned).
  const InstantRestore* instant() const { return instant_.get(); }

 private:
  Status Run(const ResourceId& job, api::OperationContext& octx);
  // OriginalLocation.
  Status RestoreInPlace(const ResourceId& job, const Json& params, vault::Vault& v,
                        const vault::RecoveryPoint& point, api::OperationContext& octx);
  // Removes the network resources the job made (when its VM was not created): those of its
  // plan created by RestoreNetwork::Creator(job's caller, job).
  void RemoveMade(const ResourceId& job);
  // Starts VM action `action` and waits for it.
  Status VmAction(const ResourceId& vm, const std::string& action, const std::string& caller);

  api::RegionContext ctx_;
  Deps d_;
  std::unique_ptr<InstantRestore> instant_;
  RestoreNetwork network_;
};

}  // namespace stratus::recovery::service
