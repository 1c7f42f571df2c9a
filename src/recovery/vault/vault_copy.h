// VaultCopier: keeps a second, complete copy of a vault up to date (redundancy "Copy").
//
// A copy is a whole vault of its own in another backend (e.g. a LocalDirBackend on another
// disk): the same vault.json (the master key wrapped the same way), the same chunk objects (same
// ids, the same encrypted bytes: nothing is re-encrypted) and the same signed point manifests.
// So Vault::OpenLocal(copy dir, the vault's key source) opens it alone, and a user who lost the
// primary restores from the copy; while the primary is fine, Vault::SetFallback(copy) lets reads
// of missing or corrupt chunks be served (and repaired) from it.
//
// CatchUp() makes the copy equal to the primary's points at the time it lists them:
//   1. vault.json is copied when the copy has none or a different one (after ChangeKey);
//   2. for each point of the primary missing in the copy, oldest first: its chunks missing in the
//      copy are read from the primary, checked to authenticate (GCM under the chunk's id, zstd
//      checksum), written with deferred durability, synced once, then the manifest is written
//      durably. A point is never visible in the copy before all its chunks are durable there;
//   3. points of the copy that the primary no longer has are deleted from the copy (prune), and
//      the copy's chunks that no manifest references any more are garbage-collected.
// It is incremental (only missing objects move; chunks shared by points move once) and parallel
// (vault::ParallelFor). Killed at any instant, it leaves the copy consistent: copied chunks without
// a manifest are invisible, and the next run finds them present and goes on from there. When a
// run was cut by a host crash (its journal names another boot), chunks found in the copy are
// decoded before they are trusted, since unsynced files may be torn.
//
// Thread-safety: one CatchUp() per copy at a time, across processes too (an flock in the copy's
// state directory; a second one gets Conflict "VaultCopyRunning"). Safe against concurrent
// backups, deletions and GC on the primary (a point deleted meanwhile is skipped).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "recovery/vault/vault.h"

namespace stratus::recovery::vault {

struct CopyOptions {
  int threads = 0;  // 0 = the primary vault's threads
  // Decode every chunk already in the copy before trusting it (forced after a host crash).
  bool verify_existing = false;
  // Delete from the copy the points the primary no longer has.
  bool prune = true;
  // Points of the copy the primary lacks but that must stay in the copy anyway (e.g. the service
  // still indexes them, so the primary lost them by damage, not by deletion). May be empty.
  std::function<bool(const std::string& point_id)> keep_in_copy;
  // GC of the copy: after a prune that deleted points (false), or on every run (true).
  bool always_gc = false;
  // Called with (chunks done, chunks to copy) as chunks are copied; thread-safe and cheap.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct CopyStats {
  uint64_t points_in_primary = 0;
  uint64_t points_copied = 0;
  uint64_t points_skipped = 0;   // deleted from the primary while being copied
  uint64_t points_removed = 0;   // pruned from the copy
  uint64_t points_failed = 0;    // could not be copied (see errors)
  uint64_t points_behind = 0;    // primary points still missing in the copy after the run
  uint64_t chunks_checked = 0;   // distinct chunks the copied points needed
  uint64_t chunks_copied = 0;
  uint64_t bytes_copied = 0;     // stored (encrypted) bytes written to the copy
  uint64_t chunks_gc_deleted = 0;
  bool config_copied = false;
  bool verified_existing = false;
  std::vector<std::string> errors;  // one per failed point: what failed and why
  int64_t duration_ms = 0;
  bool ok() const { return errors.empty(); }
  std::string Summary() const;
};

class VaultCopier {
 public:
  // `primary` must outlive the copier. `copy` is the copy's backend; `copy_state_dir` a
  // host-local directory for the copy's locks and journal (for a local copy: <dir>/state, the
  // same one Vault::OpenLocal of the copy uses).
  VaultCopier(Vault& primary, std::unique_ptr<ObjectBackend> copy, std::string copy_state_dir);
  // The copy in the local directory `dir` (created if missing). InvalidArgument for a relative
  // path.
  static Result<std::unique_ptr<VaultCopier>> OpenLocal(Vault& primary, const std::string& dir);

  // Brings the copy up to date (see the file comment). Fails (nothing is pruned) when the
  // primary's vault.json is unreadable or the copy holds another vault (Conflict
  // "VaultCopyMismatch"); Conflict "VaultCopyRunning" when another CatchUp runs on this copy.
  // Points that cannot be copied (a chunk missing or corrupt in the primary and absent from the
  // copy) are reported in CopyStats::errors and the others are still copied.
  Result<CopyStats> CatchUp(const CopyOptions& options = {});

  // How many points of the primary the copy lacks (cheap: two listings).
  Result<uint64_t> PointsBehind();

  // The copy's objects.
  ObjectBackend& copy_backend() { return copy_vault_ ? copy_vault_->backend() : *copy_; }

 private:
  Status CopyConfig(CopyStats* stats);
  Vault& primary_;
  std::unique_ptr<ObjectBackend> copy_;  // until copy_vault_ is opened (it then owns it)
  std::unique_ptr<Vault> copy_vault_;    // the copy, sharing the primary's keys
  std::string state_dir_;
};

// The copy of `primary` in the local directory `dir` as a Vault of its own (sharing the primary's
// keys; state in <dir>/state), e.g. for Vault::SetFallback. Errors of Vault::OpenCopy; NotFound
// "VaultNotFound" when nothing was copied there yet.
Result<std::unique_ptr<Vault>> OpenLocalCopy(const Vault& primary, const std::string& dir);

}  // namespace stratus::recovery::vault
