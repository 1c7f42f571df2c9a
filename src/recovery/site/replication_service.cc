#include "recovery/site/replication_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "api/resource_util.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/http_client.h"
#include "core/subprocess.h"
#include "core/uuid.h"
#include "recovery/datapath/image_source.h"
#include "recovery/service/records.h"
#include "recovery/site/cycle_sender.h"
#include "recovery/service/restore_network.h"
#include "recovery/site/replication_internal.h"

namespace stratus::recovery::site {

using api::ApiRequest;
using api::ApiResponse;
using service::ListAll;
using namespace repl;  // NOLINT: this module's own helpers

namespace repl {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string CheckpointName(const std::string& item, uint64_t seq) {
  return "srep-" + item.substr(0, 8) + "-" + std::to_string(seq);
}

std::string FailoverBitmapName(const std::string& item) { return "sfo-" + item.substr(0, 8); }

Status NotFromPeer(const std::string& who, const Result<PeerReply>& r) {
  if (!r.ok())
    return Status(StatusCode::kUnavailable, "PeerRegionUnreachable",
                  who + " could not be reached: " + r.status().message());
  return PeerError(who, r->status, r->body);
}

Result<std::string> PointKindParam(const Json& params) {
  if (!params.contains("recoveryPointType")) return std::string("Latest");
  const Json& k = params["recoveryPointType"];
  if (k.is_string() && (k == "Latest" || k == "LatestApplicationConsistent"))
    return k.get<std::string>();
  return InvalidArgument("'recoveryPointType' must be 'Latest' or 'LatestApplicationConsistent'.",
                         "recoveryPointType");
}

Result<Policy> ParsePolicy(const Json& j, const std::string& where) {
  Policy p;
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      j,
      {"crashConsistentFrequencyInSeconds", "appConsistentFrequencyInMinutes",
       "recoveryPointRetentionInHours", "rpoAlertThresholdInSeconds"},
      where));
  ASSIGN_OR_RETURN(p.frequency_s, api::GetInt(j, "crashConsistentFrequencyInSeconds", 5, 3600, 30));
  ASSIGN_OR_RETURN(p.app_min, api::GetInt(j, "appConsistentFrequencyInMinutes", 0, 720, 60));
  ASSIGN_OR_RETURN(p.retention_h, api::GetInt(j, "recoveryPointRetentionInHours", 1, 168, 24));
  ASSIGN_OR_RETURN(p.rpo_alert_s, api::GetInt(j, "rpoAlertThresholdInSeconds", 5, 86400,
                                              std::max<int64_t>(60, 4 * p.frequency_s)));
  if (p.rpo_alert_s < p.frequency_s)
    return InvalidArgument("'rpoAlertThresholdInSeconds' must be at least the point frequency.",
                           where + ".rpoAlertThresholdInSeconds");
  return p;
}

}  // namespace repl

namespace {

constexpr char kEnableOp[] = "Stratus.RecoveryServices/vaults/replicationProtectedItems/write";
constexpr char kDisableOp[] = "Stratus.RecoveryServices/vaults/replicationProtectedItems/delete";
constexpr char kGroupFailoverOp[] =
    "Stratus.RecoveryServices/vaults/replicationConsistencyGroups/unplannedFailover/action";
constexpr char kTestFailoverOp[] =
    "Stratus.RecoveryServices/vaults/replicationProtectedItems/testFailover/action";
constexpr char kTestCleanupOp[] =
    "Stratus.RecoveryServices/vaults/replicationProtectedItems/testFailoverCleanup/action";
constexpr char kGroupPlannedFailoverOp[] =
    "Stratus.RecoveryServices/vaults/replicationConsistencyGroups/plannedFailover/action";
constexpr char kPlannedFailoverOp[] =
    "Stratus.RecoveryServices/vaults/replicationProtectedItems/plannedFailover/action";
constexpr char kFailoverOp[] =
    "Stratus.RecoveryServices/vaults/replicationProtectedItems/unplannedFailover/action";

std::string PointName(uint64_t seq) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(seq));
  return buf;
}

}  // namespace

ReplicationService::ReplicationService(ReplicationDeps deps) : d_(std::move(deps)) {
  receiver_ = std::make_unique<ReplicaReceiver>(
      [this](const std::string& item) { return LookupItem(item); },
      [this](const std::string& item, uint64_t seq, const Json& meta, const Json& stats) {
        return OnPoint(item, seq, meta, stats);
      });
  net_ = std::make_unique<FailoverNetwork>(d_.ctx, d_.networks);
}

Json ReplicationService::SourceConfig(const store::Record& vm) const {
  return service::VmConfigWithNetwork(vm, d_.networks, /*with_vnets=*/true);
}

ReplicationService::~ReplicationService() { Stop(); }

void ReplicationService::RegisterRoutes() {
  if (!d_.pairing) return;
  receiver_->RegisterRoutes(d_.pairing->server());
  d_.pairing->server().Route("POST", "/peer/v1/replication/enable",
                             [this](const PeerCaller& c, const Json& b) { return PeerEnable(c, b); });
  d_.pairing->server().Route("POST", "/peer/v1/replication/disable",
                             [this](const PeerCaller& c, const Json& b) { return PeerDisable(c, b); });
  d_.pairing->server().Route("POST", "/peer/v1/replication/prepareFailover",
                             [this](const PeerCaller& c, const Json& b) {
                               return PeerPrepareFailover(c, b);
                             });
  d_.pairing->server().Route("POST", "/peer/v1/replication/status",
                             [this](const PeerCaller& c, const Json& b) { return PeerStatus(c, b); });
  d_.pairing->server().Route("POST", "/peer/v1/replication/reprotect",
                             [this](const PeerCaller& c, const Json& b) {
                               return PeerReprotect(c, b);
                             });
}

Status ReplicationService::Start() {
  // An enable or disable a restart cut: an enable that did not finish is undone (the record
  // goes, as if the PUT had failed); a disable is finished.
  d_.ctx.ops->RegisterRecovery(kEnableOp, [this](const store::OperationRecord& op,
                                                 api::OperationContext&) -> Status {
    auto rec = d_.ctx.store->Get(op.resource_key);
    if (rec.ok() && rec->body["properties"].value("provisioningState", "") == "Creating")
      (void)d_.ctx.store->Delete(op.resource_key);
    return Status(StatusCode::kInternal, "InterruptedByRestart",
                  "Enabling replication was interrupted by a daemon restart; PUT the item again.");
  });
  d_.ctx.ops->RegisterRecovery(kDisableOp, [this](const store::OperationRecord& op,
                                                  api::OperationContext& octx) -> Status {
    auto id = ResourceId::Parse(op.body.value("resourceId", ""));
    if (!id.ok()) return id.status();
    return Disable(*id, octx);
  });
  RollBackInterrupted();
  if (!d_.pairing) return Status::Ok();
  scheduler_ = std::thread([this] { SchedulerLoop(); });
  return Status::Ok();
}

void ReplicationService::RollBackInterrupted() {
  auto items = ListAll(d_.ctx.store, "/subscriptions/", kReplItemType);
  if (!items.ok()) return;
  for (auto& rec : *items) {
    const Json& p = rec.body["properties"];
    const bool failing = p.value("protectionState", "") == "FailingOver";
    const bool testing = p.value("testFailoverState", "") == "InProgress";
    if (!failing && !testing) continue;
    spdlog::warn("replicated item {}: its {} was cut by a restart; removing what it made",
                 rec.body.value("id", ""), failing ? "failover" : "test failover");
    RemoveFailoverMade(rec);
    (void)PutWithRetry(d_.ctx.store, rec.key, [&](store::Record& r) {
      Json& rp = r.body["properties"];
      // A failback cut between its disks' commits runs again from the start (each commit
      // writes the same blocks): the item takes a failover again.
      if (rp.value("protectionState", "") == "FailingOver") rp["protectionState"] = "Protected";
      if (rp.value("testFailoverState", "") == "InProgress") {
        rp["testFailoverState"] = "Failed";
        rp["testFailoverError"] = "The test failover was cut by a restart of stratusd; what it had "
                                  "made was removed.";
        r.internal.erase("pinnedSeq");
      }
      r.internal.erase("failoverMade");
      return true;
    });
  }
}

void ReplicationService::RemoveFailoverMade(const store::Record& item) {
  const Json made = item.internal.value("failoverMade", Json::object());
  // The VM with its disks and NICs; then whatever was made before the VM was.
  if (auto vm = ResourceId::Parse(made.value("vm", ""));
      vm.ok() && d_.ctx.store->Get(vm->Key()).ok()) {
    auto op = d_.vms->Delete(*vm, /*delete_disks=*/1, "stratusd");
    Status st = op.ok() ? WaitOperation(*op, "deleting " + vm->ToString()) : op.status();
    if (!st.ok()) spdlog::warn("  {}: {}", vm->ToString(), st.ToString());
  }
  for (auto& d : made.value("disks", Json::array()))
    if (auto did = ResourceId::Parse(d.is_string() ? d.get<std::string>() : ""); did.ok())
      (void)d_.disks->DeleteDisk(*did, /*force=*/true);
  if (d_.networks)
    for (auto& n : made.value("nics", Json::array()))
      if (auto nid = ResourceId::Parse(n.is_string() ? n.get<std::string>() : ""); nid.ok())
        (void)d_.networks->DeleteNic(*nid, /*force=*/true);
  net_->RemoveTestNetworks(made.value("testNetworks", Json::array()));
  // A disk copy cut before it became a disk.
  if (std::string prefix = made.value("tmpPrefix", ""); !prefix.empty())
    RemoveFailoverCopies(prefix);
}

void ReplicationService::UndoFailover(const ResourceId& id) {
  auto rec = d_.ctx.store->Get(id.Key());
  if (!rec.ok()) return;
  RemoveFailoverMade(*rec);
  (void)PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
    r.body["properties"]["protectionState"] = "Protected";
    r.internal.erase("failoverMade");
    return true;
  });
}

void ReplicationService::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
}

void ReplicationService::SchedulerLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    l.unlock();
    Tick();
    HealthTick();
    l.lock();
    cv_.wait_for(l, std::chrono::milliseconds(250), [this] { return stopping_; });
  }
}

// ---------------------------------------------------------------- B: the API

const api::Shape& ReplicationService::ItemShape() {
  using api::Shape;
  static const Shape s = Shape::Resource(Shape::Object(
      {{"sourceRegion", Shape::String()},
       {"sourceVmId", Shape::String()},
       {"multiVmGroupName", Shape::String()},
       {"vmNics", Shape::ArrayOf(Shape::Any())},
       {"policyId", Shape::String()},
       {"policy", Shape::Object({{"crashConsistentFrequencyInSeconds", Shape::Integer()},
                                 {"appConsistentFrequencyInMinutes", Shape::Integer()},
                                 {"recoveryPointRetentionInHours", Shape::Integer()},
                                 {"rpoAlertThresholdInSeconds", Shape::Integer()}})}}));
  return s;
}

Result<store::Record> ReplicationService::ItemById(const std::string& item_id) const {
  ASSIGN_OR_RETURN(auto items, ListAll(d_.ctx.store, "/subscriptions/", kReplItemType));
  for (auto& r : items)
    if (r.internal.value("itemId", "") == item_id) return r;
  return NotFound("No replicated item '" + item_id + "' here.", item_id, "ReplicatedItemNotFound");
}

