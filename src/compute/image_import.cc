#include "compute/image_import.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "core/uuid.h"

namespace stratus::compute {
namespace {

Status Bad(const std::string& code, const std::string& msg, const std::string& field) {
  return InvalidArgument(msg, field, code);
}

// Is `path` (resolved) `dir` (resolved) or below it?
bool Below(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

}  // namespace

Result<std::vector<std::string>> ResolveImportDirs(const std::vector<std::string>& dirs) {
  std::vector<std::string> out;
  for (auto& d : dirs) {
    char buf[PATH_MAX];
    if (!::realpath(d.c_str(), buf))
      return InvalidArgument("--import-dir '" + d + "': " + std::strerror(errno) + ".",
                             "--import-dir");
    struct stat st;
    if (::stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
      return InvalidArgument("--import-dir '" + d + "' is not a directory.", "--import-dir");
    out.push_back(buf);
  }
  return out;
}

Result<std::unique_ptr<HostImportFile>> HostImportFile::Open(
    const std::string& path, const std::vector<std::string>& allowed_dirs, uint64_t max_bytes,
    const std::string& field) {
  if (allowed_dirs.empty())
    return Bad("ImportPathNotAllowed",
               "Importing from a host path is disabled on this region (stratusd has "
               "no "
               "--import-dir); upload the file instead (properties.source.upload).",
               field);
  if (path.empty() || path[0] != '/')
    return Bad("InvalidImage", "'" + field + "' must be an absolute path on the host.", field);
  // Outside every import folder even before symlinks are resolved: refused
  // without touching it.
  std::string normal = std::filesystem::path(path).lexically_normal().string();
  bool inside = false;
  for (auto& d : allowed_dirs) inside = inside || Below(normal, d);
  if (!inside)
    return Bad("ImportPathNotAllowed",
               "'" + path + "' is not inside a folder this region imports from (--import-dir).",
               field);
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real))
    return Bad("InvalidImage", "'" + path + "' cannot be resolved: " + std::strerror(errno) + ".",
               field);
  bool allowed = false;
  for (auto& d : allowed_dirs) allowed = allowed || Below(real, d);
  if (!allowed)
    return Bad("ImportPathNotAllowed",
               "'" + path + "' is not inside a folder this region imports from (--import-dir).",
               field);
  // O_NOFOLLOW: the resolved path has no symlink left; if one appears now,
  // refuse it.
  int fd = ::open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0)
    return Bad("InvalidImage", "'" + path + "' cannot be opened: " + std::strerror(errno) + ".",
               field);
  // A folder of the path may have been swapped for a symlink since realpath: what was opened is
  // what counts.
  char opened[PATH_MAX];
  std::string fd_link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t len = ::readlink(fd_link.c_str(), opened, sizeof opened - 1);
  bool still_inside = false;
  if (len > 0) {
    opened[len] = '\0';
    for (auto& d : allowed_dirs) still_inside = still_inside || Below(opened, d);
  }
  if (!still_inside) {
    ::close(fd);
    return Bad("ImportPathNotAllowed",
               "'" + path + "' is not inside a folder this region imports from (--import-dir).",
               field);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Bad("InvalidImage", "'" + path + "' is not a regular file.", field);
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return Bad("InvalidImage",
               "'" + path + "' is larger than " + std::to_string(max_bytes) + " bytes.", field);
  }
  // Opened non-blocking so that a FIFO could not hang the open; reads are
  // blocking from here.
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return std::unique_ptr<HostImportFile>(new HostImportFile(fd, static_cast<uint64_t>(st.st_size)));
}

HostImportFile::~HostImportFile() { ::close(fd_); }

std::string HostImportFile::ProcPath() const {
  return "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fd_);
}

Status HostImportFile::CopyTo(const std::string& dest) const {
  std::string tmp = dest + ".tmp." + RandomHex(4);
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) return Internal("create '" + tmp + "' failed: " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  off_t off = 0;
  Status st;
  for (;;) {
    ssize_t n = ::pread(fd_, buf.data(), buf.size(), off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = Internal("read of an import file failed: " + std::string(std::strerror(errno)));
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        st = Internal("write '" + tmp + "' failed: " + std::strerror(errno));
        break;
      }
      done += w;
    }
    if (!st.ok()) break;
    off += n;
  }
  if (st.ok() && ::fsync(out) != 0)
    st = Internal("fsync '" + tmp + "' failed: " + std::strerror(errno));
  ::close(out);
  if (st.ok() && ::rename(tmp.c_str(), dest.c_str()) != 0)
    st = Internal("rename to '" + dest + "' failed: " + std::strerror(errno));
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

Result<std::shared_ptr<FileUploadSink>> FileUploadSink::Create(const std::string& final_path,
                                                               uint64_t max_bytes) {
  std::string part = final_path + ".part";
  ::unlink(part.c_str());  // a leftover of an upload cut short
  int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Internal("create '" + part + "' failed: " + std::strerror(errno));
  return std::shared_ptr<FileUploadSink>(new FileUploadSink(fd, part, final_path, max_bytes));
}

FileUploadSink::~FileUploadSink() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(part_.c_str());
}

Status FileUploadSink::Write(const char* data, size_t n) {
  if (!status_.ok()) return status_;
  if (written_ + n > max_) {
    status_ = InvalidArgument(
        "The upload is larger than the " + std::to_string(max_) + " bytes declared.", "body",
        "UploadSizeMismatch");
    return status_;
  }
  for (size_t done = 0; done < n;) {
    ssize_t w = ::write(fd_, data + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      status_ = Internal("write '" + part_ + "' failed: " + std::strerror(errno));
      return status_;
    }
    done += static_cast<size_t>(w);
  }
  written_ += n;
  return Status::Ok();
}

Status FileUploadSink::Commit() {
  if (!status_.ok()) return status_;
  if (::fsync(fd_) != 0) return Internal("fsync '" + part_ + "' failed: " + std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  if (::rename(part_.c_str(), final_.c_str()) != 0)
    return Internal("rename to '" + final_ + "' failed: " + std::strerror(errno));
  committed_ = true;
  std::string dir = final_.substr(0, final_.rfind('/'));
  return FsyncDir(dir.empty() ? "/" : dir);
}

}  // namespace stratus::compute
