// stratus image list|create|show|delete
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/resolve.h"

namespace stratus::cli {
namespace {

struct ImageArgs {
  std::string group;
  std::string name;
  std::string location;
  std::string source;
  std::string os_type = "Linux";
  std::vector<std::string> tags;
  bool yes = false;
};

std::string ImagePath(const Context& ctx, const ImageArgs& a) {
  return ResourcePath(ctx.subscription(), a.group, ResourceKind::kImage, a.name);
}

CliStatus List(Context& ctx, const ImageArgs& a) {
  CLI_ASSIGN_OR_RETURN(std::vector<Json> images,
                       ctx.client().ListAll(PlatformImagesPath(ctx.subscription())));
  if (!a.group.empty()) {
    CLI_ASSIGN_OR_RETURN(
        std::vector<Json> custom,
        ctx.client().ListAll(CollectionPath(ctx.subscription(), a.group, ResourceKind::kImage)));
    for (Json& image : custom) images.push_back(std::move(image));
  }
  PrintMany(ctx.out(), ctx.format(), ImageTable(), images);
  return CliStatus::Ok();
}

CliStatus Create(Context& ctx, const ImageArgs& a) {
  CLI_ASSIGN_OR_RETURN(Json tags, ParseTags(a.tags));
  // stratusd reads the file itself, so it needs an absolute path.
  std::error_code ec;
  std::string file = std::filesystem::absolute(a.source, ec).lexically_normal().string();
  if (ec) return UsageError("--source: cannot make '" + a.source + "' absolute: " + ec.message());
  Json body = {{"location", LocationOr(ctx, a.location)},
               {"tags", tags},
               {"properties", {{"source", {{"filePath", file}}}, {"osType", a.os_type}}}};
  std::string path = ImagePath(ctx, a);
  return ctx.WriteAndShow("PUT", path, &body, path, ImageTable());
}

}  // namespace

void RegisterImageCommands(CLI::App& root, Action* selected) {
  CLI::App* image = AddNoun(root, "image", "Manage images");

  auto list_args = std::make_shared<ImageArgs>();
  CLI::App* list = image->add_subcommand("list", "List platform images (and those in -g)");
  list->add_option("-g,--resource-group", list_args->group, "Also list this group's images");
  SetAction(list, selected, [list_args](Context& ctx) { return List(ctx, *list_args); });

  auto create_args = std::make_shared<ImageArgs>();
  CLI::App* create = image->add_subcommand("create", "Import a qcow2/raw file as an image");
  create->add_option("-g,--resource-group", create_args->group, "Resource group")->required();
  create->add_option("-n,--name", create_args->name, "Image name")->required();
  create->add_option("--source", create_args->source, "qcow2 or raw file on the stratusd host")
      ->required();
  create->add_option("--os-type", create_args->os_type, "Guest OS type")->capture_default_str();
  create->add_option("-l,--location", create_args->location, "Location (default: the region's)");
  create->add_option("--tags", create_args->tags, "Tags: key=value ...");
  SetAction(create, selected, [create_args](Context& ctx) { return Create(ctx, *create_args); });

  auto show_args = std::make_shared<ImageArgs>();
  CLI::App* show = image->add_subcommand("show", "Show an image");
  show->add_option("-g,--resource-group", show_args->group, "Resource group")->required();
  show->add_option("-n,--name", show_args->name, "Image name")->required();
  SetAction(show, selected, [show_args](Context& ctx) {
    return ctx.Show(ImagePath(ctx, *show_args), ImageTable());
  });

  auto delete_args = std::make_shared<ImageArgs>();
  CLI::App* del = image->add_subcommand("delete", "Delete an image");
  del->add_option("-g,--resource-group", delete_args->group, "Resource group")->required();
  del->add_option("-n,--name", delete_args->name, "Image name")->required();
  del->add_flag("-y,--yes", delete_args->yes, "Accepted for az compatibility; nothing is asked");
  SetAction(del, selected, [delete_args](Context& ctx) -> CliStatus {
    CLI_RETURN_IF_ERROR(ctx.Write("DELETE", ImagePath(ctx, *delete_args), nullptr));
    return CliStatus::Ok();
  });
}

}  // namespace stratus::cli
