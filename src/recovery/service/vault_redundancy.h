// Vault redundancy (properties.redundancy of a vault): "Local" keeps the data in the vault's own
// directory only; "Copy" also keeps a complete second vault in properties.copyLocation (a
// directory on the host, e.g. on another disk), brought up to date by "Copy" jobs after every
// backup, prune or deletion of points, and when the setting is switched on (the copy then catches
// up with every existing point). The copy opens on its own (vault::Vault::OpenLocal with the
// vault's key), and while the vault is open its chunks that are missing or corrupt are read from
// the copy and repaired (vault::Vault::SetFallback). Mechanics: recovery/vault/vault_copy.h.
//
// A copy job failing never fails a backup: the job is marked Failed, alerts go to the vault's
// webhooks, properties.copyStatus says what is behind, and the next job catches up.
// Switching back to Local stops copying and leaves the copy's files where they are.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "api/provider.h"
#include "core/json.h"
#include "core/status.h"
#include "recovery/service/jobs.h"
#include "recovery/vault/vault.h"

namespace stratus::recovery::service {
class VaultRegistry;
}

namespace stratus::recovery::service {

struct RedundancySetting {
  std::string mode = "Local";  // "Local" | "Copy"
  std::string copy_location;   // absolute, normalised; "" unless mode is Copy
  bool copy() const { return mode == "Copy"; }
};

// Parses properties.redundancy and properties.copyLocation of a vault PUT. `fallback` is the
// setting used when "redundancy" is absent (Local for a new vault, the current one on update).
// `data_dir` is the daemon's data directory, `primary_dir` the vault's directory ("" before it
// exists), `vault_id` its vault id ("" for a new vault). Errors: InvalidArgument (400) naming the
// field, for an unknown mode, a relative or unnormalised path, a location inside the vault's
// directory or the data directory's vaults (or containing the data directory), a missing parent
// directory, or ("CopyLocationInUse") a location that is a file or holds something other than a
// copy of this vault.
Result<RedundancySetting> ParseRedundancy(const Json& props, const RedundancySetting& fallback,
                                          const std::string& data_dir,
                                          const std::string& primary_dir,
                                          const std::string& vault_id);

// The same for the PUT of vault `existing` (nullptr: a new vault), whose setting is the fallback.
Result<RedundancySetting> ParseRedundancy(const Json& props, const store::Record* existing,
                                          const std::string& data_dir);
// The setting stored in a vault record.
RedundancySetting RedundancyOf(const store::Record& vault_rec);
// Writes `setting` into a vault's properties (redundancy, copyLocation; copyStatus is dropped
// when the copy stops or moves). True when a copy job should run: Copy was switched on or moved.
bool ApplyRedundancy(const RedundancySetting& setting, Json& props);

// Gives `v` its copy as read fallback when `vault_rec` says Copy and the copy exists; removes
// the fallback otherwise. Cheap (reads the copy's vault.json); errors are logged, not returned.
void AttachCopyFallback(const store::Record& vault_rec, vault::Vault& v);

// Runs the copy jobs of vaults with redundancy Copy (waits end when `jobs` stops).
// Thread-safe; mu_ guards state_.
class VaultRedundancy {
 public:
  static constexpr char kCopyOperation[] = "Stratus.RecoveryServices/vaults/backupJobs/copy";

  // `vaults` and `jobs` outlive it.
  VaultRedundancy(api::RegionContext ctx, VaultRegistry* vaults, JobBook* jobs)
      : ctx_(std::move(ctx)), vaults_(vaults), jobs_(jobs) {}

  // Brings the copy of `vault` up to date in a "Copy" job (an operation on the job). When a copy
  // job of the vault runs already, it makes one more pass instead and its operation id is
  // returned. Returns "" (and does nothing) when the vault's redundancy is Local. `reason` is
  // shown in the job ("backup", "prune", "redundancyChanged", "manual", "restart").
  Result<std::string> RequestCopy(const ResourceId& vault, const std::string& caller,
                                  const std::string& reason);

  // RequestCopy, logging instead of returning errors: the hook after a backup, prune or deletion.
  void CopySoon(const ResourceId& vault, const std::string& reason);

  // After a PUT changed the setting of `vault_rec`: fixes the open vault's fallback and, when
  // `start_copy`, starts a copy job (the copy catches up with every existing point).
  void Changed(const store::Record& vault_rec, const std::string& caller, bool start_copy);

  // Registers what to do with copy jobs a restart cut (mark them failed, copy again).
  void RegisterRecovery();

 private:
  struct VaultState {
    bool running = false;
    bool again = false;      // a request arrived while running: one more pass
    std::string operation;   // of the running job
  };
  Status RunJob(const ResourceId& vault, const ResourceId& job, api::OperationContext& octx);
  // Read-modify-write of the vault record's properties.copyStatus.
  void SetCopyStatus(const ResourceId& vault, const std::function<void(Json& status)>& fn);

  api::RegionContext ctx_;
  VaultRegistry* vaults_;
  JobBook* jobs_;
  std::mutex mu_;  // guards state_
  std::map<std::string, VaultState> state_;  // by vault key
};

}  // namespace stratus::recovery::service
