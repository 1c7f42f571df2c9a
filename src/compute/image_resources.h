// ImageResources: the Stratus.Compute/images resource type (user images),
// served through ComputeProvider. Creates images from a host file below an
// --import-dir or from an upload (image_import.h), answers no-op PUTs without
// writing, refuses changes to what an image was made from (409
// PropertyChangeNotAllowed), and deletes them. Thread-safe (state is in the
// store; engine work runs as operations).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/provider.h"
#include "storage/disk_engine.h"

namespace stratus::compute {

struct ImageImportOptions {
  std::vector<std::string> import_dirs;  // resolved (ResolveImportDirs); empty = host paths off
  uint64_t max_upload_bytes = 64ull << 30;
};

class ImageResources {
 public:
  // `engine` converts the checked files into the image's disk (storage/image_file.h).
  ImageResources(api::RegionContext ctx, storage::DiskEngine* engine, ImageImportOptions options)
      : ctx_(std::move(ctx)), engine_(engine), options_(std::move(options)) {}

  static const api::Shape& BodyShape();
  Result<api::ApiResponse> Put(const api::ApiRequest& req, const ResourceId& id);
  Result<api::ResourceProvider::Upload> BeginUpload(const api::ApiRequest& req,
                                                    const ResourceId& id, const std::string& part);
  Result<api::ApiResponse> FinishUpload(const api::ApiRequest& req, const ResourceId& id,
                                        const std::string& part, api::BodySink& sink,
                                        uint64_t received);
  // An import interrupted by a restart of stratusd: the image is marked Failed.
  void RegisterRecovery();

 private:
  api::RegionContext ctx_;
  storage::DiskEngine* engine_;
  ImageImportOptions options_;
};

}  // namespace stratus::compute
