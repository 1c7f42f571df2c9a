// Vault: a content-addressed, encrypted, deduplicating store of disk chunks and the recovery
// points (manifests) that reference them. The storage heart of Stratus.RecoveryServices.
//
// Objects (through an ObjectBackend; docs/vault-format.md has every byte):
//   vault.json             vault id, chunk size, compression, the wrapped master key (keys.h)
//   chunks/ab/cdef...      one chunk: id = HMAC-SHA256(id key, plaintext), zstd + AES-256-GCM
//   points/<point>.json    one signed manifest per recovery point; a point exists iff its
//                          manifest does
// Local coordination (a directory on the host, leases.h): running sessions' leases, GC locks.
//
// Writing a point: BeginBackup() -> BackupSession::Store() for each changed chunk (thread-safe,
// call from a worker pool) and Retain() for ids reused from the previous point -> Commit(),
// which syncs the chunks and then atomically publishes the manifest. A session that is destroyed
// or killed before Commit() leaves no point; its chunks are garbage for Gc().
//
// Thread-safety: Vault and BackupSession are safe for concurrent use by many threads, and
// several processes may open the same vault (sessions, verify and GC coordinate through the state
// directory). Errors: Status with ARM codes ("ChunkMissing", "ChunkCorrupt", "ManifestTampered",
// "CustomerKeyMismatch", "RecoveryPointNotFound", ...) and messages naming the point, disk, chunk.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/clock.h"
#include "core/json.h"
#include "core/status.h"
#include "recovery/vault/chunk_codec.h"
#include "recovery/vault/disk_index.h"
#include "recovery/vault/keys.h"
#include "recovery/vault/leases.h"
#include "recovery/vault/manifest.h"
#include "recovery/vault/object_backend.h"

namespace stratus::recovery::vault {

// Object keys of a vault's backend: its descriptor, and each point's manifest.
inline constexpr char kVaultKey[] = "vault.json";
inline std::string PointKey(const std::string& point_id) { return "points/" + point_id + ".json"; }

class Vault;

struct VaultCreateOptions {
  uint32_t chunk_size = kDefaultChunkSize;  // 1 MiB: see docs/vault-format.md for the choice
  int zstd_level = 1;                        // 1..19; 1 is the speed/size sweet spot here
};

struct VaultOpenOptions {
  int threads = 0;  // worker threads for Verify(); 0 = hardware threads
  const Clock* clock = nullptr;  // nullptr = SystemClock::Default()
};

// What the caller gives Commit() besides the chunks.
struct PointSpec {
  std::string parent_point_id;  // the point the disks were built from incrementally, or ""
  std::string consistency = "CrashConsistent";
  Json vm_config = Json::object();
  Json metadata = Json::object();
  std::vector<DiskIndex> disks;
  int64_t created_ms = 0;  // capture instant; 0 = when the session began
};

struct StoreResult {
  ChunkId id;              // the hole id for all-zero data
  bool written = false;    // false: a hole, or deduplicated against an existing chunk
  uint64_t stored_bytes = 0;  // bytes added to the vault (compressed + encrypted) when written
};

// One backup being written. Created by Vault::BeginBackup(); holds a lease that protects every
// chunk it references from a concurrent Gc(). Destroying it without Commit() abandons it.
class BackupSession {
 public:
  ~BackupSession();
  BackupSession(const BackupSession&) = delete;
  BackupSession& operator=(const BackupSession&) = delete;

  const std::string& point_id() const { return point_id_; }
  const std::string& session_id() const { return session_id_; }
  Vault& vault() { return *vault_; }

  // Stores one slot of plaintext (n <= the vault's maximum chunk size). All-zero data becomes a
  // hole and is not stored; data already in the vault is not written again. Thread-safe.
  Result<StoreResult> Store(const uint8_t* data, size_t n);

  // Protects `ids` (chunks reused from a previous point) against GC and reports, per id, whether
  // the chunk still exists; a missing one must be read and stored again. Holes are reported as
  // present. Thread-safe.
  Result<std::vector<bool>> Retain(const std::vector<ChunkId>& ids);

  // Makes every chunk durable, then publishes the point's manifest atomically. Every non-hole id
  // in `spec.disks` must have come from Store() or Retain() of this session (InvalidArgument
  // otherwise). After success (or failure) the session is finished.
  Result<RecoveryPoint> Commit(PointSpec spec);

  // Ends the session without a point (what the destructor does).
  Status Abort();

 private:
  friend class Vault;
  BackupSession(Vault* vault, std::string session_id, std::string point_id, int64_t begun_ms,
                std::unique_ptr<SessionLease> lease);

