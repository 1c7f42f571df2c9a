#include "recovery/service/recovery_provider.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <sstream>

#include "api/resource_util.h"
#include "compute/vm_sizes.h"
#include "core/base64.h"
#include "core/fs.h"
#include "core/subprocess.h"
#include "recovery/backup/restore_disk.h"
#include "recovery/service/record_update.h"
#include "recovery/vault/crypto.h"
#include "core/uuid.h"
#include "recovery/policy/retention.h"
#include "recovery/policy/schedule.h"
#include "recovery/vault/manifest.h"

namespace stratus::recovery::service {

using api::ApiRequest;
using api::ApiResponse;
using api::OperationContext;

namespace {

constexpr char kVaultType[] = "stratus.recoveryservices/vaults";
constexpr char kPolicyType[] = "stratus.recoveryservices/vaults/backuppolicies";
constexpr char kItemType[] = "stratus.recoveryservices/vaults/protecteditems";
constexpr char kPointType[] = "stratus.recoveryservices/vaults/protecteditems/recoverypoints";
constexpr char kJobType[] = "stratus.recoveryservices/vaults/backupjobs";
constexpr char kBackupOp[] = "Stratus.RecoveryServices/vaults/backupJobs/backup";
constexpr char kRestoreOp[] = "Stratus.RecoveryServices/vaults/backupJobs/restore";

// "2026-11-30T12:00:00Z" / "...:00.123Z" -> ms; InvalidArgument otherwise.
Result<int64_t> ParseTime(const std::string& s, const std::string& field) {
  std::tm tm{};
  int ms = 0;
  char z = 0;
  int n = std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
  if (n != 6 || s.size() < 20)
    return InvalidArgument("'" + field + "' must be an ISO 8601 UTC time like "
                           "2026-12-31T00:00:00Z, not '" + s + "'.", field);
  size_t pos = 19;
  if (s[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (digits < 3) ms = ms * 10 + (s[pos] - '0');
      ++digits, ++pos;
    }
    while (digits < 3) ms *= 10, ++digits;
  }
  if (pos < s.size()) z = s[pos];
  if (z != 'Z' || pos + 1 != s.size())
    return InvalidArgument("'" + field + "' must end with Z (UTC).", field);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

// Every record of `type` below `prefix` (all pages).
Result<std::vector<store::Record>> ListAll(store::Store* st, const std::string& prefix,
                                           const std::string& type) {
  std::vector<store::Record> out;
  std::string after;
  for (;;) {
    ASSIGN_OR_RETURN(store::Page page, st->List(prefix, type, after, 500));
    for (auto& r : page.records) out.push_back(std::move(r));
    if (page.next_key.empty()) break;
    after = page.next_key;
  }
  return out;
}

std::string DiskKeyName(int lun) { return lun < 0 ? "osdisk" : "lun" + std::to_string(lun); }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RecoveryProvider::RecoveryProvider(api::RegionContext ctx, compute::Hypervisor* hv,
                                   storage::DiskService* disks, ComputeHooks hooks)
    : ResourceProvider(std::move(ctx)), hv_(hv), disks_(disks), hooks_(std::move(hooks)),
      instant_(std::make_unique<InstantRestore>(ctx_, hv, disks)) {}

RecoveryProvider::~RecoveryProvider() { Stop(); }

void RecoveryProvider::Stop() {
  redundancy_->Stop();
  {
    std::lock_guard<std::mutex> lock(sched_mu_);
    stopping_ = true;
  }
  sched_cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  if (instant_) instant_->Stop();
}

RecoveryProvider::Kind RecoveryProvider::KindOf(const ResourceId& id) {
  const auto& tn = id.types_and_names();
  if (tn.size() == 1) return Kind::kVault;
  if (tn.size() == 2) {
    if (EqualsIgnoreCase(tn[1].first, "backupPolicies")) return Kind::kPolicy;
    if (EqualsIgnoreCase(tn[1].first, "protectedItems")) return Kind::kItem;
    if (EqualsIgnoreCase(tn[1].first, "backupJobs")) return Kind::kJob;
  }
  if (tn.size() == 3 && EqualsIgnoreCase(tn[2].first, "recoveryPoints")) return Kind::kPoint;
  return Kind::kOther;
}

std::vector<std::string> RecoveryProvider::ChildTypes(const ResourceId& parent) const {
  switch (KindOf(parent)) {
    case Kind::kVault:
      return {"backupPolicies", "protectedItems", "backupJobs"};
    case Kind::kItem:
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
       {"copyStatus", Shape::Any()}, {"provisioningState", Shape::Any()},
       {"vaultId", Shape::Any()}, {"state", Shape::Any()},
       {"recoveryPointCount", Shape::Any()}, {"protectedItemCount", Shape::Any()}}));
  // The policy parser (policy/backup_policy.h) checks every member's type itself.
  static const Shape kPolicy = Shape::Resource(Shape::Object({}));
  static const Shape kItem = Shape::Resource(Shape::Object(
      {{"sourceResourceId", Shape::String()}, {"policyId", Shape::String()}}));
  static const Shape kUnlock = Shape::Object({{"passphrase", Shape::String()}});
  static const Shape kVerify = Shape::Object({{"recoveryPointId", Shape::String()}});
  static const Shape kBackup = Shape::Object({{"retainUntil", Shape::String()}});
  static const Shape kRestore = Shape::Object({{"restoreType", Shape::String()},
                                               {"targetResourceGroup", Shape::String()},
                                               {"vmName", Shape::String()},
                                               {"vmSize", Shape::String()},
                                               {"disks", Shape::ArrayOf(Shape::String())},
                                               {"diskNamePrefix", Shape::String()},
                                               {"instant", Shape::Boolean()}});
  static const Shape kFiles = Shape::Object(
      {{"disk", Shape::String()}, {"path", Shape::String()}, {"paths", Shape::ArrayOf(Shape::String())}});
  static const Shape kEmpty = Shape::Object({});
  Kind kind = KindOf(id);
  if (method == "PUT") {
    switch (kind) {
      case Kind::kVault: return &kVault;
      case Kind::kPolicy: return &kPolicy;
      case Kind::kItem: return &kItem;
      default: return &kEmpty;
    }
  }
  if (method == "PATCH") return ResourceProvider::BodyShape(id, method, action);
  if (method != "POST") return nullptr;
  if (EqualsIgnoreCase(action, "unlock")) return &kUnlock;
  if (EqualsIgnoreCase(action, "verify")) return &kVerify;
  if (EqualsIgnoreCase(action, "backup")) return &kBackup;
  if (EqualsIgnoreCase(action, "restore")) return &kRestore;
  if (EqualsIgnoreCase(action, "listFiles") || EqualsIgnoreCase(action, "extractFiles"))
    return &kFiles;
  return &kEmpty;
}

std::string RecoveryProvider::PlatformKeyPath() const {
  return JoinPath(ctx_.data_dir, "platform.key");
}

// ---------------------------------------------------------------------------------------------
// Vaults

Result<vault::Vault*> RecoveryProvider::OpenVault(const ResourceId& vault_id) {
  std::lock_guard<std::mutex> lock(vaults_mu_);
  auto it = vaults_.find(vault_id.Key());
  if (it != vaults_.end()) return it->second.get();
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(vault_id.Key()));
  std::string dir = rec.internal.value("dir", "");
  std::string ks = rec.body["properties"]["encryption"].value("keySource", "Platform");
  std::unique_ptr<vault::Vault> v;
  if (ks == "Customer") {
    auto p = passphrases_.find(vault_id.Key());
    if (p == passphrases_.end())
      return Conflict("Vault '" + vault_id.name() + "' is locked: its customer key is not kept by "
                      "the platform. Unlock it with POST .../unlock {\"passphrase\"}.",
                      vault_id.ToString(), "VaultLocked");
    ASSIGN_OR_RETURN(v, vault::Vault::OpenLocal(dir, vault::KeySource::CustomerPassphrase(p->second)));
  } else {
    ASSIGN_OR_RETURN(v, vault::Vault::OpenLocal(dir, vault::KeySource::PlatformKeyFile(PlatformKeyPath())));
  }
  vault::Vault* raw = v.get();
  redundancy_->AttachFallback(rec, *raw);
  vaults_[vault_id.Key()] = std::move(v);
  return raw;
}

