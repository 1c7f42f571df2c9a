#include "recovery/datapath/vault_nbd_server.h"

#include <endian.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace stratus::recovery::datapath {
namespace {

// Constants of the NBD protocol (doc/proto.md).
constexpr uint64_t kNbdMagic = 0x4e42444d41474943ull;     // "NBDMAGIC"
constexpr uint64_t kOptMagic = 0x49484156454f5054ull;     // "IHAVEOPT"
constexpr uint64_t kOptReplyMagic = 0x3e889045565a9ull;
constexpr uint32_t kRequestMagic = 0x25609513;
constexpr uint32_t kSimpleReplyMagic = 0x67446698;

constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
constexpr uint16_t kFlagNoZeroes = 1 << 1;
constexpr uint32_t kClientNoZeroes = 1 << 1;

constexpr uint32_t kOptExportName = 1;
constexpr uint32_t kOptAbort = 2;
constexpr uint32_t kOptList = 3;
constexpr uint32_t kOptInfo = 6;
constexpr uint32_t kOptGo = 7;

constexpr uint32_t kRepAck = 1;
constexpr uint32_t kRepServer = 2;
constexpr uint32_t kRepInfo = 3;
constexpr uint32_t kRepErrUnsup = 0x80000001u;
constexpr uint32_t kRepErrInvalid = 0x80000003u;
constexpr uint32_t kRepErrTooBig = 0x80000009u;

constexpr uint16_t kInfoExport = 0;
constexpr uint16_t kInfoBlockSize = 3;

constexpr uint16_t kTxHasFlags = 1 << 0;
constexpr uint16_t kTxReadOnly = 1 << 1;
constexpr uint16_t kTxSendFlush = 1 << 2;
constexpr uint16_t kTxCanMultiConn = 1 << 8;

constexpr uint16_t kCmdRead = 0;
constexpr uint16_t kCmdWrite = 1;
constexpr uint16_t kCmdDisc = 2;
constexpr uint16_t kCmdFlush = 3;
constexpr uint16_t kCmdTrim = 4;
constexpr uint16_t kCmdCache = 5;
constexpr uint16_t kCmdWriteZeroes = 6;

constexpr uint32_t kEperm = 1;
constexpr uint32_t kEio = 5;
constexpr uint32_t kEinval = 22;

constexpr uint32_t kMaxOptionBytes = 64u << 10;
constexpr uint32_t kMaxRequest = 32u << 20;  // advertised as the maximum block size

void Put16(std::string& s, uint16_t v) {
  v = htobe16(v);
  s.append(reinterpret_cast<const char*>(&v), 2);
}
void Put32(std::string& s, uint32_t v) {
  v = htobe32(v);
  s.append(reinterpret_cast<const char*>(&v), 4);
}
void Put64(std::string& s, uint64_t v) {
  v = htobe64(v);
  s.append(reinterpret_cast<const char*>(&v), 8);
}
uint16_t Get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return be16toh(v);
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return be32toh(v);
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return be64toh(v);
}

bool ReadFull(int fd, void* buf, size_t n) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const void* buf, size_t n) {
  auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool Skip(int fd, uint64_t n) {
  uint8_t buf[4096];
  while (n > 0) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof buf));
    if (!ReadFull(fd, buf, k)) return false;
    n -= k;
  }
  return true;
}

}  // namespace

struct VaultNbdServer::Connection {
  explicit Connection(int f) : fd(f) {}
  ~Connection() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
  std::mutex write_mu;  // serialises replies
  std::mutex mu;        // guards pending
  std::condition_variable idle_cv;
  int pending = 0;      // requests handed to workers and not yet replied
  std::atomic<bool> done{false};
};

VaultNbdServer::VaultNbdServer(vault::Vault& vault, vault::RecoveryPoint point,
                               vault::DiskIndex disk, VaultNbdServerOptions options)
    : vault_(vault), point_(std::move(point)), disk_(std::move(disk)), options_(std::move(options)) {}

