#include "recovery/vault/keys.h"

#include <openssl/crypto.h>

#include "core/base64.h"
#include "core/fs.h"

namespace stratus::recovery::vault {
namespace {

constexpr char kWrapAadPrefix[] = "stratus-vault-master-key-v1:";

Status Corrupt(const std::string& why) {
  return Status(StatusCode::kInternal, "VaultMetadataCorrupt",
                "the key section of vault.json is malformed: " + why);
}

Result<SecretKey> ReadPlatformKey(const std::string& path) {
  auto data = ReadFile(path);
  if (!data.ok())
    return NotFound("platform key file '" + path + "' cannot be read", path, "PlatformKeyMissing");
  if (data->size() != kKeyBytes) {
    return InvalidArgument("platform key file '" + path + "' must hold exactly 32 bytes, it has " +
                               std::to_string(data->size()),
                           path, "PlatformKeyInvalid");
  }
  SecretKey k(reinterpret_cast<const uint8_t*>(data->data()));
  OPENSSL_cleanse(data->data(), data->size());
  return k;
}

Result<SecretKey> DeriveKek(const KeySource& source, const std::string& salt, const Json& kdf) {
  if (source.kind() == KeySource::Kind::kPlatformKeyFile) {
    ASSIGN_OR_RETURN(SecretKey platform, ReadPlatformKey(source.platform_key_path()));
    return HkdfSha256(platform.data(), platform.size(), salt, "stratus vault kek v1");
  }
  if (source.passphrase().empty())
    return InvalidArgument("the customer key is empty", "customerKey", "CustomerKeyMismatch");
  ScryptParams p;
  if (kdf.is_object()) {
    if (!kdf.contains("n") || !kdf["n"].is_number_unsigned() || !kdf.contains("r") ||
        !kdf["r"].is_number_unsigned() || !kdf.contains("p") || !kdf["p"].is_number_unsigned())
      return Corrupt("scrypt parameters missing");
    p.n = kdf["n"].get<uint64_t>();
    p.r = kdf["r"].get<uint64_t>();
    p.p = kdf["p"].get<uint64_t>();
    if (p.n < 1024 || p.n > (1u << 22) || (p.n & (p.n - 1)) != 0 || p.r == 0 || p.r > 32 ||
        p.p == 0 || p.p > 16)
      return Corrupt("scrypt parameters out of range");
  }
  return Scrypt(source.passphrase(), salt, p);
}

}  // namespace

KeySource KeySource::PlatformKeyFile(std::string path) {
  return KeySource(Kind::kPlatformKeyFile, std::move(path));
}
KeySource KeySource::CustomerPassphrase(std::string passphrase) {
  return KeySource(Kind::kCustomerPassphrase, std::move(passphrase));
}
KeySource::~KeySource() {
  if (kind_ == Kind::kCustomerPassphrase && !value_.empty())
    OPENSSL_cleanse(value_.data(), value_.size());
}
const char* KeySource::protection_name() const {
  return kind_ == Kind::kPlatformKeyFile ? "platform" : "customer";
}

Status CreatePlatformKeyFile(const std::string& path) {
  if (PathExists(path))
    return Conflict("platform key file '" + path + "' already exists", path);
  SecretKey k;
  RETURN_IF_ERROR(RandomBytes(k.data(), k.size()));
  std::string bytes(reinterpret_cast<const char*>(k.data()), k.size());
  Status st = WriteFileAtomic(path, bytes, 0600);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return st;
}

Result<VaultKeys> DeriveVaultKeys(const SecretKey& master, const std::string& vault_id) {
  VaultKeys k;
  ASSIGN_OR_RETURN(k.id_key, HkdfSha256(master.data(), master.size(), vault_id,
                                        "stratus chunk-id v1"));
  ASSIGN_OR_RETURN(k.data_key, HkdfSha256(master.data(), master.size(), vault_id,
                                          "stratus chunk-data v1"));
  ASSIGN_OR_RETURN(k.manifest_key, HkdfSha256(master.data(), master.size(), vault_id,
                                              "stratus manifest v1"));
  return k;
}

Result<Json> WrapMasterKey(const SecretKey& master, const std::string& vault_id,
                           const KeySource& source) {
  std::string salt(16, '\0');
  RETURN_IF_ERROR(RandomBytes(salt.data(), salt.size()));
  Json kdf;
  if (source.kind() == KeySource::Kind::kPlatformKeyFile) {
    kdf = {{"name", "hkdf-sha256"}};
  } else {
    ScryptParams p;
    kdf = {{"name", "scrypt"}, {"n", p.n}, {"r", p.r}, {"p", p.p}};
  }
  ASSIGN_OR_RETURN(SecretKey kek, DeriveKek(source, salt, kdf));
  uint8_t nonce[kGcmNonceBytes];
  RETURN_IF_ERROR(RandomBytes(nonce, sizeof nonce));
  std::string aad = kWrapAadPrefix + vault_id;
  std::string wrapped(kKeyBytes + kGcmTagBytes, '\0');
  auto* out = reinterpret_cast<uint8_t*>(wrapped.data());
  RETURN_IF_ERROR(ThreadLocalAesGcm().Seal(kek, nonce, aad.data(), aad.size(), master.data(),
                                           kKeyBytes, out, out + kKeyBytes));
  return Json{{"protection", source.protection_name()},
              {"kdf", kdf},
              {"salt", Base64Encode(salt)},
              {"wrap", "aes-256-gcm"},
              {"nonce", Base64Encode(std::string_view(reinterpret_cast<char*>(nonce), 12))},
              {"wrapped_key", Base64Encode(wrapped)}};
}

Result<SecretKey> UnwrapMasterKey(const Json& key, const std::string& vault_id,
                                  const KeySource& source) {
  if (!key.is_object()) return Corrupt("not an object");
  for (const char* f : {"protection", "kdf", "salt", "wrap", "nonce", "wrapped_key"})
    if (!key.contains(f)) return Corrupt(std::string("field '") + f + "' missing");
  if (!key["protection"].is_string() || !key["salt"].is_string() || !key["nonce"].is_string() ||
      !key["wrapped_key"].is_string() || key["wrap"] != "aes-256-gcm" || !key["kdf"].is_object())
    return Corrupt("fields of the wrong type");
  std::string protection = key["protection"];
  if (protection != source.protection_name()) {
    return InvalidArgument("this vault is protected by a " + protection +
                               " key, but a " + source.protection_name() + " key was given",
                           "customerKey", "KeyProtectionMismatch");
  }
  std::string kdf_name = key["kdf"].value("name", "");
  if ((protection == "platform" && kdf_name != "hkdf-sha256") ||
      (protection == "customer" && kdf_name != "scrypt"))
    return Corrupt("unknown key derivation '" + kdf_name + "'");
  ASSIGN_OR_RETURN(std::string salt, Base64Decode(key["salt"].get<std::string>()));
  ASSIGN_OR_RETURN(std::string nonce, Base64Decode(key["nonce"].get<std::string>()));
  ASSIGN_OR_RETURN(std::string wrapped, Base64Decode(key["wrapped_key"].get<std::string>()));
  if (nonce.size() != kGcmNonceBytes || wrapped.size() != kKeyBytes + kGcmTagBytes ||
      salt.size() < 16)
    return Corrupt("salt, nonce or wrapped key of the wrong length");
  ASSIGN_OR_RETURN(SecretKey kek, DeriveKek(source, salt, key["kdf"]));
  std::string aad = kWrapAadPrefix + vault_id;
  SecretKey master;
  auto* in = reinterpret_cast<const uint8_t*>(wrapped.data());
  ASSIGN_OR_RETURN(bool ok, ThreadLocalAesGcm().Open(
                                kek, reinterpret_cast<const uint8_t*>(nonce.data()), aad.data(),
                                aad.size(), in, kKeyBytes, in + kKeyBytes, master.data()));
  if (!ok) {
    master = SecretKey();
    if (source.kind() == KeySource::Kind::kCustomerPassphrase)
      return InvalidArgument("the customer key does not match this vault", "customerKey",
                             "CustomerKeyMismatch");
    return InvalidArgument("the platform key file '" + source.platform_key_path() +
                               "' does not match this vault",
                           source.platform_key_path(), "PlatformKeyMismatch");
  }
  return master;
}

}  // namespace stratus::recovery::vault