Result<ApiResponse> RecoveryProvider::PutVault(const ApiRequest& req, const ResourceId& id) {
  const Json& body = req.body;
  RETURN_IF_ERROR(api::RejectUnknownKeys(body, {"location", "tags", "properties", "id", "name",
                                                "type", "etag", "systemData"},
                                         ""));
  ASSIGN_OR_RETURN(std::string location, api::ValidateLocation(body, ctx_.region));
  RETURN_IF_ERROR(api::ValidateTags(body));
  Json props = body.value("properties", Json::object());
  if (!props.is_object()) return InvalidArgument("'properties' must be an object.", "properties");
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      props, {"encryption", "redundancy", "copyLocation", "copyStatus", "alerts",
              "provisioningState", "vaultId", "state", "recoveryPointCount", "protectedItemCount"},
      "properties"));
  Json enc = props.value("encryption", Json::object());
  if (!enc.is_object()) return InvalidArgument("'encryption' must be an object.", "properties.encryption");
  RETURN_IF_ERROR(api::RejectUnknownKeys(enc, {"keySource", "passphrase"}, "properties.encryption"));
  ASSIGN_OR_RETURN(std::string ks, api::GetString(enc, "keySource", "Platform"));
  if (EqualsIgnoreCase(ks, "Platform")) ks = "Platform";
  else if (EqualsIgnoreCase(ks, "Customer")) ks = "Customer";
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
  if (!hooks.is_array()) return InvalidArgument("alerts.webhooks must be an array of URLs.", "properties.alerts.webhooks");
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
    redundancy_->Changed(rec, req.caller, start_copy);
    ApiResponse resp = api::ResourceResponse(rec, 200);
    DecorateListItem(req, rec, resp.body);
    return resp;
  }
  if (ks == "Customer" && passphrase.size() < 12)
    return InvalidArgument("A customer key (encryption.passphrase) of at least 12 characters is "
                           "required with keySource Customer.",
                           "properties.encryption.passphrase");
  if (ks == "Platform" && !passphrase.empty())
    return InvalidArgument("encryption.passphrase is only used with keySource Customer.",
                           "properties.encryption.passphrase");
  auto lock = ctx_.ops->TryLock({id.Key()});
  if (!lock.ok()) return lock.status();
  std::string uid = NewUuid();
  std::string dir = JoinPath(ctx_.data_dir, "vaults/" + uid);
  RETURN_IF_ERROR(MakeDirs(JoinPath(ctx_.data_dir, "vaults"), 0700));
  auto key = ks == "Customer" ? vault::KeySource::CustomerPassphrase(passphrase)
                              : vault::KeySource::PlatformKeyFile(PlatformKeyPath());
  auto created = vault::Vault::CreateLocal(dir, key);
  if (!created.ok()) {
    RemoveTree(dir);
    return created.status();
  }
  store::Record rec;
  rec.key = id.Key();
  rec.type = api::TypeKey(id);
  rec.body = api::NewResourceBody(id, location, body.value("tags", Json::object()), req.caller,
                                  ctx_.clock->NowMs());
  rec.body["properties"] = {{"provisioningState", "Succeeded"},
                            {"vaultId", (*created)->id()},
                            {"encryption", {{"keySource", ks}}},
                            {"alerts", {{"webhooks", hooks}}}};
  ApplyRedundancy(redundancy, rec.body["properties"]);
  rec.internal = {{"dir", dir}};
  auto put = ctx_.store->Put(rec, store::WriteCondition{std::nullopt, true, false});
  if (!put.ok()) {
    created->reset();
    RemoveTree(dir);
    return put.status();
  }
  {
    std::lock_guard<std::mutex> l(vaults_mu_);
    vaults_[id.Key()] = std::move(created).value();
    if (ks == "Customer") passphrases_[id.Key()] = passphrase;
  }
  redundancy_->CopySoon(id, "vaultCreated");  // writes the copy's vault.json at once
  ApiResponse resp = api::ResourceResponse(*put, 201);
  DecorateListItem(req, *put, resp.body);
  return resp;
}

std::unique_ptr<VaultRedundancy> RecoveryProvider::MakeRedundancy() {
  VaultRedundancy::Hooks h;
  h.open_vault = [this](const ResourceId& v) { return OpenVault(v); };
  h.new_job = [this](const ResourceId& v, const std::string& op, const Json& props,
                     const std::string& caller) { return NewJob(v, op, props, caller); };
  h.update_job = [this](const ResourceId& job, const std::function<void(Json&)>& fn) {
    UpdateJob(job, fn);
  };
  h.fail_job = [this](const ResourceId& job, const Status& st) { FailJob(job, st); };
  return std::make_unique<VaultRedundancy>(ctx_, std::move(h));
}

// ---------------------------------------------------------------------------------------------
// Policies and protected items

Result<ApiResponse> RecoveryProvider::PutPolicy(const ApiRequest& req, const ResourceId& id) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(req.body, {"properties", "id", "name", "type", "etag",
                                                    "systemData", "location", "tags"},
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
    rec.body = api::NewResourceBody(id, ctx_.region, Json::object(), req.caller, ctx_.clock->NowMs());
    rec.body.erase("location");
    rec.body.erase("tags");
  }
  rec.body["properties"] = policy::BackupPolicyToJson(*parsed);
  rec.body["properties"]["provisioningState"] = "Succeeded";
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, api::ConditionFromHeaders(req)));
  return api::ResourceResponse(rec, existing.ok() ? 200 : 201);
}

Result<policy::BackupPolicy> RecoveryProvider::PolicyOf(const store::Record& item) {
  std::string pid = item.body["properties"].value("policyId", "");
  ASSIGN_OR_RETURN(ResourceId p, ResourceId::Parse(pid));
  auto rec = ctx_.store->Get(p.Key());
  if (!rec.ok()) return NotFound("Backup policy '" + pid + "' was not found.", pid, "PolicyNotFound");
  Json props = rec->body["properties"];
  props.erase("provisioningState");
  return policy::ParseBackupPolicy(props);
}

Result<ApiResponse> RecoveryProvider::PutItem(const ApiRequest& req, const ResourceId& id) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(req.body, {"properties", "id", "name", "type", "etag",
                                                    "systemData", "location", "tags"},
                                         ""));
  Json props = req.body.value("properties", Json::object());
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      props, {"sourceResourceId", "policyId", "protectionState", "lastBackupTime",
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
  if (!vm.ok())
    return NotFound("VM '" + vm_s + "' was not found.", "properties.sourceResourceId");
  auto pol_id = ResourceId::Parse(pol_s);
  ResourceId vault_id = id.Parent();
  if (!pol_id.ok() || api::TypeKey(*pol_id) != kPolicyType || pol_id->Parent().Key() != vault_id.Key())
    return InvalidArgument("policyId must be a backup policy of vault '" + vault_id.name() + "'.",
                           "properties.policyId");
  auto pol = ctx_.store->Get(pol_id->Key());
  if (!pol.ok())
    return NotFound("Backup policy '" + pol_s + "' was not found.", "properties.policyId",
                    "PolicyNotFound");
  auto existing = ctx_.store->Get(id.Key());
  if (existing.ok() &&
      !EqualsIgnoreCase(existing->body["properties"].value("sourceResourceId", ""), vm->body.value("id", "")))
    return Conflict("A protected item protects one VM; its source cannot be changed.",
                    "properties.sourceResourceId", "PropertyChangeNotAllowed");
  // One vault (one item) per VM.
  ASSIGN_OR_RETURN(auto items, ListAll(ctx_.store, "/subscriptions/" + ToLower(id.subscription()) + "/", kItemType));
  for (auto& it : items)
    if (it.key != id.Key() &&
        EqualsIgnoreCase(it.body["properties"].value("sourceResourceId", ""), vm->body.value("id", "")))
      return Conflict("VM '" + vm_id->name() + "' is already protected by '" +
                          it.body.value("id", "") + "'.",
                      "properties.sourceResourceId", "AlreadyProtected");
  if (existing.ok() &&
      existing->body["properties"].value("protectionState", "") == "Protected" &&
      EqualsIgnoreCase(existing->body["properties"].value("policyId", ""),
                       pol->body.value("id", pol_s))) {
    ApiResponse same = api::ResourceResponse(*existing, 200);  // nothing changes
    DecorateListItem(req, *existing, same.body);
    return same;
  }
  store::Record rec;
  int64_t now = ctx_.clock->NowMs();
  if (existing.ok()) {
    rec = *existing;
    api::TouchSystemData(rec.body, req.caller, now);
  } else {
    rec.key = id.Key();
    rec.type = api::TypeKey(id);
    rec.body = api::NewResourceBody(id, ctx_.region, Json::object(), req.caller, now);
    rec.body.erase("tags");
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
    case Kind::kPoint:
    case Kind::kJob:
      return Status(StatusCode::kMethodNotAllowed, "MethodNotAllowed",
                    "Recovery points and jobs are created by backups, not by PUT.");
    default:
      return NotFound("No API at '" + id.ToString() + "'.", id.ToString(), "NotFound");
  }
}

Result<ApiResponse> RecoveryProvider::Get(const ApiRequest& req, const ResourceId& id) {
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
    bool locked = false;
    if (rec.body["properties"]["encryption"].value("keySource", "") == "Customer") {
      std::lock_guard<std::mutex> lock(vaults_mu_);
      locked = !vaults_.count(rec.key);
    }
    item["properties"]["state"] = locked ? "Locked" : "Unlocked";
    auto items = ctx_.store->List(rec.key + "/protecteditems/", kItemType, "", 1000);
    if (items.ok()) item["properties"]["protectedItemCount"] = items->records.size();
  } else if (rec.type == kItemType) {
    auto pts = ctx_.store->List(rec.key + "/recoverypoints/", kPointType, "", 10000);
    if (pts.ok()) item["properties"]["recoveryPointCount"] = pts->records.size();
    if (rec.body["properties"].value("protectionState", "") == "Protected") {
      auto pol = PolicyOf(rec);
      if (pol.ok()) {
        int64_t last = rec.internal.value("lastScheduledMs", ctx_.clock->NowMs());
        auto next = policy::NextRun(*pol, last);
        if (next)
          item["properties"]["nextScheduledBackupTime"] =
              FormatIso8601(*next + policy::Stagger(rec.key, *pol));
      }
    }
  } else if (rec.type == kPolicyType) {
    auto items = ListAll(ctx_.store, rec.key.substr(0, rec.key.find("/backuppolicies/")) + "/protecteditems/", kItemType);
    int n = 0;
    if (items.ok())
      for (auto& it : *items)
        if (EqualsIgnoreCase(it.body["properties"].value("policyId", ""), rec.body.value("id", ""))) ++n;
    item["properties"]["protectedItemsCount"] = n;
  }
}

