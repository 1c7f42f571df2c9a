#include "storage/qcow2_disk_engine.h"

#include <sys/stat.h>

#include <cstdio>
#include <functional>

#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"

namespace stratus::storage {
namespace {

// Options of every qcow2 this engine writes: 64 KiB clusters, refcounts updated lazily (QEMU
// repairs them after a crash; the image is marked dirty until then).
constexpr const char* kCreateOptions = "lazy_refcounts=on,cluster_size=65536";

// Builds a new disk under `<path>.creating` with `make` and renames it to `path`: `path` holds a
// complete disk or nothing. Files are the owner's only (0600): libvirt hands them to QEMU.
Status BuildAtomically(const std::string& path,
                       const std::function<Status(const std::string&)>& make) {
  if (PathExists(path)) return Conflict("disk file '" + path + "' already exists", path);
  std::string tmp = path + ".creating";
  RETURN_IF_ERROR(RemoveFile(tmp));
  Status st = make(tmp);
  if (st.ok() && ::chmod(tmp.c_str(), 0600) != 0) st = Internal("chmod of '" + tmp + "' failed");
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = Internal("rename to '" + path + "' failed");
  if (!st.ok()) RemoveFile(tmp);
  return st;
}

Result<Json> Info(const std::string& path, const std::string& format) {
  std::vector<std::string> argv = {"qemu-img", "info", "-U", "--output=json"};
  if (!format.empty()) argv.insert(argv.end(), {"-f", format});
  argv.push_back(path);
  // -U: read the header even while QEMU holds the image lock.
  ASSIGN_OR_RETURN(std::string out, RunChecked(argv));
  auto j = ParseJson(out);
  if (!j.ok() || !j->is_object())
    return Internal("qemu-img info of '" + path + "' printed invalid JSON");
  return std::move(j).value();
}

std::vector<DiskBitmap> BitmapsOf(const Json& info) {
  std::vector<DiskBitmap> list;
  const Json* bitmaps = JsonPath(info, "format-specific.data.bitmaps");
  if (bitmaps == nullptr || !bitmaps->is_array()) return list;
  for (const auto& b : *bitmaps) {
    DiskBitmap bi;
    bi.name = b.value("name", "");
    bi.granularity = b.value("granularity", uint64_t{0});
    if (b.contains("flags") && b["flags"].is_array()) {
      for (const auto& f : b["flags"]) {
        if (f == "in-use") bi.in_use = true;
        if (f == "auto") bi.enabled = true;
      }
    }
    list.push_back(bi);
  }
  return list;
}

}  // namespace

Status Qcow2DiskEngine::CreateEmpty(const std::string& path, uint64_t size_bytes) {
  return BuildAtomically(path, [&](const std::string& tmp) {
    return RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", "-o", kCreateOptions, tmp,
                       std::to_string(size_bytes)})
        .status();
  });
}

Status Qcow2DiskEngine::CreateFromSource(const std::string& path, const std::string& source,
                                         uint64_t size_bytes, const std::string& source_format) {
  if (PathExists(path)) return Conflict("disk file '" + path + "' already exists", path);
  if (!PathExists(source)) return NotFound("source image '" + source + "' does not exist", source);
  return BuildAtomically(path, [&](const std::string& tmp) -> Status {
    // convert copies only allocated data and keeps zeroes sparse; -W writes out of order.
    // -U is not given: a shared lock on the source makes a concurrent start of a VM on it fail
    // rather than change the disk under the copy.
    std::vector<std::string> argv = {"qemu-img", "convert", "-q", "-W"};
    if (!source_format.empty()) argv.insert(argv.end(), {"-f", source_format});
    argv.insert(argv.end(), {"-O", "qcow2", "-o", kCreateOptions, source, tmp});
    RETURN_IF_ERROR(RunChecked(argv).status());
    ASSIGN_OR_RETURN(DiskUsage u, Usage(tmp));
    if (size_bytes <= u.virtual_bytes) return Status::Ok();
    return RunChecked({"qemu-img", "resize", "-q", "-f", "qcow2", tmp, std::to_string(size_bytes)})
        .status();
  });
}

