#include "cli/resolve.h"

#include "cli/output.h"
#include "core/resource_id.h"

namespace stratus::cli {
namespace {

bool StartsWithIgnoreCase(const std::string& s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         EqualsIgnoreCase(std::string_view(s).substr(0, prefix.size()), prefix);
}

std::string FullType(ResourceKind kind) {
  return std::string(ProviderNamespace(kind)) + "/" + TypeSegment(kind);
}

// GET `path`: the body, null when it is 404, or the error.
CliResult<Json> GetIfExists(ApiClient& client, const std::string& path) {
  auto got = client.Get(path);
  if (got.ok()) return std::move(got).value();
  if (got.error().exit_code() == ExitCode::kNotFound) return Json();
  return got.error();
}

std::string IdOf(const Json& resource, const std::string& fallback) {
  const Json* id = JsonPath(resource, "id");
  return id != nullptr && id->is_string() ? id->get<std::string>() : fallback;
}

}  // namespace

const char* ProviderNamespace(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::kVirtualMachine:
    case ResourceKind::kImage: return "Stratus.Compute";
    case ResourceKind::kDisk:
    case ResourceKind::kSnapshot: return "Stratus.Storage";
  }
  return "";
}

const char* TypeSegment(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::kVirtualMachine: return "virtualMachines";
    case ResourceKind::kImage: return "images";
    case ResourceKind::kDisk: return "disks";
    case ResourceKind::kSnapshot: return "snapshots";
  }
  return "";
}

const char* Noun(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::kVirtualMachine: return "virtual machine";
    case ResourceKind::kImage: return "image";
    case ResourceKind::kDisk: return "disk";
    case ResourceKind::kSnapshot: return "snapshot";
  }
  return "";
}

std::string SubscriptionPath(const std::string& sub) { return "/subscriptions/" + sub; }

std::string GroupPath(const std::string& sub, const std::string& rg) {
  return SubscriptionPath(sub) + "/resourceGroups/" + rg;
}

std::string CollectionPath(const std::string& sub, const std::string& rg, ResourceKind kind) {
  return GroupPath(sub, rg) + "/providers/" + FullType(kind);
}

std::string ResourcePath(const std::string& sub, const std::string& rg, ResourceKind kind,
                         const std::string& name) {
  return CollectionPath(sub, rg, kind) + "/" + name;
}

std::string OperationPath(const std::string& sub, const std::string& id_or_url) {
  if (id_or_url.find("://") != std::string::npos || (!id_or_url.empty() && id_or_url[0] == '/'))
    return PathOfUrl(id_or_url);
  return SubscriptionPath(sub) + "/providers/Stratus.Resources/operations/" + id_or_url;
}

std::string PlatformImagesPath(const std::string& sub) {
  return SubscriptionPath(sub) + "/providers/Stratus.Compute/platformImages";
}

bool LooksLikeResourceId(const std::string& s) {
  return StartsWithIgnoreCase(s, "/subscriptions/");
}

CliResult<std::string> ResolveResourceId(const std::string& sub, const std::string& rg,
                                         const std::string& name_or_id, ResourceKind kind,
                                         const std::string& option) {
  if (name_or_id.empty()) return UsageError(option + " must not be empty.", option);
  if (LooksLikeResourceId(name_or_id)) {
    auto id = ResourceId::Parse(name_or_id);
    if (!id.ok()) return UsageError(option + ": " + id.status().message(), option);
    if (!id->IsResource() || !EqualsIgnoreCase(id->FullType(), FullType(kind)))
      return UsageError(option + ": '" + name_or_id + "' is not a " + Noun(kind) + " id (" +
                            FullType(kind) + ").",
                        option);
    return name_or_id;
  }
  if (name_or_id.find('/') != std::string::npos)
    return UsageError(option + ": '" + name_or_id + "' is neither a " + Noun(kind) +
                          " name nor a full resource id.",
                      option);
  if (rg.empty())
    return UsageError(option + " names " + Noun(kind) + " '" + name_or_id +
                          "': give -g/--resource-group to resolve it, or pass its full id.",
                      option);
  return ResourcePath(sub, rg, kind, name_or_id);
}

CliResult<std::string> ResolveCopySource(ApiClient& client, const std::string& sub,
                                         const std::string& rg, const std::string& name_or_id,
                                         const std::string& option) {
  if (LooksLikeResourceId(name_or_id)) {
    auto as_snapshot = ResolveResourceId(sub, rg, name_or_id, ResourceKind::kSnapshot, option);
    if (as_snapshot.ok()) return as_snapshot;
    auto as_disk = ResolveResourceId(sub, rg, name_or_id, ResourceKind::kDisk, option);
    if (as_disk.ok()) return as_disk;
    return UsageError(option + ": '" + name_or_id + "' is neither a snapshot nor a disk id.",
                      option);
  }
  CLI_ASSIGN_OR_RETURN(std::string snapshot_id,
                       ResolveResourceId(sub, rg, name_or_id, ResourceKind::kSnapshot, option));
  CLI_ASSIGN_OR_RETURN(std::string disk_id,
                       ResolveResourceId(sub, rg, name_or_id, ResourceKind::kDisk, option));
  CLI_ASSIGN_OR_RETURN(Json snapshot, GetIfExists(client, snapshot_id));
  CLI_ASSIGN_OR_RETURN(Json disk, GetIfExists(client, disk_id));
  if (!snapshot.is_null() && !disk.is_null())
    return UsageError(option + ": both a snapshot and a disk are named '" + name_or_id + "' in '" +
                          rg + "'; pass the full id of the one to copy.",
                      option);
  if (!snapshot.is_null()) return IdOf(snapshot, snapshot_id);
  if (!disk.is_null()) return IdOf(disk, disk_id);
  return CliError(ExitCode::kNotFound, "ResourceNotFound",
                  "No snapshot or disk named '" + name_or_id + "' in resource group '" + rg + "'.",
                  option);
}

CliResult<Json> ResolveImageReference(ApiClient& client, const std::string& sub,
                                      const std::string& rg, const std::string& name_or_id) {
  if (LooksLikeResourceId(name_or_id)) {
    CLI_ASSIGN_OR_RETURN(std::string id,
                         ResolveResourceId(sub, rg, name_or_id, ResourceKind::kImage, "--image"));
    return Json{{"id", id}};
  }
  if (name_or_id.empty()) return UsageError("--image must not be empty.", "--image");
  CLI_ASSIGN_OR_RETURN(std::vector<Json> platform, client.ListAll(PlatformImagesPath(sub)));
  std::string known;
  for (const Json& image : platform) {
    std::string name = FormatCell(JsonPath(image, "name"));
    if (name.empty()) name = NameFromId(FormatCell(JsonPath(image, "id")));
    if (EqualsIgnoreCase(name, name_or_id)) return Json{{"id", name}};
    known += (known.empty() ? "" : ", ") + name;
  }
  if (!rg.empty()) {
    std::string path = ResourcePath(sub, rg, ResourceKind::kImage, name_or_id);
    CLI_ASSIGN_OR_RETURN(Json image, GetIfExists(client, path));
    if (!image.is_null()) return Json{{"id", IdOf(image, path)}};
  }
  return CliError(
      ExitCode::kNotFound, "ImageNotFound",
      "No image '" + name_or_id + "': not a platform image (" +
          (known.empty() ? std::string("none") : known) + ")" +
          (rg.empty() ? std::string() : " nor an image in resource group '" + rg + "'") + ".",
      "--image");
}

}  // namespace stratus::cli