Status RecoveryProvider::DeletePoints(const ResourceId& item, bool from_vault) {
  ASSIGN_OR_RETURN(auto pts, ListAll(ctx_.store, item.Key() + "/recoverypoints/", kPointType));
  vault::Vault* v = nullptr;
  if (from_vault && !pts.empty()) {
    ASSIGN_OR_RETURN(v, OpenVault(item.Parent()));
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
      if (items.ok() && !items->records.empty())
        return Conflict("Vault '" + id.name() + "' still holds protected items; delete them "
                        "(with their backup data) first.",
                        id.ToString(), "VaultNotEmpty");
      ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
      {
        std::lock_guard<std::mutex> l(vaults_mu_);
        vaults_.erase(id.Key());
        passphrases_.erase(id.Key());
      }
      ASSIGN_OR_RETURN(auto children, ListAll(ctx_.store, id.Key() + "/", ""));
      for (auto& c : children) RETURN_IF_ERROR(ctx_.store->Delete(c.key));
      RemoveTree(rec->internal.value("dir", ""));
      RETURN_IF_ERROR(ctx_.store->Delete(id.Key()));
      return ApiResponse::NoContent(200);
    }
    case Kind::kPolicy: {
      ASSIGN_OR_RETURN(auto items, ListAll(ctx_.store, id.Parent().Key() + "/protecteditems/", kItemType));
      for (auto& it : items)
        if (EqualsIgnoreCase(it.body["properties"].value("policyId", ""), rec->body.value("id", "")) &&
            it.body["properties"].value("protectionState", "") == "Protected")
          return Conflict("Policy '" + id.name() + "' is used by '" + it.body.value("id", "") + "'.",
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
      redundancy_->CopySoon(id.Parent(), "pointsDeleted");
      return ApiResponse::NoContent(200);
    }
    case Kind::kPoint: {
      ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Parent().Key()}));
      ASSIGN_OR_RETURN(vault::Vault * v, OpenVault(id.Parent().Parent()));
      Status st = v->DeletePoint(rec->body.value("name", ""));
      if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
      RETURN_IF_ERROR(ctx_.store->Delete(id.Key()));
      redundancy_->CopySoon(id.Parent().Parent(), "pointsDeleted");
      return ApiResponse::NoContent(200);
    }
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

Status RecoveryProvider::DeleteForGroup(const ResourceId& id, OperationContext&) {
  auto rec = ctx_.store->Get(id.Key());
  if (!rec.ok()) return Status::Ok();
  if (KindOf(id) == Kind::kVault) {
    {
      std::lock_guard<std::mutex> l(vaults_mu_);
      vaults_.erase(id.Key());
      passphrases_.erase(id.Key());
    }
    RemoveTree(rec->internal.value("dir", ""));
  }
  return ctx_.store->Delete(id.Key());
}

// ---------------------------------------------------------------------------------------------
// Jobs

Result<store::Record> RecoveryProvider::NewJob(const ResourceId& vault, const std::string& operation,
                                               const Json& props, const std::string& caller) {
  int64_t now = ctx_.clock->NowMs();
  ResourceId id = vault.Child("backupJobs", vault::NewPointId(now));
  store::Record rec;
  rec.key = id.Key();
  rec.type = api::TypeKey(id);
  rec.body = api::NewResourceBody(id, ctx_.region, Json::object(), caller, now);
  rec.body.erase("tags");
  rec.body["properties"] = props;
  rec.body["properties"]["operation"] = operation;
  rec.body["properties"]["status"] = "Queued";
  rec.body["properties"]["startTime"] = FormatIso8601(now);
  rec.body["properties"]["progress"] = {{"bytesDone", 0}, {"bytesTotal", 0}, {"percent", 0},
                                        {"rateBytesPerSecond", 0}};
  return ctx_.store->Put(rec, store::WriteCondition{std::nullopt, true, false});
}

void RecoveryProvider::UpdateJob(const ResourceId& job, const std::function<void(Json&)>& fn) {
  UpdateProperties(ctx_.store, job, fn);
}

void RecoveryProvider::FailJob(const ResourceId& job, const Status& st) {
  int64_t now = ctx_.clock->NowMs();
  Json props;
  UpdateJob(job, [&](Json& p) {
    p["status"] = "Failed";
    p["endTime"] = FormatIso8601(now);
    p["error"] = api::ErrorBody(st)["error"];
    props = p;
  });
  Alert(job.Parent(), job, props);
}

void RecoveryProvider::Alert(const ResourceId& vault_id, const ResourceId& job, const Json& props) {
  auto v = ctx_.store->Get(vault_id.Key());
  if (!v.ok()) return;
  Json hooks = v->body["properties"]["alerts"].value("webhooks", Json::array());
  Json payload = {{"vaultId", vault_id.ToString()},
                  {"jobId", job.ToString()},
                  {"operation", props.value("operation", "")},
                  {"protectedItemId", props.value("protectedItemId", "")},
                  {"error", props.value("error", Json::object())}};
  for (auto& h : hooks) {
    std::string url = h.get<std::string>();
    // http://host:port/path
    std::string rest = url.substr(7);
    size_t slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
    httplib::Client cli("http://" + hostport);
    cli.set_connection_timeout(2);
    cli.set_read_timeout(5);
    auto r = cli.Post(path, payload.dump(), "application/json");
    if (!r || r->status >= 300)
      spdlog::warn("alert webhook {} for job {} failed", url, job.name());
  }
}

Result<ApiResponse> RecoveryProvider::StartBackup(const ResourceId& item_id, const std::string& caller,
                                                  int64_t retain_until_ms, int64_t scheduled_ms,
                                                  const ApiRequest* req) {
  ASSIGN_OR_RETURN(store::Record item, ctx_.store->Get(item_id.Key()));
  if (item.body["properties"].value("protectionState", "") != "Protected")
    return Conflict("Protection of '" + item_id.name() + "' is stopped; enable it again to back "
                    "up.", item_id.ToString(), "ProtectionStopped");
  ResourceId vault_id = item_id.Parent();
  if (req) {
    // Fail fast on a locked vault rather than queueing a job that cannot run.
    RETURN_IF_ERROR(OpenVault(vault_id).status());
  }
  Json props = {{"entityFriendlyName", item.body["properties"].value("friendlyName", "")},
                {"protectedItemId", item.body.value("id", "")},
                {"onDemand", scheduled_ms == 0}};
  if (retain_until_ms) props["retainUntil"] = FormatIso8601(retain_until_ms);
  if (scheduled_ms) props["scheduledTime"] = FormatIso8601(scheduled_ms);
  ASSIGN_OR_RETURN(store::Record job, NewJob(vault_id, "Backup", props, caller));
  ASSIGN_OR_RETURN(ResourceId job_id, ResourceId::Parse(job.body.value("id", "")));
  ASSIGN_OR_RETURN(std::string op,
                   ctx_.ops->Start(job_id, kBackupOp, Json::object(),
                                   [this, job_id](OperationContext& octx) {
                                     return RunBackup(job_id, octx);
                                   },
                                   {}, caller));
  UpdateJob(job_id, [&](Json& p) { p["operationId"] = op; });
  if (!req) return ApiResponse::NoContent(202);
  return api::AcceptedResponse(*req, item_id.subscription(), op, api::ToArm(job), 202);
}

