// Qcow2DiskEngine: disks as thin qcow2 files (64 KiB clusters, lazy refcounts), driven through
// qemu-img. The contract is DiskEngine's (disk_engine.h); what is qcow2's:
//  - `path` is a file path; Create* build `<path>.creating` and rename it into place.
//  - Readers pass -U (no lock), so they work while QEMU holds the image.
//  - Bitmaps are qcow2 persistent bitmaps; qemu-img takes the image's write lock to change
//    them, so AddBitmap/RemoveBitmap fail (Internal) rather than change a disk a VM runs on.
//  - CreateOverNbd makes a qcow2 overlay whose backing is `json:{raw over nbd+unix}`.
#pragma once

#include "storage/disk_engine.h"

namespace stratus::storage {

class Qcow2DiskEngine final : public DiskEngine {
 public:
  Status CreateEmpty(const std::string& path, uint64_t size_bytes) override;
  Status CreateFromSource(const std::string& path, const std::string& source, uint64_t size_bytes,
                          const std::string& source_format) override;
  Status Grow(const std::string& path, uint64_t new_size_bytes) override;
  Result<DiskUsage> Usage(const std::string& path) override;
  Result<DiskInfo> Inspect(const std::string& path) override;
  Status Remove(const std::string& path) override;

  Status CreateOverNbd(const std::string& path, const std::string& nbd_socket,
                       uint64_t size_bytes) override;
  Result<std::vector<DiskBitmap>> ListBitmaps(const std::string& path) override;
  Status AddBitmap(const std::string& path, const std::string& name) override;
  Status RemoveBitmap(const std::string& path, const std::string& name) override;
};

}  // namespace stratus::storage
