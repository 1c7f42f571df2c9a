#include "storage/storage_provider.h"

#include "api/resource_util.h"

namespace stratus::storage {

using api::ApiRequest;
using api::ApiResponse;

namespace {
bool IsDisk(const ResourceId& id) { return EqualsIgnoreCase(id.types_and_names()[0].first, "disks"); }

// What a disk or snapshot was made from cannot change: a PUT may repeat it (ids and options
// compared without regard to case) but not alter it.
Status CheckCreationDataUnchanged(const Json& body, const Json& stored, const std::string& what) {
  const Json* requested = JsonPath(body, "properties.creationData");
  if (!requested || !requested->is_object()) return Status::Ok();
  const Json* current = JsonPath(stored, "properties.creationData");
  bool same = current && current->is_object();
  for (auto& [k, v] : requested->items())
    same = same && current->contains(k) &&
           ToLower(DumpJson(v)) == ToLower(DumpJson((*current)[k]));
  if (same) return Status::Ok();
  return Conflict("Changing property 'properties.creationData' of " + what +
                      " is not allowed; create a new one.",
                  "properties.creationData", "PropertyChangeNotAllowed");
}
}  // namespace

const api::Shape* StorageProvider::BodyShape(const ResourceId& id, const std::string& method,
                                             const std::string& action) const {
  using api::Shape;
  static const Shape kDisk = Shape::Resource(Shape::Object(
      {{"diskSizeGB", Shape::Integer()},
       {"creationData", Shape::Object({{"createOption", Shape::String()},
                                       {"imageReference", Shape::Object({{"id", Shape::String()}})},
                                       {"sourceResourceId", Shape::String()}})},
       {"provisioningState", Shape::Any()}, {"diskSizeBytes", Shape::Any()},
       {"diskIOPSReadWrite", Shape::Any()}, {"diskMBpsReadWrite", Shape::Any()},
       {"allocatedBytes", Shape::Any()}, {"diskState", Shape::Any()},
       {"timeCreated", Shape::Any()}, {"uniqueId", Shape::Any()}, {"managedBy", Shape::Any()}}));
  static const Shape kSnapshot = Shape::Resource(Shape::Object(
      {{"creationData", Shape::Object({{"sourceResourceId", Shape::String()},
                                       {"createOption", Shape::String()}})},
       {"provisioningState", Shape::Any()}, {"diskSizeGB", Shape::Any()},
       {"diskSizeBytes", Shape::Any()}, {"timeCreated", Shape::Any()},
       {"uniqueId", Shape::Any()}, {"incremental", Shape::Any()}, {"consistency", Shape::Any()},
       {"allocatedBytes", Shape::Any()}}));
  if (method == "PUT" || (method == "PATCH" && IsDisk(id))) return IsDisk(id) ? &kDisk : &kSnapshot;
  return ResourceProvider::BodyShape(id, method, action);
}

Result<ApiResponse> StorageProvider::Put(const ApiRequest& req, const ResourceId& id) {
  return IsDisk(id) ? PutDisk(req, id) : PutSnapshot(req, id);
}

Result<ApiResponse> StorageProvider::Get(const ApiRequest& req, const ResourceId& id) {
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  if (IsDisk(id)) disks_->DecorateDisk(rec.body, rec.internal.value("path", ""));
  return api::ResourceResponse(rec);
}

void StorageProvider::DecorateListItem(const ApiRequest&, const store::Record& rec, Json& item) {
  if (rec.type == "stratus.storage/disks") disks_->DecorateDisk(item, rec.internal.value("path", ""));
}

Result<ApiResponse> StorageProvider::PutDisk(const ApiRequest& req, const ResourceId& id) {
  const Json& body = req.body;
  RETURN_IF_ERROR(api::RejectUnknownKeys(body, {"location", "tags", "sku", "properties", "id",
                                                "name", "type", "etag", "managedBy", "systemData"},
                                         ""));
  ASSIGN_OR_RETURN(std::string location, api::ValidateLocation(body, ctx_.region));
  RETURN_IF_ERROR(api::ValidateTags(body));
  Json props = body.value("properties", Json::object());
  if (!props.is_object()) return InvalidArgument("'properties' must be an object.", "properties");
  // Writable: diskSizeGB, creationData. The rest are read-only values a GET returns, accepted so
  // that a GET body can be PUT back.
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      props, {"diskSizeGB", "creationData", "provisioningState", "diskSizeBytes",
              "diskIOPSReadWrite", "diskMBpsReadWrite", "allocatedBytes", "diskState",
              "timeCreated", "uniqueId", "managedBy"},
      "properties"));
  std::string sku = "Standard_LRS";
  if (body.contains("sku")) {
    if (!body["sku"].is_object() || !body["sku"].contains("name"))
      return InvalidArgument("'sku' must be an object with a 'name'.", "sku");
    ASSIGN_OR_RETURN(sku, api::GetString(body["sku"], "name"));
    ASSIGN_OR_RETURN(DiskTier t, FindDiskTier(sku));
    sku = t.sku;
  }
  auto existing = ctx_.store->Get(id.Key());
  if (existing.ok()) {
    RETURN_IF_ERROR(CheckCreationDataUnchanged(body, existing->body, "a disk"));
    return UpdateDisk(req, id, *existing, body);
  }

  Json cd = props.value("creationData", Json{{"createOption", "Empty"}});
  if (!cd.is_object()) return InvalidArgument("'creationData' must be an object.", "properties.creationData");
  RETURN_IF_ERROR(api::RejectUnknownKeys(cd, {"createOption", "imageReference", "sourceResourceId"},
                                         "properties.creationData"));
  ASSIGN_OR_RETURN(std::string option, api::GetString(cd, "createOption", "Empty"));
  DiskSpec spec;
  spec.id = id;
  spec.location = location;
  spec.tags = body.value("tags", Json::object());
  spec.sku = sku;
  spec.creation_data = cd;
  ASSIGN_OR_RETURN(int64_t size_gb, api::GetInt(props, "diskSizeGB", 1, kMaxDiskSizeGB, 0));
  if (EqualsIgnoreCase(option, "Empty")) {
    if (size_gb == 0)
      return InvalidArgument("'properties.diskSizeGB' is required for an empty disk.",
                             "properties.diskSizeGB", "MissingParameter");
    spec.option = CreateOption::kEmpty;
  } else if (EqualsIgnoreCase(option, "FromImage")) {
    if (!cd.contains("imageReference") || !cd["imageReference"].is_object())
      return InvalidArgument("'creationData.imageReference.id' is required for FromImage.",
                             "properties.creationData.imageReference", "MissingParameter");
    ASSIGN_OR_RETURN(std::string image, api::GetString(cd["imageReference"], "id"));
    ASSIGN_OR_RETURN(spec.source_path, images_->ImageFile(image, id.subscription()));
    spec.option = CreateOption::kFromImage;
  } else if (EqualsIgnoreCase(option, "Copy")) {
    ASSIGN_OR_RETURN(std::string src, api::GetString(cd, "sourceResourceId"));
    ASSIGN_OR_RETURN(auto source, disks_->ResolveCopySource(src));
    spec.source_path = source.first;
    if (size_gb != 0 && static_cast<uint64_t>(size_gb) * kGiB < source.second)
      return InvalidArgument("diskSizeGB " + std::to_string(size_gb) +
                                 " is smaller than the source (" +
                                 std::to_string(source.second) + " bytes).",
                             "properties.diskSizeGB", "InvalidDiskSize");
    spec.option = CreateOption::kCopy;
  } else {
    return InvalidArgument("createOption '" + option + "' is not supported; use Empty, "
                               "FromImage or Copy.",
                           "properties.creationData.createOption");
  }
  if (size_gb != 0) RETURN_IF_ERROR(disks_->ValidateSize(size_gb));
  spec.size_gb = size_gb;

  std::string caller = req.caller;
  DiskService* disks = disks_;
  // The spec rides in the operation record so that a restarted daemon can finish the create.
  Json saved = {{"spec",
                 {{"location", spec.location},
                  {"tags", spec.tags},
                  {"sku", spec.sku},
                  {"sizeGB", spec.size_gb},
                  {"option", static_cast<int>(spec.option)},
                  {"source", spec.source_path},
                  {"creationData", spec.creation_data}}}};
  ASSIGN_OR_RETURN(std::string op,
                   ctx_.ops->Start(id, "Stratus.Storage/disks/write", saved,
                                   [disks, spec, caller](api::OperationContext& octx) {
                                     return disks->EnsureDisk(spec, caller).status();
                                   },
                                   {}, caller));
  // The operation may already be running; show the caller the record as created so far.
  Json shown = api::NewResourceBody(id, location, spec.tags, caller, ctx_.clock->NowMs());
  shown["sku"] = {{"name", sku}};
  shown["properties"] = {{"provisioningState", "Creating"}, {"creationData", cd}};
  if (size_gb) shown["properties"]["diskSizeGB"] = size_gb;
  return api::AcceptedResponse(req, id.subscription(), op, shown, 201);
}

