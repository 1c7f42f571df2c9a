#include "recovery/datapath/restore_disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/clock.h"
#include "core/fs.h"
#include "core/uuid.h"
#include "recovery/datapath/qemu_nbd_export.h"
#include "recovery/vault/parallel.h"
#include "storage/qcow2_disk_engine.h"

namespace stratus::recovery::datapath {
namespace {

using vault::ByteBuffer;
using vault::DiskIndex;

constexpr uint32_t kZeroBlock = 64u << 10;  // sparse granularity inside a chunk

// Writes `len` bytes at `offset` for worker `w`.
using WriteFn = std::function<Status(int w, uint64_t offset, const uint8_t* data, size_t len)>;
// Writes zeroes (only when the target is not blank).
using ZeroFn = std::function<Status(int w, uint64_t offset, uint64_t len)>;

Result<const DiskIndex*> FindDisk(const vault::RecoveryPoint& point, const std::string& disk) {
  const DiskIndex* d = point.FindDisk(disk);
  if (d == nullptr) {
    std::string names;
    for (const auto& x : point.disks) names += (names.empty() ? "" : ", ") + x.name;
    return NotFound("recovery point '" + point.point_id + "' has no disk '" + disk +
                        "' (it has: " + names + ")",
                    disk, "DiskNotFound");
  }
  return d;
}

Result<RestoreStats> RestoreChunks(vault::Vault& vault, const vault::RecoveryPoint& point,
                                   const DiskIndex& disk, const WriteFn& write,
                                   const ZeroFn& zero, int threads,
                                   const RestoreOptions& options) {
  int64_t t0 = SystemClock::Default()->MonotonicMs();
  RestoreStats stats;
  stats.disk_size = disk.size;
  std::vector<uint64_t> work;
  uint64_t total = 0;
  for (uint64_t i = 0; i < disk.chunks.size(); ++i) {
    if (!disk.chunks[i].is_hole() || zero) {
      work.push_back(i);
      total += disk.SlotLength(i);
    }
  }
  std::atomic<uint64_t> done{0}, restored{0}, chunks{0};
  RETURN_IF_ERROR(vault::ParallelFor(work.size(), threads, [&](size_t k, int w) -> Status {
    uint64_t slot = work[k];
    uint64_t offset = disk.SlotOffset(slot);
    uint32_t len = disk.SlotLength(slot);
    const vault::ChunkId& id = disk.chunks[slot];
    if (id.is_hole()) {
      RETURN_IF_ERROR(zero(w, offset, len));
    } else {
      thread_local ByteBuffer plain;
      Status st = vault.ReadChunk(id, &plain, options.id_check);
      if (st.ok() && plain.size() != len) {
        st = Status(StatusCode::kInternal, "ChunkCorrupt",
                    "chunk " + id.Hex() + " holds " + std::to_string(plain.size()) +
                        " bytes where the slot needs " + std::to_string(len));
      }
      if (!st.ok()) {
        return Status(st.code(), st.arm_code(),
                      "recovery point '" + point.point_id + "', disk '" + disk.name +
                          "', offset " + std::to_string(offset) + ": " + st.message() +
                          "; restore refused",
                      point.point_id + "/" + disk.name + "@" + std::to_string(offset));
      }
      // Write runs of non-zero 64 KiB blocks; zero blocks stay holes (or are zeroed).
      const uint8_t* p = plain.data();
      uint32_t pos = 0;
      while (pos < len) {
        uint32_t n = std::min(kZeroBlock, len - pos);
        bool is_zero = vault::IsAllZero(p + pos, n);
        uint32_t end = pos + n;
        while (end < len) {
          uint32_t m = std::min(kZeroBlock, len - end);
          if (vault::IsAllZero(p + end, m) != is_zero) break;
          end += m;
        }
        if (!is_zero) {
          RETURN_IF_ERROR(write(w, offset + pos, p + pos, end - pos));
        } else if (zero) {
          RETURN_IF_ERROR(zero(w, offset + pos, end - pos));
        }
        pos = end;
      }
      restored += len;
      ++chunks;
    }
    uint64_t d = done += len;
    if (options.progress) options.progress(d, total);
    return Status::Ok();
  }));
  stats.bytes_restored = restored;
  stats.chunks_read = chunks;
  stats.duration_ms = SystemClock::Default()->MonotonicMs() - t0;
  return stats;
}

Status Errno(const std::string& what, const std::string& path) {
  return Internal(what + " '" + path + "' failed: " + std::strerror(errno));
}

// Removes a partial restore unless disarmed.
struct TempFileGuard {
  std::string path;
  ~TempFileGuard() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

Status FsyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("fsync", path);
  return Status::Ok();
}

std::string DirOf(const std::string& path) {
  std::string d = std::filesystem::path(path).parent_path().string();
  return d.empty() ? "." : d;
}

}  // namespace

Result<DiskFormat> ParseDiskFormat(const std::string& name) {
  if (name == "raw") return DiskFormat::kRaw;
  if (name == "qcow2") return DiskFormat::kQcow2;
  return InvalidArgument("disk format '" + name + "' must be 'raw' or 'qcow2'", "format");
}

Result<RestoreStats> RestoreDiskToNbd(vault::Vault& vault, const vault::RecoveryPoint& point,
                                      const std::string& disk_name, NbdSource& target,
                                      bool zero_holes, const RestoreOptions& options) {
  ASSIGN_OR_RETURN(const DiskIndex* disk, FindDisk(point, disk_name));
  if (target.read_only())
    return InvalidArgument("NBD export '" + target.address() + "' is read-only");
  if (target.size() < disk->size) {
    return InvalidArgument("NBD export '" + target.address() + "' has " +
                           std::to_string(target.size()) + " bytes; disk '" + disk_name +
                           "' needs " + std::to_string(disk->size));
  }
  int threads = options.threads > 0 ? options.threads : vault::DefaultThreads();
  threads = std::min(threads, target.connections());
  WriteFn write = [&](int w, uint64_t off, const uint8_t* p, size_t n) {
    return target.Write(w, off, p, n);
  };
  ZeroFn zero;
  if (zero_holes) zero = [&](int w, uint64_t off, uint64_t n) { return target.Zero(w, off, n); };
  ASSIGN_OR_RETURN(RestoreStats stats,
                   RestoreChunks(vault, point, *disk, write, zero, threads, options));
  RETURN_IF_ERROR(target.Flush());
  return stats;
}

Result<RestoreStats> RestoreDisk(vault::Vault& vault, const vault::RecoveryPoint& point,
                                 const std::string& disk_name, const std::string& dest,
                                 const RestoreOptions& options) {
  int64_t t0 = SystemClock::Default()->MonotonicMs();
  ASSIGN_OR_RETURN(const DiskIndex* disk, FindDisk(point, disk_name));
  if (dest.empty()) return InvalidArgument("restore destination is empty", "dest");
  if (PathExists(dest) && !options.overwrite)
    return Conflict("restore destination '" + dest + "' already exists", dest, "DiskExists");
  if (!PathExists(DirOf(dest)))
    return NotFound("directory of restore destination '" + dest + "' does not exist", dest);
  TempFileGuard tmp{dest + ".restoring-" + RandomHex(4)};
  int threads = options.threads > 0 ? options.threads : vault::DefaultThreads();
  RestoreStats stats;

  if (options.format == DiskFormat::kRaw) {
    int fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Errno("create", tmp.path);
    Status st;
    if (::ftruncate(fd, static_cast<off_t>(disk->size)) != 0) st = Errno("truncate", tmp.path);
    if (st.ok()) {
      WriteFn write = [&](int, uint64_t off, const uint8_t* p, size_t n) -> Status {
        uint64_t start = off, len = n;
        while (n > 0) {
          ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) return Errno("write", tmp.path);
          p += w;
          off += static_cast<uint64_t>(w);
          n -= static_cast<size_t>(w);
        }
        // Start writeback at once (no wait): the final fsync then has little left to do.
        ::sync_file_range(fd, static_cast<off_t>(start), static_cast<off_t>(len),
                          SYNC_FILE_RANGE_WRITE);
        return Status::Ok();
      };
      auto r = RestoreChunks(vault, point, *disk, write, nullptr, threads, options);
      if (r.ok()) {
        stats = *r;
      } else {
        st = r.status();
      }
    }
    if (st.ok() && ::fsync(fd) != 0) st = Errno("fsync", tmp.path);
    ::close(fd);
    RETURN_IF_ERROR(st);
  } else {
    // A qcow2 file: made by the qcow2 disk engine, written through qemu-nbd.
    RETURN_IF_ERROR(storage::Qcow2DiskEngine().CreateEmpty(tmp.path, disk->size));
    {
      QemuNbdOptions qo;
      qo.image = tmp.path;
      qo.read_only = false;
      qo.shared = threads;
      ASSIGN_OR_RETURN(auto exp, QemuNbdExport::Start(qo));
      NbdSource::Options so;
      so.address = exp->uri();
      so.connections = threads;
      so.meta_contexts = {};
      so.need_writable = true;
      ASSIGN_OR_RETURN(auto target, NbdSource::Connect(so));
      ASSIGN_OR_RETURN(stats, RestoreDiskToNbd(vault, point, disk_name, *target, false, options));
      target.reset();
      RETURN_IF_ERROR(exp->Stop());
    }
    RETURN_IF_ERROR(FsyncFile(tmp.path));
  }
  if (::rename(tmp.path.c_str(), dest.c_str()) != 0) return Errno("rename to", dest);
  tmp.path.clear();
  RETURN_IF_ERROR(FsyncDir(DirOf(dest)));
  stats.duration_ms = SystemClock::Default()->MonotonicMs() - t0;
  return stats;
}

}  // namespace stratus::recovery::datapath
