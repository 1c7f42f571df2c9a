#include "storage/disk_service.h"

#include <cstdio>

#include "api/resource_util.h"
#include "core/fs.h"
#include "core/uuid.h"

namespace stratus::storage {

using api::NewResourceBody;
using api::TypeKey;

Status DiskService::ValidateSize(int64_t size_gb) const {
  if (size_gb < 1 || size_gb > kMaxDiskSizeGB)
    return InvalidArgument("diskSizeGB is " + std::to_string(size_gb) + "; it must be from 1 to " +
                               std::to_string(kMaxDiskSizeGB) + ".",
                           "diskSizeGB", "InvalidDiskSize");
  // Thin disks, but never promise more than the host can hold: every disk must fit in the free
  // space of the disk file system on its own.
  auto free_bytes = FreeBytes(ctx_.data_dir);
  if (free_bytes.ok() && static_cast<uint64_t>(size_gb) * kGiB > *free_bytes)
    return InvalidArgument("A disk of " + std::to_string(size_gb) + " GiB is larger than this "
                               "host allows: only " + std::to_string(*free_bytes / kGiB) +
                               " GiB are free for disks.",
                           "diskSizeGB", "DiskTooLarge");
  return Status::Ok();
}

Result<std::pair<std::string, uint64_t>> DiskService::ResolveCopySource(
    const std::string& source_id) const {
  ASSIGN_OR_RETURN(ResourceId sid, ResourceId::Parse(source_id));
  std::string t = TypeKey(sid);
  if (t != "stratus.storage/disks" && t != "stratus.storage/snapshots")
    return InvalidArgument("sourceResourceId '" + source_id + "' must be a disk or a snapshot.",
                           "creationData.sourceResourceId");
  auto rec = ctx_.store->Get(sid.Key());
  if (!rec.ok())
    return NotFound("Source '" + source_id + "' was not found.", "creationData.sourceResourceId");
  std::string path = rec->internal.value("path", "");
  if (rec->body["properties"].value("provisioningState", "") != "Succeeded" || path.empty())
    return Conflict("Source '" + source_id + "' is not ready (provisioningState " +
                        rec->body["properties"].value("provisioningState", "") + ").",
                    "creationData.sourceResourceId");
  uint64_t bytes = rec->body["properties"].value("diskSizeBytes", uint64_t{0});
  return std::make_pair(path, bytes);
}

void DiskService::DecorateDisk(Json& body, const std::string& path) const {
  auto tier = FindDiskTier(body["sku"].value("name", "Standard_LRS"));
  if (tier.ok()) {
    body["properties"]["diskIOPSReadWrite"] = tier->iops;
    body["properties"]["diskMBpsReadWrite"] = tier->mbps;
    body["sku"]["tier"] = tier->tier;
  }
  if (!path.empty() && PathExists(path)) {
    auto u = engine_->Usage(path);
    if (u.ok()) body["properties"]["allocatedBytes"] = u->allocated_bytes;
  }
}

Result<store::Record> DiskService::EnsureDisk(const DiskSpec& spec, const std::string& caller) {
  auto existing = ctx_.store->Get(spec.id.Key());
  store::Record rec;
  if (existing.ok()) {
    rec = *existing;
    if (rec.body["properties"].value("provisioningState", "") == "Succeeded" &&
        PathExists(rec.internal.value("path", "")))
      return rec;
  } else {
    std::string uid = NewUuid();
    rec.key = spec.id.Key();
    rec.type = TypeKey(spec.id);
    rec.body = NewResourceBody(spec.id, spec.location, spec.tags, caller, ctx_.clock->NowMs());
    rec.body["sku"] = {{"name", spec.sku}};
    Json& p = rec.body["properties"];
    p["uniqueId"] = uid;
    p["creationData"] = spec.creation_data;
    p["diskState"] = "Unattached";
    p["provisioningState"] = "Creating";
    p["timeCreated"] = FormatIso8601(ctx_.clock->NowMs());
    rec.internal = {{"path", JoinPath(ctx_.data_dir, "disks/" + uid + ".qcow2")}};
    ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec));
  }
  std::string path = rec.internal.value("path", "");
  RETURN_IF_ERROR(MakeDirs(JoinPath(ctx_.data_dir, "disks"), 0711));
  uint64_t size = static_cast<uint64_t>(spec.size_gb) * kGiB;
  if (!PathExists(path)) {
    Status st;
    if (spec.option == CreateOption::kAdopt) {
      st = PathExists(spec.source_path) && ::rename(spec.source_path.c_str(), path.c_str()) == 0
               ? Status::Ok()
               : NotFound("the restored disk file '" + spec.source_path + "' is missing",
                          spec.source_path);
      if (st.ok() && size > 0) {
        ASSIGN_OR_RETURN(DiskUsage cur, engine_->Usage(path));
        if (size > cur.virtual_bytes) st = engine_->Grow(path, size);
      }
    } else if (spec.option == CreateOption::kEmpty) {
      st = engine_->CreateEmpty(path, size);
    } else {
      st = engine_->CreateFromSource(path, spec.source_path, size, "");
    }
    if (!st.ok()) {
      rec.body["properties"]["provisioningState"] = "Failed";
      ctx_.store->Put(rec);
      return st;
    }
  }
  ASSIGN_OR_RETURN(DiskUsage u, engine_->Usage(path));
  Json& p = rec.body["properties"];
  p["diskSizeBytes"] = u.virtual_bytes;
  p["diskSizeGB"] = (u.virtual_bytes + kGiB - 1) / kGiB;
  p["provisioningState"] = "Succeeded";
  return ctx_.store->Put(rec);
}