Result<std::unique_ptr<VaultNbdServer>> VaultNbdServer::Start(vault::Vault& vault,
                                                              const vault::RecoveryPoint& point,
                                                              const std::string& disk_name,
                                                              VaultNbdServerOptions options) {
  const vault::DiskIndex* d = point.FindDisk(disk_name);
  if (d == nullptr)
    return NotFound("recovery point '" + point.point_id + "' has no disk '" + disk_name + "'",
                    disk_name, "DiskNotFound");
  sockaddr_un addr{};
  if (options.socket_path.empty() || options.socket_path.size() >= sizeof(addr.sun_path))
    return InvalidArgument("NBD socket path '" + options.socket_path + "' is empty or longer than " +
                           std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  options.workers = std::clamp(options.workers, 1, 64);
  options.cache_chunks = std::max<size_t>(options.cache_chunks, 1);
  std::unique_ptr<VaultNbdServer> s(new VaultNbdServer(vault, point, *d, std::move(options)));
  const auto& o = s->options_;

  if (o.hold_chunks) {
    ASSIGN_OR_RETURN(s->hold_, vault.BeginBackup());
    std::vector<vault::ChunkId> ids;
    for (const auto& id : s->disk_.chunks)
      if (!id.is_hole()) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    // Missing chunks are not an error here: reads of them fail with EIO and are reported.
    RETURN_IF_ERROR(s->hold_->Retain(ids).status());
  }

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal("socket() for NBD server '" + o.socket_path + "': " + std::strerror(errno));
  s->listen_fd_ = fd;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, o.socket_path.data(), o.socket_path.size());
  struct stat st;
  if (::lstat(o.socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(o.socket_path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Internal("binding NBD socket '" + o.socket_path + "': " + std::strerror(errno));
  ::chmod(o.socket_path.c_str(), o.socket_mode);
  if (::listen(fd, 64) != 0)
    return Internal("listening on NBD socket '" + o.socket_path + "': " + std::strerror(errno));
  s->stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (s->stop_fd_ < 0) return Internal(std::string("eventfd for NBD server: ") + std::strerror(errno));

  for (int i = 0; i < o.workers; ++i) s->workers_.emplace_back([p = s.get()] { p->WorkerLoop(); });
  s->acceptor_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  return s;
}

VaultNbdServer::~VaultNbdServer() { Stop(); }

void VaultNbdServer::Stop() {
  std::vector<std::pair<std::shared_ptr<Connection>, std::thread>> conns;
  {
    std::lock_guard<std::mutex> g(conns_mu_);
    if (stopped_) return;
    stopped_ = true;
    for (auto& [c, t] : conns_) ::shutdown(c->fd, SHUT_RDWR);
  }
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
  }
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard<std::mutex> g(conns_mu_);
    conns.swap(conns_);
  }
  for (auto& [c, t] : conns) {
    ::shutdown(c->fd, SHUT_RDWR);
    if (t.joinable()) t.join();
  }
  {
    std::lock_guard<std::mutex> g(tasks_mu_);
    tasks_stop_ = true;
  }
  tasks_cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlink(options_.socket_path.c_str());
  }
  if (stop_fd_ >= 0) {
    ::close(stop_fd_);
    stop_fd_ = -1;
  }
  if (hold_) {
    Status st = hold_->Abort();
    if (!st.ok()) spdlog::warn("releasing the vault lease of NBD server {}: {}", options_.socket_path, st.ToString());
    hold_.reset();
  }
}

std::string VaultNbdServer::uri() const { return "nbd+unix:///?socket=" + options_.socket_path; }

VaultNbdServerStats VaultNbdServer::stats() const {
  VaultNbdServerStats s;
  s.connections = n_connections_;
  s.requests = n_requests_;
  s.bytes_read = n_bytes_;
  s.chunks_decoded = n_decoded_;
  s.cache_hits = n_hits_;
  s.read_errors = n_errors_;
  return s;
}

std::optional<NbdReadError> VaultNbdServer::first_error() const {
  std::lock_guard<std::mutex> g(cache_mu_);
  return first_error_;
}

void VaultNbdServer::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int r = ::poll(fds, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (fds[1].revents & POLLIN)) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> g(conns_mu_);
    if (stopped_) {
      ::close(fd);
      return;
    }
    // Reap finished connections.
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (it->first->done) {
        if (it->second.joinable()) it->second.join();
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
    if (static_cast<int>(conns_.size()) >= options_.max_connections) {
      spdlog::warn("NBD server {}: refusing a client beyond {} connections", options_.socket_path,
                   options_.max_connections);
      ::close(fd);
      continue;
    }
    ++n_connections_;
    auto c = std::make_shared<Connection>(fd);
    conns_.emplace_back(c, std::thread([this, c] { Serve(c); }));
  }
}

