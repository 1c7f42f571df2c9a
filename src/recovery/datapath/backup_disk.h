// BackupDisk: reads one disk over NBD into a vault session; the data path shared by VM backups
// (libvirt pull-mode exports of running VMs, qemu-nbd exports of stopped VMs) and bench/vault.
//
// Incremental forever: given the disk's index in the previous point and a dirty-bitmap meta
// context naming the blocks changed since that point, only chunk slots touched by a changed
// extent are read; every other slot reuses the previous chunk id (protected against GC with
// BackupSession::Retain). The result is a complete index: every point restores on its own.
// Holes: extents that base:allocation reports as reading zeroes are never read or stored, and
// chunks that turn out all-zero become holes.
// Never fails for lack of history: without a previous index, without the bitmap (checkpoint lost,
// VM moved, disk replaced), with a different chunk size, or when reused chunks are missing, it
// reads all allocated extents and deduplicates against the vault, and says why in the stats.
//
// Usage (stopped VM, offline qcow2 with a persistent bitmap "stratus-<prev point>"):
//   QemuNbdExport::Start({.image = path, .bitmap = "stratus-" + prev_id})
//   NbdSource::Connect({.address = export->uri(), .connections = 3,
//                       .meta_contexts = {kBaseAllocation, DirtyBitmapContext(bitmap)}})
//   BackupDisk(*session, *source, {.disk_name = "osdisk", .previous = prev_disk,
//                                  .changed_context = DirtyBitmapContext(bitmap)})
//   ... session->Commit({.disks = {result.index}, ...})
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "recovery/datapath/nbd_source.h"
#include "recovery/vault/vault.h"

namespace stratus::recovery::datapath {

struct BackupProgress {
  uint64_t bytes_done = 0;   // of the bytes to read
  uint64_t bytes_total = 0;  // bytes this backup reads (changed, allocated slots)
};

struct BackupDiskOptions {
  std::string disk_name;                         // name of the disk inside the point
  const vault::DiskIndex* previous = nullptr;    // this disk in the previous point, if any
  std::string changed_context;                   // e.g. DirtyBitmapContext("stratus-<prev>")
  int threads = 0;  // workers (each on its own connection, capped); 0 = hardware threads + 1
  // Called from worker threads; must be thread-safe and cheap.
  std::function<void(const BackupProgress&)> progress;
};

struct BackupDiskStats {
  std::string mode;             // "full", "incremental", or "full-dedup" (fallback)
  std::string fallback_reason;  // why an incremental was not possible ("" if it was)
  uint64_t disk_size = 0;
  uint64_t bytes_to_read = 0;   // planned
  uint64_t bytes_read = 0;
  uint64_t bytes_new = 0;       // plaintext bytes of chunks added to the vault
  uint64_t bytes_stored = 0;    // what those chunks occupy in the vault
  uint64_t chunks_new = 0;
  uint64_t chunks_deduplicated = 0;  // read, but already in the vault
  uint64_t chunks_reused = 0;        // not read: unchanged since the previous point
  uint64_t chunks_reread_missing = 0;  // unchanged, but the previous chunk was gone: read again
  uint64_t hole_slots = 0;
  int64_t duration_ms = 0;
};

struct BackupDiskResult {
  vault::DiskIndex index;
  BackupDiskStats stats;
};

Result<BackupDiskResult> BackupDisk(vault::BackupSession& session, NbdSource& source,
                                    const BackupDiskOptions& options);

}  // namespace stratus::recovery::datapath