Result<ApiResponse> ReplicationService::PutItem(const ApiRequest& req, const ResourceId& id) {
  const Json& body = req.body;
  RETURN_IF_ERROR(api::RejectUnknownKeys(body, {"properties", "name", "id", "type", "location",
                                                "tags"},
                                         ""));
  Json props = body.value("properties", Json::object());
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      props, {"sourceRegion", "sourceVmId", "policy", "policyId", "multiVmGroupName", "vmNics"},
      "properties"));
  std::string group = props.value("multiVmGroupName", "");
  if (!group.empty()) RETURN_IF_ERROR(ValidateGroupName(group));
  std::string region = props.value("sourceRegion", "");
  std::string vm = props.value("sourceVmId", "");
  if (region.empty())
    return InvalidArgument("'properties.sourceRegion' is required: the paired region the VM runs "
                           "in.", "properties.sourceRegion", "MissingParameter");
  auto vm_id = ResourceId::Parse(vm);
  if (!vm_id.ok() || !EqualsIgnoreCase(vm_id->FullType(), "Stratus.Compute/virtualMachines"))
    return InvalidArgument("'properties.sourceVmId' must be the id of a virtual machine in the "
                           "source region.", "properties.sourceVmId", "InvalidResourceId");
  // The policy: the item's own, or a policy of the vault named by policyId.
  std::string policy_id;
  Policy pol;
  if (props.contains("policyId")) {
    if (props.contains("policy"))
      return InvalidArgument("Give 'properties.policy' or 'properties.policyId', not both.",
                             "properties.policyId");
    ASSIGN_OR_RETURN(auto named, PolicyOf(id, props["policyId"]));
    policy_id = named.first;
    pol = named.second;
  } else {
    ASSIGN_OR_RETURN(pol, ParsePolicy(props.value("policy", Json::object()), "properties.policy"));
  }
  // Where each NIC goes on a failover, when not where the network mappings say (absent: as
  // they are; [] clears them).
  auto existing = d_.ctx.store->Get(id.Key());
  Json vm_nics_in = props.value("vmNics", Json(nullptr));
  if (vm_nics_in.is_null() && existing.ok())
    vm_nics_in = existing->body["properties"].value("vmNics", Json::array());
  ASSIGN_OR_RETURN(Json vm_nics, net_->ParseVmNics(vm_nics_in, id.subscription()));
  if (EqualsIgnoreCase(region, d_.ctx.region))
    return InvalidArgument("A VM is replicated to another region: '" + region +
                               "' is this one. Create the item in the target region's vault.",
                           "properties.sourceRegion", "ReplicationToSameRegion");
  if (!d_.pairing)
    return Conflict("This region has no peer link.", "", "PeerLinkNotConfigured");
  auto pairing = d_.pairing->Get(region);
  if (!pairing.ok())
    return InvalidArgument("This region is not paired with '" + region +
                               "'. Pair them first (stratus recovery pair).",
                           "properties.sourceRegion", "RegionNotPaired");
  // The same VM replicated twice into this region is refused, whichever vault holds it.
  ASSIGN_OR_RETURN(auto all, ListAll(d_.ctx.store, "/subscriptions/", kReplItemType));
  for (auto& r : all)
    if (r.key != id.Key() &&
        EqualsIgnoreCase(r.body["properties"].value("sourceVmId", ""), vm) &&
        EqualsIgnoreCase(r.body["properties"].value("sourceRegion", ""), region))
      return Conflict("VM '" + vm + "' is replicated already, as '" + r.body.value("id", "") + "'.",
                      "properties.sourceVmId", "VmAlreadyReplicated");
  int64_t now = d_.ctx.clock->NowMs();
  if (existing.ok()) {
    const Json& p = existing->body["properties"];
    if (!EqualsIgnoreCase(p.value("sourceVmId", ""), vm) ||
        !EqualsIgnoreCase(p.value("sourceRegion", ""), region))
      return Conflict("An item's source region and VM cannot change; delete it and create "
                      "another.", "properties.sourceVmId", "PropertyChangeNotAllowed");
    if (p.value("policy", Json::object()) == pol.ToJson() && p.value("policyId", "") == policy_id &&
        EqualsIgnoreCase(p.value("multiVmGroupName", ""), group)) {
      // Only the NIC settings (or nothing) change: the source need not be asked.
      if (p.value("vmNics", Json::array()) == vm_nics) return api::ResourceResponse(*existing);
      ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock({id.Key()}));  // not during a failover
      store::Record rec = *existing;
      rec.body["properties"]["vmNics"] = vm_nics;
      api::TouchSystemData(rec.body, req.caller, d_.ctx.clock->NowMs());
      ASSIGN_OR_RETURN(rec, d_.ctx.store->Put(rec, api::ConditionFromHeaders(req)));
      ApiResponse resp = api::ResourceResponse(rec, 200);
      Decorate(rec, resp.body);
      return resp;
    }
  }
  ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock({id.Key()}));
  store::Record rec;
  if (existing.ok()) {
    rec = *existing;
    rec.body["properties"]["policy"] = pol.ToJson();
    if (policy_id.empty())
      rec.body["properties"].erase("policyId");
    else
      rec.body["properties"]["policyId"] = policy_id;
    rec.body["properties"]["vmNics"] = vm_nics;
    rec.body["properties"]["provisioningState"] = "Updating";
    if (group.empty()) rec.body["properties"].erase("multiVmGroupName");
    else rec.body["properties"]["multiVmGroupName"] = group;
    api::TouchSystemData(rec.body, req.caller, now);
  } else {
    rec.key = id.Key();
    rec.type = kReplItemType;
    rec.body = api::NewResourceBody(id, d_.ctx.region, body.value("tags", Json::object()),
                                    req.caller, now);
    std::string item_id = NewUuid();
    rec.body["properties"] = {{"provisioningState", "Creating"},
                              {"sourceRegion", pairing->body.value("name", region)},
                              {"sourceVmId", vm},
                              {"targetRegion", d_.ctx.region},
                              {"policy", pol.ToJson()},
                              {"replicatedItemId", item_id},
                              {"protectionState", "Enabling"},
                              {"replicationHealth", "Normal"},
                              {"vmNics", vm_nics}};
    if (!group.empty()) rec.body["properties"]["multiVmGroupName"] = group;
    if (!policy_id.empty()) rec.body["properties"]["policyId"] = policy_id;
    rec.internal = {{"itemId", item_id},
                    {"dir", JoinPath(d_.ctx.data_dir, "replicas/" + item_id)}};
  }
  // The group a member names exists from then on (groups are made by their members).
  if (!group.empty()) RETURN_IF_ERROR(EnsureGroup(id.Parent().Child("replicationConsistencyGroups", group), req.caller));
  ASSIGN_OR_RETURN(store::Record written, d_.ctx.store->Put(rec));
  ASSIGN_OR_RETURN(std::string op,
                   d_.ctx.ops->StartLocked(std::move(lock), id, kEnableOp, Json::object(),
                                           [this, id](api::OperationContext& octx) {
                                             return Enable(id, octx);
                                           },
                                           req.caller));
  return api::AcceptedResponse(req, id.subscription(), op, api::ToArm(written),
                               existing.ok() ? 200 : 201);
}

Status ReplicationService::Enable(const ResourceId& id, api::OperationContext& octx) {
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  const Json& p = rec.body["properties"];
  bool creating = p.value("provisioningState", "") == "Creating";
  Status s = [&]() -> Status {
    ASSIGN_OR_RETURN(PeerClient client, d_.pairing->ClientFor(p.value("sourceRegion", "")));
    octx.SetProgress(10, "asking region " + p.value("sourceRegion", "") + " to replicate the VM");
    Json ask = {{"item", rec.internal.value("itemId", "")},
                {"vmId", p.value("sourceVmId", "")},
                {"intervalSeconds", p["policy"].value("crashConsistentFrequencyInSeconds", 30)},
                {"appIntervalSeconds", p["policy"].value("appConsistentFrequencyInMinutes", 60) * 60},
                {"group", GroupTag(id, p.value("multiVmGroupName", ""))}};
    auto reply = client.Call("POST", "/peer/v1/replication/enable", ask.dump());
    if (!reply.ok() || reply->status != 200)
      return NotFromPeer("Region '" + p.value("sourceRegion", "") + "'", reply);
    auto answer = ParseJson(reply->body);
    if (!answer.ok() || !answer->is_object()) return Internal("the source answered no VM");
    return PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
      Json& rp = r.body["properties"];
      rp["provisioningState"] = "Succeeded";
      if (rp.value("protectionState", "") == "Enabling") rp["protectionState"] = "InitialReplication";
      rp["vmConfig"] = (*answer)["vmConfig"];
      return true;
    });
  }();
  if (!s.ok()) {
    if (creating) {
      (void)d_.ctx.store->Delete(id.Key());
    } else {
      (void)PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
        r.body["properties"]["provisioningState"] = "Failed";
        return true;
      });
    }
  }
  return s;
}

Result<ApiResponse> ReplicationService::DeleteItem(const ApiRequest& req, const ResourceId& id) {
  auto rec = d_.ctx.store->Get(id.Key());
  if (!rec.ok()) return ApiResponse::NoContent(204);
  ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock({id.Key()}));
  ASSIGN_OR_RETURN(std::string op,
                   d_.ctx.ops->StartLocked(std::move(lock), id, kDisableOp, Json::object(),
                                           [this, id](api::OperationContext& octx) {
                                             return Disable(id, octx);
                                           },
                                           req.caller));
  return api::AcceptedResponse(req, id.subscription(), op);
}

Status ReplicationService::Disable(const ResourceId& id, api::OperationContext& octx) {
  auto rec = d_.ctx.store->Get(id.Key());
  if (!rec.ok()) return Status::Ok();
  std::string item = rec->internal.value("itemId", "");
  const Json& p = rec->body["properties"];
  // The source stops when it answers; a gone source is not waited for.
  if (d_.pairing) {
    auto client = d_.pairing->ClientFor(p.value("sourceRegion", ""));
    if (client.ok()) {
      auto reply = client->Call("POST", "/peer/v1/replication/disable", Json{{"item", item}}.dump());
      if (!reply.ok() || reply->status != 200)
        octx.result()["sourceNotified"] = false;
      else
        octx.result()["sourceNotified"] = true;
    }
  }
  receiver_->Forget(item);
  // A reprotected item's base VM is free again (its disks were never written).
  if (std::string base = rec->internal.value("baseVmKey", ""); !base.empty())
    (void)PutWithRetry(d_.ctx.store, base, [&](store::Record& r) {
      if (r.internal.value("replicaBaseOf", "") != id.ToString()) return false;
      r.internal.erase("replicaBaseOf");
      return true;
    });
  std::string dir = rec->internal.value("dir", "");
  if (!dir.empty()) RETURN_IF_ERROR(RemoveTree(dir));
  ASSIGN_OR_RETURN(auto pts, ListAll(d_.ctx.store, id.Key() + "/recoverypoints/", kReplPointType));
  for (auto& r : pts) RETURN_IF_ERROR(d_.ctx.store->Delete(r.key));
  return d_.ctx.store->Delete(id.Key());
}

