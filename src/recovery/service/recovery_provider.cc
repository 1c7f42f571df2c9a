#include "recovery/service/recovery_provider.h"

#include "recovery/site/replication_service.h"

#include "api/resource_util.h"
#include "core/fs.h"
#include "core/uuid.h"
#include "recovery/policy/schedule.h"
#include "recovery/service/records.h"

namespace stratus::recovery::service {

using api::ApiRequest;
using api::ApiResponse;
using api::OperationContext;

RecoveryProvider::RecoveryProvider(api::RegionContext ctx, Services services)
    : ResourceProvider(std::move(ctx)),
      services_(services),
      vaults_(ctx_),
      jobs_(ctx_),
      redundancy_(ctx_, &vaults_, &jobs_),
      restores_(ctx_,
                {services.hv, services.vms, services.disks, &vaults_, &jobs_, services.networks}),
      backups_(ctx_, {services.hv, services.disks, &vaults_, &jobs_, &redundancy_,
                      restores_.instant(), services.networks}),
      actions_(ctx_, &vaults_, &redundancy_),
      files_(ctx_, &vaults_),
      scheduler_(ctx_, &backups_) {}

RecoveryProvider::~RecoveryProvider() { Stop(); }

Status RecoveryProvider::Start() {
  RETURN_IF_ERROR(vaults_.Start());
  redundancy_.RegisterRecovery();
  backups_.RegisterRecovery();
  restores_.RegisterRecovery();
  scheduler_.Start();
  return Status::Ok();
}

void RecoveryProvider::Stop() {
  jobs_.Stop();  // queued jobs stop waiting before the operation workers are joined
  scheduler_.Stop();
  restores_.Stop();
}

void RecoveryProvider::SchedulerTick(int64_t now_ms) { scheduler_.Tick(now_ms); }

bool RecoveryProvider::ChildrenInline(const ResourceId& parent, const std::string& child) const {
  // A group's points are computed from its members' (no records of their own).
  return KindOf(parent) == Kind::kReplGroup && EqualsIgnoreCase(child, "recoveryPoints");
}

Result<ApiResponse> RecoveryProvider::ListInlineChildren(const ApiRequest& req,
                                                         const ResourceId& parent,
                                                         const std::string& child) {
  if (!services_.replication || !ChildrenInline(parent, child))
    return ResourceProvider::ListInlineChildren(req, parent, child);
  return services_.replication->ListGroupPoints(req, parent);
}

RecoveryProvider::Kind RecoveryProvider::KindOf(const ResourceId& id) {
  const auto& tn = id.types_and_names();
  if (tn.size() == 1) return Kind::kVault;
  if (tn.size() == 2) {
    if (EqualsIgnoreCase(tn[1].first, "backupPolicies")) return Kind::kPolicy;
    if (EqualsIgnoreCase(tn[1].first, "protectedItems")) return Kind::kItem;
    if (EqualsIgnoreCase(tn[1].first, "backupJobs")) return Kind::kJob;
    if (EqualsIgnoreCase(tn[1].first, "replicationProtectedItems")) return Kind::kReplItem;
    if (EqualsIgnoreCase(tn[1].first, "replicationConsistencyGroups")) return Kind::kReplGroup;
    if (EqualsIgnoreCase(tn[1].first, "replicationRecoveryPlans")) return Kind::kReplPlan;
    if (EqualsIgnoreCase(tn[1].first, "replicationNetworkMappings")) return Kind::kReplNetMapping;
    if (EqualsIgnoreCase(tn[1].first, "replicationPolicies")) return Kind::kReplPolicy;
  }
  if (tn.size() == 3 && EqualsIgnoreCase(tn[2].first, "recoveryPoints")) {
    if (EqualsIgnoreCase(tn[1].first, "replicationConsistencyGroups")) return Kind::kReplGroupPoint;
    return EqualsIgnoreCase(tn[1].first, "replicationProtectedItems") ? Kind::kReplPoint
                                                                       : Kind::kPoint;
  }
  return Kind::kOther;
}

std::vector<std::string> RecoveryProvider::ChildTypes(const ResourceId& parent) const {
  switch (KindOf(parent)) {
    case Kind::kVault:
      if (services_.replication)
        return {"backupPolicies",
                "protectedItems",
                "backupJobs",
                "replicationProtectedItems",
                "replicationConsistencyGroups",
                "replicationRecoveryPlans",
                "replicationNetworkMappings",
                "replicationPolicies"};
      return {"backupPolicies", "protectedItems", "backupJobs"};
    case Kind::kItem:
    case Kind::kReplItem:
    case Kind::kReplGroup:
      return {"recoveryPoints"};
    default:
      return {};
  }
}

const api::Shape* RecoveryProvider::BodyShape(const ResourceId& id, const std::string& method,
                                              const std::string& action) const {
  using api::Shape;
  static const Shape kVault = Shape::Resource(Shape::Object(
      {{"encryption",
        Shape::Object({{"keySource", Shape::String()}, {"passphrase", Shape::String()}})},
       {"redundancy", Shape::String()},
       {"copyLocation", Shape::String()},
       {"alerts", Shape::Object({{"webhooks", Shape::ArrayOf(Shape::String())}})},
       {"copyStatus", Shape::Any()},
       {"provisioningState", Shape::Any()},
       {"vaultId", Shape::Any()},
       {"state", Shape::Any()},
       {"recoveryPointCount", Shape::Any()},
       {"protectedItemCount", Shape::Any()}}));
  // The policy parser (policy/backup_policy.h) checks every member's type itself.
  static const Shape kPolicy = Shape::Resource(Shape::Object({}));
  static const Shape kItem = Shape::Resource(
      Shape::Object({{"sourceResourceId", Shape::String()}, {"policyId", Shape::String()}}));
  static const Shape kUnlock = Shape::Object({{"passphrase", Shape::String()}});
  static const Shape kVerify = Shape::Object({{"recoveryPointId", Shape::String()}});
  static const Shape kBackup = Shape::Object({{"retainUntil", Shape::String()}});
  static const Shape kRestore = Shape::Object({{"restoreType", Shape::String()},
                                               {"targetResourceGroup", Shape::String()},
                                               {"vmName", Shape::String()},
                                               {"vmSize", Shape::String()},
                                               {"disks", Shape::ArrayOf(Shape::String())},
                                               {"diskNamePrefix", Shape::String()},
                                               {"instant", Shape::Boolean()},
                                               {"networkProfile", Shape::Any()}});
  static const Shape kFiles = Shape::Object({{"disk", Shape::String()},
                                             {"path", Shape::String()},
                                             {"paths", Shape::ArrayOf(Shape::String())}});
  static const Shape kEmpty = Shape::Object({});
  Kind kind = KindOf(id);
  if (method == "PUT") {
    switch (kind) {
      case Kind::kVault:
        return &kVault;
      case Kind::kPolicy:
        return &kPolicy;
      case Kind::kItem:
        return &kItem;
      case Kind::kReplItem:
        return &site::ReplicationService::ItemShape();
      case Kind::kReplGroup:
        return &site::ReplicationService::GroupShape();
      case Kind::kReplPlan:
        return &site::ReplicationService::PlanShape();
      case Kind::kReplNetMapping:
        return &site::ReplicationService::NetworkMappingShape();
      case Kind::kReplPolicy:
        return &site::ReplicationService::PolicyShape();
      default:
        return &kEmpty;
    }
  }
  if (method == "PATCH") return ResourceProvider::BodyShape(id, method, action);
  if (method != "POST") return nullptr;
  if (kind == Kind::kReplItem) return &site::ReplicationService::ItemActionShape(action);
  if (kind == Kind::kReplGroup) return &site::ReplicationService::GroupFailoverShape();
  static const Shape kPlanAction = Shape::Object({{"actionName", Shape::String()}});
  if (kind == Kind::kReplPlan) return &kPlanAction;
  if (EqualsIgnoreCase(action, "unlock")) return &kUnlock;
  if (EqualsIgnoreCase(action, "verify")) return &kVerify;
  if (EqualsIgnoreCase(action, "backup")) return &kBackup;
  if (EqualsIgnoreCase(action, "restore")) return &kRestore;
  if (EqualsIgnoreCase(action, "listFiles") || EqualsIgnoreCase(action, "extractFiles"))
    return &kFiles;
  return &kEmpty;
}

// ---------------------------------------------------------------------------------------------
// Vaults

Result<ApiResponse> RecoveryProvider::PutVault(const ApiRequest& req, const ResourceId& id) {
  const Json& body = req.body;
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      body, {"location", "tags", "properties", "id", "name", "type", "etag", "systemData"}, ""));
  ASSIGN_OR_RETURN(std::string location, api::ValidateLocation(body, ctx_.region));
  RETURN_IF_ERROR(api::ValidateTags(body));
  Json props = body.value("properties", Json::object());
  if (!props.is_object()) return InvalidArgument("'properties' must be an object.", "properties");
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      props,
      {"encryption", "redundancy", "copyLocation", "copyStatus", "alerts", "provisioningState",
       "vaultId", "state", "recoveryPointCount", "protectedItemCount"},
      "properties"));
  Json enc = props.value("encryption", Json::object());
  if (!enc.is_object())
    return InvalidArgument("'encryption' must be an object.", "properties.encryption");
  RETURN_IF_ERROR(
      api::RejectUnknownKeys(enc, {"keySource", "passphrase"}, "properties.encryption"));
  ASSIGN_OR_RETURN(std::string ks, api::GetString(enc, "keySource", "Platform"));
  if (EqualsIgnoreCase(ks, "Platform"))
    ks = "Platform";
  else if (EqualsIgnoreCase(ks, "Customer"))
    ks = "Customer";
  else
    return InvalidArgument("encryption.keySource must be Platform or Customer.",
                           "properties.encryption.keySource");
  std::string passphrase;
  if (enc.contains("passphrase")) {
    ASSIGN_OR_RETURN(passphrase, api::GetString(enc, "passphrase"));
  }
  auto prior = ctx_.store->Get(id.Key());
  ASSIGN_OR_RETURN(RedundancySetting redundancy,
                   ParseRedundancy(props, prior.ok() ? &*prior : nullptr, ctx_.data_dir));
  Json alerts = props.value("alerts", Json::object());
  RETURN_IF_ERROR(api::RejectUnknownKeys(alerts, {"webhooks"}, "properties.alerts"));
  Json hooks = alerts.value("webhooks", Json::array());
  if (!hooks.is_array())
    return InvalidArgument("alerts.webhooks must be an array of URLs.",
                           "properties.alerts.webhooks");
  for (auto& h : hooks)
    if (!h.is_string() || h.get<std::string>().rfind("http://", 0) != 0)
      return InvalidArgument("Each webhook must be an http:// URL.", "properties.alerts.webhooks");

  auto existing = ctx_.store->Get(id.Key());
  if (existing.ok()) {
    std::string old_ks = existing->body["properties"]["encryption"].value("keySource", "Platform");
    if (old_ks != ks)
      return Conflict("The key source of an existing vault cannot be changed.",
                      "properties.encryption.keySource", "PropertyChangeNotAllowed");
    store::Record rec = *existing;
    rec.body["tags"] = body.value("tags", rec.body["tags"]);
    rec.body["properties"]["alerts"] = {{"webhooks", hooks}};
    bool start_copy = ApplyRedundancy(redundancy, rec.body["properties"]);
    if (!start_copy && rec.body == existing->body) {
      ApiResponse same = api::ResourceResponse(*existing, 200);  // nothing changes: no write
      DecorateListItem(req, *existing, same.body);
      return same;
    }
    api::TouchSystemData(rec.body, req.caller, ctx_.clock->NowMs());
    ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, api::ConditionFromHeaders(req)));
    redundancy_.Changed(rec, req.caller, start_copy);
    ApiResponse resp = api::ResourceResponse(rec, 200);
    DecorateListItem(req, rec, resp.body);
    return resp;
  }
  if (ks == "Customer" && passphrase.size() < 12)
    return InvalidArgument(
        "A customer key (encryption.passphrase) of at least 12 characters is "
        "required with keySource Customer.",
        "properties.encryption.passphrase");
  if (ks == "Platform" && !passphrase.empty())
    return InvalidArgument("encryption.passphrase is only used with keySource Customer.",
                           "properties.encryption.passphrase");
  auto lock = ctx_.ops->TryLock({id.Key()});
  if (!lock.ok()) return lock.status();
  std::string dir = JoinPath(ctx_.data_dir, "vaults/" + NewUuid());
  ASSIGN_OR_RETURN(auto created, vaults_.Create(dir, ks == "Customer" ? passphrase : ""));
  store::Record rec;
  rec.key = id.Key();
  rec.type = api::TypeKey(id);
  rec.body = api::NewResourceBody(id, location, body.value("tags", Json::object()), req.caller,
                                  ctx_.clock->NowMs());
  rec.body["properties"] = {{"provisioningState", "Succeeded"},
                            {"vaultId", created->id()},
                            {"encryption", {{"keySource", ks}}},
                            {"alerts", {{"webhooks", hooks}}}};
  ApplyRedundancy(redundancy, rec.body["properties"]);
  rec.internal = {{"dir", dir}};
  auto put = ctx_.store->Put(rec, store::WriteCondition{std::nullopt, true, false});
  if (!put.ok()) {
    created.reset();
    RemoveTree(dir);
    return put.status();
  }
  vaults_.Adopt(id, std::move(created), ks == "Customer" ? passphrase : "");
  redundancy_.CopySoon(id, "vaultCreated");  // writes the copy's vault.json at once
  ApiResponse resp = api::ResourceResponse(*put, 201);
  DecorateListItem(req, *put, resp.body);
  return resp;
}

