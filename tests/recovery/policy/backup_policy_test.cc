#include "recovery/policy/backup_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "recovery/policy/policy_test_util.h"

namespace stratus::recovery::policy {
namespace {

using testing::MustParse;

// The full wire format, every field set: the example documented in backup_policy.h.
constexpr const char* kFullPolicy = R"({
  "schedule": {"frequency": "Hourly", "intervalHours": 4, "windowStartTime": "08:00",
               "windowDurationHours": 12},
  "timeZone": "+02:00",
  "retention": {
    "hourly":  {"count": 12},
    "daily":   {"count": 30},
    "weekly":  {"count": 12, "daysOfWeek": ["Sunday"]},
    "monthly": {"count": 12, "daysOfMonth": [1, "Last", "First Sunday"]},
    "yearly":  {"count": 5, "monthsOfYear": ["January", "July"], "daysOfMonth": [1]}
  },
  "onDemandRetentionDays": 45,
  "consistency": "FileSystemConsistent"
})";

TEST(BackupPolicyTest, ParsesTheFullDocumentedExample) {
  const BackupPolicy p = MustParse(kFullPolicy);
  EXPECT_EQ(p.schedule.frequency, ScheduleFrequency::kHourly);
  EXPECT_EQ(p.schedule.interval_hours, 4);
  EXPECT_EQ(p.schedule.window_start_minute, 8 * 60);
  EXPECT_EQ(p.schedule.window_duration_hours, 12);
  EXPECT_EQ(p.utc_offset_minutes, 120);
  EXPECT_EQ(p.retention.hourly, 12);
  EXPECT_EQ(p.retention.daily, 30);
  ASSERT_TRUE(p.retention.weekly);
  EXPECT_EQ(p.retention.weekly->count, 12);
  EXPECT_EQ(p.retention.weekly->days_of_week, std::vector<Weekday>{Weekday::kSunday});
  ASSERT_TRUE(p.retention.monthly);
  EXPECT_EQ(p.retention.monthly->days_of_month,
            (std::vector<MonthDay>{MonthDay::Date(1), MonthDay::LastDay(),
                                   MonthDay::Nth(WeekOfMonth::kFirst, Weekday::kSunday)}));
  ASSERT_TRUE(p.retention.yearly);
  EXPECT_EQ(p.retention.yearly->count, 5);
  EXPECT_EQ(p.retention.yearly->months_of_year, (std::vector<int>{1, 7}));
  EXPECT_EQ(p.on_demand_retention_days, 45);
  EXPECT_EQ(p.consistency, Consistency::kFileSystem);
}

TEST(BackupPolicyTest, DefaultsAreFilledIn) {
  const BackupPolicy p = MustParse(R"({"schedule": {"frequency": "Hourly", "intervalHours": 6},
                                       "retention": {"daily": {"count": 7}}})");
  EXPECT_EQ(p.schedule.window_start_minute, 0);
  EXPECT_EQ(p.schedule.window_duration_hours, 24);
  EXPECT_EQ(p.utc_offset_minutes, 0);
  EXPECT_EQ(p.on_demand_retention_days, kDefaultOnDemandRetentionDays);
  EXPECT_EQ(p.consistency, Consistency::kApplication);
  EXPECT_FALSE(p.retention.hourly);
  EXPECT_FALSE(p.retention.weekly);
}

TEST(BackupPolicyTest, DailyAndWeeklySchedulesSortTheirLists) {
  const BackupPolicy d = MustParse(R"({"schedule": {"frequency": "daily",
                                                    "times": ["14:00", "02:00", "23:59"]},
                                       "retention": {"daily": {"count": 7}}})");
  EXPECT_EQ(d.schedule.frequency, ScheduleFrequency::kDaily);
  EXPECT_EQ(d.schedule.times, (std::vector<int>{2 * 60, 14 * 60, 23 * 60 + 59}));

  const BackupPolicy w = MustParse(R"({"schedule": {"frequency": "WEEKLY",
                                                    "days": ["wednesday", "Sunday"],
                                                    "times": ["02:00"]},
                                       "retention": {"weekly": {"count": 4,
                                                                "daysOfWeek": ["SUNDAY"]}}})");
  EXPECT_EQ(w.schedule.frequency, ScheduleFrequency::kWeekly);
  EXPECT_EQ(w.schedule.days, (std::vector<Weekday>{Weekday::kSunday, Weekday::kWednesday}));
}

