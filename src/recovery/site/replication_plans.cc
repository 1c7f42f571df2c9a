// ReplicationService, recovery plans: `vaults/{v}/replicationRecoveryPlans/{plan}` in the target
// region (docs/site-recovery.md "Recovery plans"). A plan is ordered groups of the vault's
// replicated items, with start and end actions per group (scripts from the region's script
// folder, manual steps acknowledged through the API); running it (unplanned or test failover)
// is one operation that reports every step and the RTO.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <functional>
#include <set>
#include <thread>

#include "api/resource_util.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "recovery/service/records.h"
#include "recovery/site/replication_internal.h"
#include "recovery/site/replication_service.h"

namespace stratus::recovery::site {

using api::ApiRequest;
using api::ApiResponse;
using service::ListAll;
using namespace repl;  // NOLINT: this module's own helpers

namespace {

constexpr char kPlanRunOp[] =
    "Stratus.RecoveryServices/vaults/replicationRecoveryPlans/failover/action";
constexpr int kMaxGroups = 7;

bool ValidScriptName(const std::string& n) {
  if (n.empty() || n.size() > 128 || n[0] == '.') return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return false;
  return true;
}

// A PublicIpActionDetails action's customDetails, checked: {"instanceType",
// "replicationProtectedItem": an item of the plan (id, or name in the plan's vault),
// "publicIpAddressName", "sku"?: "Standard" (default) | "Basic"}.
Result<Json> PublicIpAction(const Json& cd, const std::string& where,
                            const std::set<std::string>& plan_items, const ResourceId& plan) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      cd, {"instanceType", "replicationProtectedItem", "publicIpAddressName", "sku"}, where));
  std::string item = cd.value("replicationProtectedItem", "");
  if (!item.empty() && item[0] != '/')
    item = plan.Parent().Child("replicationProtectedItems", item).ToString();
  auto iid = ResourceId::Parse(item);
  if (!iid.ok() || !plan_items.count(iid->Key()))
    return InvalidArgument("'replicationProtectedItem' must be an item of this plan.",
                           where + ".replicationProtectedItem", "ReplicatedItemNotFound");
  std::string name = cd.value("publicIpAddressName", "");
  RETURN_IF_ERROR(ValidateResourceName(name, "public IP address", 80));
  std::string sku = cd.value("sku", "Standard");
  if (sku != "Standard" && sku != "Basic")
    return InvalidArgument("'sku' is Standard or Basic.", where + ".sku");
  return Json{{"instanceType", "PublicIpActionDetails"},
              {"replicationProtectedItem", iid->ToString()},
              {"publicIpAddressName", name},
              {"sku", sku}};
}

}  // namespace

std::string ReplicationService::ScriptDir() const {
  return JoinPath(d_.ctx.data_dir, "recovery-scripts");
}

const api::Shape& ReplicationService::PlanShape() {
  using api::Shape;
  static const Shape action = Shape::Object(
      {{"actionName", Shape::String()},
       {"customDetails", Shape::Object({{"instanceType", Shape::String()},
                                        {"scriptName", Shape::String()},
                                        {"timeoutInSeconds", Shape::Integer()},
                                        {"description", Shape::String()},
                                        {"replicationProtectedItem", Shape::String()},
                                        {"publicIpAddressName", Shape::String()},
                                        {"sku", Shape::String()}})}});
  static const Shape s = Shape::Resource(Shape::Object(
      {{"vmReadiness", Shape::String()},
       {"groups", Shape::ArrayOf(Shape::Object(
                      {{"replicationProtectedItems", Shape::ArrayOf(Shape::String())},
                       {"startGroupActions", Shape::ArrayOf(action)},
                       {"endGroupActions", Shape::ArrayOf(action)}}))}}));
  return s;
}