Status DiskService::SetAttachment(const ResourceId& disk, const std::string& vm_id, int lun) {
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(disk.Key()));
  Json& p = rec.body["properties"];
  if (vm_id.empty()) {
    p.erase("managedBy");
    rec.body.erase("managedBy");
    p["diskState"] = "Unattached";
  } else {
    rec.body["managedBy"] = vm_id;
    p["diskState"] = "Attached";
  }
  return ctx_.store->Put(rec).status();
}

Result<std::string> DiskService::PathOf(const ResourceId& disk) const {
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(disk.Key()));
  return rec.internal.value("path", "");
}

Status DiskService::DeleteDisk(const ResourceId& disk, bool force) {
  auto rec = ctx_.store->Get(disk.Key());
  if (!rec.ok()) return rec.status();
  std::string owner = rec->body.value("managedBy", "");
  if (!owner.empty() && !force)
    return Conflict("Disk '" + disk.name() + "' is attached to VM '" + owner +
                        "'; detach it or delete the VM first.",
                    disk.ToString(), "DiskAttached");
  RETURN_IF_ERROR(engine_->Remove(rec->internal.value("path", "")));
  Status st = ctx_.store->Delete(disk.Key());
  if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
  return Status::Ok();
}

std::string DiskService::NewSnapshotPath(std::string* unique_id) const {
  *unique_id = NewUuid();
  return JoinPath(ctx_.data_dir, "snapshots/" + *unique_id + ".qcow2");
}

Result<store::Record> DiskService::RecordSnapshot(const ResourceId& snap,
                                                  const std::string& location,
                                                  const ResourceId& source_disk,
                                                  const std::string& path,
                                                  const std::string& consistency,
                                                  const std::string& caller) {
  auto existing = ctx_.store->Get(snap.Key());
  store::Record rec;
  if (existing.ok()) {
    rec = *existing;
  } else {
    rec.key = snap.Key();
    rec.type = TypeKey(snap);
    rec.body = NewResourceBody(snap, location, Json::object(), caller, ctx_.clock->NowMs());
  }
  ASSIGN_OR_RETURN(DiskUsage u, engine_->Usage(path));
  Json& p = rec.body["properties"];
  p["creationData"] = {{"createOption", "Copy"}, {"sourceResourceId", source_disk.ToString()}};
  p["diskSizeBytes"] = u.virtual_bytes;
  p["diskSizeGB"] = (u.virtual_bytes + kGiB - 1) / kGiB;
  p["consistency"] = consistency;
  p["timeCreated"] = FormatIso8601(ctx_.clock->NowMs());
  p["provisioningState"] = "Succeeded";
  p["allocatedBytes"] = u.allocated_bytes;
  rec.internal["path"] = path;
  return ctx_.store->Put(rec);
}

