#include "recovery/policy/backup_policy.h"

#include <algorithm>
#include <initializer_list>
#include <limits>
#include <string_view>

#include "core/resource_id.h"

namespace stratus::recovery::policy {
namespace {

constexpr const char* kWeekNames[] = {"", "First", "Second", "Third", "Fourth", "Last"};

Status Bad(std::string message, std::string target) {
  return InvalidArgument(std::move(message), std::move(target), "InvalidParameter");
}

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string At(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// A short rendering of a JSON value for error messages.
std::string Show(const Json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string ListNames(std::initializer_list<std::string_view> names) {
  std::string out;
  for (auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

// Levenshtein distance, for "did you mean" hints on misspelt field names.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The member `key` of object `obj`; nullptr when absent or JSON null.
const Json* Field(const Json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// Rejects members of `obj` not in `allowed`. `foreign` are names valid elsewhere at this level
// (fields of another schedule frequency); `context` says why they are not allowed here.
Status RejectUnknownFields(const Json& obj, const std::string& path,
                           std::initializer_list<std::string_view> allowed,
                           std::initializer_list<std::string_view> foreign = {},
                           std::string_view context = {}) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& key = it.key();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    const std::string target = Join(path, key);
    const std::string where = path.empty() ? "the backup policy properties" : Quote(path);
    if (std::find(foreign.begin(), foreign.end(), key) != foreign.end()) {
      return Bad("The field " + Quote(target) + " is not used " + std::string(context) +
                     ", which takes: " + ListNames(allowed) + ".",
                 target);
    }
    std::string hint;
    for (auto a : allowed) {
      if (EqualsIgnoreCase(a, key)) {
        hint = " Did you mean " + Quote(a) + "? Field names are case-sensitive.";
        break;
      }
      if (hint.empty() && EditDistance(a, key) <= 2) hint = " Did you mean " + Quote(a) + "?";
    }
    return Bad("Unknown field " + Quote(target) + " in " + where +
                   "; allowed: " + ListNames(allowed) + "." + hint,
               target);
  }
  return Status::Ok();
}

Status RequireObject(const Json& v, const std::string& path) {
  if (v.is_object()) return Status::Ok();
  return Bad(
      Quote(path.empty() ? "properties" : path) + " must be a JSON object, got " + Show(v) + ".",
      path);
}

Result<std::string> GetString(const Json& v, const std::string& path) {
  if (!v.is_string()) return Bad(Quote(path) + " must be a string, got " + Show(v) + ".", path);
  return v.get<std::string>();
}

// An integer in [min, max]; `too_small` / `too_big` complete the message when out of range.
Result<int> GetInt(const Json& v, const std::string& path, int min, int max,
                   const std::string& too_small = {}, const std::string& too_big = {}) {
  if (!v.is_number_integer())
    return Bad(Quote(path) + " must be an integer, got " + Show(v) + ".", path);
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(max))
    return Bad(
        Quote(path) + " is " + Show(v) + "; the maximum is " + std::to_string(max) + "." + too_big,
        path);
  const int64_t n = v.get<int64_t>();
  if (n < min)
    return Bad(Quote(path) + " must be at least " + std::to_string(min) + ", got " +
                   std::to_string(n) + "." + too_small,
               path);
  if (n > max)
    return Bad(Quote(path) + " is " + std::to_string(n) + "; the maximum is " +
                   std::to_string(max) + "." + too_big,
               path);
  return static_cast<int>(n);
}

// A non-empty array of at most `max_items` elements.
Status RequireArray(const Json& v, const std::string& path, size_t max_items,
                    std::string_view what) {
  if (!v.is_array())
    return Bad(Quote(path) + " must be an array of " + std::string(what) + ", got " + Show(v) + ".",
               path);
  if (v.empty())
    return Bad(Quote(path) + " must list at least one " + std::string(what) + ".", path);
  if (v.size() > max_items)
    return Bad(Quote(path) + " lists " + std::to_string(v.size()) + " entries; at most " +
                   std::to_string(max_items) + " are allowed.",
               path);
  return Status::Ok();
}

Result<int> GetTimeOfDay(const Json& v, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, GetString(v, path));
  auto minute = ParseTimeOfDay(text);
  if (!minute)
    return Bad(Quote(path) + " is " + Quote(text) +
                   "; a time of day must be \"HH:MM\" on a 24-hour clock (00:00 to 23:59).",
               path);
  return *minute;
}

Result<std::vector<int>> GetTimes(const Json& obj, const std::string& path) {
  const std::string p = Join(path, "times");
  const Json* v = Field(obj, "times");
  if (!v) return Bad(Quote(p) + " is required: the local times of day to back up at.", p);
  RETURN_IF_ERROR(RequireArray(*v, p, kMaxTimesPerDay, "times (\"HH:MM\")"));
  std::vector<int> times;
  for (size_t i = 0; i < v->size(); ++i) {
    ASSIGN_OR_RETURN(int t, GetTimeOfDay((*v)[i], At(p, i)));
    if (std::find(times.begin(), times.end(), t) != times.end())
      return Bad(Quote(At(p, i)) + " repeats " + FormatTimeOfDay(t) + "; list each time once.",
                 At(p, i));
    times.push_back(t);
  }
  std::sort(times.begin(), times.end());
  return times;
}

Result<Weekday> GetWeekday(const Json& v, const std::string& path) {
  ASSIGN_OR_RETURN(std::string name, GetString(v, path));
  auto day = ParseWeekday(name);
  if (!day)
    return Bad(Quote(path) + " is " + Quote(name) + "; use a day name, Sunday to Saturday.", path);
  return *day;
}

Result<std::vector<Weekday>> GetWeekdays(const Json& v, const std::string& path) {
  RETURN_IF_ERROR(RequireArray(v, path, 7, "day names"));
  std::vector<Weekday> days;
  for (size_t i = 0; i < v.size(); ++i) {
    ASSIGN_OR_RETURN(Weekday d, GetWeekday(v[i], At(path, i)));
    if (std::find(days.begin(), days.end(), d) != days.end())
      return Bad(Quote(At(path, i)) + " repeats " + WeekdayName(d) + "; list each day once.",
                 At(path, i));
    days.push_back(d);
  }
  std::sort(days.begin(), days.end());
  return days;
}

std::string DayList(const std::vector<Weekday>& days) {
  std::string out;
  for (size_t i = 0; i < days.size(); ++i) {
    if (i > 0) out += i + 1 == days.size() ? " and " : ", ";
    out += WeekdayName(days[i]);
  }
  return out;
}

Result<BackupSchedule> ParseSchedule(const Json& v, const std::string& path) {
  RETURN_IF_ERROR(RequireObject(v, path));
  BackupSchedule s;
  const std::string fp = Join(path, "frequency");
  const Json* f = Field(v, "frequency");
  if (!f) return Bad(Quote(fp) + " is required: Hourly, Daily or Weekly.", fp);
  ASSIGN_OR_RETURN(std::string freq, GetString(*f, fp));
  static const std::initializer_list<std::string_view> kAll = {
      "frequency", "intervalHours", "windowStartTime", "windowDurationHours", "times", "days"};
  if (EqualsIgnoreCase(freq, "Hourly")) {
    s.frequency = ScheduleFrequency::kHourly;
    RETURN_IF_ERROR(RejectUnknownFields(
        v, path, {"frequency", "intervalHours", "windowStartTime", "windowDurationHours"}, kAll,
        "with frequency Hourly"));
    const std::string ip = Join(path, "intervalHours");
    const Json* interval = Field(v, "intervalHours");
    if (!interval)
      return Bad(Quote(ip) + " is required with frequency Hourly: the hours between backups.", ip);
    ASSIGN_OR_RETURN(s.interval_hours,
                     GetInt(*interval, ip, 1, 24, "",
                            " Use frequency Daily or Weekly for backups further apart."));
    if (24 % s.interval_hours != 0)
      return Bad(Quote(ip) + " is " + std::to_string(s.interval_hours) +
                     ", which does not divide 24, so the backup times would drift from day to "
                     "day; use 1, 2, 3, 4, 6, 8, 12 or 24.",
                 ip);
    if (const Json* start = Field(v, "windowStartTime")) {
      ASSIGN_OR_RETURN(s.window_start_minute, GetTimeOfDay(*start, Join(path, "windowStartTime")));
    }
    s.window_duration_hours = 24;
    const std::string dp = Join(path, "windowDurationHours");
    if (const Json* duration = Field(v, "windowDurationHours")) {
      ASSIGN_OR_RETURN(s.window_duration_hours,
                       GetInt(*duration, dp, 1, 24, "",
                              " A window longer than a day would overlap the next day's."));
    }
    if (s.window_duration_hours < s.interval_hours)
      return Bad(Quote(dp) + " is " + std::to_string(s.window_duration_hours) +
                     ", shorter than intervalHours (" + std::to_string(s.interval_hours) +
                     "): the window would hold a single backup a day. Lengthen the window or "
                     "use frequency Daily.",
                 dp);
    return s;
  }
  if (EqualsIgnoreCase(freq, "Daily")) {
    s.frequency = ScheduleFrequency::kDaily;
    RETURN_IF_ERROR(
        RejectUnknownFields(v, path, {"frequency", "times"}, kAll, "with frequency Daily"));
    ASSIGN_OR_RETURN(s.times, GetTimes(v, path));
    return s;
  }
  if (EqualsIgnoreCase(freq, "Weekly")) {
    s.frequency = ScheduleFrequency::kWeekly;
    RETURN_IF_ERROR(RejectUnknownFields(v, path, {"frequency", "days", "times"}, kAll,
                                        "with frequency Weekly"));
    const std::string dp = Join(path, "days");
    const Json* days = Field(v, "days");
    if (!days)
      return Bad(Quote(dp) + " is required with frequency Weekly: the days to back up on.", dp);
    ASSIGN_OR_RETURN(s.days, GetWeekdays(*days, dp));
    ASSIGN_OR_RETURN(s.times, GetTimes(v, path));
    return s;
  }
  return Bad(Quote(fp) + " is " + Quote(freq) + "; use Hourly, Daily or Weekly.", fp);
}

Result<int> ParseUtcOffset(const Json& v, const std::string& path) {
  ASSIGN_OR_RETURN(std::string tz, GetString(v, path));
  if (EqualsIgnoreCase(tz, "UTC")) return 0;
  const std::string why =
      "; use \"UTC\" or a fixed offset from -12:00 to +14:00 such as \"+02:00\". Zones with "
      "daylight saving time are not supported: some local times would happen twice or never.";
  if (tz.size() != 6 || (tz[0] != '+' && tz[0] != '-'))
    return Bad(Quote(path) + " is " + Quote(tz) + why, path);
  auto hm = ParseTimeOfDay(std::string_view(tz).substr(1));
  if (!hm) return Bad(Quote(path) + " is " + Quote(tz) + why, path);
  const int offset = tz[0] == '-' ? -*hm : *hm;
  if (offset < kMinUtcOffsetMinutes || offset > kMaxUtcOffsetMinutes)
    return Bad(Quote(path) + " is " + Quote(tz) + why, path);
  return offset;
}

// One daysOfMonth entry: 1..28, "Last", or "<First|Second|Third|Fourth|Last> <Weekday>".
Result<MonthDay> ParseMonthDay(const Json& v, const std::string& path) {
  const std::string forms =
      "; use a date 1 to 28, \"Last\" for the month's last day, or a weekday such as \"First "
      "Sunday\" or \"Last Friday\".";
  if (v.is_number_integer()) {
    const int64_t d = v.is_number_unsigned() && v.get<uint64_t>() > 1000 ? 1000 : v.get<int64_t>();
    if (d >= 29 && d <= 31)
      return Bad(Quote(path) + " is " + std::to_string(d) +
                     ", a date that not every month has; use \"Last\" for the month's last day.",
                 path);
    if (d < 1 || d > 31) return Bad(Quote(path) + " is " + Show(v) + forms, path);
    return MonthDay::Date(static_cast<int>(d));
  }
  if (!v.is_string()) return Bad(Quote(path) + " is " + Show(v) + forms, path);
  const std::string text = v.get<std::string>();
  if (EqualsIgnoreCase(text, "Last")) return MonthDay::LastDay();
  const size_t space = text.find(' ');
  if (space != std::string::npos) {
    const std::string_view week_name = std::string_view(text).substr(0, space);
    const std::string_view day_name = std::string_view(text).substr(space + 1);
    std::optional<WeekOfMonth> week;
    for (int w = 1; w <= 5; ++w)
      if (EqualsIgnoreCase(week_name, kWeekNames[w])) week = static_cast<WeekOfMonth>(w);
    auto day = ParseWeekday(day_name);
    if (week && day) return MonthDay::Nth(*week, *day);
  }
  return Bad(Quote(path) + " is " + Quote(text) + forms, path);
}

Result<std::vector<MonthDay>> ParseMonthDays(const Json& obj, const std::string& path) {
  const std::string p = Join(path, "daysOfMonth");
  const Json* v = Field(obj, "daysOfMonth");
  if (!v)
    return Bad(Quote(p) +
                   " is required: which day of the month to keep, e.g. [1] or "
                   "[\"First Sunday\"].",
               p);
  RETURN_IF_ERROR(RequireArray(*v, p, 31, "days of the month"));
  std::vector<MonthDay> days;
  for (size_t i = 0; i < v->size(); ++i) {
    ASSIGN_OR_RETURN(MonthDay d, ParseMonthDay((*v)[i], At(p, i)));
    if (std::find(days.begin(), days.end(), d) != days.end())
      return Bad(Quote(At(p, i)) + " repeats " + d.ToJson().dump() + "; list each day once.",
                 At(p, i));
    days.push_back(d);
  }
  return days;
}

Result<int> ParseCount(const Json& tier, const std::string& path, const char* tier_name, int max) {
  const std::string p = Join(path, "count");
  const Json* c = Field(tier, "count");
  if (!c) return Bad(Quote(p) + " is required: how many " + tier_name + " points to keep.", p);
  return GetInt(*c, p, 1, max,
                std::string(" Omit '") + tier_name + "' to keep no " + tier_name + " points.", "");
}

Result<RetentionRules> ParseRetention(const Json& v, const std::string& path) {
  RETURN_IF_ERROR(RequireObject(v, path));
  RETURN_IF_ERROR(RejectUnknownFields(v, path, {"hourly", "daily", "weekly", "monthly", "yearly"}));
  RetentionRules r;
  if (const Json* t = Field(v, "hourly")) {
    const std::string p = Join(path, "hourly");
    RETURN_IF_ERROR(RequireObject(*t, p));
    RETURN_IF_ERROR(RejectUnknownFields(*t, p, {"count"}));
    ASSIGN_OR_RETURN(r.hourly, ParseCount(*t, p, "hourly", kMaxHourlyCount));
  }
  if (const Json* t = Field(v, "daily")) {
    const std::string p = Join(path, "daily");
    RETURN_IF_ERROR(RequireObject(*t, p));
    RETURN_IF_ERROR(RejectUnknownFields(*t, p, {"count"}));
    ASSIGN_OR_RETURN(r.daily, ParseCount(*t, p, "daily", kMaxDailyCount));
  }
  if (const Json* t = Field(v, "weekly")) {
    const std::string p = Join(path, "weekly");
    RETURN_IF_ERROR(RequireObject(*t, p));
    RETURN_IF_ERROR(RejectUnknownFields(*t, p, {"count", "daysOfWeek"}));
    RetentionRules::Weekly w;
    ASSIGN_OR_RETURN(w.count, ParseCount(*t, p, "weekly", kMaxWeeklyCount));
    const std::string dp = Join(p, "daysOfWeek");
    const Json* days = Field(*t, "daysOfWeek");
    if (!days)
      return Bad(Quote(dp) +
                     " is required: the day of the week whose point to keep, e.g. "
                     "[\"Sunday\"].",
                 dp);
    ASSIGN_OR_RETURN(w.days_of_week, GetWeekdays(*days, dp));
    r.weekly = std::move(w);
  }
  if (const Json* t = Field(v, "monthly")) {
    const std::string p = Join(path, "monthly");
    RETURN_IF_ERROR(RequireObject(*t, p));
    RETURN_IF_ERROR(RejectUnknownFields(*t, p, {"count", "daysOfMonth"}));
    RetentionRules::Monthly m;
    ASSIGN_OR_RETURN(m.count, ParseCount(*t, p, "monthly", kMaxMonthlyCount));
    ASSIGN_OR_RETURN(m.days_of_month, ParseMonthDays(*t, p));
    r.monthly = std::move(m);
  }
  if (const Json* t = Field(v, "yearly")) {
    const std::string p = Join(path, "yearly");
    RETURN_IF_ERROR(RequireObject(*t, p));
    RETURN_IF_ERROR(RejectUnknownFields(*t, p, {"count", "monthsOfYear", "daysOfMonth"}));
    RetentionRules::Yearly y;
    ASSIGN_OR_RETURN(y.count, ParseCount(*t, p, "yearly", kMaxYearlyCount));
    const std::string mp = Join(p, "monthsOfYear");
    const Json* months = Field(*t, "monthsOfYear");
    if (!months)
      return Bad(Quote(mp) + " is required: the month whose point to keep, e.g. [\"January\"].",
                 mp);
    RETURN_IF_ERROR(RequireArray(*months, mp, 12, "month names"));
    for (size_t i = 0; i < months->size(); ++i) {
      ASSIGN_OR_RETURN(std::string name, GetString((*months)[i], At(mp, i)));
      auto month = ParseMonth(name);
      if (!month)
        return Bad(
            Quote(At(mp, i)) + " is " + Quote(name) + "; use a month name, January to December.",
            At(mp, i));
      if (std::find(y.months_of_year.begin(), y.months_of_year.end(), *month) !=
          y.months_of_year.end())
        return Bad(Quote(At(mp, i)) + " repeats " + MonthName(*month) + "; list each month once.",
                   At(mp, i));
      y.months_of_year.push_back(*month);
    }
    std::sort(y.months_of_year.begin(), y.months_of_year.end());
    ASSIGN_OR_RETURN(y.days_of_month, ParseMonthDays(*t, p));
    r.yearly = std::move(y);
  }
  if (!r.hourly && !r.daily && !r.weekly && !r.monthly && !r.yearly)
    return Bad(Quote(path) +
                   " keeps nothing; set at least one of hourly, daily, weekly, monthly "
                   "or yearly.",
               path);
  return r;
}

// With a Weekly schedule only some weekdays have points: retention must refer to those.
Status CheckRetentionAgainstSchedule(const BackupSchedule& s, const RetentionRules& r) {
  if (s.frequency != ScheduleFrequency::kWeekly) return Status::Ok();  // every day has backups
  auto scheduled = [&](Weekday d) {
    return std::find(s.days.begin(), s.days.end(), d) != s.days.end();
  };
  const std::string backs_up = "the schedule backs up only on " + DayList(s.days);
  if (r.weekly) {
    for (size_t i = 0; i < r.weekly->days_of_week.size(); ++i) {
      const Weekday d = r.weekly->days_of_week[i];
      if (scheduled(d)) continue;
      const std::string p = "retention.weekly.daysOfWeek";
      return Bad(Quote(p) + " includes " + WeekdayName(d) + ", but " + backs_up +
                     ", so no weekly point could ever be kept from " + WeekdayName(d) +
                     ". Keep points from a scheduled day instead.",
                 p);
    }
  }
  auto check_days = [&](const std::vector<MonthDay>& days, const std::string& p) -> Status {
    for (size_t i = 0; i < days.size(); ++i) {
      const MonthDay& d = days[i];
      if (d.kind == MonthDay::Kind::kWeekday) {
        if (scheduled(d.weekday)) continue;
        return Bad(Quote(At(p, i)) + " is " + d.ToJson().dump() + ", but " + backs_up +
                       ", so that day never has a point to keep. Use a scheduled day, e.g. \"" +
                       kWeekNames[static_cast<int>(d.week)] + " " + WeekdayName(s.days[0]) + "\".",
                   At(p, i));
      }
      return Bad(Quote(At(p, i)) + " is " + d.ToJson().dump() + ", but " + backs_up +
                     ", so that date has a point only in the months where it falls on one of "
                     "those days. Use a weekday form such as \"First " +
                     WeekdayName(s.days[0]) + "\".",
                 At(p, i));
    }
    return Status::Ok();
  };
  if (r.monthly)
    RETURN_IF_ERROR(check_days(r.monthly->days_of_month, "retention.monthly.daysOfMonth"));
  if (r.yearly)
    RETURN_IF_ERROR(check_days(r.yearly->days_of_month, "retention.yearly.daysOfMonth"));
  return Status::Ok();
}

Json WeekdaysToJson(const std::vector<Weekday>& days) {
  Json out = Json::array();
  for (Weekday d : days) out.push_back(WeekdayName(d));
  return out;
}

Json MonthDaysToJson(const std::vector<MonthDay>& days) {
  Json out = Json::array();
  for (const MonthDay& d : days) out.push_back(d.ToJson());
  return out;
}

}  // namespace

const char* ScheduleFrequencyName(ScheduleFrequency f) {
  switch (f) {
    case ScheduleFrequency::kHourly: return "Hourly";
    case ScheduleFrequency::kDaily: return "Daily";
    case ScheduleFrequency::kWeekly: return "Weekly";
  }
  return "Daily";
}

bool MonthDay::Matches(CivilDate d, Weekday wd) const {
  switch (kind) {
    case Kind::kDate: return d.day == date;
    case Kind::kLastDay: return d.day == DaysInMonth(d.year, d.month);
    case Kind::kWeekday:
      if (wd != weekday) return false;
      if (week == WeekOfMonth::kLast) return d.day + 7 > DaysInMonth(d.year, d.month);
      return (d.day - 1) / 7 + 1 == static_cast<int>(week);
  }
  return false;
}

Json MonthDay::ToJson() const {
  switch (kind) {
    case Kind::kDate: return date;
    case Kind::kLastDay: return "Last";
    case Kind::kWeekday:
      return std::string(kWeekNames[static_cast<int>(week)]) + " " + WeekdayName(weekday);
  }
  return date;
}

std::string FormatUtcOffset(int offset_minutes) {
  if (offset_minutes == 0) return "UTC";
  const int a = offset_minutes < 0 ? -offset_minutes : offset_minutes;
  return (offset_minutes < 0 ? "-" : "+") + FormatTimeOfDay(a);
}

Result<BackupPolicy> ParseBackupPolicy(const Json& properties) {
  RETURN_IF_ERROR(RequireObject(properties, ""));
  RETURN_IF_ERROR(RejectUnknownFields(properties, "",
                                      {"schedule", "timeZone", "retention", "onDemandRetentionDays",
                                       "consistency", "protectedItemsCount", "provisioningState"}));
  BackupPolicy p;
  const Json* schedule = Field(properties, "schedule");
  if (!schedule)
    return Bad(
        "'schedule' is required: when backups run, e.g. {\"frequency\": \"Daily\", "
        "\"times\": [\"02:00\"]}.",
        "schedule");
  ASSIGN_OR_RETURN(p.schedule, ParseSchedule(*schedule, "schedule"));
  if (const Json* tz = Field(properties, "timeZone")) {
    ASSIGN_OR_RETURN(p.utc_offset_minutes, ParseUtcOffset(*tz, "timeZone"));
  }
  const Json* retention = Field(properties, "retention");
  if (!retention)
    return Bad(
        "'retention' is required: how many daily, weekly, monthly or yearly points to keep, "
        "e.g. {\"daily\": {\"count\": 30}}.",
        "retention");
  ASSIGN_OR_RETURN(p.retention, ParseRetention(*retention, "retention"));
  RETURN_IF_ERROR(CheckRetentionAgainstSchedule(p.schedule, p.retention));
  if (const Json* days = Field(properties, "onDemandRetentionDays")) {
    ASSIGN_OR_RETURN(p.on_demand_retention_days,
                     GetInt(*days, "onDemandRetentionDays", 1, kMaxOnDemandRetentionDays));
  }
  if (const Json* c = Field(properties, "consistency")) {
    ASSIGN_OR_RETURN(std::string name, GetString(*c, "consistency"));
    ASSIGN_OR_RETURN(p.consistency, ParseConsistency(name));
  }
  return p;
}

Json BackupPolicyToJson(const BackupPolicy& p) {
  Json schedule = {{"frequency", ScheduleFrequencyName(p.schedule.frequency)}};
  if (p.schedule.frequency == ScheduleFrequency::kHourly) {
    schedule["intervalHours"] = p.schedule.interval_hours;
    schedule["windowStartTime"] = FormatTimeOfDay(p.schedule.window_start_minute);
    schedule["windowDurationHours"] = p.schedule.window_duration_hours;
  } else {
    if (p.schedule.frequency == ScheduleFrequency::kWeekly)
      schedule["days"] = WeekdaysToJson(p.schedule.days);
    Json times = Json::array();
    for (int t : p.schedule.times) times.push_back(FormatTimeOfDay(t));
    schedule["times"] = std::move(times);
  }
  Json retention = Json::object();
  const RetentionRules& r = p.retention;
  if (r.hourly) retention["hourly"] = {{"count", *r.hourly}};
  if (r.daily) retention["daily"] = {{"count", *r.daily}};
  if (r.weekly)
    retention["weekly"] = {{"count", r.weekly->count},
                           {"daysOfWeek", WeekdaysToJson(r.weekly->days_of_week)}};
  if (r.monthly)
    retention["monthly"] = {{"count", r.monthly->count},
                            {"daysOfMonth", MonthDaysToJson(r.monthly->days_of_month)}};
  if (r.yearly) {
    Json months = Json::array();
    for (int m : r.yearly->months_of_year) months.push_back(MonthName(m));
    retention["yearly"] = {{"count", r.yearly->count},
                           {"monthsOfYear", std::move(months)},
                           {"daysOfMonth", MonthDaysToJson(r.yearly->days_of_month)}};
  }
  return {{"schedule", std::move(schedule)},
          {"timeZone", FormatUtcOffset(p.utc_offset_minutes)},
          {"retention", std::move(retention)},
          {"onDemandRetentionDays", p.on_demand_retention_days},
          {"consistency", ConsistencyName(p.consistency)}};
}

}  // namespace stratus::recovery::policy
