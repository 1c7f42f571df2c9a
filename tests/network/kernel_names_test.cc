#include "network/kernel_names.h"

#include <gtest/gtest.h>

#include <set>

namespace stratus::network {
namespace {

TEST(KernelNamesTest, RegionIdsAreShortStableAndDistinct) {
  std::string a = ShortRegionId("regionA", "/var/lib/stratus/a");
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a, ShortRegionId("regionA", "/var/lib/stratus/a"));
  EXPECT_NE(a, ShortRegionId("regionB", "/var/lib/stratus/b"));
  // Two regions of the same name on one machine differ by their data folders.
  EXPECT_NE(a, ShortRegionId("regionA", "/var/lib/stratus/a2"));
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) seen.insert(ShortRegionId("r", "/d/" + std::to_string(i)));
  EXPECT_GT(seen.size(), 195u);  // 20 bits: collisions are rare
  for (const auto& rid : seen)
    for (char c : rid) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) << rid;
}

TEST(KernelNamesTest, EveryNameFitsTheKernelAndAvoidsLibvirtPrefixes) {
  const std::string rid = "k3pa";
  std::vector<std::string> names = {*VnetNamespace(rid, 0xffff),
                                    *EdgeNamespace(rid),
                                    *SubnetBridge(rid, 0xffffff),
                                    *GatewayVethOnBridge(rid, 0xffffff),
                                    *GatewayVethInRouter(0xffffff),
                                    *NicTap(rid, 0xffffff),
                                    *NftTable(rid)};
  for (const auto& n : names) {
    EXPECT_LE(n.size(), 15u) << n;
    for (const char* reserved : {"vnet", "macvtap", "macvlan"})
      EXPECT_NE(n.rfind(reserved, 0), 0u) << n;
  }
  EXPECT_EQ(*VnetNamespace(rid, 7), "stv-k3pa-0007");
  EXPECT_EQ(*SubnetBridge(rid, 42), "sbk3pa00002a");
  EXPECT_EQ(*GatewayVethInRouter(42), "gw00002a");
  EXPECT_EQ(*NicTap(rid, 257), "stk3pa000101");
  // Kinds never collide with each other for the same index.
  std::set<std::string> kinds = {*SubnetBridge(rid, 1), *GatewayVethOnBridge(rid, 1),
                                 *NicTap(rid, 1)};
  EXPECT_EQ(kinds.size(), 3u);
}

TEST(KernelNamesTest, BadIdsAndIndexesAreRefused) {
  EXPECT_FALSE(VnetNamespace("K3PA", 1).ok());
  EXPECT_FALSE(VnetNamespace("k3p", 1).ok());
  EXPECT_FALSE(VnetNamespace("k3pa", 0x10000).ok());
  EXPECT_FALSE(NicTap("k3pa", 0x1000000).ok());
  EXPECT_FALSE(GatewayVethInRouter(0x1000000).ok());
  EXPECT_FALSE(NftTable("k1pa").ok());  // '1' is not base32
}

TEST(KernelNamesTest, ObjectsAreAttributedToTheirRegionOnly) {
  EXPECT_TRUE(BelongsToRegion(*VnetNamespace("k3pa", 3), "k3pa"));
  EXPECT_TRUE(BelongsToRegion(*NicTap("k3pa", 3), "k3pa"));
  EXPECT_TRUE(BelongsToRegion(*NftTable("k3pa"), "k3pa"));
  EXPECT_FALSE(BelongsToRegion(*NicTap("k3pb", 3), "k3pa"));
  EXPECT_FALSE(BelongsToRegion("eth0", "k3pa"));
  EXPECT_FALSE(BelongsToRegion("vnet0", "k3pa"));
}

}  // namespace
}  // namespace stratus::network
