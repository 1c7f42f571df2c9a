// stratus group create|list|show|delete
#include <memory>

#include "cli/commands.h"
#include "cli/resolve.h"

namespace stratus::cli {
namespace {

struct GroupArgs {
  std::string name;
  std::string location;
  std::vector<std::string> tags;
  bool yes = false;
};

CLI::Option* AddGroupName(CLI::App* cmd, GroupArgs& args) {
  return cmd->add_option("-n,--name,-g,--resource-group", args.name, "Resource group name")
      ->required();
}

CliStatus Create(Context& ctx, const GroupArgs& args) {
  CLI_ASSIGN_OR_RETURN(Json tags, ParseTags(args.tags));
  Json body = {{"location", LocationOr(ctx, args.location)}, {"tags", tags}};
  std::string path = GroupPath(ctx.subscription(), args.name);
  return ctx.WriteAndShow("PUT", path, &body, path, GroupTable());
}

CliStatus Delete(Context& ctx, const GroupArgs& args) {
  // Deleting a group deletes everything in it; like `az group delete --yes`, nothing is asked.
  CLI_RETURN_IF_ERROR(ctx.Write("DELETE", GroupPath(ctx.subscription(), args.name), nullptr));
  return CliStatus::Ok();
}

}  // namespace

void RegisterGroupCommands(CLI::App& root, Action* selected) {
  CLI::App* group = AddNoun(root, "group", "Manage resource groups");

  auto create_args = std::make_shared<GroupArgs>();
  CLI::App* create = group->add_subcommand("create", "Create or update a resource group");
  AddGroupName(create, *create_args);
  create->add_option("-l,--location", create_args->location, "Location (default: the region's)");
  create->add_option("--tags", create_args->tags, "Tags: key=value ...");
  SetAction(create, selected, [create_args](Context& ctx) { return Create(ctx, *create_args); });

  CLI::App* list = group->add_subcommand("list", "List resource groups");
  SetAction(list, selected, [](Context& ctx) {
    return ctx.List(SubscriptionPath(ctx.subscription()) + "/resourceGroups", GroupTable());
  });

  auto show_args = std::make_shared<GroupArgs>();
  CLI::App* show = group->add_subcommand("show", "Show a resource group");
  AddGroupName(show, *show_args);
  SetAction(show, selected, [show_args](Context& ctx) {
    return ctx.Show(GroupPath(ctx.subscription(), show_args->name), GroupTable());
  });

  auto delete_args = std::make_shared<GroupArgs>();
  CLI::App* del = group->add_subcommand("delete", "Delete a resource group and all it contains");
  AddGroupName(del, *delete_args);
  del->add_flag("-y,--yes", delete_args->yes, "Accepted for az compatibility; nothing is asked");
  SetAction(del, selected, [delete_args](Context& ctx) { return Delete(ctx, *delete_args); });
}

}  // namespace stratus::cli
