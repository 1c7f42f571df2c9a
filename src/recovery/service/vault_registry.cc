#include "recovery/service/vault_registry.h"

#include "core/fs.h"
#include "recovery/service/vault_redundancy.h"
#include "recovery/vault/keys.h"

namespace stratus::recovery::service {

Status VaultRegistry::Start() {
  if (PathExists(PlatformKeyPath())) return Status::Ok();
  return vault::CreatePlatformKeyFile(PlatformKeyPath());
}

std::string VaultRegistry::PlatformKeyPath() const {
  return JoinPath(ctx_.data_dir, "platform.key");
}

Result<vault::Vault*> VaultRegistry::Open(const ResourceId& vault_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = vaults_.find(vault_id.Key());
  if (it != vaults_.end()) return it->second.get();
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(vault_id.Key()));
  std::string dir = rec.internal.value("dir", "");
  std::string ks = rec.body["properties"]["encryption"].value("keySource", "Platform");
  std::unique_ptr<vault::Vault> v;
  if (ks == "Customer") {
    auto p = passphrases_.find(vault_id.Key());
    if (p == passphrases_.end())
      return Conflict("Vault '" + vault_id.name() +
                          "' is locked: its customer key is not kept by "
                          "the platform. Unlock it with POST .../unlock {\"passphrase\"}.",
                      vault_id.ToString(), "VaultLocked");
    ASSIGN_OR_RETURN(v,
                     vault::Vault::OpenLocal(dir, vault::KeySource::CustomerPassphrase(p->second)));
  } else {
    ASSIGN_OR_RETURN(
        v, vault::Vault::OpenLocal(dir, vault::KeySource::PlatformKeyFile(PlatformKeyPath())));
  }
  vault::Vault* raw = v.get();
  AttachCopyFallback(rec, *raw);
  vaults_[vault_id.Key()] = std::move(v);
  return raw;
}

Result<std::unique_ptr<vault::Vault>> VaultRegistry::Create(const std::string& dir,
                                                            const std::string& passphrase) {
  RETURN_IF_ERROR(MakeDirs(JoinPath(ctx_.data_dir, "vaults"), 0700));
  auto key = passphrase.empty() ? vault::KeySource::PlatformKeyFile(PlatformKeyPath())
                                : vault::KeySource::CustomerPassphrase(passphrase);
  auto created = vault::Vault::CreateLocal(dir, key);
  if (!created.ok()) RemoveTree(dir);
  return created;
}

vault::Vault* VaultRegistry::Adopt(const ResourceId& vault_id, std::unique_ptr<vault::Vault> v,
                                   const std::string& passphrase) {
  std::lock_guard<std::mutex> l(mu_);
  vault::Vault* raw = v.get();
  vaults_[vault_id.Key()] = std::move(v);
  if (!passphrase.empty()) passphrases_[vault_id.Key()] = passphrase;
  return raw;
}

Status VaultRegistry::Unlock(const ResourceId& vault_id, const store::Record& rec,
                             const std::string& passphrase) {
  auto v = vault::Vault::OpenLocal(rec.internal.value("dir", ""),
                                   vault::KeySource::CustomerPassphrase(passphrase));
  if (!v.ok()) {
    const Status& s = v.status();
    return Status(StatusCode::kInvalidArgument,
                  s.arm_code().empty() ? "CustomerKeyMismatch" : s.arm_code(), s.message(),
                  "passphrase");
  }
  AttachCopyFallback(rec, **v);
  Adopt(vault_id, std::move(v).value(), passphrase);
  return Status::Ok();
}

bool VaultRegistry::IsLocked(const store::Record& rec) {
  if (rec.body["properties"]["encryption"].value("keySource", "") != "Customer") return false;
  std::lock_guard<std::mutex> lock(mu_);
  return !vaults_.count(rec.key);
}

void VaultRegistry::Forget(const ResourceId& vault_id) {
  std::lock_guard<std::mutex> l(mu_);
  vaults_.erase(vault_id.Key());
  passphrases_.erase(vault_id.Key());
}

}  // namespace stratus::recovery::service
