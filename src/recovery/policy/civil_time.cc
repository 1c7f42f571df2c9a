#include "recovery/policy/civil_time.h"

#include <chrono>

#include "core/resource_id.h"

namespace stratus::recovery::policy {
namespace {

constexpr const char* kWeekdayNames[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
constexpr const char* kMonthNames[] = {"January",   "February", "March",    "April",
                                       "May",       "June",     "July",     "August",
                                       "September", "October",  "November", "December"};

}  // namespace

const char* WeekdayName(Weekday day) { return kWeekdayNames[static_cast<int>(day)]; }

std::optional<Weekday> ParseWeekday(std::string_view name) {
  for (int i = 0; i < 7; ++i)
    if (EqualsIgnoreCase(name, kWeekdayNames[i])) return static_cast<Weekday>(i);
  return std::nullopt;
}

const char* MonthName(int month) { return kMonthNames[month - 1]; }

std::optional<int> ParseMonth(std::string_view name) {
  for (int i = 0; i < 12; ++i)
    if (EqualsIgnoreCase(name, kMonthNames[i])) return i + 1;
  return std::nullopt;
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

int64_t DaysFromCivil(CivilDate date) {
  using namespace std::chrono;
  const year_month_day ymd{year{date.year}, month{static_cast<unsigned>(date.month)},
                           day{static_cast<unsigned>(date.day)}};
  return sys_days{ymd}.time_since_epoch().count();
}

CivilDate CivilFromDays(int64_t days) {
  using namespace std::chrono;
  const year_month_day ymd{sys_days{std::chrono::days{days}}};
  return {static_cast<int>(ymd.year()), static_cast<int>(static_cast<unsigned>(ymd.month())),
          static_cast<int>(static_cast<unsigned>(ymd.day()))};
}

Weekday WeekdayOfDays(int64_t days) {
  // 1970-01-01 was a Thursday (4).
  return static_cast<Weekday>(days + 4 - FloorDiv(days + 4, 7) * 7);
}

int64_t IsoWeekIndex(int64_t days) {
  // Monday 1969-12-29 is day -3.
  return FloorDiv(days + 3, 7);
}

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

int64_t LocalDay(int64_t utc_ms, int offset_minutes) {
  return FloorDiv(utc_ms + offset_minutes * kMsPerMinute, kMsPerDay);
}

int64_t UtcMsFromLocal(CivilDate date, int minute_of_day, int offset_minutes) {
  return DaysFromCivil(date) * kMsPerDay + (minute_of_day - offset_minutes) * kMsPerMinute;
}

std::string FormatTimeOfDay(int minute_of_day) {
  const int h = minute_of_day / 60, m = minute_of_day % 60;
  std::string out = "00:00";
  out[0] = static_cast<char>('0' + h / 10);
  out[1] = static_cast<char>('0' + h % 10);
  out[3] = static_cast<char>('0' + m / 10);
  out[4] = static_cast<char>('0' + m % 10);
  return out;
}

std::optional<int> ParseTimeOfDay(std::string_view text) {
  auto digit = [&](size_t i) { return text[i] >= '0' && text[i] <= '9'; };
  if (text.size() != 5 || text[2] != ':' || !digit(0) || !digit(1) || !digit(3) || !digit(4))
    return std::nullopt;
  const int h = (text[0] - '0') * 10 + (text[1] - '0');
  const int m = (text[3] - '0') * 10 + (text[4] - '0');
  if (h > 23 || m > 59) return std::nullopt;
  return h * 60 + m;
}

}  // namespace stratus::recovery::policy
