// stratus disk create|list|show|update|delete
#include <memory>

#include "cli/commands.h"
#include "cli/resolve.h"

namespace stratus::cli {
namespace {

struct DiskArgs {
  std::string group;
  std::string name;
  std::string location;
  int size_gb = 0;
  std::string sku;
  std::string source;
  std::string image;
  std::vector<std::string> tags;
  bool yes = false;
};

const std::vector<std::string> kSkus = {"Standard_LRS", "Premium_LRS"};

std::string DiskPath(const Context& ctx, const DiskArgs& a) {
  return ResourcePath(ctx.subscription(), a.group, ResourceKind::kDisk, a.name);
}

CliStatus Create(Context& ctx, const DiskArgs& a) {
  CLI_ASSIGN_OR_RETURN(Json tags, ParseTags(a.tags));
  Json creation;
  if (!a.source.empty()) {
    CLI_ASSIGN_OR_RETURN(std::string source_id, ResolveCopySource(ctx.client(), ctx.subscription(),
                                                                  a.group, a.source, "--source"));
    creation = {{"createOption", "Copy"}, {"sourceResourceId", source_id}};
  } else if (!a.image.empty()) {
    CLI_ASSIGN_OR_RETURN(Json image_reference,
                         ResolveImageReference(ctx.client(), ctx.subscription(), a.group, a.image));
    creation = {{"createOption", "FromImage"}, {"imageReference", image_reference}};
  } else {
    if (a.size_gb <= 0)
      return UsageError("--size-gb is required for an empty disk (no --source or --image).",
                        "--size-gb");
    creation = {{"createOption", "Empty"}};
  }
  Json properties = {{"creationData", creation}};
  if (a.size_gb > 0) properties["diskSizeGB"] = a.size_gb;
  Json body = {
      {"location", LocationOr(ctx, a.location)}, {"tags", tags}, {"properties", properties}};
  if (!a.sku.empty()) body["sku"] = {{"name", a.sku}};
  std::string path = DiskPath(ctx, a);
  return ctx.WriteAndShow("PUT", path, &body, path, DiskTable());
}

CliStatus Update(Context& ctx, const DiskArgs& a) {
  if (a.size_gb <= 0 && a.sku.empty())
    return UsageError("Nothing to update: give --size-gb and/or --sku.", "--size-gb");
  Json body = Json::object();
  if (a.size_gb > 0) body["properties"] = {{"diskSizeGB", a.size_gb}};
  if (!a.sku.empty()) body["sku"] = {{"name", a.sku}};
  std::string path = DiskPath(ctx, a);
  return ctx.WriteAndShow("PATCH", path, &body, path, DiskTable());
}

std::shared_ptr<DiskArgs> AddDiskCommand(CLI::App* noun, Action* selected, const std::string& name,
                                         const std::string& description, bool needs_name,
                                         CliStatus (*fn)(Context&, const DiskArgs&),
                                         CLI::App** out) {
  auto args = std::make_shared<DiskArgs>();
  CLI::App* cmd = noun->add_subcommand(name, description);
  cmd->add_option("-g,--resource-group", args->group, "Resource group")->required();
  if (needs_name) cmd->add_option("-n,--name", args->name, "Disk name")->required();
  SetAction(cmd, selected, [args, fn](Context& ctx) { return fn(ctx, *args); });
  *out = cmd;
  return args;
}

}  // namespace

void RegisterDiskCommands(CLI::App& root, Action* selected) {
  CLI::App* disk = AddNoun(root, "disk", "Manage managed disks");
  CLI::App* cmd = nullptr;

  auto create = AddDiskCommand(disk, selected, "create", "Create a disk", true, Create, &cmd);
  cmd->add_option("--size-gb", create->size_gb, "Size in GB (required for an empty disk)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--sku", create->sku, "Tier")->check(CLI::IsMember(kSkus));
  CLI::Option* source =
      cmd->add_option("--source", create->source, "Snapshot or disk to copy (name in -g, or id)");
  CLI::Option* image = cmd->add_option("--image", create->image, "Image to create the disk from");
  source->excludes(image);
  cmd->add_option("-l,--location", create->location, "Location (default: the region's)");
  cmd->add_option("--tags", create->tags, "Tags: key=value ...");

  AddDiskCommand(
      disk, selected, "list", "List the disks of a resource group", false,
      [](Context& ctx, const DiskArgs& a) {
        return ctx.List(CollectionPath(ctx.subscription(), a.group, ResourceKind::kDisk),
                        DiskTable());
      },
      &cmd);

  AddDiskCommand(
      disk, selected, "show", "Show a disk", true,
      [](Context& ctx, const DiskArgs& a) { return ctx.Show(DiskPath(ctx, a), DiskTable()); },
      &cmd);

  auto update = AddDiskCommand(disk, selected, "update", "Grow a disk or change its tier", true,
                               Update, &cmd);
  cmd->add_option("--size-gb", update->size_gb, "New size in GB (never shrinks)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--sku", update->sku, "New tier (applied live)")->check(CLI::IsMember(kSkus));

  auto del = AddDiskCommand(
      disk, selected, "delete", "Delete a disk (it must be detached)", true,
      [](Context& ctx, const DiskArgs& a) -> CliStatus {
        CLI_RETURN_IF_ERROR(ctx.Write("DELETE", DiskPath(ctx, a), nullptr));
        return CliStatus::Ok();
      },
      &cmd);
  cmd->add_flag("-y,--yes", del->yes, "Accepted for az compatibility; nothing is asked");
}

}  // namespace stratus::cli
