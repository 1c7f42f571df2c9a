// RestoreDisk: writes one disk of a recovery point to a new image file (raw or qcow2), or into an
// NBD export (an existing disk, later an instant-restore overlay).
//
// Every chunk is read, authenticated (AES-GCM, bound to its id), decompressed (zstd checksum) and
// re-hashed against its id (unless RestoreOptions::id_check says otherwise) before a byte of it is
// written; a missing or corrupt chunk stops the restore with an error naming the point, the disk
// and the offset, and the partial file is removed, so a restore never returns wrong data. Holes
// stay holes (not written; the target starts sparse), as do all-zero 64 KiB blocks inside chunks.
// Workers decode and write in parallel. The file is fsynced, then renamed into place, then its
// directory fsynced: `dest` appears complete and durable or not at all.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "recovery/backup/nbd_source.h"
#include "recovery/vault/vault.h"

namespace stratus::recovery::backup {

enum class DiskFormat { kRaw, kQcow2 };
// "raw" | "qcow2"; InvalidArgument otherwise.
Result<DiskFormat> ParseDiskFormat(const std::string& name);

struct RestoreOptions {
  DiskFormat format = DiskFormat::kQcow2;
  int threads = 0;         // 0 = hardware threads
  bool overwrite = false;  // replace an existing `dest` (Conflict otherwise)
  // kRehash (default): every chunk is re-hashed and must equal its id, on top of the GCM tag and
  // the zstd checksum. kAuthenticate skips the re-hash (GCM authenticates every stored byte and
  // binds it to the id; zstd checks every plaintext byte): ~3x faster on hosts without SHA-NI.
  vault::IdCheck id_check = vault::IdCheck::kRehash;
  // Called from worker threads with (bytes done, bytes total); thread-safe and cheap.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct RestoreStats {
  uint64_t disk_size = 0;
  uint64_t bytes_restored = 0;  // bytes of data chunks (holes excluded)
  uint64_t chunks_read = 0;
  int64_t duration_ms = 0;
};

// Restores `disk_name` of `point` to a new image file `dest`.
Result<RestoreStats> RestoreDisk(vault::Vault& vault, const vault::RecoveryPoint& point,
                                 const std::string& disk_name, const std::string& dest,
                                 const RestoreOptions& options);

// Writes `disk_name` of `point` into a writable NBD export of at least the disk's size. When
// `zero_holes`, holes and zero blocks are written as zeroes (for a target that is not blank);
// otherwise they are skipped. Flushes at the end.
Result<RestoreStats> RestoreDiskToNbd(vault::Vault& vault, const vault::RecoveryPoint& point,
                                      const std::string& disk_name, NbdSource& target,
                                      bool zero_holes, const RestoreOptions& options);

}  // namespace stratus::recovery::backup
