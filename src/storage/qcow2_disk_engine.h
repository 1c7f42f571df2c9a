// Qcow2DiskEngine: disks as thin qcow2 files, driven through qemu-img.
#pragma once

#include "storage/disk_engine.h"

namespace stratus::storage {

class Qcow2DiskEngine final : public DiskEngine {
 public:
  Status CreateEmpty(const std::string& path, uint64_t size_bytes) override;
  Status CreateFromSource(const std::string& path, const std::string& source,
                          uint64_t size_bytes) override;
  Status Grow(const std::string& path, uint64_t new_size_bytes) override;
  Result<DiskUsage> Usage(const std::string& path) override;
  Status Remove(const std::string& path) override;
};

}  // namespace stratus::storage
