#include "recovery/site/block_stream.h"

#include <openssl/evp.h>
#include <zstd.h>

#include <cstring>
#include <memory>

namespace stratus::recovery::site {

namespace {

constexpr char kStreamMagic[4] = {'S', 'R', 'B', '1'};
constexpr size_t kFrameHeader = 8 + 4 + 1 + 1 + 4 + 32;

// The frame's digest covers where it goes as well as what it holds: a damaged offset or length
// is caught like damaged data.
void FrameDigest(uint64_t offset, uint32_t length, uint8_t kind, std::string_view data,
                 unsigned char out[32]) {
  unsigned char head[13];
  for (int i = 0; i < 8; ++i) head[i] = static_cast<unsigned char>(offset >> (8 * i));
  for (int i = 0; i < 4; ++i) head[8 + i] = static_cast<unsigned char>(length >> (8 * i));
  head[12] = kind;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned int n = 0;
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx.get(), head, sizeof head);
  EVP_DigestUpdate(ctx.get(), data.data(), data.size());
  EVP_DigestFinal_ex(ctx.get(), out, &n);
}

template <typename T>
void Put(std::string& s, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

template <typename T>
T Get(const unsigned char* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(p[i]) << (8 * i);
  return v;
}

struct Zstd {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~Zstd() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
Zstd& ThreadZstd() {
  thread_local Zstd z;
  return z;
}

Status Corrupt(size_t frame, const std::string& why) {
  return InvalidArgument("replication batch frame " + std::to_string(frame) + ": " + why, "",
                         "ReplicationDataCorrupt");
}

}  // namespace

Status BlockBatchWriter::AddData(uint64_t offset, std::string_view plain) {
  if (plain.empty() || plain.size() > kMaxFrameBytes)
    return InvalidArgument("a replication frame holds 1 byte to 4 MiB");
  if (body_.empty()) body_.assign(kStreamMagic, 4), Put<uint32_t>(body_, 0);
  unsigned char sha[32];
  FrameDigest(offset, static_cast<uint32_t>(plain.size()), 0, plain, sha);
  std::string stored(ZSTD_compressBound(plain.size()), '\0');
  size_t clen = ZSTD_compressCCtx(ThreadZstd().c, stored.data(), stored.size(), plain.data(),
                                  plain.size(), 1);
  bool zstd = !ZSTD_isError(clen) && clen < plain.size();
  Put<uint64_t>(body_, offset);
  Put<uint32_t>(body_, static_cast<uint32_t>(plain.size()));
  body_.push_back(0);
  body_.push_back(zstd ? 1 : 0);
  Put<uint32_t>(body_, static_cast<uint32_t>(zstd ? clen : plain.size()));
  body_.append(reinterpret_cast<const char*>(sha), 32);
  if (zstd) {
    body_.append(stored.data(), clen);
  } else {
    body_.append(plain.data(), plain.size());
  }
  ++frames_;
  plain_ += plain.size();
  return Status::Ok();
}

Status BlockBatchWriter::AddZero(uint64_t offset, uint32_t length) {
  if (length == 0 || length > kMaxFrameBytes)
    return InvalidArgument("a replication frame holds 1 byte to 4 MiB");
  if (body_.empty()) body_.assign(kStreamMagic, 4), Put<uint32_t>(body_, 0);
  Put<uint64_t>(body_, offset);
  Put<uint32_t>(body_, length);
  body_.push_back(1);
  body_.push_back(0);
  Put<uint32_t>(body_, 0);
  unsigned char sha[32];
  FrameDigest(offset, length, 1, "", sha);
  body_.append(reinterpret_cast<const char*>(sha), 32);
  ++frames_;
  plain_ += length;
  return Status::Ok();
}

std::string BlockBatchWriter::Take() {
  if (body_.empty()) body_.assign(kStreamMagic, 4), Put<uint32_t>(body_, 0);
  uint32_t n = static_cast<uint32_t>(frames_);
  for (size_t i = 0; i < 4; ++i) body_[4 + i] = static_cast<char>((n >> (8 * i)) & 0xff);
  std::string out = std::move(body_);
  body_.clear();
  frames_ = 0;
  plain_ = 0;
  return out;
}

Result<std::vector<BlockFrame>> DecodeBlockBatch(std::string_view batch, uint64_t disk_size) {
  const auto* p = reinterpret_cast<const unsigned char*>(batch.data());
  if (batch.size() < 8 || std::memcmp(p, kStreamMagic, 4) != 0)
    return InvalidArgument("not a replication batch", "", "ReplicationDataCorrupt");
  if (batch.size() > 2 * kMaxBatchBytes)
    return InvalidArgument("replication batch over the limit", "", "ReplicationDataCorrupt");
  uint32_t count = Get<uint32_t>(p + 4);
  size_t at = 8;
  std::vector<BlockFrame> out;
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    if (batch.size() - at < kFrameHeader) return Corrupt(i, "cut short");
    const unsigned char* h = p + at;
    BlockFrame f;
    f.offset = Get<uint64_t>(h);
    f.length = Get<uint32_t>(h + 8);
    uint8_t kind = h[12], encoding = h[13];
    uint32_t stored = Get<uint32_t>(h + 14);
    const unsigned char* sha = h + 18;
    at += kFrameHeader;
    if (f.length == 0 || f.length > kMaxFrameBytes) return Corrupt(i, "bad length");
    if (f.offset > disk_size || disk_size - f.offset < f.length)
      return Corrupt(i, "runs past the end of the disk");
    if (kind == 1) {
      if (stored != 0 || encoding != 0) return Corrupt(i, "a zero frame with data");
      unsigned char want[32];
      FrameDigest(f.offset, f.length, 1, "", want);
      if (std::memcmp(want, sha, 32) != 0) return Corrupt(i, "SHA-256 mismatch");
      f.zero = true;
      out.push_back(std::move(f));
      continue;
    }
    if (kind != 0 || encoding > 1) return Corrupt(i, "unknown kind or encoding");
    if (batch.size() - at < stored) return Corrupt(i, "cut short");
    std::string_view body(batch.data() + at, stored);
    at += stored;
    if (encoding == 0) {
      if (stored != f.length) return Corrupt(i, "plain length mismatch");
      f.data.assign(body);
    } else {
      f.data.resize(f.length);
      size_t n = ZSTD_decompressDCtx(ThreadZstd().d, f.data.data(), f.length, body.data(),
                                     body.size());
      if (ZSTD_isError(n) || n != f.length) return Corrupt(i, "does not decompress");
    }
    unsigned char got[32];
    FrameDigest(f.offset, f.length, 0, f.data, got);
    if (std::memcmp(got, sha, 32) != 0) return Corrupt(i, "SHA-256 mismatch");
    out.push_back(std::move(f));
  }
  if (at != batch.size()) return Corrupt(count, "trailing bytes");
  return out;
}

}  // namespace stratus::recovery::site