void ReplicationService::Decorate(const store::Record& rec, Json& item) const {
  Json& p = item["properties"];
  auto pts = d_.ctx.store->List(rec.key + "/recoverypoints/", kReplPointType, "", 100000);
  if (pts.ok()) p["recoveryPointCount"] = pts->records.size();
  // Where each recorded NIC goes: on a failover, and on a test failover.
  const Json cfg = p.value("vmConfig", Json::object());
  if (cfg.contains("networkInterfaces")) {
    Json nics = net_->Resolve(rec, cfg, /*test=*/false, "");
    Json tests = net_->Resolve(rec, cfg, /*test=*/true, "");
    for (size_t i = 0; i < nics.size() && i < tests.size(); ++i) {
      Json t = {{"from", tests[i]["from"]}};
      if (!tests[i]["networkId"].is_null()) t["networkId"] = tests[i]["networkId"];
      if (tests[i].contains("subnetName")) t["subnetName"] = tests[i]["subnetName"];
      if (tests[i].value("isolated", false)) t["isolated"] = true;
      nics[i]["testFailover"] = t;
    }
    p["networkInterfaces"] = nics;
  }
  // A reprotected item: how its VM's replication back to the source goes (this region's
  // outbound record of the reverse item).
  if (std::string rev = rec.internal.value("reverseItemId", ""); !rev.empty()) {
    if (auto out = d_.ctx.store->Get(kOutboundPrefix + ToLower(rev)); out.ok()) {
      Json rr = {{"state", out->body.value("state", "")},
                 {"lastCycleTime", out->body.value("lastCycleTime", "")}};
      if (out->body.contains("lastError")) rr["lastError"] = out->body["lastError"];
      p["reverseReplication"] = rr;
    }
  }
  // The cycle in flight: how much of it is still to come (backlog) and how fast it comes; the
  // source's last reason to give a cycle up.
  const Json progress = receiver_->Progress(rec.internal.value("itemId", ""));
  if (progress.contains("cycle")) {
    const Json& c = progress["cycle"];
    p["currentCycle"] = c;
    p["backlogBytes"] = c.value("changedBytes", uint64_t{0}) - c.value("doneBytes", uint64_t{0});
    p["transferBytesPerSecond"] = c.value("bytesPerSecond", uint64_t{0});
  } else {
    p["backlogBytes"] = 0;
    if (p.contains("lastCycle") && p["lastCycle"].is_object())
      p["transferBytesPerSecond"] = p["lastCycle"].value("bytesPerSecond", uint64_t{0});
  }
  if (progress.contains("lastError")) p["lastError"] = progress["lastError"];
  int64_t captured = rec.internal.value("lastCapturedMs", int64_t{0});
  if (captured == 0) return;
  // A failed-over item replicates no more: no RPO, and its health is not an alarm (the alerts
  // stop too, HealthTick).
  const std::string state = p.value("protectionState", "");
  if (state == "FailedOver" || state == "FailingOver") {
    p.erase("rpoInSeconds");
    p["replicationHealth"] = "Normal";
    return;
  }
  int64_t rpo = std::max<int64_t>(0, (WallMs() - captured) / 1000);
  p["rpoInSeconds"] = rpo;
  int64_t alert = p["policy"].value("rpoAlertThresholdInSeconds", 120);
  p["replicationHealth"] = rpo <= alert ? "Normal" : "Critical";
}

const api::Shape& ReplicationService::FailoverShape() {
  using api::Shape;
  static const Shape s = Shape::Object({{"recoveryPointName", Shape::String()},
                                        {"recoveryPointType", Shape::String()},
                                        {"targetResourceGroup", Shape::String()},
                                        {"vmName", Shape::String()}});
  return s;
}

namespace {

// The name of the newest of `pts` (oldest first) of that kind.
Result<std::string> LatestPointOf(const std::vector<store::Record>& pts, const std::string& kind,
                                  const ResourceId& id) {
  for (auto it = pts.rbegin(); it != pts.rend(); ++it)
    if (kind == "Latest" ||
        it->body["properties"].value("recoveryPointType", "") == "ApplicationConsistent")
      return it->body.value("name", "");
  return Conflict("Item '" + id.name() + "' has no application-consistent point (its policy's "
                  "appConsistentFrequencyInMinutes is 0, its VM was not running, or the guest "
                  "has no hooks in /etc/stratus/backup.d: those points are "
                  "FileSystemConsistent). Choose one by 'recoveryPointName'.",
                  id.ToString(), "NoApplicationConsistentPoint");
}

}  // namespace

Result<Json> ReplicationService::FailoverParams(const ResourceId& id, Json params) const {
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  const Json& p = rec.body["properties"];
  std::string state = p.value("protectionState", "");
  if (state == "FailedOver" || state == "FailingOver")
    return Conflict("Item '" + id.name() + "' is failed over already (VM '" +
                        p.value("failedOverVmId", "") + "').",
                    id.ToString(), "AlreadyFailedOver");
  ASSIGN_OR_RETURN(auto pts, ListAll(d_.ctx.store, id.Key() + "/recoverypoints/", kReplPointType));
  if (pts.empty())
    return Conflict("Item '" + id.name() + "' has no recovery point yet.", id.ToString(),
                    "NoRecoveryPoint");
  std::string point = params.value("recoveryPointName", "");
  ASSIGN_OR_RETURN(std::string kind, PointKindParam(params));
  if (!point.empty() && kind != "Latest")
    return InvalidArgument("Give 'recoveryPointName' or 'recoveryPointType', not both.",
                           "recoveryPointType");
  params.erase("recoveryPointType");
  if (point.empty()) {
    ASSIGN_OR_RETURN(params["recoveryPointName"], LatestPointOf(pts, kind, id));
  } else {
    bool found = false;
    for (auto& r : pts) found = found || r.body.value("name", "") == point;
    if (!found)
      return NotFound("Item '" + id.name() + "' has no recovery point '" + point + "'.",
                      "recoveryPointName", "RecoveryPointNotFound");
  }
  if (std::string base = rec.internal.value("baseVmKey", ""); !base.empty()) {
    // A failback: the original VM takes the point; no new VM, no name to choose.
    if (params.contains("vmName") || params.contains("targetResourceGroup"))
      return InvalidArgument("Item '" + id.name() + "' fails back into its original VM: "
                             "'vmName' and 'targetResourceGroup' do not apply.",
                             params.contains("vmName") ? "vmName" : "targetResourceGroup");
    return params;
  }
  std::string rg = params.value("targetResourceGroup", id.resource_group());
  RETURN_IF_ERROR(ValidateResourceGroupName(rg));
  RETURN_IF_ERROR(api::CheckGroupExists(d_.ctx.store, ResourceId::Group(id.subscription(), rg)));
  params["targetResourceGroup"] = rg;
  auto src = ResourceId::Parse(p.value("sourceVmId", ""));
  std::string vm_name = params.value("vmName", src.ok() ? src->name() : id.name());
  RETURN_IF_ERROR(ValidateResourceName(vm_name, "virtualMachines", 64));
  params["vmName"] = vm_name;
  ResourceId vm = ResourceId::Resource(id.subscription(), rg, "Stratus.Compute", "virtualMachines",
                                       vm_name);
  if (d_.ctx.store->Get(vm.Key()).ok())
    return Conflict("VM '" + vm.ToString() + "' exists already; name another (vmName).",
                    "vmName", "ResourceExists");
  return params;
}

Result<ApiResponse> ReplicationService::PostItem(const ApiRequest& req, const ResourceId& id,
                                                 const std::string& action) {
  bool planned = EqualsIgnoreCase(action, "plannedFailover");
  bool test = EqualsIgnoreCase(action, "testFailover");
  bool cleanup = EqualsIgnoreCase(action, "testFailoverCleanup");
  if (EqualsIgnoreCase(action, "reprotect")) return StartReprotect(req, id);
  if (EqualsIgnoreCase(action, "changeRecoveryPoint") || EqualsIgnoreCase(action, "commit"))
    return StartAfterFailover(req, id, action);
  if (!planned && !test && !cleanup && !EqualsIgnoreCase(action, "unplannedFailover"))
    return NotFound("Replicated items have no action '" + action + "'.", action, "NotFound");
  Json params = req.body.is_object() ? req.body : Json::object();
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  std::string drill = rec.body["properties"].value("testFailoverState", "None");
  std::string caller = req.caller;
  if (cleanup) {
    RETURN_IF_ERROR(api::RejectUnknownKeys(params, {}, ""));
    if (drill == "None")
      return Conflict("Item '" + id.name() + "' has no test failover to clean up.", id.ToString(),
                      "NoTestFailover");
    ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock({id.Key()}));
    ASSIGN_OR_RETURN(std::string op,
                     d_.ctx.ops->StartLocked(std::move(lock), id, kTestCleanupOp, Json::object(),
                                             [this, id, caller](api::OperationContext& octx) {
                                               return TestFailoverCleanup(id, caller, octx);
                                             },
                                             req.caller));
    return api::AcceptedResponse(req, id.subscription(), op);
  }
  if (planned) {
    // The point is the last cycle after the VM stopped: none is chosen.
    RETURN_IF_ERROR(api::RejectUnknownKeys(params, {"targetResourceGroup", "vmName"}, ""));
  } else {
    RETURN_IF_ERROR(api::RejectUnknownKeys(params, {"recoveryPointName", "recoveryPointType",
                                                    "targetResourceGroup", "vmName"},
                                           ""));
  }
  if (test) {
    if (drill == "InProgress" || drill == "Completed")
      return Conflict("Item '" + id.name() + "' has a test failover running (VM '" +
                          rec.body["properties"].value("testFailoverVmId", "") +
                          "'); clean it up first (testFailoverCleanup).",
                      id.ToString(), "TestFailoverInProgress");
    if (!params.contains("vmName")) params["vmName"] = TestVmName(rec);
  }
  ASSIGN_OR_RETURN(params, FailoverParams(id, params));
  if (planned) {
    params.erase("recoveryPointName");
    RETURN_IF_ERROR(SourceReachable(rec));
  }
  // The item's lock only: the VM is created through VmService (which locks it), create-only.
  // A test failover holds it only while its VM is made: a real failover may start during the
  // drill.
  ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock({id.Key()}));
  const char* op_name = planned ? kPlannedFailoverOp : test ? kTestFailoverOp : kFailoverOp;
  ASSIGN_OR_RETURN(
      std::string op,
      d_.ctx.ops->StartLocked(std::move(lock), id, op_name, Json::object(),
                              [this, id, params, caller, planned, test](api::OperationContext& octx) {
                                if (test) return TestFailover(id, params, caller, octx);
                                return planned ? PlannedFailover(id, params, caller, octx)
                                               : Failover(id, params, caller, octx);
                              },
                              req.caller));
  return api::AcceptedResponse(req, id.subscription(), op);
}

