// FailoverNetwork: the network side of site recovery in the target region (docs/site-recovery.md
// "Network mapping"). Which VNET and subnet each NIC of a replicated VM lands in when it fails
// over (or is tested), and the making of those NICs and of a test failover's isolated networks.
//
// Network mappings, `vaults/{v}/replicationNetworkMappings/{name}` (ASR's names):
//   {"properties": {"primaryNetworkId": <the source region's VNET id>,
//                   "recoveryNetworkId": <a VNET of this region>,
//                   "testNetworkId"?: <a VNET of this region for test failovers>}}
// One mapping per source VNET and vault (Conflict "NetworkMappingExists"); the recovery and test
// VNETs must exist here (NotFound "InvalidResourceReference"). A mapped VNET may still be deleted:
// a failover that finds its target gone says so.
//
// Per item, `properties.vmNics` of the replicated item overrides the mapping for one NIC (ASR's
// VMNicInputDetails): {"nicId", "recoveryVMNetworkId", "recoveryVMSubnetName",
// "replicaNicStaticIPAddress", "recoveryPublicIpAddressId", "recoveryNetworkSecurityGroupId",
// "tfoVMNetworkId", "tfoVMSubnetName", "tfoIPAddress"}.
//
// What a NIC becomes (Resolve): the item's override, else the mapping of its source VNET; the
// subnet of the same name, else the one that holds its recorded address, else the first. Its
// recorded addresses when the target subnet has them free (else the next free ones, said in the
// notes), and its recorded MAC. A test failover without a test network gets an isolated copy of
// the source VNET (same address space and subnets, no default outbound access, no peering, no
// public IP): `<source vnet>-test` in the target resource group, made on first use, shared by the
// items of that VNET, deleted by the cleanup once no NIC uses it. A real failover of a NIC with no
// mapping leaves that NIC out (the VM still comes up; the notes and the item's vmNics say so).
//
// Thread-safe (NetworkService is; test failovers make their networks under one mutex). Two
// concurrent PUTs of mappings for the same source VNET under different names may both succeed
// (the check and the write are not one step); the first found is used.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "api/json_shape.h"
#include "api/provider.h"
#include "core/json.h"
#include "core/resource_id.h"
#include "network/network_service.h"
#include "store/store.h"

namespace stratus::recovery::site {

inline constexpr char kReplNetMappingType[] =
    "stratus.recoveryservices/vaults/replicationnetworkmappings";
// The tag an isolated test network carries: the id of the source VNET it copies.
inline constexpr char kTestNetworkTag[] = "stratus-test-network-of";

class FailoverNetwork {
 public:
  FailoverNetwork(api::RegionContext ctx, network::NetworkService* networks)
      : ctx_(std::move(ctx)), networks_(networks) {}

  static const api::Shape& MappingShape();
  Result<api::ApiResponse> PutMapping(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ApiResponse> DeleteMapping(const api::ApiRequest& req, const ResourceId& id);

  // An item's properties.vmNics, checked (the references must exist here); the members a GET
  // shows besides the input ones are taken and dropped (a GET-modify-PUT works).
  Result<Json> ParseVmNics(const Json& vm_nics, const std::string& subscription) const;

  // What each NIC the VM configuration `cfg` recorded becomes on a failover (`test`: a test
  // failover into resource group `rg`) of item `item`, in order:
  //   [{"nicId", "primary", "sourceNetworkId", "sourceSubnetName", "privateIPAddress",
  //     "macAddress", "networkId" (null: none), "subnetName", "staticIPAddress"?,
  //     "publicIPAddressId"?, "networkSecurityGroupId"?, "isolated"?, "from": "Item" |
  //     "NetworkMapping" | "TestNetwork" | "None", "reason"?}]
  Json Resolve(const store::Record& item, const Json& cfg, bool test, const std::string& rg) const;

  // Makes the NICs of VM `vm` for a failover (`test`) of `item` from `cfg` as Resolve says, each
  // named <vm>-nic<i>, created by `creator`; a test failover's isolated networks first. Returns
  // the RestoreNetwork plan made ({"nics","publicIps","notes"}) plus "testNetworks" (ids of the
  // isolated networks used) and "madeTestNetworks" (those this call made). On failure what was
  // made is removed (isolated networks only if this call made them and no NIC uses them).
  Result<Json> Make(const store::Record& item, const Json& cfg, const ResourceId& vm,
                    const std::string& vm_size, bool test, const std::string& creator);
  // Once the VM holds Make's NICs: `plan` gets "madeNics" (what they hold: id, macAddress,
  // ipConfigurations with subnetId and privateIPAddress) and a note for each primary address
  // that differs from the recorded one (a MAC that could not be kept is noted by Make).
  void Finish(Json& plan);
  // Deletes the isolated networks `ids` that no NIC uses any more (best effort, logged).
  void RemoveTestNetworks(const Json& ids);
  // A recovery plan's public IP step: public IP `name` (made Static with `sku` in the VM's
  // resource group by `creator`, or an existing one no other NIC uses) on the primary IP
  // configuration of failed-over VM `vm`'s primary NIC. Returns {"publicIpAddressId",
  // "ipAddress", "nicId"}. Conflict "VmHasNoNetworkInterface", "PublicIPAddressInUse"; the
  // codes of public IP and NIC writes (PublicIPAddressPoolNotConfigured, ...).
  Result<Json> AttachPublicIp(const ResourceId& vm, const std::string& name,
                              const std::string& sku, const std::string& creator);

 private:
  // The network mappings of vault `vault_key` (their bodies).
  Json Mappings(const std::string& vault_key) const;
  // The isolated copy of `source_vnet` in `vm`'s resource group, made if absent (*made).
  Result<ResourceId> EnsureTestNetwork(const Json& cfg, const std::string& source_vnet,
                                       const ResourceId& vm, const std::string& creator,
                                       bool* made);
  void RemoveTestNetworksLocked(const Json& ids);

  api::RegionContext ctx_;
  network::NetworkService* networks_;
  std::mutex test_mu_;  // test failovers' network making and removal, one at a time
};

}  // namespace stratus::recovery::site