TEST(BackupPolicyTest, TimeZones) {
  auto offset = [](const std::string& tz) {
    return MustParse(R"({"schedule": {"frequency": "Daily", "times": ["02:00"]},
                         "retention": {"daily": {"count": 7}}, "timeZone": ")" +
                     tz + "\"}")
        .utc_offset_minutes;
  };
  EXPECT_EQ(offset("UTC"), 0);
  EXPECT_EQ(offset("utc"), 0);
  EXPECT_EQ(offset("+00:00"), 0);
  EXPECT_EQ(offset("-00:00"), 0);
  EXPECT_EQ(offset("+05:30"), 330);
  EXPECT_EQ(offset("-09:30"), -570);
  EXPECT_EQ(offset("+14:00"), 14 * 60);
  EXPECT_EQ(offset("-12:00"), -12 * 60);
  EXPECT_EQ(FormatUtcOffset(0), "UTC");
  EXPECT_EQ(FormatUtcOffset(330), "+05:30");
  EXPECT_EQ(FormatUtcOffset(-570), "-09:30");
}

TEST(BackupPolicyTest, HourlyWindowMayCrossMidnight) {
  const BackupPolicy p = MustParse(R"({"schedule": {"frequency": "Hourly", "intervalHours": 4,
                                                    "windowStartTime": "22:00",
                                                    "windowDurationHours": 8},
                                       "retention": {"hourly": {"count": 10}}})");
  EXPECT_EQ(p.schedule.window_start_minute, 22 * 60);
  EXPECT_EQ(p.schedule.window_duration_hours, 8);
}

TEST(BackupPolicyTest, WeeklyScheduleAcceptsRetentionOnScheduledDays) {
  const BackupPolicy p = MustParse(R"({
    "schedule": {"frequency": "Weekly", "days": ["Wednesday", "Saturday"], "times": ["03:00"]},
    "retention": {"daily": {"count": 10},
                  "weekly": {"count": 8, "daysOfWeek": ["Saturday", "Wednesday"]},
                  "monthly": {"count": 6, "daysOfMonth": ["First Wednesday", "Last Saturday"]},
                  "yearly": {"count": 2, "monthsOfYear": ["December"],
                             "daysOfMonth": ["Last Saturday"]}}})");
  EXPECT_EQ(p.retention.monthly->days_of_month[1],
            MonthDay::Nth(WeekOfMonth::kLast, Weekday::kSaturday));
}

TEST(BackupPolicyTest, NullMeansAbsentAndReadOnlyFieldsAreIgnored) {
  const BackupPolicy p = MustParse(R"({
    "schedule": {"frequency": "Daily", "times": ["02:00"]},
    "retention": {"daily": {"count": 7}, "weekly": null},
    "timeZone": null, "consistency": null,
    "protectedItemsCount": 3, "provisioningState": "Succeeded"})");
  EXPECT_FALSE(p.retention.weekly);
  EXPECT_EQ(p.utc_offset_minutes, 0);
  EXPECT_EQ(p.consistency, Consistency::kApplication);
}

TEST(BackupPolicyTest, CanonicalJsonRoundTrips) {
  const char* docs[] = {
      kFullPolicy,
      R"({"schedule": {"frequency": "Daily", "times": ["14:00", "02:00"]},
          "retention": {"daily": {"count": 7}}})",
      R"({"schedule": {"frequency": "weekly", "days": ["Wednesday", "sunday"],
                       "times": ["02:00"]},
          "timeZone": "-05:30", "consistency": "crashconsistent",
          "retention": {"weekly": {"count": 4, "daysOfWeek": ["Sunday"]},
                        "yearly": {"count": 3, "monthsOfYear": ["March", "January"],
                                   "daysOfMonth": ["last sunday"]}}})",
  };
  for (const char* doc : docs) {
    const BackupPolicy p = MustParse(doc);
    const Json canonical = BackupPolicyToJson(p);
    auto again = ParseBackupPolicy(canonical);
    ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << canonical.dump(2);
    EXPECT_EQ(*again, p) << canonical.dump(2);
    EXPECT_EQ(BackupPolicyToJson(*again), canonical);
  }
}