Result<std::map<std::string, std::string>> ReplicationService::ShutDownAtSource(
    const std::vector<ResourceId>& items, api::OperationContext& octx) {
  if (!d_.pairing) return Unavailable("this region is paired with none");
  struct Asked {
    ResourceId id;
    Json ask;
    std::string source;
    PeerClient client;
  };
  std::vector<Asked> asked;
  for (auto& id : items) {
    ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
    const std::string source = rec.body["properties"].value("sourceRegion", "");
    ASSIGN_OR_RETURN(PeerClient client, d_.pairing->ClientFor(source));
    Json ask = {{"item", rec.internal.value("itemId", "")}};
    auto reply = client.Call("POST", "/peer/v1/replication/prepareFailover", ask.dump());
    if (!reply.ok() || reply->status != 200)
      return NotFromPeer("Region '" + source + "' (item '" + id.name() + "')", reply);
    asked.push_back({id, std::move(ask), source, std::move(client)});
  }
  // Each source shuts its VM down and sends one last cycle; its number is the item's point.
  std::map<std::string, std::string> points;
  for (auto end = std::chrono::steady_clock::now() + std::chrono::minutes(15);;) {
    for (auto& a : asked) {
      if (points.count(a.id.Key())) continue;
      auto st = a.client.Call("POST", "/peer/v1/replication/status", a.ask.dump());
      if (!st.ok() || st->status != 200) continue;  // asked again at the next round
      auto j = ParseJson(st->body);
      if (!j.ok()) continue;
      if (j->value("state", "") == "Enabled")
        return Status(StatusCode::kConflict, "PlannedFailoverFailed",
                      "Region '" + a.source + "' could not finish the last cycle of item '" +
                          a.id.name() + "': " + j->value("lastError", std::string("unknown")) +
                          ". Its VM is stopped there: start it again, or retry.");
      if (j->value("state", "") != "ReadyForFailover") continue;
      const std::string point = PointName(j->value("finalSeq", uint64_t{0}));
      if (!d_.ctx.store->Get(a.id.Key() + "/recoverypoints/" + point).ok())
        return Internal("the last cycle " + point + " of item '" + a.id.name() +
                        "' is not a point here");
      points[a.id.Key()] = point;
    }
    if (points.size() == asked.size()) return points;
    if (std::chrono::steady_clock::now() > end)
      return Status(StatusCode::kUnavailable, "PlannedFailoverTimedOut",
                    "The source did not finish the last cycles of " +
                        std::to_string(asked.size() - points.size()) + " of " +
                        std::to_string(asked.size()) +
                        " items in 15 minutes; their VMs may be stopped there.");
    octx.SetProgress(20, std::to_string(points.size()) + " of " + std::to_string(asked.size()) +
                             " VMs stopped in the source with their last cycle here");
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

Status ReplicationService::PlannedFailover(const ResourceId& id, Json params,
                                           const std::string& caller, api::OperationContext& octx) {
  int64_t t0 = WallMs();
  octx.SetProgress(5, "shutting the VM down in the source region");
  ASSIGN_OR_RETURN(auto points, ShutDownAtSource({id}, octx));
  const std::string point = points[id.Key()];
  octx.SetProgress(60, "failing over to the last cycle " + point);
  params["recoveryPointName"] = point;
  params["failoverType"] = "Planned";
  RETURN_IF_ERROR(Failover(id, params, caller, octx));
  octx.result()["failoverType"] = "Planned";
  octx.result()["totalTimeMs"] = WallMs() - t0;
  return Status::Ok();
}

std::string ReplicationService::TestVmName(const store::Record& item) {
  auto src = ResourceId::Parse(item.body["properties"].value("sourceVmId", ""));
  return (src.ok() ? src->name() : item.body.value("name", "vm")) + "-test";
}

Status ReplicationService::WaitOperation(const std::string& op, const std::string& failed) {
  for (;;) {
    ASSIGN_OR_RETURN(auto o, d_.ctx.ops->Get(op));
    if (o.status == "Succeeded") return Status::Ok();
    if (o.status != "InProgress")
      return Internal(failed + ": " + o.body["error"].value("message", o.status));
    // A failover waits here for its VM: every poll's lateness is the RTO's (a read of the store).
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<std::string> ReplicationService::ReplicaDiskNames(const store::Record& rec) {
  std::vector<std::string> names;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(rec.internal.value("dir", ""), ec))
    if (e.is_directory()) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

void ReplicationService::RemoveFailoverCopies(const std::string& prefix) const {
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(JoinPath(d_.ctx.data_dir, "disks"), ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) RemoveFile(e.path().string());
}

std::string ReplicationService::FailoverTmpPrefix(const std::string& op_id,
                                                  const std::string& item_id) {
  return "failover-" + op_id + "-" + item_id.substr(0, 8) + "-";
}

Status ReplicationService::CopyDiskOut(const std::string& item_id, const std::string& disk,
                                       uint64_t seq, const std::string& tmp) {
  ASSIGN_OR_RETURN(ReplicaChain * chain, receiver_->Chain(item_id, disk));
  ASSIGN_OR_RETURN(std::string image, chain->PointImage(seq));
  auto conv = RunChecked(
      {"qemu-img", "convert", "-q", "-O", "qcow2", "-o", "lazy_refcounts=on", image, tmp});
  if (!conv.ok())
    return Internal("copying disk " + disk + " out of its replica: " + conv.status().message());
  Status tracked = d_.engine->AddBitmap(tmp, FailoverBitmapName(item_id));
  if (!tracked.ok())
    return Internal("disk " + disk + ": cannot add the failover bitmap: " + tracked.message());
  return Status::Ok();
}

void ReplicationService::PrestartGate::Open(bool go) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (state_ == 0) state_ = go ? 1 : -1;
  }
  cv_.notify_all();
}

bool ReplicationService::PrestartGate::Wait(const std::function<bool()>& stopping) {
  std::unique_lock<std::mutex> l(mu_);
  while (state_ == 0) {
    if (stopping()) return false;
    cv_.wait_for(l, std::chrono::milliseconds(200));
  }
  return state_ == 1;
}

Status ReplicationService::StartPrestage(const ResourceId& id, const Json& params,
                                         const std::string& caller,
                                         const api::OperationContext& octx) {
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  if (!rec.internal.value("baseVmKey", "").empty())
    return Conflict("item '" + id.name() + "' fails back into its original VM: not ahead",
                    id.ToString(), "FailsBack");
  const std::string item_id = rec.internal.value("itemId", "");
  ASSIGN_OR_RETURN(store::Record pt, d_.ctx.store->Get(id.Key() + "/recoverypoints/" +
                                                       params.value("recoveryPointName", "")));
  const uint64_t seq = pt.internal.value("seq", uint64_t{0});
  const std::string prefix = FailoverTmpPrefix(octx.id(), item_id);
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
    r.body["properties"]["protectionState"] = "FailingOver";
    r.internal["failoverMade"] = {{"vm", ""},
                                  {"tmpPrefix", prefix},
                                  {"disks", Json::array()},
                                  {"nics", Json::array()},
                                  {"testNetworks", Json::array()}};
    return true;
  }));
  receiver_->Forget(item_id);  // an open cycle goes
  const std::vector<std::string> names = ReplicaDiskNames(rec);
  const std::string dir = JoinPath(d_.ctx.data_dir, "disks");
  auto copied = std::make_shared<std::promise<Status>>();
  auto gate = std::make_shared<PrestartGate>();
  {
    std::lock_guard<std::mutex> l(prestage_mu_);
    prestaged_[prefix] = Prestaged{id, seq, copied->get_future().share(), gate, {}};
  }
  api::OperationContext ctx = octx;  // progress goes to the plan's operation
  ctx.result() = Json::object();
  std::shared_future<Result<Json>> failover =
      std::async(std::launch::async,
                 [this, id, params, caller, ctx, item_id, names, seq, prefix, dir, copied,
                  gate]() mutable -> Result<Json> {
                   Status s = MakeDirs(dir, 0711);
                   for (size_t i = 0; s.ok() && i < names.size(); ++i) {
                     {
                       std::lock_guard<std::mutex> l(mu_);
                       if (stopping_) s = Unavailable("stratusd is stopping");
                     }
                     std::string tmp = JoinPath(dir, prefix + names[i] + ".qcow2");
                     if (s.ok()) s = CopyDiskOut(item_id, names[i], seq, tmp);
                     if (!s.ok()) RemoveFile(tmp);
                   }
                   copied->set_value(s);  // MakeVmAt copies a disk again when this failed
                   // Then the failover itself, up to its VM started paused; it waits at the gate.
                   RETURN_IF_ERROR(Failover(id, params, caller, ctx, gate.get()));
                   return ctx.result();
                 })
          .share();
  std::lock_guard<std::mutex> l(prestage_mu_);
  prestaged_[prefix].failover = failover;
  return Status::Ok();
}

Result<Json> ReplicationService::RunPrestarted(const std::string& op_id, const ResourceId& id) {
  std::shared_ptr<PrestartGate> gate;
  std::shared_future<Result<Json>> failover;
  {
    std::lock_guard<std::mutex> l(prestage_mu_);
    for (auto& [prefix, p] : prestaged_)
      if (prefix.rfind("failover-" + op_id + "-", 0) == 0 && p.item == id) {
        gate = p.gate;
        failover = p.failover;
      }
  }
  if (!gate || !failover.valid())
    return NotFound("item '" + id.name() + "' was not started ahead", id.ToString());
  gate->Open(true);
  return failover.get();
}