Result<ApiResponse> ReplicationService::PutPlan(const ApiRequest& req, const ResourceId& id) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(req.body, {"properties", "name", "id", "type", "location"},
                                         ""));
  Json props = req.body.value("properties", Json::object());
  RETURN_IF_ERROR(api::RejectUnknownKeys(props, {"groups", "vmReadiness"}, "properties"));
  std::string readiness = props.value("vmReadiness", "GuestAgent");
  if (readiness != "GuestAgent" && readiness != "PowerState")
    return InvalidArgument("'properties.vmReadiness' is GuestAgent (a group is up when each VM's "
                           "guest agent answers) or PowerState (when each VM runs).",
                           "properties.vmReadiness");
  Json groups = props.value("groups", Json::array());
  if (groups.empty() || groups.size() > kMaxGroups)
    return InvalidArgument("A plan has 1 to " + std::to_string(kMaxGroups) + " groups.",
                           "properties.groups");
  std::set<std::string> items, actions;
  std::set<std::string> groups_of;  // the items of the groups so far (lower-case ids)
  const std::string vault_key = id.Parent().Key();
  Json clean = Json::array();
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string at = "properties.groups[" + std::to_string(g) + "]";
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        groups[g], {"replicationProtectedItems", "startGroupActions", "endGroupActions"}, at));
    Json members = groups[g].value("replicationProtectedItems", Json::array());
    if (members.empty())
      return InvalidArgument("Group " + std::to_string(g + 1) + " has no replicated items.",
                             at + ".replicationProtectedItems");
    Json out = {{"replicationProtectedItems", Json::array()},
                {"startGroupActions", Json::array()},
                {"endGroupActions", Json::array()}};
    for (auto& m : members) {
      auto mid = ResourceId::Parse(m.get<std::string>());
      if (!mid.ok() || mid->Parent().Key() != vault_key ||
          api::TypeKey(*mid) != kReplItemType || !d_.ctx.store->Get(mid->Key()).ok())
        return InvalidArgument("'" + m.get<std::string>() + "' is not a replicated item of vault '" +
                                   id.Parent().name() + "'.",
                               at + ".replicationProtectedItems", "ReplicatedItemNotFound");
      if (!items.insert(mid->Key()).second)
        return InvalidArgument("Item '" + mid->name() + "' is in the plan twice.",
                               at + ".replicationProtectedItems");
      out["replicationProtectedItems"].push_back(mid->ToString());
    }
    // The items failed over before this group's start actions, and by its end actions.
    std::set<std::string> groups_before = groups_of;
    for (auto& m : out["replicationProtectedItems"]) groups_of.insert(ToLower(m.get<std::string>()));
    for (const char* list : {"startGroupActions", "endGroupActions"}) {
      for (auto& a : groups[g].value(list, Json::array())) {
        const std::string aat = at + "." + list;
        RETURN_IF_ERROR(api::RejectUnknownKeys(a, {"actionName", "customDetails"}, aat));
        std::string name = a.value("actionName", "");
        if (name.empty() || name.size() > 64 || !actions.insert(name).second)
          return InvalidArgument("Each action has its own 'actionName' (1-64 characters).",
                                 aat + ".actionName");
        Json cd = a.value("customDetails", Json::object());
        std::string type = cd.value("instanceType", "");
        Json kept = {{"actionName", name}};
        if (type == "ScriptActionDetails") {
          RETURN_IF_ERROR(api::RejectUnknownKeys(
              cd, {"instanceType", "scriptName", "timeoutInSeconds"}, aat + ".customDetails"));
          std::string script = cd.value("scriptName", "");
          // Scripts are the operator's: only files of the region's script folder run.
          if (!ValidScriptName(script) || !PathExists(JoinPath(ScriptDir(), script)))
            return InvalidArgument("Script '" + script + "' is not a file of this region's script "
                                   "folder (" + ScriptDir() + ", put there by the operator).",
                                   aat + ".customDetails.scriptName", "ScriptNotFound");
          ASSIGN_OR_RETURN(int64_t timeout,
                           api::GetInt(cd, "timeoutInSeconds", 1, 3600, 600));
          kept["customDetails"] = {{"instanceType", type},
                                   {"scriptName", script},
                                   {"timeoutInSeconds", timeout}};
        } else if (type == "ManualActionDetails") {
          RETURN_IF_ERROR(api::RejectUnknownKeys(cd, {"instanceType", "description"},
                                                 aat + ".customDetails"));
          kept["customDetails"] = {{"instanceType", type},
                                   {"description", cd.value("description", "")}};
        } else if (type == "PublicIpActionDetails") {
          // A public IP made in this region for a failed-over VM (on its primary NIC): the item
          // must have failed over by then (its group or an earlier one; a start action: an
          // earlier one).
          ASSIGN_OR_RETURN(Json k, PublicIpAction(cd, aat + ".customDetails", items, id));
          if (!(list == std::string("endGroupActions")
                    ? groups_of.count(ToLower(k.value("replicationProtectedItem", "")))
                    : groups_before.count(ToLower(k.value("replicationProtectedItem", "")))))
            return InvalidArgument("The public IP's item must fail over before the action runs: "
                                   "put it in this group (an end action) or an earlier one.",
                                   aat + ".customDetails.replicationProtectedItem");
          kept["customDetails"] = k;
        } else {
          return InvalidArgument("'customDetails.instanceType' is ScriptActionDetails, "
                                 "ManualActionDetails or PublicIpActionDetails.",
                                 aat + ".customDetails.instanceType");
        }
        out[list].push_back(kept);
      }
    }
    clean.push_back(out);
  }
  auto existing = d_.ctx.store->Get(id.Key());
  if (existing.ok() &&
      existing->body["properties"].value("currentRun", Json::object()).value("state", "") ==
          "Running")
    return Conflict("Plan '" + id.name() + "' is running.", id.ToString(), "PlanRunning");
  store::Record rec =
      api::RecordToWrite(existing, id, d_.ctx.region, req.caller, d_.ctx.clock->NowMs());
  rec.body["properties"]["groups"] = clean;
  rec.body["properties"]["vmReadiness"] = readiness;
  rec.body["properties"]["provisioningState"] = "Succeeded";
  ASSIGN_OR_RETURN(rec, d_.ctx.store->Put(rec, api::ConditionFromHeaders(req)));
  return api::ResourceResponse(rec, existing.ok() ? 200 : 201);
}

