// stratus backup recoverypoint list|show
#include "cli/backup_common.h"

namespace stratus::cli::backup {
namespace {

const TableSpec& RecoveryPointTable() {
  static const TableSpec kSpec = {
      IdColumn(),
      FieldColumn("Time", "properties.recoveryPointTime"),
      FieldColumn("Type", "properties.recoveryPointType"),
      FieldColumn("Consistency", "properties.consistency"),
  };
  return kSpec;
}

}  // namespace

void RegisterRecoveryPoints(CLI::App* backup, Action* selected) {
  CLI::App* rp = AddNoun(*backup, "recoverypoint", "List and inspect recovery points");
  CLI::App* cmd = nullptr;

  auto list = AddVaultLeaf(
      rp, selected, "list", "List the recovery points of a protected item",
      [](Context& ctx, const BackupArgs& a) -> CliStatus {
        CLI_ASSIGN_OR_RETURN(std::string item, ItemPath(ctx, a));
        return ctx.List(item + "/recoveryPoints", RecoveryPointTable());
      },
      &cmd);
  cmd->add_option("--item", list->name, "Protected item name")->required();

  auto show = AddVaultLeaf(
      rp, selected, "show", "Show a recovery point",
      [](Context& ctx, const BackupArgs& a) -> CliStatus {
        CLI_ASSIGN_OR_RETURN(std::string path, RecoveryPointPath(ctx, a));
        return ctx.Show(path, RecoveryPointTable());
      },
      &cmd);
  cmd->add_option("--item", show->name, "Protected item name")->required();
  cmd->add_option("-n,--name,--recovery-point", show->recovery_point, "Recovery point id")
      ->required();
}

}  // namespace stratus::cli::backup
