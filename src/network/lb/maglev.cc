#include "network/lb/maglev.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <set>

namespace stratus::network {

namespace {

// Two independent 64-bit hashes of `key` (the halves of its SHA-256): stable everywhere.
std::pair<uint64_t, uint64_t> Hashes(const std::string& key) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), d);
  uint64_t h1 = 0, h2 = 0;
  std::memcpy(&h1, d, 8);
  std::memcpy(&h2, d + 8, 8);
  return {h1, h2};
}

}  // namespace

uint64_t StableHash(const std::string& text) { return Hashes(text).first; }

std::vector<uint32_t> MaglevTable(const std::vector<std::string>& keys, uint32_t size) {
  if (keys.empty() || size == 0) return {};
  // The backends in key order, so the table does not depend on the order given.
  std::vector<uint32_t> order(keys.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) { return keys[x] < keys[y]; });
  const size_t n = keys.size();
  std::vector<uint64_t> offset(n), skip(n), next(n, 0);
  for (size_t i = 0; i < n; ++i) {
    auto [h1, h2] = Hashes(keys[order[i]]);
    offset[i] = h1 % size;
    skip[i] = size > 1 ? h2 % (size - 1) + 1 : 1;
  }
  constexpr uint32_t kEmpty = UINT32_MAX;
  std::vector<uint32_t> table(size, kEmpty);
  uint32_t filled = 0;
  while (filled < size) {
    for (size_t i = 0; i < n && filled < size; ++i) {
      // Backend i's next preferred slot that is still free.
      uint64_t c = (offset[i] + next[i] * skip[i]) % size;
      uint64_t tries = 0;
      while (table[c] != kEmpty && tries < size) {
        ++next[i];
        ++tries;
        c = (offset[i] + next[i] * skip[i]) % size;
      }
      if (table[c] != kEmpty) {  // a composite size: this permutation misses the free slots
        c = std::find(table.begin(), table.end(), kEmpty) - table.begin();
      }
      table[c] = order[i];
      ++next[i];
      ++filled;
    }
  }
  return table;
}

double MaglevMovedShare(const std::vector<std::string>& keys_a, const std::vector<uint32_t>& a,
                        const std::vector<std::string>& keys_b, const std::vector<uint32_t>& b) {
  std::set<std::string> in_a(keys_a.begin(), keys_a.end()), in_b(keys_b.begin(), keys_b.end());
  size_t staying = 0, moved = 0;
  for (size_t s = 0; s < a.size() && s < b.size(); ++s) {
    const std::string& was = keys_a[a[s]];
    const std::string& is = keys_b[b[s]];
    if (!in_b.count(was)) continue;  // its backend left: it has to move
    ++staying;
    if (in_a.count(is) && is != was) ++moved;  // to a backend that was there already
  }
  return staying == 0 ? 0.0 : static_cast<double>(moved) / static_cast<double>(staying);
}

}  // namespace stratus::network
