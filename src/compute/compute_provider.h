// Stratus.Compute: the API of virtual machines, images and VM sizes.
//
// A VM is a store record (desired state) plus a libvirt domain "stratus-<vmId>" (actual state);
// VmService (vm_service.h) keeps the two together, this provider validates requests and answers
// them. Images are ImageResources (image_resources.h).
#pragma once

#include <memory>
#include <string>

#include "api/provider.h"
#include "compute/hypervisor.h"
#include "compute/image_resources.h"
#include "compute/images.h"
#include "compute/vm_service.h"
#include "compute/vm_sizes.h"
#include "storage/disk_service.h"

namespace stratus::compute {

class ComputeProvider final : public api::ResourceProvider {
 public:
  // `vms`, `disks` and `images` outlive it.
  ComputeProvider(api::RegionContext ctx, VmService* vms, storage::DiskService* disks,
                  ImageCatalog* images, ImageImportOptions image_import = {});

  std::string Namespace() const override { return "Stratus.Compute"; }
  std::vector<std::string> ResourceTypes() const override { return {"virtualMachines", "images"}; }
  std::vector<std::string> SubscriptionCollections() const override {
    return {"locations", "platformImages"};
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
  void DecorateListItem(const api::ApiRequest& req, const store::Record& rec, Json& item) override;
  int DeleteOrder(const std::string& type) const override;
  Status DeleteForGroup(const ResourceId& id, api::OperationContext& ctx) override;
  Status Start() override;

 private:
  Result<api::ApiResponse> PutVm(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> StartVmOperation(const api::ApiRequest& req, const ResourceId& id,
                                            const std::string& action, Json params,
                                            std::vector<std::string> extra_keys = {});

  VmService* vms_;
  storage::DiskService* disks_;
  ImageCatalog* images_;
  std::unique_ptr<ImageResources> image_resources_;
};

}  // namespace stratus::compute
