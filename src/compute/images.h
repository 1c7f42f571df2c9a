// Images: platform images (read-only, installed by the setup under a directory, one folder
// per image with an image.json) and user images (Stratus.Compute/images resources imported
// from a qcow2/raw file into <data_dir>/images/).
#pragma once

#include <string>
#include <vector>

#include "core/json.h"
#include "storage/disk_engine.h"
#include "storage/disk_service.h"
#include "store/store.h"

namespace stratus::compute {

struct Image {
  std::string id;         // "tiny" for platform images, the full resource id otherwise
  std::string name;
  std::string disk_path;  // qcow2 or raw file
  std::string kernel;     // optional direct-boot kernel
  std::string initrd;
  std::string cmdline;
  std::string os_type = "Linux";
  uint64_t size_bytes = 0;  // virtual size of the disk
};

class ImageCatalog final : public storage::ImageFiles {
 public:
  // `engine` reads the platform images' sizes.
  ImageCatalog(store::Store* store, storage::DiskEngine* engine, std::string platform_dir)
      : store_(store), engine_(engine), platform_dir_(std::move(platform_dir)) {}

  // Every platform image (folders of platform_dir with a valid image.json).
  std::vector<Image> PlatformImages() const;
  // Resolves an imageReference id: a platform image name or an image resource id.
  // 404 "ImageNotFound" otherwise.
  Result<Image> Resolve(const std::string& ref) const;
  // storage::ImageFiles: the disk file of Resolve(ref).
  Result<std::string> ImageFile(const std::string& ref,
                                const std::string& subscription) const override;
  static Json ToJson(const Image& img);

 private:
  Result<Image> LoadPlatform(const std::string& name) const;
  store::Store* store_;
  storage::DiskEngine* engine_;
  std::string platform_dir_;
};

}  // namespace stratus::compute