Status Qcow2DiskEngine::CreateOverNbd(const std::string& path, const std::string& nbd_socket,
                                      uint64_t size_bytes) {
  Json backing = {
      {"driver", "raw"},
      {"file", {{"driver", "nbd"}, {"server", {{"type", "unix"}, {"path", nbd_socket}}}}}};
  return BuildAtomically(path, [&](const std::string& tmp) {
    return RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "json:" + backing.dump(),
                       "-F", "raw", tmp, std::to_string(size_bytes)})
        .status();
  });
}

Status Qcow2DiskEngine::Grow(const std::string& path, uint64_t new_size_bytes) {
  ASSIGN_OR_RETURN(DiskUsage u, Usage(path));
  if (new_size_bytes < u.virtual_bytes)
    return InvalidArgument("a disk can only grow: " + std::to_string(new_size_bytes) + " < " +
                           std::to_string(u.virtual_bytes) + " bytes");
  if (new_size_bytes == u.virtual_bytes) return Status::Ok();
  return RunChecked(
             {"qemu-img", "resize", "-q", "-f", "qcow2", path, std::to_string(new_size_bytes)})
      .status();
}

Result<DiskUsage> Qcow2DiskEngine::Usage(const std::string& path) {
  ASSIGN_OR_RETURN(DiskInfo info, Inspect(path));
  return DiskUsage{info.virtual_bytes, info.allocated_bytes};
}

Result<DiskInfo> Qcow2DiskEngine::Inspect(const std::string& path) {
  if (!PathExists(path)) return NotFound("disk file '" + path + "' does not exist", path);
  ASSIGN_OR_RETURN(Json j, Info(path, ""));
  DiskInfo info;
  info.format = j.value("format", "");
  info.virtual_bytes = j.value("virtual-size", uint64_t{0});
  info.allocated_bytes = j.value("actual-size", uint64_t{0});
  info.backing = j.value("backing-filename", "");
  info.bitmaps = BitmapsOf(j);
  return info;
}

Status Qcow2DiskEngine::Remove(const std::string& path) {
  RETURN_IF_ERROR(RemoveFile(path + ".creating"));
  return RemoveFile(path);
}

Result<std::vector<DiskBitmap>> Qcow2DiskEngine::ListBitmaps(const std::string& path) {
  if (!PathExists(path)) return NotFound("disk file '" + path + "' does not exist", path);
  ASSIGN_OR_RETURN(Json j, Info(path, "qcow2"));
  return BitmapsOf(j);
}

Status Qcow2DiskEngine::AddBitmap(const std::string& path, const std::string& name) {
  if (name.empty() || name.size() > 1023)
    return InvalidArgument("a qcow2 bitmap name has 1 to 1023 bytes", name);
  ASSIGN_OR_RETURN(auto list, ListBitmaps(path));
  for (const auto& b : list)
    if (b.name == name)
      return Conflict("bitmap '" + name + "' already exists in '" + path + "'", name);
  return RunChecked({"qemu-img", "bitmap", "--add", "-f", "qcow2", path, name}).status();
}

Status Qcow2DiskEngine::RemoveBitmap(const std::string& path, const std::string& name) {
  Status st = RunChecked({"qemu-img", "bitmap", "--remove", "-f", "qcow2", path, name}).status();
  if (st.ok()) return st;
  // Why it failed: a missing disk or bitmap is NotFound, anything else (a lock) stays Internal.
  ASSIGN_OR_RETURN(auto list, ListBitmaps(path));
  for (const auto& b : list)
    if (b.name == name) return st;
  return NotFound("disk '" + path + "' has no bitmap '" + name + "'", name);
}

}  // namespace stratus::storage
