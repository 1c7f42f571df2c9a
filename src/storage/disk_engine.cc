#include "storage/disk_engine.h"

namespace stratus::storage {

Status DiskEngine::CreateOverNbd(const std::string& path, const std::string& /*nbd_socket*/,
                                 uint64_t /*size_bytes*/) {
  return NotSupported("this disk engine cannot back a disk with an NBD export (" + path + ")");
}

Result<std::vector<DiskBitmap>> DiskEngine::ListBitmaps(const std::string& /*path*/) {
  return std::vector<DiskBitmap>{};
}

Status DiskEngine::AddBitmap(const std::string& path, const std::string& /*name*/) {
  return NotSupported("this disk engine keeps no dirty bitmaps (" + path + ")");
}

Status DiskEngine::RemoveBitmap(const std::string& path, const std::string& name) {
  return NotFound("disk '" + path + "' has no bitmap '" + name + "'", name);
}

}  // namespace stratus::storage