void ReplicationService::FinishPrestage(const std::string& op_id) {
  std::vector<std::pair<std::string, Prestaged>> mine;  // by FailoverTmpPrefix
  {
    std::lock_guard<std::mutex> l(prestage_mu_);
    for (auto it = prestaged_.begin(); it != prestaged_.end();) {
      if (it->first.rfind("failover-" + op_id + "-", 0) == 0) {
        mine.emplace_back(*it);
        it = prestaged_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& entry : mine) {
    const std::string& prefix = entry.first;  // a lambda may not capture a structured binding
    Prestaged& p = entry.second;               // (clang 14, C++20)
    p.gate->Open(false);  // a failover whose turn never came removes what it made
    if (p.failover.valid()) p.failover.wait();
    p.done.wait();
    RemoveFailoverCopies(prefix);  // copies no disk took (a disk adopts its copy by renaming it)
    (void)PutWithRetry(d_.ctx.store, p.item.Key(), [&](store::Record& r) {
      const Json made = r.internal.value("failoverMade", Json::object());
      if (r.body["properties"].value("protectionState", "") != "FailingOver" ||
          made.value("tmpPrefix", "") != prefix || !made.value("vm", "").empty())
        return false;  // its failover ran (and finished, or cleaned up after itself)
      r.body["properties"]["protectionState"] = "Protected";
      r.internal.erase("failoverMade");
      return true;
    });
  }
}

Result<ResourceId> ReplicationService::MakeVmAt(
    const ResourceId& id, const store::Record& rec, const store::Record& pt, bool clone,
    const std::string& rg, const std::string& vm_name, const Json& tags, const std::string& caller,
    api::OperationContext& octx, std::vector<std::string>& made, Json* network, bool start_paused) {
  const std::string item_id = rec.internal.value("itemId", "");
  const uint64_t seq = pt.internal.value("seq", uint64_t{0});
  // The configuration as of the point (points older than that record: the item's newest).
  const Json cfg = pt.internal.contains("vmConfig")
                       ? pt.internal["vmConfig"]
                       : rec.body["properties"].value("vmConfig", Json::object());
  // What this failover makes, recorded as it goes: a restart that cuts it removes all of it
  // (RollBackInterrupted) and the item can fail over again.
  ResourceId vm = ResourceId::Resource(id.subscription(), rg, "Stratus.Compute", "virtualMachines",
                                       vm_name);
  const std::string tmp_prefix = FailoverTmpPrefix(octx.id(), item_id);
  Json record = {{"vm", vm.ToString()}, {"tmpPrefix", tmp_prefix}, {"disks", Json::array()},
                 {"nics", Json::array()}, {"testNetworks", Json::array()}};
  auto note_made = [&]() {
    record["disks"] = made;
    return PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
      r.internal["failoverMade"] = record;
      return true;
    });
  };
  RETURN_IF_ERROR(note_made());
  const int64_t t_start = WallMs();
  // The disks: each copied out of its replica at the point (qemu-img convert: the new disk
  // stands on its own), or a copy-on-write clone of it (a test failover: instant, and the
  // point's layers are pinned until the cleanup).
  Json disk_ids = Json::object();
  const std::vector<std::string> names = ReplicaDiskNames(rec);
  int done = 0;
  RETURN_IF_ERROR(MakeDirs(JoinPath(d_.ctx.data_dir, "disks"), 0711));
  for (auto& disk : names) {
    octx.SetProgress(10 + 60 * done++ / std::max<size_t>(1, names.size()),
                     (clone ? "cloning disk " : "copying disk ") + disk);
    ASSIGN_OR_RETURN(ReplicaChain * chain, receiver_->Chain(item_id, disk));
    // Named after the operation, the item and the disk: a plan fails several items over at once.
    std::string tmp = JoinPath(d_.ctx.data_dir, "disks/" + tmp_prefix + disk + ".qcow2");
    if (clone) {
      Status c = chain->CloneAt(seq, tmp);
      if (!c.ok()) {
        RemoveFile(tmp);
        return Internal("cloning disk " + disk + " of its replica: " + c.message());
      }
    } else {
      // A plan copied it while the group before booted (StartPrestage): taken as it is.
      std::shared_future<Status> prestaged;
      {
        std::lock_guard<std::mutex> l(prestage_mu_);
        auto it = prestaged_.find(tmp_prefix);
        if (it != prestaged_.end() && it->second.seq == seq) prestaged = it->second.done;
      }
      if (!prestaged.valid() || !prestaged.get().ok() || !PathExists(tmp)) {
        RemoveFile(tmp);
        Status copied = CopyDiskOut(item_id, disk, seq, tmp);
        if (!copied.ok()) {
          RemoveFile(tmp);
          return copied;
        }
      }
    }
    std::string sku = "Standard_LRS";
    if (disk == "osdisk") sku = cfg["osDisk"].value("sku", sku);
    for (auto& dd : cfg.value("dataDisks", Json::array()))
      if ("lun" + std::to_string(dd.value("lun", -2)) == disk) sku = dd.value("sku", sku);
    storage::DiskSpec spec;
    spec.id = ResourceId::Resource(id.subscription(), rg, "Stratus.Storage", "disks",
                                   vm_name + "-" + disk);
    spec.location = d_.ctx.region;
    spec.sku = sku;
    spec.option = storage::CreateOption::kAdopt;
    spec.source_path = tmp;
    spec.creation_data = {{"createOption", "Restore"}, {"sourceResourceId", pt.body.value("id", "")}};
    if (d_.ctx.store->Get(spec.id.Key()).ok()) {
      RemoveFile(tmp);
      return Conflict("Disk '" + spec.id.ToString() + "' exists already.", spec.id.ToString(),
                      "ResourceExists");
    }
    auto disk_made = d_.disks->EnsureDisk(spec, caller);
    if (!disk_made.ok()) {
      RemoveFile(tmp);
      return disk_made.status();
    }
    made.push_back(spec.id.ToString());
    disk_ids[disk] = spec.id.ToString();
    RETURN_IF_ERROR(note_made());
  }
  if (!disk_ids.contains("osdisk")) return Internal("the replica has no OS disk");
  const int64_t t_disks = WallMs();
  // Its NICs: in the mapped networks (a test: the test networks), with their addresses and MACs.
  octx.SetProgress(72, clone ? "making the NICs in the test network" : "making the NICs");
  const std::string creator = caller + " (" + (clone ? "test failover " : "failover ") +
                              octx.id() + ")";
  ASSIGN_OR_RETURN(Json net, net_->Make(rec, cfg, vm, cfg.value("vmSize", ""), clone, creator));
  for (auto& n : net.value("nics", Json::array())) record["nics"].push_back(n.value("id", ""));
  record["testNetworks"] = net.value("madeTestNetworks", Json::array());
  if (Status noted = note_made(); !noted.ok()) {
    service::RestoreNetwork(d_.ctx, d_.networks).RemoveMade(net, creator);
    net_->RemoveTestNetworks(net["madeTestNetworks"]);
    return noted;
  }
  // The VM, as it was configured in the source region.
  const int64_t t_nics = WallMs();
  octx.SetProgress(75, "creating the VM");
  Json data = Json::array();
  for (auto& [disk, did] : disk_ids.items())
    if (disk != "osdisk")
      data.push_back({{"lun", std::atoi(disk.c_str() + 3)},
                      {"createOption", "Attach"},
                      {"deleteOption", "Delete"},
                      {"managedDisk", {{"id", did}}}});
  Json all_tags = cfg.value("tags", Json::object());
  for (auto& [k, v] : tags.items()) all_tags[k] = v;
  Json body = {{"location", d_.ctx.region},
               {"tags", all_tags},
               {"properties",
                {{"hardwareProfile", {{"vmSize", cfg.value("vmSize", "")}}},
                 {"storageProfile",
                  {{"imageReference", {{"id", cfg.value("imageReference", "")}}},
                   {"osDisk",
                    {{"createOption", "Attach"},
                     {"deleteOption", "Delete"},
                     {"managedDisk", {{"id", disk_ids.value("osdisk", "")}}}}},
                   {"dataDisks", data}}},
                 {"osProfile", {{"computerName", cfg.value("computerName", vm_name)}}},
                 {"networkProfile", service::RestoreNetwork::VmNetworkProfile(net)}}}};
  store::WriteCondition create_only;
  create_only.must_not_exist = true;
  auto applied = d_.vms->Apply(vm, body, caller, create_only, start_paused);
  if (!applied.ok()) {
    service::RestoreNetwork(d_.ctx, d_.networks).RemoveMade(net, creator);
    net_->RemoveTestNetworks(net["madeTestNetworks"]);
    return applied.status();
  }
  made.clear();  // the VM owns its disks and NICs now (deleteOption Delete)
  if (network) {
    net_->Finish(net);
    *network = net;
  }
  // A VM that failed stays Failed with its disks and NICs (deleteOption Delete): deleting it
  // removes them; the item can be failed over again under another name. A drill's is removed
  // at once (with its clones, NICs and the isolated networks it made), so that the next drill
  // finds its names, addresses and MACs free.
  if (!applied->operation.empty()) {
    Status waited = WaitOperation(applied->operation,
                                  "the VM '" + vm.ToString() + "' could not be created");
    if (!waited.ok() && clone) {
      auto del = d_.vms->Delete(vm, /*delete_disks=*/1, caller);
      if (del.ok()) (void)WaitOperation(*del, "the failed test VM could not be deleted");
      net_->RemoveTestNetworks(net["madeTestNetworks"]);
    }
    RETURN_IF_ERROR(waited);
  }
  // Where a failover's own time goes (the RTO's Stratus part).
  const int64_t t_vm = WallMs();
  octx.result()["timingsMs"] = {{"disks", t_disks - t_start},
                                {"networkInterfaces", t_nics - t_disks},
                                {"vm", t_vm - t_nics}};
  spdlog::info("{} of item {} as VM {}: disks {} ms, NICs {} ms, VM {} ms",
               clone ? "test failover" : "failover", item_id, vm.ToString(), t_disks - t_start,
               t_nics - t_disks, t_vm - t_nics);
  return vm;
}

Status ReplicationService::Failover(const ResourceId& id, const Json& params,
                                    const std::string& caller, api::OperationContext& octx,
                                    PrestartGate* gate) {
  int64_t t0 = WallMs();
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  const std::string item_id = rec.internal.value("itemId", "");
  const std::string point = params.value("recoveryPointName", "");
  ASSIGN_OR_RETURN(store::Record pt, d_.ctx.store->Get(id.Key() + "/recoverypoints/" + point));
  // From here on no cycle is taken: the point cannot change under the copy.
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
    r.body["properties"]["protectionState"] = "FailingOver";
    return true;
  }));
  receiver_->Forget(item_id);  // an open cycle goes
  std::vector<std::string> made;  // disk ids, removed on failure
  // A reprotected item fails back into the original VM; any other gets a new one.
  const bool failback = !rec.internal.value("baseVmKey", "").empty();
  Json network = Json::object();
  auto vm = failback
                ? FailbackInto(rec, pt, caller, octx)
                : MakeVmAt(id, rec, pt, /*clone=*/false, params.value("targetResourceGroup", ""),
                           params.value("vmName", ""), Json::object(), caller, octx, made, &network,
                           /*start_paused=*/gate != nullptr);
  if (!vm.ok()) {
    for (auto& d : made) {
      auto did = ResourceId::Parse(d);
      if (did.ok()) (void)d_.disks->DeleteDisk(*did, true);
    }
    (void)PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
      r.body["properties"]["protectionState"] = "Protected";
      r.internal.erase("failoverMade");  // removed above (a VM that failed stays, to be seen)
      return true;
    });
    return vm.status();
  }
  if (gate && !failback) {
    // Made ahead, paused: the plan says when it runs, or that it never will.
    const int64_t made_ms = WallMs() - t0;
    if (!gate->Wait([this] {
          std::lock_guard<std::mutex> l(mu_);
          return stopping_;
        })) {
      {
        std::lock_guard<std::mutex> l(mu_);
        if (stopping_)  // the next start's RollBackInterrupted removes it (FailingOver)
          return Unavailable("stratusd is stopping; VM '" + vm->ToString() + "' stays paused");
      }
      UndoFailover(id);
      return Conflict("The plan stopped before this item's group; VM '" + vm->ToString() +
                          "', made ahead, was removed.",
                      id.ToString(), "PlanStopped");
    }
    t0 = WallMs() - made_ms;  // the item's own time: the wait at the gate is the plan's
    if (Status resumed = d_.vms->Resume(*vm); !resumed.ok()) {
      UndoFailover(id);
      return resumed;
    }
  }
  int64_t rto_ms = WallMs() - t0;
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
    Json& p = r.body["properties"];
    p["protectionState"] = "FailedOver";
    p["failoverType"] = params.value("failoverType", "Unplanned");  // Planned: set by this code
    p["failedOverVmId"] = vm->ToString();
    p["failoverRecoveryPoint"] = pt.body.value("id", "");
    p["failoverRecoveryPointTime"] = pt.body["properties"].value("recoveryPointTime", "");
    p["failoverTime"] = FormatIso8601(WallMs());
    r.internal["failoverSeq"] = pt.internal.value("seq", uint64_t{0});
    r.internal.erase("failoverMade");
    p["failback"] = failback;
    if (failback) {
      r.internal.erase("baseVmKey");  // the VM is its own again
      r.internal.erase("baseImages");
    }
    return true;
  }));
  if (failback) {  // the points were of replicas that are spent
    ASSIGN_OR_RETURN(auto pts, ListAll(d_.ctx.store, id.Key() + "/recoverypoints/", kReplPointType));
    for (auto& r : pts) (void)d_.ctx.store->Delete(r.key);
  }
  octx.result()["vmId"] = vm->ToString();
  octx.result()["recoveryPoint"] = pt.body.value("id", "");
  octx.result()["recoveryPointTime"] = pt.body["properties"].value("recoveryPointTime", "");
  octx.result()["stratusTimeMs"] = rto_ms;
  if (!failback) NetworkResult(network, octx);
  return Status::Ok();
}

Status ReplicationService::TestFailover(const ResourceId& id, const Json& params,
                                        const std::string& caller, api::OperationContext& octx) {
  int64_t t0 = WallMs();
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  const std::string point = params.value("recoveryPointName", "");
  ASSIGN_OR_RETURN(store::Record pt, d_.ctx.store->Get(id.Key() + "/recoverypoints/" + point));
  const uint64_t seq = pt.internal.value("seq", uint64_t{0});
  // The point's layers are pinned first: thinning leaves them alone while the drill runs.
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
    r.body["properties"]["testFailoverState"] = "InProgress";
    r.internal["pinnedSeq"] = seq;
    return true;
  }));
  std::vector<std::string> made;
  Json network = Json::object();
  auto vm = MakeVmAt(id, rec, pt, /*clone=*/true, params.value("targetResourceGroup", ""),
                     params.value("vmName", ""), Json{{"stratus-test-failover", id.ToString()}},
                     caller, octx, made, &network);
  if (!vm.ok()) {
    for (auto& d : made) {
      auto did = ResourceId::Parse(d);
      if (did.ok()) (void)d_.disks->DeleteDisk(*did, true);
    }
    (void)PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
      r.body["properties"]["testFailoverState"] = "Failed";
      r.body["properties"]["testFailoverError"] = vm.status().message();
      r.internal.erase("pinnedSeq");
      r.internal.erase("failoverMade");
      return true;
    });
    return vm.status();
  }
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
    Json& p = r.body["properties"];
    p["testFailoverState"] = "Completed";
    p.erase("testFailoverError");
    p["testFailoverVmId"] = vm->ToString();
    p["testFailoverRecoveryPoint"] = pt.body.value("id", "");
    p["lastTestFailoverTime"] = FormatIso8601(WallMs());
    r.internal["testNetworks"] = network.value("testNetworks", Json::array());
    r.internal.erase("failoverMade");
    return true;
  }));
  octx.result()["vmId"] = vm->ToString();
  octx.result()["recoveryPoint"] = pt.body.value("id", "");
  octx.result()["stratusTimeMs"] = WallMs() - t0;
  NetworkResult(network, octx);
  return Status::Ok();
}

