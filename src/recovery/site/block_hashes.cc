#include "recovery/site/block_hashes.h"

#include <openssl/evp.h>

#include <cstring>

#include "core/fs.h"

namespace stratus::recovery::site {

namespace {
constexpr char kHashesMagic[8] = {'S', 'R', 'H', 'A', 'S', 'H', '0', '1'};
}

uint64_t BlockHashes::Hash(const char* block) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(block, kBlock, md, &n, EVP_sha256(), nullptr);
  uint64_t h = 0;
  std::memcpy(&h, md, sizeof h);
  return h == 0 ? 1 : h;
}

BlockHashes BlockHashes::Load(const std::string& path, uint64_t disk_size, uint64_t seq) {
  BlockHashes m;
  m.size_ = disk_size;
  m.h_.assign((disk_size + kBlock - 1) / kBlock, 0);
  auto data = ReadFile(path);
  const size_t header = sizeof kHashesMagic + 16;
  if (!data.ok() || data->size() != header + m.h_.size() * 8 ||
      std::memcmp(data->data(), kHashesMagic, sizeof kHashesMagic) != 0)
    return m;
  uint64_t got_seq = 0, got_size = 0;
  std::memcpy(&got_seq, data->data() + 8, 8);
  std::memcpy(&got_size, data->data() + 16, 8);
  if (got_seq != seq || got_size != disk_size) return m;
  std::memcpy(m.h_.data(), data->data() + header, m.h_.size() * 8);
  m.loaded_ = true;
  return m;
}

Status BlockHashes::Save(const std::string& path, uint64_t seq) const {
  std::string out(kHashesMagic, sizeof kHashesMagic);
  uint64_t size = size_;
  out.append(reinterpret_cast<const char*>(&seq), 8);
  out.append(reinterpret_cast<const char*>(&size), 8);
  out.append(reinterpret_cast<const char*>(h_.data()), h_.size() * 8);
  return WriteFileAtomic(path, out, 0600);
}

}  // namespace stratus::recovery::site
