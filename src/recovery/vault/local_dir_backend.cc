#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/fs.h"
#include "recovery/vault/object_backend.h"

namespace stratus::recovery::vault {
namespace {

Status WriteAll(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

std::string ParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// mkdir -p for the parents of a key below root (root itself exists).
Status MakeParents(const std::string& root, const std::string& key) {
  size_t pos = 0;
  while ((pos = key.find('/', pos)) != std::string::npos) {
    std::string dir = root + "/" + key.substr(0, pos);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return ErrnoStatus("create directory", dir);
    ++pos;
  }
  return Status::Ok();
}

std::atomic<uint64_t> g_temp_seq{0};

}  // namespace

Status ValidateKey(std::string_view key) {
  auto bad = [&](const char* why) {
    return InvalidArgument("object key '" + std::string(key) + "' is invalid: " + why);
  };
  if (key.empty() || key.size() > 512) return bad("empty or too long");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view part = key.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return bad("empty, '.' or '..' component");
    for (char c : part) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-';
      if (!ok) return bad("characters other than [A-Za-z0-9._-/]");
    }
    start = end + 1;
  }
  return Status::Ok();
}

std::string BootId() {
  static const std::string id = [] {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string s;
    std::getline(in, s);
    std::string out;
    for (char c : s) {
      if (c != '-') out.push_back(c);
      if (out.size() == 8) break;
    }
    return out.empty() ? std::string("00000000") : out;
  }();
  return id;
}

Result<std::unique_ptr<LocalDirBackend>> LocalDirBackend::Open(const std::string& root) {
  if (root.empty() || root[0] != '/')
    return InvalidArgument("vault directory '" + root + "' must be an absolute path");
  RETURN_IF_ERROR(MakeDirs(root, 0700));
  RETURN_IF_ERROR(MakeDirs(root + "/tmp", 0700));
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open directory", root);
  return std::unique_ptr<LocalDirBackend>(new LocalDirBackend(root, fd));
}

LocalDirBackend::LocalDirBackend(std::string root, int root_fd)
    : root_(std::move(root)), root_fd_(root_fd) {}

LocalDirBackend::~LocalDirBackend() { ::close(root_fd_); }

std::string LocalDirBackend::TempPath() {
  char rnd[17];
  uint64_t seq = g_temp_seq.fetch_add(1);
  std::snprintf(rnd, sizeof rnd, "%016llx", static_cast<unsigned long long>(seq));
  return root_ + "/tmp/" + BootId() + "." + std::to_string(::getpid()) + "." + rnd;
}

Status LocalDirBackend::Put(const std::string& key, std::string_view data,
                            Durability durability) {
  RETURN_IF_ERROR(ValidateKey(key));
  std::string tmp = TempPath();
  std::string path = PathOf(key);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("create", tmp);
  Status st = WriteAll(fd, data.data(), data.size(), tmp);
  if (st.ok() && durability == Durability::kImmediate && ::fsync(fd) != 0)
    st = ErrnoStatus("fsync", tmp);
  // Deferred: start writeback now (without waiting), so that the Sync() before a manifest finds
  // most data already on disk instead of flushing a whole backup at once.
  if (st.ok() && durability == Durability::kDeferred)
    ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (errno == ENOENT) {
      st = MakeParents(root_, key);
      if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = ErrnoStatus("rename to", path);
    } else {
      st = ErrnoStatus("rename to", path);
    }
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  if (durability == Durability::kImmediate) return FsyncDir(ParentOf(path));
  return Status::Ok();
}

Status LocalDirBackend::Get(const std::string& key, std::string* out) {
  RETURN_IF_ERROR(ValidateKey(key));
  std::string path = PathOf(key);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return NotFound("object '" + key + "' does not exist in " + Describe(), key,
                      "ObjectNotFound");
    return ErrnoStatus("open", path);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = ErrnoStatus("stat", path);
    ::close(fd);
    return s;
  }
  out->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out->size()) {
    ssize_t n = ::pread(fd, out->data() + done, out->size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = n < 0 ? ErrnoStatus("read", path) : Internal("short read of '" + path + "'");
      ::close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return Status::Ok();
}

Result<bool> LocalDirBackend::Exists(const std::string& key) {
  RETURN_IF_ERROR(ValidateKey(key));
  struct stat st;
  std::string path = PathOf(key);
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return ErrnoStatus("stat", path);
}

Status LocalDirBackend::Delete(const std::string& key, Durability durability) {
  RETURN_IF_ERROR(ValidateKey(key));
  std::string path = PathOf(key);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("remove", path);
  }
  if (durability == Durability::kImmediate) return FsyncDir(ParentOf(path));
  return Status::Ok();
}

Status LocalDirBackend::List(const std::string& prefix,
                             const std::function<Status(std::string_view, uint64_t)>& fn) {
  if (prefix.empty() || prefix.back() != '/')
    return InvalidArgument("list prefix '" + prefix + "' must end in '/'");
  RETURN_IF_ERROR(ValidateKey(prefix.substr(0, prefix.size() - 1)));
  // Iterative walk; keys are relative to root.
  std::vector<std::string> stack{prefix.substr(0, prefix.size() - 1)};
  while (!stack.empty()) {
    std::string rel = std::move(stack.back());
    stack.pop_back();
    std::string dir = root_ + "/" + rel;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) continue;
      return ErrnoStatus("open directory", dir);
    }
    Status st;
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::string key = rel + "/" + e->d_name;
      unsigned char type = e->d_type;
      uint64_t size = 0;
      if (type == DT_UNKNOWN || type == DT_REG) {
        struct stat sb;
        if (::fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) continue;  // raced
        type = S_ISDIR(sb.st_mode) ? DT_DIR : S_ISREG(sb.st_mode) ? DT_REG : DT_UNKNOWN;
        size = static_cast<uint64_t>(sb.st_size);
      }
      if (type == DT_DIR) {
        stack.push_back(std::move(key));
      } else if (type == DT_REG) {
        st = fn(key, size);
        if (!st.ok()) break;
      }
    }
    ::closedir(d);
    RETURN_IF_ERROR(st);
  }
  return Status::Ok();
}

Status LocalDirBackend::Sync() {
  if (::syncfs(root_fd_) != 0) return ErrnoStatus("syncfs", root_);
  return Status::Ok();
}

Result<uint64_t> LocalDirBackend::CleanupIncompletePuts() {
  std::string dir = root_ + "/tmp";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return uint64_t{0};
    return ErrnoStatus("open directory", dir);
  }
  uint64_t removed = 0;
  std::string boot = BootId();
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    // "<boot>.<pid>.<seq>": a leftover when written in another boot or by a process now gone.
    bool stale = true;
    size_t dot1 = name.find('.');
    size_t dot2 = dot1 == std::string::npos ? dot1 : name.find('.', dot1 + 1);
    if (dot2 != std::string::npos && name.substr(0, dot1) == boot) {
      pid_t pid = static_cast<pid_t>(std::atoll(name.substr(dot1 + 1, dot2 - dot1 - 1).c_str()));
      if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) stale = false;
    }
    if (stale && ::unlinkat(dirfd(d), name.c_str(), 0) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

}  // namespace stratus::recovery::vault
