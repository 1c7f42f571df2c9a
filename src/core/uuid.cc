#include "core/uuid.h"

#include <openssl/rand.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace stratus {

static void Fill(unsigned char* p, size_t n) {
  // RAND_bytes only fails when the CSPRNG cannot be seeded: a broken host, not user input.
  if (RAND_bytes(p, static_cast<int>(n)) != 1) std::abort();
}

std::string NewUuid() {
  unsigned char b[16];
  Fill(b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

std::string RandomHex(size_t n_bytes) {
  std::vector<unsigned char> b(n_bytes);
  Fill(b.data(), n_bytes);
  static const char* kHex = "0123456789abcdef";
  std::string s;
  s.reserve(n_bytes * 2);
  for (unsigned char c : b) {
    s.push_back(kHex[c >> 4]);
    s.push_back(kHex[c & 15]);
  }
  return s;
}

}  // namespace stratus
