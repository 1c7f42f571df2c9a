// ReplicationService: VM replication between paired regions (docs/site-recovery.md
// "Replication"), both ends.
//
// Target region (B), the API: `vaults/{v}/replicationProtectedItems/{name}` in B's vault (as
// Azure Site Recovery keeps items in the recovery vault), PUT
//   {"properties":{"sourceRegion","sourceVmId","policy":{"crashConsistentFrequencyInSeconds",
//    "recoveryPointRetentionInHours","rpoAlertThresholdInSeconds"}}}
// starts an operation that asks the source region over the peer link to replicate the VM (and
// learns its configuration); DELETE stops it there (best effort: a gone source is not needed) and
// removes the replicas and points. Points: `.../replicationProtectedItems/{name}/recoveryPoints`.
// B receives cycles with ReplicaReceiver; each committed cycle becomes a point record, and
// older points are thinned (every point of the last hour, then one an hour, none past the
// retention).
//
// Source region (A): an outbound record per item (`/providers/stratus.recoveryservices/
// outboundreplications/{item}`, not an ARM resource) and a scheduler thread that runs each
// item's cycle when due: the VM's lock (as a backup job takes it; a busy VM waits for the next
// tick), then a running VM's disks through a libvirt pull backup with checkpoint
// "srep-<item>-<seq>" incremental from the last confirmed one, a stopped VM's through qemu-nbd
// with the persistent bitmap of the same name; SendCycle; on success the older checkpoint goes.
// A failed cycle keeps the confirmed checkpoint: the next one sends a superset. A VM that is
// gone ends the outbound replication (B keeps its points).
//
// Thread-safety: API calls on request threads, peer routes on the peer link's workers, cycles on
// the scheduler thread; records are read-modify-written with etags.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/json_shape.h"
#include "api/provider.h"
#include "compute/hypervisor.h"
#include "compute/vm_service.h"
#include "network/network_service.h"
#include "recovery/site/block_hashes.h"
#include "recovery/site/failover_network.h"
#include "recovery/site/pairing_service.h"
#include "recovery/site/replica_receiver.h"
#include "storage/disk_engine.h"
#include "storage/disk_service.h"

namespace stratus::recovery::site {

namespace repl {
struct Policy;  // replication_internal.h
}  // namespace repl

inline constexpr char kReplItemType[] = "stratus.recoveryservices/vaults/replicationprotecteditems";
inline constexpr char kReplGroupType[] =
    "stratus.recoveryservices/vaults/replicationconsistencygroups";
inline constexpr char kReplPlanType[] =
    "stratus.recoveryservices/vaults/replicationrecoveryplans";
inline constexpr char kReplPointType[] =
    "stratus.recoveryservices/vaults/replicationprotecteditems/recoverypoints";

struct ReplicationDeps {
  api::RegionContext ctx;
  PairingService* pairing = nullptr;
  compute::Hypervisor* hv = nullptr;
  storage::DiskService* disks = nullptr;
  storage::DiskEngine* engine = nullptr;
  compute::VmService* vms = nullptr;  // failover creates the VM
  // The VM's NICs: recorded in A with each cycle, made in B by a failover (may be null).
  network::NetworkService* networks = nullptr;
};

class ReplicationService {
 public:
  explicit ReplicationService(ReplicationDeps deps);
  ~ReplicationService();

  // The peer routes of both ends (before the peer link starts).
  void RegisterRoutes();
  // Registers what happens to enable/disable operations a restart cut; starts the scheduler.
  Status Start();
  void Stop();

