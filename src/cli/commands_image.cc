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
  std::string upload;
  std::string kernel;
  std::string initrd;
  std::string cmdline;
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

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

CliStatus Create(Context& ctx, const ImageArgs& a) {
  CLI_ASSIGN_OR_RETURN(Json tags, ParseTags(a.tags));
  if (a.source.empty() == a.upload.empty())
    return UsageError("give --upload FILE (sent to stratusd) or --source PATH (a file below an "
                      "--import-dir of stratusd)");
  Json props = {{"osType", a.os_type}};
  if (!a.cmdline.empty()) props["cmdline"] = a.cmdline;
  std::string path = ImagePath(ctx, a);
  if (!a.source.empty()) {
    // stratusd reads the files itself (below its --import-dir), so they need absolute paths.
    auto abs = [](const std::string& p) {
      std::error_code ec;
      return std::filesystem::absolute(p, ec).lexically_normal().string();
    };
    props["source"] = {{"filePath", abs(a.source)}};
    if (!a.kernel.empty()) props["kernel"] = abs(a.kernel);
    if (!a.initrd.empty()) props["initrd"] = abs(a.initrd);
    Json body = {{"location", LocationOr(ctx, a.location)}, {"tags", tags}, {"properties", props}};
    return ctx.WriteAndShow("PUT", path, &body, path, ImageTable());
  }
  // Upload: declare the parts, send each, then wait for the import the last one starts.
  std::vector<std::pair<std::string, std::string>> parts = {{"disk", a.upload}};
  if (!a.kernel.empty()) parts.emplace_back("kernel", a.kernel);
  if (!a.initrd.empty()) parts.emplace_back("initrd", a.initrd);
  Json upload = Json::object();
  for (auto& [part, file] : parts) {
    uint64_t n = FileSize(file);
    if (n == 0) return UsageError("cannot read '" + file + "' (or it is empty)");
    upload[part + "SizeBytes"] = n;
  }
  props["source"] = {{"upload", upload}};
  Json body = {{"location", LocationOr(ctx, a.location)}, {"tags", tags}, {"properties", props}};
  CLI_RETURN_IF_ERROR(ctx.client().Send("PUT", path, &body));
  std::string op;
  for (auto& [part, file] : parts) {
    CLI_ASSIGN_OR_RETURN(ApiResponse sent, ctx.client().Upload(path + "/upload/" + part, file));
    op = sent.async_operation;
  }
  if (!op.empty()) CLI_RETURN_IF_ERROR(ctx.client().WaitForOperation(op));
  return ctx.Show(path, ImageTable());
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
  create->add_option("--upload", create_args->upload, "qcow2 or raw file to upload");
  create->add_option("--source", create_args->source,
                     "qcow2 or raw file on the stratusd host, below one of its --import-dir");
  create->add_option("--kernel", create_args->kernel,
                     "Kernel for direct boot (uploaded with --upload, a host path with --source)");
  create->add_option("--initrd", create_args->initrd, "Initrd for direct boot (as --kernel)");
  create->add_option("--cmdline", create_args->cmdline, "Kernel command line");
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