Result<store::Record> DiskService::EnsureSnapshot(const ResourceId& snap,
                                                  const std::string& location, const Json& tags,
                                                  const ResourceId& source_disk,
                                                  const std::string& caller) {
  auto existing = ctx_.store->Get(snap.Key());
  store::Record rec;
  if (existing.ok()) {
    rec = *existing;
    if (rec.body["properties"].value("provisioningState", "") == "Succeeded") return rec;
  } else {
    std::string uid;
    std::string path = NewSnapshotPath(&uid);
    rec.key = snap.Key();
    rec.type = TypeKey(snap);
    rec.body = NewResourceBody(snap, location, tags, caller, ctx_.clock->NowMs());
    rec.body["properties"] = {{"uniqueId", uid},
                              {"provisioningState", "Creating"},
                              {"creationData",
                               {{"createOption", "Copy"},
                                {"sourceResourceId", source_disk.ToString()}}}};
    rec.internal = {{"path", path}};
    ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec));
  }
  std::string path = rec.internal.value("path", "");
  RETURN_IF_ERROR(MakeDirs(JoinPath(ctx_.data_dir, "snapshots"), 0711));
  RETURN_IF_ERROR(RemoveFile(path));  // a copy interrupted by a crash is started again
  ASSIGN_OR_RETURN(store::Record disk, ctx_.store->Get(source_disk.Key()));
  std::string owner = disk.body.value("managedBy", "");
  std::string consistency = "CrashConsistent";
  bool done = false;
  if (!owner.empty() && owners_) {
    auto frozen = owners_->LiveSnapshot(owner, {{source_disk.Key(), path}}, /*quiesce=*/true);
    if (frozen.ok()) {
      done = true;
      if (*frozen) consistency = "FileSystemConsistent";
    } else if (frozen.status().code() != StatusCode::kNotFound) {
      return frozen.status();
    }
  }
  if (!done) {
    // Not in use by a running VM: the file is quiescent, an offline copy is consistent.
    RETURN_IF_ERROR(engine_->CreateFromSource(path, disk.internal.value("path", ""), 0, ""));
    consistency = "FileSystemConsistent";
  }
  return RecordSnapshot(snap, rec.body.value("location", location), source_disk, path,
                        consistency, caller);
}

Status DiskService::DeleteSnapshot(const ResourceId& snap) {
  auto rec = ctx_.store->Get(snap.Key());
  if (!rec.ok()) return rec.status();
  RETURN_IF_ERROR(engine_->Remove(rec->internal.value("path", "")));
  Status st = ctx_.store->Delete(snap.Key());
  if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
  return Status::Ok();
}

Result<store::Record> DiskService::Update(const ResourceId& disk, int64_t new_size_gb,
                                          const std::string& new_sku, const std::string& caller) {
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(disk.Key()));
  std::string path = rec.internal.value("path", "");
  if (new_size_gb > 0) {
    RETURN_IF_ERROR(engine_->Grow(path, static_cast<uint64_t>(new_size_gb) * kGiB));
    ASSIGN_OR_RETURN(DiskUsage u, engine_->Usage(path));
    rec.body["properties"]["diskSizeBytes"] = u.virtual_bytes;
    rec.body["properties"]["diskSizeGB"] = (u.virtual_bytes + kGiB - 1) / kGiB;
  }
  if (!new_sku.empty()) rec.body["sku"]["name"] = new_sku;
  api::TouchSystemData(rec.body, caller, ctx_.clock->NowMs());
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec));
  std::string owner = rec.body.value("managedBy", "");
  if (!new_sku.empty() && !owner.empty() && owners_)
    RETURN_IF_ERROR(owners_->ApplyTier(owner, disk));
  return rec;
}

}  // namespace stratus::storage