// ---------------------------------------------------------------------------------------------
// Policies and protected items

Result<ApiResponse> RecoveryProvider::PutPolicy(const ApiRequest& req, const ResourceId& id) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      req.body, {"properties", "id", "name", "type", "etag", "systemData", "location", "tags"},
      ""));
  if (!req.body.contains("properties") || !req.body["properties"].is_object())
    return InvalidArgument("'properties' (the policy) is required.", "properties",
                           "MissingParameter");
  Json props = req.body["properties"];
  props.erase("protectedItemsCount");
  props.erase("provisioningState");
  auto parsed = policy::ParseBackupPolicy(props);
  if (!parsed.ok()) {
    const Status& s = parsed.status();
    return Status(s.code(), s.arm_code(), s.message(),
                  s.target().empty() ? "properties" : "properties." + s.target());
  }
  auto existing = ctx_.store->Get(id.Key());
  Json normalized = policy::BackupPolicyToJson(*parsed);
  normalized["provisioningState"] = "Succeeded";
  if (existing.ok() && existing->body["properties"] == normalized)
    return api::ResourceResponse(*existing, 200);  // the same policy: same etag, no write
  store::Record rec;
  if (existing.ok()) {
    rec = *existing;
    api::TouchSystemData(rec.body, req.caller, ctx_.clock->NowMs());
  } else {
    rec.key = id.Key();
    rec.type = api::TypeKey(id);
    rec.body =
        api::NewResourceBody(id, ctx_.region, Json::object(), req.caller, ctx_.clock->NowMs());
    rec.body.erase("location");
    rec.body.erase("tags");
  }
  rec.body["properties"] = policy::BackupPolicyToJson(*parsed);
  rec.body["properties"]["provisioningState"] = "Succeeded";
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, api::ConditionFromHeaders(req)));
  return api::ResourceResponse(rec, existing.ok() ? 200 : 201);
}

