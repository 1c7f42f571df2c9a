#include "recovery/vault/vault_copy.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_set>

#include "core/fs.h"
#include "recovery/vault/leases.h"
#include "recovery/vault/parallel.h"

namespace stratus::recovery::vault {
namespace {

// Removes the journal of a run that ended (well or badly) without the process dying.
struct JournalGuard {
  std::string path;
  ~JournalGuard() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

std::string CopyStats::Summary() const {
  std::ostringstream out;
  out << points_copied << " point(s) copied, " << chunks_copied << " chunk(s) (" << bytes_copied
      << " bytes) written, " << points_removed << " point(s) removed from the copy, "
      << points_behind << " behind";
  if (!errors.empty()) out << "; " << errors.size() << " point(s) failed: " << errors.front();
  return out.str();
}

VaultCopier::VaultCopier(Vault& primary, std::unique_ptr<ObjectBackend> copy,
                         std::string copy_state_dir)
    : primary_(primary), copy_(std::move(copy)), state_dir_(std::move(copy_state_dir)) {}

Result<std::unique_ptr<VaultCopier>> VaultCopier::OpenLocal(Vault& primary,
                                                            const std::string& dir) {
  ASSIGN_OR_RETURN(auto backend, LocalDirBackend::Open(dir));
  return std::make_unique<VaultCopier>(primary, std::move(backend), dir + "/state");
}

Result<std::unique_ptr<Vault>> OpenLocalCopy(const Vault& primary, const std::string& dir) {
  if (!PathExists(dir + "/" + kVaultKey))
    return NotFound("there is no copy of vault " + primary.id() + " in '" + dir + "' yet", dir,
                    "VaultNotFound");
  ASSIGN_OR_RETURN(auto backend, LocalDirBackend::Open(dir));
  return primary.OpenCopy(std::move(backend), dir + "/state");
}

Status VaultCopier::CopyConfig(CopyStats* stats) {
  std::string want, have;
  Status st = primary_.backend().Get(kVaultKey, &want);
  if (!st.ok())
    return Status(st.code(), st.arm_code(),
                  "cannot read the primary vault's vault.json in " + primary_.backend().Describe() +
                      ", nothing copied: " + st.message());
  ObjectBackend& copy = copy_backend();
  st = copy.Get(kVaultKey, &have);
  if (st.ok() && have == want) return Status::Ok();
  if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
  if (st.ok()) {
    // A different vault.json: fine after ChangeKey of this vault, refused for another vault.
    Json doc = Json::parse(have, nullptr, false);
    std::string other = doc.is_object() ? doc.value("vault_id", "") : "";
    if (other != primary_.id())
      return Conflict(copy.Describe() + " holds " +
                          (other.empty() ? std::string("something that is not a vault")
                                         : "another vault (" + other + ")") +
                          ", not a copy of vault " + primary_.id() + "; nothing copied",
                      copy.Describe(), "VaultCopyMismatch");
  }
  RETURN_IF_ERROR(copy.Put(kVaultKey, want, Durability::kImmediate));
  stats->config_copied = true;
  return Status::Ok();
}

Result<uint64_t> VaultCopier::PointsBehind() {
  ASSIGN_OR_RETURN(auto have, ListPointIds(copy_backend()));
  ASSIGN_OR_RETURN(auto want, ListPointIds(primary_.backend()));
  uint64_t behind = 0;
  for (const auto& id : want)
    if (!std::binary_search(have.begin(), have.end(), id)) ++behind;
  return behind;
}

Result<CopyStats> VaultCopier::CatchUp(const CopyOptions& options) {
  const int64_t t0 = primary_.clock().MonotonicMs();
  CopyStats stats;
  RETURN_IF_ERROR(MakeDirs(state_dir_, 0700));
  auto lock = FileLock::Acquire(state_dir_ + "/copy.lock", FileLock::Mode::kExclusive,
                                /*wait=*/false);
  if (!lock.ok()) {
    if (lock.status().code() == StatusCode::kConflict)
      return Conflict("a copy of vault " + primary_.id() + " to " + copy_backend().Describe() +
                          " is already running",
                      copy_backend().Describe(), "VaultCopyRunning");
    return lock.status();
  }
  // The journal says "a run is in progress, started in this boot". Found from another boot: the
  // host went down mid-copy, and chunks renamed into place but never synced may be torn.
  const std::string journal = state_dir_ + "/copy.journal";
  bool verify_existing = options.verify_existing;
  if (auto prev = ReadFile(journal); prev.ok()) {
    Json j = Json::parse(*prev, nullptr, false);
    if (!j.is_object() || j.value("boot_id", "") != BootId()) verify_existing = true;
  }
  Json jdoc = {{"format", "stratus-vault-copy-journal"}, {"version", 1},
               {"boot_id", BootId()}, {"pid", static_cast<int64_t>(::getpid())}};
  RETURN_IF_ERROR(WriteFileAtomic(journal, jdoc.dump(), 0600));
  JournalGuard guard{journal};
  stats.verified_existing = verify_existing;

  RETURN_IF_ERROR(CopyConfig(&stats));
  if (!copy_vault_) {
    ASSIGN_OR_RETURN(copy_vault_, primary_.OpenCopy(std::move(copy_), state_dir_));
  }
  Vault& copy = *copy_vault_;
  ObjectBackend& out = copy.backend();
  RETURN_IF_ERROR(out.CleanupIncompletePuts().status());

  ASSIGN_OR_RETURN(std::vector<std::string> primary_ids, primary_.ListPoints());
  ASSIGN_OR_RETURN(std::vector<std::string> copy_ids, copy.ListPoints());
  stats.points_in_primary = primary_ids.size();

  // Manifests of the missing points first (they are small): the total for progress.
  struct Todo {
    RecoveryPoint point;
    std::string text;
    std::vector<ChunkId> chunks;  // distinct, not holes
  };
  std::vector<Todo> todo;
  for (const auto& id : primary_ids) {
    if (std::binary_search(copy_ids.begin(), copy_ids.end(), id)) continue;
    Todo t;
    auto p = primary_.ReadPoint(id, &t.text);
    if (!p.ok()) {
      if (p.status().code() == StatusCode::kNotFound) {
        ++stats.points_skipped;
      } else {
        ++stats.points_failed;
        stats.errors.push_back("point " + id + ": " + p.status().message());
      }
      continue;
    }
    t.point = std::move(p).value();
    for (const auto& d : t.point.disks)
      for (const auto& c : d.chunks)
        if (!c.is_hole()) t.chunks.push_back(c);
    std::sort(t.chunks.begin(), t.chunks.end());
    t.chunks.erase(std::unique(t.chunks.begin(), t.chunks.end()), t.chunks.end());
    todo.push_back(std::move(t));
  }
  uint64_t total = 0;
  for (const auto& t : todo) total += t.chunks.size();

  const int threads = options.threads > 0 ? options.threads : primary_.threads();
  std::unordered_set<ChunkId, ChunkIdHash> in_copy;  // durable in the copy (checked or synced)
  std::atomic<uint64_t> done{0}, chunks_copied{0}, bytes_copied{0};
  for (auto& t : todo) {
    std::vector<ChunkId> need;
    for (const auto& c : t.chunks)
      if (!in_copy.count(c)) need.push_back(c);
    std::vector<std::string> stored(static_cast<size_t>(std::max(threads, 1)));
    std::vector<ByteBuffer> plain(stored.size());
    Status st = ParallelFor(need.size(), threads, [&](size_t i, int w) -> Status {
      const ChunkId& id = need[i];
      const std::string key = Vault::ChunkKey(id);
      bool present = false;
      if (verify_existing) {
        present = copy.ReadStoredChunk(id, &stored[w], &plain[w], IdCheck::kAuthenticate).ok();
      } else {
        ASSIGN_OR_RETURN(present, out.Exists(key));
      }
      if (!present) {
        // Never the fallback path: the bytes must come from the primary and authenticate there.
        Status rs = primary_.ReadStoredChunk(id, &stored[w], &plain[w], IdCheck::kAuthenticate);
        if (!rs.ok())
          return Status(rs.code(), rs.arm_code(),
                        "chunk " + id.Hex() + " cannot be copied: " + rs.message(), id.Hex());
        RETURN_IF_ERROR(out.Put(key, stored[w], Durability::kDeferred));
        ++chunks_copied;
        bytes_copied += stored[w].size();
      }
      uint64_t d = ++done;
      if (options.progress) options.progress(d, total);
      return Status::Ok();
    });
    stats.chunks_checked += need.size();
    if (!st.ok()) {
      // Deleted from the primary (and its chunks collected) while we copied: nothing to keep.
      auto still = primary_.backend().Exists(PointKey(t.point.point_id));
      if (still.ok() && !*still) {
        ++stats.points_skipped;
        continue;
      }
      if (st.code() != StatusCode::kNotFound && st.arm_code() != "ChunkCorrupt") return st;
      ++stats.points_failed;
      stats.errors.push_back("point " + t.point.point_id + ": " + st.message());
      continue;
    }
    // Chunks durable first, then the manifest: a visible point never lacks a chunk.
    RETURN_IF_ERROR(out.Sync());
    for (const auto& c : need) in_copy.insert(c);
    RETURN_IF_ERROR(out.Put(PointKey(t.point.point_id), t.text, Durability::kImmediate));
    ++stats.points_copied;
  }
  stats.chunks_copied = chunks_copied.load();
  stats.bytes_copied = bytes_copied.load();

  if (options.prune) {
    // A primary whose vault.json vanished (a lost or unmounted disk) lists no points: that is no
    // reason to empty the copy.
    ASSIGN_OR_RETURN(bool primary_there, primary_.backend().Exists(kVaultKey));
    if (!primary_there)
      return NotFound("the primary vault's vault.json vanished from " +
                          primary_.backend().Describe() + "; the copy was not pruned",
                      primary_.backend().Describe(), "VaultNotFound");
    for (const auto& id : copy_ids) {
      if (std::binary_search(primary_ids.begin(), primary_ids.end(), id)) continue;
      if (options.keep_in_copy && options.keep_in_copy(id)) continue;
      Status st = copy.DeletePoint(id);
      if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
      ++stats.points_removed;
    }
  }
  if (stats.points_removed > 0 || options.always_gc) {
    ASSIGN_OR_RETURN(GcStats gc, copy.Gc());
    stats.chunks_gc_deleted = gc.chunks_deleted;
  }
  ASSIGN_OR_RETURN(stats.points_behind, PointsBehind());
  stats.duration_ms = primary_.clock().MonotonicMs() - t0;
  return stats;
}

}  // namespace stratus::recovery::vault
