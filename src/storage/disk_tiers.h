// Disk performance tiers (SKUs) and their caps.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace stratus::storage {

struct DiskTier {
  std::string sku;       // "Standard_LRS"
  std::string tier;      // "Standard"
  uint64_t iops = 0;     // per-disk IOPS cap
  uint64_t mbps = 0;     // per-disk MB/s cap (10^6 bytes)
};

// InvalidArgument ("InvalidSku") for an unknown name (case-insensitive).
Result<DiskTier> FindDiskTier(const std::string& sku);
constexpr uint64_t kGiB = 1024ull * 1024 * 1024;
constexpr int64_t kMaxDiskSizeGB = 32767;

}  // namespace stratus::storage
