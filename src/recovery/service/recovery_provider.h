// Stratus.RecoveryServices: vaults, backup policies, protected items (VM protection), backup and
// restore jobs, recovery points, and the scheduler that runs policies. API: docs/api.md.
//
// Store layout (all nested under the vault's key):
//   vaults/{v}                                   internal.dir = the vault's directory
//   vaults/{v}/backupPolicies/{p}                properties = canonical policy
//   vaults/{v}/protectedItems/{i}                internal.lastScheduledMs = nominal time of the
//                                                last scheduled run (the scheduler's cursor)
//   vaults/{v}/protectedItems/{i}/recoveryPoints/{point id}   one record per vault point (the
//                                                vault's manifest is the truth; the record is the
//                                                index the API lists and pages)
//   vaults/{v}/backupJobs/{job}                  names sort by start time
// Jobs run as operations on the job's id; a backup first takes the item's and the VM's locks,
// waiting (status Queued) while another job of the same VM runs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "api/provider.h"
#include "compute/hypervisor.h"
#include "recovery/policy/backup_policy.h"
#include "recovery/service/instant_restore.h"
#include "recovery/service/vault_redundancy.h"
#include "recovery/service/vm_backup.h"
#include "recovery/vault/vault.h"
#include "storage/disk_service.h"

namespace stratus::recovery::service {

// How the provider reaches compute (wired by the daemon): PUT of a VM, a VM action, and waiting
// for an operation to end.
struct ComputeHooks {
  std::function<Result<api::ApiResponse>(const api::ApiRequest&, const ResourceId&)> put_vm;
  // POST {vm}/{action} (start, powerOff, ...).
  std::function<Result<api::ApiResponse>(const api::ApiRequest&, const ResourceId&,
                                         const std::string&)>
      post_vm;
};

class RecoveryProvider final : public api::ResourceProvider {
 public:
  RecoveryProvider(api::RegionContext ctx, compute::Hypervisor* hv, storage::DiskService* disks,
                   ComputeHooks hooks);
  ~RecoveryProvider() override;

  std::string Namespace() const override { return "Stratus.RecoveryServices"; }
  std::vector<std::string> ResourceTypes() const override { return {"vaults"}; }
  std::vector<std::string> ChildTypes(const ResourceId& parent) const override;
  const api::Shape* BodyShape(const ResourceId& id, const std::string& method,
                              const std::string& action) const override;
  Result<api::ApiResponse> Put(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Get(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Patch(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Delete(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Post(const api::ApiRequest& req, const ResourceId& id,
                                const std::string& action) override;
  void DecorateListItem(const api::ApiRequest& req, const store::Record& rec,
                        Json& item) override;
  int DeleteOrder(const std::string& type) const override;
  Status DeleteForGroup(const ResourceId& id, api::OperationContext& ctx) override;
  Status Start() override;
  void Stop();

  // One scheduler pass at `now_ms` (the scheduler thread calls it; tests call it directly).
  void SchedulerTick(int64_t now_ms);

 private:
  enum class Kind { kVault, kPolicy, kItem, kPoint, kJob, kOther };
  static Kind KindOf(const ResourceId& id);

  Result<api::ApiResponse> PutVault(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> PutPolicy(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> PutItem(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> StartBackup(const ResourceId& item, const std::string& caller,
                                       int64_t retain_until_ms, int64_t scheduled_ms,
                                       const api::ApiRequest* req);
  Result<api::ApiResponse> StartRestore(const api::ApiRequest& req, const ResourceId& point);
  Result<api::ApiResponse> VaultAction(const api::ApiRequest& req, const ResourceId& vault,
                                       const std::string& action);
  Result<api::ApiResponse> FileAction(const api::ApiRequest& req, const ResourceId& point,
                                      const std::string& action);

  Status RunBackup(const ResourceId& job, api::OperationContext& octx);
  Status RunRestore(const ResourceId& job, api::OperationContext& octx);
  Status RestoreInPlace(const ResourceId& job, const Json& params, vault::Vault& v,
                        const vault::RecoveryPoint& point, api::OperationContext& octx);
  // Takes `keys` as soon as no other operation holds them (the job shows Queued meanwhile);
  // Unavailable when the daemon stops first.
  Result<api::ResourceLock> WaitForLock(const std::vector<std::string>& keys);
  // Waits for the operation a compute call started (its Azure-AsyncOperation header).
  Status WaitComputeOperation(const api::ApiResponse& resp);
  Status Prune(const ResourceId& item, const policy::BackupPolicy& policy, int64_t now_ms);
  Status DeletePoints(const ResourceId& item, bool from_vault);

  // The open vault of a vault resource (opened on first use). Conflict "VaultLocked" for a
  // customer-key vault not unlocked since the daemon started.
  Result<vault::Vault*> OpenVault(const ResourceId& vault_id);
  Result<policy::BackupPolicy> PolicyOf(const store::Record& item);
  Result<store::Record> NewJob(const ResourceId& vault, const std::string& operation,
                               const Json& props, const std::string& caller);
  void UpdateJob(const ResourceId& job, const std::function<void(Json& props)>& fn);
  void FailJob(const ResourceId& job, const Status& st);
  void Alert(const ResourceId& vault, const ResourceId& job, const Json& job_props);
  std::string PlatformKeyPath() const;
  std::unique_ptr<VaultRedundancy> MakeRedundancy();

  compute::Hypervisor* hv_;
  storage::DiskService* disks_;
  ComputeHooks hooks_;
  std::unique_ptr<InstantRestore> instant_;  // instant restores' NBD servers and fills
  std::mutex vaults_mu_;
  std::map<std::string, std::unique_ptr<vault::Vault>> vaults_;  // by vault key
  std::map<std::string, std::string> passphrases_;                // customer keys, memory only
  // Copy jobs of vaults with redundancy Copy (vault_redundancy.h).
  std::unique_ptr<VaultRedundancy> redundancy_ = MakeRedundancy();

  std::mutex sched_mu_;
  std::condition_variable sched_cv_;
  bool stopping_ = false;
  std::thread scheduler_;
};

}  // namespace stratus::recovery::service
