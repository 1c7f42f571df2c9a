#include "compute/compute_provider.h"

#include <algorithm>
#include <fstream>
#include <set>

#include "api/resource_util.h"
#include "core/fs.h"

namespace stratus::compute {

using api::ApiRequest;
using api::ApiResponse;
using api::OperationContext;

namespace {

bool IsVm(const ResourceId& id) {
  return EqualsIgnoreCase(id.types_and_names()[0].first, "virtualMachines");
}

std::string Timestamp(int64_t ms) {
  std::string iso = FormatIso8601(ms);  // 2026-11-22T10:00:00.123Z
  std::string out;
  for (char c : iso.substr(0, 19))
    if (std::isdigit(static_cast<unsigned char>(c))) out.push_back(c);
  return out;
}

}  // namespace

ComputeProvider::ComputeProvider(api::RegionContext ctx, VmService* vms,
                                 storage::DiskService* disks, ImageCatalog* images,
                                 ImageImportOptions image_import)
    : ResourceProvider(std::move(ctx)),
      vms_(vms),
      disks_(disks),
      images_(images),
      image_resources_(
          std::make_unique<ImageResources>(ctx_, disks->engine(), std::move(image_import))) {}

Status ComputeProvider::Start() {
  image_resources_->RegisterRecovery();
  return vms_->Start();
}

// ---------------------------------------------------------------------------------------------
// Validation

const api::Shape* ComputeProvider::BodyShape(const ResourceId& id, const std::string& method,
                                             const std::string& action) const {
  using api::Shape;
  static const Shape kManagedDisk =
      Shape::Object({{"id", Shape::String()}, {"storageAccountType", Shape::String()}});
  static const Shape kVm = Shape::Resource(Shape::Object(
      {{"hardwareProfile", Shape::Object({{"vmSize", Shape::String()}})},
       {"storageProfile",
        Shape::Object(
            {{"imageReference", Shape::Object({{"id", Shape::String()}})},
             {"osDisk", Shape::Object({{"name", Shape::String()},
                                       {"diskSizeGB", Shape::Integer()},
                                       {"sku", Shape::String()},
                                       {"deleteOption", Shape::String()},
                                       {"createOption", Shape::String()},
                                       {"managedDisk", kManagedDisk},
                                       {"osType", Shape::String()}})},
             {"dataDisks", Shape::ArrayOf(Shape::Object({{"lun", Shape::Integer()},
                                                         {"name", Shape::String()},
                                                         {"createOption", Shape::String()},
                                                         {"diskSizeGB", Shape::Integer()},
                                                         {"sku", Shape::String()},
                                                         {"managedDisk", kManagedDisk},
                                                         {"deleteOption", Shape::String()},
                                                         {"caching", Shape::String()}}))}})},
       {"osProfile", Shape::Object({{"computerName", Shape::String()},
                                    {"customData", Shape::String()},
                                    {"adminUsername", Shape::String()}})},
       {"networkProfile", Shape::Any()},
       {"vmId", Shape::Any()},
       {"provisioningState", Shape::Any()},
       {"instanceView", Shape::Any()},
       {"timeCreated", Shape::Any()}}));
  static const Shape kResize = Shape::Object({{"vmSize", Shape::String()}});
  static const Shape kAttachDetach = Shape::Object(
      {{"dataDisksToAttach", Shape::ArrayOf(Shape::Object({{"diskId", Shape::String()},
                                                           {"lun", Shape::Integer()},
                                                           {"deleteOption", Shape::String()}}))},
       {"dataDisksToDetach", Shape::ArrayOf(Shape::Object({{"diskId", Shape::String()}}))}});
  static const Shape kSnapshots =
      Shape::Object({{"snapshotNamePrefix", Shape::String()}, {"quiesce", Shape::Boolean()}});
  static const Shape kActionBody = Shape::Object({});
  bool vm = IsVm(id);
  if (method == "PUT") return vm ? &kVm : &ImageResources::BodyShape();
  if (method == "PATCH") return vm ? &kVm : ResourceProvider::BodyShape(id, method, action);
  if (method != "POST" || !vm) return nullptr;
  std::string a = ToLower(action);
  if (a == "resize") return &kResize;
  if (a == "attachdetachdatadisks") return &kAttachDetach;
  if (a == "capturesnapshots") return &kSnapshots;
  return &kActionBody;  // start, powerOff, ...: an object (its members are not read)
}

// ---------------------------------------------------------------------------------------------
// PUT / GET / PATCH / DELETE

Result<ApiResponse> ComputeProvider::Put(const ApiRequest& req, const ResourceId& id) {
  return IsVm(id) ? PutVm(req, id) : image_resources_->Put(req, id);
}

Result<ApiResponse> ComputeProvider::PutVm(const ApiRequest& req, const ResourceId& id) {
  ASSIGN_OR_RETURN(VmService::WriteResult w,
                   vms_->Apply(id, req.body, req.caller, api::ConditionFromHeaders(req)));
  if (w.operation.empty()) return api::ResourceResponse(w.record);
  ApiResponse resp = api::AcceptedResponse(req, id.subscription(), w.operation,
                                           api::ToArm(w.record), w.created ? 201 : 200);
  resp.headers["ETag"] = w.record.etag;
  return resp;
}

Result<ApiResponse> ComputeProvider::Get(const ApiRequest& req, const ResourceId& id) {
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  if (IsVm(id) && EqualsIgnoreCase(req.Query("$expand"), "instanceView"))
    rec.body["properties"]["instanceView"] = vms_->InstanceView(rec);
  return api::ResourceResponse(rec);
}

void ComputeProvider::DecorateListItem(const ApiRequest& req, const store::Record& rec,
                                       Json& item) {
  if (rec.type == "stratus.compute/virtualmachines" &&
      EqualsIgnoreCase(req.Query("$expand"), "instanceView"))
    item["properties"]["instanceView"] = vms_->InstanceView(rec);
}

Result<ApiResponse> ComputeProvider::GetSub(const ApiRequest& req, const ResourceId& id,
                                            const std::string& sub) {
  if (!IsVm(id) || !EqualsIgnoreCase(sub, "instanceView"))
    return ResourceProvider::GetSub(req, id, sub);
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  return ApiResponse::Json200(vms_->InstanceView(rec));
}

Result<ApiResponse> ComputeProvider::Patch(const ApiRequest& req, const ResourceId& id) {
  RETURN_IF_ERROR(api::RequireObjectBody(req));
  if (!IsVm(id) || !req.body.contains("properties")) return ResourceProvider::Patch(req, id);
  // PATCH of properties: merge into the current model and treat as a PUT.
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  Json merged = {{"location", rec.body["location"]},
                 {"tags", req.body.value("tags", rec.body["tags"])},
                 {"properties", rec.body["properties"]}};
  merged["properties"].merge_patch(req.body["properties"]);
  for (auto k : {"vmId", "provisioningState", "timeCreated", "instanceView"})
    merged["properties"].erase(k);
  // Existing data disks are re-submitted as Attach-by-id of themselves.
  ApiRequest put = req;
  put.body = merged;
  return PutVm(put, id);
}

Result<ApiResponse> ComputeProvider::Delete(const ApiRequest& req, const ResourceId& id) {
  auto rec = ctx_.store->Get(id.Key());
  if (!rec.ok()) return ApiResponse::NoContent(204);
  std::string if_match = req.Header("if-match");
  if (!if_match.empty() && if_match != "*" && if_match != rec->etag)
    return PreconditionFailed("The ETag '" + if_match + "' does not match the current ETag '" +
                              rec->etag + "'.");
  if (!IsVm(id)) {
    // Images: refuse while a disk is being created from it? Disks are independent copies.
    ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
    RETURN_IF_ERROR(disks_->engine()->Remove(rec->internal.value("path", "")));
    // The rest of the image's folder: kernel, initrd, parts of an upload cut short.
    std::string dir = rec->internal.value("dir", "");
    if (!dir.empty()) RETURN_IF_ERROR(RemoveTree(dir));
    RETURN_IF_ERROR(ctx_.store->Delete(id.Key()));
    return ApiResponse::NoContent(200);
  }
  std::string dd = ToLower(req.Query("deletedisks"));
  if (!dd.empty() && dd != "true" && dd != "false")
    return InvalidArgument("deleteDisks must be true or false.", "deleteDisks");
  int delete_disks = dd.empty() ? -1 : (dd == "true" ? 1 : 0);
  ASSIGN_OR_RETURN(std::string op, vms_->Delete(id, delete_disks, req.caller));
  return api::AcceptedResponse(req, id.subscription(), op);
}

// ---------------------------------------------------------------------------------------------
// Actions

Result<ApiResponse> ComputeProvider::Post(const ApiRequest& req, const ResourceId& id,
                                          const std::string& action) {
  if (!IsVm(id)) return ResourceProvider::Post(req, id, action);
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  Json params = req.body.is_object() ? req.body : Json::object();
  std::string a = ToLower(action);
  if (a == "retrieveconsolelog") {
    std::string tail_s = req.Query("tail", "65536");
    char* end = nullptr;
    long tail = std::strtol(tail_s.c_str(), &end, 10);
    if (*end != '\0' || tail < 1 || tail > (1 << 20))
      return InvalidArgument("tail must be from 1 to 1048576 bytes.", "tail");
    std::string content;
    std::ifstream in(rec.internal.value("consoleLog", ""), std::ios::binary);
    if (in) {
      in.seekg(0, std::ios::end);
      std::streamoff size = in.tellg();
      std::streamoff from = std::max<std::streamoff>(0, size - tail);
      in.seekg(from);
      content.resize(static_cast<size_t>(size - from));
      in.read(content.data(), static_cast<std::streamsize>(content.size()));
    }
    // The console may carry arbitrary bytes; keep the JSON valid UTF-8.
    for (char& c : content)
      if (static_cast<unsigned char>(c) >= 0x80) c = '?';
    return ApiResponse::Json200({{"content", content}});
  }
  std::string state = rec.body["properties"].value("provisioningState", "");
  if (state == "Creating" || state == "Deleting")
    return Conflict("VM '" + id.name() + "' is " + state + ".", id.ToString(),
                    "OperationNotAllowed");
  if (a == "start" || a == "poweroff" || a == "deallocate" || a == "restart")
    return StartVmOperation(req, id, a, params);
  if (a == "resize") {
    RETURN_IF_ERROR(api::RejectUnknownKeys(params, {"vmSize"}, ""));
    ASSIGN_OR_RETURN(std::string size, api::GetString(params, "vmSize"));
    ASSIGN_OR_RETURN(VmSize vs, FindVmSize(size));
    int ndisks = static_cast<int>(rec.body["properties"]["storageProfile"]["dataDisks"].size());
    if (ndisks > vs.max_data_disks)
      return InvalidArgument("The VM has " + std::to_string(ndisks) + " data disks; size '" +
                                 vs.name + "' allows " + std::to_string(vs.max_data_disks) + ".",
                             "vmSize", "TooManyDataDisks");
    if (vms_->PowerState(rec) == "running")
      return Conflict("VM '" + id.name() + "' must be stopped or deallocated to be resized.",
                      "vmSize", "OperationNotAllowed");
    return StartVmOperation(req, id, a, {{"vmSize", vs.name}});
  }
  if (a == "attachdetachdatadisks") {
    RETURN_IF_ERROR(api::RejectUnknownKeys(params, {"dataDisksToAttach", "dataDisksToDetach"}, ""));
    // Build the new dataDisks list and validate it exactly as a PUT would.
    Json dds = rec.body["properties"]["storageProfile"]["dataDisks"];
    std::vector<std::string> extra;
    for (auto& d : params.value("dataDisksToDetach", Json::array())) {
      std::string did = d.value("diskId", "");
      auto before = dds.size();
      Json kept = Json::array();
      for (auto& x : dds)
        if (!EqualsIgnoreCase(x["managedDisk"].value("id", ""), did)) kept.push_back(x);
      if (kept.size() == before)
        return InvalidArgument("Disk '" + did + "' is not attached to VM '" + id.name() + "'.",
                               "dataDisksToDetach");
      dds = kept;
    }
    for (auto& d : params.value("dataDisksToAttach", Json::array())) {
      std::string did = d.value("diskId", "");
      int lun = d.value("lun", -1);
      if (lun < 0) {
        std::set<int> used;
        for (auto& x : dds) used.insert(x.value("lun", 0));
        lun = 0;
        while (used.count(lun)) ++lun;
      }
      dds.push_back({{"lun", lun},
                     {"createOption", "Attach"},
                     {"deleteOption", d.value("deleteOption", "Detach")},
                     {"managedDisk", {{"id", did}}}});
    }
    ApiRequest put = req;
    put.body = {{"location", rec.body["location"]},
                {"tags", rec.body["tags"]},
                {"properties", rec.body["properties"]}};
    for (auto k : {"vmId", "provisioningState", "timeCreated", "instanceView"})
      put.body["properties"].erase(k);
    for (auto& x : dds)
      if (x.contains("name") && x.value("createOption", "") == "Empty") x["createOption"] = "Empty";
    put.body["properties"]["storageProfile"]["dataDisks"] = dds;
    ASSIGN_OR_RETURN(ApiResponse resp, PutVm(put, id));
    // An action is a long-running operation: 202 with the operation to poll (the VM body rides
    // along so the caller sees the new dataDisks at once).
    if (resp.headers.count("Azure-AsyncOperation")) resp.status = 202;
    return resp;
  }
  if (a == "capturesnapshots") {
    RETURN_IF_ERROR(api::RejectUnknownKeys(params, {"snapshotNamePrefix", "quiesce"}, ""));
    std::string prefix =
        params.value("snapshotNamePrefix", id.name() + "-" + Timestamp(ctx_.clock->NowMs()));
    RETURN_IF_ERROR(ValidateResourceName(prefix, "snapshot prefix", 60));
    std::vector<std::string> keys;
    const Json& sp = rec.body["properties"]["storageProfile"];
    std::vector<std::string> names = {sp["osDisk"].value("name", "")};
    keys.push_back(ToLower(sp["osDisk"]["managedDisk"].value("id", "")));
    for (auto& d : sp["dataDisks"]) {
      keys.push_back(ToLower(d["managedDisk"].value("id", "")));
      names.push_back(d.value("name", ""));
    }
    for (auto& n : names) {
      ResourceId sid = ResourceId::Resource(id.subscription(), id.resource_group(),
                                            "Stratus.Storage", "snapshots", prefix + "-" + n);
      RETURN_IF_ERROR(ValidateResourceName(sid.name(), "snapshot", 80));
      if (ctx_.store->Get(sid.Key()).ok())
        return Conflict("Snapshot '" + sid.name() + "' already exists.", "snapshotNamePrefix",
                        "SnapshotExists");
    }
    Json p = {{"snapshotNamePrefix", prefix}, {"quiesce", params.value("quiesce", true)}};
    return StartVmOperation(req, id, a, p, keys);
  }
  return ResourceProvider::Post(req, id, action);
}

Result<ApiResponse> ComputeProvider::StartVmOperation(const ApiRequest& req, const ResourceId& id,
                                                      const std::string& action, Json params,
                                                      std::vector<std::string> extra_keys) {
  ASSIGN_OR_RETURN(std::string op, vms_->StartAction(id, action, std::move(params), req.caller,
                                                     std::move(extra_keys)));
  return api::AcceptedResponse(req, id.subscription(), op);
}

// ---------------------------------------------------------------------------------------------
// Images and subscription-level reads

Result<api::ResourceProvider::Upload> ComputeProvider::BeginUpload(const ApiRequest& req,
                                                                   const ResourceId& id,
                                                                   const std::string& part) {
  if (IsVm(id)) return ResourceProvider::BeginUpload(req, id, part);
  return image_resources_->BeginUpload(req, id, part);
}

Result<ApiResponse> ComputeProvider::FinishUpload(const ApiRequest& req, const ResourceId& id,
                                                  const std::string& part, api::BodySink& sink,
                                                  uint64_t received) {
  if (IsVm(id)) return ResourceProvider::FinishUpload(req, id, part, sink, received);
  return image_resources_->FinishUpload(req, id, part, sink, received);
}

Result<ApiResponse> ComputeProvider::SubscriptionGet(const ApiRequest& req, const std::string& sub,
                                                     const std::vector<std::string>& rest) {
  if (rest.size() == 3 && EqualsIgnoreCase(rest[0], "locations") &&
      EqualsIgnoreCase(rest[2], "vmSizes")) {
    if (!EqualsIgnoreCase(rest[1], ctx_.region))
      return NotFound(
          "Location '" + rest[1] + "' is not served here (region '" + ctx_.region + "').",
          "location", "LocationNotFound");
    Json v = Json::array();
    for (auto& s : VmSizes()) v.push_back(VmSizeJson(s));
    return ApiResponse::Json200({{"value", v}});
  }
  if (rest.size() == 1 && EqualsIgnoreCase(rest[0], "platformImages")) {
    Json v = Json::array();
    for (auto& img : images_->PlatformImages()) v.push_back(ImageCatalog::ToJson(img));
    return ApiResponse::Json200({{"value", v}});
  }
  return ResourceProvider::SubscriptionGet(req, sub, rest);
}

int ComputeProvider::DeleteOrder(const std::string& type) const {
  return EqualsIgnoreCase(type, "Stratus.Compute/virtualMachines") ? 10 : 80;
}

Status ComputeProvider::DeleteForGroup(const ResourceId& id, OperationContext& ctx) {
  if (IsVm(id)) return vms_->DeleteNow(id);
  auto rec = ctx_.store->Get(id.Key());
  if (!rec.ok()) return Status::Ok();
  RemoveTree(rec->internal.value("dir", ""));
  return ctx_.store->Delete(id.Key());
}

}  // namespace stratus::compute
