#include "recovery/policy/retention.h"

#include <algorithm>
#include <functional>
#include <optional>

namespace stratus::recovery::policy {
namespace {

// Bits of the reasons a point is kept, in listing order.
enum ReasonBit : unsigned {
  kLatest = 1u << 0,
  kHourly = 1u << 1,
  kDaily = 1u << 2,
  kWeekly = 1u << 3,
  kMonthly = 1u << 4,
  kYearly = 1u << 5,
  kOnDemand = 1u << 6,
};

constexpr std::pair<ReasonBit, const char*> kReasonNames[] = {
    {kLatest, kReasonLatest},     {kHourly, kReasonHourly},   {kDaily, kReasonDaily},
    {kWeekly, kReasonWeekly},     {kMonthly, kReasonMonthly}, {kYearly, kReasonYearly},
    {kOnDemand, kReasonOnDemand},
};

// A point's position in the policy's local calendar.
struct LocalTime {
  int64_t hour;  // hours since the epoch, local
  int64_t day;   // days since the epoch, local
  CivilDate date;
  Weekday weekday;
};

LocalTime ToLocal(int64_t utc_ms, int offset_minutes) {
  const int64_t local_ms = utc_ms + offset_minutes * kMsPerMinute;
  LocalTime t;
  t.hour = FloorDiv(local_ms, kMsPerHour);
  t.day = FloorDiv(local_ms, kMsPerDay);
  t.date = CivilFromDays(t.day);
  t.weekday = WeekdayOfDays(t.day);
  return t;
}

bool AnyMonthDay(const std::vector<MonthDay>& days, const LocalTime& t) {
  return std::any_of(days.begin(), days.end(),
                     [&](const MonthDay& d) { return d.Matches(t.date, t.weekday); });
}

}  // namespace

int64_t OnDemandExpiryMs(const BackupPolicy& policy, const PointInfo& point) {
  if (point.retain_until_ms > 0) return point.retain_until_ms;
  return point.time_ms + policy.on_demand_retention_days * kMsPerDay;
}

PruneResult Prune(const BackupPolicy& policy, const std::vector<PointInfo>& points,
                  int64_t now_ms) {
  // Newest first.
  std::vector<size_t> order(points.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto newer = [&](size_t a, size_t b) {
    const int64_t ta = points[a].CalendarMs(), tb = points[b].CalendarMs();
    if (ta != tb) return ta > tb;
    return points[a].id > points[b].id;
  };
  std::sort(order.begin(), order.end(), newer);

  std::vector<LocalTime> local(points.size());
  for (size_t i = 0; i < points.size(); ++i)
    local[i] = ToLocal(points[i].CalendarMs(), policy.utc_offset_minutes);

  std::vector<unsigned> reasons(points.size(), 0);
  if (!order.empty()) reasons[order.front()] |= kLatest;

  // One GFS tier: the newest qualifying scheduled point of each of the `count` most recent
  // periods that have one. Period keys grow with time, so walking newest-first a new key means a
  // new (older) period.
  auto apply_tier = [&](int count, ReasonBit bit,
                        const std::function<bool(const LocalTime&)>& qualifies,
                        const std::function<int64_t(const LocalTime&)>& period) {
    int kept = 0;
    std::optional<int64_t> last_period;
    for (size_t i : order) {
      if (kept >= count) return;
      if (points[i].on_demand || !qualifies(local[i])) continue;
      const int64_t key = period(local[i]);
      if (last_period && *last_period == key) continue;  // an older point of the same period
      last_period = key;
      reasons[i] |= bit;
      ++kept;
    }
  };
  const RetentionRules& r = policy.retention;
  auto every = [](const LocalTime&) { return true; };
  if (r.hourly) apply_tier(*r.hourly, kHourly, every, [](const LocalTime& t) { return t.hour; });
  if (r.daily) apply_tier(*r.daily, kDaily, every, [](const LocalTime& t) { return t.day; });
  if (r.weekly) {
    const auto& days = r.weekly->days_of_week;
    apply_tier(
        r.weekly->count, kWeekly,
        [&](const LocalTime& t) {
          return std::find(days.begin(), days.end(), t.weekday) != days.end();
        },
        [](const LocalTime& t) { return IsoWeekIndex(t.day); });
  }
  auto month_key = [](const LocalTime& t) {
    return static_cast<int64_t>(t.date.year) * 12 + (t.date.month - 1);
  };
  if (r.monthly) {
    apply_tier(
        r.monthly->count, kMonthly,
        [&](const LocalTime& t) { return AnyMonthDay(r.monthly->days_of_month, t); }, month_key);
  }
  if (r.yearly) {
    const auto& months = r.yearly->months_of_year;
    apply_tier(
        r.yearly->count, kYearly,
        [&](const LocalTime& t) {
          return std::find(months.begin(), months.end(), t.date.month) != months.end() &&
                 AnyMonthDay(r.yearly->days_of_month, t);
        },
        [](const LocalTime& t) { return static_cast<int64_t>(t.date.year); });
  }
  for (size_t i = 0; i < points.size(); ++i)
    if (points[i].on_demand && now_ms < OnDemandExpiryMs(policy, points[i]))
      reasons[i] |= kOnDemand;

  PruneResult out;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const size_t i = *it;
    if (reasons[i] == 0) {
      out.expire.push_back(points[i]);
      continue;
    }
    KeptPoint k{points[i], {}};
    for (const auto& [bit, name] : kReasonNames)
      if (reasons[i] & bit) k.reasons.push_back(name);
    out.keep.push_back(std::move(k));
  }
  return out;
}

}  // namespace stratus::recovery::policy
