// Stratus.Compute: virtual machines, images, VM sizes.
//
// A VM is a store record (desired state) plus a libvirt domain "stratus-<vmId>" (actual state).
// Every engine step runs in an operation and is idempotent, so an operation interrupted by a
// crash of stratusd is resumed at the next start and either completes or cleans up. Domains
// are never killed on start-up: VMs outlive the daemon.
#pragma once

#include <memory>
#include <string>

#include "api/provider.h"
#include "compute/hypervisor.h"
#include "compute/image_resources.h"
#include "compute/images.h"
#include "compute/vm_sizes.h"
#include "storage/disk_service.h"

namespace stratus::compute {

class ComputeProvider final : public api::ResourceProvider {
 public:
  ComputeProvider(api::RegionContext ctx, Hypervisor* hv, storage::DiskService* disks,
                  ImageCatalog* images, ImageImportOptions image_import = {});

  std::string Namespace() const override { return "Stratus.Compute"; }
  std::vector<std::string> ResourceTypes() const override {
    return {"virtualMachines", "images"};
  }
  const api::Shape* BodyShape(const ResourceId& id, const std::string& method,
                              const std::string& action) const override;
  Result<api::ApiResponse> Put(const api::ApiRequest& req, const ResourceId& id) override;
  Result<Upload> BeginUpload(const api::ApiRequest& req, const ResourceId& id,
                             const std::string& part) override;
  Result<api::ApiResponse> FinishUpload(const api::ApiRequest& req, const ResourceId& id,
                                        const std::string& part, api::BodySink& sink,
                                        uint64_t received) override;
  Result<api::ApiResponse> Get(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Patch(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Delete(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Post(const api::ApiRequest& req, const ResourceId& id,
                                const std::string& action) override;
  Result<api::ApiResponse> GetSub(const api::ApiRequest& req, const ResourceId& id,
                                  const std::string& sub) override;
  Result<api::ApiResponse> SubscriptionGet(const api::ApiRequest& req, const std::string& sub,
                                           const std::vector<std::string>& rest) override;
  void DecorateListItem(const api::ApiRequest& req, const store::Record& rec,
                        Json& item) override;
  int DeleteOrder(const std::string& type) const override;
  Status DeleteForGroup(const ResourceId& id, api::OperationContext& ctx) override;
  Status Start() override;

  // Engine name of a VM's domain.
  static std::string DomainName(const std::string& vm_id) { return "stratus-" + vm_id; }
  // "vdb" for LUN 0, ... (vda is the OS disk).
  static std::string TargetForLun(int lun);

 private:
  struct VmPlan;  // validated desired state of a PUT
  Result<VmPlan> PlanVm(const api::ApiRequest& req, const ResourceId& id,
                        const store::Record* existing);
  Result<api::ApiResponse> PutVm(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> StartVmOperation(const api::ApiRequest& req, const ResourceId& id,
                                            const std::string& action, Json params,
                                            std::vector<std::string> extra_keys = {});

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
  Result<IoTune> TuneFor(const VmSize& size, const std::string& disk_key);
  Json InstanceView(const store::Record& vm);
  std::string PowerState(const store::Record& vm);
  Result<bool> LiveSnapshot(const std::string& vm_id,
                            const std::vector<std::pair<std::string, std::string>>& targets,
                            bool quiesce);
  Status SetProvisioningState(const ResourceId& id, const std::string& state);

  Hypervisor* hv_;
  storage::DiskService* disks_;
  ImageCatalog* images_;
  std::unique_ptr<ImageResources> image_resources_;
};

}  // namespace stratus::compute