  // B: the API of replicationProtectedItems (the vault's provider routes here).
  static const api::Shape& ItemShape();
  Result<api::ApiResponse> PutItem(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> DeleteItem(const api::ApiRequest& req, const ResourceId& id);
  // The same, inside an operation that holds the locks (a resource group's deletion).
  Status DeleteNow(const ResourceId& id, api::OperationContext& octx) { return Disable(id, octx); }
  // POST {item}/unplannedFailover {"recoveryPointName"?, "targetResourceGroup"?, "vmName"?}:
  // an operation that makes the VM in this region from a point (the newest by default) without
  // any call to the source: its disks copied out of the replicas, its size, image and computer
  // name from the captured configuration. The item is then FailedOver; cycles are refused.
  static const api::Shape& FailoverShape();
  Result<api::ApiResponse> PostItem(const api::ApiRequest& req, const ResourceId& id,
                                    const std::string& action);
  // POST {item}/reprotect {"targetVaultName"?, "targetResourceGroup"?} (replication_reprotect.cc):
  // a failed-over item's VM is replicated back to the source region, as a new item of that
  // region's vault (this item's vault name and the original VM's resource group unless named),
  // built on the original VM's disks: the first cycle sends only the blocks that differ (what
  // the VM wrote here since the failover, what the source wrote after its last shipped cycle,
  // the cycles between that one and the failover point). The original VM is powered off and
  // held (VmIsReplicaBase) meanwhile. The operation ends when that first cycle is in the
  // source; properties.reprotect then gives its counts (bytesChanged, bytesSent, per disk).
  Result<api::ApiResponse> StartReprotect(const api::ApiRequest& req, const ResourceId& id);
  // POST {item}/changeRecoveryPoint {"recoveryPointName"}: a failed-over item's VM is stopped,
  // its disks are replaced by copies of another point (what it wrote since goes), and it starts
  // again; 409 FailoverCommitted after commit (or reprotect, or a failback). POST {item}/commit
  // {}: the point is final (reprotect commits too). Both 409 NotFailedOver before a failover.
  Result<api::ApiResponse> StartAfterFailover(const api::ApiRequest& req, const ResourceId& id,
                                              const std::string& action);
  // The body shape of POST {item}/{action}.
  static const api::Shape& ItemActionShape(const std::string& action);
  // Live health in a GET or LIST: rpoInSeconds, replicationHealth, recoveryPointCount; and
  // networkInterfaces, where each recorded NIC goes on a failover and on a test failover.
  void Decorate(const store::Record& rec, Json& item) const;

  // B: network mappings, `vaults/{v}/replicationNetworkMappings/{name}` (failover_network.h).
  static const api::Shape& NetworkMappingShape() { return FailoverNetwork::MappingShape(); }
  Result<api::ApiResponse> PutNetworkMapping(const api::ApiRequest& req, const ResourceId& id) {
    return net_->PutMapping(req, id);
  }
  Result<api::ApiResponse> DeleteNetworkMapping(const api::ApiRequest& req, const ResourceId& id) {
    return net_->DeleteMapping(req, id);
  }

  // B: consistency groups, `vaults/{v}/replicationConsistencyGroups/{g}`. Items join one with
  // `multiVmGroupName` (the group record is made then; PUT makes an empty one); their cycles are
  // taken at one instant in the source. A group point is a cycle every member has; the group's
  // RPO is the newest one's age. DELETE refuses a group with members. POST
  // {g}/unplannedFailover {"recoveryPointName"?, "targetResourceGroup"?} fails every member
  // over to the same point in one operation (all checked first). POST {g}/plannedFailover
  // {"targetResourceGroup"?}: every member's VM stops in the source and sends a last cycle, then
  // each fails over to its own (nothing written in the source is lost).
  static const api::Shape& GroupShape();
  static const api::Shape& GroupFailoverShape();
  Result<api::ApiResponse> PutGroup(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> DeleteGroup(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> PostGroup(const api::ApiRequest& req, const ResourceId& id,
                                     const std::string& action);
  Result<api::ApiResponse> ListGroupPoints(const api::ApiRequest& req, const ResourceId& gid);
  Result<api::ApiResponse> GetGroupPoint(const api::ApiRequest& req, const ResourceId& id);
  void DecorateGroup(const store::Record& rec, Json& item) const;

  // B: replication policies, `vaults/{v}/replicationPolicies/{name}` (replication_policies.cc):
  // PUT {"properties":{"providerSpecificInput":{"instanceType":"A2A",
  // "crashConsistentFrequencyInSeconds"|"crashConsistentFrequencyInMinutes",
  // "appConsistentFrequencyInMinutes","recoveryPointRetentionInHours"|"recoveryPointHistory"
  // (minutes),"rpoAlertThresholdInSeconds","multiVmSyncStatus":"Enable"}}}; items name one with
  // properties.policyId. A change of a policy in use is an operation that gives it to every
  // item using it (and their sources); DELETE refuses a policy in use (PolicyInUse).
  static const api::Shape& PolicyShape();
  Result<api::ApiResponse> PutReplicationPolicy(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> DeleteReplicationPolicy(const api::ApiRequest& req,
                                                   const ResourceId& id);

  // B: recovery plans, `vaults/{v}/replicationRecoveryPlans/{plan}` (replication_plans.cc):
  // PUT {"properties":{"groups":[{"replicationProtectedItems":[ids],"startGroupActions":[...],
  // "endGroupActions":[...]}],"vmReadiness":"GuestAgent"|"PowerState"}}; actions are scripts of
  // the region's script folder (<data-dir>/recovery-scripts, the operator's) or manual steps.
  // POST {plan}/unplannedFailover|testFailover|testFailoverCleanup runs the groups in order as
  // one operation (a group starts when every VM of the one before is up), every step recorded
  // with its start, end and outcome in properties.currentRun, and the RTO split into Stratus's
  // time, guest boot and manual waits. POST {plan}/acknowledgeManualAction {"actionName"}.
  static const api::Shape& PlanShape();
  Result<api::ApiResponse> PutPlan(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> DeletePlan(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> PostPlan(const api::ApiRequest& req, const ResourceId& id,
                                    const std::string& action);

  // A: runs every cycle that is due now (the scheduler calls it; tests too).
  void Tick();
  // A: runs `item`'s cycle now, due or not.
  Status RunCycle(const std::string& item);

  ReplicaReceiver& receiver() { return *receiver_; }

 private:
  struct Member;  // one VM's part of a cycle
  // `fn` as operation `op_name` on `id`, holding the locks of `keys` (Conflict if one is held):
  // 202 with the operation.
  Result<api::ApiResponse> StartItemOperation(const api::ApiRequest& req, const ResourceId& id,
                                              const std::string& op_name,
                                              const std::vector<std::string>& keys,
                                              std::function<Status(api::OperationContext&)> fn);
  struct VmDisk {
    std::string name, path, dev;  // "osdisk"/"lun<N>", the engine's path, the domain's target
  };
  // A VM's disks, in the order of the domain's targets (vda = OS disk, vdb = LUN 0, ...).
  Result<std::vector<VmDisk>> VmDisks(const store::Record& vm) const;
  Status Reprotect(const ResourceId& id, const Json& params, const std::string& caller,
                   api::OperationContext& octx);
  Status CommitFailover(const ResourceId& id);
  Status ChangeRecoveryPoint(const ResourceId& id, const std::string& point,
                             const std::string& caller, api::OperationContext& octx);
  // A, asked by the failed-over region: powers the VM off and holds it, answers what it wrote
  // after its last shipped cycle ({"itemId","baseSeq","full","divergence":{disk:[[off,len]]}}),
  // makes the reverse item in its vault (replicas on the VM's disks) and ends its own outbound
  // replication. Asked again with the same reverse item: the same answer.
  Result<Json> PeerReprotect(const PeerCaller& caller, const Json& body);
  // Failback: a reprotected item's failover writes point `pt` into the original VM's disks
  // (their replicas' layers committed into them: only the blocks that differ), gives them the
  // failover bitmap, frees and starts the VM. The replicas are spent (removed).
  Result<ResourceId> FailbackInto(const store::Record& rec, const store::Record& pt,
                                  const std::string& caller, api::OperationContext& octx);
  std::string ScriptDir() const;
  // A test failover's default VM name: the source VM's, with "-test".
  static std::string TestVmName(const store::Record& item);
  // Waits for operation `op` (another provider's, run on our behalf); Internal "<failed>: why"
  // unless it succeeds.
  Status WaitOperation(const std::string& op, const std::string& failed);
  // The plan's items in order, with their records (Conflict ReplicatedItemNotFound for a gone one).
  Result<std::vector<std::pair<ResourceId, store::Record>>> PlanItems(
      const store::Record& plan) const;
  // POST {plan}/commit | reprotect: each item of the plan (all failed over), one after the other.
  Result<api::ApiResponse> PlanAfterFailover(const api::ApiRequest& req, const store::Record& plan,
                                             const ResourceId& id, const std::string& action);
  // `point_kind`: each item's point (PointKindParam: "Latest", "LatestApplicationConsistent").
  Status RunPlan(const ResourceId& id, const std::string& type, const std::string& point_kind,
                 const std::string& caller, api::OperationContext& octx);
  struct GroupPoint {
    uint64_t seq = 0;
    int64_t captured_ms = 0;
    std::string name;
    Json properties;
  };
  static Status ValidateGroupName(const std::string& group);
  // What B tells A an item's group is: the vault and the group's name ("" for none).
  static std::string GroupTag(const ResourceId& item, const std::string& group);
  Status EnsureGroup(const ResourceId& gid, const std::string& caller);
  Result<std::vector<store::Record>> GroupMembers(const ResourceId& gid) const;
  // The cycles every member has a point of, oldest first.
  Result<std::vector<GroupPoint>> CommonPoints(const std::vector<store::Record>& members) const;
  Json GroupPointJson(const ResourceId& gid, const GroupPoint& gp, size_t members) const;
  Result<Json> FailoverParams(const ResourceId& id, Json params) const;
  // The policy `policy_id` (a name or id of a policy of item `item`'s vault) names: its id and
  // values. InvalidParameter (InvalidPolicyId, PolicyNotFound) naming properties.policyId.
  Result<std::pair<std::string, repl::Policy>> PolicyOf(const ResourceId& item,
                                                        const Json& policy_id) const;
  // The items of the policy's vault that use it.
  Result<std::vector<store::Record>> PolicyUsers(const ResourceId& policy) const;
  // Every member of `plan` (item, its failover's parameters) fails over; a planned one
  // (failoverType Planned) first stops every member's VM in the source (ShutDownAtSource).
  Status GroupFailover(const ResourceId& gid, std::vector<std::pair<ResourceId, Json>> plan,
                       const std::string& caller, api::OperationContext& octx);
  // A planned failover needs the item's source region paired and reachable.
  Status SourceReachable(const store::Record& item) const;
  // The consistency group of an outbound record ("" for none): its target region and B's name.
  static std::string GroupKey(const store::Record& outbound);
  // One cycle of `outs` (one item, or every enabled member of a group) at one instant: each
  // running member's disks through a pull backup started with the others' (the group paused
  // together for that moment), each stopped member's through qemu-nbd; then each member's
  // stream to the target and its own confirmation. A member that fails keeps its base; the
  // others' points exist (the target counts a group point only where every member has one).
  Status GroupCycle(std::vector<store::Record>& outs);
  Status PrepareMember(Member& m);
  // A cut cycle's resume (replication_cycle.cc): loaded, dropped, or kept after a cut.
  void LoadResume(Member& m);
  void DropCheckpoint(Member& m, const std::string& name);
  void DropResume(Member& m);
  bool KeepResume(Member& m, uint64_t seq);
  // `quiesce`: the running members' file systems frozen at the instant (an application-
  // consistent cycle; without an answering agent a member proceeds unfrozen).
  Status CaptureRunning(std::vector<Member*>& running, Json& meta, bool quiesce);
  Status OpenRunning(Member& m);
  Status OpenStopped(Member& m);
  Status FinishMember(Member& m, uint64_t seq, int64_t started);
  Status RecordFailure(std::vector<std::unique_ptr<Member>>& members, const Status& why);
  static BlockHashes* MapFor(Member& m, size_t i, uint64_t size);
  static std::vector<datapath::Extent> SeedExtents(const Member& m, const std::string& disk);
  datapath::NbdSource* ReferenceFor(Member& m, const std::string& disk);

  Result<Json> PeerEnable(const PeerCaller& caller, const Json& body);
  Result<Json> PeerDisable(const PeerCaller& caller, const Json& body);
  // A, planned failover: the VM is shut down (VmService poweroff: the guest's clean shutdown),
  // then the scheduler sends one last cycle and the outbound record becomes ReadyForFailover
  // with `finalSeq`, which the target polls through PeerStatus. A failure puts the record back
  // to Enabled with lastError (the VM stays stopped).
  Result<Json> PeerPrepareFailover(const PeerCaller& caller, const Json& body);
  Result<Json> PeerStatus(const PeerCaller& caller, const Json& body);
  Result<store::Record> OutboundFor(const PeerCaller& caller, const std::string& item) const;
  void PrepareTick(const store::Record& outbound);
  Result<ReplicaReceiver::Item> LookupItem(const std::string& item_id);
  Status OnPoint(const std::string& item_id, uint64_t seq, const Json& meta, const Json& stats);
  Result<store::Record> ItemById(const std::string& item_id) const;
  Status Enable(const ResourceId& id, api::OperationContext& octx);
  Status Disable(const ResourceId& id, api::OperationContext& octx);
  // A plan's next group started ahead (StartPrestage): its failover makes the VM paused and
  // waits here until the plan opens the gate (go: the VM runs; stop: all it made is removed).
  class PrestartGate {
   public:
    void Open(bool go);  // the first call decides
    // Waits until Open or `stopping` says true; true only for go.
    bool Wait(const std::function<bool()>& stopping);

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    int state_ = 0;  // 1 go, -1 stop
  };
  // With `gate`, the VM is made paused and the failover waits at the gate before it runs it
  // and marks the item FailedOver.
  Status Failover(const ResourceId& id, const Json& params, const std::string& caller,
                  api::OperationContext& octx, PrestartGate* gate = nullptr);
  // The VM of item `rec` at point `pt` made in this region (in `rg` as `vm_name`, with `tags`
  // added to the captured ones): its disks copied out of the replicas, or copy-on-write clones
  // of them (`clone`: a test failover), its NICs in the mapped networks (a test failover's in
  // its test networks; FailoverNetwork), then the VM from the configuration captured with the
  // point, waited for. `made` holds the disks made so far (the caller removes them on failure;
  // cleared once the VM owns them). `network` gets FailoverNetwork::Make's plan and notes.
  Result<ResourceId> MakeVmAt(const ResourceId& id, const store::Record& rec,
                              const store::Record& pt, bool clone, const std::string& rg,
                              const std::string& vm_name, const Json& tags,
                              const std::string& caller, api::OperationContext& octx,
                              std::vector<std::string>& made, Json* network,
                              bool start_paused = false);
  // Removes what an item's unfinished failover made (internal failoverMade: the VM with its
  // disks and NICs, disks and NICs made before it, isolated networks, disk copies).
  void RemoveFailoverMade(const store::Record& item);
  // RemoveFailoverMade, and item `id` is Protected again (it can fail over).
  void UndoFailover(const ResourceId& id);
  // Copies disk `disk` of item `item_id` out of its replica at point `seq` into `tmp` (qemu-img
  // convert: it stands on its own) with the failover bitmap, which tracks the VM's writes from
  // its first boot on (a reprotect sends only those back).
  Status CopyDiskOut(const std::string& item_id, const std::string& disk, uint64_t seq,
                     const std::string& tmp);
  // The disks of an item's replica (the folders of its replica directory), sorted.
  static std::vector<std::string> ReplicaDiskNames(const store::Record& rec);
  // Removes the disk copies in <data>/disks whose names start with `prefix` (FailoverTmpPrefix).
  void RemoveFailoverCopies(const std::string& prefix) const;
  // What a failover of item `item_id` in operation `op_id` names its disk copies.
  static std::string FailoverTmpPrefix(const std::string& op_id, const std::string& item_id);
  // A plan's next group, while this one's guests boot: item `id` (unless it fails back) is
  // marked FailingOver (no cycle lands: its point stays as it is; failoverMade names the copies
  // for RollBackInterrupted), its disks are copied out at `params`' point on a thread, under
  // the names MakeVmAt gives them, and its failover then runs on that thread (the plan's
  // operation `octx`, as `caller`) up to its VM, made and started paused: it waits at its gate
  // for RunPrestarted.
  Status StartPrestage(const ResourceId& id, const Json& params, const std::string& caller,
                       const api::OperationContext& octx);
  // Item `id`'s turn in plan run `op_id`: its started-ahead failover goes on (its VM runs) and
  // its outcome is returned (the failover's operation result); NotFound if it was not started.
  Result<Json> RunPrestarted(const std::string& op_id, const ResourceId& id);
  // The end of a plan's run: every failover started ahead of operation `op_id` that was not
  // run is stopped (what it made is removed, its item is Protected again), and copies no
  // failover took are removed.
  void FinishPrestage(const std::string& op_id);
  // What a failover's operation result says of the VM's NICs: networkInterfaces (id, MAC,
  // addresses), networkNotes (what differs from the source), testNetworks.
  void NetworkResult(const Json& network, api::OperationContext& octx) const;
  // The configuration the source recorded for the VM (network_service's NIC and VNET layouts
  // included): what A sends with the enable answer and with every cycle.
  Json SourceConfig(const store::Record& vm) const;
  // Test failover: the VM from clones of the point (pinned against thinning), tagged
  // stratus-test-failover, its NICs in the test networks (isolated copies of the source's unless
  // mapped); replication goes on. The cleanup deletes it, the isolated networks no NIC uses any
  // more, and unpins.
  Status TestFailover(const ResourceId& id, const Json& params, const std::string& caller,
                      api::OperationContext& octx);
  Status TestFailoverCleanup(const ResourceId& id, const std::string& caller,
                             api::OperationContext& octx);
  // Planned failover: the source shuts the VM down and sends a last cycle (PeerPrepareFailover);
  // then Failover to that point: nothing written in the source is lost.
  Status PlannedFailover(const ResourceId& id, Json params, const std::string& caller,
                         api::OperationContext& octx);
  // The planned failover's first half, for several items at once (a group, a plan's group):
  // each source shuts its VM down and sends a last cycle; returns item key → that point's name
  // once every one is here. Fails (PlannedFailoverFailed) when a source could not finish one.
  Result<std::map<std::string, std::string>> ShutDownAtSource(const std::vector<ResourceId>& items,
                                                              api::OperationContext& octx);
  void Thin(const store::Record& item);
  // At start: an item whose failover or test failover a restart cut (FailingOver, or
  // testFailoverState InProgress) loses what that made (internal failoverMade: the VM, disks,
  // NICs, isolated networks, disk copies) and takes a failover again (Protected; a drill:
  // Failed with the reason).
  void RollBackInterrupted();
  void SchedulerLoop();
  // B, every second on the scheduler thread: an item whose RPO crosses its
  // rpoAlertThresholdInSeconds (up: RpoThresholdExceeded; back down: RpoRecovered) is recorded
  // (internal rpoAlert, properties.lastRpoAlertTime) and alerts its vault's webhooks once.
  void HealthTick();
  int64_t last_health_ms_ = 0;  // the scheduler thread's

  ReplicationDeps d_;
  std::unique_ptr<ReplicaReceiver> receiver_;
  std::unique_ptr<FailoverNetwork> net_;
  std::mutex mu_;  // the scheduler's wait
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread scheduler_;
  struct Prestaged {
    ResourceId item;
    uint64_t seq = 0;
    std::shared_future<Status> done;            // its disks copied
    std::shared_ptr<PrestartGate> gate;         // where its failover waits
    std::shared_future<Result<Json>> failover;  // its outcome, once the gate opened
  };
  std::mutex prestage_mu_;
  std::map<std::string, Prestaged> prestaged_;  // by FailoverTmpPrefix
};

}  // namespace stratus::recovery::site