Status RecoveryProvider::RunBackup(const ResourceId& job_id, OperationContext& octx) {
  Status st = [&]() -> Status {
    ASSIGN_OR_RETURN(store::Record job, ctx_.store->Get(job_id.Key()));
    ASSIGN_OR_RETURN(ResourceId item_id,
                     ResourceId::Parse(job.body["properties"].value("protectedItemId", "")));
    ASSIGN_OR_RETURN(store::Record item, ctx_.store->Get(item_id.Key()));
    ASSIGN_OR_RETURN(ResourceId vm_id,
                     ResourceId::Parse(item.body["properties"].value("sourceResourceId", "")));
    // At most one job per VM: wait (Queued) for the item's and the VM's locks.
    octx.SetProgress(0, "queued");
    ASSIGN_OR_RETURN(api::ResourceLock lock, WaitForLock({item_id.Key(), vm_id.Key()}));
    int64_t started = ctx_.clock->NowMs();
    UpdateJob(job_id, [&](Json& p) {
      p["status"] = "InProgress";
      p["startTime"] = FormatIso8601(started);
    });
    auto vm = ctx_.store->Get(vm_id.Key());
    if (!vm.ok())
      return NotFound("The protected VM '" + vm_id.ToString() + "' no longer exists.",
                      vm_id.ToString(), "SourceVmNotFound");
    ASSIGN_OR_RETURN(vault::Vault * v, OpenVault(item_id.Parent()));
    ASSIGN_OR_RETURN(policy::BackupPolicy pol, PolicyOf(item));

    // The VM's disks.
    const Json& sp = vm->body["properties"]["storageProfile"];
    VmBackupRequest breq;
    breq.domain = vm->internal.value("domain", "");
    auto info = hv_->Info(breq.domain);
    breq.running = info.ok() && info->state == compute::PowerState::kRunning;
    auto add_disk = [&](const Json& d, int lun) -> Status {
      std::string did_s = d["managedDisk"].value("id", "");
      ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(did_s));
      auto path = disks_->PathOf(did);
      if (!path.ok())
        return NotFound("Disk '" + did.name() + "' of VM '" + vm_id.name() + "' vanished.",
                        did_s, "DiskNotFound");
      VmDisk vd;
      vd.name = DiskKeyName(lun);
      vd.lun = lun;
      vd.path = *path;
      vd.target_dev = std::string("vd") + static_cast<char>('a' + (lun + 1));
      breq.disks.push_back(vd);
      return Status::Ok();
    };
    RETURN_IF_ERROR(add_disk(sp["osDisk"], -1));
    for (auto& d : sp["dataDisks"]) RETURN_IF_ERROR(add_disk(d, d.value("lun", 0)));
    Json disks_cfg = Json::array();
    for (auto& d : sp["dataDisks"])
      disks_cfg.push_back({{"lun", d.value("lun", 0)},
                           {"name", d.value("name", "")},
                           {"sku", d["managedDisk"].value("storageAccountType", "Standard_LRS")},
                           {"diskSizeGB", d.value("diskSizeGB", 1)}});
    breq.vm_config = {
        {"vmId", vm->body.value("id", "")},
        {"vmSize", vm->body["properties"]["hardwareProfile"].value("vmSize", "")},
        {"imageReference", sp["imageReference"].value("id", "")},
        {"osDisk",
         {{"name", sp["osDisk"].value("name", "")},
          {"sku", sp["osDisk"]["managedDisk"].value("storageAccountType", "Standard_LRS")},
          {"diskSizeGB", sp["osDisk"].value("diskSizeGB", 1)}}},
        {"dataDisks", disks_cfg},
        {"computerName", vm->body["properties"]["osProfile"].value("computerName", "")},

        {"tags", vm->body.value("tags", Json::object())}};
    breq.metadata = {{"protectedItemId", item.body.value("id", "")}, {"jobId", job_id.ToString()}};
    breq.wanted = pol.consistency;
    breq.scratch_dir = JoinPath(ctx_.data_dir, "scratch/" + job_id.name());
    int64_t t0 = NowMs();
    breq.progress = [&](uint64_t done, uint64_t total) {
      static thread_local int64_t last = 0;
      int64_t now = NowMs();
      if (now - last < 1000 && done < total) return;
      last = now;
      double secs = std::max<int64_t>(1, now - t0) / 1000.0;
      UpdateJob(job_id, [&](Json& p) {
        p["progress"] = {{"bytesDone", done},
                         {"bytesTotal", total},
                         {"percent", total ? static_cast<int>(done * 100 / total) : 0},
                         {"rateBytesPerSecond", static_cast<uint64_t>(done / secs)}};
      });
      octx.SetProgress(total ? static_cast<int>(5 + done * 90 / total) : 5, "reading disks");
    };
    // The previous point: the newest of this item.
    const vault::RecoveryPoint* prev = nullptr;
    vault::RecoveryPoint prev_point;
    ASSIGN_OR_RETURN(auto pts, ListAll(ctx_.store, item_id.Key() + "/recoverypoints/", kPointType));
    if (!pts.empty()) {
      // Newest by capture time (names sort by second only).
      auto newest = std::max_element(pts.begin(), pts.end(), [](const store::Record& a, const store::Record& b) {
        return a.body["properties"].value("recoveryPointTime", "") <
               b.body["properties"].value("recoveryPointTime", "");
      });
      auto p = v->ReadPoint(newest->body.value("name", ""));
      if (p.ok()) {
        prev_point = std::move(p).value();
        prev = &prev_point;
      } else {
        spdlog::warn("backup {}: previous point unreadable ({}); taking a full backup",
                     job_id.name(), p.status().ToString());
      }
    }
    breq.previous = prev;
    auto res = BackupVm(*v, hv_, breq);
    RemoveTree(breq.scratch_dir);
    if (!res.ok()) return res.status();

    // Index the point, update item and job.
    int64_t now = ctx_.clock->NowMs();
    ResourceId point_id = item_id.Child("recoveryPoints", res->point.point_id);
    store::Record pr;
    pr.key = point_id.Key();
    pr.type = api::TypeKey(point_id);
    pr.body = {{"id", point_id.ToString()},
               {"name", res->point.point_id},
               {"type", point_id.FullType()}};
    Json disks_out = Json::array();
    for (auto& d : res->point.disks) {
      int lun = d.name == "osdisk" ? -1 : std::atoi(d.name.c_str() + 3);
      disks_out.push_back({{"name", d.name}, {"lun", lun}, {"sizeBytes", d.size}});
    }
    pr.body["properties"] = {{"recoveryPointTime", FormatIso8601(res->point.created_ms)},
                             {"recoveryPointType", res->backup_type},
                             {"consistency", res->consistency},
                             {"consistencyReason", res->consistency_reason},
                             {"disks", disks_out},
                             {"sourceVmSize", breq.vm_config.value("vmSize", "")},
                             {"sourceResourceId", vm->body.value("id", "")},
                             {"onDemand", job.body["properties"].value("onDemand", true)},
                             {"jobId", job_id.ToString()},
                             {"bytesAdded", res->bytes_added}};
    if (job.body["properties"].contains("retainUntil"))
      pr.body["properties"]["retainUntil"] = job.body["properties"]["retainUntil"];
    if (job.body["properties"].contains("scheduledTime"))
      pr.body["properties"]["scheduledTime"] = job.body["properties"]["scheduledTime"];
    // The VM's user script may hold secrets: it stays in the state store (with the VM's own
    // copy), never in the vault, whose manifests are signed but not encrypted. A restored VM
    // gets it back.
    pr.internal = {{"customData", vm->internal.value("customData", "")}};
    RETURN_IF_ERROR(ctx_.store->Put(pr).status());
    ASSIGN_OR_RETURN(item, ctx_.store->Get(item_id.Key()));
    item.body["properties"]["lastBackupTime"] = FormatIso8601(res->point.created_ms);
    item.body["properties"]["lastBackupStatus"] = "Completed";
    item.body["properties"]["lastRecoveryPointId"] = point_id.ToString();
    RETURN_IF_ERROR(ctx_.store->Put(item).status());
    Json final_props;
    UpdateJob(job_id, [&](Json& p) {
      p["status"] = "Completed";
      p["endTime"] = FormatIso8601(now);
      p["duration"] = std::to_string((now - started) / 1000.0).substr(0, 6) + "s";
      p["durationMs"] = now - started;
      p["bytesRead"] = res->bytes_read;
      p["bytesAdded"] = res->bytes_added;
      p["backupType"] = res->backup_type;
      if (!res->fallback_reason.empty()) p["fallbackReason"] = res->fallback_reason;
      p["consistency"] = res->consistency;
      if (!res->consistency_reason.empty()) p["consistencyReason"] = res->consistency_reason;
      if (!res->hooks.empty()) p["guestHooks"] = res->hooks;
      p["recoveryPointId"] = point_id.ToString();
      p["disks"] = res->disk_stats;
      p["progress"]["bytesDone"] = p["progress"].value("bytesTotal", uint64_t{0});
      p["progress"]["percent"] = 100;
      final_props = p;
    });
    octx.result() = final_props;
    Status pst = Prune(item_id, pol, now);
    if (!pst.ok()) spdlog::warn("prune of {}: {}", item_id.ToString(), pst.ToString());
    redundancy_->CopySoon(item_id.Parent(), "backup");  // never fails the backup
    return Status::Ok();
  }();
  if (!st.ok()) {
    FailJob(job_id, st);
    auto job = ctx_.store->Get(job_id.Key());
    if (job.ok()) {
      auto item_id = ResourceId::Parse(job->body["properties"].value("protectedItemId", ""));
      if (item_id.ok()) {
        auto item = ctx_.store->Get(item_id->Key());
        if (item.ok()) {
          item->body["properties"]["lastBackupStatus"] = "Failed";
          ctx_.store->Put(*item);
        }
      }
    }
  }
  return st;
}

