// Stratus.RecoveryServices' vaults: the provider of the vaults resource type and its children —
// backup policies, protected items (VM protection), recovery points and jobs. API: docs/api.md.
//
// The provider validates and routes; each job lives in its own part, the way recovery/vault/ is
// laid out:
//   vault_registry.h   open vaults and their keys        jobs.h          job records, waits, alerts
//   backup_jobs.h      backups and retention             restore_jobs.h  restores (classic,
//   instant) vault_actions.h    unlock, verify, gc, copy          file_restore.h  files out of a
//   point vault_redundancy.h the vault's copy                  scheduler.h     the policies' runs
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
#pragma once

#include <string>
#include <vector>

#include "api/provider.h"
#include "compute/hypervisor.h"
#include "compute/vm_service.h"
#include "recovery/service/backup_jobs.h"
#include "recovery/service/file_restore.h"
#include "recovery/service/jobs.h"
#include "recovery/service/restore_jobs.h"
#include "recovery/service/scheduler.h"
#include "recovery/service/vault_actions.h"
#include "recovery/service/vault_redundancy.h"
#include "recovery/service/vault_registry.h"
#include "storage/disk_service.h"

namespace stratus::recovery::site {
class ReplicationService;
}

namespace stratus::recovery::service {

class RecoveryProvider final : public api::ResourceProvider {
 public:
  // What the recovery services use of other modules; all outlive the provider.
  struct Services {
    compute::Hypervisor* hv = nullptr;  // pull backups, checkpoints, block pulls
    compute::VmService* vms = nullptr;  // restored VMs: create, stop, start
    storage::DiskService* disks = nullptr;
    network::NetworkService* networks = nullptr;  // NICs recorded and restored; may be null
    // Site recovery's items in vaults (replicationProtectedItems); may be null.
    site::ReplicationService* replication = nullptr;
  };
  RecoveryProvider(api::RegionContext ctx, Services services);
  ~RecoveryProvider() override;

  std::string Namespace() const override { return "Stratus.RecoveryServices"; }
  std::vector<std::string> ResourceTypes() const override { return {"vaults"}; }
  std::vector<std::string> ChildTypes(const ResourceId& parent) const override;
  bool ChildrenInline(const ResourceId& parent, const std::string& child) const override;
  Result<api::ApiResponse> ListInlineChildren(const api::ApiRequest& req, const ResourceId& parent,
                                         const std::string& child) override;
  const api::Shape* BodyShape(const ResourceId& id, const std::string& method,
                              const std::string& action) const override;
  Result<api::ApiResponse> Put(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Get(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Patch(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Delete(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Post(const api::ApiRequest& req, const ResourceId& id,
                                const std::string& action) override;
  void DecorateListItem(const api::ApiRequest& req, const store::Record& rec, Json& item) override;
  int DeleteOrder(const std::string& type) const override;
  Status DeleteForGroup(const ResourceId& id, api::OperationContext& ctx) override;
  // Creates the platform key if missing, registers what happens to jobs a restart cut, resumes
  // instant restores and starts the scheduler.
  Status Start() override;
  // Jobs stop waiting, the scheduler and instant restores' fills stop. Idempotent.
  void Stop();

  // One scheduler pass at `now_ms` (the scheduler thread calls it; tests call it directly).
  void SchedulerTick(int64_t now_ms);

 private:
  Services services_;
  enum class Kind {
    kVault,
    kPolicy,
    kItem,
    kPoint,
    kJob,
    kReplItem,
    kReplPoint,
    kReplGroup,
    kReplGroupPoint,
    kReplPlan,
    kReplNetMapping,
    kReplPolicy,
    kOther
  };
  static Kind KindOf(const ResourceId& id);

  Result<api::ApiResponse> PutVault(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> PutPolicy(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> PutItem(const api::ApiRequest& req, const ResourceId& id);
  Status DeletePoints(const ResourceId& item, bool from_vault);

  // In construction order (each uses those above it).
  VaultRegistry vaults_;
  JobBook jobs_;
  VaultRedundancy redundancy_;
  RestoreJobs restores_;
  BackupJobs backups_;
  VaultActions actions_;
  FileRestore files_;
  Scheduler scheduler_;
};

}  // namespace stratus::recovery::service