Status ReplicationService::TestFailoverCleanup(const ResourceId& id, const std::string& caller,
                                               api::OperationContext& octx) {
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  std::string vm_s = rec.body["properties"].value("testFailoverVmId", "");
  if (!vm_s.empty()) {
    ASSIGN_OR_RETURN(ResourceId vm, ResourceId::Parse(vm_s));
    if (d_.ctx.store->Get(vm.Key()).ok()) {
      octx.SetProgress(20, "deleting the test VM and its disks");
      ASSIGN_OR_RETURN(std::string op, d_.vms->Delete(vm, /*delete_disks=*/1, caller));
      RETURN_IF_ERROR(WaitOperation(op, "the test VM '" + vm_s + "' could not be deleted"));
    }
  }
  // Its isolated networks, once no other test VM (another item of the drill) uses them.
  octx.SetProgress(80, "deleting the isolated test networks");
  net_->RemoveTestNetworks(rec.internal.value("testNetworks", Json::array()));
  return PutWithRetry(d_.ctx.store, id.Key(), [&](store::Record& r) {
    Json& p = r.body["properties"];
    p["testFailoverState"] = "None";
    p.erase("testFailoverVmId");
    p.erase("testFailoverRecoveryPoint");
    p.erase("testFailoverError");
    r.internal.erase("pinnedSeq");
    r.internal.erase("testNetworks");
    return true;
  });
}

void ReplicationService::NetworkResult(const Json& network, api::OperationContext& octx) const {
  if (network.value("nics", Json::array()).empty() && network.value("notes", Json::array()).empty())
    return;
  octx.result()["networkInterfaces"] = network.value("madeNics", Json::array());
  octx.result()["networkNotes"] = network.value("notes", Json::array());
  if (!network.value("testNetworks", Json::array()).empty())
    octx.result()["testNetworks"] = network["testNetworks"];
}

void ReplicationService::HealthTick() {
  int64_t now = WallMs();
  if (now - last_health_ms_ < 1000) return;
  last_health_ms_ = now;
  auto items = ListAll(d_.ctx.store, "/subscriptions/", kReplItemType);
  if (!items.ok()) return;
  for (auto& rec : *items) {
    const Json& p = rec.body["properties"];
    std::string state = p.value("protectionState", "");
    int64_t captured = rec.internal.value("lastCapturedMs", int64_t{0});
    if (captured == 0 || (state != "Protected" && state != "InitialReplication")) continue;
    int64_t rpo = std::max<int64_t>(0, (now - captured) / 1000);
    int64_t threshold = p["policy"].value("rpoAlertThresholdInSeconds", 120);
    std::string was = rec.internal.value("rpoAlert", "Normal");
    std::string is = rpo > threshold ? "Critical" : "Normal";
    if (is == was) continue;
    // Recorded first (a conditional write: one alert per crossing, also with two writers).
    bool mine = false;
    (void)PutWithRetry(d_.ctx.store, rec.key, [&](store::Record& r) {
      if (r.internal.value("rpoAlert", "Normal") == is) return false;
      r.internal["rpoAlert"] = is;
      r.body["properties"]["lastRpoAlertTime"] = FormatIso8601(now);
      mine = true;
      return true;
    });
    if (!mine) continue;
    auto item_id = ResourceId::Parse(rec.body.value("id", ""));
    if (!item_id.ok()) continue;
    auto vault = d_.ctx.store->Get(item_id->Parent().Key());
    if (!vault.ok()) continue;
    Json payload = {{"vaultId", item_id->Parent().ToString()},
                    {"replicationProtectedItemId", item_id->ToString()},
                    {"alert", is == "Critical" ? "RpoThresholdExceeded" : "RpoRecovered"},
                    {"rpoInSeconds", rpo},
                    {"rpoAlertThresholdInSeconds", threshold},
                    {"lastRecoveryPointTime", FormatIso8601(captured)},
                    {"time", FormatIso8601(now)}};
    spdlog::warn("replicated item {}: {} (RPO {} s, threshold {} s)", item_id->ToString(),
                 payload["alert"].get<std::string>(), rpo, threshold);
    for (auto& h : vault->body["properties"]["alerts"].value("webhooks", Json::array())) {
      if (!h.is_string()) continue;
      auto r = HttpPostJson(h.get<std::string>(), payload);
      if (!r.ok() || r->status >= 300)
        spdlog::warn("RPO alert webhook {} failed: {}", h.get<std::string>(),
                     r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message());
    }
  }
}

// ---------------------------------------------------------------- B: consistency groups

Status ReplicationService::ValidateGroupName(const std::string& group) {
  return ValidateResourceName(group, "replicationConsistencyGroups", 64);
}

std::string ReplicationService::GroupTag(const ResourceId& item, const std::string& group) {
  return group.empty() ? "" : ToLower(item.Parent().ToString()) + "/" + ToLower(group);
}

const api::Shape& ReplicationService::GroupShape() {
  static const api::Shape s = api::Shape::Resource(api::Shape::Object({}));
  return s;
}

Status ReplicationService::EnsureGroup(const ResourceId& gid, const std::string& caller) {
  if (d_.ctx.store->Get(gid.Key()).ok()) return Status::Ok();
  store::Record rec;
  rec.key = gid.Key();
  rec.type = kReplGroupType;
  rec.body = api::NewResourceBody(gid, d_.ctx.region, Json::object(), caller, d_.ctx.clock->NowMs());
  rec.body.erase("tags");
  rec.body["properties"] = {{"provisioningState", "Succeeded"}};
  store::WriteCondition c;
  c.must_not_exist = true;
  auto w = d_.ctx.store->Put(rec, c);
  if (!w.ok() && w.status().code() != StatusCode::kPreconditionFailed &&
      w.status().code() != StatusCode::kConflict)
    return w.status();
  return Status::Ok();
}

Result<std::vector<store::Record>> ReplicationService::GroupMembers(const ResourceId& gid) const {
  ASSIGN_OR_RETURN(auto items, ListAll(d_.ctx.store, gid.Parent().Key() + "/replicationprotecteditems/",
                                       kReplItemType));
  std::vector<store::Record> out;
  for (auto& r : items)
    if (EqualsIgnoreCase(r.body["properties"].value("multiVmGroupName", ""), gid.name()))
      out.push_back(std::move(r));
  return out;
}

Result<std::vector<ReplicationService::GroupPoint>> ReplicationService::CommonPoints(
    const std::vector<store::Record>& members) const {
  std::vector<GroupPoint> out;
  if (members.empty()) return out;
  std::map<uint64_t, std::pair<size_t, GroupPoint>> seen;
  for (auto& m : members) {
    ASSIGN_OR_RETURN(auto pts, ListAll(d_.ctx.store, m.key + "/recoverypoints/", kReplPointType));
    for (auto& pt : pts) {
      uint64_t seq = pt.internal.value("seq", uint64_t{0});
      auto& e = seen[seq];
      if (e.first++ == 0) {
        e.second.seq = seq;
        e.second.captured_ms = pt.internal.value("capturedMs", int64_t{0});
        e.second.name = pt.body.value("name", "");
        e.second.properties = pt.body["properties"];
      }
    }
  }
  for (auto& [seq, e] : seen)
    if (e.first == members.size()) out.push_back(e.second);
  return out;
}

Json ReplicationService::GroupPointJson(const ResourceId& gid, const GroupPoint& gp,
                                        size_t members) const {
  Json props = {{"recoveryPointTime", gp.properties.value("recoveryPointTime", "")},
                {"recoveryPointType", gp.properties.value("recoveryPointType", "CrashConsistent")},
                {"sequence", gp.seq},
                {"memberCount", members}};
  if (gp.properties.contains("freezeMilliseconds"))
    props["freezeMilliseconds"] = gp.properties["freezeMilliseconds"];
  return {{"id", gid.ToString() + "/recoveryPoints/" + gp.name},
          {"name", gp.name},
          {"type", "Stratus.RecoveryServices/vaults/replicationConsistencyGroups/recoveryPoints"},
          {"properties", props}};
}

void ReplicationService::DecorateGroup(const store::Record& rec, Json& item) const {
  auto gid = ResourceId::Parse(rec.body.value("id", ""));
  if (!gid.ok()) return;
  Json& p = item["properties"];
  auto members = GroupMembers(*gid);
  if (!members.ok()) return;
  Json ids = Json::array();
  int64_t alert = 0;
  size_t failed_over = 0;
  for (auto& m : *members) {
    ids.push_back(m.body.value("id", ""));
    int64_t a = m.body["properties"]["policy"].value("rpoAlertThresholdInSeconds", 120);
    alert = alert == 0 ? a : std::min(alert, a);
    if (m.body["properties"].value("protectionState", "") == "FailedOver") ++failed_over;
  }
  p["members"] = ids;
  p["memberCount"] = ids.size();
  auto common = CommonPoints(*members);
  if (!common.ok()) return;
  p["recoveryPointCount"] = common->size();
  if (members->empty()) {
    p["protectionState"] = "Empty";
    return;
  }
  if (failed_over == members->size()) {
    p["protectionState"] = "FailedOver";
  } else if (common->empty()) {
    p["protectionState"] = "InitialReplication";
  } else {
    p["protectionState"] = "Protected";
  }
  if (common->empty()) return;
  const GroupPoint& newest = common->back();
  p["lastRecoveryPointTime"] = newest.properties.value("recoveryPointTime", "");
  if (newest.properties.contains("freezeMilliseconds"))
    p["lastFreezeMilliseconds"] = newest.properties["freezeMilliseconds"];
  if (p.value("protectionState", "") == "FailedOver") {
    p["replicationHealth"] = "Normal";
    return;
  }
  // The members' cycles in flight, together.
  uint64_t backlog = 0, rate = 0;
  for (auto& m : *members) {
    const Json progress = receiver_->Progress(m.internal.value("itemId", ""));
    if (!progress.contains("cycle")) continue;
    backlog += progress["cycle"].value("changedBytes", uint64_t{0}) -
               progress["cycle"].value("doneBytes", uint64_t{0});
    rate += progress["cycle"].value("bytesPerSecond", uint64_t{0});
  }
  p["backlogBytes"] = backlog;
  p["transferBytesPerSecond"] = rate;
  int64_t rpo = std::max<int64_t>(0, (WallMs() - newest.captured_ms) / 1000);
  p["rpoInSeconds"] = rpo;
  p["replicationHealth"] = rpo <= alert ? "Normal" : "Critical";
}

Result<ApiResponse> ReplicationService::PutGroup(const ApiRequest& req, const ResourceId& id) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(req.body, {"properties", "name", "id", "type", "location"},
                                         ""));
  RETURN_IF_ERROR(api::RejectUnknownKeys(req.body.value("properties", Json::object()), {},
                                         "properties"));
  bool existed = d_.ctx.store->Get(id.Key()).ok();
  RETURN_IF_ERROR(EnsureGroup(id, req.caller));
  ASSIGN_OR_RETURN(store::Record rec, d_.ctx.store->Get(id.Key()));
  ApiResponse resp = api::ResourceResponse(rec, existed ? 200 : 201);
  DecorateGroup(rec, resp.body);
  return resp;
}

Result<ApiResponse> ReplicationService::DeleteGroup(const ApiRequest&, const ResourceId& id) {
  if (!d_.ctx.store->Get(id.Key()).ok()) return ApiResponse::NoContent(204);
  ASSIGN_OR_RETURN(auto members, GroupMembers(id));
  if (!members.empty())
    return Conflict("Group '" + id.name() + "' still has " + std::to_string(members.size()) +
                        " member(s), e.g. '" + members[0].body.value("id", "") +
                        "'; disable them or move them to another group first.",
                    id.ToString(), "GroupHasMembers");
  ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock({id.Key()}));
  RETURN_IF_ERROR(d_.ctx.store->Delete(id.Key()));
  return ApiResponse::NoContent(200);
}

Result<ApiResponse> ReplicationService::ListGroupPoints(const ApiRequest&, const ResourceId& gid) {
  ASSIGN_OR_RETURN(auto members, GroupMembers(gid));
  ASSIGN_OR_RETURN(auto common, CommonPoints(members));
  Json value = Json::array();
  for (auto& gp : common) value.push_back(GroupPointJson(gid, gp, members.size()));
  return ApiResponse::Json200(Json{{"value", value}});
}