bool VaultNbdServer::Handshake(Connection& c) {
  std::string hello;
  Put64(hello, kNbdMagic);
  Put64(hello, kOptMagic);
  Put16(hello, kFlagFixedNewstyle | kFlagNoZeroes);
  if (!WriteFull(c.fd, hello.data(), hello.size())) return false;
  uint8_t cf[4];
  if (!ReadFull(c.fd, cf, 4)) return false;
  const bool no_zeroes = Get32(cf) & kClientNoZeroes;
  const uint16_t tx_flags = kTxHasFlags | kTxReadOnly | kTxSendFlush | kTxCanMultiConn;

  auto reply = [&](uint32_t opt, uint32_t type, const std::string& data) {
    std::string r;
    Put64(r, kOptReplyMagic);
    Put32(r, opt);
    Put32(r, type);
    Put32(r, static_cast<uint32_t>(data.size()));
    r += data;
    return WriteFull(c.fd, r.data(), r.size());
  };
  for (;;) {
    uint8_t h[16];
    if (!ReadFull(c.fd, h, 16)) return false;
    if (Get64(h) != kOptMagic) return false;
    uint32_t opt = Get32(h + 8);
    uint32_t len = Get32(h + 12);
    if (len > kMaxOptionBytes) {
      if (!Skip(c.fd, len) || !reply(opt, kRepErrTooBig, "option too large")) return false;
      continue;
    }
    std::string data(len, '\0');
    if (len > 0 && !ReadFull(c.fd, data.data(), len)) return false;
    const auto* d = reinterpret_cast<const uint8_t*>(data.data());
    switch (opt) {
      case kOptExportName: {
        std::string r;
        Put64(r, disk_.size);
        Put16(r, tx_flags);
        if (!no_zeroes) r.append(124, '\0');
        return WriteFull(c.fd, r.data(), r.size());
      }
      case kOptAbort:
        reply(opt, kRepAck, "");
        return false;
      case kOptList: {
        if (len != 0) {
          if (!reply(opt, kRepErrInvalid, "")) return false;
          break;
        }
        std::string s;
        Put32(s, 0);  // the one export; any name selects it
        if (!reply(opt, kRepServer, s) || !reply(opt, kRepAck, "")) return false;
        break;
      }
      case kOptInfo:
      case kOptGo: {
        if (len < 6 || Get32(d) > len - 6 || (len - 6 - Get32(d)) != 2u * Get16(d + 4 + Get32(d))) {
          if (!reply(opt, kRepErrInvalid, "malformed NBD_OPT_INFO/GO")) return false;
          break;
        }
        uint32_t name_len = Get32(d);
        uint16_t nreq = Get16(d + 4 + name_len);
        bool want_block_size = false;
        for (uint16_t i = 0; i < nreq; ++i)
          if (Get16(d + 6 + name_len + 2 * i) == kInfoBlockSize) want_block_size = true;
        std::string info;
        Put16(info, kInfoExport);
        Put64(info, disk_.size);
        Put16(info, tx_flags);
        if (!reply(opt, kRepInfo, info)) return false;
        if (want_block_size) {
          std::string bs;
          Put16(bs, kInfoBlockSize);
          Put32(bs, 1);
          Put32(bs, 4096);
          Put32(bs, kMaxRequest);
          if (!reply(opt, kRepInfo, bs)) return false;
        }
        if (!reply(opt, kRepAck, "")) return false;
        if (opt == kOptGo) return true;
        break;
      }
      default:
        // Structured replies, meta contexts, STARTTLS, extended headers: not offered.
        if (!reply(opt, kRepErrUnsup, "")) return false;
        break;
    }
  }
}

void VaultNbdServer::Serve(const std::shared_ptr<Connection>& c) {
  if (Handshake(*c)) {
    for (;;) {
      uint8_t h[28];
      if (!ReadFull(c->fd, h, sizeof h)) break;
      if (Get32(h) != kRequestMagic) break;
      ++n_requests_;
      uint16_t type = Get16(h + 6);
      uint64_t cookie = Get64(h + 8);
      uint64_t offset = Get64(h + 16);
      uint32_t length = Get32(h + 24);
      if (type == kCmdDisc) break;
      if (type == kCmdRead) {
        if (length > kMaxRequest || offset > disk_.size || length > disk_.size - offset) {
          Reply(*c, cookie, kEinval, nullptr, 0);
          continue;
        }
        {
          std::lock_guard<std::mutex> g(c->mu);
          ++c->pending;
        }
        Submit([this, c, cookie, offset, length] { HandleRead(c, cookie, offset, length); });
        continue;
      }
      if (type == kCmdWrite) {
        if (!Skip(c->fd, length)) break;
        Reply(*c, cookie, kEperm, nullptr, 0);
      } else if (type == kCmdTrim || type == kCmdWriteZeroes) {
        Reply(*c, cookie, kEperm, nullptr, 0);
      } else if (type == kCmdFlush || type == kCmdCache) {
        Reply(*c, cookie, 0, nullptr, 0);
      } else {
        Reply(*c, cookie, kEinval, nullptr, 0);
      }
    }
  }
  // Let the requests in flight reply (or fail on the closed socket) before the fd is closed.
  std::unique_lock<std::mutex> g(c->mu);
  c->idle_cv.wait(g, [&] { return c->pending == 0; });
  ::shutdown(c->fd, SHUT_RDWR);
  c->done = true;
}