TEST(BackupPolicyTest, CanonicalJsonSpellsEverythingOut) {
  const Json j = BackupPolicyToJson(MustParse(R"({
      "schedule": {"frequency": "weekly", "days": ["wednesday", "sunday"],
                   "times": ["14:00", "02:00"]},
      "timeZone": "+00:00",
      "retention": {"monthly": {"count": 2,
                                "daysOfMonth": ["last wednesday", "first SUNDAY"]}}})"));
  EXPECT_EQ(j, Json::parse(R"({
      "schedule": {"frequency": "Weekly", "days": ["Sunday", "Wednesday"],
                   "times": ["02:00", "14:00"]},
      "timeZone": "UTC",
      "retention": {"monthly": {"count": 2,
                                "daysOfMonth": ["Last Wednesday", "First Sunday"]}},
      "onDemandRetentionDays": 30,
      "consistency": "ApplicationConsistent"})"));
}

TEST(BackupPolicyTest, MonthDayMatching) {
  auto match = [](const MonthDay& d, CivilDate date) {
    return d.Matches(date, WeekdayOfDays(DaysFromCivil(date)));
  };
  EXPECT_TRUE(match(MonthDay::LastDay(), {2024, 2, 29}));
  EXPECT_FALSE(match(MonthDay::LastDay(), {2024, 2, 28}));
  EXPECT_TRUE(match(MonthDay::LastDay(), {2023, 2, 28}));
  EXPECT_TRUE(match(MonthDay::LastDay(), {2024, 4, 30}));
  EXPECT_TRUE(match(MonthDay::Date(1), {2024, 4, 1}));
  // 2024-09: Sundays on 1, 8, 15, 22, 29.
  const MonthDay first_sun = MonthDay::Nth(WeekOfMonth::kFirst, Weekday::kSunday);
  const MonthDay fourth_sun = MonthDay::Nth(WeekOfMonth::kFourth, Weekday::kSunday);
  const MonthDay last_sun = MonthDay::Nth(WeekOfMonth::kLast, Weekday::kSunday);
  EXPECT_TRUE(match(first_sun, {2024, 9, 1}));
  EXPECT_FALSE(match(first_sun, {2024, 9, 8}));
  EXPECT_TRUE(match(fourth_sun, {2024, 9, 22}));
  EXPECT_TRUE(match(last_sun, {2024, 9, 29}));
  EXPECT_FALSE(match(last_sun, {2024, 9, 22}));
  // February 2024 (leap): Thursdays 1, 8, 15, 22, 29; last Thursday is the 29th.
  const MonthDay last_thu = MonthDay::Nth(WeekOfMonth::kLast, Weekday::kThursday);
  EXPECT_TRUE(match(last_thu, {2024, 2, 29}));
  EXPECT_FALSE(match(last_thu, {2024, 2, 22}));
  // February 2026 starts on a Sunday and has exactly four Sundays: the 4th is also the last.
  EXPECT_TRUE(match(fourth_sun, {2026, 2, 22}));
  EXPECT_TRUE(match(last_sun, {2026, 2, 22}));
}

// ---- Validation: every rejected input names its field -------------------------------------

struct BadCase {
  std::string name;
  std::string json;
  std::string target;
  std::string message_part;
};

std::ostream& operator<<(std::ostream& os, const BadCase& c) { return os << c.name; }

// A document with the given schedule and a one-week daily retention.
std::string WithSchedule(const std::string& schedule) {
  return R"({"schedule": )" + schedule + R"(, "retention": {"daily": {"count": 7}}})";
}
// A document with a daily 02:00 schedule and the given retention.
std::string WithRetention(const std::string& retention) {
  return R"({"schedule": {"frequency": "Daily", "times": ["02:00"]}, "retention": )" + retention +
         "}";
}
// A weekly schedule (Wednesday 02:00) with the given retention.
std::string WednesdaysWith(const std::string& retention) {
  return R"({"schedule": {"frequency": "Weekly", "days": ["Wednesday"], "times": ["02:00"]},
             "retention": )" +
         retention + "}";
}
std::string WithTop(const std::string& extra) {
  return R"({"schedule": {"frequency": "Daily", "times": ["02:00"]},
             "retention": {"daily": {"count": 7}}, )" +
         extra + "}";
}
std::string Hourly(const std::string& fields) {
  return WithSchedule(R"({"frequency": "Hourly", )" + fields + "}");
}