Result<ApiResponse> ReplicationService::GetGroupPoint(const ApiRequest&, const ResourceId& id) {
  ResourceId gid = id.Parent();
  ASSIGN_OR_RETURN(auto members, GroupMembers(gid));
  ASSIGN_OR_RETURN(auto common, CommonPoints(members));
  for (auto& gp : common)
    if (gp.name == id.name()) return ApiResponse::Json200(GroupPointJson(gid, gp, members.size()));
  return NotFound("Group '" + gid.name() + "' has no recovery point '" + id.name() +
                      "' (a group point is a cycle every member has).",
                  id.ToString(), "RecoveryPointNotFound");
}

const api::Shape& ReplicationService::GroupFailoverShape() {
  using api::Shape;
  static const Shape s = Shape::Object({{"recoveryPointName", Shape::String()},
                                        {"recoveryPointType", Shape::String()},
                                        {"targetResourceGroup", Shape::String()}});
  return s;
}

Result<ApiResponse> ReplicationService::PostGroup(const ApiRequest& req, const ResourceId& gid,
                                                  const std::string& action) {
  const bool planned = EqualsIgnoreCase(action, "plannedFailover");
  if (!planned && !EqualsIgnoreCase(action, "unplannedFailover"))
    return NotFound("Consistency groups have no action '" + action + "'.", action, "NotFound");
  Json params = req.body.is_object() ? req.body : Json::object();
  // A planned failover's points are the members' last cycles, sent once their VMs stopped.
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      params,
      planned ? std::vector<std::string>{"targetResourceGroup"}
              : std::vector<std::string>{"recoveryPointName", "recoveryPointType",
                                         "targetResourceGroup"},
      ""));
  ASSIGN_OR_RETURN(std::string kind, PointKindParam(params));
  if (params.contains("recoveryPointName") && kind != "Latest")
    return InvalidArgument("Give 'recoveryPointName' or 'recoveryPointType', not both.",
                           "recoveryPointType");
  ASSIGN_OR_RETURN(auto members, GroupMembers(gid));
  if (members.empty())
    return Conflict("Group '" + gid.name() + "' has no members.", gid.ToString(), "GroupIsEmpty");
  // A planned failover's points are the members' last cycles: no group point is needed.
  std::vector<GroupPoint> common;
  if (!planned) {
    ASSIGN_OR_RETURN(common, CommonPoints(members));
    if (common.empty())
      return Conflict("Group '" + gid.name() + "' has no point every member has yet.",
                      gid.ToString(), "NoRecoveryPoint");
  }
  std::string point = params.value("recoveryPointName", "");
  if (planned) {
    point.clear();
  } else if (point.empty()) {
    for (auto it = common.rbegin(); it != common.rend() && point.empty(); ++it)
      if (kind == "Latest" ||
          it->properties.value("recoveryPointType", "") == "ApplicationConsistent")
        point = it->name;
    if (point.empty())
      return Conflict("Group '" + gid.name() + "' has no application-consistent point every "
                      "member has.", gid.ToString(), "NoApplicationConsistentPoint");
  } else {
    bool found = false;
    for (auto& gp : common) found = found || gp.name == point;
    if (!found)
      return NotFound("Group '" + gid.name() + "' has no recovery point '" + point +
                          "' (a group point is a cycle every member has).",
                      "recoveryPointName", "RecoveryPointNotFound");
  }
  // Every member checked before anything starts: all fail over, or none does.
  std::vector<std::pair<ResourceId, Json>> plan;
  std::vector<std::string> keys = {gid.Key()};
  std::set<std::string> names;
  for (auto& m : members) {
    ASSIGN_OR_RETURN(ResourceId mid, ResourceId::Parse(m.body.value("id", "")));
    Json mp = planned ? Json::object() : Json{{"recoveryPointName", point}};
    if (params.contains("targetResourceGroup")) mp["targetResourceGroup"] = params["targetResourceGroup"];
    ASSIGN_OR_RETURN(mp, FailoverParams(mid, mp));
    if (!names.insert(ToLower(mp.value("vmName", ""))).second)
      return Conflict("Two members of group '" + gid.name() + "' would make VM '" +
                          mp.value("vmName", "") + "'; fail them over one by one with vmName.",
                      mid.ToString(), "ResourceExists");
    if (planned) {
      RETURN_IF_ERROR(SourceReachable(m));
      mp.erase("recoveryPointName");  // the last cycle's, once it is here
      mp["failoverType"] = "Planned";
    }
    keys.push_back(mid.Key());
    plan.push_back({mid, mp});
  }
  ASSIGN_OR_RETURN(auto lock, d_.ctx.ops->TryLock(keys));
  std::string caller = req.caller;
  ASSIGN_OR_RETURN(std::string op,
                   d_.ctx.ops->StartLocked(
                       std::move(lock), gid, planned ? kGroupPlannedFailoverOp : kGroupFailoverOp,
                       Json::object(),
                       [this, gid, plan, caller](api::OperationContext& octx) {
                         return GroupFailover(gid, plan, caller, octx);
                       },
                       req.caller));
  return api::AcceptedResponse(req, gid.subscription(), op);
}

Status ReplicationService::SourceReachable(const store::Record& item) const {
  const std::string source = item.body["properties"].value("sourceRegion", "");
  if (!d_.pairing || !d_.pairing->ClientFor(source).ok())
    return Conflict("A planned failover needs the source region '" + source +
                        "'; without it use unplannedFailover.",
                    item.body.value("id", ""), "PeerRegionUnreachable");
  return Status::Ok();
}

Status ReplicationService::GroupFailover(const ResourceId& gid,
                                         std::vector<std::pair<ResourceId, Json>> plan,
                                         const std::string& caller, api::OperationContext& octx) {
  int64_t t0 = WallMs();
  const bool planned = plan.front().second.value("failoverType", "") == "Planned";
  if (planned) {
    // Every member's VM stops in the source (side by side) and sends its last cycle.
    std::vector<ResourceId> ids;
    for (auto& [mid, params] : plan) ids.push_back(mid);
    octx.SetProgress(5, "shutting the group's VMs down in the source region");
    ASSIGN_OR_RETURN(auto points, ShutDownAtSource(ids, octx));
    for (auto& [mid, params] : plan) params["recoveryPointName"] = points[mid.Key()];
  }
  Json vms = Json::array();
  Json points = Json::object();
  for (auto& [mid, params] : plan) {
    Status s = Failover(mid, params, caller, octx);
    if (!s.ok()) {
      octx.result()["vms"] = vms;
      return Status(s.code(), s.arm_code(),
                    "Member '" + mid.ToString() + "' did not fail over (" +
                        std::to_string(vms.size()) + " of " + std::to_string(plan.size()) +
                        " did): " + s.message(),
                    s.target());
    }
    vms.push_back(octx.result().value("vmId", ""));
    points[mid.name()] = params.value("recoveryPointName", "");
  }
  octx.result()["vms"] = vms;
  octx.result().erase("vmId");
  if (planned) {
    octx.result()["failoverType"] = "Planned";
    octx.result()["recoveryPoints"] = points;  // each member's last cycle
  } else {
    octx.result()["recoveryPointName"] = plan.front().second.value("recoveryPointName", "");
  }
  octx.result()["stratusTimeMs"] = WallMs() - t0;
  spdlog::info("group {} failed over ({}): {} VMs at {}", gid.ToString(),
               planned ? "planned" : "unplanned", vms.size(), points.dump());
  return Status::Ok();
}

// ---------------------------------------------------------------- B: points

Result<ReplicaReceiver::Item> ReplicationService::LookupItem(const std::string& item_id) {
  ASSIGN_OR_RETURN(store::Record rec, ItemById(item_id));
  std::string state = rec.body["properties"].value("protectionState", "");
  ReplicaReceiver::Item item{rec.body["properties"].value("sourceRegion", ""),
                             rec.internal.value("dir", ""),
                             state != "FailingOver" && state != "FailedOver"};
  const Json bases = rec.internal.value("baseImages", Json::object());  // items() needs it alive
  for (auto& [disk, path] : bases.items())
    if (path.is_string()) item.base_images[disk] = path.get<std::string>();
  return item;
}

Status ReplicationService::OnPoint(const std::string& item_id, uint64_t seq, const Json& meta,
                                   const Json& stats) {
  ASSIGN_OR_RETURN(store::Record item, ItemById(item_id));
  int64_t captured = meta.value("capturedMs", WallMs());
  store::Record pt;
  pt.key = item.key + "/recoverypoints/" + PointName(seq);
  pt.type = kReplPointType;
  pt.body = {{"id", item.body.value("id", "") + "/recoveryPoints/" + PointName(seq)},
             {"name", PointName(seq)},
             {"type", "Stratus.RecoveryServices/vaults/replicationProtectedItems/recoveryPoints"},
             {"properties",
              {{"recoveryPointTime", FormatIso8601(captured)},
               {"recoveryPointType", meta.value("consistency", "CrashConsistent")},
               {"sequence", seq},
               {"bytesReceived", stats.value("bytes", uint64_t{0})}}}};
  if (stats.contains("resumedFrom"))
    pt.body["properties"]["resumedFromSequence"] = stats["resumedFrom"];
  if (meta.contains("consistencyReason") && meta["consistencyReason"].is_string())
    pt.body["properties"]["consistencyReason"] = meta["consistencyReason"];
  if (meta.contains("freezeMilliseconds"))
    pt.body["properties"]["freezeMilliseconds"] = meta["freezeMilliseconds"];
  pt.internal = {{"seq", seq}, {"capturedMs", captured}};
  if (meta.contains("vmConfig") && meta["vmConfig"].is_object())
    pt.internal["vmConfig"] = meta["vmConfig"];
  RETURN_IF_ERROR(d_.ctx.store->Put(pt).status());
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, item.key, [&](store::Record& r) {
    Json& p = r.body["properties"];
    p["protectionState"] = "Protected";
    p["lastRecoveryPointTime"] = FormatIso8601(captured);
    if (meta.value("consistency", "") == "ApplicationConsistent")
      p["lastApplicationConsistentPointTime"] = FormatIso8601(captured);
    p["lastCycle"] = meta.value("cycle", Json::object());
    p["lastCycle"]["bytesReceived"] = stats.value("bytes", uint64_t{0});
    p["lastCycle"]["receiveMilliseconds"] = stats.value("durationMs", int64_t{0});
    p["lastCycle"]["bytesPerSecond"] = stats.value("bytesPerSecond", uint64_t{0});
    // A cycle that finished one cut before (the link, this daemon): it sent only what was missing.
    if (stats.contains("resumedFrom")) p["lastCycle"]["resumedFrom"] = stats["resumedFrom"];
    if (meta.contains("vmConfig") && meta["vmConfig"].is_object()) p["vmConfig"] = meta["vmConfig"];
    r.internal["lastCapturedMs"] = captured;
    r.internal["lastSeq"] = seq;
    return true;
  }));
  Thin(item);
  return Status::Ok();
}

