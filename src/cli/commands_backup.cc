// stratus backup vault create|update|show|list|delete|unlock|verify|gc|copy
//                policy create|update|show|list|delete
//                protection enable|disable|show|list
//                now
//                restore
//                recoverypoint list|show
//                files list|extract
//                job list|show
// The Stratus.RecoveryServices API (docs/api.md, "Stratus.RecoveryServices (backup)"). Everything
// but the vault list lives under .../providers/Stratus.RecoveryServices/vaults/{vault}.
//
// One file per group (commands_backup_<group>.cc); what they share is in backup_common.h.
#include "cli/backup_common.h"
#include "cli/commands.h"

namespace stratus::cli {

void RegisterBackupCommands(CLI::App& root, Action* selected) {
  CLI::App* noun = AddNoun(root, "backup", "Back up and restore VMs (Stratus.RecoveryServices)");
  backup::RegisterVault(noun, selected);
  backup::RegisterPolicy(noun, selected);
  backup::RegisterProtection(noun, selected);
  backup::RegisterNow(noun, selected);
  backup::RegisterRestore(noun, selected);
  backup::RegisterRecoveryPoints(noun, selected);
  backup::RegisterFiles(noun, selected);
  backup::RegisterJobs(noun, selected);
}

}  // namespace stratus::cli
