// Helpers the ReplicationService's files share (replication_service.cc, replication_cycle.cc,
// replication_plans.cc, replication_reprotect.cc); not for other modules.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/json.h"
#include "core/status.h"
#include "recovery/site/peer_client.h"
#include "store/store.h"

namespace stratus::recovery::site::repl {

// The source region's record of an item it replicates (not an ARM resource): its key is this
// prefix and the item's id, lowercase.
inline constexpr char kOutboundPrefix[] =
    "/providers/stratus.recoveryservices/outboundreplications/";
inline constexpr char kOutboundType[] = "stratus.recoveryservices/outboundreplications";

// Wall-clock milliseconds since the epoch (points' times, RPO).
int64_t WallMs();
// The checkpoint (running VM) or persistent bitmap (stopped VM) of an item's cycle.
std::string CheckpointName(const std::string& item, uint64_t seq);
// The persistent bitmap a failed-over VM's disks get before it first starts: every write the VM
// makes in this region from then on, which a reprotect sends back to the original region.
std::string FailoverBitmapName(const std::string& item);
using store::PutWithRetry;

// A replication policy: an item's own (properties.policy) or a vault's replicationPolicies
// resource the item names (properties.policyId).
struct Policy {
  int64_t frequency_s = 30, retention_h = 24, rpo_alert_s = 120;
  int64_t app_min = 60;  // 0: no application-consistent points
  Json ToJson() const {
    return {{"crashConsistentFrequencyInSeconds", frequency_s},
            {"appConsistentFrequencyInMinutes", app_min},
            {"recoveryPointRetentionInHours", retention_h},
            {"rpoAlertThresholdInSeconds", rpo_alert_s}};
  }
};
// `j` in Policy::ToJson's shape, every member optional (defaults: 30 s, 60 min, 24 h, the
// larger of 60 s and 4 points); `where` names it in errors.
Result<Policy> ParsePolicy(const Json& j, const std::string& where);
// The paired region's failure as ours: Unavailable "PeerRegionUnreachable" when it could not be
// reached, else its own error.
Status NotFromPeer(const std::string& who, const Result<PeerReply>& r);
// A failover's `recoveryPointType` (ASR's names): "Latest" (the default: the newest point) or
// "LatestApplicationConsistent" (the newest point taken with the guest's hooks and its file
// systems frozen); InvalidArgument for anything else.
Result<std::string> PointKindParam(const Json& params);

}  // namespace stratus::recovery::site::repl
