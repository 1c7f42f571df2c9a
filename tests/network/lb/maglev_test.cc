#include "network/lb/maglev.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace stratus::network {
namespace {

std::vector<std::string> Keys(int n, int first = 0) {
  std::vector<std::string> k;
  for (int i = first; i < first + n; ++i) k.push_back("10.0.1." + std::to_string(4 + i));
  return k;
}

TEST(MaglevTest, EveryBackendGetsItsShareGiveOrTakeOne) {
  for (int n : {1, 2, 3, 10, 100}) {
    auto keys = Keys(n);
    auto t = MaglevTable(keys);
    ASSERT_EQ(t.size(), kMaglevTableSize);
    std::map<uint32_t, int> count;
    for (auto b : t) {
      ASSERT_LT(b, keys.size());
      ++count[b];
    }
    ASSERT_EQ(count.size(), static_cast<size_t>(n));
    for (auto& [b, c] : count) {
      EXPECT_GE(c, static_cast<int>(kMaglevTableSize / n) - 1) << n << " backends";
      EXPECT_LE(c, static_cast<int>(kMaglevTableSize / n) + 1) << n << " backends";
    }
  }
  EXPECT_TRUE(MaglevTable({}).empty());
}

TEST(MaglevTest, TheTableDependsOnTheSetNotTheOrder) {
  auto keys = Keys(5);
  auto t = MaglevTable(keys);
  auto rev = keys;
  std::reverse(rev.begin(), rev.end());
  auto r = MaglevTable(rev);
  for (size_t s = 0; s < t.size(); ++s) ASSERT_EQ(keys[t[s]], rev[r[s]]) << "slot " << s;
  EXPECT_EQ(MaglevMovedShare(keys, t, rev, r), 0.0);
}

// The bound: one backend of 10 removed or added moves at most ~1% of the flows of
// the backends that stay (`jhash mod N` moves about 80-90%).
TEST(MaglevTest, OneBackendComingOrGoingMovesAboutOnePercentOfTheOthers) {
  for (int n : {3, 10, 50}) {
    auto keys = Keys(n);
    auto before = MaglevTable(keys);
    for (int gone = 0; gone < n; gone += std::max(1, n / 5)) {
      auto less = keys;
      less.erase(less.begin() + gone);
      auto after = MaglevTable(less);
      EXPECT_LE(MaglevMovedShare(keys, before, less, after), 0.012)
          << n << " backends, " << keys[gone] << " removed";
    }
    auto more = keys;
    more.push_back("10.0.2.200");
    auto grown = MaglevTable(more);
    EXPECT_LE(MaglevMovedShare(keys, before, more, grown), 0.012) << n << " backends, one added";
  }
  // A broken table (every slot to one backend after a removal) would be caught:
  auto keys = Keys(3);
  std::vector<uint32_t> all_first(kMaglevTableSize, 0);
  EXPECT_GT(MaglevMovedShare(keys, MaglevTable(keys), keys, all_first), 0.5);
}

}  // namespace
}  // namespace stratus::network
