// Calendar arithmetic for backup policies.
//
// Proleptic Gregorian calendar, no leap seconds. Instants are UTC milliseconds since the Unix
// epoch; a policy's calendar is local time at a fixed offset from UTC (no DST, see
// backup_policy.h), so "local day" is floor((utc_ms + offset) / 24h). All functions are pure and
// thread-safe.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace stratus::recovery::policy {

inline constexpr int64_t kMsPerMinute = 60'000;
inline constexpr int64_t kMsPerHour = 60 * kMsPerMinute;
inline constexpr int64_t kMsPerDay = 24 * kMsPerHour;

// Numbering as C's tm_wday (Sunday = 0).
enum class Weekday { kSunday = 0, kMonday, kTuesday, kWednesday, kThursday, kFriday, kSaturday };

// "Sunday" ... "Saturday".
const char* WeekdayName(Weekday day);
// English day name, case-insensitive ("sunday", "SUNDAY"); nullopt otherwise.
std::optional<Weekday> ParseWeekday(std::string_view name);
// "January" ... "December" for 1..12.
const char* MonthName(int month);
// English month name, case-insensitive, to 1..12; nullopt otherwise.
std::optional<int> ParseMonth(std::string_view name);

struct CivilDate {
  int year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
  auto operator<=>(const CivilDate&) const = default;
};

// Floor division (rounds toward negative infinity); b > 0.
int64_t FloorDiv(int64_t a, int64_t b);
// Days since 1970-01-01 of a valid date.
int64_t DaysFromCivil(CivilDate date);
// The date `days` days after 1970-01-01 (negative: before).
CivilDate CivilFromDays(int64_t days);
Weekday WeekdayOfDays(int64_t days);
// Index of the ISO 8601 week (Monday to Sunday) holding day `days`; consecutive weeks differ by
// one. Week 0 is the one holding 1970-01-01 (Monday 1969-12-29 .. Sunday 1970-01-04).
int64_t IsoWeekIndex(int64_t days);
bool IsLeapYear(int year);
int DaysInMonth(int year, int month);

// The local calendar day (days since epoch) holding UTC instant `utc_ms` at `offset_minutes` east
// of UTC.
int64_t LocalDay(int64_t utc_ms, int offset_minutes);
// UTC milliseconds of local date + minute-of-day at `offset_minutes` east of UTC.
int64_t UtcMsFromLocal(CivilDate date, int minute_of_day, int offset_minutes);

// "HH:MM" for a minute of the day (0..1439).
std::string FormatTimeOfDay(int minute_of_day);
// Parses exactly "HH:MM" (00:00 .. 23:59) to minutes after midnight; nullopt otherwise.
std::optional<int> ParseTimeOfDay(std::string_view text);

}  // namespace stratus::recovery::policy
