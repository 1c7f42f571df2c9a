#include "recovery/vault/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <climits>

namespace stratus::recovery::vault {
namespace {

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};
struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};

}  // namespace

SecretKey::~SecretKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

Status RandomBytes(void* p, size_t n) {
  if (n > INT_MAX || RAND_bytes(static_cast<unsigned char*>(p), static_cast<int>(n)) != 1)
    return Internal("RAND_bytes failed: " + OpenSslError());
  return Status::Ok();
}

Result<SecretKey> RandomKey() {
  SecretKey k;
  RETURN_IF_ERROR(RandomBytes(k.data(), k.size()));
  return k;
}

void HmacSha256(const SecretKey& key, const void* data, size_t n, uint8_t out[32]) {
  unsigned int len = 32;
  // HMAC() cannot fail with a valid digest and key; a failure would be a broken libcrypto.
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           static_cast<const unsigned char*>(data), n, out, &len) == nullptr) {
    std::abort();
  }
}

std::string HmacSha256(const SecretKey& key, std::string_view data) {
  std::string out(32, '\0');
  HmacSha256(key, data.data(), data.size(), reinterpret_cast<uint8_t*>(out.data()));
  return out;
}

Result<SecretKey> HkdfSha256(const uint8_t* ikm, size_t ikm_len, std::string_view salt,
                             std::string_view info) {
  std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return Internal("HKDF unavailable: " + OpenSslError());
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return Internal("HKDF context: " + OpenSslError());
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm),
                                                ikm_len);
  params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                const_cast<char*>(salt.data()), salt.size());
  params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                const_cast<char*>(info.data()), info.size());
  params[4] = OSSL_PARAM_construct_end();
  SecretKey out;
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1)
    return Internal("HKDF derive failed: " + OpenSslError());
  return out;
}

Result<SecretKey> Scrypt(std::string_view passphrase, std::string_view salt,
                         const ScryptParams& p) {
  SecretKey out;
  uint64_t maxmem = 128 * p.n * p.r * p.p + (64u << 20);
  if (EVP_PBE_scrypt(passphrase.data(), passphrase.size(),
                     reinterpret_cast<const unsigned char*>(salt.data()), salt.size(), p.n, p.r,
                     p.p, maxmem, out.data(), out.size()) != 1) {
    return Internal("scrypt failed (N=" + std::to_string(p.n) + ", r=" + std::to_string(p.r) +
                    ", p=" + std::to_string(p.p) + "): " + OpenSslError());
  }
  return out;
}

bool ConstantTimeEqual(const void* a, const void* b, size_t n) {
  return CRYPTO_memcmp(a, b, n) == 0;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[32];
  unsigned int len = 32;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return ToHex(md, 32);
}

std::string ToHex(const uint8_t* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

bool FromHex(std::string_view hex, uint8_t* out, size_t n) {
  if (hex.size() != 2 * n) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < n; ++i) {
    int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

AesGcm::AesGcm() : ctx_(EVP_CIPHER_CTX_new()) {
  if (ctx_ == nullptr) std::abort();  // out of memory
}

AesGcm::~AesGcm() { EVP_CIPHER_CTX_free(ctx_); }

Status AesGcm::Seal(const SecretKey& key, const uint8_t nonce[kGcmNonceBytes], const void* aad,
                    size_t aad_len, const void* in, size_t n, uint8_t* out,
                    uint8_t tag[kGcmTagBytes]) {
  int len = 0;
  if (n > INT_MAX || aad_len > INT_MAX) return InvalidArgument("AES-GCM input too large");
  if (EVP_EncryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, key.data(), nonce) != 1 ||
      (aad_len > 0 && EVP_EncryptUpdate(ctx_, nullptr, &len, static_cast<const uint8_t*>(aad),
                                        static_cast<int>(aad_len)) != 1) ||
      (n > 0 && EVP_EncryptUpdate(ctx_, out, &len, static_cast<const uint8_t*>(in),
                                  static_cast<int>(n)) != 1) ||
      EVP_EncryptFinal_ex(ctx_, out + n, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, kGcmTagBytes, tag) != 1) {
    return Internal("AES-256-GCM encryption failed: " + OpenSslError());
  }
  return Status::Ok();
}

Result<bool> AesGcm::Open(const SecretKey& key, const uint8_t nonce[kGcmNonceBytes],
                          const void* aad, size_t aad_len, const void* in, size_t n,
                          const uint8_t tag[kGcmTagBytes], uint8_t* out) {
  int len = 0;
  if (n > INT_MAX || aad_len > INT_MAX) return InvalidArgument("AES-GCM input too large");
  if (EVP_DecryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, key.data(), nonce) != 1 ||
      (aad_len > 0 && EVP_DecryptUpdate(ctx_, nullptr, &len, static_cast<const uint8_t*>(aad),
                                        static_cast<int>(aad_len)) != 1) ||
      (n > 0 && EVP_DecryptUpdate(ctx_, out, &len, static_cast<const uint8_t*>(in),
                                  static_cast<int>(n)) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, kGcmTagBytes,
                          const_cast<uint8_t*>(tag)) != 1) {
    return Internal("AES-256-GCM decryption failed: " + OpenSslError());
  }
  if (EVP_DecryptFinal_ex(ctx_, out + n, &len) != 1) {
    ERR_clear_error();
    return false;
  }
  return true;
}

AesGcm& ThreadLocalAesGcm() {
  thread_local AesGcm gcm;
  return gcm;
}

}  // namespace stratus::recovery::vault