Status RecoveryProvider::Prune(const ResourceId& item_id, const policy::BackupPolicy& pol,
                               int64_t now_ms) {
  ASSIGN_OR_RETURN(auto pts, ListAll(ctx_.store, item_id.Key() + "/recoverypoints/", kPointType));
  std::vector<policy::PointInfo> infos;
  std::map<std::string, std::string> key_of;
  for (auto& p : pts) {
    policy::PointInfo pi;
    pi.id = p.body.value("name", "");
    const Json& pp = p.body["properties"];
    ASSIGN_OR_RETURN(pi.time_ms, ParseTime(pp.value("recoveryPointTime", ""), "recoveryPointTime"));
    pi.on_demand = pp.value("onDemand", true);
    if (pp.contains("retainUntil")) {
      ASSIGN_OR_RETURN(pi.retain_until_ms, ParseTime(pp.value("retainUntil", ""), "retainUntil"));
    }
    if (pp.contains("scheduledTime")) {
      ASSIGN_OR_RETURN(pi.scheduled_ms, ParseTime(pp.value("scheduledTime", ""), "scheduledTime"));
    }
    key_of[pi.id] = p.key;
    infos.push_back(pi);
  }
  auto result = policy::Prune(pol, infos, now_ms);
  if (result.expire.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(vault::Vault * v, OpenVault(item_id.Parent()));
  for (auto& e : result.expire) {
    if (instant_->PointInUse(e.id)) continue;  // an instant restore serves it; next prune
    Status st = v->DeletePoint(e.id);
    if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
    RETURN_IF_ERROR(ctx_.store->Delete(key_of[e.id]));
    spdlog::info("retention: expired recovery point {} of {}", e.id, item_id.ToString());
  }
  // Free the chunks only the expired points held.
  auto gc = v->Gc();
  if (!gc.ok()) spdlog::warn("vault gc after prune: {}", gc.status().ToString());
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Restore

Result<ApiResponse> RecoveryProvider::StartRestore(const ApiRequest& req, const ResourceId& point_id) {
  const Json& b = req.body.is_object() ? req.body : Json::object();
  RETURN_IF_ERROR(api::RejectUnknownKeys(b, {"restoreType", "targetResourceGroup", "vmName", "vmSize",
                                             "disks", "diskNamePrefix", "instant"},
                                         ""));
  ASSIGN_OR_RETURN(store::Record point, ctx_.store->Get(point_id.Key()));
  ASSIGN_OR_RETURN(std::string type, api::GetString(b, "restoreType"));
  ASSIGN_OR_RETURN(std::string rg, api::GetString(b, "targetResourceGroup", point_id.resource_group()));
  RETURN_IF_ERROR(ValidateResourceGroupName(rg));
  ResourceId group = ResourceId::Group(point_id.subscription(), rg);
  RETURN_IF_ERROR(api::CheckGroupExists(ctx_.store, group));
  ResourceId vault_id = point_id.Parent().Parent();
  RETURN_IF_ERROR(OpenVault(vault_id).status());
  // Which disks.
  std::vector<std::string> all;
  for (auto& d : point.body["properties"]["disks"]) all.push_back(d.value("name", ""));
  std::vector<std::string> chosen = all;
  if (b.contains("disks")) {
    if (!b["disks"].is_array() || b["disks"].empty())
      return InvalidArgument("'disks' must be a non-empty list of disk names of the point (" +
                             fmt::format("{}", fmt::join(all, ", ")) + ").", "disks");
    chosen.clear();
    for (auto& d : b["disks"]) {
      std::string n = d.is_string() ? d.get<std::string>() : "";
      if (std::find(all.begin(), all.end(), n) == all.end())
        return InvalidArgument("The recovery point has no disk '" + n + "'; it has " +
                                   fmt::format("{}", fmt::join(all, ", ")) + ".",
                               "disks");
      if (std::find(chosen.begin(), chosen.end(), n) != chosen.end())
        return InvalidArgument("Disk '" + n + "' is listed twice.", "disks");
      chosen.push_back(n);
    }
  }
  Json params = {{"restoreType", type}, {"targetResourceGroup", rg}, {"disks", chosen},
                 {"recoveryPointId", point_id.ToString()}};
  std::vector<std::string> disk_names;
  if (EqualsIgnoreCase(type, "AlternateLocation")) {
    params["restoreType"] = "AlternateLocation";
    ASSIGN_OR_RETURN(std::string vm_name, api::GetString(b, "vmName"));
    RETURN_IF_ERROR(ValidateResourceName(vm_name, "VM", 64));
    ResourceId vm = ResourceId::Resource(point_id.subscription(), rg, "Stratus.Compute",
                                         "virtualMachines", vm_name);
    if (ctx_.store->Get(vm.Key()).ok())
      return Conflict("VM '" + vm_name + "' already exists in resource group '" + rg +
                          "'; choose another name.",
                      "vmName", "ResourceExists");
    if (std::find(chosen.begin(), chosen.end(), "osdisk") == chosen.end())
      return InvalidArgument("A new VM needs its OS disk: include 'osdisk' in 'disks'.", "disks");
    std::string size = point.body["properties"].value("sourceVmSize", "");
    if (b.contains("vmSize")) {
      ASSIGN_OR_RETURN(size, api::GetString(b, "vmSize"));
    }
    ASSIGN_OR_RETURN(compute::VmSize vs, compute::FindVmSize(size));
    if (static_cast<int>(chosen.size()) - 1 > vs.max_data_disks)
      return InvalidArgument("VM size '" + vs.name + "' allows " + std::to_string(vs.max_data_disks) +
                                 " data disks; the restore has " + std::to_string(chosen.size() - 1) + ".",
                             "vmSize", "TooManyDataDisks");
    params["vmName"] = vm_name;
    params["vmSize"] = vs.name;
    if (b.contains("instant")) {
      if (!b["instant"].is_boolean()) return InvalidArgument("'instant' must be true or false.", "instant");
      params["instant"] = b["instant"].get<bool>();
    }
    for (auto& d : chosen)
      disk_names.push_back(d == "osdisk" ? vm_name + "_OsDisk"
                                         : vm_name + "_DataDisk_" + d.substr(3));
  } else if (EqualsIgnoreCase(type, "RestoreDisks")) {
    params["restoreType"] = "RestoreDisks";
    ASSIGN_OR_RETURN(std::string prefix, api::GetString(b, "diskNamePrefix"));
    RETURN_IF_ERROR(ValidateResourceName(prefix, "disk name prefix", 60));
    for (auto& d : chosen) disk_names.push_back(prefix + "-" + d);
  } else if (EqualsIgnoreCase(type, "OriginalLocation")) {
    // The VM keeps its identity; its disks' contents are replaced by the point's.
    params["restoreType"] = "OriginalLocation";
    std::string src = point.body["properties"].value("sourceResourceId", "");
    ASSIGN_OR_RETURN(ResourceId vm_id, ResourceId::Parse(src));
    auto vm = ctx_.store->Get(vm_id.Key());
    if (!vm.ok())
      return NotFound("The source VM '" + src + "' no longer exists; restore as a new VM "
                      "(AlternateLocation) instead.",
                      "restoreType", "SourceVmNotFound");
    const Json& sp = vm->body["properties"]["storageProfile"];
    Json in_place = Json::array();
    for (auto& d : chosen) {
      std::string disk_id;
      if (d == "osdisk") {
        disk_id = sp["osDisk"]["managedDisk"].value("id", "");
      } else {
        for (auto& dd : sp["dataDisks"])
          if ("lun" + std::to_string(dd.value("lun", -1)) == d) disk_id = dd["managedDisk"].value("id", "");
      }
      if (disk_id.empty())
        return Conflict("VM '" + vm_id.name() + "' has no disk at " + d + " any more; choose the "
                        "disks to restore with 'disks'.",
                        "disks", "DiskNotFound");
      in_place.push_back({{"disk", d}, {"diskId", disk_id}});
    }
    params["targets"] = in_place;
    params["vmId"] = vm->body.value("id", src);
  } else {
    return InvalidArgument("restoreType must be AlternateLocation, RestoreDisks or "
                           "OriginalLocation.",
                           "restoreType");
  }
  if (b.value("instant", false) && !params.value("instant", false))
    return InvalidArgument("'instant' restores start a new VM: use restoreType AlternateLocation.",
                           "instant");
  Json targets = Json::array();
  for (size_t i = 0; i < disk_names.size(); ++i) {
    ResourceId did = ResourceId::Resource(point_id.subscription(), rg, "Stratus.Storage", "disks",
                                          disk_names[i]);
    RETURN_IF_ERROR(ValidateResourceName(did.name(), "disk", 80));
    if (ctx_.store->Get(did.Key()).ok())
      return Conflict("Disk '" + did.name() + "' already exists in resource group '" + rg + "'.",
                      "disks", "ResourceExists");
    targets.push_back({{"disk", chosen[i]}, {"diskId", did.ToString()}});
  }
  if (!params.contains("targets")) params["targets"] = targets;
  std::string source_vm = point.body["properties"].value("sourceResourceId", "");
  Json props = {{"entityFriendlyName", source_vm.substr(source_vm.rfind('/') + 1)},
                {"sourceResourceId", source_vm},
                {"protectedItemId", point_id.Parent().ToString()},
                {"recoveryPointId", point_id.ToString()},
                {"restoreType", params["restoreType"]}};
  if (params.value("instant", false)) props["instant"] = true;
  ASSIGN_OR_RETURN(store::Record job, NewJob(vault_id, "Restore", props, req.caller));
  ASSIGN_OR_RETURN(ResourceId job_id, ResourceId::Parse(job.body.value("id", "")));
  job.internal = {{"params", params}};
  RETURN_IF_ERROR(ctx_.store->Put(job).status());
  ASSIGN_OR_RETURN(std::string op,
                   ctx_.ops->Start(job_id, kRestoreOp, Json::object(),
                                   [this, job_id](OperationContext& octx) {
                                     return RunRestore(job_id, octx);
                                   },
                                   {}, req.caller));
  UpdateJob(job_id, [&](Json& p) { p["operationId"] = op; });
  return api::AcceptedResponse(req, point_id.subscription(), op, api::ToArm(job), 202);
}

Status RecoveryProvider::RunRestore(const ResourceId& job_id, OperationContext& octx) {
  Status st = [&]() -> Status {
    ASSIGN_OR_RETURN(store::Record job, ctx_.store->Get(job_id.Key()));
    const Json params = job.internal.value("params", Json::object());
    ASSIGN_OR_RETURN(ResourceId point_id, ResourceId::Parse(params.value("recoveryPointId", "")));
    ResourceId vault_id = point_id.Parent().Parent();
    ASSIGN_OR_RETURN(vault::Vault * v, OpenVault(vault_id));
    ASSIGN_OR_RETURN(vault::RecoveryPoint point, v->ReadPoint(point_id.name()));
    int64_t started = ctx_.clock->NowMs();
    UpdateJob(job_id, [&](Json& p) { p["status"] = "InProgress"; });
    if (params.value("restoreType", "") == "OriginalLocation") {
      RETURN_IF_ERROR(RestoreInPlace(job_id, params, *v, point, octx));
      int64_t now = ctx_.clock->NowMs();
      Json final_props;
      UpdateJob(job_id, [&](Json& p) {
        p["status"] = "Completed";
        p["endTime"] = FormatIso8601(now);
        p["durationMs"] = now - started;
        p["duration"] = std::to_string((now - started) / 1000.0).substr(0, 6) + "s";
        p["result"] = {{"vmId", params.value("vmId", "")}};
        final_props = p;
      });
      octx.result() = final_props;
      return Status::Ok();
    }
    uint64_t total = 0;
    for (auto& t : params["targets"]) {
      const vault::DiskIndex* d = point.FindDisk(t.value("disk", ""));
      if (!d) return NotFound("The recovery point has no disk '" + t.value("disk", "") + "'.");
      total += d->size;
    }
    uint64_t base = 0;
    int64_t t0 = NowMs();
    std::string caller = job.body["systemData"].value("createdBy", "");
    Json disk_ids = Json::object();
    for (auto& t : params["targets"]) {
      std::string disk = t.value("disk", "");
      ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(t.value("diskId", "")));
      const vault::DiskIndex* d = point.FindDisk(disk);
      std::string tmp = JoinPath(ctx_.data_dir, "disks/restore-" + job_id.name() + "-" + disk + ".qcow2");
      RemoveFile(tmp);
      RETURN_IF_ERROR(MakeDirs(JoinPath(ctx_.data_dir, "disks"), 0711));
      const bool instant = params.value("instant", false);
      Status rs = instant ? instant_->PrepareDisk(job_id, *v, point, disk, tmp)
                          : RestoreVmDisk(*v, point, disk, tmp, [&](uint64_t done, uint64_t) {
        static thread_local int64_t last = 0;
        int64_t now = NowMs();
        if (now - last < 1000) return;
        last = now;
        uint64_t all = base + done;
        double secs = std::max<int64_t>(1, now - t0) / 1000.0;
        UpdateJob(job_id, [&](Json& p) {
          p["progress"] = {{"bytesDone", all}, {"bytesTotal", total},
                           {"percent", total ? static_cast<int>(all * 100 / total) : 0},
                           {"rateBytesPerSecond", static_cast<uint64_t>(all / secs)}};
        });
        octx.SetProgress(total ? static_cast<int>(all * 80 / total) : 0, "restoring disks");
      });
      if (!rs.ok()) {
        RemoveFile(tmp);
        instant_->Abandon(job_id);
        return rs;
      }
      base += d->size;
      storage::DiskSpec spec;
      spec.id = did;
      spec.location = ctx_.region;
      std::string sku = "Standard_LRS";
      if (disk == "osdisk") sku = point.vm_config["osDisk"].value("sku", sku);
      for (auto& dd : point.vm_config.value("dataDisks", Json::array()))
        if ("lun" + std::to_string(dd.value("lun", -2)) == disk) sku = dd.value("sku", sku);
      spec.sku = sku;
      spec.option = storage::CreateOption::kAdopt;
      spec.source_path = tmp;
      spec.creation_data = {{"createOption", "Restore"},
                            {"sourceResourceId", point_id.ToString()}};
      auto made = disks_->EnsureDisk(spec, caller);
      if (!made.ok()) {
        RemoveFile(tmp);
        instant_->Abandon(job_id);
        return made.status();
      }
      disk_ids[disk] = did.ToString();
    }
    Json result = {{"disks", disk_ids}};
    if (params.value("restoreType", "") == "AlternateLocation") {
      octx.SetProgress(85, "creating the VM");
      std::string vm_name = params.value("vmName", "");
      ResourceId vm = ResourceId::Resource(point_id.subscription(), params.value("targetResourceGroup", ""),
                                           "Stratus.Compute", "virtualMachines", vm_name);
      Json data = Json::array();
      for (auto& [disk, id] : disk_ids.items())
        if (disk != "osdisk")
          data.push_back({{"lun", std::atoi(disk.c_str() + 3)},
                          {"createOption", "Attach"},
                          {"deleteOption", "Delete"},
                          {"managedDisk", {{"id", id}}}});
      std::string custom_data;
      if (auto prec = ctx_.store->Get(point_id.Key()); prec.ok())
        if (prec->internal.is_object()) custom_data = prec->internal.value("customData", "");
      ApiRequest put;
      put.method = "PUT";
      put.path = vm.ToString();
      put.caller = caller;
      put.body = {{"location", ctx_.region},
                  {"tags", point.vm_config.value("tags", Json::object())},
                  {"properties",
                   {{"hardwareProfile", {{"vmSize", params.value("vmSize", "")}}},
                    {"storageProfile",
                     {{"imageReference", {{"id", point.vm_config.value("imageReference", "")}}},
                      {"osDisk",
                       {{"createOption", "Attach"},
                        {"deleteOption", "Delete"},
                        {"managedDisk", {{"id", disk_ids.value("osdisk", "")}}}}},
                      {"dataDisks", data}}},
                    {"osProfile",
                     {{"computerName", vm_name},
                      {"customData", custom_data}}}}}};
      ASSIGN_OR_RETURN(ApiResponse resp, hooks_.put_vm(put, vm));
      Status created = WaitComputeOperation(resp);
      if (!created.ok()) {
        instant_->Abandon(job_id);
        return Status(created.code(), created.arm_code(),
                      "The restored VM could not be created: " + created.message());
      }
      result["vmId"] = vm.ToString();
      if (params.value("instant", false))
        RETURN_IF_ERROR(instant_->Fill(job_id, point_id, vm, params["targets"], started, octx));
    }
    int64_t now = ctx_.clock->NowMs();
    Json final_props;
    UpdateJob(job_id, [&](Json& p) {
      p["status"] = "Completed";
      p["endTime"] = FormatIso8601(now);
      p["durationMs"] = now - started;
      p["duration"] = std::to_string((now - started) / 1000.0).substr(0, 6) + "s";
      p["bytesRestored"] = total;
      p["result"] = result;
      p["progress"] = {{"bytesDone", total}, {"bytesTotal", total}, {"percent", 100},
                       {"rateBytesPerSecond",
                        static_cast<uint64_t>(total / (std::max<int64_t>(1, NowMs() - t0) / 1000.0))}};
      final_props = p;
    });
    octx.result() = final_props;
    return Status::Ok();
  }();
  // A suspended instant restore goes on at the next start (InstantRestore::Start).
  if (!st.ok() && st.arm_code() != kInstantRestoreSuspended) FailJob(job_id, st);
  return st;
}

Result<api::ResourceLock> RecoveryProvider::WaitForLock(const std::vector<std::string>& keys) {
  for (;;) {
    auto l = ctx_.ops->TryLock(keys);
    if (l.ok()) return l;
    std::unique_lock<std::mutex> g(sched_mu_);
    if (stopping_) return Unavailable("stratusd is stopping; the job did not start.");
    sched_cv_.wait_for(g, std::chrono::milliseconds(300));
  }
}

Status RecoveryProvider::WaitComputeOperation(const ApiResponse& resp) {
  auto it = resp.headers.find("Azure-AsyncOperation");
  if (it == resp.headers.end()) return Status::Ok();
  std::string op = it->second.substr(it->second.rfind('/') + 1);
  for (;;) {
    auto rec = ctx_.ops->Get(op);
    if (!rec.ok()) return rec.status();
    if (rec->status != "InProgress") {
      if (rec->status != "Succeeded")
        return Internal(rec->body["error"].value("message", "operation " + rec->status));
      return Status::Ok();
    }
    std::unique_lock<std::mutex> g(sched_mu_);
    if (stopping_) return Unavailable("stratusd is stopping");
    sched_cv_.wait_for(g, std::chrono::milliseconds(300));
  }
}

Status RecoveryProvider::RestoreInPlace(const ResourceId& job_id, const Json& params,
                                        vault::Vault& v, const vault::RecoveryPoint& point,
                                        OperationContext& octx) {
  ASSIGN_OR_RETURN(ResourceId vm_id, ResourceId::Parse(params.value("vmId", "")));
  ASSIGN_OR_RETURN(store::Record vm, ctx_.store->Get(vm_id.Key()));
  std::string dom = vm.internal.value("domain", "");
  auto info = hv_->Info(dom);
  bool was_running = info.ok() && info->state == compute::PowerState::kRunning;
  ApiRequest req;
  req.method = "POST";
  req.caller = "restore " + job_id.name();
  req.body = Json::object();
  // 1. Restore every disk next to its target while the VM still runs.
  std::vector<std::pair<std::string, std::string>> swaps;  // restored file -> disk file
  auto cleanup = [&] {
    for (auto& sw : swaps) RemoveFile(sw.first);
  };
  int i = 0;
  const int n = static_cast<int>(params["targets"].size());
  for (auto& t : params["targets"]) {
    std::string disk = t.value("disk", "");
    ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(t.value("diskId", "")));
    auto path = disks_->PathOf(did);
    if (!path.ok()) {
      cleanup();
      return path.status();
    }
    std::string tmp = *path + ".restoring";
    RemoveFile(tmp);
    octx.SetProgress(5 + 60 * i++ / std::max(1, n), "restoring " + disk);
    Status rs = RestoreVmDisk(v, point, disk, tmp);
    if (!rs.ok()) {
      RemoveFile(tmp);
      cleanup();
      return rs;
    }
    swaps.push_back({tmp, *path});
  }
  // 2. Stop the VM (gracefully), swap the files under the VM's lock, start it again.
  if (was_running) {
    octx.SetProgress(70, "stopping the VM");
    auto r = hooks_.post_vm(req, vm_id, "powerOff");
    Status st = r.ok() ? WaitComputeOperation(*r) : r.status();
    if (!st.ok()) {
      cleanup();
      return st;
    }
  }
  {
    auto lock = WaitForLock({vm_id.Key()});
    if (!lock.ok()) {
      cleanup();
      return lock.status();
    }
    // The disks' change history ends here: drop the checkpoints of the old contents.
    if (auto cps = hv_->ListCheckpoints(dom); cps.ok())
      for (auto& cp : *cps) hv_->DeleteCheckpoint(dom, cp);
    octx.SetProgress(80, "replacing the disks");
    for (auto& sw : swaps) {
      // A disk grown after the point keeps its current size.
      auto cur = disks_->engine()->Usage(sw.second);
      auto restored = disks_->engine()->Usage(sw.first);
      if (cur.ok() && restored.ok() && cur->virtual_bytes > restored->virtual_bytes)
        disks_->engine()->Grow(sw.first, cur->virtual_bytes);
      if (::rename(sw.first.c_str(), sw.second.c_str()) != 0) {
        cleanup();
        return Internal("replacing disk file '" + sw.second + "' failed");
      }
      sw.first.clear();
    }
    swaps.clear();
  }
  if (was_running) {
    octx.SetProgress(90, "starting the VM");
    auto r = hooks_.post_vm(req, vm_id, "start");
    RETURN_IF_ERROR(r.ok() ? WaitComputeOperation(*r) : r.status());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Actions

Result<ApiResponse> RecoveryProvider::VaultAction(const ApiRequest& req, const ResourceId& id,
                                                  const std::string& action) {
  const Json& b = req.body.is_object() ? req.body : Json::object();
  if (EqualsIgnoreCase(action, "unlock")) {
    RETURN_IF_ERROR(api::RejectUnknownKeys(b, {"passphrase"}, ""));
    ASSIGN_OR_RETURN(std::string pass, api::GetString(b, "passphrase"));
    ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
    if (rec.body["properties"]["encryption"].value("keySource", "") != "Customer")
      return InvalidArgument("Vault '" + id.name() + "' uses the platform key; nothing to unlock.");
    auto v = vault::Vault::OpenLocal(rec.internal.value("dir", ""), vault::KeySource::CustomerPassphrase(pass));
    if (!v.ok()) {
      const Status& s = v.status();
      return Status(StatusCode::kInvalidArgument, s.arm_code().empty() ? "CustomerKeyMismatch" : s.arm_code(),
                    s.message(), "passphrase");
    }
    redundancy_->AttachFallback(rec, **v);
    std::lock_guard<std::mutex> l(vaults_mu_);
    vaults_[id.Key()] = std::move(v).value();
    passphrases_[id.Key()] = pass;
    return ApiResponse::Json200({{"state", "Unlocked"}});
  }
  if (EqualsIgnoreCase(action, "verify") || EqualsIgnoreCase(action, "gc")) {
    bool verify = EqualsIgnoreCase(action, "verify");
    RETURN_IF_ERROR(api::RejectUnknownKeys(b, verify ? std::vector<std::string>{"recoveryPointId"}
                                                     : std::vector<std::string>{},
                                           ""));
    std::string point;
    if (verify && b.contains("recoveryPointId")) {
      ASSIGN_OR_RETURN(point, api::GetString(b, "recoveryPointId"));
      if (point.find('/') != std::string::npos) point = point.substr(point.rfind('/') + 1);
      RETURN_IF_ERROR(vault::ValidatePointId(point));
    }
    ASSIGN_OR_RETURN(vault::Vault * v, OpenVault(id));
    ASSIGN_OR_RETURN(
        std::string op,
        ctx_.ops->Start(id, "Stratus.RecoveryServices/vaults/" + ToLower(action) + "/action",
                        Json::object(),
                        [v, verify, point](OperationContext& octx) -> Status {
                          if (!verify) {
                            vault::GcOptions go;
                            go.progress = [&](uint64_t d, uint64_t t) {
                              octx.SetProgress(t ? static_cast<int>(d * 100 / t) : 0, "deleting");
                            };
                            ASSIGN_OR_RETURN(vault::GcStats s, v->Gc(go));
                            octx.result() = {{"points", s.points},
                                             {"chunksListed", s.chunks_listed},
                                             {"chunksReferenced", s.chunks_referenced},
                                             {"chunksProtected", s.chunks_protected},
                                             {"chunksDeleted", s.chunks_deleted},
                                             {"bytesFreed", s.bytes_freed},
                                             {"durationMs", s.duration_ms}};
                            return Status::Ok();
                          }
                          vault::VerifyOptions vo;
                          vo.progress = [&](uint64_t d, uint64_t t) {
                            (void)d, (void)t;
                          };
                          ASSIGN_OR_RETURN(vault::VerifyReport r,
                                           point.empty() ? v->VerifyAll(vo) : v->Verify(point, vo));
                          Json problems = Json::array();
                          for (auto& p : r.problems)
                            problems.push_back(
                                {{"kind", p.kind == vault::ChunkProblem::Kind::kMissing   ? "Missing"
                                          : p.kind == vault::ChunkProblem::Kind::kCorrupt ? "Corrupt"
                                                                                          : "Manifest"},
                                 {"recoveryPointId", p.point_id},
                                 {"disk", p.disk},
                                 {"offset", p.offset},
                                 {"chunkId", p.chunk_id},
                                 {"message", p.message}});
                          octx.result() = {{"recoveryPoints", r.points},
                                           {"disks", r.disks},
                                           {"chunksChecked", r.chunks_checked},
                                           {"bytesChecked", r.bytes_checked},
                                           {"problems", problems}};
                          if (!r.ok())
                            return Status(StatusCode::kInternal, "VaultCorrupt", r.Summary());
                          return Status::Ok();
                        },
                        {}, req.caller));
    return api::AcceptedResponse(req, id.subscription(), op);
  }
  if (EqualsIgnoreCase(action, "copy")) {
    RETURN_IF_ERROR(api::RejectUnknownKeys(b, {}, ""));
    ASSIGN_OR_RETURN(std::string op, redundancy_->RequestCopy(id, req.caller, "manual"));
    if (op.empty())
      return Conflict("Vault '" + id.name() + "' has redundancy Local: there is no copy to bring "
                      "up to date.", "properties.redundancy", "CopyNotConfigured");
    return api::AcceptedResponse(req, id.subscription(), op);
  }
  return NotFound("Vaults have no action '" + action + "'.", action, "NotFound");
}

// Single files out of a recovery point, without booting anything: the disk is restored (checked
// chunk by chunk) into a sparse raw file in the scratch area and read with debugfs (e2fsprogs),
// which understands ext2/3/4 images without mounting them.
Result<ApiResponse> RecoveryProvider::FileAction(const ApiRequest& req, const ResourceId& point_id,
                                                 const std::string& action) {
  const bool list = EqualsIgnoreCase(action, "listFiles");
  const Json& b = req.body.is_object() ? req.body : Json::object();
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      b, list ? std::vector<std::string>{"disk", "path"} : std::vector<std::string>{"disk", "paths"},
      ""));
  ASSIGN_OR_RETURN(std::string disk, api::GetString(b, "disk"));
  std::vector<std::string> paths;
  if (list) {
    ASSIGN_OR_RETURN(std::string p, api::GetString(b, "path", "/"));
    paths.push_back(p);
  } else {
    if (!b.contains("paths") || !b["paths"].is_array() || b["paths"].empty() || b["paths"].size() > 100)
      return InvalidArgument("'paths' must list 1 to 100 file paths.", "paths");
    for (auto& p : b["paths"]) {
      if (!p.is_string()) return InvalidArgument("'paths' must be strings.", "paths");
      paths.push_back(p.get<std::string>());
    }
  }
  for (auto& p : paths)
    if (p.empty() || p[0] != '/' || p.find('"') != std::string::npos ||
        p.find('\n') != std::string::npos)
      return InvalidArgument("'" + p + "' must be an absolute path without quotes.", list ? "path" : "paths");
  ASSIGN_OR_RETURN(store::Record point_rec, ctx_.store->Get(point_id.Key()));
  ASSIGN_OR_RETURN(vault::Vault * v, OpenVault(point_id.Parent().Parent()));
  ASSIGN_OR_RETURN(vault::RecoveryPoint point, v->ReadPoint(point_rec.body.value("name", "")));
  if (!point.FindDisk(disk))
    return NotFound("The recovery point has no disk '" + disk + "'.", "disk", "DiskNotFound");
  std::string dir = JoinPath(ctx_.data_dir, "scratch/files-" + NewUuid());
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  struct Cleanup {
    std::string d;
    ~Cleanup() { RemoveTree(d); }
  } cleanup{dir};
  std::string raw = JoinPath(dir, "disk.raw");
  backup::RestoreOptions ro;
  ro.format = backup::DiskFormat::kRaw;
  RETURN_IF_ERROR(backup::RestoreDisk(*v, point, disk, raw, ro).status());
  auto debugfs = [&](const std::string& cmd) -> Result<ProcessResult> {
    return RunProcess({"debugfs", "-R", cmd, raw});
  };
  auto not_found = [&](const ProcessResult& r, const std::string& p) -> Status {
    if (r.err.find("not found") != std::string::npos || r.err.find("File not found") != std::string::npos)
      return NotFound("'" + p + "' does not exist on disk " + disk + " of the point.", p, "FileNotFound");
    if (r.err.find("Bad magic") != std::string::npos || r.err.find("Can't find") != std::string::npos ||
        r.err.find("superblock") != std::string::npos)
      return InvalidArgument("Disk " + disk + " of the point does not hold an ext2/3/4 file system "
                             "(only those can be browsed).", "disk", "UnsupportedFileSystem");
    return Status::Ok();
  };
  if (list) {
    ASSIGN_OR_RETURN(ProcessResult r, debugfs("ls -p \"" + paths[0] + "\""));
    RETURN_IF_ERROR(not_found(r, paths[0]));
    Json entries = Json::array();
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
      // "/inode/mode/uid/gid/name/size/"
      std::vector<std::string> f;
      size_t pos = 0;
      while (pos < line.size()) {
        size_t next = line.find('/', pos + 1);
        if (next == std::string::npos) break;
        f.push_back(line.substr(pos + 1, next - pos - 1));
        pos = next;
      }
      if (f.size() < 6 || f[4] == "." || f[4] == ".." || f[4].empty()) continue;
      unsigned mode = static_cast<unsigned>(std::strtoul(f[1].c_str(), nullptr, 8));
      std::string type = (mode & 0170000) == 0040000   ? "Directory"
                         : (mode & 0170000) == 0120000 ? "SymbolicLink"
                         : (mode & 0170000) == 0100000 ? "File"
                                                       : "Other";
      entries.push_back({{"name", f[4]},
                         {"type", type},
                         {"size", std::strtoull(f[5].c_str(), nullptr, 10)},
                         {"mode", f[1]}});
    }
    if (entries.empty() && !r.err.empty()) {
      RETURN_IF_ERROR(not_found(r, paths[0]));
    }
    return ApiResponse::Json200({{"disk", disk}, {"path", paths[0]}, {"entries", entries}});
  }
  Json files = Json::array();
  uint64_t total = 0;
  int n = 0;
  for (auto& p : paths) {
    std::string out = JoinPath(dir, "file-" + std::to_string(n++));
    ASSIGN_OR_RETURN(ProcessResult r, debugfs("dump \"" + p + "\" " + out));
    RETURN_IF_ERROR(not_found(r, p));
    auto content = ReadFile(out);
    if (!content.ok())
      return NotFound("'" + p + "' could not be read from disk " + disk + " (not a regular file?).",
                      p, "FileNotFound");
    total += content->size();
    if (total > (16u << 20))
      return InvalidArgument("The files are larger than 16 MiB together; restore the disk "
                             "(RestoreDisks) instead.", "paths", "ResultTooLarge");
    files.push_back(
        {{"path", p}, {"size", content->size()}, {"contentBase64", Base64Encode(*content)}});
  }
  return ApiResponse::Json200({{"disk", disk}, {"files", files}});
}