Result<ApiResponse> StorageProvider::UpdateDisk(const ApiRequest& req, const ResourceId& id,
                                                const store::Record& existing, const Json& body) {
  if (!req.Header("if-match").empty() && req.Header("if-match") != "*" &&
      req.Header("if-match") != existing.etag)
    return PreconditionFailed("The ETag '" + req.Header("if-match") +
                              "' does not match the current ETag '" + existing.etag + "'.");
  if (req.Header("if-none-match") == "*")
    return PreconditionFailed("Disk '" + id.name() + "' already exists (If-None-Match: *).");
  if (existing.body["properties"].value("provisioningState", "") != "Succeeded")
    return Conflict("Disk '" + id.name() + "' is " +
                        existing.body["properties"].value("provisioningState", "") + ".",
                    id.ToString(), "OperationNotAllowed");
  Json props = body.value("properties", Json::object());
  int64_t cur_gb = existing.body["properties"].value("diskSizeGB", int64_t{0});
  ASSIGN_OR_RETURN(int64_t size_gb, api::GetInt(props, "diskSizeGB", 1, kMaxDiskSizeGB, cur_gb));
  if (size_gb < cur_gb)
    return InvalidArgument("Disks can only grow: diskSizeGB " + std::to_string(size_gb) +
                               " is smaller than the current " + std::to_string(cur_gb) + ".",
                           "properties.diskSizeGB", "InvalidDiskSize");
  std::string owner = existing.body.value("managedBy", "");
  if (size_gb > cur_gb) {
    RETURN_IF_ERROR(disks_->ValidateSize(size_gb));
    if (!owner.empty() && disks_->owners() && disks_->owners()->IsRunning(owner))
      return Conflict("Disk '" + id.name() + "' is attached to running VM '" + owner +
                          "'; stop the VM to grow it.",
                      "properties.diskSizeGB", "OperationNotAllowed");
  }
  std::string new_sku;
  if (body.contains("sku")) {
    ASSIGN_OR_RETURN(std::string sku, api::GetString(body["sku"], "name"));
    ASSIGN_OR_RETURN(DiskTier t, FindDiskTier(sku));
    if (t.sku != existing.body["sku"].value("name", "")) new_sku = t.sku;
  }
  std::vector<std::string> keys = {id.Key()};
  if (!owner.empty()) keys.push_back(ToLower(owner));
  ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock(keys));
  bool tags_change =
      body.contains("tags") && body["tags"] != existing.body.value("tags", Json::object());
  if (size_gb == cur_gb && new_sku.empty() && !tags_change) {
    // Nothing changes: same etag, nothing written (checked under the lock, so a running
    // operation still makes it a conflict).
    store::Record rec = existing;
    disks_->DecorateDisk(rec.body, rec.internal.value("path", ""));
    return api::ResourceResponse(rec, 200);
  }
  ASSIGN_OR_RETURN(store::Record rec,
                   disks_->Update(id, size_gb > cur_gb ? size_gb : 0, new_sku, req.caller));
  if (body.contains("tags")) {
    rec.body["tags"] = body["tags"];
    ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec));
  }
  disks_->DecorateDisk(rec.body, rec.internal.value("path", ""));
  return api::ResourceResponse(rec, 200);
}