Result<ApiResponse> ReplicationService::DeletePlan(const ApiRequest&, const ResourceId& id) {
  auto rec = d_.ctx.store->Get(id.Key());
  if (!rec.ok()) return ApiResponse::NoContent(204);
  ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock({id.Key()}));
  RETURN_IF_ERROR(d_.ctx.store->Delete(id.Key()));
  return ApiResponse::NoContent(200);
}

Result<std::vector<std::pair<ResourceId, store::Record>>> ReplicationService::PlanItems(
    const store::Record& plan) const {
  std::vector<std::pair<ResourceId, store::Record>> out;
  for (auto& g : plan.body["properties"]["groups"])
    for (auto& m : g["replicationProtectedItems"]) {
      ASSIGN_OR_RETURN(ResourceId mid, ResourceId::Parse(m.get<std::string>()));
      auto item = d_.ctx.store->Get(mid.Key());
      if (!item.ok())
        return Conflict("Item '" + mid.ToString() + "' of the plan is gone; update the plan.",
                        mid.ToString(), "ReplicatedItemNotFound");
      out.emplace_back(mid, std::move(item).value());
    }
  return out;
}

Result<ApiResponse> ReplicationService::PlanAfterFailover(const ApiRequest& req,
                                                          const store::Record& plan,
                                                          const ResourceId& id,
                                                          const std::string& action) {
  Json params = req.body.is_object() ? req.body : Json::object();
  RETURN_IF_ERROR(api::RejectUnknownKeys(params, {}, ""));
  const bool commit = EqualsIgnoreCase(action, "commit");
  // Every item of the plan must be failed over (the plan's failover ran).
  std::vector<ResourceId> items;
  ASSIGN_OR_RETURN(auto records, PlanItems(plan));
  for (auto& [mid, item] : records) {
    const Json& ip = item.body["properties"];
    if (ip.value("protectionState", "") != "FailedOver")
      return Conflict("Item '" + mid.name() + "' of the plan is not failed over.", mid.ToString(),
                      "NotFailedOver");
    if (!commit && !ip.value("reprotectState", "").empty() &&
        ip.value("reprotectState", "") != "Failed")
      return Conflict("Item '" + mid.name() + "' is reprotected already.", mid.ToString(),
                      "AlreadyReprotected");
    items.push_back(mid);
  }
  // The plan and every item: no change of point, failover or reprotect of one of them meanwhile.
  std::vector<std::string> keys = {id.Key()};
  for (auto& mid : items) keys.push_back(mid.Key());
  std::string caller = req.caller;
  const std::string op_name = std::string("Stratus.RecoveryServices/vaults/replicationRecoveryPlans/") +
                              (commit ? "commit" : "reprotect") + "/action";
  return StartItemOperation(
      req, id, op_name, keys, [this, items, caller, commit](api::OperationContext& octx) -> Status {
        // One item after the other: each reprotect's first cycle holds
        // the link.
        Json done = Json::array();
        for (auto& mid : items) {
          Status s = commit ? CommitFailover(mid)
                            : Reprotect(mid, Json::object(), caller, octx);
          if (!s.ok())
            return Status(s.code(), s.arm_code(),
                          "item '" + mid.name() + "': " + s.message());
          done.push_back(mid.ToString());
        }
        octx.result() = {{"items", done}};
        return Status::Ok();
      });
}

