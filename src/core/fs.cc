#include "core/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/uuid.h"

namespace stratus {
Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  return Internal(what + " '" + path + "' failed: " + std::strerror(err));
}

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoStatus("fsync directory", dir);
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, const std::string& data, int mode) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  std::string tmp = path + ".tmp." + NewUuid().substr(0, 8);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus("create", tmp);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = ErrnoStatus("write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    Status st = ErrnoStatus("fsync", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status st = ErrnoStatus("rename to", path);
    ::unlink(tmp.c_str());
    return st;
  }
  return FsyncDir(dir);
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("Cannot read file '" + path + "'.", path, "FileNotFound");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status MakeDirs(const std::string& path, int mode) {
  if (path.empty()) return InvalidArgument("MakeDirs: empty path");
  // Every folder made here gets `mode` (explicitly: the umask does not narrow it), parents
  // included, so that a path QEMU must traverse is traversable all the way down. Existing
  // folders keep what their owner chose.
  std::filesystem::path p(path);
  std::vector<std::filesystem::path> missing;
  for (auto cur = p; !cur.empty(); cur = cur.parent_path()) {
    struct stat st;
    if (::stat(cur.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return Internal("'" + cur.string() + "' is not a directory");
      break;
    }
    missing.push_back(cur);
    if (cur == cur.parent_path()) break;
  }
  // Each folder appears with its mode or not at all: it is made and given its mode under a
  // temporary name, then renamed into place. (A kill -9 between a mkdir, which the umask
  // narrows, and its chmod once left the disks' folder 0700 for good: QEMU could not reach the
  // disks after the restart.) A crash leaves at most a '.<name>.mkdir-*' folder behind.
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    const std::string tmp =
        (it->parent_path() / ("." + it->filename().string() + ".mkdir-" + NewUuid().substr(0, 8)))
            .string();
    if (::mkdir(tmp.c_str(), static_cast<mode_t>(mode)) != 0)
      return ErrnoStatus("create directory", tmp);
    if (::chmod(tmp.c_str(), static_cast<mode_t>(mode)) != 0) {
      Status st = ErrnoStatus("chmod", tmp);
      ::rmdir(tmp.c_str());
      return st;
    }
    // RENAME_NOREPLACE: a folder another thread made meanwhile stays (with what it holds).
    int moved = ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, it->c_str(), RENAME_NOREPLACE);
    if (moved != 0 && errno == EINVAL)  // a file system without it: an empty folder is replaced
      moved = ::rename(tmp.c_str(), it->c_str());
    if (moved != 0) {
      const int err = (errno == ENOTEMPTY) ? EEXIST : errno;
      ::rmdir(tmp.c_str());
      struct stat st;
      if (err != EEXIST || ::stat(it->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = err;
        return ErrnoStatus("create directory", it->string());
      }
    }
  }
  return Status::Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("remove", path);
  return Status::Ok();
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Internal("remove tree '" + path + "' failed: " + ec.message());
  return Status::Ok();
}

Result<uint64_t> FreeBytes(const std::string& path) {
  struct statvfs vfs;
  if (::statvfs(path.c_str(), &vfs) != 0) return ErrnoStatus("statvfs", path);
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

}  // namespace stratus