  Vault* vault_;
  const std::string session_id_;
  const std::string point_id_;
  const int64_t begun_ms_;
  std::mutex mu_;  // guards lease_, known_, finished_
  std::unique_ptr<SessionLease> lease_;
  std::unordered_set<ChunkId, ChunkIdHash> known_;  // protected and present
  bool finished_ = false;
};

// A problem found by Verify().
struct ChunkProblem {
  enum class Kind { kMissing, kCorrupt, kManifest };
  Kind kind;
  std::string point_id;
  std::string disk;      // "" for kManifest
  uint64_t offset = 0;   // byte offset in the disk
  std::string chunk_id;  // hex; "" for kManifest
  std::string message;
  std::string ToString() const;
};

struct VerifyReport {
  uint64_t points = 0;
  uint64_t disks = 0;
  uint64_t chunks_checked = 0;  // distinct chunks read, decrypted, decompressed and re-hashed
  uint64_t bytes_checked = 0;   // plaintext bytes of those chunks
  std::vector<ChunkProblem> problems;  // sorted by point, disk, offset
  bool ok() const { return problems.empty(); }
  std::string Summary() const;  // one line, then one line per problem (at most 50)
};

struct VerifyOptions {
  // Called from worker threads with (chunks done, chunks total); must be thread-safe and cheap.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct GcOptions {
  size_t batch = 512;  // chunks deleted per exclusive-lock hold
  // Called after each batch with (chunks deleted so far, candidates in total), outside locks.
  std::function<void(uint64_t deleted, uint64_t candidates)> progress;
};

struct GcStats {
  uint64_t points = 0;
  uint64_t chunks_listed = 0;
  uint64_t chunks_referenced = 0;  // by manifests (distinct)
  uint64_t chunks_protected = 0;   // unreferenced but leased by running sessions: kept
  uint64_t chunks_deleted = 0;
  uint64_t bytes_freed = 0;        // stored bytes of the deleted chunks
  uint64_t temp_files_removed = 0;
  uint64_t stale_sessions = 0;     // leases of dead sessions cleaned up
  uint64_t torn_chunks_removed = 0;  // chunks of sessions cut by a host crash that were damaged
  int64_t duration_ms = 0;
};

class Vault {
 public:
  // Creates a new vault in `backend` (Conflict if one exists there) with a fresh master key
  // wrapped under `key_source`. `state_dir` is a host-local directory for leases and locks.
  static Result<std::unique_ptr<Vault>> Create(std::unique_ptr<ObjectBackend> backend,
                                               const std::string& state_dir,
                                               const KeySource& key_source,
                                               const VaultCreateOptions& options = {},
                                               const VaultOpenOptions& open_options = {});
  // Opens an existing vault. NotFound ("VaultNotFound") when there is none; the key errors of
  // UnwrapMasterKey (e.g. "the customer key does not match this vault") when the key is wrong,
  // in which case nothing is decrypted.
  static Result<std::unique_ptr<Vault>> Open(std::unique_ptr<ObjectBackend> backend,
                                             const std::string& state_dir,
                                             const KeySource& key_source,
                                             const VaultOpenOptions& options = {});
  // The same on a local directory: objects in `dir`, state in `dir`/state.
  static Result<std::unique_ptr<Vault>> CreateLocal(const std::string& dir,
                                                    const KeySource& key_source,
                                                    const VaultCreateOptions& options = {},
                                                    const VaultOpenOptions& open_options = {});
  static Result<std::unique_ptr<Vault>> OpenLocal(const std::string& dir,
                                                  const KeySource& key_source,
                                                  const VaultOpenOptions& options = {});

  const std::string& id() const { return vault_id_; }
  uint32_t chunk_size() const { return chunk_size_; }
  int zstd_level() const { return zstd_level_; }
  int threads() const { return threads_; }
  const std::string& protection() const { return protection_; }  // "platform" | "customer"
  ObjectBackend& backend() { return *backend_; }
  const Clock& clock() const { return *clock_; }

  // Starts writing a new point. First cleans up after sessions that died (see Gc()).
  Result<std::unique_ptr<BackupSession>> BeginBackup();

  // Ids of all visible points, oldest first.
  Result<std::vector<std::string>> ListPoints();
  // Reads and authenticates a point's manifest. NotFound ("RecoveryPointNotFound"), or the
  // errors of ParseManifest ("ManifestTampered", ...). `manifest_text`, when given, receives the
  // manifest exactly as stored (to copy it: vault_copy.h).
  Result<RecoveryPoint> ReadPoint(const std::string& point_id,
                                  std::string* manifest_text = nullptr);
  // Removes the point (its manifest, durably). Its chunks are freed by the next Gc().
  Status DeletePoint(const std::string& point_id);

