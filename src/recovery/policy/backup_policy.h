// BackupPolicy: the schedule and retention rules of a
// Stratus.RecoveryServices/vaults/{vault}/backupPolicies/{name} resource, parsed and validated
// from the resource's ARM `properties`. Pure logic, no I/O; every function here is thread-safe.
//
// Wire format (API version 2026-11-01, docs/api.md), `properties` of the resource:
//
//   {
//     "schedule": <one of the three forms below>,                                 required
//     "timeZone": "UTC" | "+02:00" | "-05:30",                                default "UTC"
//     "retention": {                                           required, at least one tier
//       "hourly":  {"count": 12},                                              1..9999
//       "daily":   {"count": 30},                                              1..9999
//       "weekly":  {"count": 12, "daysOfWeek": ["Sunday"]},                    1..5163
//       "monthly": {"count": 12, "daysOfMonth": [1, "Last", "First Sunday"]},  1..1188
//       "yearly":  {"count": 5, "monthsOfYear": ["January"], "daysOfMonth": [1]}  1..99
//     },
//     "onDemandRetentionDays": 30,                                 1..36500, default 30
//     "consistency": "ApplicationConsistent" | "FileSystemConsistent" | "CrashConsistent"
//                                                          default "ApplicationConsistent"
//   }
//
// Schedules (local times "HH:MM", 00:00..23:59, in `timeZone`):
//   {"frequency": "Hourly", "intervalHours": 4, "windowStartTime": "08:00",
//    "windowDurationHours": 12}
//       A backup every intervalHours (1, 2, 3, 4, 6, 8, 12 or 24: must divide 24 so that every
//       day has the same times) from windowStartTime, inside the half-open window
//       [start, start + windowDurationHours): the example runs at 08:00, 12:00 and 16:00.
//       windowStartTime defaults to "00:00", windowDurationHours (intervalHours..24) to 24. The
//       window may cross midnight ("22:00" for 12 hours runs 22:00, 02:00, 06:00 with interval 4);
//       a window shorter than one interval is rejected (it would hold a single backup: use Daily).
//   {"frequency": "Daily", "times": ["02:00", "14:00"]}
//       Every day at each time (1..24 distinct times).
//   {"frequency": "Weekly", "days": ["Sunday", "Wednesday"], "times": ["02:00"]}
//       On each listed day (1..7 distinct) at each time (1..24 distinct).
//
// Time zone: "UTC" or a fixed offset "+HH:MM"/"-HH:MM" in [-12:00, +14:00]. IANA zones
// ("Europe/Paris") are rejected on purpose: with DST some local times happen twice or never, which
// would make a schedule skip or double a backup twice a year. The offset also defines the calendar
// of retention (which day, week, month and year a point belongs to).
//
// Retention (grandfather-father-son; see retention.h for the exact algorithm). Each tier keeps the
// newest scheduled point of each of its `count` most recent periods that have a qualifying point:
//   hourly   period = clock hour; every scheduled point qualifies. Use it to keep the intraday
//            points of an Hourly or multi-time Daily schedule (daily keeps one per day).
//   daily    period = calendar day; every scheduled point qualifies.
//   weekly   period = ISO week (Monday..Sunday); qualifying points are those taken on one of
//            `daysOfWeek`. With several days the week's newest qualifying point wins, so a second
//            day acts as a fallback for a week whose first day has no point.
//   monthly  period = calendar month; qualifying points are those on a day matching
//            `daysOfMonth`: a date 1..28, "Last" (the month's last day: 28, 29, 30 or 31), or
//            "<First|Second|Third|Fourth|Last> <Weekday>" ("First Sunday"). Forms may be mixed;
//            as with weekly, one point per month is kept: the newest that matches any entry.
//   yearly   period = calendar year; qualifying points are in one of `monthsOfYear` on a day
//            matching `daysOfMonth` (same forms as monthly).
// Tiers do not depend on the schedule's frequency: with a Weekly schedule, daily N keeps the
// points of the last N backup days. A point kept by any tier survives. On-demand ("backup now")
// points are outside the tiers: each lives onDemandRetentionDays (or until its own retain-until
// time). The newest point is always kept. Omit a tier to disable it; a count of 0 is an error,
// not "disabled".
//
// Validation (all errors: InvalidArgument, HTTP 400, ARM code "InvalidParameter", `target` = the
// dotted path of the offending field, relative to `properties`, e.g. "retention.daily.count" or
// "schedule.times[1]"):
//   - unknown fields at any level (also fields of another frequency, e.g. "times" with Hourly);
//     JSON null counts as absent. Read-only fields the API returns on GET ("protectedItemsCount",
//     "provisioningState") are accepted and ignored so that GET-edit-PUT round-trips work.
//   - wrong JSON types (a count of "30" or 30.5), malformed times, unknown day/month names,
//     duplicates in any list, empty lists, counts outside the ranges above.
//   - impossible schedules (intervalHours 0, >24 or not dividing 24; window too short or > 24h).
//   - retention that refers to days the schedule never backs up on: with a Weekly schedule,
//     weekly.daysOfWeek and the weekday forms of daysOfMonth must name scheduled days, and the
//     date forms (1..28, "Last") are rejected because they only sometimes fall on a backup day.
//   - dates 29..31 (not in every month: use "Last").
//
// Deliberate differences from Azure Backup's IaaS VM policy: several backups a day (Hourly, or
// several Daily times); policies are editable (the retention is applied afresh by every prune, so
// an edit takes effect at the next one); a fixed-offset time zone instead of DST-ambiguous zones;
// mixed day-of-month forms; no separate instant-restore snapshot tier (every vault point can be
// restored instantly); retention counts periods that have points, so a paused or failing schedule
// never ages out the last good points (see retention.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "recovery/consistency.h"
#include "recovery/policy/civil_time.h"

