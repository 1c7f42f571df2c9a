#include "storage/disk_tiers.h"

#include <gtest/gtest.h>

namespace stratus::storage {
namespace {

TEST(DiskTiersTest, KnownSkusAndTheirCaps) {
  auto std_lrs = FindDiskTier("Standard_LRS");
  ASSERT_TRUE(std_lrs.ok());
  EXPECT_EQ(std_lrs->sku, "Standard_LRS");
  EXPECT_EQ(std_lrs->tier, "Standard");
  EXPECT_EQ(std_lrs->iops, 500u);
  EXPECT_EQ(std_lrs->mbps, 60u);
  auto prem = FindDiskTier("Premium_LRS");
  ASSERT_TRUE(prem.ok());
  EXPECT_EQ(prem->tier, "Premium");
  EXPECT_GT(prem->iops, std_lrs->iops);
  EXPECT_GT(prem->mbps, std_lrs->mbps);
}

TEST(DiskTiersTest, LookupIgnoresCaseAndReturnsTheCanonicalName) {
  auto t = FindDiskTier("premium_lrs");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->sku, "Premium_LRS");
  EXPECT_EQ(FindDiskTier("STANDARD_LRS")->sku, "Standard_LRS");
}

TEST(DiskTiersTest, UnknownSkuIsInvalidSku) {
  for (const char* sku : {"", "UltraSSD_LRS", "Standard", "Standard_LRS "}) {
    auto t = FindDiskTier(sku);
    ASSERT_FALSE(t.ok()) << sku;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(t.status().arm_code(), "InvalidSku");
    EXPECT_EQ(t.status().target(), "sku.name");
    EXPECT_NE(t.status().message().find("Standard_LRS"), std::string::npos);
  }
}

TEST(DiskTiersTest, Constants) {
  EXPECT_EQ(kGiB, 1073741824ull);
  EXPECT_EQ(kMaxDiskSizeGB, 32767);
}

}  // namespace
}  // namespace stratus::storage
