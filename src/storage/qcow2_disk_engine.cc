#include "storage/qcow2_disk_engine.h"

#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"

namespace stratus::storage {

Status Qcow2DiskEngine::CreateEmpty(const std::string& path, uint64_t size_bytes) {
  if (PathExists(path)) return Conflict("disk file '" + path + "' already exists", path);
  // Write to a temp name and rename, so a crash never leaves a half-made disk under `path`.
  std::string tmp = path + ".creating";
  RETURN_IF_ERROR(RemoveFile(tmp));
  auto r = RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", "-o",
                       "lazy_refcounts=on,cluster_size=65536", tmp, std::to_string(size_bytes)});
  if (!r.ok()) return r.status();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Internal("rename to '" + path + "' failed");
  return Status::Ok();
}

Status Qcow2DiskEngine::CreateFromSource(const std::string& path, const std::string& source,
                                         uint64_t size_bytes) {
  if (PathExists(path)) return Conflict("disk file '" + path + "' already exists", path);
  if (!PathExists(source)) return NotFound("source image '" + source + "' does not exist", source);
  std::string tmp = path + ".creating";
  RETURN_IF_ERROR(RemoveFile(tmp));
  // convert copies only allocated data and keeps zeroes sparse; -W writes out of order (faster).
  auto r = RunChecked({"qemu-img", "convert", "-q", "-W", "-O", "qcow2", "-o",
                       "lazy_refcounts=on,cluster_size=65536", source, tmp});
  if (!r.ok()) {
    RemoveFile(tmp);
    return r.status();
  }
  ASSIGN_OR_RETURN(DiskUsage u, Usage(tmp));
  if (size_bytes > u.virtual_bytes) {
    auto g = RunChecked({"qemu-img", "resize", "-q", "-f", "qcow2", tmp, std::to_string(size_bytes)});
    if (!g.ok()) {
      RemoveFile(tmp);
      return g.status();
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Internal("rename to '" + path + "' failed");
  return Status::Ok();
}

Status Qcow2DiskEngine::Grow(const std::string& path, uint64_t new_size_bytes) {
  ASSIGN_OR_RETURN(DiskUsage u, Usage(path));
  if (new_size_bytes < u.virtual_bytes)
    return InvalidArgument("a disk can only grow: " + std::to_string(new_size_bytes) + " < " +
                           std::to_string(u.virtual_bytes) + " bytes");
  if (new_size_bytes == u.virtual_bytes) return Status::Ok();
  return RunChecked({"qemu-img", "resize", "-q", "-f", "qcow2", path,
                     std::to_string(new_size_bytes)})
      .status();
}

Result<DiskUsage> Qcow2DiskEngine::Usage(const std::string& path) {
  // -U: read the header even while QEMU holds the image lock.
  ASSIGN_OR_RETURN(std::string out, RunChecked({"qemu-img", "info", "-U", "--output=json", path}));
  auto j = ParseJson(out);
  if (!j.ok()) return Internal("qemu-img info of '" + path + "' printed invalid JSON");
  DiskUsage u;
  u.virtual_bytes = j->value("virtual-size", uint64_t{0});
  u.allocated_bytes = j->value("actual-size", uint64_t{0});
  return u;
}

Status Qcow2DiskEngine::Remove(const std::string& path) {
  RETURN_IF_ERROR(RemoveFile(path + ".creating"));
  return RemoveFile(path);
}

}  // namespace stratus::storage
