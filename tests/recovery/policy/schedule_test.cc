#include "recovery/policy/schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "recovery/policy/policy_test_util.h"

namespace stratus::recovery::policy {
namespace {

using testing::Iso;
using testing::MustParse;
using testing::Utc;
using Strings = std::vector<std::string>;

BackupPolicy Policy(const std::string& schedule, const std::string& time_zone = "UTC") {
  return MustParse(R"({"schedule": )" + schedule + R"(, "timeZone": ")" + time_zone +
                   R"(", "retention": {"daily": {"count": 7}}})");
}

TEST(ScheduleTest, HourlyWithinAWindow) {
  const BackupPolicy p = Policy(R"({"frequency": "Hourly", "intervalHours": 4,
                                    "windowStartTime": "08:00", "windowDurationHours": 12})");
  EXPECT_EQ(
      Iso(NextRunsAfter(p, Utc(2024, 3, 10), 7)),
      (Strings{"2024-03-10T08:00:00.000Z", "2024-03-10T12:00:00.000Z", "2024-03-10T16:00:00.000Z",
               "2024-03-11T08:00:00.000Z", "2024-03-11T12:00:00.000Z", "2024-03-11T16:00:00.000Z",
               "2024-03-12T08:00:00.000Z"}));
  // Strictly after: a run time itself yields the following run.
  EXPECT_EQ(NextRun(p, Utc(2024, 3, 10, 12)), Utc(2024, 3, 10, 16));
  EXPECT_EQ(NextRun(p, Utc(2024, 3, 10, 12) - 1), Utc(2024, 3, 10, 12));
  // The window [08:00, 20:00) is half-open: no run at 20:00.
  EXPECT_EQ(NextRun(p, Utc(2024, 3, 10, 16)), Utc(2024, 3, 11, 8));
}

TEST(ScheduleTest, HourlyAllDay) {
  const BackupPolicy every_hour = Policy(R"({"frequency": "Hourly", "intervalHours": 1})");
  const auto runs = NextRunsAfter(every_hour, Utc(2024, 1, 1) - 1, 48);
  ASSERT_EQ(runs.size(), 48u);
  for (int i = 0; i < 48; ++i) EXPECT_EQ(runs[i], Utc(2024, 1, 1) + i * kMsPerHour) << i;

  const BackupPolicy every_6h = Policy(R"({"frequency": "Hourly", "intervalHours": 6,
                                           "windowStartTime": "03:30"})");
  EXPECT_EQ(
      Iso(NextRunsAfter(every_6h, Utc(2024, 1, 1), 5)),
      (Strings{"2024-01-01T03:30:00.000Z", "2024-01-01T09:30:00.000Z", "2024-01-01T15:30:00.000Z",
               "2024-01-01T21:30:00.000Z", "2024-01-02T03:30:00.000Z"}));

  const BackupPolicy once = Policy(R"({"frequency": "Hourly", "intervalHours": 24,
                                       "windowStartTime": "05:00"})");
  EXPECT_EQ(Iso(NextRunsAfter(once, Utc(2024, 1, 1, 6), 2)),
            (Strings{"2024-01-02T05:00:00.000Z", "2024-01-03T05:00:00.000Z"}));
}

TEST(ScheduleTest, HourlyWindowAcrossMidnight) {
  const BackupPolicy p = Policy(R"({"frequency": "Hourly", "intervalHours": 4,
                                    "windowStartTime": "22:00", "windowDurationHours": 12})");
  // From 01:00 the next run is 02:00, in the window that opened the evening before.
  EXPECT_EQ(
      Iso(NextRunsAfter(p, Utc(2024, 12, 31, 1), 5)),
      (Strings{"2024-12-31T02:00:00.000Z", "2024-12-31T06:00:00.000Z", "2024-12-31T22:00:00.000Z",
               "2025-01-01T02:00:00.000Z", "2025-01-01T06:00:00.000Z"}));
}

