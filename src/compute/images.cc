#include "compute/images.h"

#include <filesystem>

#include "core/fs.h"
#include "core/resource_id.h"

namespace stratus::compute {

Result<Image> ImageCatalog::LoadPlatform(const std::string& name) const {
  std::string dir = JoinPath(platform_dir_, name);
  auto text = ReadFile(JoinPath(dir, "image.json"));
  if (!text.ok())
    return NotFound("Image '" + name + "' was not found.", "imageReference.id", "ImageNotFound");
  Json j = Json::parse(*text, nullptr, false);
  if (!j.is_object()) return Internal("image.json of platform image '" + name + "' is invalid");
  Image img;
  img.id = j.value("name", name);
  img.name = img.id;
  img.disk_path = JoinPath(dir, j.value("disk", "disk.qcow2"));
  if (j.contains("kernel")) img.kernel = JoinPath(dir, j["kernel"].get<std::string>());
  if (j.contains("initrd")) img.initrd = JoinPath(dir, j["initrd"].get<std::string>());
  img.cmdline = j.value("cmdline", "");
  img.os_type = j.value("osType", "Linux");
  auto usage = engine_->Usage(img.disk_path);
  if (usage.ok()) img.size_bytes = usage->virtual_bytes;
  return img;
}

std::vector<Image> ImageCatalog::PlatformImages() const {
  std::vector<Image> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(platform_dir_, ec)) {
    if (!e.is_directory()) continue;
    auto img = LoadPlatform(e.path().filename().string());
    if (img.ok()) out.push_back(*img);
  }
  return out;
}

Result<Image> ImageCatalog::Resolve(const std::string& ref) const {
  if (ref.empty())
    return InvalidArgument("imageReference.id is required.", "imageReference.id",
                           "MissingParameter");
  if (ref.find('/') == std::string::npos) {
    RETURN_IF_ERROR(ValidateResourceName(ref, "image"));
    return LoadPlatform(ref);
  }
  ASSIGN_OR_RETURN(ResourceId id, ResourceId::Parse(ref));
  auto rec = store_->Get(id.Key());
  if (!rec.ok() || ToLower(id.FullType()) != "stratus.compute/images")
    return NotFound("Image '" + ref + "' was not found.", "imageReference.id", "ImageNotFound");
  if (rec->body["properties"].value("provisioningState", "") != "Succeeded")
    return Conflict("Image '" + ref + "' is not ready yet.", "imageReference.id");
  Image img;
  img.id = id.ToString();
  img.name = id.name();
  img.disk_path = rec->internal.value("path", "");
  img.kernel = rec->internal.value("kernel", "");
  img.initrd = rec->internal.value("initrd", "");
  img.cmdline = rec->body["properties"].value("cmdline", "");
  img.os_type = rec->body["properties"].value("osType", "Linux");
  img.size_bytes = rec->body["properties"].value("sizeBytes", uint64_t{0});
  return img;
}

Result<std::string> ImageCatalog::ImageFile(const std::string& ref,
                                            const std::string& /*subscription*/) const {
  ASSIGN_OR_RETURN(Image img, Resolve(ref));
  return img.disk_path;
}

Json ImageCatalog::ToJson(const Image& img) {
  return Json{{"id", img.id},
              {"name", img.name},
              {"osType", img.os_type},
              {"sizeBytes", img.size_bytes},
              {"directKernelBoot", !img.kernel.empty()}};
}

}  // namespace stratus::compute