Result<ApiResponse> StorageProvider::Patch(const ApiRequest& req, const ResourceId& id) {
  RETURN_IF_ERROR(api::RequireObjectBody(req));
  if (!IsDisk(id)) return ResourceProvider::Patch(req, id);
  RETURN_IF_ERROR(api::RejectUnknownKeys(req.body, {"tags", "sku", "properties"}, ""));
  RETURN_IF_ERROR(api::RejectUnknownKeys(req.body.value("properties", Json::object()),
                                         {"diskSizeGB"}, "properties"));
  RETURN_IF_ERROR(api::ValidateTags(req.body));
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  return UpdateDisk(req, id, rec, req.body);
}

Result<ApiResponse> StorageProvider::PutSnapshot(const ApiRequest& req, const ResourceId& id) {
  const Json& body = req.body;
  RETURN_IF_ERROR(api::RejectUnknownKeys(body, {"location", "tags", "properties", "id", "name",
                                                "type", "etag", "systemData", "sku"},
                                         ""));
  ASSIGN_OR_RETURN(std::string location, api::ValidateLocation(body, ctx_.region));
  RETURN_IF_ERROR(api::ValidateTags(body));
  auto existing = ctx_.store->Get(id.Key());
  if (existing.ok()) {
    // Snapshots are immutable; only tags change.
    RETURN_IF_ERROR(CheckCreationDataUnchanged(body, existing->body, "a snapshot"));
    ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
    if (!body.contains("tags") || body["tags"] == existing->body.value("tags", Json::object()))
      return api::ResourceResponse(*existing, 200);
    store::Record rec = *existing;
    if (body.contains("tags")) rec.body["tags"] = body["tags"];
    api::TouchSystemData(rec.body, req.caller, ctx_.clock->NowMs());
    ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, api::ConditionFromHeaders(req)));
    return api::ResourceResponse(rec, 200);
  }
  Json props = body.value("properties", Json::object());
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      props, {"creationData", "provisioningState", "diskSizeGB", "diskSizeBytes", "timeCreated",
              "uniqueId", "incremental", "consistency", "allocatedBytes"},
      "properties"));
  Json cd = props.value("creationData", Json::object());
  if (!cd.is_object() || !cd.contains("sourceResourceId"))
    return InvalidArgument("'properties.creationData.sourceResourceId' (a disk id) is required.",
                           "properties.creationData.sourceResourceId", "MissingParameter");
  ASSIGN_OR_RETURN(std::string src, api::GetString(cd, "sourceResourceId"));
  ASSIGN_OR_RETURN(ResourceId disk, ResourceId::Parse(src));
  if (api::TypeKey(disk) != "stratus.storage/disks")
    return InvalidArgument("sourceResourceId '" + src + "' must be a disk.",
                           "properties.creationData.sourceResourceId");
  RETURN_IF_ERROR(disks_->ResolveCopySource(src).status());
  ASSIGN_OR_RETURN(store::Record disk_rec, ctx_.store->Get(disk.Key()));
  std::vector<std::string> keys = {disk.Key()};
  std::string owner = disk_rec.body.value("managedBy", "");
  if (!owner.empty()) keys.push_back(ToLower(owner));
  std::string caller = req.caller;
  Json tags = body.value("tags", Json::object());
  DiskService* disks = disks_;
  ASSIGN_OR_RETURN(std::string op,
                   ctx_.ops->Start(id, "Stratus.Storage/snapshots/write", Json::object(),
                                   [disks, id, location, tags, disk, caller](api::OperationContext&) {
                                     return disks->EnsureSnapshot(id, location, tags, disk, caller)
                                         .status();
                                   },
                                   keys, caller));
  Json shown = api::NewResourceBody(id, location, tags, caller, ctx_.clock->NowMs());
  shown["properties"] = {{"provisioningState", "Creating"}, {"creationData", cd}};
  return api::AcceptedResponse(req, id.subscription(), op, shown, 201);
}

