// stratus snapshot create|list|show|delete
#include <memory>

#include "cli/commands.h"
#include "cli/resolve.h"

namespace stratus::cli {
namespace {

struct SnapshotArgs {
  std::string group;
  std::string name;
  std::string location;
  std::string source;
  std::vector<std::string> tags;
  bool yes = false;
};

std::string SnapshotPath(const Context& ctx, const SnapshotArgs& a) {
  return ResourcePath(ctx.subscription(), a.group, ResourceKind::kSnapshot, a.name);
}

CliStatus Create(Context& ctx, const SnapshotArgs& a) {
  CLI_ASSIGN_OR_RETURN(Json tags, ParseTags(a.tags));
  CLI_ASSIGN_OR_RETURN(std::string disk_id, ResolveResourceId(ctx.subscription(), a.group, a.source,
                                                              ResourceKind::kDisk, "--source"));
  Json body = {{"location", LocationOr(ctx, a.location)},
               {"tags", tags},
               {"properties",
                {{"creationData", {{"createOption", "Copy"}, {"sourceResourceId", disk_id}}}}}};
  std::string path = SnapshotPath(ctx, a);
  return ctx.WriteAndShow("PUT", path, &body, path, SnapshotTable());
}

std::shared_ptr<SnapshotArgs> AddSnapshotCommand(CLI::App* noun, Action* selected,
                                                 const std::string& name,
                                                 const std::string& description, bool needs_name,
                                                 CliStatus (*fn)(Context&, const SnapshotArgs&),
                                                 CLI::App** out) {
  auto args = std::make_shared<SnapshotArgs>();
  CLI::App* cmd = noun->add_subcommand(name, description);
  cmd->add_option("-g,--resource-group", args->group, "Resource group")->required();
  if (needs_name) cmd->add_option("-n,--name", args->name, "Snapshot name")->required();
  SetAction(cmd, selected, [args, fn](Context& ctx) { return fn(ctx, *args); });
  *out = cmd;
  return args;
}

}  // namespace

void RegisterSnapshotCommands(CLI::App& root, Action* selected) {
  CLI::App* snapshot = AddNoun(root, "snapshot", "Manage disk snapshots");
  CLI::App* cmd = nullptr;

  auto create =
      AddSnapshotCommand(snapshot, selected, "create", "Snapshot a disk", true, Create, &cmd);
  cmd->add_option("--source", create->source, "Disk to snapshot (name in -g, or id)")->required();
  cmd->add_option("-l,--location", create->location, "Location (default: the region's)");
  cmd->add_option("--tags", create->tags, "Tags: key=value ...");

  AddSnapshotCommand(
      snapshot, selected, "list", "List the snapshots of a resource group", false,
      [](Context& ctx, const SnapshotArgs& a) {
        return ctx.List(CollectionPath(ctx.subscription(), a.group, ResourceKind::kSnapshot),
                        SnapshotTable());
      },
      &cmd);

  AddSnapshotCommand(
      snapshot, selected, "show", "Show a snapshot", true,
      [](Context& ctx, const SnapshotArgs& a) {
        return ctx.Show(SnapshotPath(ctx, a), SnapshotTable());
      },
      &cmd);

  auto del = AddSnapshotCommand(
      snapshot, selected, "delete", "Delete a snapshot", true,
      [](Context& ctx, const SnapshotArgs& a) -> CliStatus {
        CLI_RETURN_IF_ERROR(ctx.Write("DELETE", SnapshotPath(ctx, a), nullptr));
        return CliStatus::Ok();
      },
      &cmd);
  cmd->add_flag("-y,--yes", del->yes, "Accepted for az compatibility; nothing is asked");
}

}  // namespace stratus::cli
