#include "compute/image_resources.h"

#include <cstdio>

#include "api/resource_util.h"
#include "compute/image_import.h"
#include "core/fs.h"
#include "core/uuid.h"
#include "storage/image_file.h"

namespace stratus::compute {

using api::ApiRequest;
using api::ApiResponse;
using api::Shape;

namespace {

constexpr const char* kImportOp = "Stratus.Compute/images/write";
const char* const kParts[] = {"disk", "kernel", "initrd"};

// Where an import takes its bytes from: files opened on the host, or the
// uploaded parts in the image's folder.
struct ImportSources {
  std::shared_ptr<HostImportFile> disk, kernel, initrd;
  bool uploaded = false;
};

std::string UploadPath(const std::string& dir, const std::string& part) {
  return JoinPath(dir, part + ".upload");
}

// Converts the disk and places kernel and initrd; the image ends Succeeded or
// Failed.
Status RunImport(store::Store* st, storage::DiskEngine* engine, const ResourceId& id,
                 const ImportSources& src, api::OperationContext& octx) {
  ASSIGN_OR_RETURN(store::Record r, st->Get(id.Key()));
  std::string dir = r.internal.value("dir", "");
  Status s = MakeDirs(dir, 0711);
  storage::ImageFileInfo info;
  // A host file is copied into the image's folder first: what is inspected is what is
  // converted, whatever its owner does to the original meanwhile.
  if (s.ok() && !src.uploaded) {
    octx.SetProgress(2, "copying the file into the image's folder");
    s = src.disk->CopyTo(UploadPath(dir, "disk"));
  }
  if (s.ok()) {
    octx.SetProgress(5, "inspecting the image");
    std::string disk = UploadPath(dir, "disk");
    auto inspected = storage::InspectImageFile(disk, "properties.source");
    s = inspected.status();
    if (s.ok()) {
      info = *inspected;
      octx.SetProgress(10, "converting the image to qcow2");
      std::string final_path = r.internal.value("path", "");
      // The format is the one inspected: the engine never probes an untrusted file.
      s = engine->Remove(final_path);  // a leftover of an import cut short
      if (s.ok()) s = engine->CreateFromSource(final_path, disk, 0, info.format);
    }
  }
  for (auto [part, file] :
       {std::pair<const char*, const HostImportFile*>{"kernel", src.kernel.get()},
        {"initrd", src.initrd.get()}}) {
    std::string dest = r.internal.value(part, "");
    if (!s.ok() || dest.empty()) continue;
    if (src.uploaded) {
      if (std::rename(UploadPath(dir, part).c_str(), dest.c_str()) != 0)
        s = Internal(std::string("placing the uploaded ") + part + " failed");
    } else if (file) {
      s = file->CopyTo(dest);
    }
  }
  for (const char* part : kParts) RemoveFile(UploadPath(dir, part));
  Json& p = r.body["properties"];
  p["provisioningState"] = s.ok() ? "Succeeded" : "Failed";
  if (s.ok()) p["sizeBytes"] = info.virtual_size;
  p.erase("uploadState");
  RETURN_IF_ERROR(st->Put(r).status());
  return s;
}

Status CheckImmutable(const Json& requested, const Json& stored) {
  for (const char* k : {"source", "osType", "kernel", "initrd", "cmdline"}) {
    if (!requested.contains(k)) continue;
    if (!stored.contains(k) || requested[k] != stored[k])
      return Conflict(std::string("Changing property 'properties.") + k +
                          "' of an image is not allowed; create a new image.",
                      std::string("properties.") + k, "PropertyChangeNotAllowed");
  }
  return Status::Ok();
}

}  // namespace

const Shape& ImageResources::BodyShape() {
  static const Shape kImage = Shape::Resource(Shape::Object(
      {{"source",
        Shape::Object({{"filePath", Shape::String()},
                       {"upload", Shape::Object({{"diskSizeBytes", Shape::Integer()},
                                                 {"kernelSizeBytes", Shape::Integer()},
                                                 {"initrdSizeBytes", Shape::Integer()}})}})},
       {"osType", Shape::String()},
       {"kernel", Shape::String()},
       {"initrd", Shape::String()},
       {"cmdline", Shape::String()},
       {"provisioningState", Shape::Any()},
       {"sizeBytes", Shape::Any()},
       {"uploadState", Shape::Any()}}));
  return kImage;
}

Result<ApiResponse> ImageResources::Put(const ApiRequest& req, const ResourceId& id) {
  const Json& body = req.body;
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      body, {"location", "tags", "properties", "id", "name", "type", "etag", "systemData"}, ""));
  ASSIGN_OR_RETURN(std::string location, api::ValidateLocation(body, ctx_.region));
  RETURN_IF_ERROR(api::ValidateTags(body));
  Json p = body.value("properties", Json::object());
  RETURN_IF_ERROR(api::RejectUnknownKeys(p,
                                         {"source", "osType", "kernel", "initrd", "cmdline",
                                          "provisioningState", "sizeBytes", "uploadState"},
                                         "properties"));
  Json src = p.value("source", Json::object());
  RETURN_IF_ERROR(api::RejectUnknownKeys(src, {"filePath", "upload"}, "properties.source"));

  auto existing = ctx_.store->Get(id.Key());
  if (existing.ok()) {
    // An image is what it was made from: only its tags change.
    RETURN_IF_ERROR(CheckImmutable(p, existing->body["properties"]));
    ASSIGN_OR_RETURN(api::ResourceLock lock, ctx_.ops->TryLock({id.Key()}));
    if (!body.contains("tags") || body["tags"] == existing->body.value("tags", Json::object()))
      return api::ResourceResponse(*existing);
    store::Record rec = *existing;
    rec.body["tags"] = body["tags"];
    api::TouchSystemData(rec.body, req.caller, ctx_.clock->NowMs());
    ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, api::ConditionFromHeaders(req)));
    return api::ResourceResponse(rec);
  }

  bool from_file = src.contains("filePath");
  if (from_file == src.contains("upload"))
    return InvalidArgument(
        "'properties.source' needs exactly one of 'filePath' (a file below an "
        "--import-dir of this region) or 'upload' (sizes of the parts to "
        "upload).",
        "properties.source", "MissingParameter");
  ASSIGN_OR_RETURN(std::string os_type, api::GetString(p, "osType", "Linux"));
  if (!EqualsIgnoreCase(os_type, "Linux") && !EqualsIgnoreCase(os_type, "Windows"))
    return InvalidArgument("'properties.osType' must be Linux or Windows.", "properties.osType");
  ASSIGN_OR_RETURN(std::string cmdline, api::GetString(p, "cmdline", ""));
  if (cmdline.size() > 1024)
    return InvalidArgument("'properties.cmdline' is longer than 1024 characters.",
                           "properties.cmdline");

  ImportSources sources;
  Json parts = Json::object();
  uint64_t virtual_size = 0;
  if (from_file) {
    ASSIGN_OR_RETURN(std::string file, api::GetString(src, "filePath"));
    ASSIGN_OR_RETURN(auto disk,
                     HostImportFile::Open(file, options_.import_dirs, options_.max_upload_bytes,
                                          "properties.source.filePath"));
    ASSIGN_OR_RETURN(storage::ImageFileInfo info,
                     storage::InspectImageFile(disk->ProcPath(), "properties.source.filePath"));
    virtual_size = info.virtual_size;
    sources.disk = std::move(disk);
    for (const char* k : {"kernel", "initrd"}) {
      if (!p.contains(k)) continue;
      ASSIGN_OR_RETURN(std::string path, api::GetString(p, k));
      ASSIGN_OR_RETURN(auto f, HostImportFile::Open(path, options_.import_dirs, kMaxKernelBytes,
                                                    std::string("properties.") + k));
      (std::string(k) == "kernel" ? sources.kernel : sources.initrd) = std::move(f);
    }
  } else {
    const Json& up = src["upload"];
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        up, {"diskSizeBytes", "kernelSizeBytes", "initrdSizeBytes"}, "properties.source.upload"));
    for (const char* k : {"kernel", "initrd"})
      if (p.contains(k))
        return InvalidArgument(std::string("With an upload, upload the ") + k +
                                   " too (properties.source.upload." + k + "SizeBytes).",
                               std::string("properties.") + k);
    ASSIGN_OR_RETURN(
        int64_t disk_bytes,
        api::GetInt(up, "diskSizeBytes", 1, static_cast<int64_t>(options_.max_upload_bytes)));
    parts["disk"] = {{"size", disk_bytes}, {"received", false}};
    for (const char* k : {"kernel", "initrd"}) {
      std::string name = std::string(k) + "SizeBytes";
      if (!up.contains(name)) continue;
      ASSIGN_OR_RETURN(int64_t n, api::GetInt(up, name, 1, static_cast<int64_t>(kMaxKernelBytes)));
      parts[k] = {{"size", n}, {"received", false}};
    }
  }

  ASSIGN_OR_RETURN(api::ResourceLock lock, ctx_.ops->TryLock({id.Key()}));
  std::string dir = JoinPath(ctx_.data_dir, "images/" + NewUuid());
  store::Record rec;
  rec.key = id.Key();
  rec.type = api::TypeKey(id);
  rec.body = api::NewResourceBody(id, location, body.value("tags", Json::object()), req.caller,
                                  ctx_.clock->NowMs());
  rec.body["properties"] = {{"provisioningState", "Creating"},
                            {"osType", EqualsIgnoreCase(os_type, "Linux") ? "Linux" : "Windows"},
                            {"source", src},
                            {"cmdline", cmdline},
                            {"sizeBytes", virtual_size}};
  for (const char* k : {"kernel", "initrd"})
    if (p.contains(k)) rec.body["properties"][k] = p[k];
  rec.internal = {{"dir", dir}, {"path", JoinPath(dir, "disk.qcow2")}};
  bool kernel = from_file ? sources.kernel != nullptr : parts.contains("kernel");
  bool initrd = from_file ? sources.initrd != nullptr : parts.contains("initrd");
  if (kernel) rec.internal["kernel"] = JoinPath(dir, "vmlinuz");
  if (initrd) rec.internal["initrd"] = JoinPath(dir, "initrd.img");
  if (!from_file) {
    rec.body["properties"]["uploadState"] = "ReadyToUpload";
    rec.internal["upload"] = parts;
    RETURN_IF_ERROR(MakeDirs(dir, 0711));
  }
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, store::WriteCondition{std::nullopt, true, false}));
  if (!from_file) return api::ResourceResponse(rec, 201);

  store::Store* st = ctx_.store;
  storage::DiskEngine* engine = engine_;
  ASSIGN_OR_RETURN(std::string op, ctx_.ops->StartLocked(
                                       std::move(lock), id, kImportOp, Json::object(),
                                       [st, engine, id, sources](api::OperationContext& octx) {
                                         return RunImport(st, engine, id, sources, octx);
                                       },
                                       req.caller));
  return api::AcceptedResponse(req, id.subscription(), op, api::ToArm(rec), 201);
}