Result<ApiResponse> ReplicationService::PostPlan(const ApiRequest& req, const ResourceId& id,
                                                 const std::string& action) {
  ASSIGN_OR_RETURN(store::Record plan, d_.ctx.store->Get(id.Key()));
  Json params = req.body.is_object() ? req.body : Json::object();
  if (EqualsIgnoreCase(action, "acknowledgeManualAction")) {
    RETURN_IF_ERROR(api::RejectUnknownKeys(params, {"actionName"}, ""));
    const Json& run = plan.body["properties"].value("currentRun", Json::object());
    std::string waiting = run.value("waitingFor", "");
    if (waiting.empty() || waiting != params.value("actionName", ""))
      return Conflict("Plan '" + id.name() + "' is not waiting for action '" +
                          params.value("actionName", "") + "'" +
                          (waiting.empty() ? "." : " (it waits for '" + waiting + "')."),
                      "actionName", "NotWaitingForAction");
    RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
      r.body["properties"]["currentRun"]["acknowledged"] = waiting;
      return true;
    }));
    return ApiResponse::Json200({{"actionName", waiting}, {"acknowledged", true}});
  }
  if (EqualsIgnoreCase(action, "commit") || EqualsIgnoreCase(action, "reprotect"))
    return PlanAfterFailover(req, plan, id, action);
  bool test = EqualsIgnoreCase(action, "testFailover");
  bool cleanup = EqualsIgnoreCase(action, "testFailoverCleanup");
  bool planned = EqualsIgnoreCase(action, "plannedFailover");
  if (!test && !cleanup && !planned && !EqualsIgnoreCase(action, "unplannedFailover"))
    return NotFound("Recovery plans have no action '" + action + "'.", action, "NotFound");
  // A planned failover's points are the items' last cycles, sent once their VMs stopped.
  RETURN_IF_ERROR(api::RejectUnknownKeys(params,
                                         cleanup || planned
                                             ? std::vector<std::string>{}
                                             : std::vector<std::string>{"recoveryPointType"},
                                         ""));
  ASSIGN_OR_RETURN(const std::string kind, PointKindParam(params));
  if (plan.body["properties"].value("currentRun", Json::object()).value("state", "") == "Running")
    return Conflict("Plan '" + id.name() + "' is running.", id.ToString(), "PlanRunning");
  // Every item is checked before anything starts.
  ASSIGN_OR_RETURN(auto records, PlanItems(plan));
  for (auto& [mid, item] : records) {
    std::string drill = item.body["properties"].value("testFailoverState", "None");
    if (cleanup) continue;
    if (test && (drill == "InProgress" || drill == "Completed"))
      return Conflict("Item '" + mid.name() + "' has a test failover running.", mid.ToString(),
                      "TestFailoverInProgress");
    Json p = test ? Json{{"vmName", TestVmName(item)}} : Json::object();
    if (kind != "Latest") p["recoveryPointType"] = kind;
    RETURN_IF_ERROR(FailoverParams(mid, p).status());
    if (planned) RETURN_IF_ERROR(SourceReachable(item));
  }
  ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock({id.Key()}));
  std::string type = test      ? "TestFailover"
                     : cleanup ? "TestFailoverCleanup"
                     : planned ? "PlannedFailover"
                               : "UnplannedFailover";
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
    r.body["properties"]["currentRun"] = {{"type", type},
                                          {"state", "Running"},
                                          {"startTime", FormatIso8601(WallMs())},
                                          {"steps", Json::array()}};
    return true;
  }));
  std::string caller = req.caller;
  ASSIGN_OR_RETURN(std::string op,
                   d_.ctx.ops->StartLocked(std::move(lock), id, kPlanRunOp, Json::object(),
                                           [this, id, type, kind, caller](api::OperationContext& octx) {
                                             return RunPlan(id, type, kind, caller, octx);
                                           },
                                           req.caller));
  return api::AcceptedResponse(req, id.subscription(), op);
}

