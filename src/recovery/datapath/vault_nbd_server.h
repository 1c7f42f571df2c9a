// VaultNbdServer: serves one disk of a recovery point read-only over NBD, straight from the vault,
// on a unix socket. Instant restore points a VM's qcow2 backing file at it, so the VM runs before
// a byte was copied (docs/architecture.md, "Instant restore").
//
// Protocol (the NBD spec, doc/proto.md of the nbd project): fixed-newstyle handshake;
// NBD_OPT_GO / NBD_OPT_INFO / NBD_OPT_EXPORT_NAME / NBD_OPT_LIST / NBD_OPT_ABORT; every other
// option (structured replies, meta contexts, TLS, extended headers) is refused with
// NBD_REP_ERR_UNSUP, so clients use simple replies. Any export name is accepted (one export per
// server). Transmission: NBD_CMD_READ, NBD_CMD_DISC, NBD_CMD_FLUSH and NBD_CMD_CACHE (no-ops);
// writes, trims and zeroes get EPERM (the export is read-only); anything else EINVAL.
//
// Reads are cut along the vault's chunk slots: a hole reads as zeroes, a data slot is read with
// Vault::ReadChunk (authenticated, decompressed, re-hashed unless Options::id_check says
// otherwise) and kept in a small LRU cache of decoded chunks shared by all connections; two
// readers of the same chunk wait for one decode. A chunk that fails its checks fails the request
// with EIO (nothing wrong is ever returned) and is recorded (first_error(), on_error).
//
// While the server runs it holds a vault lease on every chunk of the disk (a backup session that
// is never committed), so a GC cannot delete them even if the point's manifest is pruned.
//
// Threads: one acceptor, one reader per connection, and a pool of `workers` that decode and
// reply (a connection's requests run concurrently; replies are serialised per connection).
// Thread-safety: all public methods are thread-safe. Stop() (or the destructor) closes every
// connection, waits for the threads and removes the socket.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "recovery/vault/vault.h"

namespace stratus::recovery::datapath {

// A read that failed because a chunk is missing or corrupt.
struct NbdReadError {
  uint64_t offset = 0;    // byte offset of the chunk's slot in the disk
  std::string chunk_id;   // hex
  std::string message;    // the vault's error
};

struct VaultNbdServerOptions {
  std::string socket_path;      // created (a stale socket file there is replaced); < 108 bytes
  mode_t socket_mode = 0666;    // QEMU runs as another user (libvirt-qemu)
  size_t cache_chunks = 32;     // decoded chunks kept (32 MiB at the default chunk size)
  int workers = 4;              // decode/reply threads shared by all connections
  int max_connections = 64;     // further clients are closed at once
  vault::IdCheck id_check = vault::IdCheck::kRehash;
  bool hold_chunks = true;      // lease the disk's chunks against GC while serving
  // Called (from a worker thread) for every failed chunk read; must be thread-safe and cheap.
  std::function<void(const NbdReadError&)> on_error;
};

struct VaultNbdServerStats {
  uint64_t connections = 0;     // accepted so far
  uint64_t requests = 0;        // commands received
  uint64_t bytes_read = 0;      // bytes replied to NBD_CMD_READ
  uint64_t chunks_decoded = 0;  // ReadChunk calls that succeeded
  uint64_t cache_hits = 0;
  uint64_t read_errors = 0;     // reads answered with EIO
};

class VaultNbdServer {
 public:
  // Listens on options.socket_path and serves `disk_name` of `point` from `vault`, which must
  // outlive the server. NotFound ("DiskNotFound") for an unknown disk; InvalidArgument for a socket
  // path that is too long; Internal naming the path when the socket cannot be created.
  static Result<std::unique_ptr<VaultNbdServer>> Start(vault::Vault& vault,
                                                       const vault::RecoveryPoint& point,
                                                       const std::string& disk_name,
                                                       VaultNbdServerOptions options);
  ~VaultNbdServer();
  VaultNbdServer(const VaultNbdServer&) = delete;
  VaultNbdServer& operator=(const VaultNbdServer&) = delete;

  // Closes the listener and every connection, joins the threads, removes the socket file and
  // releases the chunk lease. Idempotent.
  void Stop();

  const std::string& socket_path() const { return options_.socket_path; }
  // "nbd+unix:///?socket=<path>"
  std::string uri() const;
  uint64_t size() const { return disk_.size; }
  VaultNbdServerStats stats() const;
  // The first failed chunk read, if any.
  std::optional<NbdReadError> first_error() const;

 private:
  struct Connection;
  using ChunkPtr = std::shared_ptr<const vault::ByteBuffer>;

  VaultNbdServer(vault::Vault& vault, vault::RecoveryPoint point, vault::DiskIndex disk,
                 VaultNbdServerOptions options);
  void AcceptLoop();
  void Serve(const std::shared_ptr<Connection>& c);
  bool Handshake(Connection& c);
  void HandleRead(const std::shared_ptr<Connection>& c, uint64_t cookie, uint64_t offset,
                  uint32_t length);
  void Reply(Connection& c, uint64_t cookie, uint32_t error, const uint8_t* data, size_t len);
  // The decoded chunk of data slot `slot` (cache, or one decode shared by concurrent callers).
  Result<ChunkPtr> GetChunk(uint64_t slot);
  void Submit(std::function<void()> task);
  void WorkerLoop();

  vault::Vault& vault_;
  const vault::RecoveryPoint point_;
  const vault::DiskIndex disk_;
  const VaultNbdServerOptions options_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: wakes the acceptor
  std::unique_ptr<vault::BackupSession> hold_;
  std::thread acceptor_;
  std::vector<std::thread> workers_;

  std::mutex conns_mu_;  // guards conns_, stopped_
  std::vector<std::pair<std::shared_ptr<Connection>, std::thread>> conns_;
  bool stopped_ = false;

  std::mutex tasks_mu_;  // guards tasks_, tasks_stop_
  std::condition_variable tasks_cv_;
  std::deque<std::function<void()>> tasks_;
  bool tasks_stop_ = false;

  mutable std::mutex cache_mu_;  // guards lru_, cache_, loading_, first_error_
  std::condition_variable loaded_cv_;
  std::list<std::pair<uint64_t, ChunkPtr>> lru_;  // most recent first
  std::unordered_map<uint64_t, std::list<std::pair<uint64_t, ChunkPtr>>::iterator> cache_;
  std::unordered_map<uint64_t, int> loading_;  // slots being decoded
  std::optional<NbdReadError> first_error_;

  std::atomic<uint64_t> n_connections_{0}, n_requests_{0}, n_bytes_{0}, n_decoded_{0},
      n_hits_{0}, n_errors_{0};
};

}  // namespace stratus::recovery::datapath