  // Reads one chunk: decrypts (authenticating every stored byte), decompresses and, with
  // IdCheck::kRehash, checks that it hashes to `id`. NotFound with ARM code "ChunkMissing", or
  // Internal "ChunkCorrupt". When the chunk is missing or corrupt here and a fallback (a copy of
  // this vault, SetFallback) holds a good one, that one is returned and this vault's object is
  // replaced by it (repaired). Thread-safe.
  Status ReadChunk(const ChunkId& id, ByteBuffer* plain, IdCheck check = IdCheck::kRehash);
  // Reads the stored (compressed, encrypted) object of a chunk into `*stored` and checks that it
  // decodes, into `*plain`, with `check`. Same errors as ReadChunk; never uses the fallback.
  // Thread-safe. Used to copy chunks byte for byte to a copy of the vault (vault_copy.h).
  Status ReadStoredChunk(const ChunkId& id, std::string* stored, ByteBuffer* plain,
                         IdCheck check = IdCheck::kAuthenticate);
  // The object key of a chunk: "chunks/ab/cdef...".
  static std::string ChunkKey(const ChunkId& id);

  // Re-reads every chunk of one point / of all points and reports what is missing or corrupt,
  // by point, disk and offset. Fails only when the vault cannot be listed.
  Result<VerifyReport> Verify(const std::string& point_id, const VerifyOptions& options = {});
  Result<VerifyReport> VerifyAll(const VerifyOptions& options = {});

  // Deletes chunks that no manifest references and no running session has leased. Safe against
  // concurrent backups (they are not blocked except for one batch at a time) and against being
  // killed at any instant. Refuses (and deletes nothing) when a manifest cannot be read, since
  // its chunks could not be told apart from garbage. Conflict when another GC runs.
  Result<GcStats> Gc(const GcOptions& options = {});

  // Opens the copy of this vault held in `backend` (vault_copy.h): the same vault id, settings
  // and keys, so no key source is needed (the copy's own vault.json still opens it alone, with
  // the same key source as this vault). `state_dir` is the copy's own state directory. NotFound
  // "VaultNotFound" when `backend` holds no vault; Conflict "VaultCopyMismatch" when it holds
  // another vault, or settings that do not authenticate under this vault's keys.
  Result<std::unique_ptr<Vault>> OpenCopy(std::unique_ptr<ObjectBackend> backend,
                                          const std::string& state_dir) const;

  // A copy of this vault to read chunks from when they are missing or corrupt here (see
  // ReadChunk); nullptr removes it. Thread-safe; reads in flight keep the copy they started with.
  void SetFallback(std::shared_ptr<Vault> copy);
  std::shared_ptr<Vault> fallback() const;
  // Chunks repaired from the fallback since this Vault was opened.
  uint64_t chunks_repaired() const { return chunks_repaired_.load(); }

  // Re-wraps the master key under `next` (e.g. a new customer passphrase, or from platform to
  // customer protection); `current` must unwrap it (same errors as Open). Chunks and points are
  // unchanged; vault.json is replaced atomically.
  Status ChangeKey(const KeySource& current, const KeySource& next);

 private:
  friend class BackupSession;
  Vault() = default;
  static Result<std::unique_ptr<Vault>> Load(std::unique_ptr<ObjectBackend> backend,
                                             const std::string& state_dir, const Json& doc,
                                             const KeySource& key_source,
                                             const VaultOpenOptions& options);
  Result<Json> VaultDocument(const Json& key_object) const;
  // Cleans up leases of dead sessions; `stats` may be null.
  Status RecoverStaleSessions(GcStats* stats);
  Result<VerifyReport> VerifyPoints(const std::vector<std::string>& point_ids,
                                    const VerifyOptions& options);

  std::unique_ptr<ObjectBackend> backend_;
  std::string state_dir_;
  std::string vault_id_;
  int64_t created_ms_ = 0;
  uint32_t chunk_size_ = kDefaultChunkSize;
  int zstd_level_ = 1;
  int threads_ = 1;
  std::string protection_;
  VaultKeys keys_;
  const Clock* clock_ = nullptr;
  mutable std::mutex fallback_mu_;  // guards fallback_
  std::shared_ptr<Vault> fallback_;
  std::atomic<uint64_t> chunks_repaired_{0};
};

// The point ids of the vault in `backend` ("points/<id>.json"), oldest first.
Result<std::vector<std::string>> ListPointIds(ObjectBackend& backend);

}  // namespace stratus::recovery::vault
