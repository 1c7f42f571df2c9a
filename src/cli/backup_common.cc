#include "cli/backup_common.h"

#include "cli/config.h"
#include "cli/resolve.h"
#include "core/resource_id.h"

namespace stratus::cli::backup {
namespace {

constexpr const char* kVaultsType = "Stratus.RecoveryServices/vaults";

// The short name of a resource: `name`, else the last segment of `id`.
std::string ShortName(const Json& row) {
  std::string name = Str(row, "name");
  return name.empty() ? NameFromId(Str(row, "id")) : name;
}

}  // namespace

std::string VaultsPath(const Context& ctx, const BackupArgs& a) {
  return GroupPath(ctx.subscription(), a.group) + "/providers/" + kVaultsType;
}
std::string VaultPath(const Context& ctx, const BackupArgs& a) {
  return VaultsPath(ctx, a) + "/" + a.vault;
}

bool ContainsSegment(const std::string& id, const std::string& segment) {
  return ToLower(id).find("/" + ToLower(segment) + "/") != std::string::npos;
}

CliResult<std::string> ChildPath(const std::string& parent, const std::string& collection,
                                 const std::string& name_or_id, const std::string& option) {
  if (name_or_id.empty()) return UsageError(option + " must not be empty.", option);
  if (LooksLikeResourceId(name_or_id)) {
    if (!ContainsSegment(name_or_id, collection))
      return UsageError(option + ": '" + name_or_id + "' is not an id of " + collection + ".",
                        option);
    return name_or_id;
  }
  if (name_or_id.find('/') != std::string::npos)
    return UsageError(option + ": '" + name_or_id + "' is neither a name nor a full id.", option);
  return parent + "/" + collection + "/" + name_or_id;
}

CliResult<std::string> ItemPath(const Context& ctx, const BackupArgs& a) {
  return ChildPath(VaultPath(ctx, a), "protectedItems", a.name, "--item");
}

CliResult<std::string> RecoveryPointPath(const Context& ctx, const BackupArgs& a) {
  CLI_ASSIGN_OR_RETURN(std::string item, ItemPath(ctx, a));
  return ChildPath(item, "recoveryPoints", a.recovery_point, "--recovery-point");
}

Json StringList(const std::vector<std::string>& values) {
  Json out = Json::array();
  for (const std::string& v : values) {
    std::string t = TrimWhitespace(v);
    if (!t.empty()) out.push_back(t);
  }
  return out;
}

std::string Str(const Json& row, const std::string& dotted) {
  return FormatCell(JsonPath(row, dotted));
}

std::string NameOfIdField(const Json& row, const std::string& dotted) {
  const Json* v = JsonPath(row, dotted);
  return v != nullptr && v->is_string() ? NameFromId(v->get<std::string>()) : std::string();
}

Column IdColumn() {
  return {"Id", [](const Json& r) { return ShortName(r); }};
}

Json ActionResult(const Context::WriteOutcome& outcome) {
  const Json& doc = outcome.operation.has_value() ? *outcome.operation : outcome.response.body;
  const Json* properties = JsonPath(doc, "properties");
  if (properties != nullptr && properties->is_object()) return *properties;
  return doc.is_null() ? Json::object() : doc;
}

std::shared_ptr<BackupArgs> AddLeaf(CLI::App* noun, Action* selected, const std::string& name,
                                    const std::string& description, LeafFn fn, CLI::App** out) {
  auto args = std::make_shared<BackupArgs>();
  CLI::App* cmd = noun->add_subcommand(name, description);
  cmd->add_option("-g,--resource-group", args->group, "Resource group")->required();
  SetAction(cmd, selected, [args, fn](Context& ctx) { return fn(ctx, *args); });
  *out = cmd;
  return args;
}

std::shared_ptr<BackupArgs> AddVaultLeaf(CLI::App* noun, Action* selected, const std::string& name,
                                         const std::string& description, LeafFn fn,
                                         CLI::App** out) {
  auto args = AddLeaf(noun, selected, name, description, fn, out);
  (*out)->add_option("--vault", args->vault, "Backup vault name")->required();
  return args;
}

}  // namespace stratus::cli::backup
