// stratus backup vault create|update|show|list|delete|unlock|verify|gc|copy
#include "cli/backup_common.h"
#include "core/fs.h"

namespace stratus::cli::backup {
namespace {

// A customer passphrase from `--passphrase-file`: the file's text without its final newline.
CliResult<std::string> ReadPassphrase(const std::string& file) {
  auto text = ReadFile(file);
  if (!text.ok())
    return CliError(ExitCode::kLocalError, "FileNotFound",
                    "Cannot read the --passphrase-file '" + file + "'.", "--passphrase-file");
  std::string passphrase = std::move(text).value();
  if (!passphrase.empty() && passphrase.back() == '\n') passphrase.pop_back();
  if (!passphrase.empty() && passphrase.back() == '\r') passphrase.pop_back();
  if (passphrase.empty())
    return UsageError("The --passphrase-file '" + file + "' is empty.", "--passphrase-file");
  return passphrase;
}

const TableSpec& VaultTable() {
  static const TableSpec kSpec = {
      FieldColumn("Name", "name"),
      {"ResourceGroup", [](const Json& r) { return ResourceGroupFromId(Str(r, "id")); }},
      FieldColumn("Location", "location"),
      FieldColumn("KeySource", "properties.encryption.keySource"),
      FieldColumn("State", "properties.state"),
      FieldColumn("ProtectedItems", "properties.protectedItemCount"),
      FieldColumn("RecoveryPoints", "properties.recoveryPointCount"),
      FieldColumn("ProvisioningState", "properties.provisioningState"),
  };
  return kSpec;
}

const TableSpec& ProblemTable() {
  static const TableSpec kSpec = {
      FieldColumn("Kind", "kind"),     FieldColumn("RecoveryPoint", "recoveryPointId"),
      FieldColumn("Disk", "disk"),     FieldColumn("Offset", "offset"),
      FieldColumn("Chunk", "chunkId"), FieldColumn("Message", "message"),
  };
  return kSpec;
}

const TableSpec& GcTable() {
  static const TableSpec kSpec = {
      FieldColumn("ChunksDeleted", "chunksDeleted"),
      FieldColumn("BytesFreed", "bytesFreed"),
      FieldColumn("ChunksReferenced", "chunksReferenced"),
  };
  return kSpec;
}

const TableSpec& CopyTable() {
  static const TableSpec kSpec = {
      FieldColumn("PointsCopied", "pointsCopied"), FieldColumn("ChunksCopied", "chunksCopied"),
      FieldColumn("BytesCopied", "bytesCopied"),   FieldColumn("PointsRemoved", "pointsRemoved"),
      FieldColumn("PointsBehind", "pointsBehind"),
  };
  return kSpec;
}

// Sets properties.redundancy / copyLocation from --redundancy and --copy-location (which implies
// Copy); leaves them alone when neither is given.
CliStatus ApplyRedundancyArgs(const BackupArgs& a, Json& properties) {
  std::string mode = a.redundancy;
  if (mode.empty() && !a.copy_location.empty()) mode = "Copy";
  if (mode.empty()) return CliStatus::Ok();
  if (mode == "Local" && !a.copy_location.empty())
    return UsageError("--copy-location goes with --redundancy Copy.", "--copy-location");
  properties["redundancy"] = mode;
  if (!a.copy_location.empty()) properties["copyLocation"] = a.copy_location;
  return CliStatus::Ok();
}

CliStatus VaultCreate(Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(Json tags, ParseTags(a.tags));
  std::string key_source = a.key_source;
  if (key_source.empty()) key_source = a.passphrase_file.empty() ? "Platform" : "Customer";
  Json encryption = {{"keySource", key_source}};
  if (key_source == "Customer") {
    if (a.passphrase_file.empty())
      return UsageError("--key-source Customer needs --passphrase-file.", "--passphrase-file");
    CLI_ASSIGN_OR_RETURN(std::string passphrase, ReadPassphrase(a.passphrase_file));
    encryption["passphrase"] = passphrase;
  } else if (!a.passphrase_file.empty()) {
    return UsageError("--passphrase-file is only for --key-source Customer.", "--passphrase-file");
  }
  Json properties = {{"encryption", encryption}, {"redundancy", "Local"}};
  CLI_RETURN_IF_ERROR(ApplyRedundancyArgs(a, properties));
  if (!a.webhooks.empty()) properties["alerts"] = {{"webhooks", StringList(a.webhooks)}};
  Json body = {
      {"location", LocationOr(ctx, a.location)}, {"tags", tags}, {"properties", properties}};
  std::string path = VaultPath(ctx, a);
  return ctx.WriteAndShow("PUT", path, &body, path, VaultTable());
}

// Changes redundancy, webhooks or tags of an existing vault: the current vault, with what is
// given replaced, PUT back (the key source cannot change).
CliStatus VaultUpdate(Context& ctx, const BackupArgs& a) {
  std::string path = VaultPath(ctx, a);
  CLI_ASSIGN_OR_RETURN(Json current, ctx.client().Get(path));
  Json properties = Json::object();
  if (const Json* ks = JsonPath(current, "properties.encryption.keySource"))
    properties["encryption"] = {{"keySource", *ks}};
  if (const Json* alerts = JsonPath(current, "properties.alerts")) properties["alerts"] = *alerts;
  if (!a.webhooks.empty()) properties["alerts"] = {{"webhooks", StringList(a.webhooks)}};
  CLI_RETURN_IF_ERROR(ApplyRedundancyArgs(a, properties));
  Json body = {{"location", Str(current, "location")}, {"properties", properties}};
  if (const Json* tags = JsonPath(current, "tags")) body["tags"] = *tags;
  if (!a.tags.empty()) {
    CLI_ASSIGN_OR_RETURN(Json tags, ParseTags(a.tags));
    body["tags"] = tags;
  }
  return ctx.WriteAndShow("PUT", path, &body, path, VaultTable());
}

// Brings the vault's copy up to date now (a Copy job) and prints what it copied.
CliStatus VaultCopy(Context& ctx, const BackupArgs& a) {
  Json body = Json::object();
  CLI_ASSIGN_OR_RETURN(Context::WriteOutcome outcome,
                       ctx.Write("POST", VaultPath(ctx, a) + "/copy", &body));
  if (outcome.pending) return CliStatus::Ok();
  PrintOne(ctx.out(), ctx.format(), CopyTable(), ActionResult(outcome));
  return CliStatus::Ok();
}

CliStatus VaultUnlock(Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(std::string passphrase, ReadPassphrase(a.passphrase_file));
  Json body = {{"passphrase", passphrase}};
  return ctx.WriteAndShow("POST", VaultPath(ctx, a) + "/unlock", &body, VaultPath(ctx, a),
                          VaultTable());
}

// Prints what verify checked and every problem; exit 7 (VaultCorrupt) when there are problems.
CliStatus VaultVerify(Context& ctx, const BackupArgs& a) {
  Json body = Json::object();
  if (!a.recovery_point.empty()) body["recoveryPointId"] = a.recovery_point;
  CLI_ASSIGN_OR_RETURN(Context::WriteOutcome outcome,
                       ctx.Write("POST", VaultPath(ctx, a) + "/verify", &body,
                                 Context::OnOperationFailure::kReturnResult));
  if (outcome.pending) return CliStatus::Ok();
  const Json* operation = outcome.operation.has_value() ? &*outcome.operation : nullptr;
  std::string status = operation != nullptr ? Str(*operation, "status") : "Succeeded";
  Json result = ActionResult(outcome);
  const Json* problems_json = JsonPath(result, "problems");
  std::vector<Json> problems;
  if (problems_json != nullptr && problems_json->is_array())
    problems.assign(problems_json->begin(), problems_json->end());

  // A verify that failed without reporting problems (e.g. the vault is locked) is a plain
  // operation failure.
  if (status != "Succeeded" && problems.empty()) return OperationFailedError(*operation);

  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << RenderJson(result);
  } else {
    std::string chunks = Str(result, "chunksChecked");
    std::string bytes = Str(result, "bytesChecked");
    ctx.out() << "Checked " << (chunks.empty() ? "0" : chunks) << " chunks ("
              << (bytes.empty() ? "0" : bytes) << " bytes): ";
    if (problems.empty())
      ctx.out() << "no problems.\n";
    else
      ctx.out() << problems.size() << (problems.size() == 1 ? " problem" : " problems") << ".\n"
                << RenderTable(ProblemTable(), problems);
  }
  ctx.out().flush();
  if (problems.empty()) return CliStatus::Ok();
  if (operation != nullptr && status != "Succeeded") return OperationFailedError(*operation);
  return CliError(ExitCode::kOperationFailed, "VaultCorrupt",
                  "Verify of vault '" + a.vault + "' found " + std::to_string(problems.size()) +
                      " problem(s).");
}

CliStatus VaultGc(Context& ctx, const BackupArgs& a) {
  Json body = Json::object();
  CLI_ASSIGN_OR_RETURN(Context::WriteOutcome outcome,
                       ctx.Write("POST", VaultPath(ctx, a) + "/gc", &body));
  if (outcome.pending) return CliStatus::Ok();
  PrintOne(ctx.out(), ctx.format(), GcTable(), ActionResult(outcome));
  return CliStatus::Ok();
}

}  // namespace

