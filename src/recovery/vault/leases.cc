#include "recovery/vault/leases.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/fs.h"
#include "core/uuid.h"

namespace stratus::recovery::vault {
namespace {

int FlockRetry(int fd, int op) {
  int rc;
  do {
    rc = ::flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  return rc;
}

std::string SessionsDir(const std::string& state_dir) { return state_dir + "/sessions"; }

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Reads `path` from `offset` to EOF.
Result<std::string> ReadFrom(const std::string& path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("lease '" + path + "' vanished");
    return ErrnoStatus("open", path);
  }
  std::string out;
  char buf[65536];
  off_t pos = static_cast<off_t>(offset);
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, pos);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status st = ErrnoStatus("read", path);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    pos += n;
  }
  ::close(fd);
  return out;
}

// Parses complete "R <hex>" / "W <hex>" lines of `text`; returns the bytes consumed.
size_t ParseLines(const std::string& text, bool skip_header, std::vector<ChunkId>* refs,
                  std::vector<ChunkId>* written, Json* header) {
  size_t pos = 0;
  bool first = skip_header;
  for (;;) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string_view line(text.data() + pos, nl - pos);
    if (first) {
      if (header) *header = Json::parse(line, nullptr, false);
      first = false;
    } else if (line.size() == 66 && line[1] == ' ' && (line[0] == 'R' || line[0] == 'W')) {
      auto id = ChunkId::FromHex(line.substr(2));
      if (id.ok()) {
        if (line[0] == 'R' && refs) refs->push_back(*id);
        if (line[0] == 'W') {
          if (written) written->push_back(*id);
          if (refs) refs->push_back(*id);
        }
      }
    }
    pos = nl + 1;
  }
  return pos;
}

}  // namespace

Result<std::unique_ptr<FileLock>> FileLock::Acquire(const std::string& path, Mode mode, bool wait,
                                                    bool create) {
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) {
    if (errno == ENOENT && !create) return NotFound("'" + path + "' does not exist", path);
    return ErrnoStatus("open lock file", path);
  }
  int op = (mode == Mode::kShared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB);
  if (FlockRetry(fd, op) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return Conflict("'" + path + "' is locked by another process", path);
    return ErrnoStatus("flock", path, err);
  }
  return std::unique_ptr<FileLock>(new FileLock(fd));
}

FileLock::~FileLock() { ::close(fd_); }  // closing the last fd of the description unlocks

Result<std::unique_ptr<SessionLease>> SessionLease::Create(const std::string& state_dir,
                                                           const std::string& session_id,
                                                           const Json& header) {
  std::string dir = SessionsDir(state_dir);
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  std::string gc_path = state_dir + "/gc.lock";
  int gc_fd = ::open(gc_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (gc_fd < 0) return ErrnoStatus("open", gc_path);
  // Lock under a temporary name, then rename: a "*.lease" file is always locked by a live owner.
  std::string tmp = dir + "/.new-" + session_id;
  std::string path = dir + "/" + session_id + ".lease";
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    Status st = ErrnoStatus("create lease", tmp);
    ::close(gc_fd);
    return st;
  }
  std::unique_ptr<SessionLease> lease(new SessionLease(state_dir, path, fd, gc_fd));
  if (FlockRetry(fd, LOCK_EX) != 0) {
    Status st = ErrnoStatus("flock", tmp);
    ::unlink(tmp.c_str());
    return st;
  }
  Status st = lease->Append(header.dump() + "\n");
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = ErrnoStatus("rename lease to", path);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return lease;
}

SessionLease::~SessionLease() { Release(); }

Status SessionLease::Append(const std::string& text) {
  const char* p = text.data();
  size_t n = text.size();
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("append to lease", path_);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status SessionLease::ProtectAndCheck(const std::vector<ChunkId>& ids,
                                     const std::function<Status()>& check) {
  if (fd_ < 0) return Internal("lease '" + path_ + "' was already released");
  std::string text;
  text.reserve(ids.size() * 67);
  for (const auto& id : ids) {
    text += "R ";
    text += id.Hex();
    text += '\n';
  }
  if (FlockRetry(gc_fd_, LOCK_SH) != 0) return ErrnoStatus("flock shared", state_dir_ + "/gc.lock");
  Status st = Append(text);
  if (st.ok()) st = check();
  FlockRetry(gc_fd_, LOCK_UN);
  return st;
}

Status SessionLease::RecordWritten(const ChunkId& id) {
  if (fd_ < 0) return Internal("lease '" + path_ + "' was already released");
  return Append("W " + id.Hex() + "\n");
}

Status SessionLease::Release() {
  if (fd_ < 0) return Status::Ok();
  Status st;
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) st = ErrnoStatus("remove lease", path_);
  ::close(fd_);
  ::close(gc_fd_);
  fd_ = gc_fd_ = -1;
  return st;
}

Status LeaseScanner::Refresh(std::unordered_set<ChunkId, ChunkIdHash>* protected_ids) {
  std::string dir = SessionsDir(state_dir_);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("open directory", dir);
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (EndsWith(name, ".lease")) names.push_back(name);
  }
  ::closedir(d);
  for (const auto& name : names) {
    std::string path = dir + "/" + name;
    auto [it, fresh] = offsets_.try_emplace(path, 0);
    auto text = ReadFrom(path, it->second);
    if (!text.ok()) {
      if (text.status().code() == StatusCode::kNotFound) continue;  // session finished
      return text.status();
    }
    std::vector<ChunkId> refs;
    it->second += ParseLines(*text, /*skip_header=*/fresh, &refs, nullptr, nullptr);
    protected_ids->insert(refs.begin(), refs.end());
  }
  return Status::Ok();
}

Result<std::vector<StaleLease>> FindStaleLeases(const std::string& state_dir) {
  std::vector<StaleLease> out;
  std::string dir = SessionsDir(state_dir);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    return ErrnoStatus("open directory", dir);
  }
  std::vector<std::string> names, temps;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (EndsWith(name, ".lease")) names.push_back(name);
    if (name.rfind(".new-", 0) == 0) temps.push_back(name);
  }
  ::closedir(d);
  // A lease that died before its rename: remove it if nobody holds it.
  for (const auto& name : temps) {
    std::string path = dir + "/" + name;
    auto lock = FileLock::Acquire(path, FileLock::Mode::kExclusive, false, false);
    if (lock.ok()) ::unlink(path.c_str());
  }
  for (const auto& name : names) {
    std::string path = dir + "/" + name;
    auto lock = FileLock::Acquire(path, FileLock::Mode::kExclusive, /*wait=*/false,
                                  /*create=*/false);
    if (!lock.ok()) {
      if (lock.status().code() == StatusCode::kConflict ||
          lock.status().code() == StatusCode::kNotFound)
        continue;  // alive, or finished meanwhile
      return lock.status();
    }
    if (!PathExists(path)) continue;  // released between readdir and lock
    ASSIGN_OR_RETURN(std::string text, ReadFrom(path, 0));
    StaleLease s;
    s.path = path;
    ParseLines(text, true, nullptr, &s.written, &s.header);
    s.lock = std::move(lock).value();
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace stratus::recovery::vault
