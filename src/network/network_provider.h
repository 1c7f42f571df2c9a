// Stratus.Network: the API of virtual networks (their subnets and peerings), network
// interfaces, network security groups (their rules), route tables (their routes) and public IP
// addresses; the logic
// is in NetworkService. Writes are applied before the response (201 created, 200 updated, with
// provisioningState Succeeded), as Azure's network provider does for these types.
#pragma once

#include "api/provider.h"
#include "network/network_service.h"

namespace stratus::network {

class NetworkProvider final : public api::ResourceProvider {
 public:
  NetworkProvider(api::RegionContext ctx, NetworkService* service)
      : ResourceProvider(std::move(ctx)), service_(service) {}

  std::string Namespace() const override { return "Stratus.Network"; }
  std::vector<std::string> ResourceTypes() const override {
    return {"virtualNetworks", "networkInterfaces", "networkSecurityGroups", "routeTables",
            "publicIPAddresses"};
  }
  std::vector<std::string> ChildTypes(const ResourceId& parent) const override;
  bool ChildrenInline(const ResourceId& parent, const std::string& child_type) const override;
  Result<api::ApiResponse> ListInlineChildren(const api::ApiRequest& req, const ResourceId& parent,
                                              const std::string& child_type) override;
  const api::Shape* BodyShape(const ResourceId& id, const std::string& method,
                              const std::string& action) const override;
  Result<api::ApiResponse> Put(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Get(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Delete(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Post(const api::ApiRequest& req, const ResourceId& id,
                                const std::string& action) override;
  void DecorateListItem(const api::ApiRequest& req, const store::Record& rec,
                        Json& item) override;
  int DeleteOrder(const std::string& type) const override;
  Status DeleteForGroup(const ResourceId& id, api::OperationContext& ctx) override;
  Status Start() override { return service_->Start(); }

 private:
  NetworkService* service_;
};

}  // namespace stratus::network
