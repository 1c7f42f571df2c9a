// Instant restore: a restore as a new VM ("restoreType": "AlternateLocation", "instant": true)
// whose VM starts before its disks hold any data, and whose disks fill in behind it.
//
//   1. PrepareDisk: for each disk of the point, a VaultNbdServer serves the disk read-only from
//      the vault on <data_dir>/nbd/<job>-<disk>.sock, and the new managed disk's qcow2 is created
//      empty with a backing file pointing at that socket:
//        json:{"driver":"raw","file":{"driver":"nbd","server":{"type":"unix","path":...}}}
//      (libvirt 9.0 reads this backing from the image header at start; it does not carry
//      reconnect-delay, which only libvirt >= 9.2 can express, so it is not written).
//   2. The provider creates and starts the VM as for a normal restore; Fill() then starts a
//      libvirt block pull on every disk and follows virDomainGetBlockJobInfo until each qcow2
//      has no backing file any more, writing progress (bytes filled / total) into the job.
//      The job records timeToVmStartedMs (the headline) and timeToFullyRestoredMs.
//   3. When every disk is filled the NBD servers stop and their sockets go.
//
// Robustness:
//   - A registry file <data_dir>/instant-restore/<job>.json exists while a job fills. At Start()
//     (stratusd start) every registered job serves its sockets again at once (QEMU's NBD client
//     reconnects on its next request) and continues in a new operation: pulls interrupted by
//     the restart are started again (a pull copies only what the overlay lacks).
//   - The VM powered off mid-fill: the servers keep serving, the fill waits until the VM runs
//     again, then pulls again. The VM deleted mid-fill: the job fails.
//   - A chunk that fails its checks: the guest gets EIO on that block, the pull fails, and the
//     job fails naming the point, the disk and the offset.
//   - The point's chunks are leased against GC while served (VaultNbdServer), and
//     PointInUse() tells the pruner to keep the point.
//
// Thread-safety: all methods are thread-safe; Fill/Resume block (they run in operations).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/operations.h"
#include "api/provider.h"
#include "compute/hypervisor.h"
#include "core/json.h"
#include "core/resource_id.h"
#include "recovery/datapath/vault_nbd_server.h"
#include "recovery/service/vault_registry.h"
#include "recovery/vault/vault.h"
#include "storage/disk_service.h"

namespace stratus::recovery::service {

// The status Fill() returns when stratusd stops mid-fill: the job stays InProgress and is
// resumed at the next start (the caller must not mark it failed).
inline constexpr char kInstantRestoreSuspended[] = "InstantRestoreSuspended";

class InstantRestore {
 public:
  // `hv`, `disks` and `vaults` outlive it.
  InstantRestore(api::RegionContext ctx, compute::Hypervisor* hv, storage::DiskService* disks,
                 VaultRegistry* vaults);
  ~InstantRestore();

  // Serves `disk` of `point` for job `job` and creates the overlay qcow2 `dest` (absolute)
  // backed by it. On error nothing of this disk is left behind.
  Status PrepareDisk(const ResourceId& job, vault::Vault& v, const vault::RecoveryPoint& point,
                     const std::string& disk, const std::string& dest);
  // Stops the servers of a job that failed before its VM existed.
  void Abandon(const ResourceId& job);

  // After the VM `vm_id` runs with the overlays: registers the job (for restarts), pulls every
  // disk of `targets` ([{disk, diskId}]) and returns when all are filled. Writes
  // timeToVmStartedMs (now - started_ms) and, at the end, timeToFullyRestoredMs into the job's
  // properties. Errors: the failed chunk (point, disk, offset), the VM vanishing, or
  // Unavailable kInstantRestoreSuspended when stratusd stops.
  Status Fill(const ResourceId& job, const ResourceId& point_id, const ResourceId& vm_id,
              const Json& targets, int64_t started_ms, api::OperationContext& octx);

  // Serves the sockets of every registered job again and continues their fills in new
  // operations. Called once at start-up (RestoreJobs::Start).
  void Start();
  // Makes running fills return kInstantRestoreSuspended and stops every server.
  void Stop();

  // True while job `job_name` is registered (its interrupted operation must not fail the job).
  bool Owns(const std::string& job_name) const;
  // True while a disk of recovery point `point_name` is served.
  bool PointInUse(const std::string& point_name) const;

 private:
  struct JobServers {
    std::string point_name;
    std::map<std::string, std::unique_ptr<datapath::VaultNbdServer>> by_disk;
  };
  std::string SocketPath(const std::string& job_name, const std::string& disk) const;
  std::string RegistryPath(const std::string& job_name) const;
  Status Serve(const std::string& job_name, vault::Vault& v, const vault::RecoveryPoint& point,
               const std::string& disk);
  void StopServers(const std::string& job_name);
  // Continues registered job `reg` after a restart (thread body): serves, pulls, ends the job.
  void Resume(const Json& reg);
  using ProgressFn = std::function<void(int percent, const std::string& message)>;
  // The pull loop over the registered job `reg`.
  Status PullAll(const ResourceId& job, const Json& reg, const ProgressFn& progress);
  void UpdateJob(const ResourceId& job, const std::function<void(Json& props)>& fn);
  bool stopping() const;

  api::RegionContext ctx_;
  compute::Hypervisor* hv_;
  storage::DiskService* disks_;
  VaultRegistry* vaults_;
  mutable std::mutex mu_;  // guards servers_, stopping_
  std::map<std::string, JobServers> servers_;  // by job name
  bool stopping_ = false;
  std::vector<std::thread> resume_threads_;  // started by Start(), joined by Stop()
};

}  // namespace stratus::recovery::service
