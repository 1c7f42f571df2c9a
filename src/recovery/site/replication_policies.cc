// Replication policies (`vaults/{v}/replicationPolicies/{name}`, Azure Site Recovery's shape):
// a vault's named policy that items take with `properties.policyId`. A change of a policy that
// items use reaches each of them (and their source regions) in one operation.
#include <spdlog/spdlog.h>

#include <cmath>
#include <string>
#include <vector>

#include "api/resource_util.h"
#include "recovery/service/records.h"
#include "recovery/site/replication_internal.h"
#include "recovery/site/replication_service.h"

namespace stratus::recovery::site {

using api::ApiRequest;
using api::ApiResponse;
using service::ListAll;
using namespace repl;  // NOLINT: this module's own helpers

namespace {

constexpr char kPolicyWriteOp[] = "Stratus.RecoveryServices/vaults/replicationPolicies/write";

// What GET shows of a policy: Azure's A2A names (minutes) beside Stratus's own (seconds, hours).
Json PolicyDetails(const Policy& p) {
  Json d = p.ToJson();
  d["instanceType"] = "A2A";
  d["crashConsistentFrequencyInMinutes"] = (p.frequency_s + 59) / 60;
  d["recoveryPointHistory"] = p.retention_h * 60;  // minutes
  d["multiVmSyncStatus"] = "Enable";
  return d;
}

// An item that replicates (its source takes cycles): a policy change reaches its source.
bool Replicating(const store::Record& item) {
  const std::string s = item.body["properties"].value("protectionState", "");
  return s == "Enabling" || s == "InitialReplication" || s == "Protected";
}

}  // namespace

const api::Shape& ReplicationService::PolicyShape() {
  using api::Shape;
  static const Shape s = Shape::Resource(
      Shape::Object({{"providerSpecificInput",
                      Shape::Object({{"instanceType", Shape::String()},
                                     {"crashConsistentFrequencyInSeconds", Shape::Integer()},
                                     {"crashConsistentFrequencyInMinutes", Shape::Integer()},
                                     {"appConsistentFrequencyInMinutes", Shape::Integer()},
                                     {"recoveryPointRetentionInHours", Shape::Integer()},
                                     {"recoveryPointHistory", Shape::Integer()},
                                     {"rpoAlertThresholdInSeconds", Shape::Integer()},
                                     {"multiVmSyncStatus", Shape::String()}})}}));
  return s;
}

Result<std::pair<std::string, Policy>> ReplicationService::PolicyOf(const ResourceId& item,
                                                                    const Json& policy_id) const {
  const std::string given = policy_id.is_string() ? policy_id.get<std::string>() : "";
  const ResourceId vault = item.Parent();
  auto named = ResourceId::Parse(given);
  ResourceId pid = named.ok() ? *named : vault.Child("replicationPolicies", given);
  if (given.empty() || (!named.ok() && given.find('/') != std::string::npos) ||
      !EqualsIgnoreCase(pid.Parent().Key(), vault.Key()) ||
      !EqualsIgnoreCase(pid.FullType(), "Stratus.RecoveryServices/vaults/replicationPolicies"))
    return InvalidArgument(
        "'properties.policyId' names a replication policy of this vault (its "
        "name or id).",
        "properties.policyId", "InvalidPolicyId");
  auto rec = d_.ctx.store->Get(pid.Key());
  if (!rec.ok())
    return InvalidArgument("The vault has no replication policy '" + pid.name() + "'.",
                           "properties.policyId", "PolicyNotFound");
  const Json& d = rec->body["properties"]["providerSpecificDetails"];
  Policy p;
  p.frequency_s = d.value("crashConsistentFrequencyInSeconds", p.frequency_s);
  p.app_min = d.value("appConsistentFrequencyInMinutes", p.app_min);
  p.retention_h = d.value("recoveryPointRetentionInHours", p.retention_h);
  p.rpo_alert_s = d.value("rpoAlertThresholdInSeconds", p.rpo_alert_s);
  return std::make_pair(rec->body.value("id", pid.ToString()), p);
}

Result<std::vector<store::Record>> ReplicationService::PolicyUsers(const ResourceId& id) const {
  ASSIGN_OR_RETURN(auto items, ListAll(d_.ctx.store, id.Parent().Key() + "/", kReplItemType));
  std::vector<store::Record> users;
  for (auto& r : items)
    if (EqualsIgnoreCase(r.body["properties"].value("policyId", ""), id.ToString()))
      users.push_back(std::move(r));
  return users;
}

Result<ApiResponse> ReplicationService::PutReplicationPolicy(const ApiRequest& req,
                                                             const ResourceId& id) {
  RETURN_IF_ERROR(
      api::RejectUnknownKeys(req.body, {"properties", "name", "id", "type", "location"}, ""));
  Json props = req.body.value("properties", Json::object());
  RETURN_IF_ERROR(api::RejectUnknownKeys(props, {"providerSpecificInput"}, "properties"));
  Json in = props.value("providerSpecificInput", Json::object());
  const std::string where = "properties.providerSpecificInput";
  const std::string type = in.value("instanceType", "A2A");
  if (type != "A2A")
    return InvalidArgument("'instanceType' is A2A (VM to VM between regions).",
                           where + ".instanceType");
  if (in.value("multiVmSyncStatus", "Enable") != "Enable")
    return InvalidArgument(
        "'multiVmSyncStatus' is Enable: a consistency group's members are "
        "always captured at one instant.",
        where + ".multiVmSyncStatus");
  // Azure's names, in minutes, become Stratus's; both for one setting is ambiguous.
  Json own = Json::object();
  for (auto& [k, v] : in.items())
    if (k != "instanceType" && k != "multiVmSyncStatus" &&
        k != "crashConsistentFrequencyInMinutes" && k != "recoveryPointHistory")
      own[k] = v;
  auto minutes = [&](const char* az, const char* ours, int64_t hi, int64_t per,
                     bool round_up) -> Status {
    if (!in.contains(az)) return Status::Ok();
    if (in.contains(ours))
      return InvalidArgument(std::string("Give '") + az + "' or '" + ours + "', not both.",
                             where + "." + az);
    ASSIGN_OR_RETURN(int64_t m, api::GetInt(in, az, 1, hi));
    own[ours] = round_up ? (m * 60 + per - 1) / per : m * 60 / per;
    return Status::Ok();
  };
  RETURN_IF_ERROR(minutes("crashConsistentFrequencyInMinutes", "crashConsistentFrequencyInSeconds",
                          60, 1, false));
  RETURN_IF_ERROR(
      minutes("recoveryPointHistory", "recoveryPointRetentionInHours", 168 * 60, 3600, true));
  ASSIGN_OR_RETURN(Policy pol, ParsePolicy(own, where));

  auto existing = d_.ctx.store->Get(id.Key());
  store::Record rec =
      api::RecordToWrite(existing, id, d_.ctx.region, req.caller, d_.ctx.clock->NowMs());
  const Json before =
      existing.ok() ? existing->body["properties"].value("providerSpecificDetails", Json::object())
                    : Json::object();
  rec.body["properties"] = {{"friendlyName", id.name()},
                            {"providerSpecificDetails", PolicyDetails(pol)},
                            {"provisioningState", "Succeeded"}};
  ASSIGN_OR_RETURN(auto users, PolicyUsers(id));
  if (!existing.ok() || before == PolicyDetails(pol) || users.empty()) {
    ASSIGN_OR_RETURN(rec, d_.ctx.store->Put(rec, api::ConditionFromHeaders(req)));
    return api::ResourceResponse(rec, existing.ok() ? 200 : 201);
  }
  // A change that items use: the policy and every one of them in one operation (none may be
  // failing over, enabling or reprotecting meanwhile).
  std::vector<std::string> keys = {id.Key()};
  std::vector<ResourceId> items;
  for (auto& u : users) {
    keys.push_back(u.key);
    ASSIGN_OR_RETURN(ResourceId uid, ResourceId::Parse(u.body.value("id", "")));
    items.push_back(uid);
  }
  ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock(keys));
  ASSIGN_OR_RETURN(rec, d_.ctx.store->Put(rec, api::ConditionFromHeaders(req)));
  ASSIGN_OR_RETURN(
      std::string op,
      d_.ctx.ops->StartLocked(
          std::move(lock), id, kPolicyWriteOp, Json::object(),
          [this, items, pol](api::OperationContext& octx) -> Status {
            Json updated = Json::array();
            Status first;
            for (auto& item : items) {
              bool replicating = false;
              Status s = PutWithRetry(d_.ctx.store, item.Key(), [&](store::Record& r) {
                replicating = Replicating(r);
                r.body["properties"]["policy"] = pol.ToJson();
                if (replicating) r.body["properties"]["provisioningState"] = "Updating";
                return true;
              });
              // Its source takes the new intervals (a failed-over item keeps the policy for
              // its reprotect).
              if (s.ok() && replicating) s = Enable(item, octx);
              if (!s.ok()) {
                spdlog::warn("replication policy: item {}: {}", item.ToString(), s.ToString());
                if (first.ok())
                  first =
                      Status(s.code(), s.arm_code(), "item '" + item.name() + "': " + s.message());
                continue;
              }
              updated.push_back(item.ToString());
            }
            octx.result() = {{"items", updated}};
            return first;
          },
          req.caller));
  return api::AcceptedResponse(req, id.subscription(), op, api::ToArm(rec), 200);
}

Result<ApiResponse> ReplicationService::DeleteReplicationPolicy(const ApiRequest&,
                                                                const ResourceId& id) {
  auto rec = d_.ctx.store->Get(id.Key());
  if (!rec.ok()) return ApiResponse::NoContent(204);
  ASSIGN_OR_RETURN(auto users, PolicyUsers(id));
  if (!users.empty())
    return Conflict("Policy '" + id.name() + "' is used by " + std::to_string(users.size()) +
                        " replicated item(s), e.g. '" + users.front().body.value("id", "") +
                        "': give them another policy first.",
                    id.ToString(), "PolicyInUse");
  ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock({id.Key()}));
  RETURN_IF_ERROR(d_.ctx.store->Delete(id.Key()));
  return ApiResponse::NoContent(200);
}

}  // namespace stratus::recovery::site
