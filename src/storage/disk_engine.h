// DiskEngine: the seam between the storage controller and where disk bytes live.
//
// Qcow2DiskEngine (qcow2_disk_engine.h) keeps each disk as a thin-provisioned qcow2 file and
// drives qemu-img; a Ceph RBD engine would implement the same calls. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace stratus::storage {

struct DiskUsage {
  uint64_t virtual_bytes = 0;    // size the guest sees
  uint64_t allocated_bytes = 0;  // bytes actually used on the host
};

class DiskEngine {
 public:
  virtual ~DiskEngine() = default;
  // New empty, thin disk of `size_bytes`. Fails if `path` exists.
  virtual Status CreateEmpty(const std::string& path, uint64_t size_bytes) = 0;
  // New independent disk holding a copy of `source` (qcow2 or raw), grown to `size_bytes`
  // if that is larger than the source. Only allocated data is copied.
  virtual Status CreateFromSource(const std::string& path, const std::string& source,
                                  uint64_t size_bytes) = 0;
  // Grows a disk (never shrinks).
  virtual Status Grow(const std::string& path, uint64_t new_size_bytes) = 0;
  virtual Result<DiskUsage> Usage(const std::string& path) = 0;
  // Removes the disk file; OK if it did not exist.
  virtual Status Remove(const std::string& path) = 0;
};

}  // namespace stratus::storage