Result<api::ResourceProvider::Upload> ImageResources::BeginUpload(const ApiRequest& req,
                                                                  const ResourceId& id,
                                                                  const std::string& part) {
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  if (rec.body["properties"].value("uploadState", "") != "ReadyToUpload")
    return Conflict("Image '" + id.name() +
                        "' does not expect an upload: it was not created "
                        "with properties.source.upload, or every part has been received.",
                    "upload", "UploadNotExpected");
  const Json& parts = rec.internal["upload"];
  if (!parts.is_object() || !parts.contains(part)) {
    std::string declared;
    if (parts.is_object())
      for (auto& [k, v] : parts.items()) declared += (declared.empty() ? "" : ", ") + k;
    return NotFound("Image '" + id.name() + "' declared no upload part '" + part +
                        "'; it takes: " + declared + ".",
                    part, "UnknownUploadPart");
  }
  if (parts[part].value("received", false))
    return Conflict("Part '" + part + "' of image '" + id.name() + "' was already uploaded.", part,
                    "UploadNotExpected");
  uint64_t size = parts[part].value("size", uint64_t{0});
  std::string cl = req.Header("content-length");
  if (!cl.empty() && cl != std::to_string(size))
    return InvalidArgument("Part '" + part + "' is declared as " + std::to_string(size) +
                               " bytes; the request sends " + cl + ".",
                           "Content-Length", "UploadSizeMismatch");
  ASSIGN_OR_RETURN(api::ResourceLock lock, ctx_.ops->TryLock({id.Key()}));
  std::string dir = rec.internal.value("dir", "");
  ASSIGN_OR_RETURN(uint64_t free, FreeBytes(dir));
  if (free < size + (256ull << 20))
    return Unavailable("The region has " + std::to_string(free) + " bytes free for images; part '" +
                       part + "' needs " + std::to_string(size) + ".");
  ASSIGN_OR_RETURN(auto sink, FileUploadSink::Create(UploadPath(dir, part), size));
  sink->hold = std::make_shared<api::ResourceLock>(std::move(lock));
  return api::ResourceProvider::Upload{sink, size};
}