Result<ApiResponse> RecoveryProvider::PutItem(const ApiRequest& req, const ResourceId& id) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      req.body, {"properties", "id", "name", "type", "etag", "systemData", "location", "tags"},
      ""));
  Json props = req.body.value("properties", Json::object());
  RETURN_IF_ERROR(
      api::RejectUnknownKeys(props,
                             {"sourceResourceId", "policyId", "protectionState", "lastBackupTime",
                              "lastBackupStatus", "lastRecoveryPointId", "nextScheduledBackupTime",
                              "recoveryPointCount", "friendlyName", "provisioningState"},
                             "properties"));
  ASSIGN_OR_RETURN(std::string vm_s, api::GetString(props, "sourceResourceId"));
  ASSIGN_OR_RETURN(std::string pol_s, api::GetString(props, "policyId"));
  auto vm_id = ResourceId::Parse(vm_s);
  if (!vm_id.ok() || api::TypeKey(*vm_id) != "stratus.compute/virtualmachines" ||
      vm_id->subscription() != id.subscription())
    return InvalidArgument("sourceResourceId must be the id of a VM of this subscription.",
                           "properties.sourceResourceId");
  auto vm = ctx_.store->Get(vm_id->Key());
  if (!vm.ok()) return NotFound("VM '" + vm_s + "' was not found.", "properties.sourceResourceId");
  auto pol_id = ResourceId::Parse(pol_s);
  ResourceId vault_id = id.Parent();
  if (!pol_id.ok() || api::TypeKey(*pol_id) != kPolicyType ||
      pol_id->Parent().Key() != vault_id.Key())
    return InvalidArgument("policyId must be a backup policy of vault '" + vault_id.name() + "'.",
                           "properties.policyId");
  auto pol = ctx_.store->Get(pol_id->Key());
  if (!pol.ok())
    return NotFound("Backup policy '" + pol_s + "' was not found.", "properties.policyId",
                    "PolicyNotFound");
  auto existing = ctx_.store->Get(id.Key());
  if (existing.ok() && !EqualsIgnoreCase(existing->body["properties"].value("sourceResourceId", ""),
                                         vm->body.value("id", "")))
    return Conflict("A protected item protects one VM; its source cannot be changed.",
                    "properties.sourceResourceId", "PropertyChangeNotAllowed");
  // One vault (one item) per VM.
  ASSIGN_OR_RETURN(
      auto items,
      ListAll(ctx_.store, "/subscriptions/" + ToLower(id.subscription()) + "/", kItemType));
  for (auto& it : items)
    if (it.key != id.Key() && EqualsIgnoreCase(it.body["properties"].value("sourceResourceId", ""),
                                               vm->body.value("id", "")))
      return Conflict(
          "VM '" + vm_id->name() + "' is already protected by '" + it.body.value("id", "") + "'.",
          "properties.sourceResourceId", "AlreadyProtected");
  if (existing.ok() && existing->body["properties"].value("protectionState", "") == "Protected" &&
      EqualsIgnoreCase(existing->body["properties"].value("policyId", ""),
                       pol->body.value("id", pol_s))) {
    ApiResponse same = api::ResourceResponse(*existing, 200);  // nothing changes
    DecorateListItem(req, *existing, same.body);
    return same;
  }
  int64_t now = ctx_.clock->NowMs();
  store::Record rec = api::RecordToWrite(existing, id, ctx_.region, req.caller, now);
  if (!existing.ok()) {
    rec.body["properties"] = {{"lastBackupStatus", "None"}};
    // The scheduler's cursor: the first scheduled backup is the next one after enabling.
    rec.internal = {{"lastScheduledMs", now}};
  }
  Json& p = rec.body["properties"];
  p["sourceResourceId"] = vm->body.value("id", vm_s);
  p["friendlyName"] = vm_id->name();
  p["policyId"] = pol->body.value("id", pol_s);
  p["protectionState"] = "Protected";
  p["provisioningState"] = "Succeeded";
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, api::ConditionFromHeaders(req)));
  ApiResponse resp = api::ResourceResponse(rec, existing.ok() ? 200 : 201);
  DecorateListItem(req, rec, resp.body);
  return resp;
}

