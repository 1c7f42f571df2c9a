// VmService: virtual machines — their desired state in the store and the engine work that
// makes it real. The Stratus.Compute API (compute_provider.h) validates requests and answers
// them through it; other modules call it directly instead of the API's HTTP-shaped entry points
// (recovery creates, stops and starts the VMs it restores), and the disk service asks it about
// the VMs that own disks (storage::DiskOwners).
//
// Every change is recorded first (provisioningState Creating/Updating/Deleting), then made real
// by an idempotent operation on the VM (resumed after a restart, see Start). Calls that start
// operations take the locks of the VM and of the disks they touch: Conflict while another
// operation holds one. Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "api/provider.h"
#include "compute/hypervisor.h"
#include "compute/images.h"
#include "compute/vm_sizes.h"
#include "network/nic_bindings.h"
#include "storage/disk_service.h"

namespace stratus::compute {

class VmService final : public storage::DiskOwners {
 public:
  // `hv`, `disks`, `images` and `nics` outlive it.
  VmService(api::RegionContext ctx, Hypervisor* hv, storage::DiskService* disks,
            ImageCatalog* images, network::NicBindings* nics)
      : ctx_(std::move(ctx)), hv_(hv), disks_(disks), images_(images), nics_(nics) {}

  // Engine name of a VM's domain.
  static std::string DomainName(const std::string& vm_id) { return "stratus-" + vm_id; }
  // "vdb" for LUN 0, ... (vda is the OS disk).
  static std::string TargetForLun(int lun);

  // A VM as it was written, and the operation that makes it real ("" when nothing changed: the
  // same etag, no operation).
  struct WriteResult {
    store::Record record;
    std::string operation;
    bool created = false;
  };
  // Creates or updates VM `id` to `body` (a PUT's body: location, tags, properties) as
  // `caller`, under `cond` (If-Match / If-None-Match). InvalidArgument naming the field,
  // PreconditionFailed, Conflict (size change of a running VM, a concurrent change, a lock).
  // `start_paused` (a new VM only): its domain starts with the vCPUs paused (a recovery plan's
  // next group, made while the group before boots); Resume runs it.
  Result<WriteResult> Apply(const ResourceId& id, const Json& body, const std::string& caller,
                            const store::WriteCondition& cond = {}, bool start_paused = false);
  // Runs VM `id` that was made with `start_paused` (its guest's first instruction): a few ms.
  // OK when it runs already; NotFound for an unknown VM.
  Status Resume(const ResourceId& id);
  // Apply for other modules: the id of the operation that makes the VM real ("" if none).
  Result<std::string> Write(const ResourceId& id, const Json& body, const std::string& caller);
  // Starts power action `action` ("start", "poweroff", "deallocate", "restart"; lowercase) on
  // VM `id`: the operation's id. NotFound for an unknown VM, Conflict "OperationNotAllowed"
  // while it is Creating or Deleting.
  Result<std::string> Act(const ResourceId& id, const std::string& action,
                          const std::string& caller);
  // Starts action `action` with `params` as an operation also holding `extra_keys` (resize,
  // capturesnapshots: validated by the caller).
  Result<std::string> StartAction(const ResourceId& id, const std::string& action, Json params,
                                  const std::string& caller,
                                  std::vector<std::string> extra_keys = {});
  // Marks VM `id` Deleting and starts its deletion; `delete_disks` -1 follows each disk's
  // deleteOption, 0 keeps them, 1 deletes them.
  Result<std::string> Delete(const ResourceId& id, int delete_disks, const std::string& caller);
  // Deletes VM `id` and its disks now (inside a resource group's deletion).
  Status DeleteNow(const ResourceId& id);

  // The NIC ids of a VM's properties.networkProfile, primary first.
  static std::vector<std::string> NicIds(const Json& properties);

  // "running", "stopped", "deallocated", ... as the engine reports it.
  std::string PowerState(const store::Record& vm);
  // The instance view ARM returns with $expand=instanceView.
  Json InstanceView(const store::Record& vm);

  // Registers how interrupted VM operations resume and reconciles the engine with the store:
  // VMs that should exist but do not are defined again and started when they should run;
  // VMs left Creating/Updating without an operation get one.
  Status Start();

  // storage::DiskOwners.
  Result<bool> LiveSnapshot(const std::string& vm_id,
                            const std::vector<std::pair<std::string, std::string>>& targets,
                            bool quiesce) override;
  bool IsRunning(const std::string& vm_id) override;
  Status ApplyTier(const std::string& vm_id, const ResourceId& disk) override;

 private:
  struct VmPlan;  // validated desired state of a PUT
  Result<VmPlan> Plan(const Json& body, const ResourceId& id, const store::Record* existing);

  // Operation bodies (idempotent).
  Status EnsureVm(const ResourceId& id, api::OperationContext& octx, const std::string& caller);
  Status RunAction(const ResourceId& id, const std::string& action, const Json& params,
                   api::OperationContext& octx, const std::string& caller);
  Status DeleteVm(const ResourceId& id, int delete_disks /*-1 default, 0 no, 1 yes*/,
                  api::OperationContext* octx);
  Status AttachDetach(const ResourceId& id, const Json& params, api::OperationContext& octx);
  Status CaptureSnapshots(const ResourceId& id, const Json& params, api::OperationContext& octx,
                          const std::string& caller);

  Result<DomainSpec> BuildDomainSpec(const store::Record& vm);
  // Binds the VM's NICs (primary one named after the computer) and releases those it left.
  Status BindNics(const store::Record& vm);
  Result<IoTune> TuneFor(const VmSize& size, const std::string& disk_key);
  Status SetProvisioningState(const ResourceId& id, const std::string& state);

  api::RegionContext ctx_;
  Hypervisor* hv_;
  storage::DiskService* disks_;
  ImageCatalog* images_;
  network::NicBindings* nics_;
};

}  // namespace stratus::compute
