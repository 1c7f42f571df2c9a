// Stratus.Storage: the API of managed disks and snapshots (logic in DiskService).
#pragma once

#include <memory>

#include "api/provider.h"
#include "storage/disk_service.h"

namespace stratus::storage {

class StorageProvider final : public api::ResourceProvider {
 public:
  // `images` gives the files of the images disks are created from (compute owns images).
  StorageProvider(api::RegionContext ctx, DiskService* disks, const ImageFiles* images)
      : ResourceProvider(std::move(ctx)), disks_(disks), images_(images) {}

  std::string Namespace() const override { return "Stratus.Storage"; }
  std::vector<std::string> ResourceTypes() const override { return {"disks", "snapshots"}; }
  const api::Shape* BodyShape(const ResourceId& id, const std::string& method,
                              const std::string& action) const override;
  Result<api::ApiResponse> Put(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Get(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Patch(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Delete(const api::ApiRequest& req, const ResourceId& id) override;
  void DecorateListItem(const api::ApiRequest& req, const store::Record& rec,
                        Json& item) override;
  int DeleteOrder(const std::string& type) const override;
  Status DeleteForGroup(const ResourceId& id, api::OperationContext& ctx) override;
  Status Start() override;

 private:
  Result<api::ApiResponse> PutDisk(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> PutSnapshot(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> UpdateDisk(const api::ApiRequest& req, const ResourceId& id,
                                      const store::Record& existing, const Json& body);
  DiskService* disks_;
  const ImageFiles* images_;
};

}  // namespace stratus::storage
