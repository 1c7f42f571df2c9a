#include "core/clock.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace stratus {
namespace {

TEST(FormatIso8601Test, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(FormatIso8601(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(1), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(FormatIso8601(999), "1970-01-01T00:00:00.999Z");
  EXPECT_EQ(FormatIso8601(1000), "1970-01-01T00:00:01.000Z");
  // 2026-11-22T10:00:00.123Z
  EXPECT_EQ(FormatIso8601(1795341600123), "2026-11-22T10:00:00.123Z");
  // Leap day, end of day.
  EXPECT_EQ(FormatIso8601(1709251199999), "2024-02-29T23:59:59.999Z");
}

TEST(FormatIso8601Test, IgnoresTheLocalTimeZone) {
  const char* old = getenv("TZ");
  std::string saved = old ? old : "";
  setenv("TZ", "America/New_York", 1);
  tzset();
  std::string s = FormatIso8601(1795341600123);
  if (old) setenv("TZ", saved.c_str(), 1); else unsetenv("TZ");
  tzset();
  EXPECT_EQ(s, "2026-11-22T10:00:00.123Z");
}

TEST(ParseIso8601Test, ReadsWhatFormatWritesAndWholeSeconds) {
  for (int64_t ms : {int64_t{0}, int64_t{1}, int64_t{999}, int64_t{1795341600123},
                     int64_t{1709251199999}}) {
    auto back = ParseIso8601(FormatIso8601(ms), "t");
    ASSERT_TRUE(back.ok()) << FormatIso8601(ms) << ": " << back.status().ToString();
    EXPECT_EQ(*back, ms);
  }
  EXPECT_EQ(*ParseIso8601("2026-11-22T10:00:00Z", "t"), 1795341600000);
  EXPECT_EQ(*ParseIso8601("2026-11-22T10:00:00.5Z", "t"), 1795341600500);
  // Digits past milliseconds are cut, not rounded.
  EXPECT_EQ(*ParseIso8601("2026-11-22T10:00:00.123999Z", "t"), 1795341600123);
}

TEST(ParseIso8601Test, RefusesAnythingElseNamingTheField) {
  for (const char* bad :
       {"", "2026-11-22", "2026-11-22T10:00:00", "2026-11-22 10:00:00Z", "2026-13-01T00:00:00Z",
        "2026-11-22T25:00:00Z", "2026-11-22T10:00:00+01:00", "2026-11-22T10:00:00.Z",
        "2026-11-22T10:00:00Zjunk", " 2026-11-22T10:00:00Z", "2026-1-22T10:00:00Z",
        "+026-11-22T10:00:00Z", "2026-11-22T10:00:00z", " 2026-11-22T1:00:00Z",
        "2026-11-22T1:00:00.5Z"}) {
    auto r = ParseIso8601(bad, "retainUntil");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(r.status().target(), "retainUntil") << bad;
  }
}

TEST(FakeClockTest, AdvancesOnlyWhenTold) {
  FakeClock clock(1000);
  EXPECT_EQ(clock.NowMs(), 1000);
  EXPECT_EQ(clock.MonotonicMs(), 1000);
  clock.AdvanceMs(250);
  EXPECT_EQ(clock.NowMs(), 1250);
  EXPECT_EQ(clock.MonotonicMs(), 1250);
  clock.SetMs(5);
  EXPECT_EQ(clock.NowMs(), 5);
}

TEST(FakeClockTest, ConcurrentAdvancesAreNotLost) {
  FakeClock clock(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) clock.AdvanceMs(1);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(clock.NowMs(), 40000);
}

TEST(SystemClockTest, IsCloseToTheRealTime) {
  Clock* c = SystemClock::Default();
  EXPECT_EQ(c, SystemClock::Default());
  int64_t now = c->NowMs();
  EXPECT_GT(now, 1700000000000);  // after Nov 2023
  int64_t m1 = c->MonotonicMs();
  int64_t m2 = c->MonotonicMs();
  EXPECT_LE(m1, m2);
}

}  // namespace
}  // namespace stratus
