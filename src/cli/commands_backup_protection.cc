// stratus backup protection enable|disable|show|list
#include "cli/backup_common.h"
#include "cli/resolve.h"
#include "core/resource_id.h"

namespace stratus::cli::backup {
namespace {

constexpr const char* kPolicyType = "Stratus.RecoveryServices/vaults/backupPolicies";

std::string ItemsPath(const Context& ctx, const BackupArgs& a) {
  return VaultPath(ctx, a) + "/protectedItems";
}

const TableSpec& ProtectedItemTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      {"Vm", [](const Json& r) { return NameOfIdField(r, "properties.sourceResourceId"); }},
      {"Policy", [](const Json& r) { return NameOfIdField(r, "properties.policyId"); }},
      FieldColumn("State", "properties.protectionState"),
      FieldColumn("LastBackup", "properties.lastBackupTime"),
      FieldColumn("LastStatus", "properties.lastBackupStatus"),
      FieldColumn("RecoveryPoints", "properties.recoveryPointCount"),
      FieldColumn("NextBackup", "properties.nextScheduledBackupTime"),
  };
  return kSpec;
}

// The policy id for `--policy`: a name in --vault, or a full backup policy id.
CliResult<std::string> PolicyId(const Context& ctx, const BackupArgs& a) {
  if (LooksLikeResourceId(a.policy)) {
    auto id = ResourceId::Parse(a.policy);
    if (!id.ok()) return UsageError("--policy: " + id.status().message(), "--policy");
    if (!EqualsIgnoreCase(id->FullType(), kPolicyType))
      return UsageError("--policy: '" + a.policy + "' is not a backup policy id (" +
                            std::string(kPolicyType) + ").",
                        "--policy");
    return a.policy;
  }
  return ChildPath(VaultPath(ctx, a), "backupPolicies", a.policy, "--policy");
}

// The protected item a protection command acts on: -n, else the name of --vm.
CliResult<std::string> ItemName(const BackupArgs& a) {
  if (!a.name.empty()) return a.name;
  if (!a.vm.empty()) return NameFromId(a.vm);
  return UsageError("Give the protected item: -n/--item NAME or --vm VM.", "--item");
}

// The protected item of a protection command (-n, else the VM's name).
CliResult<std::string> ExistingItemPath(const Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(std::string name, ItemName(a));
  return ChildPath(VaultPath(ctx, a), "protectedItems", name, "--item");
}

CliStatus ProtectionEnable(Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(std::string vm_id, ResolveResourceId(ctx.subscription(), a.group, a.vm,
                                                            ResourceKind::kVirtualMachine, "--vm"));
  CLI_ASSIGN_OR_RETURN(std::string policy_id, PolicyId(ctx, a));
  CLI_ASSIGN_OR_RETURN(std::string path, ExistingItemPath(ctx, a));
  Json body = {{"properties", {{"sourceResourceId", vm_id}, {"policyId", policy_id}}}};
  return ctx.WriteAndShow("PUT", path, &body, path, ProtectedItemTable());
}

CliStatus ProtectionDisable(Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(std::string path, ExistingItemPath(ctx, a));
  if (a.delete_backup_data) path = WithQuery(path, {{"deleteBackupData", "true"}});
  CLI_RETURN_IF_ERROR(ctx.Write("DELETE", path, nullptr));
  return CliStatus::Ok();
}

}  // namespace

void RegisterProtection(CLI::App* backup, Action* selected) {
  CLI::App* protection = AddNoun(*backup, "protection", "Protect VMs with a backup policy");
  CLI::App* cmd = nullptr;

  auto enable =
      AddVaultLeaf(protection, selected, "enable", "Start backing up a VM", ProtectionEnable, &cmd);
  cmd->add_option("--vm", enable->vm, "VM name (in -g) or id")->required();
  cmd->add_option("--policy", enable->policy, "Backup policy name (in --vault) or id")->required();
  cmd->add_option("-n,--name,--item", enable->name, "Protected item name (default: the VM name)");

  auto item_options = [](CLI::App* c, BackupArgs& a) {
    c->add_option("-n,--name,--item", a.name, "Protected item name");
    c->add_option("--vm", a.vm, "The VM (its name is the item name)");
  };
  auto disable = AddVaultLeaf(protection, selected, "disable",
                              "Stop backing up a VM (its points are kept unless "
                              "--delete-backup-data)",
                              ProtectionDisable, &cmd);
  item_options(cmd, *disable);
  cmd->add_flag("--delete-backup-data", disable->delete_backup_data,
                "Also delete the item's recovery points");

  auto show = AddVaultLeaf(
      protection, selected, "show", "Show a protected item",
      [](Context& ctx, const BackupArgs& a) -> CliStatus {
        CLI_ASSIGN_OR_RETURN(std::string path, ExistingItemPath(ctx, a));
        return ctx.Show(path, ProtectedItemTable());
      },
      &cmd);
  item_options(cmd, *show);

  AddVaultLeaf(
      protection, selected, "list", "List the protected items of a vault",
      [](Context& ctx, const BackupArgs& a) {
        return ctx.List(ItemsPath(ctx, a), ProtectedItemTable());
      },
      &cmd);
}

}  // namespace stratus::cli::backup