// ---------------------------------------------------------------------------------------------
// Generic verbs

Result<ApiResponse> RecoveryProvider::Put(const ApiRequest& req, const ResourceId& id) {
  switch (KindOf(id)) {
    case Kind::kVault:
      return PutVault(req, id);
    case Kind::kPolicy:
      return PutPolicy(req, id);
    case Kind::kItem:
      return PutItem(req, id);
    case Kind::kReplItem:
      return services_.replication->PutItem(req, id);
    case Kind::kReplGroup:
      return services_.replication->PutGroup(req, id);
    case Kind::kReplPlan:
      return services_.replication->PutPlan(req, id);
    case Kind::kReplNetMapping:
      return services_.replication->PutNetworkMapping(req, id);
    case Kind::kReplPolicy:
      return services_.replication->PutReplicationPolicy(req, id);
    case Kind::kPoint:
    case Kind::kReplPoint:
    case Kind::kReplGroupPoint:
    case Kind::kJob:
      return Status(StatusCode::kMethodNotAllowed, "MethodNotAllowed",
                    "Recovery points and jobs are created by backups, not by PUT.");
    default:
      return NotFound("No API at '" + id.ToString() + "'.", id.ToString(), "NotFound");
  }
}

Result<ApiResponse> RecoveryProvider::Get(const ApiRequest& req, const ResourceId& id) {
  if (KindOf(id) == Kind::kReplGroupPoint && services_.replication)
    return services_.replication->GetGroupPoint(req, id);
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  ApiResponse resp = api::ResourceResponse(rec);
  DecorateListItem(req, rec, resp.body);
  return resp;
}

