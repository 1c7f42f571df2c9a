// Coordination of backup sessions and garbage collection on one vault, across threads and
// processes of a host, through files in the vault's state directory:
//
//   <state>/gc.lock           flock: sessions take it shared around "protect ids + check that
//                             the chunks exist"; GC takes it exclusive around "read leases +
//                             delete a batch of chunks".
//   <state>/gc.run.lock       flock: at most one GC per vault.
//   <state>/sessions/<id>.lease  one per running backup session, flock'ed exclusively by its
//                             owner for its whole life (a lease whose lock can be taken belongs
//                             to a dead process). Text: a JSON header line, then "R <chunk id>"
//                             (the session will reference this chunk) and "W <chunk id>" (the
//                             session wrote this chunk) lines, appended.
//
// Why it is safe (docs/vault-format.md has the full argument): a session appends an id to its
// lease and checks the chunk exists while holding gc.lock shared; GC re-reads all leases and all
// manifests while holding gc.lock exclusive, right before each batch of deletions, and never
// deletes an id it has seen in either. So a chunk a session relies on is either seen by GC (and
// kept) or was deleted before the session looked (and the session writes it again).
// flock locks belong to open file descriptions, so this works between threads of one process as
// well as between processes; a process killed with -9 releases its locks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "recovery/vault/disk_index.h"

namespace stratus::recovery::vault {

// An flock on a file, released (and the fd closed) on destruction.
class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  // Opens `path` (creating it when `create`) and locks it, waiting when `wait`. Conflict when
  // !wait and the lock is held elsewhere; NotFound when !create and the file does not exist.
  static Result<std::unique_ptr<FileLock>> Acquire(const std::string& path, Mode mode, bool wait,
                                                   bool create = true);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

// The lease of one running backup session. Not thread-safe: the owning BackupSession serialises
// calls with its own mutex.
class SessionLease {
 public:
  // Creates <state>/sessions/<session_id>.lease, locked, with its header written.
  static Result<std::unique_ptr<SessionLease>> Create(const std::string& state_dir,
                                                      const std::string& session_id,
                                                      const Json& header);
  ~SessionLease();  // Release()s

  // Appends "R id" lines for `ids` and runs `check` while gc.lock is held shared.
  Status ProtectAndCheck(const std::vector<ChunkId>& ids, const std::function<Status()>& check);
  // Appends a "W id" line (no gc.lock needed: only stale-lease recovery reads these).
  Status RecordWritten(const ChunkId& id);
  // Removes the lease file and unlocks. Idempotent.
  Status Release();

 private:
  SessionLease(std::string state_dir, std::string path, int fd, int gc_fd)
      : state_dir_(std::move(state_dir)), path_(std::move(path)), fd_(fd), gc_fd_(gc_fd) {}
  Status Append(const std::string& text);
  std::string state_dir_;
  std::string path_;
  int fd_;     // lease file, flock'ed exclusive
  int gc_fd_;  // gc.lock, flock'ed shared during ProtectAndCheck
};

// What GC learns from the leases. Call Refresh() only while holding gc.lock exclusive.
class LeaseScanner {
 public:
  explicit LeaseScanner(std::string state_dir) : state_dir_(std::move(state_dir)) {}
  // Reads what live leases appended since the last call; adds their "R" and "W" ids to
  // `protected_ids` (ids are never removed: once seen, kept for the rest of this GC).
  Status Refresh(std::unordered_set<ChunkId, ChunkIdHash>* protected_ids);
  size_t live_sessions() const { return offsets_.size(); }

 private:
  std::string state_dir_;
  std::map<std::string, uint64_t> offsets_;  // lease file -> bytes consumed
};

// A lease whose owner died.
struct StaleLease {
  std::string path;
  Json header;                    // as written by the owner (session_id, boot_id, pid, ...)
  std::vector<ChunkId> written;   // its "W" ids
  std::unique_ptr<FileLock> lock;  // held: nobody else recovers it concurrently
};

// Finds leases whose owner is gone (their lock can be taken) and locks them.
Result<std::vector<StaleLease>> FindStaleLeases(const std::string& state_dir);

}  // namespace stratus::recovery::vault
