#include "recovery/vault/chunk_codec.h"

#include <zstd.h>

#include <cstring>

namespace stratus::recovery::vault {
namespace {

constexpr char kMagic[4] = {'S', 'V', 'C', 'K'};
constexpr uint8_t kCodecStored = 0;
constexpr uint8_t kCodecZstd = 1;

struct ZstdContexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  int level = -1000;
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};

ZstdContexts& Zstd() {
  thread_local ZstdContexts z;
  return z;
}

Status Corrupt(const ChunkId& id, const std::string& why) {
  return Status(StatusCode::kInternal, "ChunkCorrupt", "chunk " + id.Hex() + " is corrupt: " + why,
                id.Hex());
}

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

// AAD = header || id.
void MakeAad(const uint8_t* header, const ChunkId& id, uint8_t aad[kChunkHeaderBytes + 32]) {
  std::memcpy(aad, header, kChunkHeaderBytes);
  std::memcpy(aad + kChunkHeaderBytes, id.bytes.data(), 32);
}

}  // namespace

void ByteBuffer::Resize(size_t n) {
  if (n > cap_) {
    size_t cap = std::max(n, cap_ * 2);
    std::unique_ptr<uint8_t[]> p(new uint8_t[cap]);
    if (size_ > 0) std::memcpy(p.get(), p_.get(), size_);
    p_ = std::move(p);
    cap_ = cap;
  }
  size_ = n;
}

bool IsAllZero(const uint8_t* p, size_t n) {
  if (n < 16) {
    for (size_t i = 0; i < n; ++i)
      if (p[i]) return false;
    return true;
  }
  static const uint8_t kZero[16] = {};
  // The first 16 bytes are zero and every byte equals the one 16 before it.
  return std::memcmp(p, kZero, 16) == 0 && std::memcmp(p, p + 16, n - 16) == 0;
}

ChunkId ComputeChunkId(const VaultKeys& keys, const uint8_t* plain, size_t n) {
  ChunkId id;
  HmacSha256(keys.id_key, plain, n, id.bytes.data());
  return id;
}

Status EncodeChunk(const VaultKeys& keys, const ChunkId& id, const uint8_t* plain, size_t n,
                   int zstd_level, ByteBuffer* out) {
  if (n > UINT32_MAX) return InvalidArgument("chunk larger than 4 GiB");
  size_t bound = ZSTD_compressBound(n);
  out->Resize(kChunkHeaderBytes + std::max(bound, n) + kGcmTagBytes);
  uint8_t* h = out->data();
  uint8_t* body = h + kChunkHeaderBytes;

  ZstdContexts& z = Zstd();
  if (z.level != zstd_level) {
    ZSTD_CCtx_reset(z.c, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(z.c, ZSTD_c_compressionLevel, zstd_level);
    ZSTD_CCtx_setParameter(z.c, ZSTD_c_checksumFlag, 1);  // XXH64 of the plaintext in the frame
    z.level = zstd_level;
  }
  size_t clen = ZSTD_compress2(z.c, body, bound, plain, n);
  uint8_t codec = kCodecZstd;
  if (ZSTD_isError(clen) || clen >= n) {
    std::memcpy(body, plain, n);  // incompressible: store as is
    clen = n;
    codec = kCodecStored;
  }
  std::memcpy(h, kMagic, 4);
  h[4] = kChunkFormatVersion;
  h[5] = codec;
  h[6] = h[7] = 0;
  PutU32(h + 8, static_cast<uint32_t>(n));
  RETURN_IF_ERROR(RandomBytes(h + 12, kGcmNonceBytes));
  uint8_t aad[kChunkHeaderBytes + 32];
  MakeAad(h, id, aad);
  RETURN_IF_ERROR(ThreadLocalAesGcm().Seal(keys.data_key, h + 12, aad, sizeof aad, body, clen,
                                           body, body + clen));
  out->Resize(kChunkHeaderBytes + clen + kGcmTagBytes);
  return Status::Ok();
}

Status DecodeChunk(const VaultKeys& keys, const ChunkId& id, std::string_view stored,
                   ByteBuffer* plain, IdCheck check) {
  if (stored.size() < kChunkHeaderBytes + kGcmTagBytes) return Corrupt(id, "truncated");
  const auto* h = reinterpret_cast<const uint8_t*>(stored.data());
  if (std::memcmp(h, kMagic, 4) != 0) return Corrupt(id, "bad magic");
  if (h[4] != kChunkFormatVersion)
    return Corrupt(id, "unsupported chunk format version " + std::to_string(h[4]));
  uint8_t codec = h[5];
  if (codec != kCodecStored && codec != kCodecZstd)
    return Corrupt(id, "unknown codec " + std::to_string(codec));
  uint32_t n = GetU32(h + 8);
  if (n > kMaxChunkSize) return Corrupt(id, "plaintext length out of range");
  size_t clen = stored.size() - kChunkHeaderBytes - kGcmTagBytes;
  if (codec == kCodecStored && clen != n) return Corrupt(id, "stored length mismatch");

  // Decrypt into a per-thread scratch buffer (the stored bytes are read-only).
  // Stored chunks decrypt straight into `plain`; compressed ones via a per-thread scratch buffer.
  thread_local ByteBuffer scratch;
  plain->Resize(n);
  uint8_t* dst = plain->data();
  if (codec == kCodecZstd) {
    scratch.Resize(clen);
    dst = scratch.data();
  }
  uint8_t aad[kChunkHeaderBytes + 32];
  MakeAad(h, id, aad);
  const uint8_t* ct = h + kChunkHeaderBytes;
  ASSIGN_OR_RETURN(bool authentic, ThreadLocalAesGcm().Open(keys.data_key, h + 12, aad,
                                                            sizeof aad, ct, clen, ct + clen, dst));
  if (!authentic) return Corrupt(id, "authentication failed (modified or not this chunk)");
  if (codec == kCodecZstd) {
    // Verifies the frame's content checksum when the frame has one.
    size_t got = ZSTD_decompressDCtx(Zstd().d, plain->data(), n, scratch.data(), clen);
    if (ZSTD_isError(got)) return Corrupt(id, std::string("zstd: ") + ZSTD_getErrorName(got));
    if (got != n) return Corrupt(id, "decompressed length mismatch");
  }
  if (check == IdCheck::kRehash) {
    ChunkId again = ComputeChunkId(keys, plain->data(), n);
    if (!ConstantTimeEqual(again.bytes.data(), id.bytes.data(), 32))
      return Corrupt(id, "content does not hash to its id");
  }
  return Status::Ok();
}

}  // namespace stratus::recovery::vault
