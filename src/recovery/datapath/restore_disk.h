// RestoreDisk: writes one disk of a recovery point to a new image file (raw or qcow2), or into an
// NBD export (an existing disk, later an instant-restore overlay).
//
// Every chunk is read, authenticated (AES-GCM tag over every stored byte, bound to its id) and
// decompressed (zstd XXH64 checksum over every plaintext byte) before a byte of it is written
// (RestoreOptions::id_check = kRehash also re-hashes it against its id, as `verify` does); a missing or corrupt chunk stops the restore with an error naming the point, the disk
// and the offset, and the partial file is removed, so a restore never returns wrong data. Holes
// stay holes (not written; the target starts sparse), as do all-zero 64 KiB blocks inside chunks.
// Workers decode and write in parallel. The file is fsynced, then renamed into place, then its
// directory fsynced: `dest` appears complete and durable or not at all.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "recovery/datapath/nbd_source.h"
#include "recovery/vault/vault.h"

namespace stratus::recovery::datapath {

enum class DiskFormat { kRaw, kQcow2 };
// "raw" | "qcow2"; InvalidArgument otherwise.
Result<DiskFormat> ParseDiskFormat(const std::string& name);

struct RestoreOptions {
  DiskFormat format = DiskFormat::kQcow2;
  int threads = 0;         // 0 = hardware threads
  bool overwrite = false;  // replace an existing `dest` (Conflict otherwise)
  // kAuthenticate (default): the GCM tag authenticates every stored byte and binds it to the id
  // (only the vault's key holder can produce a chunk that opens under that id), and zstd's
  // checksum checks every plaintext byte. kRehash also re-hashes the plaintext against its id,
  // which only adds protection against a writer bug that stored other bytes under a right id;
  // that is what `verify` checks (~0.7 CPU-s per GB with SHA-NI, ~3 without).
  vault::IdCheck id_check = vault::IdCheck::kAuthenticate;
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

}  // namespace stratus::recovery::datapath
