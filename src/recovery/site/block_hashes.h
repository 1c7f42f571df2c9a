// BlockHashes: what the target region holds of one replicated disk, as a 64-bit hash per 4 KiB
// block (docs/site-recovery.md "Capture"), kept by the source. QEMU's dirty bitmaps mark 64 KiB
// clusters; a cycle reads each dirty cluster and sends only its 4 KiB blocks whose hash differs
// from what the target has, so scattered 4 KiB writes cost about what they changed.
//
// A hash of 0 means "unknown": such a block is always sent. The map is valid for one confirmed
// cycle: it is saved (temp file, fsync, rename) with that cycle's number after the target
// confirmed it, and loading it for any other number gives an all-unknown map (a crash between the
// target's commit and the save costs one cycle of unfiltered sends, never a skipped block).
// Size: 8 bytes per 4 KiB (2 MiB per GiB of disk). Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace stratus::recovery::site {

class BlockHashes {
 public:
  static constexpr uint64_t kBlock = 4096;

  // The map of a disk of `disk_size` bytes saved for cycle `seq` at `path`; all-unknown when
  // there is none, it is for another cycle or size, or it is damaged.
  static BlockHashes Load(const std::string& path, uint64_t disk_size, uint64_t seq);
  Status Save(const std::string& path, uint64_t seq) const;

  // The hash of one 4 KiB block (never 0).
  static uint64_t Hash(const char* block);
  uint64_t Get(uint64_t index) const { return index < h_.size() ? h_[index] : 0; }
  void Set(uint64_t index, uint64_t hash) {
    if (index < h_.size()) h_[index] = hash;
  }
  uint64_t blocks() const { return h_.size(); }
  bool loaded() const { return loaded_; }

 private:
  std::vector<uint64_t> h_;
  uint64_t size_ = 0;
  bool loaded_ = false;
};

}  // namespace stratus::recovery::site
