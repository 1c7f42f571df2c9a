// ChunkId and DiskIndex: how a recovery point describes one disk.
//
// A disk of `size` bytes is cut into fixed, aligned slots of `chunk_size` bytes (the last slot may
// be shorter). Each slot is either a hole (reads as zeros: unallocated, or all-zero data) or the
// id of the chunk holding its bytes. The binary encoding (EncodeIndex) is run-length: runs of
// holes cost a few bytes, data slots 32 bytes each. Format: docs/vault-format.md.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace stratus::recovery::vault {

// HMAC-SHA256(vault id key, plaintext) of a chunk. The all-zero value means "hole".
struct ChunkId {
  std::array<uint8_t, 32> bytes{};

  static ChunkId Hole() { return ChunkId{}; }
  bool is_hole() const {
    static const std::array<uint8_t, 32> kZero{};
    return bytes == kZero;
  }
  std::string Hex() const;
  // Parses 64 hex characters; InvalidArgument otherwise.
  static Result<ChunkId> FromHex(std::string_view hex);
  bool operator==(const ChunkId& o) const { return bytes == o.bytes; }
  bool operator<(const ChunkId& o) const { return bytes < o.bytes; }
};

struct ChunkIdHash {
  size_t operator()(const ChunkId& id) const {
    size_t h;
    std::memcpy(&h, id.bytes.data(), sizeof h);  // the id is already a uniform hash
    return h;
  }
};

// Sizes a vault accepts for chunks: powers of two from 64 KiB to 16 MiB.
inline constexpr uint32_t kMinChunkSize = 64u << 10;
inline constexpr uint32_t kMaxChunkSize = 16u << 20;
inline constexpr uint32_t kDefaultChunkSize = 1u << 20;
Status ValidateChunkSize(uint64_t chunk_size);

struct DiskIndex {
  std::string name;          // the disk's name inside the point, e.g. "osdisk", "data0"
  uint64_t size = 0;         // virtual size in bytes
  uint32_t chunk_size = kDefaultChunkSize;
  std::vector<ChunkId> chunks;  // one per slot: ceil(size / chunk_size) entries

  static uint64_t SlotCount(uint64_t size, uint32_t chunk_size) {
    return (size + chunk_size - 1) / chunk_size;
  }
  uint64_t slot_count() const { return SlotCount(size, chunk_size); }
  uint64_t SlotOffset(uint64_t i) const { return i * chunk_size; }
  // Bytes in slot i (the last one may be short).
  uint32_t SlotLength(uint64_t i) const {
    uint64_t end = std::min<uint64_t>(size, (i + 1) * uint64_t{chunk_size});
    return static_cast<uint32_t>(end - i * chunk_size);
  }
  uint64_t allocated_slots() const;
  // Checks the invariants (chunk size, slot count); InvalidArgument naming the disk otherwise.
  Status Validate() const;
};

// Binary run-length encoding of `index.chunks` (name/size/chunk_size travel in the manifest).
std::string EncodeIndex(const DiskIndex& index);
// Decodes into `index->chunks`; `index->size` and `chunk_size` must already be set.
Status DecodeIndex(std::string_view data, DiskIndex* index);

}  // namespace stratus::recovery::vault
