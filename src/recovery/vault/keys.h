// Vault keys: one random 256-bit master key per vault, never stored in clear, and the sub-keys
// derived from it.
//
// The master key is stored wrapped (AES-256-GCM) in vault.json under a key-encryption key (KEK):
//  - platform protection: KEK = HKDF-SHA256(platform key file (32 bytes), salt, info). The platform
//    key file belongs to the region (e.g. <data>/secrets/vault-platform.key, mode 0600).
//  - customer protection: KEK = scrypt(customer passphrase, salt, N, r, p). The platform keeps
//    only the salt and parameters; without the passphrase nothing in the vault can be decrypted.
// Unwrapping with a wrong KEK fails GCM authentication, which yields a clear error and no key.
// Sub-keys: HKDF-SHA256(master, salt = vault id, info = purpose) for chunk ids, chunk encryption
// and manifest signatures, so one key never serves two purposes. Format: docs/vault-format.md.
#pragma once

#include <string>

#include "core/json.h"
#include "core/status.h"
#include "recovery/vault/crypto.h"

namespace stratus::recovery::vault {

// Where the key-encryption key comes from. Holds secrets: never log it.
class KeySource {
 public:
  enum class Kind { kPlatformKeyFile, kCustomerPassphrase };

  // The region's platform key: a file of exactly 32 random bytes (CreatePlatformKeyFile).
  static KeySource PlatformKeyFile(std::string path);
  // A customer-managed secret (passphrase or key text). The vault stores only the salt and the
  // scrypt parameters next to the wrapped master key, never the secret or a hash of it.
  static KeySource CustomerPassphrase(std::string passphrase);

  Kind kind() const { return kind_; }
  // "platform" or "customer", as stored in vault.json.
  const char* protection_name() const;
  const std::string& platform_key_path() const { return value_; }
  const std::string& passphrase() const { return value_; }

  KeySource(const KeySource&) = default;
  KeySource& operator=(const KeySource&) = default;
  ~KeySource();

 private:
  KeySource(Kind k, std::string v) : kind_(k), value_(std::move(v)) {}
  Kind kind_;
  std::string value_;
};

// Writes a new random platform key file (mode 0600, atomically). Conflict if it exists.
Status CreatePlatformKeyFile(const std::string& path);

// Sub-keys of one vault.
struct VaultKeys {
  SecretKey id_key;        // chunk ids: HMAC-SHA256(id_key, plaintext)
  SecretKey data_key;      // chunk encryption: AES-256-GCM
  SecretKey manifest_key;  // manifest and vault.json signatures: HMAC-SHA256
};

Result<VaultKeys> DeriveVaultKeys(const SecretKey& master, const std::string& vault_id);

// Wraps `master` for vault `vault_id` under `source`: the "key" object of vault.json.
Result<Json> WrapMasterKey(const SecretKey& master, const std::string& vault_id,
                           const KeySource& source);
// Unwraps the "key" object of vault.json. A wrong customer passphrase gives InvalidArgument with
// ARM code "CustomerKeyMismatch" and the message "the customer key does not match this vault"; a
// wrong platform key file "PlatformKeyMismatch"; a key source of the other kind
// "KeyProtectionMismatch". Malformed objects give Internal ("VaultMetadataCorrupt").
Result<SecretKey> UnwrapMasterKey(const Json& key_object, const std::string& vault_id,
                                  const KeySource& source);

}  // namespace stratus::recovery::vault
