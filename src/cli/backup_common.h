// What the `stratus backup` command groups share: the options of their leaves, the paths of the
// Stratus.RecoveryServices API (docs/api.md, "Stratus.RecoveryServices (backup)"), a few helpers
// for the JSON it returns, and how a leaf is added. Everything but the vault list lives under
// .../providers/Stratus.RecoveryServices/vaults/{vault}.
//
// One file per group registers its subcommands (commands_backup_<group>.cc); RegisterBackupCommands
// (commands_backup.cc) adds them under `backup` in the order `stratus backup --help` lists them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/output.h"
#include "core/json.h"

namespace stratus::cli::backup {

// The options of every `backup` leaf; each leaf uses a few.
struct BackupArgs {
  std::string group;
  std::string vault;
  std::string name;  // the policy, protected item, recovery point or job a leaf acts on
  std::string location;
  std::vector<std::string> tags;
  bool yes = false;
  // vault create / unlock / verify
  std::string key_source;
  std::string passphrase_file;
  std::vector<std::string> webhooks;
  std::string recovery_point;
  // vault create / update: redundancy
  std::string redundancy;     // "Local" | "Copy"; "" = not given
  std::string copy_location;  // --copy-location DIR (implies Copy)
  // policy create / update. Counts and hours: 0 = not given (CLI11 rejects 0 on the command line).
  std::string policy_json;
  std::vector<std::string> daily;
  int hourly = 0;
  std::string window_start;
  int window_hours = 0;
  std::vector<std::string> weekly;
  std::vector<std::string> at;
  int keep_hourly = 0;
  int keep_daily = 0;
  int keep_weekly = 0;
  int keep_monthly = 0;
  int keep_yearly = 0;
  std::string time_zone;
  int on_demand_days = 0;
  std::string consistency;
  // protection
  std::string vm;
  std::string policy;  // name in --vault, or id
  bool delete_backup_data = false;
  // now
  std::string retain_until;
  // restore
  std::string as_new_vm;
  std::string vm_size;
  std::string target_group;
  std::vector<std::string> disks;
  std::string as_disks;
  bool original = false;
  bool instant = false;  // --as-new-vm: start the VM at once, fill its disks behind it
  // --as-new-vm: its NICs (default: like the point's)
  std::vector<std::string> nics;  // existing ones
  std::string vnet, subnet, private_ip, public_ip, nsg;  // a new one
  bool no_nics = false;
  // files
  std::string disk;
  std::string dir = "/";           // files list
  std::vector<std::string> paths;  // files extract
  std::string to;
};

// ---- Paths -----------------------------------------------------------------------------------

// .../resourceGroups/{-g}/providers/Stratus.RecoveryServices/vaults, and the vault --vault in it.
std::string VaultsPath(const Context& ctx, const BackupArgs& a);
std::string VaultPath(const Context& ctx, const BackupArgs& a);

// Whether the resource id `id` has the path segment `segment` (case-insensitive).
bool ContainsSegment(const std::string& id, const std::string& segment);

// `.../{collection}/{name_or_id}` under `parent`: a name is appended; a full id (as printed by
// -o json) is used as is once it is checked to be of the right type.
CliResult<std::string> ChildPath(const std::string& parent, const std::string& collection,
                                 const std::string& name_or_id, const std::string& option);

// The protected item `--item` (a.name).
CliResult<std::string> ItemPath(const Context& ctx, const BackupArgs& a);
// The recovery point --recovery-point of the protected item `--item`.
CliResult<std::string> RecoveryPointPath(const Context& ctx, const BackupArgs& a);

// ---- Responses -------------------------------------------------------------------------------

// The values of a list option (`--daily 02:00,14:00` or `--daily 02:00 14:00`), trimmed.
Json StringList(const std::vector<std::string>& values);

// The field at `dotted` of `row` as printed in a table cell ("" when absent).
std::string Str(const Json& row, const std::string& dotted);

// The last segment of the resource id at `dotted`; "" when it is absent or not a string.
std::string NameOfIdField(const Json& row, const std::string& dotted);

// A table column "Id": the resource's short name (`name`, else the last segment of `id`).
Column IdColumn();

// The `properties` of an action's result: the finished operation's, or (when the action answered
// at once) the response's; the whole document when it has none.
Json ActionResult(const Context::WriteOutcome& outcome);

// ---- Leaves ----------------------------------------------------------------------------------

using LeafFn = CliStatus (*)(Context&, const BackupArgs&);

// Adds a leaf with -g (required) whose action is `fn(ctx, args)`.
// `*out` is the new leaf, for its own options; the returned args are what the action sees.
std::shared_ptr<BackupArgs> AddLeaf(CLI::App* noun, Action* selected, const std::string& name,
                                    const std::string& description, LeafFn fn, CLI::App** out);
// A leaf acting inside a vault: -g and --vault.
std::shared_ptr<BackupArgs> AddVaultLeaf(CLI::App* noun, Action* selected, const std::string& name,
                                         const std::string& description, LeafFn fn, CLI::App** out);

// ---- The groups, each under `backup` ---------------------------------------------------------

// commands_backup_vault.cc, commands_backup_policy.cc, commands_backup_protection.cc
void RegisterVault(CLI::App* backup, Action* selected);
void RegisterPolicy(CLI::App* backup, Action* selected);
void RegisterProtection(CLI::App* backup, Action* selected);
// commands_backup_job.cc: the leaves `now` and `restore`, and the group `job`
void RegisterNow(CLI::App* backup, Action* selected);
void RegisterRestore(CLI::App* backup, Action* selected);
void RegisterJobs(CLI::App* backup, Action* selected);
// commands_backup_recoverypoint.cc, commands_backup_files.cc
void RegisterRecoveryPoints(CLI::App* backup, Action* selected);
void RegisterFiles(CLI::App* backup, Action* selected);

}  // namespace stratus::cli::backup
