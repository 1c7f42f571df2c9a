// The records Stratus.RecoveryServices keeps in the state store (layout: recovery_provider.h)
// and the small read-modify-write helpers every part of the service shares.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/resource_id.h"
#include "core/status.h"
#include "network/network_service.h"
#include "recovery/policy/backup_policy.h"
#include "store/store.h"

namespace stratus::recovery::service {

// Store types (api::TypeKey) of the records.
inline constexpr char kVaultType[] = "stratus.recoveryservices/vaults";
inline constexpr char kPolicyType[] = "stratus.recoveryservices/vaults/backuppolicies";
inline constexpr char kItemType[] = "stratus.recoveryservices/vaults/protecteditems";
inline constexpr char kPointType[] =
    "stratus.recoveryservices/vaults/protecteditems/recoverypoints";
inline constexpr char kJobType[] = "stratus.recoveryservices/vaults/backupjobs";

// Every record of `type` ("" = any) below key `prefix`, all pages.
using store::ListAll;

// Read-modify-write of a resource's "properties", for the job and status records kept up to
// date while work runs. A record that is gone is left alone; a failed write is logged (the work
// itself goes on).
void UpdateProperties(store::Store* store, const ResourceId& id,
                      const std::function<void(Json& properties)>& fn);

// The backup policy of protected item `item`. NotFound "PolicyNotFound" when it is gone.
Result<policy::BackupPolicy> PolicyOf(store::Store* store, const store::Record& item);

// Writes the end of a job into its properties: endTime, durationMs and duration ("12.345s").
void StampJobEnd(Json& properties, int64_t started_ms, int64_t now_ms);

// The name a VM's disk has in a recovery point: "osdisk", or "lun<N>" for data disk N (-1 is the
// OS disk).
std::string DiskKeyName(int lun);

// What a recovery point keeps of a VM's configuration (size, image, disks, computer name, tags):
// a restore (or a failover) rebuilds the VM from it.
Json VmConfigOf(const store::Record& vm);
// VmConfigOf plus the VM's NICs as `networks` records them (network/nic_layout.h) in
// "networkInterfaces" (those that cannot be read: their ids in "networkInterfacesMissing"), and
// with `with_vnets` the layouts of their VNETs in "virtualNetworks" (site recovery: a test
// failover copies them). `networks` may be null (a region without networking).
Json VmConfigWithNetwork(const store::Record& vm, network::NetworkService* networks,
                         bool with_vnets);

}  // namespace stratus::recovery::service
