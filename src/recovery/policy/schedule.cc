#include "recovery/policy/schedule.h"

#include <algorithm>

namespace stratus::recovery::policy {
namespace {

// Appends the runs that belong to local day `day` (local milliseconds, ascending). An Hourly
// window starting late may run past midnight: those runs still belong to the day the window
// opened. Runs of consecutive days never interleave (a window is at most 24 hours).
void AppendRunsOfLocalDay(const BackupSchedule& s, int64_t day, std::vector<int64_t>* out) {
  const int64_t midnight = day * kMsPerDay;
  switch (s.frequency) {
    case ScheduleFrequency::kHourly:
      if (s.interval_hours <= 0) return;
      for (int h = 0; h < s.window_duration_hours; h += s.interval_hours)
        out->push_back(midnight + s.window_start_minute * kMsPerMinute + h * kMsPerHour);
      return;
    case ScheduleFrequency::kWeekly:
      if (std::find(s.days.begin(), s.days.end(), WeekdayOfDays(day)) == s.days.end()) return;
      [[fallthrough]];
    case ScheduleFrequency::kDaily:
      for (int t : s.times) out->push_back(midnight + t * kMsPerMinute);
      return;
  }
}

}  // namespace

std::optional<int64_t> NextRun(const BackupPolicy& policy, int64_t after_ms) {
  const int64_t offset_ms = policy.utc_offset_minutes * kMsPerMinute;
  const int64_t local_after = after_ms + offset_ms;
  const int64_t first_day = FloorDiv(local_after, kMsPerDay) - 1;  // a window may spill over
  std::vector<int64_t> runs;
  // Any schedule with runs has one within 8 days (Weekly: same weekday next week).
  for (int64_t day = first_day; day <= first_day + 9; ++day) {
    runs.clear();
    AppendRunsOfLocalDay(policy.schedule, day, &runs);
    for (int64_t local : runs)
      if (local > local_after) return local - offset_ms;
  }
  return std::nullopt;
}

std::vector<int64_t> NextRunsAfter(const BackupPolicy& policy, int64_t after_ms, int n) {
  std::vector<int64_t> out;
  int64_t t = after_ms;
  for (int i = 0; i < n; ++i) {
    auto next = NextRun(policy, t);
    if (!next) break;
    out.push_back(*next);
    t = *next;
  }
  return out;
}

int64_t MinRunGapMs(const BackupPolicy& policy) {
  // Every schedule repeats weekly: two weeks plus a day of runs show every gap, the
  // week-to-week one included.
  std::vector<int64_t> runs;
  for (int64_t day = 0; day <= 15; ++day) AppendRunsOfLocalDay(policy.schedule, day, &runs);
  int64_t gap = 0;
  for (size_t i = 1; i < runs.size(); ++i) {
    const int64_t d = runs[i] - runs[i - 1];
    if (gap == 0 || d < gap) gap = d;
  }
  return gap;
}

int64_t StaggerBoundMs(const BackupPolicy& policy) {
  return std::min(kMaxStaggerMs, MinRunGapMs(policy) / 10);
}

int64_t Stagger(std::string_view protected_item_id, const BackupPolicy& policy) {
  const int64_t bound_s = StaggerBoundMs(policy) / 1000;
  if (bound_s <= 0) return 0;
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : protected_item_id) {
    h ^= (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;  // ASCII only: locale-independent
    h *= 0x100000001b3ULL;
  }
  // splitmix64 finalizer: FNV's low bits are weak for ids that differ only at the end.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return static_cast<int64_t>(h % static_cast<uint64_t>(bound_s)) * 1000;
}

}  // namespace stratus::recovery::policy
