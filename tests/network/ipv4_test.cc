#include "network/ipv4.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stratus::network {
namespace {

using ::testing::HasSubstr;

Ipv4Prefix P(const std::string& s) {
  auto p = ParseIpv4Prefix(s, "f");
  EXPECT_TRUE(p.ok()) << s << ": " << p.status().ToString();
  return p.ok() ? *p : Ipv4Prefix{};
}
Ipv4 A(const std::string& s) {
  auto a = ParseIpv4(s, "f");
  EXPECT_TRUE(a.ok()) << s;
  return a.ok() ? *a : Ipv4{};
}

TEST(Ipv4Test, ParsesStrictlyAndPrintsBack) {
  EXPECT_EQ(A("10.0.0.1").value, 0x0a000001u);
  EXPECT_EQ(A("255.255.255.255").ToString(), "255.255.255.255");
  EXPECT_EQ(A("0.0.0.0").ToString(), "0.0.0.0");
  for (const char* bad :
       {"", "10.0.0", "10.0.0.1.2", "010.0.0.1", "10.0.0.256", "10.0.0.-1", " 10.0.0.1",
        "10.0.0.1 ", "10..0.1", "a.b.c.d", "10.0.0.1/32", "1234.0.0.1", "+1.0.0.1"}) {
    auto r = ParseIpv4(bad, "properties.privateIPAddress");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().arm_code(), "InvalidIPAddressFormat") << bad;
    EXPECT_EQ(r.status().target(), "properties.privateIPAddress");
  }
}

TEST(Ipv4Test, PrefixesNeedZeroHostBits) {
  EXPECT_EQ(P("10.0.0.0/8").ToString(), "10.0.0.0/8");
  EXPECT_EQ(P("0.0.0.0/0").Size(), 0u);  // 2^32
  EXPECT_EQ(P("10.1.2.3/32").Size(), 1u);
  EXPECT_EQ(P("10.0.0.0/24").Last().ToString(), "10.0.0.255");
  auto host = ParseIpv4Prefix("10.0.0.5/24", "p");
  ASSERT_FALSE(host.ok());
  EXPECT_EQ(host.status().arm_code(), "InvalidAddressPrefixFormat");
  EXPECT_THAT(host.status().message(), HasSubstr("10.0.0.0/24"));
  for (const char* bad : {"10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/08",
                          "10.0.0/24", "10.0.0.0/24/1", "/24"})
    EXPECT_FALSE(ParseIpv4Prefix(bad, "p").ok()) << bad;
}

TEST(Ipv4Test, ContainmentAndOverlap) {
  EXPECT_TRUE(P("10.0.0.0/16").Contains(P("10.0.3.0/24")));
  EXPECT_FALSE(P("10.0.3.0/24").Contains(P("10.0.0.0/16")));
  EXPECT_TRUE(P("10.0.3.0/24").Overlaps(P("10.0.0.0/16")));
  EXPECT_FALSE(P("10.0.0.0/24").Overlaps(P("10.0.1.0/24")));
  EXPECT_TRUE(P("0.0.0.0/0").Contains(A("192.168.1.1")));
  EXPECT_FALSE(P("10.0.0.0/24").Contains(A("10.0.1.0")));
}

TEST(Ipv4Test, VnetLayoutRules) {
  std::vector<Ipv4Prefix> spaces = {P("10.0.0.0/16"), P("10.1.0.0/24")};
  EXPECT_TRUE(ValidateVnetLayout(spaces, {{"a", P("10.0.0.0/24")},
                                          {"b", P("10.0.1.0/29")},
                                          {"GatewaySubnet", P("10.1.0.0/27")}})
                  .ok());
  EXPECT_EQ(ValidateVnetLayout(spaces, {{"tiny", P("10.0.0.0/30")}}).arm_code(),
            "NetcfgInvalidSubnet");
  Status outside = ValidateVnetLayout(spaces, {{"x", P("10.2.0.0/24")}});
  EXPECT_EQ(outside.arm_code(), "NetcfgSubnetRangeOutsideVnet");
  EXPECT_THAT(outside.message(), HasSubstr("10.2.0.0/24"));
  // Straddling two spaces is outside too.
  EXPECT_EQ(ValidateVnetLayout({P("10.0.0.0/25"), P("10.0.0.128/25")}, {{"x", P("10.0.0.0/24")}})
                .arm_code(),
            "NetcfgSubnetRangeOutsideVnet");
  Status overlap = ValidateVnetLayout(spaces, {{"a", P("10.0.0.0/24")}, {"b", P("10.0.0.128/25")}});
  EXPECT_EQ(overlap.arm_code(), "NetcfgSubnetRangesOverlap");
  EXPECT_THAT(overlap.message(), HasSubstr("'a'"));
  EXPECT_EQ(ValidateVnetLayout({P("10.0.0.0/16"), P("10.0.5.0/24")}, {}).arm_code(),
            "NetcfgVnetAddressSpacesOverlap");
}

TEST(Ipv4Test, FiveReservedAddressesAndSequentialAllocation) {
  Ipv4Prefix s = P("10.0.0.0/29");  // .0 network, .1 gateway, .2 .3 platform, .7 broadcast
  EXPECT_EQ(UsableCount(s), 3u);
  EXPECT_EQ(GatewayOf(s).ToString(), "10.0.0.1");
  for (const char* r : {"10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.7"})
    EXPECT_TRUE(IsReserved(s, A(r))) << r;
  for (const char* r : {"10.0.0.4", "10.0.0.5", "10.0.0.6"}) EXPECT_FALSE(IsReserved(s, A(r))) << r;

  EXPECT_EQ(NextFree(s, {})->ToString(), "10.0.0.4");
  EXPECT_EQ(NextFree(s, {A("10.0.0.4")})->ToString(), "10.0.0.5");
  // A hole left by a deleted NIC is filled first; addresses of other subnets don't count.
  EXPECT_EQ(NextFree(s, {A("10.0.0.6"), A("10.0.0.4"), A("10.9.9.9")})->ToString(), "10.0.0.5");
  EXPECT_FALSE(NextFree(s, {A("10.0.0.4"), A("10.0.0.5"), A("10.0.0.6")}).has_value());
  EXPECT_EQ(UsableCount(P("10.0.0.0/24")), 251u);
  EXPECT_EQ(NextFree(P("10.0.0.0/24"), {})->ToString(), "10.0.0.4");
}

}  // namespace
}  // namespace stratus::network
