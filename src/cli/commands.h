// The `stratus` command tree. Each commands_<noun>.cc registers one noun's CLI11 subcommands;
// a leaf's CLI11 callback only records its Action, which RunCli (cli_app.h) runs after parsing,
// once the global options are resolved into a Context.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "cli/cli_error.h"
#include "cli/context.h"

namespace stratus::cli {

// A parsed command, ready to run.
using Action = std::function<CliStatus(Context&)>;

// Adds `name` under `parent`. Use for both nouns (which then require a subcommand) and leaves.
CLI::App* AddNoun(CLI::App& parent, const std::string& name, const std::string& description);
// Makes `command` a leaf: when it is parsed, `*selected` becomes `action`.
void SetAction(CLI::App* command, Action* selected, Action action);

// `--tags k=v k2=v2` -> {"k":"v","k2":"v2"}; "k" alone -> "". Usage error on an empty key.
CliResult<Json> ParseTags(const std::vector<std::string>& tags);
// `-l` if given, else the context's default location.
std::string LocationOr(const Context& ctx, const std::string& location);

void RegisterGroupCommands(CLI::App& root, Action* selected);
void RegisterVmCommands(CLI::App& root, Action* selected);
void RegisterDiskCommands(CLI::App& root, Action* selected);
void RegisterSnapshotCommands(CLI::App& root, Action* selected);
void RegisterImageCommands(CLI::App& root, Action* selected);
// `network vnet|subnet|nic|nsg|nsg rule` (Stratus.Network).
void RegisterNetworkCommands(CLI::App& root, Action* selected);
// `backup vault|policy|protection|now|restore|recoverypoint|files|job` (Stratus.RecoveryServices);
// one file per group, commands_backup_<group>.cc, sharing backup_common.h.
void RegisterBackupCommands(CLI::App& root, Action* selected);
// `recovery pair token|create|list|show|check|delete` (site recovery).
void RegisterRecoveryCommands(CLI::App& root, Action* selected);
// `recovery network-mapping ...` and `recovery replication nic-show|nic-set`, under the nouns
// RegisterRecoveryCommands made (commands_recovery_network.cc).
void RegisterRecoveryNetworkCommands(CLI::App& recovery, CLI::App& replication, Action* selected);
// `operation show` and `activity-log list`.
void RegisterOperationCommands(CLI::App& root, Action* selected);

}  // namespace stratus::cli