Result<ApiResponse> StorageProvider::Delete(const ApiRequest& req, const ResourceId& id) {
  auto rec = ctx_.store->Get(id.Key());
  if (!rec.ok()) return ApiResponse::NoContent(204);
  std::string if_match = req.Header("if-match");
  if (!if_match.empty() && if_match != "*" && if_match != rec->etag)
    return PreconditionFailed("The ETag '" + if_match + "' does not match the current ETag '" +
                              rec->etag + "'.");
  ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
  if (IsDisk(id)) {
    RETURN_IF_ERROR(disks_->DeleteDisk(id));
  } else {
    RETURN_IF_ERROR(disks_->DeleteSnapshot(id));
  }
  return ApiResponse::NoContent(200);
}

int StorageProvider::DeleteOrder(const std::string& type) const {
  return EqualsIgnoreCase(type, "Stratus.Storage/snapshots") ? 70 : 60;
}

Status StorageProvider::DeleteForGroup(const ResourceId& id, api::OperationContext&) {
  return IsDisk(id) ? disks_->DeleteDisk(id, /*force=*/true) : disks_->DeleteSnapshot(id);
}

Status StorageProvider::Start() {
  // A disk/snapshot create interrupted by a crash: run it again (EnsureDisk is idempotent and
  // restarts the copy from scratch; the half-written temp file is removed).
  DiskService* disks = disks_;
  store::Store* st = ctx_.store;
  ctx_.ops->RegisterRecovery(
      "Stratus.Storage/disks/write",
      [disks, st](const store::OperationRecord& op, api::OperationContext& octx) -> Status {
        auto rec = st->Get(op.resource_key);
        const Json data = op.internal.value("data", Json::object());
        auto id = ResourceId::Parse(op.body.value("resourceId", ""));
        if (data.contains("spec") && id.ok()) {
          // Finish the create: EnsureDisk is idempotent (the file appears only when complete).
          const Json& j = data["spec"];
          DiskSpec spec;
          spec.id = *id;
          spec.location = j.value("location", "");
          spec.tags = j.value("tags", Json::object());
          spec.sku = j.value("sku", "Standard_LRS");
          spec.size_gb = j.value("sizeGB", int64_t{0});
          spec.option = static_cast<CreateOption>(j.value("option", 0));
          spec.source_path = j.value("source", "");
          spec.creation_data = j.value("creationData", Json::object());
          octx.SetProgress(10, "resuming the create after a restart of stratusd");
          return disks->EnsureDisk(spec, op.internal.value("caller", "")).status();
        }
        if (!rec.ok())
          return Internal("Disk creation was interrupted by a restart of stratusd before it "
                          "began. Create it again.");
        std::string path = rec->internal.value("path", "");
        if (rec->body["properties"].value("provisioningState", "") == "Succeeded") return Status::Ok();
        // An operation recorded without its spec: drop the half-made disk; the caller retries.
        disks->engine()->Remove(path);
        st->Delete(op.resource_key);
        return Internal("Disk creation was interrupted by a restart of stratusd; the partial "
                        "disk was removed. Create it again.");
      });
  ctx_.ops->RegisterRecovery(
      "Stratus.Storage/snapshots/write",
      [disks, st](const store::OperationRecord& op, api::OperationContext&) -> Status {
        auto rec = st->Get(op.resource_key);
        if (!rec.ok()) return Status::Ok();
        if (rec->body["properties"].value("provisioningState", "") == "Succeeded") return Status::Ok();
        auto id = ResourceId::Parse(rec->body.value("id", ""));
        if (id.ok()) disks->DeleteSnapshot(*id);
        return Internal("Snapshot creation was interrupted by a restart of stratusd; the partial "
                        "snapshot was removed. Take it again.");
      });
  return Status::Ok();
}

}  // namespace stratus::storage
