#include "core/uuid.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

namespace stratus {
namespace {

TEST(UuidTest, IsLowercaseRfc4122Version4) {
  const std::regex kV4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  for (int i = 0; i < 200; ++i) {
    std::string u = NewUuid();
    ASSERT_EQ(u.size(), 36u) << u;
    EXPECT_TRUE(std::regex_match(u, kV4)) << u;
  }
}

TEST(UuidTest, AreUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(NewUuid());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(RandomHexTest, HasTwoLowercaseHexDigitsPerByte) {
  EXPECT_EQ(RandomHex(0), "");
  for (size_t n : {1u, 8u, 32u}) {
    std::string h = RandomHex(n);
    EXPECT_EQ(h.size(), 2 * n);
    EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos) << h;
  }
}

TEST(RandomHexTest, IsRandomAndUsesEveryDigit) {
  EXPECT_NE(RandomHex(16), RandomHex(16));
  std::string many;
  for (int i = 0; i < 20; ++i) many += RandomHex(32);
  for (char c : std::string("0123456789abcdef"))
    EXPECT_NE(many.find(c), std::string::npos) << "digit " << c << " never appears";
}

}  // namespace
}  // namespace stratus