void VaultNbdServer::Reply(Connection& c, uint64_t cookie, uint32_t error, const uint8_t* data,
                           size_t len) {
  std::string h;
  Put32(h, kSimpleReplyMagic);
  Put32(h, error);
  Put64(h, cookie);
  std::lock_guard<std::mutex> g(c.write_mu);
  if (!WriteFull(c.fd, h.data(), h.size())) return;
  if (error == 0 && len > 0) WriteFull(c.fd, data, len);
}

void VaultNbdServer::HandleRead(const std::shared_ptr<Connection>& c, uint64_t cookie,
                                uint64_t offset, uint32_t length) {
  thread_local std::vector<uint8_t> buf;
  buf.resize(length);
  uint32_t error = 0;
  uint64_t pos = offset;
  const uint64_t end = offset + length;
  const uint32_t cs = disk_.chunk_size;
  while (pos < end) {
    uint64_t slot = pos / cs;
    uint64_t slot_off = slot * cs;
    uint64_t n = std::min<uint64_t>(end, slot_off + disk_.SlotLength(slot)) - pos;
    uint8_t* out = buf.data() + (pos - offset);
    if (disk_.chunks[slot].is_hole()) {
      std::memset(out, 0, n);
    } else {
      auto chunk = GetChunk(slot);
      if (!chunk.ok()) {
        error = kEio;
        break;
      }
      std::memcpy(out, (*chunk)->data() + (pos - slot_off), n);
    }
    pos += n;
  }
  if (error == 0) n_bytes_ += length;
  Reply(*c, cookie, error, buf.data(), length);
  std::lock_guard<std::mutex> g(c->mu);
  if (--c->pending == 0) c->idle_cv.notify_all();
}

Result<VaultNbdServer::ChunkPtr> VaultNbdServer::GetChunk(uint64_t slot) {
  std::unique_lock<std::mutex> g(cache_mu_);
  for (;;) {
    auto it = cache_.find(slot);
    if (it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++n_hits_;
      return it->second->second;
    }
    if (!loading_.count(slot)) break;
    loaded_cv_.wait(g);
  }
  loading_[slot] = 1;
  g.unlock();

  const vault::ChunkId& id = disk_.chunks[slot];
  auto plain = std::make_shared<vault::ByteBuffer>();
  Status st = vault_.ReadChunk(id, plain.get(), options_.id_check);
  if (st.ok() && plain->size() != disk_.SlotLength(slot))
    st = Status(StatusCode::kInternal, "ChunkCorrupt",
                "chunk " + id.Hex() + " holds " + std::to_string(plain->size()) +
                    " bytes where the slot needs " + std::to_string(disk_.SlotLength(slot)));

  g.lock();
  loading_.erase(slot);
  loaded_cv_.notify_all();
  if (!st.ok()) {
    ++n_errors_;
    NbdReadError e{slot * disk_.chunk_size, id.Hex(),
                   "recovery point '" + point_.point_id + "' disk '" + disk_.name + "' offset " +
                       std::to_string(slot * disk_.chunk_size) + ": " + st.message()};
    if (!first_error_) first_error_ = e;
    g.unlock();
    spdlog::warn("NBD server {}: {}", options_.socket_path, e.message);
    if (options_.on_error) options_.on_error(e);
    return st;
  }
  ++n_decoded_;
  ChunkPtr p = std::move(plain);
  lru_.emplace_front(slot, p);
  cache_[slot] = lru_.begin();
  while (lru_.size() > options_.cache_chunks) {
    cache_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return p;
}

void VaultNbdServer::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> g(tasks_mu_);
    tasks_.push_back(std::move(task));
  }
  tasks_cv_.notify_one();
}

void VaultNbdServer::WorkerLoop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> g(tasks_mu_);
      tasks_cv_.wait(g, [&] { return tasks_stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace stratus::recovery::datapath