Status ReplicationService::RunPlan(const ResourceId& id, const std::string& type,
                                   const std::string& point_kind, const std::string& caller,
                                   api::OperationContext& octx) {
  const int64_t t0 = WallMs();
  ASSIGN_OR_RETURN(store::Record plan, d_.ctx.store->Get(id.Key()));
  const Json groups = plan.body["properties"]["groups"];
  const bool agent = plan.body["properties"].value("vmReadiness", "GuestAgent") == "GuestAgent";
  Json steps = Json::array();
  int64_t boot_wait_ms = 0;    // time spent waiting for guests
  int64_t manual_wait_ms = 0;  // and for people (the rest is Stratus's own, scripts included)
  auto save = [&](const Json& extra) {
    (void)PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
      Json& run = r.body["properties"]["currentRun"];
      run["steps"] = steps;
      for (auto& [k, v] : extra.items()) run[k] = v;
      return true;
    });
  };
  // One step: runs fn, records its start, end and outcome (visible in GET as it goes).
  // What a step that ran says besides its state (a public IP's address), and whether it was
  // skipped (a public IP in a drill); set by the step's fn.
  std::string detail;
  bool skipped = false;
  auto step = [&](const std::string& name, const std::function<Status()>& fn) -> Status {
    int64_t start = WallMs();
    steps.push_back({{"name", name}, {"state", "Running"}, {"startTime", FormatIso8601(start)}});
    save(Json::object());
    octx.SetProgress(std::min<int>(95, 5 + static_cast<int>(steps.size()) * 5), name);
    detail.clear();
    skipped = false;
    Status s = fn();
    Json& st = steps.back();
    st["endTime"] = FormatIso8601(WallMs());
    st["durationMs"] = WallMs() - start;
    st["state"] = !s.ok() ? "Failed" : skipped ? "Skipped" : "Succeeded";
    if (!detail.empty()) st["detail"] = detail;
    if (!s.ok()) st["error"] = s.message();
    save(Json::object());
    return s;
  };
  std::vector<std::string> vms_so_far;
  auto run_action = [&](size_t g, const Json& a) -> Status {
    const Json& cd = a["customDetails"];
    std::string name = a.value("actionName", "");
    if (cd.value("instanceType", "") == "ManualActionDetails") {
      save({{"waitingFor", name}});
      int64_t waited_from = WallMs();
      for (;;) {
        if (WallMs() - waited_from > 24 * 3600 * 1000LL)
          return Status(StatusCode::kUnavailable, "ManualActionTimedOut",
                        "Nobody acknowledged '" + name + "' within 24 hours.");
        auto r = d_.ctx.store->Get(id.Key());
        if (r.ok() &&
            r->body["properties"].value("currentRun", Json::object()).value("acknowledged", "") ==
                name)
          break;
        {
          std::unique_lock<std::mutex> l(mu_);
          if (stopping_) return Unavailable("stratusd is stopping; the plan stopped at '" + name + "'.");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      manual_wait_ms += WallMs() - waited_from;
      (void)PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
        r.body["properties"]["currentRun"].erase("waitingFor");
        r.body["properties"]["currentRun"].erase("acknowledged");
        return true;
      });
      return Status::Ok();
    }
    if (cd.value("instanceType", "") == "PublicIpActionDetails") {
      // A drill's VMs stay in their isolated network: no public address.
      if (type == "TestFailover") {
        skipped = true;
        detail = "a test failover gets no public IP";
        return Status::Ok();
      }
      ASSIGN_OR_RETURN(ResourceId iid, ResourceId::Parse(cd.value("replicationProtectedItem", "")));
      ASSIGN_OR_RETURN(store::Record item, d_.ctx.store->Get(iid.Key()));
      auto vm = ResourceId::Parse(item.body["properties"].value("failedOverVmId", ""));
      if (!vm.ok())
        return Conflict("Item '" + iid.name() + "' has no failed-over VM.", iid.ToString(),
                        "NotFailedOver");
      ASSIGN_OR_RETURN(Json got, net_->AttachPublicIp(*vm, cd.value("publicIpAddressName", ""),
                                                      cd.value("sku", "Standard"),
                                                      caller + " (plan " + id.name() + ")"));
      detail = got.value("ipAddress", "") + " on " + got.value("nicId", "");
      return Status::Ok();
    }
    std::string path = JoinPath(ScriptDir(), cd.value("scriptName", ""));
    std::string vms;
    for (auto& v : vms_so_far) vms += (vms.empty() ? "" : ",") + v;
    auto r = RunProcess({"timeout", "--kill-after=5", std::to_string(cd.value("timeoutInSeconds", 600)),
                         "env", "STRATUS_PLAN_ID=" + id.ToString(), "STRATUS_PLAN_RUN=" + type,
                         "STRATUS_PLAN_GROUP=" + std::to_string(g + 1),
                         "STRATUS_PLAN_ACTION=" + name, "STRATUS_REGION=" + d_.ctx.region,
                         "STRATUS_PLAN_VMS=" + vms, path});
    if (!r.ok()) return r.status();
    if (r->exit_code != 0)
      return Internal("script '" + cd.value("scriptName", "") + "' exited " +
                      std::to_string(r->exit_code) + (r->exit_code == 124 ? " (timed out)" : "") +
                      ": " + r->err.substr(0, 500));
    return Status::Ok();
  };
  Status result;
  std::set<std::string>
      ahead;  // item keys whose failover was started while the group before booted
  // A drill's cleanup only removes its VMs: no actions, nothing to wait for.
  const bool actions = type != "TestFailoverCleanup";
  auto members_of = [&](size_t g) {
    std::vector<ResourceId> members;
    for (auto& m : groups[g]["replicationProtectedItems"])
      members.push_back(*ResourceId::Parse(m.get<std::string>()));
    return members;
  };
  auto listed_of = [](const std::vector<ResourceId>& members) {
    std::string listed;
    for (auto& m : members) listed += (listed.empty() ? "" : ", ") + m.name();
    return listed;
  };
  // A planned failover first stops the VMs in the source, the last group first (what starts
  // last stops first), each group's side by side; every item's point is its last cycle.
  std::map<std::string, std::string> last_cycles;  // item key → point
  const bool planned = type == "PlannedFailover";
  for (size_t g = groups.size(); planned && g-- > 0 && result.ok();) {
    const std::vector<ResourceId> members = members_of(g);
    result =
        step("group " + std::to_string(g + 1) + ": shut down in the source: " + listed_of(members),
             [&]() -> Status {
               ASSIGN_OR_RETURN(auto points, ShutDownAtSource(members, octx));
               last_cycles.insert(points.begin(), points.end());
               return Status::Ok();
             });
  }
  // The parameters of an item's failover in this run.
  auto params_of = [&](const ResourceId& mid) -> Result<Json> {
    Json p = Json::object();
    if (planned) {
      p = {{"recoveryPointName", last_cycles[mid.Key()]}, {"failoverType", "Planned"}};
    } else if (point_kind != "Latest") {
      p["recoveryPointType"] = point_kind;
    }
    if (type == "TestFailover") {
      ASSIGN_OR_RETURN(store::Record item, d_.ctx.store->Get(mid.Key()));
      p["vmName"] = TestVmName(item);
    }
    return FailoverParams(mid, p);
  };
  for (size_t g = 0; g < groups.size() && result.ok(); ++g) {
    const std::string gname = "group " + std::to_string(g + 1);
    for (auto& a : actions ? groups[g]["startGroupActions"] : Json::array()) {
      result = step(gname + ": " + a.value("actionName", ""), [&] { return run_action(g, a); });
      if (!result.ok()) break;
    }
    if (!result.ok()) break;
    // The group's items fail over side by side (each on its own thread, with its own view of
    // the operation); the step is the group's.
    const std::vector<ResourceId> members = members_of(g);
    const std::string listed = listed_of(members);
    std::vector<ResourceId> made;
    std::string what = type == "TestFailoverCleanup" ? "clean up "
                       : type == "TestFailover"      ? "test failover of "
                       : planned                     ? "planned failover of "
                                                     : "failover of ";
    auto one = [&](const ResourceId& mid, api::OperationContext& ctx) -> Result<std::string> {
      if (type == "TestFailoverCleanup") {
        auto item = d_.ctx.store->Get(mid.Key());
        if (item.ok() && item->body["properties"].value("testFailoverState", "None") != "None")
          RETURN_IF_ERROR(TestFailoverCleanup(mid, caller, ctx));
        return std::string();
      }
      if (ahead.count(mid.Key())) {  // its VM waits, paused: it runs now
        ASSIGN_OR_RETURN(ctx.result(), RunPrestarted(octx.id(), mid));
        return ctx.result().value("vmId", "");
      }
      ASSIGN_OR_RETURN(Json p, params_of(mid));
      RETURN_IF_ERROR(type == "TestFailover" ? TestFailover(mid, p, caller, ctx)
                                             : Failover(mid, p, caller, ctx));
      return ctx.result().value("vmId", "");
    };
    result = step(gname + ": " + what + listed, [&]() -> Status {
      std::vector<Result<std::string>> got(members.size(), Internal("not run"));
      std::vector<std::thread> threads;
      for (size_t i = 0; i < members.size(); ++i)
        threads.emplace_back([&, i] {
          api::OperationContext ctx = octx;  // progress goes to the plan's operation
          ctx.result() = Json::object();
          got[i] = one(members[i], ctx);
        });
      for (auto& t : threads) t.join();
      size_t started = 0;
      for (auto& m : members) started += ahead.count(m.Key());
      if (started > 0)
        detail = std::to_string(started) + " of " + std::to_string(members.size()) +
                 " VMs were made (started paused) while group " + std::to_string(g) + " came up";
      Status first;
      for (size_t i = 0; i < members.size(); ++i) {
        if (!got[i].ok()) {
          if (first.ok())
            first = Status(got[i].status().code(), got[i].status().arm_code(),
                           members[i].name() + ": " + got[i].status().message());
          continue;
        }
        if (got[i]->empty()) continue;
        auto vm = ResourceId::Parse(*got[i]);
        if (!vm.ok()) continue;
        made.push_back(*vm);
        vms_so_far.push_back(vm->ToString());
      }
      return first;
    });
    if (!result.ok()) break;
    // While this group's guests boot, the next group's failovers run up to their VMs (at the
    // points chosen now): disks copied out, NICs made, VMs made and started paused; at the
    // group's turn they only run (RunPrestarted).
    if ((type == "UnplannedFailover" || planned) && g + 1 < groups.size() && !made.empty())
      for (const ResourceId& mid : members_of(g + 1)) {
        auto params = params_of(mid);
        if (!params.ok()) continue;  // its failover says why
        Status started = StartPrestage(mid, *params, caller, octx);
        if (started.ok()) {
          ahead.insert(mid.Key());
        } else {
          spdlog::warn("plan {}: cannot copy {}'s disks ahead: {}", id.ToString(), mid.ToString(),
                       started.ToString());
        }
      }
    if (!made.empty()) {
      // The next group starts only when every VM of this one is up.
      int64_t wait_start = WallMs();
      result = step(gname + ": VMs up", [&]() -> Status {
        for (auto& vm : made) {
          auto rec = d_.ctx.store->Get(vm.Key());
          if (!rec.ok()) return rec.status();
          std::string dom = rec->internal.value("domain", "");
          for (auto end = std::chrono::steady_clock::now() + std::chrono::minutes(10);;) {
            bool up = false;
            if (agent) {
              up = d_.hv->AgentCommand(dom, Json{{"execute", "guest-ping"}}, 2).ok();
            } else {
              auto info = d_.hv->Info(dom);
              up = info.ok() && info->state == compute::PowerState::kRunning;
            }
            if (up) break;
            if (std::chrono::steady_clock::now() > end)
              return Status(StatusCode::kUnavailable, "VmNotUp",
                            "VM '" + vm.ToString() + "' was not up within 10 minutes.");
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
        }
        return Status::Ok();
      });
      boot_wait_ms += WallMs() - wait_start;
      if (!result.ok()) break;
    }
    for (auto& a : actions ? groups[g]["endGroupActions"] : Json::array()) {
      result = step(gname + ": " + a.value("actionName", ""), [&] { return run_action(g, a); });
      if (!result.ok()) break;
    }
  }
  FinishPrestage(octx.id());
  int64_t total = WallMs() - t0;
  Json end = {{"state", result.ok() ? "Succeeded" : "Failed"},
              {"endTime", FormatIso8601(WallMs())},
              {"rtoMs", total},
              {"guestBootWaitMs", boot_wait_ms},
              {"manualWaitMs", manual_wait_ms},
              {"stratusTimeMs", total - boot_wait_ms - manual_wait_ms}};
  if (!result.ok()) end["error"] = result.message();
  save(end);
  octx.result() = {{"steps", steps},
                   {"vms", vms_so_far},
                   {"rtoMs", total},
                   {"guestBootWaitMs", boot_wait_ms},
                   {"manualWaitMs", manual_wait_ms},
                   {"stratusTimeMs", total - boot_wait_ms - manual_wait_ms}};
  spdlog::info("recovery plan {} ({}): {} in {} ms ({} ms waiting for guests)", id.ToString(), type,
               result.ok() ? "succeeded" : "failed: " + result.message(), total, boot_wait_ms);
  return result;
}

}  // namespace stratus::recovery::site
