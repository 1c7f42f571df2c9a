// BlockStream: how one replication cycle's blocks of one disk travel from the source region to
// the target (docs/site-recovery.md "Capture"): a batch of frames, each a run of the disk at an
// offset, either data (zstd-compressed when that is smaller) or zeros, with a SHA-256 over its
// place and plain bytes. The target checks every frame before it writes a byte of the batch.
//
// Layout (little-endian): "SRB1", u32 frame count; per frame: u64 offset, u32 length, u8 kind
// (0 data, 1 zero), u8 encoding (0 plain, 1 zstd), u32 stored length, 32-byte SHA-256 of
// (offset, length, kind, plain data) — so a damaged offset is caught like damaged data — and the
// stored bytes. A frame's length is at most
// kMaxFrameBytes; a batch at most kMaxBatchBytes stored.
// Thread-safety: pure functions (zstd contexts are per thread).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace stratus::recovery::site {

constexpr uint32_t kMaxFrameBytes = 4u << 20;
constexpr size_t kMaxBatchBytes = 32u << 20;

struct BlockFrame {
  uint64_t offset = 0;
  uint32_t length = 0;
  bool zero = false;
  std::string data;  // plain bytes (length of them) unless zero
};

class BlockBatchWriter {
 public:
  // Adds a data frame (compressed when that helps) or a zero frame.
  Status AddData(uint64_t offset, std::string_view plain);
  Status AddZero(uint64_t offset, uint32_t length);
  size_t frames() const { return frames_; }
  size_t stored_bytes() const { return body_.size(); }
  uint64_t plain_bytes() const { return plain_; }
  // The batch, ready to send; the writer is empty afterwards.
  std::string Take();

 private:
  std::string body_;
  size_t frames_ = 0;
  uint64_t plain_ = 0;
};

// Decodes and checks a whole batch: every frame's bounds within `disk_size`, its decompression
// and its SHA-256. InvalidArgument "ReplicationDataCorrupt" naming the frame on any mismatch;
// nothing is returned then.
Result<std::vector<BlockFrame>> DecodeBlockBatch(std::string_view batch, uint64_t disk_size);

}  // namespace stratus::recovery::site
