// The stored form of a chunk: a 24-byte header, the zstd-compressed (or, when compression does
// not help, raw) plaintext encrypted with AES-256-GCM, and the 16-byte GCM tag.
//
//   0  magic "SVCK"        4  version (1)     5  codec (0 stored, 1 zstd)   6  reserved (0, u16)
//   8  plaintext length (u32 little-endian)  12  nonce (12 random bytes)   24  ciphertext ... tag
//
// The GCM additional data is the header followed by the 32-byte chunk id, so a chunk file moved to
// another id's name, or with any header byte changed, fails authentication. After decryption the
// plaintext is re-hashed and must equal the id (the id is keyed: HMAC-SHA256 with the vault's id
// key). Details: docs/vault-format.md.
//
// Thread-safety: the functions use per-thread zstd and cipher contexts; call from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "recovery/vault/disk_index.h"
#include "recovery/vault/keys.h"

namespace stratus::recovery::vault {

inline constexpr size_t kChunkHeaderBytes = 24;
inline constexpr uint8_t kChunkFormatVersion = 1;

// A growable byte buffer that does not zero-fill (1 MiB chunks are rewritten constantly).
class ByteBuffer {
 public:
  uint8_t* data() { return p_.get(); }
  const uint8_t* data() const { return p_.get(); }
  size_t size() const { return size_; }
  // Sets the size; the content up to min(old size, n) is kept when growing.
  void Resize(size_t n);
  std::string_view view() const {
    return std::string_view(reinterpret_cast<const char*>(p_.get()), size_);
  }

 private:
  std::unique_ptr<uint8_t[]> p_;
  size_t size_ = 0;
  size_t cap_ = 0;
};

// True when all n bytes are zero.
bool IsAllZero(const uint8_t* p, size_t n);

// HMAC-SHA256(keys.id_key, plaintext).
ChunkId ComputeChunkId(const VaultKeys& keys, const uint8_t* plain, size_t n);

// Compresses (zstd at `zstd_level`) and encrypts `plain` for chunk `id` into `*out`.
Status EncodeChunk(const VaultKeys& keys, const ChunkId& id, const uint8_t* plain, size_t n,
                   int zstd_level, ByteBuffer* out);

// How much DecodeChunk checks. Both levels authenticate every stored byte (the GCM tag, with the
// chunk id in the additional data) and, for compressed chunks, the zstd content checksum (XXH64
// of the plaintext, written when the chunk was compressed).
enum class IdCheck {
  kRehash,        // also recompute HMAC-SHA256(id key, plaintext) and compare with the id
  kAuthenticate,  // trust the authenticated encryption: ~3x faster without SHA-NI
};

// Decrypts, decompresses and checks a stored chunk into `*plain`. Fails with Internal and ARM
// code "ChunkCorrupt" (message says why: header, authentication, decompression, id mismatch).
Status DecodeChunk(const VaultKeys& keys, const ChunkId& id, std::string_view stored,
                   ByteBuffer* plain, IdCheck check = IdCheck::kRehash);

}  // namespace stratus::recovery::vault