void ReplicationService::Thin(const store::Record& item) {
  auto pts = ListAll(d_.ctx.store, item.key + "/recoverypoints/", kReplPointType);
  if (!pts.ok() || pts->size() < 2) return;
  int64_t now = WallMs();
  int64_t retention_ms =
      item.body["properties"]["policy"].value("recoveryPointRetentionInHours", 24) * 3600000;
  // A group's members keep the same points: past the last hour, only the points every member
  // has (a cycle one member missed is no group point) are candidates.
  std::optional<std::set<uint64_t>> common;
  std::string group = item.body["properties"].value("multiVmGroupName", "");
  if (auto iid = ResourceId::Parse(item.body.value("id", "")); iid.ok() && !group.empty()) {
    auto members = GroupMembers(iid->Parent().Child("replicationConsistencyGroups", group));
    if (!members.ok()) return;
    auto cps = CommonPoints(*members);
    if (!cps.ok()) return;
    common.emplace();
    for (auto& gp : *cps) common->insert(gp.seq);
  }
  // Keep: the newest; every point of the last hour; the first point of each older hour within
  // the retention, and the first application-consistent one of that hour too.
  std::vector<std::pair<uint64_t, std::string>> drop;  // seq, record key
  int64_t last_hour_kept = -1, last_app_hour_kept = -1;
  for (size_t i = 0; i + 1 < pts->size(); ++i) {
    const auto& r = (*pts)[i];
    int64_t t = r.internal.value("capturedMs", int64_t{0});
    uint64_t seq = r.internal.value("seq", uint64_t{0});
    if (now - t < 3600000) continue;
    if (common && common->count(seq) == 0) {
      drop.push_back({seq, r.key});
      continue;
    }
    int64_t hour = t / 3600000;
    if (now - t <= retention_ms && hour != last_hour_kept) {
      last_hour_kept = hour;
      if (r.body["properties"].value("recoveryPointType", "") == "ApplicationConsistent")
        last_app_hour_kept = hour;
      continue;
    }
    if (now - t <= retention_ms && hour != last_app_hour_kept &&
        r.body["properties"].value("recoveryPointType", "") == "ApplicationConsistent") {
      last_app_hour_kept = hour;
      continue;
    }
    drop.push_back({seq, r.key});
  }
  if (drop.empty()) return;
  // A test failover's VM runs on copy-on-write clones of its point: the layers at or below it
  // stay until the cleanup.
  std::set<uint64_t> pinned;
  if (auto fresh = d_.ctx.store->Get(item.key); fresh.ok() && fresh->internal.contains("pinnedSeq"))
    pinned.insert(fresh->internal.value("pinnedSeq", uint64_t{0}));
  if (!pinned.empty())
    drop.erase(std::remove_if(drop.begin(), drop.end(),
                              [&](const auto& d) { return d.first <= *pinned.rbegin(); }),
               drop.end());
  if (drop.empty()) return;
  std::string item_id = item.internal.value("itemId", "");
  for (auto& [seq, key] : drop) {
    // Every disk of the item drops the point's layer (merged into the next point's).
    bool ok = true;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(item.internal.value("dir", ""), ec)) {
      auto chain = receiver_->Chain(item_id, e.path().filename().string());
      if (!chain.ok()) continue;
      Status s = (*chain)->DropPoint(seq, pinned);
      if (!s.ok()) {
        spdlog::warn("thinning point {} of {}: {}", seq, item.key, s.ToString());
        ok = false;
      }
    }
    if (ok) (void)d_.ctx.store->Delete(key);
  }
}

// ---------------------------------------------------------------- A: the source

Result<Json> ReplicationService::PeerEnable(const PeerCaller& caller, const Json& body) {
  std::string item = body.value("item", "");
  auto vm_id = ResourceId::Parse(body.value("vmId", ""));
  int64_t interval = body.value("intervalSeconds", 30);
  const int64_t app_interval = body.value("appIntervalSeconds", int64_t{0});
  std::string group = body.value("group", "");
  if (item.empty() || item.size() > 64 || !vm_id.ok() || interval < 1 || group.size() > 200 ||
      app_interval < 0)
    return InvalidArgument("enable needs 'item', 'vmId' and 'intervalSeconds'", "",
                           "InvalidRequestContent");
  auto vm = d_.ctx.store->Get(vm_id->Key());
  if (!vm.ok())
    return NotFound("Region '" + d_.ctx.region + "' has no VM '" + vm_id->ToString() + "'.",
                    vm_id->ToString(), "SourceVmNotFound");
  ASSIGN_OR_RETURN(auto out, ListAll(d_.ctx.store, kOutboundPrefix, kOutboundType));
  for (auto& r : out)
    if (r.body.value("item", "") != item && EqualsIgnoreCase(r.body.value("vmKey", ""), vm->key))
      return Conflict("VM '" + vm_id->ToString() + "' is replicated already (to region '" +
                          r.body.value("targetRegion", "") + "').",
                      vm_id->ToString(), "VmAlreadyReplicated");
  store::Record rec;
  rec.key = kOutboundPrefix + ToLower(item);
  rec.type = kOutboundType;
  auto existing = d_.ctx.store->Get(rec.key);
  if (existing.ok()) rec = *existing;
  rec.body["item"] = item;
  rec.body["targetRegion"] = caller.region;
  rec.body["vmId"] = vm->body.value("id", "");
  rec.body["vmKey"] = vm->key;
  rec.body["intervalSeconds"] = interval;
  rec.body["appIntervalSeconds"] = app_interval;
  // Members of one consistency group are captured at one instant (GroupCycle).
  if (group.empty()) rec.body.erase("group");
  else rec.body["group"] = group;
  if (!existing.ok()) {
    rec.body["seq"] = 0;
    rec.body["checkpoint"] = "";
    rec.body["nextDueMs"] = 0;
    rec.body["state"] = "Enabled";
  }
  RETURN_IF_ERROR(d_.ctx.store->Put(rec).status());
  spdlog::info("replicating VM {} to region '{}' as item {} every {} s", vm_id->ToString(),
               caller.region, item, interval);
  cv_.notify_all();
  return Json{{"vmConfig", SourceConfig(*vm)}};
}

Result<Json> ReplicationService::PeerDisable(const PeerCaller& caller, const Json& body) {
  std::string item = body.value("item", "");
  auto rec = d_.ctx.store->Get(kOutboundPrefix + ToLower(item));
  if (!rec.ok()) return Json{{"item", item}};
  if (!EqualsIgnoreCase(rec->body.value("targetRegion", ""), caller.region))
    return Status(StatusCode::kForbidden, "ReplicationNotToCaller",
                  "Item '" + item + "' is not replicated to the caller's region.");
  // Its checkpoints go with it (a running cycle holds the VM's lock: wait for it).
  auto vm = d_.ctx.store->Get(rec->body.value("vmKey", ""));
  if (vm.ok() && d_.hv) {
    std::string domain = vm->internal.value("domain", "");
    auto cps = d_.hv->ListCheckpoints(domain);
    if (cps.ok())
      for (auto& cp : *cps)
        if (cp.rfind("srep-" + item.substr(0, 8) + "-", 0) == 0)
          (void)d_.hv->DeleteCheckpoint(domain, cp);
  }
  RETURN_IF_ERROR(d_.ctx.store->Delete(rec->key));
  (void)RemoveTree(JoinPath(d_.ctx.data_dir, "replication/" + item));
  spdlog::info("replication item {} to region '{}' ended", item, caller.region);
  return Json{{"item", item}};
}

Result<store::Record> ReplicationService::OutboundFor(const PeerCaller& caller,
                                                      const std::string& item) const {
  auto rec = d_.ctx.store->Get(kOutboundPrefix + ToLower(item));
  if (!rec.ok())
    return NotFound("Item '" + item + "' is not replicated from here.", item, "ReplicatedItemNotFound");
  if (!EqualsIgnoreCase(rec->body.value("targetRegion", ""), caller.region))
    return Status(StatusCode::kForbidden, "ReplicationNotToCaller",
                  "Item '" + item + "' is not replicated to the caller's region.");
  return rec;
}

Result<Json> ReplicationService::PeerPrepareFailover(const PeerCaller& caller, const Json& body) {
  std::string item = body.value("item", "");
  ASSIGN_OR_RETURN(store::Record rec, OutboundFor(caller, item));
  std::string state = rec.body.value("state", "");
  if (state == "PreparingFailover" || state == "ReadyForFailover") return PeerStatus(caller, body);
  if (state != "Enabled")
    return Conflict("Item '" + item + "' is " + state + " here; a planned failover needs it Enabled.",
                    item, "ReplicationNotEnabled");
  auto vm = d_.ctx.store->Get(rec.body.value("vmKey", ""));
  if (!vm.ok()) return NotFound("The VM of item '" + item + "' is gone.", item, "SourceVmNotFound");
  // The VM shuts down (its guest flushes and stops: nothing is written after), then the
  // scheduler sends one last cycle (Tick).
  std::string op;
  auto info = d_.hv->Info(vm->internal.value("domain", ""));
  if (info.ok() && info->state != compute::PowerState::kStopped) {
    ASSIGN_OR_RETURN(ResourceId vm_id, ResourceId::Parse(vm->body.value("id", "")));
    ASSIGN_OR_RETURN(op, d_.vms->Act(vm_id, "poweroff", "peer:" + caller.region));
  }
  RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, rec.key, [&](store::Record& r) {
    r.body["state"] = "PreparingFailover";
    r.body["prepareOperation"] = op;
    r.body.erase("lastError");
    return true;
  }));
  spdlog::info("planned failover of item {} to region '{}': shutting VM {} down for a last cycle",
               item, caller.region, vm->body.value("id", ""));
  cv_.notify_all();
  return PeerStatus(caller, body);
}

Result<Json> ReplicationService::PeerStatus(const PeerCaller& caller, const Json& body) {
  ASSIGN_OR_RETURN(store::Record rec, OutboundFor(caller, body.value("item", "")));
  Json out = {{"state", rec.body.value("state", "")}, {"seq", rec.body.value("seq", uint64_t{0})}};
  if (rec.body.contains("finalSeq")) out["finalSeq"] = rec.body["finalSeq"];
  if (rec.body.contains("lastError")) out["lastError"] = rec.body["lastError"];
  return out;
}

void ReplicationService::PrepareTick(const store::Record& r) {
  const std::string item = r.body.value("item", "");
  auto fail = [&](const std::string& why) {
    spdlog::warn("planned failover of item {}: {}", item, why);
    (void)PutWithRetry(d_.ctx.store, r.key, [&](store::Record& w) {
      w.body["state"] = "Enabled";  // replication goes on; the target's operation fails
      w.body["lastError"] = "planned failover: " + why;
      return true;
    });
  };
  std::string op = r.body.value("prepareOperation", "");
  if (!op.empty()) {
    auto o = d_.ctx.ops->Get(op);
    if (o.ok() && o->status == "InProgress") return;
    if (o.ok() && o->status != "Succeeded")
      return fail("the VM did not shut down: " + o->body["error"].value("message", o->status));
  }
  auto vm = d_.ctx.store->Get(r.body.value("vmKey", ""));
  if (!vm.ok()) return fail("the VM is gone");
  auto info = d_.hv->Info(vm->internal.value("domain", ""));
  if (info.ok() && info->state != compute::PowerState::kStopped)
    return fail("the VM runs again (started after the shutdown)");
  std::vector<store::Record> one = {r};
  Status s = GroupCycle(one);
  if (!s.ok()) {
    if (s.arm_code() != "Busy") spdlog::warn("planned failover of item {}: last cycle: {}", item, s.ToString());
    return;  // the next tick tries again
  }
  (void)PutWithRetry(d_.ctx.store, r.key, [&](store::Record& w) {
    w.body["state"] = "ReadyForFailover";
    w.body["finalSeq"] = w.body.value("seq", uint64_t{0});
    return true;
  });
  spdlog::info("planned failover of item {}: the last cycle is in the target", item);
}

void ReplicationService::Tick() {
  auto out = ListAll(d_.ctx.store, kOutboundPrefix, kOutboundType);
  if (!out.ok()) return;
  int64_t now = WallMs();
  std::set<std::string> done;  // groups whose cycle ran in this tick
  for (auto& r : *out) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return;
    }
    if (r.body.value("state", "") == "PreparingFailover") {
      PrepareTick(r);
      continue;
    }
    if (r.body.value("state", "") != "Enabled" || r.body.value("nextDueMs", int64_t{0}) > now)
      continue;
    // A member of a consistency group is due: the whole group's cycle runs, at one instant.
    std::string group = GroupKey(r);
    std::vector<store::Record> members;
    if (group.empty()) {
      members.push_back(r);
    } else {
      if (!done.insert(group).second) continue;
      for (auto& m : *out)
        if (GroupKey(m) == group && m.body.value("state", "") == "Enabled") members.push_back(m);
    }
    Status s = GroupCycle(members);
    if (!s.ok() && s.arm_code() != "Busy")
      spdlog::warn("replication cycle of {}: {}",
                   group.empty() ? "item " + r.body.value("item", "") : "group " + group,
                   s.ToString());
  }
}

}  // namespace stratus::recovery::site