Result<ApiResponse> RecoveryProvider::Patch(const ApiRequest& req, const ResourceId& id) {
  if (KindOf(id) != Kind::kVault)
    return Status(StatusCode::kMethodNotAllowed, "MethodNotAllowed",
                  "PATCH is supported on vaults (tags) only; use PUT.");
  return ResourceProvider::Patch(req, id);
}

void RecoveryProvider::DecorateListItem(const ApiRequest&, const store::Record& rec, Json& item) {
  if (rec.type == kVaultType) {
    bool locked = vaults_.IsLocked(rec);
    item["properties"]["state"] = locked ? "Locked" : "Unlocked";
    auto items = ctx_.store->List(rec.key + "/protecteditems/", kItemType, "", 1000);
    if (items.ok()) item["properties"]["protectedItemCount"] = items->records.size();
  } else if (rec.type == site::kReplItemType && services_.replication) {
    services_.replication->Decorate(rec, item);
  } else if (rec.type == site::kReplGroupType && services_.replication) {
    services_.replication->DecorateGroup(rec, item);
  } else if (rec.type == kItemType) {
    auto pts = ctx_.store->List(rec.key + "/recoverypoints/", kPointType, "", 10000);
    if (pts.ok()) item["properties"]["recoveryPointCount"] = pts->records.size();
    if (rec.body["properties"].value("protectionState", "") == "Protected") {
      auto pol = PolicyOf(ctx_.store, rec);
      if (pol.ok()) {
        int64_t last = rec.internal.value("lastScheduledMs", ctx_.clock->NowMs());
        auto next = policy::NextRun(*pol, last);
        if (next)
          item["properties"]["nextScheduledBackupTime"] =
              FormatIso8601(*next + policy::Stagger(rec.key, *pol));
      }
    }
  } else if (rec.type == kPolicyType) {
    auto items = ListAll(ctx_.store,
                         rec.key.substr(0, rec.key.find("/backuppolicies/")) + "/protecteditems/",
                         kItemType);
    int n = 0;
    if (items.ok())
      for (auto& it : *items)
        if (EqualsIgnoreCase(it.body["properties"].value("policyId", ""), rec.body.value("id", "")))
          ++n;
    item["properties"]["protectedItemsCount"] = n;
  }
}