void RegisterVault(CLI::App* backup, Action* selected) {
  CLI::App* vault = AddNoun(*backup, "vault", "Manage backup vaults");
  CLI::App* cmd = nullptr;
  auto vault_name = [](CLI::App* c, BackupArgs& a) {
    c->add_option("-n,--name,--vault", a.vault, "Vault name")->required();
  };

  auto create = AddLeaf(vault, selected, "create", "Create a backup vault", VaultCreate, &cmd);
  vault_name(cmd, *create);
  cmd->add_option("--key-source", create->key_source,
                  "Platform (default) or Customer (master key wrapped under a passphrase)")
      ->transform(CLI::IsMember({"Platform", "Customer"}, CLI::ignore_case));
  cmd->add_option("--passphrase-file", create->passphrase_file,
                  "File holding the customer passphrase (implies --key-source Customer)");
  cmd->add_option("--webhook", create->webhooks, "URL POSTed to when a job fails (repeatable)");
  cmd->add_option("-l,--location", create->location, "Location (default: the region's)");
  cmd->add_option("--tags", create->tags, "Tags: key=value ...");
  auto redundancy_options = [](CLI::App* c, BackupArgs& a) {
    c->add_option("--redundancy", a.redundancy,
                  "Local (default) or Copy (a second, complete vault in --copy-location, kept up "
                  "to date after every backup)")
        ->transform(CLI::IsMember({"Local", "Copy"}, CLI::ignore_case));
    c->add_option("--copy-location", a.copy_location,
                  "Absolute directory of the copy, ideally on another disk (implies Copy)");
  };
  redundancy_options(cmd, *create);

  auto update = AddLeaf(vault, selected, "update",
                        "Change a vault's redundancy, webhooks or tags (switching to Copy copies "
                        "the existing recovery points)",
                        VaultUpdate, &cmd);
  vault_name(cmd, *update);
  redundancy_options(cmd, *update);
  cmd->add_option("--webhook", update->webhooks, "URL POSTed to when a job fails (repeatable)");
  cmd->add_option("--tags", update->tags, "Tags: key=value ... (replace the current ones)");

  auto copy =
      AddLeaf(vault, selected, "copy",
              "Bring the copy of a vault with redundancy Copy up to date now", VaultCopy, &cmd);
  vault_name(cmd, *copy);

  auto show = AddLeaf(
      vault, selected, "show", "Show a vault",
      [](Context& ctx, const BackupArgs& a) { return ctx.Show(VaultPath(ctx, a), VaultTable()); },
      &cmd);
  vault_name(cmd, *show);

  AddLeaf(
      vault, selected, "list", "List the vaults of a resource group",
      [](Context& ctx, const BackupArgs& a) { return ctx.List(VaultsPath(ctx, a), VaultTable()); },
      &cmd);

  auto del = AddLeaf(
      vault, selected, "delete", "Delete a vault (it must have no protected items)",
      [](Context& ctx, const BackupArgs& a) -> CliStatus {
        CLI_RETURN_IF_ERROR(ctx.Write("DELETE", VaultPath(ctx, a), nullptr));
        return CliStatus::Ok();
      },
      &cmd);
  vault_name(cmd, *del);
  cmd->add_flag("-y,--yes", del->yes, "Accepted for az compatibility; nothing is asked");

  auto unlock =
      AddLeaf(vault, selected, "unlock", "Unlock a customer-key vault after a restart of stratusd",
              VaultUnlock, &cmd);
  vault_name(cmd, *unlock);
  cmd->add_option("--passphrase-file", unlock->passphrase_file,
                  "File holding the customer passphrase")
      ->required();

  auto verify = AddLeaf(vault, selected, "verify",
                        "Check every chunk of a vault (or of one recovery point); exit 7 when "
                        "problems are found",
                        VaultVerify, &cmd);
  vault_name(cmd, *verify);
  cmd->add_option("--recovery-point", verify->recovery_point, "Only this recovery point");

  auto gc = AddLeaf(vault, selected, "gc", "Delete the chunks no recovery point references",
                    VaultGc, &cmd);
  vault_name(cmd, *gc);
}

}  // namespace stratus::cli::backup
