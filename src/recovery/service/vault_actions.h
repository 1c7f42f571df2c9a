// VaultActions: POST {vault}/{action} — unlock (a customer-key vault, with its passphrase),
// verify (every chunk of one point or of all, read and checked against its hash), gc (frees the
// chunks no point references) and copy (brings the vault's copy up to date now).
//
// verify and gc run as operations on the vault (they hold its lock: backups of the vault wait);
// their results are the operation's result. Thread-safety: every method may be called from any
// thread.
#pragma once

#include <string>

#include "api/provider.h"
#include "recovery/service/vault_redundancy.h"
#include "recovery/service/vault_registry.h"

namespace stratus::recovery::service {

class VaultActions {
 public:
  // `vaults` and `redundancy` outlive it.
  VaultActions(api::RegionContext ctx, VaultRegistry* vaults, VaultRedundancy* redundancy)
      : ctx_(std::move(ctx)), vaults_(vaults), redundancy_(redundancy) {}

  // NotFound "NotFound" for an unknown action; Conflict "VaultLocked" for a locked vault;
  // Conflict "CopyNotConfigured" for copy on a vault with redundancy Local.
  Result<api::ApiResponse> Post(const api::ApiRequest& req, const ResourceId& vault,
                                const std::string& action);

 private:
  api::RegionContext ctx_;
  VaultRegistry* vaults_;
  VaultRedundancy* redundancy_;
};

}  // namespace stratus::recovery::service