TEST(ScheduleTest, DailyAtSeveralTimes) {
  const BackupPolicy p = Policy(R"({"frequency": "Daily", "times": ["14:00", "02:00"]})");
  EXPECT_EQ(Iso(NextRunsAfter(p, Utc(2024, 5, 31, 3), 4)),
            (Strings{"2024-05-31T14:00:00.000Z", "2024-06-01T02:00:00.000Z",
                     "2024-06-01T14:00:00.000Z", "2024-06-02T02:00:00.000Z"}));
  EXPECT_EQ(NextRun(p, Utc(2024, 5, 31, 14)), Utc(2024, 6, 1, 2));
}

TEST(ScheduleTest, WeeklyOnSeveralDays) {
  const BackupPolicy p = Policy(R"({"frequency": "Weekly", "days": ["Sunday", "Wednesday"],
                                    "times": ["02:00", "20:00"]})");
  // 2024-03-04 is a Monday.
  EXPECT_EQ(Iso(NextRunsAfter(p, Utc(2024, 3, 4), 6)),
            (Strings{"2024-03-06T02:00:00.000Z", "2024-03-06T20:00:00.000Z",
                     "2024-03-10T02:00:00.000Z", "2024-03-10T20:00:00.000Z",
                     "2024-03-13T02:00:00.000Z", "2024-03-13T20:00:00.000Z"}));
}

TEST(ScheduleTest, WeeklyOnceAWeekWaitsAFullWeek) {
  const BackupPolicy p = Policy(R"({"frequency": "Weekly", "days": ["Sunday"],
                                    "times": ["02:00"]})");
  EXPECT_EQ(NextRun(p, Utc(2024, 3, 10, 2)), Utc(2024, 3, 17, 2));
  EXPECT_EQ(NextRun(p, Utc(2024, 3, 10, 1)), Utc(2024, 3, 10, 2));
}

TEST(ScheduleTest, FixedOffsets) {
  // 02:00 at +05:30 is 20:30 UTC the day before.
  const BackupPolicy india = Policy(R"({"frequency": "Daily", "times": ["02:00"]})", "+05:30");
  EXPECT_EQ(Iso(NextRunsAfter(india, Utc(2024, 1, 1), 2)),
            (Strings{"2024-01-01T20:30:00.000Z", "2024-01-02T20:30:00.000Z"}));
  // Sunday 23:00 at -08:00 is Monday 07:00 UTC.
  const BackupPolicy pacific = Policy(R"({"frequency": "Weekly", "days": ["Sunday"],
                                          "times": ["23:00"]})",
                                      "-08:00");
  EXPECT_EQ(Iso(NextRunsAfter(pacific, Utc(2024, 3, 10), 2)),
            (Strings{"2024-03-11T07:00:00.000Z", "2024-03-18T07:00:00.000Z"}));
  // The extremes: Kiribati (+14:00) and Baker Island (-12:00) two days apart in UTC terms.
  const BackupPolicy east = Policy(R"({"frequency": "Weekly", "days": ["Monday"],
                                       "times": ["00:00"]})",
                                   "+14:00");
  EXPECT_EQ(Iso(NextRun(east, Utc(2024, 3, 1)).value()), "2024-03-03T10:00:00.000Z");
  const BackupPolicy west = Policy(R"({"frequency": "Weekly", "days": ["Monday"],
                                       "times": ["23:59"]})",
                                   "-12:00");
  EXPECT_EQ(Iso(NextRun(west, Utc(2024, 3, 1)).value()), "2024-03-05T11:59:00.000Z");
  // A window in local time: 08:00-20:00 at +02:00 is 06:00-18:00 UTC.
  const BackupPolicy window = Policy(R"({"frequency": "Hourly", "intervalHours": 6,
                                         "windowStartTime": "08:00", "windowDurationHours": 12})",
                                     "+02:00");
  EXPECT_EQ(Iso(NextRunsAfter(window, Utc(2024, 3, 1), 3)),
            (Strings{"2024-03-01T06:00:00.000Z", "2024-03-01T12:00:00.000Z",
                     "2024-03-02T06:00:00.000Z"}));
}

