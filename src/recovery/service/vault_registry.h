// VaultRegistry: the open vaults of a region, by vault resource.
//
// A vault resource's record names its directory (internal.dir) and key source. Platform-key
// vaults open on first use with the region's platform key (<data_dir>/platform.key, created at
// Start); customer-key vaults open only once unlocked with their passphrase, which is kept in
// memory only (a restarted daemon holds every customer-key vault locked). An opened vault gets
// its copy as read fallback when its redundancy is Copy (vault_redundancy.h).
//
// Thread-safety: every method may be called from any thread; mu_ guards vaults_ and
// passphrases_. A Vault* stays valid until Forget() of its vault.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "api/provider.h"
#include "core/resource_id.h"
#include "recovery/vault/vault.h"
#include "store/store.h"

namespace stratus::recovery::service {

class VaultRegistry {
 public:
  explicit VaultRegistry(api::RegionContext ctx) : ctx_(std::move(ctx)) {}

  // Creates the platform key file if it is missing.
  Status Start();
  std::string PlatformKeyPath() const;

  // The open vault of a vault resource (opened on first use). NotFound for an unknown vault;
  // Conflict "VaultLocked" for a customer-key vault not unlocked since the daemon started.
  Result<vault::Vault*> Open(const ResourceId& vault_id);
  // Creates a new vault's data below <data_dir>/vaults/ with the platform key or, when
  // `passphrase` is not empty, a customer key; returns it (not yet registered).
  Result<std::unique_ptr<vault::Vault>> Create(const std::string& dir,
                                               const std::string& passphrase);
  // Registers a vault opened or created by the caller (and its passphrase, for customer keys).
  vault::Vault* Adopt(const ResourceId& vault_id, std::unique_ptr<vault::Vault> v,
                      const std::string& passphrase = "");
  // Opens customer-key vault `vault_id` (record `rec`) with `passphrase` and registers it.
  // InvalidArgument "CustomerKeyMismatch" (target "passphrase") when the passphrase does not
  // open it.
  Status Unlock(const ResourceId& vault_id, const store::Record& rec,
                const std::string& passphrase);
  // Whether a customer-key vault is locked (not open).
  bool IsLocked(const store::Record& rec);
  // Closes the vault and forgets its passphrase (its resource is being deleted).
  void Forget(const ResourceId& vault_id);

 private:
  api::RegionContext ctx_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<vault::Vault>> vaults_;  // by vault key
  std::map<std::string, std::string> passphrases_;               // customer keys, memory only
};

}  // namespace stratus::recovery::service