Result<ApiResponse> ImageResources::FinishUpload(const ApiRequest& req, const ResourceId& id,
                                                 const std::string& part, api::BodySink& sink,
                                                 uint64_t received) {
  auto& file = static_cast<FileUploadSink&>(sink);  // the sink BeginUpload made
  RETURN_IF_ERROR(file.status());
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  uint64_t size = rec.internal["upload"][part].value("size", uint64_t{0});
  if (received != size || file.written() != size)
    return InvalidArgument("Part '" + part + "' is declared as " + std::to_string(size) +
                               " bytes; " + std::to_string(received) + " were received.",
                           "body", "UploadSizeMismatch");
  RETURN_IF_ERROR(file.Commit());
  rec.internal["upload"][part]["received"] = true;
  bool all = true;
  for (auto& [k, v] : rec.internal["upload"].items()) all = all && v.value("received", false);
  if (all) rec.body["properties"]["uploadState"] = "Importing";
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec));
  if (!all) return api::ResourceResponse(rec);
  auto lock = std::static_pointer_cast<api::ResourceLock>(file.hold);
  ImportSources sources;
  sources.uploaded = true;
  store::Store* st = ctx_.store;
  storage::DiskEngine* engine = engine_;
  ASSIGN_OR_RETURN(std::string op, ctx_.ops->StartLocked(
                                       std::move(*lock), id, kImportOp, Json::object(),
                                       [st, engine, id, sources](api::OperationContext& octx) {
                                         return RunImport(st, engine, id, sources, octx);
                                       },
                                       req.caller));
  return api::AcceptedResponse(req, id.subscription(), op, api::ToArm(rec), 202);
}

void ImageResources::RegisterRecovery() {
  store::Store* st = ctx_.store;
  ctx_.ops->RegisterRecovery(
      kImportOp, [st](const store::OperationRecord& op, api::OperationContext&) -> Status {
        auto rec = st->Get(op.resource_key);
        if (!rec.ok()) return Status::Ok();
        if (rec->body["properties"].value("provisioningState", "") == "Succeeded")
          return Status::Ok();
        rec->body["properties"]["provisioningState"] = "Failed";
        rec->body["properties"].erase("uploadState");
        RETURN_IF_ERROR(st->Put(*rec).status());
        return Internal(
            "The image import was interrupted by a restart of "
            "stratusd; delete the "
            "image and create it again.");
      });
}

}  // namespace stratus::compute