Status RecoveryProvider::DeletePoints(const ResourceId& item, bool from_vault) {
  ASSIGN_OR_RETURN(auto pts, ListAll(ctx_.store, item.Key() + "/recoverypoints/", kPointType));
  vault::Vault* v = nullptr;
  if (from_vault && !pts.empty()) {
    ASSIGN_OR_RETURN(v, vaults_.Open(item.Parent()));
  }
  for (auto& p : pts) {
    if (v) {
      Status st = v->DeletePoint(p.body.value("name", ""));
      if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
    }
    RETURN_IF_ERROR(ctx_.store->Delete(p.key));
  }
  return Status::Ok();
}

Result<ApiResponse> RecoveryProvider::Delete(const ApiRequest& req, const ResourceId& id) {
  auto rec = ctx_.store->Get(id.Key());
  if (!rec.ok()) return ApiResponse::NoContent(204);
  switch (KindOf(id)) {
    case Kind::kVault: {
      auto items = ctx_.store->List(id.Key() + "/protecteditems/", kItemType, "", 1);
      auto replicated =
          ctx_.store->List(id.Key() + "/replicationprotecteditems/", site::kReplItemType, "", 1);
      if ((items.ok() && !items->records.empty()) ||
          (replicated.ok() && !replicated->records.empty()))
        return Conflict("Vault '" + id.name() +
                            "' still holds protected items; delete them "
                            "(with their backup data) first.",
                        id.ToString(), "VaultNotEmpty");
      ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
      vaults_.Forget(id);
      ASSIGN_OR_RETURN(auto children, ListAll(ctx_.store, id.Key() + "/", ""));
      for (auto& c : children) RETURN_IF_ERROR(ctx_.store->Delete(c.key));
      RemoveTree(rec->internal.value("dir", ""));
      RETURN_IF_ERROR(ctx_.store->Delete(id.Key()));
      return ApiResponse::NoContent(200);
    }
    case Kind::kPolicy: {
      ASSIGN_OR_RETURN(auto items,
                       ListAll(ctx_.store, id.Parent().Key() + "/protecteditems/", kItemType));
      for (auto& it : items)
        if (EqualsIgnoreCase(it.body["properties"].value("policyId", ""),
                             rec->body.value("id", "")) &&
            it.body["properties"].value("protectionState", "") == "Protected")
          return Conflict(
              "Policy '" + id.name() + "' is used by '" + it.body.value("id", "") + "'.",
              id.ToString(), "PolicyInUse");
      RETURN_IF_ERROR(ctx_.store->Delete(id.Key()));
      return ApiResponse::NoContent(200);
    }
    case Kind::kItem: {
      bool delete_data = EqualsIgnoreCase(req.Query("deletebackupdata"), "true");
      ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
      if (!delete_data) {
        store::Record r = *rec;
        r.body["properties"]["protectionState"] = "ProtectionStopped";
        api::TouchSystemData(r.body, req.caller, ctx_.clock->NowMs());
        ASSIGN_OR_RETURN(r, ctx_.store->Put(r));
        return api::ResourceResponse(r, 200);
      }
      RETURN_IF_ERROR(DeletePoints(id, /*from_vault=*/true));
      RETURN_IF_ERROR(ctx_.store->Delete(id.Key()));
      redundancy_.CopySoon(id.Parent(), "pointsDeleted");
      return ApiResponse::NoContent(200);
    }
    case Kind::kPoint: {
      ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Parent().Key()}));
      ASSIGN_OR_RETURN(vault::Vault * v, vaults_.Open(id.Parent().Parent()));
      Status st = v->DeletePoint(rec->body.value("name", ""));
      if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
      RETURN_IF_ERROR(ctx_.store->Delete(id.Key()));
      redundancy_.CopySoon(id.Parent().Parent(), "pointsDeleted");
      return ApiResponse::NoContent(200);
    }
    case Kind::kReplItem:
      return services_.replication->DeleteItem(req, id);
    case Kind::kReplGroup:
      return services_.replication->DeleteGroup(req, id);
    case Kind::kReplPlan:
      return services_.replication->DeletePlan(req, id);
    case Kind::kReplNetMapping:
      return services_.replication->DeleteNetworkMapping(req, id);
    case Kind::kReplPolicy:
      return services_.replication->DeleteReplicationPolicy(req, id);
    case Kind::kReplPoint:
    case Kind::kReplGroupPoint:
      return Status(StatusCode::kMethodNotAllowed, "MethodNotAllowed",
                    "Replication points are kept and thinned by the item's policy.");
    default:
      return Status(StatusCode::kMethodNotAllowed, "MethodNotAllowed",
                    "Jobs are kept as history and cannot be deleted.");
  }
}