std::vector<BadCase> BadCases() {
  return {
      // Shape and unknown fields.
      {"PropertiesNotObject", "[1]", "", "must be a JSON object"},
      {"UnknownTopLevel", WithTop(R"("backupWindow": 2)"), "backupWindow", "Unknown field"},
      {"WrongCaseTopLevel",
       R"({"Schedule": {"frequency": "Daily", "times": ["02:00"]}, "retention": {}})", "Schedule",
       "Did you mean 'schedule'"},
      {"MisspeltTopLevel", WithTop(R"("onDemandRetentionDay": 3)"), "onDemandRetentionDay",
       "Did you mean 'onDemandRetentionDays'?"},
      {"UnknownScheduleField", Hourly(R"("intervalHours": 4, "intervalHour": 4)"),
       "schedule.intervalHour", "Did you mean 'intervalHours'"},
      {"TimesWithHourly", Hourly(R"("intervalHours": 4, "times": ["02:00"])"), "schedule.times",
       "not used with frequency Hourly"},
      {"IntervalWithDaily", WithSchedule(R"({"frequency": "Daily", "times": ["02:00"],
                                            "intervalHours": 4})"),
       "schedule.intervalHours", "not used with frequency Daily"},
      {"DaysWithDaily", WithSchedule(R"({"frequency": "Daily", "times": ["02:00"],
                                         "days": ["Sunday"]})"),
       "schedule.days", "not used with frequency Daily"},
      {"UnknownRetentionTier", WithRetention(R"({"daily": {"count": 7}, "biweekly": {}})"),
       "retention.biweekly", "Unknown field"},
      {"UnknownTierField", WithRetention(R"({"daily": {"count": 7, "days": 3}})"),
       "retention.daily.days", "Unknown field"},
      {"UnknownWeeklyField",
       WithRetention(R"({"weekly": {"count": 4, "daysOfWeek": ["Sunday"], "weeks": 2}})"),
       "retention.weekly.weeks", "allowed: count, daysOfWeek"},
      {"UnknownYearlyField",
       WithRetention(R"({"yearly": {"count": 4, "monthsOfYear": ["May"], "daysOfMonth": [1],
                                    "weeksOfMonth": ["First"]}})"),
       "retention.yearly.weeksOfMonth", "Unknown field"},
      {"ScheduleNotObject", WithSchedule(R"("Daily")"), "schedule", "must be a JSON object"},
      {"RetentionNotObject", WithRetention("30"), "retention", "must be a JSON object"},
      {"TierNotObject", WithRetention(R"({"weekly": 4})"), "retention.weekly",
       "must be a JSON object"},
      {"MissingSchedule", R"({"retention": {"daily": {"count": 7}}})", "schedule", "required"},
      {"MissingRetention", R"({"schedule": {"frequency": "Daily", "times": ["02:00"]}})",
       "retention", "required"},
      {"EmptyRetention", WithRetention("{}"), "retention", "keeps nothing"},
      // Frequency.
      {"MissingFrequency", WithSchedule(R"({"times": ["02:00"]})"), "schedule.frequency",
       "required"},
      {"UnknownFrequency", WithSchedule(R"({"frequency": "Monthly"})"), "schedule.frequency",
       "use Hourly, Daily or Weekly"},
      {"FrequencyNotString", WithSchedule(R"({"frequency": 1})"), "schedule.frequency",
       "must be a string"},
      // Hourly.
      {"MissingInterval", Hourly(R"("windowStartTime": "08:00")"), "schedule.intervalHours",
       "required"},
      {"IntervalZero", Hourly(R"("intervalHours": 0)"), "schedule.intervalHours",
       "at least 1, got 0"},
      {"IntervalNegative", Hourly(R"("intervalHours": -4)"), "schedule.intervalHours",
       "at least 1"},
      {"IntervalAbove24", Hourly(R"("intervalHours": 25)"), "schedule.intervalHours",
       "maximum is 24"},
      {"IntervalNotDividing24", Hourly(R"("intervalHours": 5)"), "schedule.intervalHours",
       "does not divide 24"},
      {"IntervalSeven", Hourly(R"("intervalHours": 7)"), "schedule.intervalHours",
       "does not divide 24"},
      {"IntervalFractional", Hourly(R"("intervalHours": 1.5)"), "schedule.intervalHours",
       "must be an integer"},
      {"IntervalString", Hourly(R"("intervalHours": "4")"), "schedule.intervalHours",
       "must be an integer"},
      {"WindowTooLong", Hourly(R"("intervalHours": 4, "windowDurationHours": 25)"),
       "schedule.windowDurationHours", "maximum is 24"},
      {"WindowZero", Hourly(R"("intervalHours": 4, "windowDurationHours": 0)"),
       "schedule.windowDurationHours", "at least 1"},
      {"WindowShorterThanInterval", Hourly(R"("intervalHours": 6, "windowDurationHours": 4)"),
       "schedule.windowDurationHours", "shorter than intervalHours"},
      {"WindowStartNoLeadingZero", Hourly(R"("intervalHours": 4, "windowStartTime": "8:00")"),
       "schedule.windowStartTime", "HH:MM"},
      {"WindowStart24", Hourly(R"("intervalHours": 4, "windowStartTime": "24:00")"),
       "schedule.windowStartTime", "HH:MM"},
      {"WindowStartSeconds", Hourly(R"("intervalHours": 4, "windowStartTime": "08:00:00")"),
       "schedule.windowStartTime", "HH:MM"},
      {"WindowStartNumber", Hourly(R"("intervalHours": 4, "windowStartTime": 800)"),
       "schedule.windowStartTime", "must be a string"},
      // Daily / weekly times and days.
      {"DailyMissingTimes", WithSchedule(R"({"frequency": "Daily"})"), "schedule.times",
       "required"},
      {"DailyEmptyTimes", WithSchedule(R"({"frequency": "Daily", "times": []})"), "schedule.times",
       "at least one"},
      {"TimesNotArray", WithSchedule(R"({"frequency": "Daily", "times": "02:00"})"),
       "schedule.times", "must be an array"},
      {"TimeMalformed", WithSchedule(R"({"frequency": "Daily", "times": ["02:00", "2:00"]})"),
       "schedule.times[1]", "HH:MM"},
      {"TimeMinute60", WithSchedule(R"({"frequency": "Daily", "times": ["12:60"]})"),
       "schedule.times[0]", "HH:MM"},
      {"TimeDuplicate",
       WithSchedule(R"({"frequency": "Daily", "times": ["02:00", "14:00", "02:00"]})"),
       "schedule.times[2]", "repeats 02:00"},
      {"TooManyTimes", WithSchedule(R"({"frequency": "Daily", "times": [
         "00:00","01:00","02:00","03:00","04:00","05:00","06:00","07:00","08:00","09:00",
         "10:00","11:00","12:00","13:00","14:00","15:00","16:00","17:00","18:00","19:00",
         "20:00","21:00","22:00","23:00","23:30"]})"),
       "schedule.times", "at most 24"},
      {"WeeklyMissingDays", WithSchedule(R"({"frequency": "Weekly", "times": ["02:00"]})"),
       "schedule.days", "required"},
      {"WeeklyEmptyDays",
       WithSchedule(R"({"frequency": "Weekly", "days": [], "times": ["02:00"]})"), "schedule.days",
       "at least one"},
      {"WeeklyUnknownDay",
       WithSchedule(R"({"frequency": "Weekly", "days": ["Sunday", "Funday"], "times": ["02:00"]})"),
       "schedule.days[1]", "Sunday to Saturday"},
      {"WeeklyAbbreviatedDay",
       WithSchedule(R"({"frequency": "Weekly", "days": ["Sun"], "times": ["02:00"]})"),
       "schedule.days[0]", "Sunday to Saturday"},
      {"WeeklyDuplicateDay",
       WithSchedule(R"({"frequency": "Weekly", "days": ["Sunday", "sunday"], "times": ["02:00"]})"),
       "schedule.days[1]", "repeats Sunday"},
      {"WeeklyMissingTimes", WithSchedule(R"({"frequency": "Weekly", "days": ["Sunday"]})"),
       "schedule.times", "required"},
      // Time zone.
      {"IanaZone", WithTop(R"("timeZone": "Europe/Paris")"), "timeZone", "daylight saving"},
      {"OffsetTooEast", WithTop(R"("timeZone": "+15:00")"), "timeZone", "-12:00 to +14:00"},
      {"OffsetTooWest", WithTop(R"("timeZone": "-12:30")"), "timeZone", "-12:00 to +14:00"},
      {"OffsetNoLeadingZero", WithTop(R"("timeZone": "+2:00")"), "timeZone", "fixed offset"},
      {"OffsetNoSign", WithTop(R"("timeZone": "02:00")"), "timeZone", "fixed offset"},
      {"OffsetBadMinutes", WithTop(R"("timeZone": "+02:60")"), "timeZone", "fixed offset"},
      {"OffsetNumber", WithTop(R"("timeZone": 2)"), "timeZone", "must be a string"},
      // Counts.
      {"DailyCountZero", WithRetention(R"({"daily": {"count": 0}})"), "retention.daily.count",
       "at least 1, got 0"},
      {"DailyCountNegative", WithRetention(R"({"daily": {"count": -3}})"), "retention.daily.count",
       "at least 1, got -3"},
      {"DailyCountAboveLimit", WithRetention(R"({"daily": {"count": 10000}})"),
       "retention.daily.count", "maximum is 9999"},
      {"DailyCountHuge", WithRetention(R"({"daily": {"count": 18446744073709551615}})"),
       "retention.daily.count", "maximum is 9999"},
      {"DailyCountString", WithRetention(R"({"daily": {"count": "30"}})"), "retention.daily.count",
       "must be an integer"},
      {"DailyCountFractional", WithRetention(R"({"daily": {"count": 30.5}})"),
       "retention.daily.count", "must be an integer"},
      {"DailyCountBool", WithRetention(R"({"daily": {"count": true}})"), "retention.daily.count",
       "must be an integer"},
      {"DailyCountMissing", WithRetention(R"({"daily": {}})"), "retention.daily.count", "required"},
      {"HourlyCountZero", WithRetention(R"({"hourly": {"count": 0}})"), "retention.hourly.count",
       "at least 1"},
      {"HourlyCountAboveLimit", WithRetention(R"({"hourly": {"count": 10000}})"),
       "retention.hourly.count", "maximum is 9999"},
      {"WeeklyCountZero", WithRetention(R"({"weekly": {"count": 0, "daysOfWeek": ["Sunday"]}})"),
       "retention.weekly.count", "at least 1"},
      {"WeeklyCountAboveLimit",
       WithRetention(R"({"weekly": {"count": 5164, "daysOfWeek": ["Sunday"]}})"),
       "retention.weekly.count", "maximum is 5163"},
      {"MonthlyCountAboveLimit",
       WithRetention(R"({"monthly": {"count": 1189, "daysOfMonth": [1]}})"),
       "retention.monthly.count", "maximum is 1188"},
      {"YearlyCountZero",
       WithRetention(R"({"yearly": {"count": 0, "monthsOfYear": ["May"], "daysOfMonth": [1]}})"),
       "retention.yearly.count", "at least 1"},
      {"YearlyCountAboveLimit",
       WithRetention(R"({"yearly": {"count": 100, "monthsOfYear": ["May"], "daysOfMonth": [1]}})"),
       "retention.yearly.count", "maximum is 99"},
      // Weekly / monthly / yearly day lists.
      {"WeeklyDaysMissing", WithRetention(R"({"weekly": {"count": 4}})"),
       "retention.weekly.daysOfWeek", "required"},
      {"WeeklyDaysEmpty", WithRetention(R"({"weekly": {"count": 4, "daysOfWeek": []}})"),
       "retention.weekly.daysOfWeek", "at least one"},
      {"WeeklyDayUnknown", WithRetention(R"({"weekly": {"count": 4, "daysOfWeek": ["Dimanche"]}})"),
       "retention.weekly.daysOfWeek[0]", "Sunday to Saturday"},
      {"WeeklyDayDuplicate",
       WithRetention(R"({"weekly": {"count": 4, "daysOfWeek": ["Sunday", "Monday", "SUNDAY"]}})"),
       "retention.weekly.daysOfWeek[2]", "repeats Sunday"},
      {"MonthlyDaysMissing", WithRetention(R"({"monthly": {"count": 4}})"),
       "retention.monthly.daysOfMonth", "required"},
      {"MonthlyDaysEmpty", WithRetention(R"({"monthly": {"count": 4, "daysOfMonth": []}})"),
       "retention.monthly.daysOfMonth", "at least one"},
      {"MonthlyDayZero", WithRetention(R"({"monthly": {"count": 4, "daysOfMonth": [0]}})"),
       "retention.monthly.daysOfMonth[0]", "a date 1 to 28"},
      {"MonthlyDay29", WithRetention(R"({"monthly": {"count": 4, "daysOfMonth": [1, 29]}})"),
       "retention.monthly.daysOfMonth[1]", "not every month has; use \"Last\""},
      {"MonthlyDay31", WithRetention(R"({"monthly": {"count": 4, "daysOfMonth": [31]}})"),
       "retention.monthly.daysOfMonth[0]", "not every month has"},
      {"MonthlyDay32", WithRetention(R"({"monthly": {"count": 4, "daysOfMonth": [32]}})"),
       "retention.monthly.daysOfMonth[0]", "a date 1 to 28"},
      {"MonthlyWeekWithoutDay",
       WithRetention(R"({"monthly": {"count": 4, "daysOfMonth": ["First"]}})"),
       "retention.monthly.daysOfMonth[0]", "\"First Sunday\""},
      {"MonthlyFifthWeek",
       WithRetention(R"({"monthly": {"count": 4, "daysOfMonth": ["Fifth Sunday"]}})"),
       "retention.monthly.daysOfMonth[0]", "\"Last Friday\""},
      {"MonthlyBadWeekday",
       WithRetention(R"({"monthly": {"count": 4, "daysOfMonth": ["Last Funday"]}})"),
       "retention.monthly.daysOfMonth[0]", "\"First Sunday\""},
      {"MonthlyDayBool", WithRetention(R"({"monthly": {"count": 4, "daysOfMonth": [true]}})"),
       "retention.monthly.daysOfMonth[0]", "a date 1 to 28"},
      {"MonthlyDayNumericString",
       WithRetention(R"({"monthly": {"count": 4, "daysOfMonth": ["1"]}})"),
       "retention.monthly.daysOfMonth[0]", "a date 1 to 28"},
      {"MonthlyDayDuplicate",
       WithRetention(R"({"monthly": {"count": 4, "daysOfMonth": ["Last", 1, "last"]}})"),
       "retention.monthly.daysOfMonth[2]", "repeats \"Last\""},
      {"YearlyMonthsMissing", WithRetention(R"({"yearly": {"count": 4, "daysOfMonth": [1]}})"),
       "retention.yearly.monthsOfYear", "required"},
      {"YearlyMonthsEmpty",
       WithRetention(R"({"yearly": {"count": 4, "monthsOfYear": [], "daysOfMonth": [1]}})"),
       "retention.yearly.monthsOfYear", "at least one"},
      {"YearlyMonthUnknown",
       WithRetention(
           R"({"yearly": {"count": 4, "monthsOfYear": ["Janvier"], "daysOfMonth": [1]}})"),
       "retention.yearly.monthsOfYear[0]", "January to December"},
      {"YearlyMonthDuplicate",
       WithRetention(R"({"yearly": {"count": 4, "monthsOfYear": ["May", "june", "MAY"],
                                    "daysOfMonth": [1]}})"),
       "retention.yearly.monthsOfYear[2]", "repeats May"},
      {"YearlyDaysMissing", WithRetention(R"({"yearly": {"count": 4, "monthsOfYear": ["May"]}})"),
       "retention.yearly.daysOfMonth", "required"},
      {"YearlyDay30",
       WithRetention(R"({"yearly": {"count": 4, "monthsOfYear": ["May"], "daysOfMonth": [30]}})"),
       "retention.yearly.daysOfMonth[0]", "not every month has"},
      // Retention that refers to days the schedule never backs up on.
      {"WeeklyRetentionOnUnscheduledDay",
       WednesdaysWith(R"({"weekly": {"count": 4, "daysOfWeek": ["Sunday"]}})"),
       "retention.weekly.daysOfWeek",
       "includes Sunday, but the schedule backs up only on Wednesday"},
      {"WeeklyRetentionPartlyUnscheduled",
       WednesdaysWith(R"({"weekly": {"count": 4, "daysOfWeek": ["Wednesday", "Friday"]}})"),
       "retention.weekly.daysOfWeek", "includes Friday"},
      {"MonthlyDateWithWeeklySchedule",
       WednesdaysWith(R"({"monthly": {"count": 4, "daysOfMonth": [1]}})"),
       "retention.monthly.daysOfMonth[0]", "\"First Wednesday\""},
      {"MonthlyLastDayWithWeeklySchedule",
       WednesdaysWith(R"({"monthly": {"count": 4, "daysOfMonth": ["First Wednesday", "Last"]}})"),
       "retention.monthly.daysOfMonth[1]", "only on Wednesday"},
      {"MonthlyUnscheduledWeekday",
       WednesdaysWith(R"({"monthly": {"count": 4, "daysOfMonth": ["First Sunday"]}})"),
       "retention.monthly.daysOfMonth[0]", "never has a point"},
      {"YearlyDateWithWeeklySchedule",
       WednesdaysWith(
           R"({"yearly": {"count": 4, "monthsOfYear": ["May"], "daysOfMonth": ["Last"]}})"),
       "retention.yearly.daysOfMonth[0]", "only on Wednesday"},
      {"YearlyUnscheduledWeekday",
       WednesdaysWith(R"({"yearly": {"count": 4, "monthsOfYear": ["May"],
                                     "daysOfMonth": ["Last Wednesday", "Last Monday"]}})"),
       "retention.yearly.daysOfMonth[1]", "never has a point"},
      // On-demand and consistency.
      {"OnDemandZero", WithTop(R"("onDemandRetentionDays": 0)"), "onDemandRetentionDays",
       "at least 1"},
      {"OnDemandAboveLimit", WithTop(R"("onDemandRetentionDays": 36501)"), "onDemandRetentionDays",
       "maximum is 36500"},
      {"OnDemandString", WithTop(R"("onDemandRetentionDays": "30")"), "onDemandRetentionDays",
       "must be an integer"},
      {"ConsistencyUnknown", WithTop(R"("consistency": "Perfect")"), "consistency",
       "Unknown consistency"},
      {"ConsistencyNotString", WithTop(R"("consistency": 1)"), "consistency", "must be a string"},
  };
}

class BackupPolicyValidationTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BackupPolicyValidationTest, RejectsWithTargetAndReason) {
  const BadCase& c = GetParam();
  auto doc = ParseJson(c.json);
  ASSERT_TRUE(doc.ok()) << "test JSON itself is invalid: " << c.json;
  auto policy = ParseBackupPolicy(*doc);
  ASSERT_FALSE(policy.ok()) << "accepted:\n" << c.json;
  const Status& st = policy.status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.http_status(), 400);
  EXPECT_EQ(st.arm_code(), "InvalidParameter");
  EXPECT_EQ(st.target(), c.target) << st.message();
  EXPECT_NE(st.message().find(c.message_part), std::string::npos)
      << "message: " << st.message() << "\nexpected to contain: " << c.message_part;
}

INSTANTIATE_TEST_SUITE_P(BadPolicies, BackupPolicyValidationTest, ::testing::ValuesIn(BadCases()),
                         [](const ::testing::TestParamInfo<BadCase>& info) {
                           return info.param.name;
                         });

TEST(BackupPolicyTest, ErrorMessagesQuoteTheInput) {
  auto p = ParseBackupPolicy(Json::parse(WithRetention(R"({"daily": {"count": 0}})")));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "'retention.daily.count' must be at least 1, got 0. Omit 'daily' to keep no daily "
            "points.");
  p = ParseBackupPolicy(
      Json::parse(WednesdaysWith(R"({"weekly": {"count": 4, "daysOfWeek": ["Sunday"]}})")));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "'retention.weekly.daysOfWeek' includes Sunday, but the schedule backs up only on "
            "Wednesday, so no weekly point could ever be kept from Sunday. Keep points from a "
            "scheduled day instead.");
}

}  // namespace
}  // namespace stratus::recovery::policy