TEST(ScheduleTest, LeapDayAndMonthEnds) {
  const BackupPolicy noon = Policy(R"({"frequency": "Daily", "times": ["12:00"]})");
  EXPECT_EQ(Iso(NextRunsAfter(noon, Utc(2024, 2, 28, 12), 2)),
            (Strings{"2024-02-29T12:00:00.000Z", "2024-03-01T12:00:00.000Z"}));
  EXPECT_EQ(Iso(NextRun(noon, Utc(2023, 2, 28, 12)).value()), "2023-03-01T12:00:00.000Z");
  EXPECT_EQ(Iso(NextRun(noon, Utc(2100, 2, 28, 12)).value()), "2100-03-01T12:00:00.000Z");
  EXPECT_EQ(Iso(NextRun(noon, Utc(2000, 2, 28, 12)).value()), "2000-02-29T12:00:00.000Z");
  EXPECT_EQ(Iso(NextRun(noon, Utc(2024, 4, 30, 12)).value()), "2024-05-01T12:00:00.000Z");
  // 2024-02-29 was a Thursday.
  const BackupPolicy thursdays = Policy(R"({"frequency": "Weekly", "days": ["Thursday"],
                                            "times": ["01:00"]})");
  EXPECT_EQ(Iso(NextRunsAfter(thursdays, Utc(2024, 2, 23), 2)),
            (Strings{"2024-02-29T01:00:00.000Z", "2024-03-07T01:00:00.000Z"}));
}

TEST(ScheduleTest, YearEnd) {
  const BackupPolicy utc = Policy(R"({"frequency": "Daily", "times": ["23:30"]})");
  EXPECT_EQ(Iso(NextRun(utc, Utc(2024, 12, 31, 23, 30)).value()), "2025-01-01T23:30:00.000Z");
  // 23:30 local on New Year's Eve at -01:00 is already next year in UTC...
  const BackupPolicy azores = Policy(R"({"frequency": "Daily", "times": ["23:30"]})", "-01:00");
  EXPECT_EQ(Iso(NextRun(azores, Utc(2024, 12, 31, 12)).value()), "2025-01-01T00:30:00.000Z");
  // ...and 00:30 local on New Year's Day at +02:00 is still last year.
  const BackupPolicy athens = Policy(R"({"frequency": "Daily", "times": ["00:30"]})", "+02:00");
  EXPECT_EQ(Iso(NextRun(athens, Utc(2024, 12, 31, 12)).value()), "2024-12-31T22:30:00.000Z");
  // Weekly across a year boundary: Wednesday 2025-01-01.
  const BackupPolicy wed = Policy(R"({"frequency": "Weekly", "days": ["Wednesday"],
                                      "times": ["00:00"]})");
  EXPECT_EQ(Iso(NextRun(wed, Utc(2024, 12, 26)).value()), "2025-01-01T00:00:00.000Z");
}

TEST(ScheduleTest, BeforeTheEpoch) {
  const BackupPolicy p = Policy(R"({"frequency": "Daily", "times": ["23:00"]})");
  EXPECT_EQ(NextRun(p, Utc(1969, 12, 31, 12)), Utc(1969, 12, 31, 23));
  EXPECT_EQ(NextRun(p, Utc(1969, 12, 31, 23)), Utc(1970, 1, 1, 23));
}

// An oracle independent of the implementation: is local minute `m` a scheduled run?
bool IsRunMinute(const BackupPolicy& p, int64_t local_minute) {
  const int64_t day = FloorDiv(local_minute, 1440);
  const int minute_of_day = static_cast<int>(local_minute - day * 1440);
  const BackupSchedule& s = p.schedule;
  if (s.frequency == ScheduleFrequency::kHourly) {
    const int since_start = ((minute_of_day - s.window_start_minute) % 1440 + 1440) % 1440;
    return since_start < s.window_duration_hours * 60 && since_start % (s.interval_hours * 60) == 0;
  }
  if (s.frequency == ScheduleFrequency::kWeekly &&
      std::find(s.days.begin(), s.days.end(), WeekdayOfDays(day)) == s.days.end())
    return false;
  return std::find(s.times.begin(), s.times.end(), minute_of_day) != s.times.end();
}

