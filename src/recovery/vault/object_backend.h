// ObjectBackend: where a vault keeps its objects (chunks, manifests, vault.json), by key.
//
// The vault needs only a flat key/value store with atomic whole-object puts, so the same vault
// code runs on a local directory (LocalDirBackend, below) and later on an S3-compatible object
// store (a new file implementing this interface, no change to the vault).
//
// Keys are relative paths of [A-Za-z0-9._-] components separated by '/', e.g.
// "chunks/ab/cdef...", "points/20261122T040506Z-1a2b3c4d.json"; ValidateKey() checks them.
//
// Thread-safety: implementations must be safe for concurrent calls from many threads and from
// several processes sharing the same store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace stratus::recovery::vault {

enum class Durability {
  kDeferred,   // durable after the next Sync(): used for chunks, synced once before a manifest
  kImmediate,  // durable when the call returns: manifests, vault.json, deletions of manifests
};

class ObjectBackend {
 public:
  virtual ~ObjectBackend() = default;

  // Stores `data` under `key`, replacing any previous object. Atomic: a concurrent or later
  // reader (also after a crash) sees no object, the old one, or the whole new one; never a part.
  virtual Status Put(const std::string& key, std::string_view data, Durability durability) = 0;
  // Reads the whole object into `*out` (its capacity is reused). NotFound with ARM code
  // "ObjectNotFound" when there is no such object.
  virtual Status Get(const std::string& key, std::string* out) = 0;
  virtual Result<bool> Exists(const std::string& key) = 0;
  // Removes `key`; OK when it does not exist.
  virtual Status Delete(const std::string& key, Durability durability) = 0;
  // Calls `fn(key, size)` for every object whose key starts with `prefix` (which ends in '/'),
  // in no particular order; stops at the first non-OK status `fn` returns and returns it.
  virtual Status List(const std::string& prefix,
                      const std::function<Status(std::string_view key, uint64_t size)>& fn) = 0;
  // Makes every earlier kDeferred Put of this backend durable.
  virtual Status Sync() = 0;
  // Removes the leftovers of Puts that were interrupted (their writer is gone); returns how many.
  virtual Result<uint64_t> CleanupIncompletePuts() = 0;
  // "local:/var/lib/stratus/vaults/v1": for messages.
  virtual std::string Describe() const = 0;
};

// InvalidArgument naming the key unless it is a valid object key.
Status ValidateKey(std::string_view key);

// Objects under a local directory: key "a/b/c" is the file <root>/a/b/c. A Put writes a temporary
// file under <root>/tmp/ (named after the writer's boot id and pid, so leftovers of dead writers
// are recognised), then renames it into place; kImmediate also fsyncs the file before and the
// directory after the rename. Sync() is one syncfs(2) of the file system holding <root>: it covers
// the data and the renames of all deferred puts.
class LocalDirBackend final : public ObjectBackend {
 public:
  // Creates <root> (mode 0700) and <root>/tmp if missing.
  static Result<std::unique_ptr<LocalDirBackend>> Open(const std::string& root);
  ~LocalDirBackend() override;

  Status Put(const std::string& key, std::string_view data, Durability durability) override;
  Status Get(const std::string& key, std::string* out) override;
  Result<bool> Exists(const std::string& key) override;
  Status Delete(const std::string& key, Durability durability) override;
  Status List(const std::string& prefix,
              const std::function<Status(std::string_view key, uint64_t size)>& fn) override;
  Status Sync() override;
  Result<uint64_t> CleanupIncompletePuts() override;
  std::string Describe() const override { return "local:" + root_; }

  const std::string& root() const { return root_; }
  // The file holding `key` (for tests that damage objects on purpose, and for tools).
  std::string PathOf(const std::string& key) const { return root_ + "/" + key; }

 private:
  explicit LocalDirBackend(std::string root, int root_fd);
  std::string TempPath();

  std::string root_;
  int root_fd_;  // kept open for syncfs(2)
  std::string temp_prefix_;  // "<boot-id-prefix>.<pid>."
};

// The first 8 characters of /proc/sys/kernel/random/boot_id: tells a crash of the process (same
// boot, the page cache survived) from a crash of the host (power loss: unsynced writes are lost).
std::string BootId();

}  // namespace stratus::recovery::vault