Result<ApiResponse> RecoveryProvider::Post(const ApiRequest& req, const ResourceId& id,
                                           const std::string& action) {
  switch (KindOf(id)) {
    case Kind::kVault:
      return VaultAction(req, id, action);
    case Kind::kItem: {
      if (!EqualsIgnoreCase(action, "backup"))
        return NotFound("Protected items have no action '" + action + "'.", action, "NotFound");
      const Json& b = req.body.is_object() ? req.body : Json::object();
      RETURN_IF_ERROR(api::RejectUnknownKeys(b, {"retainUntil"}, ""));
      int64_t until = 0;
      if (b.contains("retainUntil")) {
        ASSIGN_OR_RETURN(std::string s, api::GetString(b, "retainUntil"));
        ASSIGN_OR_RETURN(until, ParseTime(s, "retainUntil"));
        if (until <= ctx_.clock->NowMs())
          return InvalidArgument("retainUntil must be in the future.", "retainUntil");
      }
      return StartBackup(id, req.caller, until, 0, &req);
    }
    case Kind::kPoint:
      if (EqualsIgnoreCase(action, "restore")) return StartRestore(req, id);
      if (EqualsIgnoreCase(action, "listFiles") || EqualsIgnoreCase(action, "extractFiles"))
        return FileAction(req, id, action);
      return NotFound("Recovery points have no action '" + action + "'.", action, "NotFound");
    default:
      return NotFound("No action '" + action + "' here.", action, "NotFound");
  }
}

