// FileRestore: POST {recoveryPoint}/listFiles and /extractFiles — single files out of a recovery
// point, without booting anything. The disk is restored (checked chunk by chunk) into a sparse
// raw file in the scratch area and read with debugfs (e2fsprogs), which understands ext2/3/4
// images without mounting them. The scratch file goes when the request ends.
//
// Blocking (the restore of one disk); thread-safe.
#pragma once

#include <string>

#include "api/provider.h"
#include "recovery/service/vault_registry.h"

namespace stratus::recovery::service {

class FileRestore {
 public:
  // `vaults` outlives it.
  FileRestore(api::RegionContext ctx, VaultRegistry* vaults)
      : ctx_(std::move(ctx)), vaults_(vaults) {}

  // listFiles {"disk", "path"?}: the entries of a directory. extractFiles {"disk", "paths"}: the
  // files' contents (Base64, 16 MiB together at most). NotFound "FileNotFound"/"DiskNotFound",
  // InvalidArgument "UnsupportedFileSystem" for a disk without ext2/3/4, "ResultTooLarge".
  Result<api::ApiResponse> Post(const api::ApiRequest& req, const ResourceId& point,
                                const std::string& action);

 private:
  api::RegionContext ctx_;
  VaultRegistry* vaults_;
};

}  // namespace stratus::recovery::service
