// RestoreNetwork: the network interfaces of a VM restored as a new VM (restoreType
// AlternateLocation), planned when the restore is asked for and made when it runs.
//
// The restore request's `networkProfile` says which:
//   "networkInterfaces": [{"id": <NIC>, "properties": {"primary", "deleteOption"}}]
//       existing NICs no VM holds (deleteOption Detach unless given);
//   "networkInterfaceConfigurations": [{"name": <new NIC>, "properties": {"primary",
//       "enableIPForwarding", "deleteOption", "networkSecurityGroup": {"id"}, "macAddress",
//       "ipConfigurations": [{"name", "properties": {"subnet": {"id"}, "primary",
//           "privateIPAddress" (Static; absent: the next free one),
//           "publicIPAddress": {"id"} (an existing one) |
//           "publicIPAddressConfiguration": {"name", "sku": {"name"},
//                                           "properties": {"publicIPAllocationMethod"}}}}]}}]
//       new NICs (deleteOption Delete unless given), with new public IPs if asked.
// Both lists may be used together; exactly one NIC is primary; as many as the VM size allows.
// An empty networkProfile ({}) restores a VM without NICs.
//
// Without a networkProfile the new VM gets NICs like those the point recorded
// (network/nic_layout.h): new NICs "<vm>-nic<i>" in the same subnets, with the same security
// group and IP forwarding, each recorded private address when it is still free (else the next
// free one of the subnet), and each recorded public IP when it still exists and no NIC uses it,
// so that a reserved address comes back with the VM. A recorded subnet or security group that
// no longer exists is an error naming it (pass a networkProfile). What differs from the record
// is said in the plan's "notes", which the job's result shows.
//
// Plan() checks everything and writes nothing. Make() creates the plan's public IPs, then its
// NICs, each created only if its name is free, with systemData.createdBy `creator` (Creator():
// the caller and the job); RemoveMade() deletes the plan's resources whose createdBy is that
// creator (NICs before public IPs), so what a restore made is found again even when stratusd
// was killed between creating a resource and anything else. Thread-safe (NetworkService is).
#pragma once

#include <string>

#include "api/provider.h"
#include "compute/vm_sizes.h"
#include "core/json.h"
#include "core/resource_id.h"
#include "network/network_service.h"

namespace stratus::recovery::service {

class RestoreNetwork {
 public:
  // `networks` may be null (a region without networking): then a plan has no NIC, and a
  // networkProfile that asks for one is InvalidArgument "FeatureNotAvailable".
  RestoreNetwork(api::RegionContext ctx, network::NetworkService* networks)
      : ctx_(std::move(ctx)), networks_(networks) {}

  // The plan for VM `vm` of size `size`: `request` is the restore body (its networkProfile, if
  // any), `recorded` the point's recorded NICs (nic_layout.h JSON). Returns
  //   {"nics": [{"id", "primary", "deleteOption", "create", "body"?}],
  //    "publicIps": [{"id", "body"}], "notes": ["..."]}
  // InvalidArgument naming the member (networkProfile...), NotFound "InvalidResourceReference"
  // for a NIC, subnet, security group or public IP that does not exist, Conflict "NicInUse" /
  // "ResourceExists", InvalidArgument "PublicIPAddressInUse"; the codes of NIC and public IP
  // creation.
  Result<Json> Plan(const Json& request, const Json& recorded, const ResourceId& vm,
                    const compute::VmSize& size);

  // Who a restore's resources are created by: "<caller> (restore <job>)".
  static std::string Creator(const std::string& caller, const std::string& job);
  // Creates what `plan` makes, as `creator`. The first failure is returned (what was made
  // before it stays for RemoveMade()).
  Status Make(const Json& plan, const std::string& creator);
  // Deletes the resources `plan` creates that exist and were created by `creator`, NICs
  // first; failures are logged.
  void RemoveMade(const Json& plan, const std::string& creator);

  // The VM's properties.networkProfile for `plan` (the primary NIC first).
  static Json VmNetworkProfile(const Json& plan);
  // What the restored VM got: [{"id", "ipConfigurations": [{"name", "privateIPAddress",
  // "publicIPAddress"?}]}], read back from the NICs.
  Json Summary(const Json& plan);

 private:
  Result<Json> Explicit(const Json& profile, const ResourceId& vm);
  Result<Json> LikeRecorded(const Json& recorded, const ResourceId& vm);
  Status Check(Json& plan, const ResourceId& vm, const compute::VmSize& size, bool explicit_plan);

  api::RegionContext ctx_;
  network::NetworkService* networks_;
};

}  // namespace stratus::recovery::service