// ---------------------------------------------------------------------------------------------
// Scheduler and start-up

void RecoveryProvider::SchedulerTick(int64_t now_ms) {
  auto items = ListAll(ctx_.store, "/subscriptions/", kItemType);
  if (!items.ok()) return;
  for (auto& item : *items) {
    if (item.body["properties"].value("protectionState", "") != "Protected") continue;
    auto pol = PolicyOf(item);
    if (!pol.ok()) continue;
    int64_t stagger = policy::Stagger(item.key, *pol);
    int64_t last = item.internal.value("lastScheduledMs", now_ms);
    auto next = policy::NextRun(*pol, last);
    if (!next || *next + stagger > now_ms) continue;
    // Missed runs (daemon down): run once, for the latest one that is due.
    int64_t due = *next;
    for (;;) {
      auto n = policy::NextRun(*pol, due);
      if (!n || *n + stagger > now_ms) break;
      due = *n;
    }
    item.internal["lastScheduledMs"] = due;
    if (!ctx_.store->Put(item).ok()) continue;
    auto id = ResourceId::Parse(item.body.value("id", ""));
    if (!id.ok()) continue;
    auto r = StartBackup(*id, "scheduler", 0, due, nullptr);
    if (!r.ok())
      spdlog::warn("scheduled backup of {}: {}", item.body.value("id", ""), r.status().ToString());
    else
      spdlog::info("scheduled backup of {} (run of {})", item.body.value("id", ""), FormatIso8601(due));
  }
}

