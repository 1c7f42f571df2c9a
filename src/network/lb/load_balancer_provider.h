// The API of Stratus.Network/loadBalancers (LoadBalancerService does the work): PUT, GET,
// DELETE and list of load balancers; GET and list of their sub-resources
// (frontendIPConfigurations, backendAddressPools, probes, loadBalancingRules, inboundNatRules,
// outboundRules), which are changed through a PUT of the load balancer, as ARM allows.
#pragma once

#include "api/provider.h"
#include "network/lb/load_balancer_service.h"

namespace stratus::network {

class LoadBalancerProvider final : public api::ResourceProvider {
 public:
  LoadBalancerProvider(api::RegionContext ctx, LoadBalancerService* service)
      : ResourceProvider(std::move(ctx)), service_(service) {}

  std::string Namespace() const override { return "Stratus.Network"; }
  std::vector<std::string> ResourceTypes() const override { return {"loadBalancers"}; }
  std::vector<std::string> ChildTypes(const ResourceId& parent) const override;
  bool ChildrenInline(const ResourceId&, const std::string&) const override { return true; }
  Result<api::ApiResponse> ListInlineChildren(const api::ApiRequest& req, const ResourceId& parent,
                                              const std::string& child_type) override;
  Result<api::ApiResponse> Put(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Get(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Delete(const api::ApiRequest& req, const ResourceId& id) override;
  void DecorateListItem(const api::ApiRequest& req, const store::Record& rec, Json& item) override;
  // After the NICs (20) that are in its pools, before the public IPs (30) of its frontends.
  int DeleteOrder(const std::string&) const override { return 25; }
  Status DeleteForGroup(const ResourceId& id, api::OperationContext& ctx) override;

 private:
  LoadBalancerService* service_;
};

}  // namespace stratus::network
