// SiteRecoveryProvider: Stratus.RecoveryServices' region-level site recovery resources
// (docs/api.md "Site recovery"):
//   POST   /subscriptions/{sub}/providers/Stratus.RecoveryServices/generatePairingToken
//   GET    /subscriptions/{sub}/providers/Stratus.RecoveryServices/regionPairings[/{region}]
//   PUT    .../regionPairings/{region}                  {"properties":{"pairingToken":"SP1..."}}
//   DELETE .../regionPairings/{region}
//   POST   .../regionPairings/{region}/checkConnection
// Pairing and the connection check call the peer region synchronously, bounded by the peer
// link's call timeout (they are single round trips; there is nothing to resume after a crash).
#pragma once

#include "api/provider.h"
#include "recovery/site/pairing_service.h"

namespace stratus::recovery::site {

class SiteRecoveryProvider final : public api::ResourceProvider {
 public:
  SiteRecoveryProvider(api::RegionContext ctx, PairingService* pairing)
      : ResourceProvider(std::move(ctx)), pairing_(pairing) {}

  std::string Namespace() const override { return "Stratus.RecoveryServices"; }
  std::vector<std::string> ResourceTypes() const override { return {}; }
  std::vector<std::string> SubscriptionCollections() const override {
    return {"regionPairings", "generatePairingToken"};
  }
  Result<api::ApiResponse> SubscriptionGet(const api::ApiRequest& req, const std::string& sub,
                                           const std::vector<std::string>& rest) override;
  Result<api::ApiResponse> SubscriptionWrite(const api::ApiRequest& req, const std::string& sub,
                                             const std::vector<std::string>& rest) override;

  Result<api::ApiResponse> Put(const api::ApiRequest& req, const ResourceId& id) override;
  Result<api::ApiResponse> Delete(const api::ApiRequest& req, const ResourceId& id) override;
  Status DeleteForGroup(const ResourceId&, api::OperationContext&) override {
    return Status::Ok();
  }

 private:
  Json Shown(const store::Record& rec, const std::string& sub) const;
  PairingService* pairing_;
};

}  // namespace stratus::recovery::site