Status RecoveryProvider::Start() {
  if (!PathExists(PlatformKeyPath())) RETURN_IF_ERROR(vault::CreatePlatformKeyFile(PlatformKeyPath()));
  redundancy_->RegisterRecovery();
  // Jobs cut by a restart: the vault is consistent (an uncommitted session leaves no point; its
  // chunks are freed by GC); the job is marked failed and the next backup runs normally.
  for (auto name : {kBackupOp, kRestoreOp}) {
    ctx_.ops->RegisterRecovery(
        name, [this](const store::OperationRecord& op, OperationContext&) -> Status {
          auto id = ResourceId::Parse(op.body.value("resourceId", ""));
          // An instant restore that was filling goes on (InstantRestore::Start resumed it).
          if (id.ok() && instant_->Owns(id->name())) return Status::Ok();
          Status st = Internal("The job was interrupted by a restart of stratusd; run it again.");
          if (id.ok()) {
            RemoveTree(JoinPath(ctx_.data_dir, "scratch/" + id->name()));
            auto job = ctx_.store->Get(id->Key());
            if (job.ok()) {
              // A restore's partial files. A backup job's `internal` is null (value() would
              // throw on it).
              const Json params = job->internal.is_object()
                                      ? job->internal.value("params", Json::object())
                                      : Json::object();
              for (auto& t : params.value("targets", Json::array()))
                RemoveFile(JoinPath(ctx_.data_dir, "disks/restore-" + id->name() + "-" +
                                                       t.value("disk", "") + ".qcow2"));
            }
            FailJob(*id, st);
            if (job.ok()) {
              auto item_id = ResourceId::Parse(job->body["properties"].value("protectedItemId", ""));
              auto item = item_id.ok() ? ctx_.store->Get(item_id->Key())
                                       : Result<store::Record>(NotFound("no item"));
              if (item.ok() && job->body["properties"].value("operation", "") == "Backup") {
                item->body["properties"]["lastBackupStatus"] = "Failed";
                ctx_.store->Put(*item);
              }
            }
          }
          return st;
        });
  }
  instant_->Start([this](const ResourceId& vault_id) { return OpenVault(vault_id); });
  int interval_ms = 2000;
  if (const char* e = std::getenv("STRATUS_SCHEDULER_INTERVAL_MS")) interval_ms = std::max(100, std::atoi(e));
  scheduler_ = std::thread([this, interval_ms] {
    for (;;) {
      {
        std::unique_lock<std::mutex> g(sched_mu_);
        sched_cv_.wait_for(g, std::chrono::milliseconds(interval_ms), [&] { return stopping_; });
        if (stopping_) return;
      }
      SchedulerTick(ctx_.clock->NowMs());
    }
  });
  return Status::Ok();
}

}  // namespace stratus::recovery::service