int RecoveryProvider::DeleteOrder(const std::string& type) const {
  // Before the VMs (10) so that nothing is backed up while they go; children before vaults.
  if (type == kPointType) return 1;
  if (type == kItemType || type == kJobType) return 2;
  if (type == kPolicyType) return 3;
  return 5;
}

Status RecoveryProvider::DeleteForGroup(const ResourceId& id, OperationContext& octx) {
  auto rec = ctx_.store->Get(id.Key());
  if (!rec.ok()) return Status::Ok();
  if (KindOf(id) == Kind::kVault) {
    // Replicated items stop at their source and their replicas go.
    if (services_.replication) {
      ASSIGN_OR_RETURN(auto repl, ListAll(ctx_.store, id.Key() + "/replicationprotecteditems/",
                                          site::kReplItemType));
      for (auto& r : repl) {
        auto rid = ResourceId::Parse(r.body.value("id", ""));
        if (rid.ok()) RETURN_IF_ERROR(services_.replication->DeleteNow(*rid, octx));
      }
    }
    vaults_.Forget(id);
    RemoveTree(rec->internal.value("dir", ""));
  }
  return ctx_.store->Delete(id.Key());
}

Result<ApiResponse> RecoveryProvider::Post(const ApiRequest& req, const ResourceId& id,
                                           const std::string& action) {
  switch (KindOf(id)) {
    case Kind::kVault:
      return actions_.Post(req, id, action);
    case Kind::kItem:
      if (!EqualsIgnoreCase(action, "backup"))
        return NotFound("Protected items have no action '" + action + "'.", action, "NotFound");
      return backups_.OnDemand(req, id);
    case Kind::kPoint:
      if (EqualsIgnoreCase(action, "restore")) return restores_.Start(req, id);
      if (EqualsIgnoreCase(action, "listFiles") || EqualsIgnoreCase(action, "extractFiles"))
        return files_.Post(req, id, action);
      return NotFound("Recovery points have no action '" + action + "'.", action, "NotFound");
    case Kind::kReplItem:
      return services_.replication->PostItem(req, id, action);
    case Kind::kReplGroup:
      return services_.replication->PostGroup(req, id, action);
    case Kind::kReplPlan:
      return services_.replication->PostPlan(req, id, action);
    default:
      return NotFound("No action '" + action + "' here.", action, "NotFound");
  }
}

}  // namespace stratus::recovery::service
