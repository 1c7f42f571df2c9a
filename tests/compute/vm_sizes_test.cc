#include "compute/vm_sizes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

namespace stratus::compute {
namespace {

using ::testing::HasSubstr;

TEST(VmSizesTest, CatalogueHasTheIntermediateSizes) {
  std::set<std::string> names;
  for (auto& s : VmSizes()) names.insert(s.name);
  for (const char* n : {"Standard_S0", "Standard_S1", "Standard_S2", "Standard_S3", "Standard_S4",
                        "Standard_S6", "Standard_S8", "Standard_S12", "Standard_S16"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_EQ(names.size(), VmSizes().size()) << "duplicate size names";
}

TEST(VmSizesTest, SSeriesGrowsMonotonically) {
  int last_vcpus = 0, last_mem = 0, last_disks = 0;
  for (auto& s : VmSizes()) {
    EXPECT_GE(s.vcpus, 1) << s.name;
    EXPECT_GE(s.memory_mib, 256) << s.name;
    EXPECT_GE(s.max_data_disks, 1) << s.name;
    EXPECT_LE(s.max_data_disks, 64) << s.name;  // LUNs 0..63
    EXPECT_GT(s.max_disk_iops, 0u) << s.name;
    EXPECT_GT(s.max_disk_mbps, 0u) << s.name;
    if (s.name.rfind("Standard_S", 0) != 0) continue;
    EXPECT_GE(s.vcpus, last_vcpus) << s.name;
    EXPECT_GT(s.memory_mib, last_mem) << s.name;
    EXPECT_GT(s.max_data_disks, last_disks) << s.name;
    last_vcpus = s.vcpus;
    last_mem = s.memory_mib;
    last_disks = s.max_data_disks;
  }
}

TEST(VmSizesTest, IntermediateSizesSitBetweenTheirNeighbours) {
  auto s2 = FindVmSize("Standard_S2"), s3 = FindVmSize("Standard_S3"), s4 = FindVmSize("Standard_S4");
  ASSERT_TRUE(s2.ok() && s3.ok() && s4.ok());
  EXPECT_EQ(s3->vcpus, 3);
  EXPECT_EQ(s3->memory_mib, 1536);
  EXPECT_GT(s3->memory_mib, s2->memory_mib);
  EXPECT_LT(s3->memory_mib, s4->memory_mib);
  EXPECT_EQ(FindVmSize("Standard_S6")->vcpus, 6);
  EXPECT_EQ(FindVmSize("Standard_S12")->vcpus, 12);
}

TEST(VmSizesTest, FindIsCaseInsensitiveAndReturnsTheCanonicalName) {
  auto s = FindVmSize("standard_s1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->name, "Standard_S1");
  EXPECT_EQ(s->vcpus, 1);
  EXPECT_EQ(s->memory_mib, 512);
  EXPECT_EQ(s->max_data_disks, 2);
  EXPECT_EQ(FindVmSize("STANDARD_D64")->max_data_disks, 64);
}

TEST(VmSizesTest, UnknownSizeIsUnknownVmSizeListingTheValidOnes) {
  for (const char* bad : {"Standard_S5", "", "Standard_S1 ", "S1"}) {
    auto s = FindVmSize(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.status().http_status(), 400);
    EXPECT_EQ(s.status().arm_code(), "UnknownVmSize");
    EXPECT_EQ(s.status().target(), "properties.hardwareProfile.vmSize");
    EXPECT_THAT(s.status().message(), HasSubstr("'" + std::string(bad) + "'"));
    EXPECT_THAT(s.status().message(), HasSubstr("Standard_S3"));
    EXPECT_THAT(s.status().message(), HasSubstr("Standard_D64"));
  }
}

TEST(VmSizesTest, JsonForm) {
  Json j = VmSizeJson(*FindVmSize("Standard_S2"));
  EXPECT_EQ(j["name"], "Standard_S2");
  EXPECT_EQ(j["numberOfCores"], 2);
  EXPECT_EQ(j["memoryInMB"], 1024);
  EXPECT_EQ(j["maxDataDiskCount"], 4);
  EXPECT_EQ(j["maxDiskIops"], 2000);
  EXPECT_EQ(j["maxDiskMBps"], 100);
}

}  // namespace
}  // namespace stratus::compute
