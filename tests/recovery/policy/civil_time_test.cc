#include "recovery/policy/civil_time.h"

#include <gtest/gtest.h>

#include <ctime>

#include "recovery/policy/policy_test_util.h"

namespace stratus::recovery::policy {
namespace {

using testing::Utc;

TEST(CivilTimeTest, DaysRoundTripAndAgreeWithTimegm) {
  // Every day from 1900 to 2400 converts both ways and matches the C library.
  const int64_t first = DaysFromCivil({1900, 1, 1});
  const int64_t last = DaysFromCivil({2400, 12, 31});
  CivilDate prev = CivilFromDays(first - 1);
  for (int64_t d = first; d <= last; ++d) {
    const CivilDate c = CivilFromDays(d);
    ASSERT_EQ(DaysFromCivil(c), d);
    ASSERT_LT(prev, c);
    ASSERT_LE(c.day, DaysInMonth(c.year, c.month));
    prev = c;
  }
  struct tm tm = {};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 1;
  tm.tm_mday = 29;
  EXPECT_EQ(DaysFromCivil({2024, 2, 29}) * 86400, static_cast<int64_t>(timegm(&tm)));
  EXPECT_EQ(DaysFromCivil({1970, 1, 1}), 0);
  EXPECT_EQ(DaysFromCivil({1969, 12, 31}), -1);
}

TEST(CivilTimeTest, Weekdays) {
  EXPECT_EQ(WeekdayOfDays(0), Weekday::kThursday);  // 1970-01-01
  EXPECT_EQ(WeekdayOfDays(-1), Weekday::kWednesday);
  EXPECT_EQ(WeekdayOfDays(-7), Weekday::kThursday);
  EXPECT_EQ(WeekdayOfDays(DaysFromCivil({2024, 2, 29})), Weekday::kThursday);
  EXPECT_EQ(WeekdayOfDays(DaysFromCivil({2025, 1, 1})), Weekday::kWednesday);
  EXPECT_EQ(WeekdayOfDays(DaysFromCivil({2000, 1, 1})), Weekday::kSaturday);
  EXPECT_EQ(WeekdayOfDays(DaysFromCivil({1900, 1, 1})), Weekday::kMonday);
}

TEST(CivilTimeTest, IsoWeeksRunMondayToSunday) {
  // 2024-12-30 (Monday) .. 2025-01-05 (Sunday) is ISO week 2025-W01.
  const int64_t mon = DaysFromCivil({2024, 12, 30});
  for (int i = 0; i < 7; ++i) EXPECT_EQ(IsoWeekIndex(mon + i), IsoWeekIndex(mon)) << i;
  EXPECT_EQ(IsoWeekIndex(mon - 1), IsoWeekIndex(mon) - 1);  // Sunday before
  EXPECT_EQ(IsoWeekIndex(mon + 7), IsoWeekIndex(mon) + 1);  // next Monday
  EXPECT_EQ(IsoWeekIndex(DaysFromCivil({1969, 12, 29})), 0);
  EXPECT_EQ(IsoWeekIndex(DaysFromCivil({1969, 12, 28})), -1);
  EXPECT_EQ(IsoWeekIndex(DaysFromCivil({1970, 1, 4})), 0);
  EXPECT_EQ(IsoWeekIndex(DaysFromCivil({1970, 1, 5})), 1);
}

TEST(CivilTimeTest, LeapYears) {
  EXPECT_TRUE(IsLeapYear(2024));
  EXPECT_TRUE(IsLeapYear(2000));
  EXPECT_FALSE(IsLeapYear(2100));
  EXPECT_FALSE(IsLeapYear(2023));
  EXPECT_EQ(DaysInMonth(2024, 2), 29);
  EXPECT_EQ(DaysInMonth(2023, 2), 28);
  EXPECT_EQ(DaysInMonth(2100, 2), 28);
  EXPECT_EQ(DaysInMonth(2000, 2), 29);
  EXPECT_EQ(DaysInMonth(2024, 4), 30);
  EXPECT_EQ(DaysInMonth(2024, 12), 31);
}

TEST(CivilTimeTest, LocalDayUsesTheOffsetAndFloors) {
  const int64_t t = Utc(2024, 12, 31, 23, 30);
  EXPECT_EQ(CivilFromDays(LocalDay(t, 0)), (CivilDate{2024, 12, 31}));
  EXPECT_EQ(CivilFromDays(LocalDay(t, 60)), (CivilDate{2025, 1, 1}));
  EXPECT_EQ(CivilFromDays(LocalDay(Utc(2025, 1, 1, 0, 30), -60)), (CivilDate{2024, 12, 31}));
  EXPECT_EQ(LocalDay(-1, 0), -1);  // 1969-12-31T23:59:59.999Z
  EXPECT_EQ(UtcMsFromLocal({2025, 1, 1}, 2 * 60, 330), Utc(2024, 12, 31, 20, 30));
  EXPECT_EQ(FloorDiv(-1, 7), -1);
  EXPECT_EQ(FloorDiv(-7, 7), -1);
  EXPECT_EQ(FloorDiv(-8, 7), -2);
  EXPECT_EQ(FloorDiv(13, 7), 1);
}

TEST(CivilTimeTest, TimesOfDay) {
  EXPECT_EQ(ParseTimeOfDay("00:00"), 0);
  EXPECT_EQ(ParseTimeOfDay("23:59"), 23 * 60 + 59);
  EXPECT_EQ(ParseTimeOfDay("08:30"), 8 * 60 + 30);
  for (const char* bad :
       {"24:00", "8:00", "08:60", "08:00:00", "0800", "ab:cd", "", " 08:00", "-1:00", "08.00"})
    EXPECT_FALSE(ParseTimeOfDay(bad).has_value()) << bad;
  EXPECT_EQ(FormatTimeOfDay(0), "00:00");
  EXPECT_EQ(FormatTimeOfDay(23 * 60 + 59), "23:59");
  EXPECT_EQ(FormatTimeOfDay(8 * 60 + 5), "08:05");
}

TEST(CivilTimeTest, NamesAreCaseInsensitive) {
  EXPECT_EQ(ParseWeekday("sunday"), Weekday::kSunday);
  EXPECT_EQ(ParseWeekday("SATURDAY"), Weekday::kSaturday);
  EXPECT_FALSE(ParseWeekday("Sun").has_value());
  EXPECT_EQ(ParseMonth("january"), 1);
  EXPECT_EQ(ParseMonth("December"), 12);
  EXPECT_FALSE(ParseMonth("Janvier").has_value());
  EXPECT_STREQ(WeekdayName(Weekday::kWednesday), "Wednesday");
  EXPECT_STREQ(MonthName(2), "February");
}

}  // namespace
}  // namespace stratus::recovery::policy