TEST(ScheduleTest, AgreesWithAMinuteByMinuteOracle) {
  const std::vector<BackupPolicy> policies = {
      Policy(R"({"frequency": "Hourly", "intervalHours": 3, "windowStartTime": "21:15",
                 "windowDurationHours": 10})",
             "+05:45"),
      Policy(R"({"frequency": "Hourly", "intervalHours": 2})", "-03:00"),
      Policy(R"({"frequency": "Daily", "times": ["00:00", "06:07", "23:59"]})", "+14:00"),
      Policy(R"({"frequency": "Weekly", "days": ["Monday", "Saturday", "Sunday"],
                 "times": ["00:00", "23:59"]})",
             "-12:00"),
  };
  // Three weeks around the 2024 leap day, one minute at a time.
  const int64_t start = Utc(2024, 2, 20);
  for (const BackupPolicy& p : policies) {
    std::vector<int64_t> expected;
    for (int64_t t = start + kMsPerMinute; t <= start + 21 * kMsPerDay; t += kMsPerMinute)
      if (IsRunMinute(p, (t + p.utc_offset_minutes * kMsPerMinute) / kMsPerMinute))
        expected.push_back(t);
    ASSERT_GT(expected.size(), 5u);
    const auto actual = NextRunsAfter(p, start, static_cast<int>(expected.size()));
    EXPECT_EQ(Iso(actual), Iso(expected)) << BackupPolicyToJson(p).dump();
    // From any instant (not only run times) the next run is the oracle's next run.
    std::mt19937_64 rng(42);
    for (int i = 0; i < 200; ++i) {
      const int64_t t = start + static_cast<int64_t>(rng() % (20 * kMsPerDay));
      const auto want = std::upper_bound(expected.begin(), expected.end(), t);
      ASSERT_NE(want, expected.end());
      EXPECT_EQ(NextRun(p, t), *want) << Iso(t);
    }
  }
}

TEST(ScheduleTest, EditedPolicyTakesEffectAtTheNextCall) {
  BackupPolicy p = Policy(R"({"frequency": "Daily", "times": ["02:00"]})");
  const int64_t last = Utc(2024, 6, 1, 2);
  EXPECT_EQ(NextRun(p, last), Utc(2024, 6, 2, 2));
  p = Policy(R"({"frequency": "Hourly", "intervalHours": 6})");
  EXPECT_EQ(NextRun(p, last), Utc(2024, 6, 1, 6));
}

TEST(ScheduleTest, HandBuiltPolicyWithoutRunsHasNoNextRun) {
  BackupPolicy p;  // Daily with no times: ParseBackupPolicy never returns this.
  EXPECT_FALSE(NextRun(p, 0).has_value());
  EXPECT_TRUE(NextRunsAfter(p, 0, 3).empty());
  EXPECT_EQ(MinRunGapMs(p), 0);
  EXPECT_EQ(Stagger("/subscriptions/s/vm", p), 0);
}

TEST(ScheduleTest, MinRunGap) {
  EXPECT_EQ(MinRunGapMs(Policy(R"({"frequency": "Hourly", "intervalHours": 4,
                                   "windowStartTime": "08:00", "windowDurationHours": 12})")),
            4 * kMsPerHour);
  EXPECT_EQ(MinRunGapMs(Policy(R"({"frequency": "Daily", "times": ["02:00", "14:00"]})")),
            12 * kMsPerHour);
  EXPECT_EQ(MinRunGapMs(Policy(R"({"frequency": "Daily", "times": ["01:00", "23:00"]})")),
            2 * kMsPerHour);  // across midnight
  EXPECT_EQ(MinRunGapMs(Policy(R"({"frequency": "Daily", "times": ["02:00", "02:01"]})")),
            kMsPerMinute);
  EXPECT_EQ(MinRunGapMs(Policy(R"({"frequency": "Weekly", "days": ["Sunday"],
                                   "times": ["02:00"]})")),
            7 * kMsPerDay);
  EXPECT_EQ(MinRunGapMs(Policy(R"({"frequency": "Weekly", "days": ["Saturday", "Sunday"],
                                   "times": ["23:00"]})")),
            kMsPerDay);
}

// ---- Stagger ----------------------------------------------------------------------------------

const BackupPolicy& DailyPolicy() {
  static const BackupPolicy p = Policy(R"({"frequency": "Daily", "times": ["02:00"]})");
  return p;
}

