// The vault's cryptographic primitives, all from OpenSSL (libcrypto): HMAC-SHA256 (chunk ids,
// manifest signatures), HKDF-SHA256 (sub-keys), AES-256-GCM (chunk and key encryption), scrypt
// (customer passphrases) and the OS CSPRNG. Nothing here is hand-written cryptography; these are
// thin RAII wrappers that turn OpenSSL's return codes into Status.
//
// Thread-safety: every function is safe to call from any thread; AesGcm keeps a per-object
// context, so one AesGcm per thread (see ThreadLocalAesGcm()).
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace stratus::recovery::vault {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kGcmNonceBytes = 12;
inline constexpr size_t kGcmTagBytes = 16;

// A 256-bit secret. Wiped on destruction.
class SecretKey {
 public:
  SecretKey() { bytes_.fill(0); }
  explicit SecretKey(const uint8_t* p) { std::copy(p, p + kKeyBytes, bytes_.begin()); }
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  ~SecretKey();
  const uint8_t* data() const { return bytes_.data(); }
  uint8_t* data() { return bytes_.data(); }
  static constexpr size_t size() { return kKeyBytes; }

 private:
  std::array<uint8_t, kKeyBytes> bytes_;
};

// Fills `p` with `n` bytes from the OS CSPRNG (RAND_bytes).
Status RandomBytes(void* p, size_t n);
Result<SecretKey> RandomKey();

// HMAC-SHA256(key, data) into out[32].
void HmacSha256(const SecretKey& key, const void* data, size_t n, uint8_t out[32]);
// Same over a string, returned as 32 raw bytes.
std::string HmacSha256(const SecretKey& key, std::string_view data);

// HKDF-SHA256 (RFC 5869) of `ikm` with `salt` and `info` to one 256-bit key.
Result<SecretKey> HkdfSha256(const uint8_t* ikm, size_t ikm_len, std::string_view salt,
                             std::string_view info);

// scrypt (RFC 7914) of a passphrase to a 256-bit key.
struct ScryptParams {
  uint64_t n = 1u << 15;  // ~100 ms and 32 MiB on the build machine
  uint64_t r = 8;
  uint64_t p = 1;
};
Result<SecretKey> Scrypt(std::string_view passphrase, std::string_view salt, const ScryptParams& p);

// Constant-time comparison of two equally long byte strings.
bool ConstantTimeEqual(const void* a, const void* b, size_t n);

// SHA-256 of `data` as 64 lowercase hex characters (for tests and tools, not for chunk ids).
std::string Sha256Hex(std::string_view data);

std::string ToHex(const uint8_t* p, size_t n);
// Parses exactly `n` bytes of hex; false on any bad character or length.
bool FromHex(std::string_view hex, uint8_t* out, size_t n);

// AES-256-GCM with a 96-bit nonce and a 128-bit tag. Not thread-safe; one per thread.
class AesGcm {
 public:
  AesGcm();
  ~AesGcm();
  AesGcm(const AesGcm&) = delete;
  AesGcm& operator=(const AesGcm&) = delete;

  // Encrypts `in[0..n)` to `out[0..n)` and writes the tag to `tag[16]`. `out` may equal `in`.
  Status Seal(const SecretKey& key, const uint8_t nonce[kGcmNonceBytes], const void* aad,
              size_t aad_len, const void* in, size_t n, uint8_t* out, uint8_t tag[kGcmTagBytes]);
  // Decrypts and authenticates. Returns false (and leaves `out` unspecified) when the tag does
  // not verify: wrong key, wrong AAD or modified ciphertext. `out` may equal `in`.
  Result<bool> Open(const SecretKey& key, const uint8_t nonce[kGcmNonceBytes], const void* aad,
                    size_t aad_len, const void* in, size_t n, const uint8_t tag[kGcmTagBytes],
                    uint8_t* out);

 private:
  EVP_CIPHER_CTX* ctx_;
};

// The calling thread's AesGcm.
AesGcm& ThreadLocalAesGcm();

}  // namespace stratus::recovery::vault