namespace stratus::recovery::policy {

// Limits (inclusive).
inline constexpr int kMaxHourlyCount = 9999;
inline constexpr int kMaxDailyCount = 9999;
inline constexpr int kMaxWeeklyCount = 5163;
inline constexpr int kMaxMonthlyCount = 1188;
inline constexpr int kMaxYearlyCount = 99;
inline constexpr int kMaxOnDemandRetentionDays = 36500;
inline constexpr int kDefaultOnDemandRetentionDays = 30;
inline constexpr int kMaxTimesPerDay = 24;
inline constexpr int kMinUtcOffsetMinutes = -12 * 60;
inline constexpr int kMaxUtcOffsetMinutes = 14 * 60;

enum class ScheduleFrequency { kHourly, kDaily, kWeekly };

// "Hourly", "Daily", "Weekly".
const char* ScheduleFrequencyName(ScheduleFrequency f);

struct BackupSchedule {
  ScheduleFrequency frequency = ScheduleFrequency::kDaily;
  // Hourly only.
  int interval_hours = 0;
  int window_start_minute = 0;  // minutes after local midnight
  int window_duration_hours = 0;
  // Daily and Weekly: minutes after local midnight, ascending, distinct.
  std::vector<int> times;
  // Weekly only: ascending (Sunday first), distinct.
  std::vector<Weekday> days;

  bool operator==(const BackupSchedule&) const = default;
};

enum class WeekOfMonth { kFirst = 1, kSecond, kThird, kFourth, kLast };

// One entry of a daysOfMonth list.
struct MonthDay {
  enum class Kind { kDate, kLastDay, kWeekday };
  Kind kind = Kind::kDate;
  int date = 1;                            // kDate: 1..28
  WeekOfMonth week = WeekOfMonth::kFirst;  // kWeekday
  Weekday weekday = Weekday::kSunday;      // kWeekday

  static MonthDay Date(int date) {
    return {Kind::kDate, date, WeekOfMonth::kFirst, Weekday::kSunday};
  }
  static MonthDay LastDay() { return {Kind::kLastDay, 1, WeekOfMonth::kFirst, Weekday::kSunday}; }
  static MonthDay Nth(WeekOfMonth week, Weekday day) { return {Kind::kWeekday, 1, week, day}; }

  // Whether local date `date` (which falls on `weekday`) is this day of its month.
  bool Matches(CivilDate date, Weekday weekday) const;
  // The wire form: 1, "Last", "First Sunday".
  Json ToJson() const;

  bool operator==(const MonthDay&) const = default;
};

struct RetentionRules {
  struct Weekly {
    int count = 0;
    std::vector<Weekday> days_of_week;  // ascending, distinct
    bool operator==(const Weekly&) const = default;
  };
  struct Monthly {
    int count = 0;
    std::vector<MonthDay> days_of_month;  // in the order given, distinct
    bool operator==(const Monthly&) const = default;
  };
  struct Yearly {
    int count = 0;
    std::vector<int> months_of_year;  // 1..12, ascending, distinct
    std::vector<MonthDay> days_of_month;
    bool operator==(const Yearly&) const = default;
  };

  // Counts; nullopt = tier disabled.
  std::optional<int> hourly;
  std::optional<int> daily;
  std::optional<Weekly> weekly;
  std::optional<Monthly> monthly;
  std::optional<Yearly> yearly;

  bool operator==(const RetentionRules&) const = default;
};

struct BackupPolicy {
  BackupSchedule schedule;
  int utc_offset_minutes = 0;  // local = UTC + offset
  RetentionRules retention;
  int on_demand_retention_days = kDefaultOnDemandRetentionDays;
  // The consistency each backup asks for; the backup engine falls back to the next lower level
  // (and records why) when the guest cannot provide it.
  Consistency consistency = Consistency::kApplication;

  bool operator==(const BackupPolicy&) const = default;
};

// Parses and validates the `properties` object of a backup policy resource (format above).
// Errors: InvalidArgument naming the field path as `target`, as described above.
Result<BackupPolicy> ParseBackupPolicy(const Json& properties);

// The canonical wire form (defaults filled in, names in canonical case, lists sorted where the
// order carries no meaning). ParseBackupPolicy(BackupPolicyToJson(p)) == p for a valid p.
Json BackupPolicyToJson(const BackupPolicy& policy);

// "UTC" for 0, otherwise "+HH:MM" / "-HH:MM".
std::string FormatUtcOffset(int offset_minutes);

}  // namespace stratus::recovery::policy