std::string ItemId(int i) {
  return "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/rg/providers/"
         "Stratus.RecoveryServices/vaults/v1/backupFabrics/Stratus/protectionContainers/c/"
         "protectedItems/vm-" +
         std::to_string(i);
}

TEST(StaggerTest, BoundIsTenPercentOfTheGapCappedAtFifteenMinutes) {
  EXPECT_EQ(StaggerBoundMs(DailyPolicy()), 15 * kMsPerMinute);
  EXPECT_EQ(StaggerBoundMs(Policy(R"({"frequency": "Hourly", "intervalHours": 1})")),
            6 * kMsPerMinute);
  EXPECT_EQ(StaggerBoundMs(Policy(R"({"frequency": "Hourly", "intervalHours": 2})")),
            12 * kMsPerMinute);
  EXPECT_EQ(StaggerBoundMs(Policy(R"({"frequency": "Daily", "times": ["02:00", "02:01"]})")), 6000);
}

TEST(StaggerTest, StableAcrossCallsBuildsAndCase) {
  const std::string id = ItemId(1);
  const int64_t s = Stagger(id, DailyPolicy());
  EXPECT_EQ(Stagger(id, DailyPolicy()), s);
  std::string upper = id;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  EXPECT_EQ(Stagger(upper, DailyPolicy()), s);
  // Golden values: the hash is part of the schedule everyone sees; changing it moves every VM's
  // backup time, so it must not change by accident.
  EXPECT_EQ(Stagger("vm-1", DailyPolicy()), 71000);
  EXPECT_EQ(Stagger("vm-2", DailyPolicy()), 201000);
}

TEST(StaggerTest, BoundedWholeSecondsAndSpread) {
  for (const BackupPolicy& p :
       {DailyPolicy(), Policy(R"({"frequency": "Hourly", "intervalHours": 1})"),
        Policy(R"({"frequency": "Daily", "times": ["02:00", "02:01"]})")}) {
    const int64_t seconds = StaggerBoundMs(p) / 1000;
    const int64_t buckets = std::min<int64_t>(10, seconds);
    std::map<int64_t, int> histogram;
    std::set<int64_t> distinct;
    const int n = 10000;
    for (int i = 0; i < n; ++i) {
      const int64_t s = Stagger(ItemId(i), p);
      ASSERT_GE(s, 0);
      ASSERT_LT(s, StaggerBoundMs(p));
      ASSERT_EQ(s % 1000, 0);
      ++histogram[s / 1000 * buckets / seconds];
      distinct.insert(s);
    }
    // Ids differing only in a trailing number spread evenly: each tenth of the range (or each
    // second, for a range under ten seconds) gets its share +-20%.
    ASSERT_EQ(static_cast<int64_t>(histogram.size()), buckets);
    for (const auto& [bucket, count] : histogram) {
      EXPECT_GT(count, n / buckets * 8 / 10) << "bucket " << bucket;
      EXPECT_LT(count, n / buckets * 12 / 10) << "bucket " << bucket;
    }
    EXPECT_EQ(static_cast<int64_t>(distinct.size()), seconds);  // every second used
  }
}

TEST(StaggerTest, StaggeredRunsStayBeforeTheNextRunAndInsideTheWindow) {
  const BackupPolicy p = Policy(R"({"frequency": "Hourly", "intervalHours": 1,
                                    "windowStartTime": "22:00", "windowDurationHours": 3})",
                                "+01:00");
  const auto runs = NextRunsAfter(p, Utc(2024, 7, 1), 10);
  for (int i = 0; i < 500; ++i) {
    const int64_t s = Stagger(ItemId(i), p);
    for (size_t r = 0; r + 1 < runs.size(); ++r) {
      EXPECT_LT(runs[r] + s, runs[r + 1]);
      // Window 22:00-01:00 local = 21:00-00:00 UTC: a staggered start is still inside it.
      const int64_t local_minute = ((runs[r] + s) / kMsPerMinute + 60) % 1440;
      EXPECT_TRUE(local_minute >= 22 * 60 || local_minute < 60) << Iso(runs[r] + s);
    }
  }
}

}  // namespace
}  // namespace stratus::recovery::policy
