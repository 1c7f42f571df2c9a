#include "network/port_ranges.h"

#include <gtest/gtest.h>

namespace stratus::network {
namespace {

TEST(PortRangesTest, ParsesTheThreeForms) {
  EXPECT_EQ(*ParsePortRange("*", "f"), (PortRange{0, 65535}));
  EXPECT_EQ(*ParsePortRange("80", "f"), (PortRange{80, 80}));
  EXPECT_EQ(*ParsePortRange("0", "f"), (PortRange{0, 0}));
  EXPECT_EQ(*ParsePortRange("8000-8080", "f"), (PortRange{8000, 8080}));
  EXPECT_EQ(*ParsePortRange("65535", "f"), (PortRange{65535, 65535}));
  for (const char* bad : {"", "65536", "-1", "80-", "-80", "90-80", "08", "8 0", "80,81", "a",
                          "1-2-3", "**", "+80"}) {
    auto r = ParsePortRange(bad, "properties.destinationPortRange");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().arm_code(), "SecurityRuleInvalidPortRange") << bad;
    EXPECT_EQ(r.status().target(), "properties.destinationPortRange");
  }
}

TEST(PortRangesTest, ListsAreSortedAndMerged) {
  auto r = ParsePortRanges({"443", "80", "81-90", "85", "1000-2000", "2001"}, "f");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(ToString((*r)[0]), "80-90");
  EXPECT_EQ(ToString((*r)[1]), "443");
  EXPECT_EQ(ToString((*r)[2]), "1000-2001");
  auto all = ParsePortRanges({"22", "*"}, "f");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(ToString((*all)[0]), "*");
  EXPECT_FALSE(ParsePortRanges({}, "f").ok());
  EXPECT_FALSE(ParsePortRanges({"80", "x"}, "f").ok());
}

}  // namespace
}  // namespace stratus::network
