#include "storage/disk_tiers.h"

#include "core/resource_id.h"

namespace stratus::storage {

Result<DiskTier> FindDiskTier(const std::string& sku) {
  static const DiskTier kTiers[] = {
      {"Standard_LRS", "Standard", 500, 60},
      {"Premium_LRS", "Premium", 5000, 200},
  };
  for (auto& t : kTiers)
    if (EqualsIgnoreCase(t.sku, sku)) return t;
  return InvalidArgument("Unknown disk SKU '" + sku + "'; use Standard_LRS or Premium_LRS.",
                         "sku.name", "InvalidSku");
}

}  // namespace stratus::storage
