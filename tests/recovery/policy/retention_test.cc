#include "recovery/policy/retention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "recovery/policy/policy_test_util.h"
#include "recovery/policy/schedule.h"

namespace stratus::recovery::policy {
namespace {

using testing::Iso;
using testing::MustParse;
using testing::Utc;
using Strings = std::vector<std::string>;

// A Daily 02:00 UTC schedule with the given retention.
BackupPolicy DailyWith(const std::string& retention, const std::string& extra = "") {
  return MustParse(R"({"schedule": {"frequency": "Daily", "times": ["02:00"]},
                       "retention": )" +
                   retention + extra + "}");
}

PointInfo Scheduled(int64_t t) { return {Iso(t), t, false, 0}; }
PointInfo OnDemand(int64_t t, int64_t retain_until = 0) {
  return {"od-" + Iso(t), t, true, retain_until};
}

// Scheduled points at 02:00 on each of `days` consecutive days from y-m-d.
std::vector<PointInfo> DailyPoints(int y, int m, int d, int days) {
  std::vector<PointInfo> out;
  for (int i = 0; i < days; ++i) out.push_back(Scheduled(Utc(y, m, d, 2) + i * kMsPerDay));
  return out;
}

// "2024-01-01" for each kept point (UTC date of its time).
Strings KeptDates(const PruneResult& r) {
  Strings out;
  for (const KeptPoint& k : r.keep) out.push_back(Iso(k.point.time_ms).substr(0, 10));
  return out;
}
Strings KeptIds(const PruneResult& r) {
  Strings out;
  for (const KeptPoint& k : r.keep) out.push_back(k.point.id);
  return out;
}
Strings ExpiredIds(const PruneResult& r) {
  Strings out;
  for (const PointInfo& p : r.expire) out.push_back(p.id);
  return out;
}
std::map<std::string, Strings> ReasonsByDate(const PruneResult& r) {
  std::map<std::string, Strings> out;
  for (const KeptPoint& k : r.keep) out[Iso(k.point.time_ms).substr(0, 10)] = k.reasons;
  return out;
}

// Invariants of every Prune result.
void ExpectPartition(const std::vector<PointInfo>& in, const PruneResult& r) {
  ASSERT_EQ(r.keep.size() + r.expire.size(), in.size());
  std::vector<std::string> all;
  for (const auto& k : r.keep) {
    EXPECT_FALSE(k.reasons.empty()) << k.point.id;
    all.push_back(k.point.id);
  }
  for (const auto& e : r.expire) all.push_back(e.id);
  std::vector<std::string> want;
  for (const auto& p : in) want.push_back(p.id);
  std::sort(all.begin(), all.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(all, want);
  if (!in.empty()) {
    const auto newest = std::max_element(in.begin(), in.end(), [](const auto& a, const auto& b) {
      return a.time_ms != b.time_ms ? a.time_ms < b.time_ms : a.id < b.id;
    });
    EXPECT_EQ(r.keep.back().point.id, newest->id);
    EXPECT_EQ(r.keep.back().reasons.front(), kReasonLatest);
  }
  for (size_t i = 1; i < r.keep.size(); ++i)
    EXPECT_LE(r.keep[i - 1].point.time_ms, r.keep[i].point.time_ms);
}

TEST(RetentionTest, NothingToPrune) {
  const PruneResult r = Prune(DailyWith(R"({"daily": {"count": 7}})"), {}, Utc(2024, 1, 1));
  EXPECT_TRUE(r.keep.empty());
  EXPECT_TRUE(r.expire.empty());
}

TEST(RetentionTest, DailyKeepsTheNewestPointOfEachOfTheLastNDays) {
  const BackupPolicy p = MustParse(R"({"schedule": {"frequency": "Daily",
                                                    "times": ["02:00", "14:00"]},
                                       "retention": {"daily": {"count": 3}}})");
  std::vector<PointInfo> points;
  for (int d = 1; d <= 5; ++d) {
    points.push_back(Scheduled(Utc(2024, 3, d, 2)));
    points.push_back(Scheduled(Utc(2024, 3, d, 14)));
  }
  points.push_back(Scheduled(Utc(2024, 3, 6, 2)));  // today, 14:00 not yet taken
  const PruneResult r = Prune(p, points, Utc(2024, 3, 6, 3));
  ExpectPartition(points, r);
  EXPECT_EQ(KeptIds(r), (Strings{"2024-03-04T14:00:00.000Z", "2024-03-05T14:00:00.000Z",
                                 "2024-03-06T02:00:00.000Z"}));
  EXPECT_EQ(r.keep.back().reasons, (Strings{"latest", "daily"}));
  EXPECT_EQ(r.keep.front().reasons, (Strings{"daily"}));
}

TEST(RetentionTest, DaysWithoutPointsDoNotCount) {
  // Backups stopped for three weeks: the last good points are not aged out.
  auto points = DailyPoints(2024, 3, 1, 5);
  const PruneResult r = Prune(DailyWith(R"({"daily": {"count": 3}})"), points, Utc(2024, 3, 26));
  EXPECT_EQ(KeptDates(r), (Strings{"2024-03-03", "2024-03-04", "2024-03-05"}));
}

TEST(RetentionTest, HourlyKeepsIntradayPoints) {
  const BackupPolicy p = MustParse(R"({"schedule": {"frequency": "Hourly", "intervalHours": 4},
                                       "retention": {"hourly": {"count": 4},
                                                     "daily": {"count": 2}}})");
  std::vector<PointInfo> points;
  for (int64_t t = Utc(2024, 3, 1); t <= Utc(2024, 3, 3, 20); t += 4 * kMsPerHour)
    points.push_back(Scheduled(t));
  // Two points in the same clock hour (a manual retry): the newer one counts for the hour.
  points.push_back(Scheduled(Utc(2024, 3, 3, 16, 30)));
  const PruneResult r = Prune(p, points, Utc(2024, 3, 3, 21));
  ExpectPartition(points, r);
  EXPECT_EQ(KeptIds(r), (Strings{"2024-03-02T20:00:00.000Z", "2024-03-03T08:00:00.000Z",
                                 "2024-03-03T12:00:00.000Z", "2024-03-03T16:30:00.000Z",
                                 "2024-03-03T20:00:00.000Z"}));
  EXPECT_EQ(r.keep.back().reasons, (Strings{"latest", "hourly", "daily"}));
  EXPECT_EQ(r.keep.front().reasons, (Strings{"daily"}));
}

TEST(RetentionTest, WeeklyKeepsOnePointPerIsoWeekOnTheChosenDays) {
  // 2024-03-03, 10, 17, 24 and 31 are Sundays.
  auto points = DailyPoints(2024, 3, 1, 31);
  const PruneResult r = Prune(DailyWith(R"({"weekly": {"count": 3, "daysOfWeek": ["Sunday"]}})"),
                              points, Utc(2024, 4, 1));
  ExpectPartition(points, r);
  EXPECT_EQ(KeptDates(r), (Strings{"2024-03-17", "2024-03-24", "2024-03-31"}));
}

TEST(RetentionTest, WeeklyWithTwoDaysKeepsTheWeeksNewestAndFallsBack) {
  // Saturday and Sunday: a week with both keeps Sunday; the week whose Sunday failed keeps
  // Saturday.
  auto points = DailyPoints(2024, 3, 1, 31);
  points.erase(std::remove_if(points.begin(), points.end(),
                              [](const PointInfo& p) { return p.time_ms == Utc(2024, 3, 24, 2); }),
               points.end());
  const PruneResult r =
      Prune(DailyWith(R"({"weekly": {"count": 3, "daysOfWeek": ["Saturday", "Sunday"]}})"), points,
            Utc(2024, 4, 1));
  EXPECT_EQ(KeptDates(r), (Strings{"2024-03-17", "2024-03-23", "2024-03-31"}));
}

TEST(RetentionTest, MonthlyForms) {
  auto points = DailyPoints(2024, 1, 1, 366);  // all of 2024, a leap year
  auto monthly = [&](const std::string& days, int count) {
    return KeptDates(Prune(DailyWith(R"({"monthly": {"count": )" + std::to_string(count) +
                                     R"(, "daysOfMonth": )" + days + "}}"),
                           points, Utc(2025, 1, 1)));
  };
  EXPECT_EQ(monthly("[1]", 3), (Strings{"2024-10-01", "2024-11-01", "2024-12-01", "2024-12-31"}));
  EXPECT_EQ(monthly(R"(["Last"])", 12),
            (Strings{"2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31",
                     "2024-06-30", "2024-07-31", "2024-08-31", "2024-09-30", "2024-10-31",
                     "2024-11-30", "2024-12-31"}));
  EXPECT_EQ(monthly(R"(["First Sunday"])", 4),
            (Strings{"2024-09-01", "2024-10-06", "2024-11-03", "2024-12-01", "2024-12-31"}));
  EXPECT_EQ(monthly(R"(["Last Thursday"])", 3),
            (Strings{"2024-10-31", "2024-11-28", "2024-12-26", "2024-12-31"}));
  const Strings last_thursdays = monthly(R"(["Last Thursday"])", 12);
  EXPECT_NE(std::find(last_thursdays.begin(), last_thursdays.end(), "2024-02-29"),
            last_thursdays.end());  // leap day
  // Mixed forms: one point per month, the newest matching any entry.
  EXPECT_EQ(monthly(R"([1, "Second Monday"])", 2),
            (Strings{"2024-11-11", "2024-12-09", "2024-12-31"}));
}

TEST(RetentionTest, YearlyOnChosenMonthsAndDays) {
  auto points = DailyPoints(2021, 1, 1, 365 * 3 + 366 + 10);  // 2021 .. 2025-01-10
  const PruneResult r =
      Prune(DailyWith(R"({"yearly": {"count": 3, "monthsOfYear": ["June", "February"],
                                     "daysOfMonth": ["Last"]}})"),
            points, Utc(2025, 2, 1));
  // Per year the newest match wins (June 30); the latest point is kept as well.
  EXPECT_EQ(KeptDates(r), (Strings{"2022-06-30", "2023-06-30", "2024-06-30", "2025-01-10"}));
  EXPECT_EQ(r.keep.back().reasons, (Strings{"latest"}));
}

TEST(RetentionTest, EveryReasonIsListed) {
  // 2024-09-01 is a Sunday, the 1st, and in September.
  auto points = DailyPoints(2024, 8, 20, 13);  // .. 2024-09-01
  const PruneResult r =
      Prune(DailyWith(R"({"daily": {"count": 2}, "weekly": {"count": 1, "daysOfWeek": ["Sunday"]},
                   "monthly": {"count": 1, "daysOfMonth": [1]},
                   "yearly": {"count": 1, "monthsOfYear": ["September"],
                              "daysOfMonth": ["First Sunday"]}})"),
            points, Utc(2024, 9, 1, 3));
  EXPECT_EQ(ReasonsByDate(r),
            (std::map<std::string, Strings>{
                {"2024-08-31", {"daily"}},
                {"2024-09-01", {"latest", "daily", "weekly", "monthly", "yearly"}}}));
}

TEST(RetentionTest, CalendarFollowsThePolicyOffset) {
  // 2024-03-10T23:30Z is Sunday in UTC but Monday 01:30 at +02:00.
  const std::vector<PointInfo> points = {Scheduled(Utc(2024, 3, 10, 23, 30)),
                                         Scheduled(Utc(2024, 3, 11, 23, 30))};
  const std::string retention = R"({"weekly": {"count": 5, "daysOfWeek": ["Sunday"]}})";
  const BackupPolicy utc = DailyWith(retention);
  const BackupPolicy east = DailyWith(retention, R"(, "timeZone": "+02:00")");
  EXPECT_EQ(Prune(utc, points, Utc(2024, 3, 12)).keep.front().reasons, (Strings{"weekly"}));
  const PruneResult r = Prune(east, points, Utc(2024, 3, 12));
  EXPECT_EQ(ExpiredIds(r), (Strings{"2024-03-10T23:30:00.000Z"}));
  // Daily buckets move too: at -01:00, 00:30Z and 23:30Z the day before are the same local day.
  const std::vector<PointInfo> pair = {Scheduled(Utc(2024, 3, 10, 23, 30)),
                                       Scheduled(Utc(2024, 3, 11, 0, 30)),
                                       Scheduled(Utc(2024, 3, 12, 0, 30))};
  const std::string daily = R"({"daily": {"count": 3}})";
  EXPECT_EQ(Prune(DailyWith(daily), pair, Utc(2024, 3, 13)).keep.size(), 3u);
  EXPECT_EQ(
      ExpiredIds(Prune(DailyWith(daily, R"(, "timeZone": "-01:00")"), pair, Utc(2024, 3, 13))),
      (Strings{"2024-03-10T23:30:00.000Z"}));
}

TEST(RetentionTest, ScheduledPointsAreFiledUnderTheirNominalTime) {
  // Sunday 23:55's run started at 00:07 on Monday (stagger and a queue): still Sunday's point.
  const BackupPolicy p = MustParse(R"({"schedule": {"frequency": "Daily", "times": ["23:55"]},
                                       "retention": {"weekly": {"count": 2,
                                                                "daysOfWeek": ["Sunday"]}}})");
  PointInfo late = Scheduled(Utc(2024, 3, 11, 0, 7));
  late.scheduled_ms = Utc(2024, 3, 10, 23, 55);
  EXPECT_EQ(late.CalendarMs(), late.scheduled_ms);
  PointInfo monday = Scheduled(Utc(2024, 3, 11, 23, 58));
  monday.scheduled_ms = Utc(2024, 3, 11, 23, 55);
  const std::vector<PointInfo> points = {late, monday};
  const PruneResult r = Prune(p, points, Utc(2024, 3, 12));
  ASSERT_EQ(r.keep.size(), 2u);
  EXPECT_EQ(r.keep[0].point.id, late.id);
  EXPECT_EQ(r.keep[0].reasons, (Strings{"weekly"}));
  EXPECT_EQ(r.keep[1].reasons, (Strings{"latest"}));
  // Without the nominal time the late run would count as Monday's and expire.
  late.scheduled_ms = 0;
  EXPECT_EQ(ExpiredIds(Prune(p, {late, monday}, Utc(2024, 3, 12))), (Strings{late.id}));
  // On-demand points have no nominal time.
  PointInfo od = OnDemand(Utc(2024, 3, 11, 0, 7));
  od.scheduled_ms = Utc(2024, 3, 10, 23, 55);
  EXPECT_EQ(od.CalendarMs(), od.time_ms);
}

TEST(RetentionTest, OnDemandPointsExpireAfterTheirDays) {
  const BackupPolicy p =
      DailyWith(R"({"daily": {"count": 7}})", R"(, "onDemandRetentionDays": 10)");
  const int64_t taken = Utc(2024, 3, 5, 15);
  std::vector<PointInfo> points = DailyPoints(2024, 3, 1, 30);
  points.push_back(OnDemand(taken));
  const int64_t expiry = taken + 10 * kMsPerDay;
  EXPECT_EQ(OnDemandExpiryMs(p, points.back()), expiry);
  auto kept = [&](int64_t now) {
    const Strings ids = KeptIds(Prune(p, points, now));
    return std::find(ids.begin(), ids.end(), "od-2024-03-05T15:00:00.000Z") != ids.end();
  };
  EXPECT_TRUE(kept(expiry - 1));
  EXPECT_FALSE(kept(expiry));
  const PruneResult r = Prune(p, points, expiry - 1);
  EXPECT_EQ(ReasonsByDate(r)["2024-03-05"], (Strings{"onDemand"}));
}

TEST(RetentionTest, OnDemandRetainUntilOverridesThePolicy) {
  const BackupPolicy p = DailyWith(R"({"daily": {"count": 1}})", R"(, "onDemandRetentionDays": 1)");
  const int64_t until = Utc(2030, 1, 1);
  std::vector<PointInfo> points = {OnDemand(Utc(2024, 3, 5, 15), until),
                                   OnDemand(Utc(2024, 3, 6, 15)), Scheduled(Utc(2024, 4, 1, 2))};
  EXPECT_EQ(OnDemandExpiryMs(p, points[0]), until);
  EXPECT_EQ(KeptIds(Prune(p, points, Utc(2029, 12, 31))),
            (Strings{"od-2024-03-05T15:00:00.000Z", "2024-04-01T02:00:00.000Z"}));
  EXPECT_EQ(KeptIds(Prune(p, points, until)), (Strings{"2024-04-01T02:00:00.000Z"}));
}

TEST(RetentionTest, OnDemandPointsDoNotTakeScheduledSlots) {
  // An on-demand point later on the same day does not displace the scheduled daily point, and a
  // day with only an on-demand point does not use up a daily slot.
  const BackupPolicy p = DailyWith(R"({"daily": {"count": 2}})", R"(, "onDemandRetentionDays": 2)");
  std::vector<PointInfo> points = DailyPoints(2024, 3, 1, 3);  // 1, 2, 3 March
  points.push_back(OnDemand(Utc(2024, 3, 3, 18)));
  points.push_back(OnDemand(Utc(2024, 3, 4, 18)));  // no scheduled point on the 4th
  const PruneResult r = Prune(p, points, Utc(2024, 3, 4, 19));
  ExpectPartition(points, r);
  EXPECT_EQ(KeptIds(r), (Strings{"2024-03-02T02:00:00.000Z", "2024-03-03T02:00:00.000Z",
                                 "od-2024-03-03T18:00:00.000Z", "od-2024-03-04T18:00:00.000Z"}));
  // Once both on-demand points are past their day, only the scheduled ones remain, plus the
  // newest point of all.
  const PruneResult later = Prune(p, points, Utc(2024, 3, 20));
  EXPECT_EQ(KeptIds(later), (Strings{"2024-03-02T02:00:00.000Z", "2024-03-03T02:00:00.000Z",
                                     "od-2024-03-04T18:00:00.000Z"}));
  EXPECT_EQ(later.keep.back().reasons, (Strings{"latest"}));
}

TEST(RetentionTest, NewestPointSurvivesAPolicyThatKeepsNothingElse) {
  // Points Monday to Wednesday only; the edited policy keeps Sundays: everything would go, but
  // the newest point stays.
  auto points = DailyPoints(2024, 3, 4, 3);
  const PruneResult r = Prune(DailyWith(R"({"weekly": {"count": 4, "daysOfWeek": ["Sunday"]}})"),
                              points, Utc(2024, 4, 1));
  ExpectPartition(points, r);
  EXPECT_EQ(KeptDates(r), (Strings{"2024-03-06"}));
  EXPECT_EQ(r.keep.front().reasons, (Strings{"latest"}));
}

TEST(RetentionTest, TiesAreBrokenById) {
  const BackupPolicy p = DailyWith(R"({"daily": {"count": 1}})");
  const int64_t t = Utc(2024, 3, 1, 2);
  const std::vector<PointInfo> points = {
      {"b", t, false, 0}, {"a", t, false, 0}, {"c", t - kMsPerDay, false, 0}};
  const PruneResult r = Prune(p, points, t);
  EXPECT_EQ(KeptIds(r), (Strings{"b"}));
  EXPECT_EQ(ExpiredIds(r), (Strings{"c", "a"}));
}

TEST(RetentionTest, IndependentOfInputOrderAndIdempotent) {
  const BackupPolicy p = DailyWith(R"({"daily": {"count": 5},
                                       "weekly": {"count": 3, "daysOfWeek": ["Sunday"]},
                                       "monthly": {"count": 2, "daysOfMonth": ["Last"]}})");
  auto points = DailyPoints(2024, 1, 1, 120);
  points.push_back(OnDemand(Utc(2024, 4, 20, 9)));
  const int64_t now = Utc(2024, 4, 29, 12);
  const PruneResult first = Prune(p, points, now);
  ExpectPartition(points, first);
  std::mt19937 rng(7);
  for (int i = 0; i < 5; ++i) {
    std::shuffle(points.begin(), points.end(), rng);
    const PruneResult again = Prune(p, points, now);
    EXPECT_EQ(KeptIds(again), KeptIds(first));
    EXPECT_EQ(ExpiredIds(again), ExpiredIds(first));
  }
  std::vector<PointInfo> survivors;
  for (const auto& k : first.keep) survivors.push_back(k.point);
  const PruneResult second = Prune(p, survivors, now);
  EXPECT_TRUE(second.expire.empty());
  EXPECT_EQ(KeptIds(second), KeptIds(first));
}

// ---- Simulations: FakeClock stepping through every scheduled run -----------------------------

// Drives one protected item: at each due time (scheduled runs of `policy`, plus the on-demand
// times given) takes a point and prunes, as the scheduler will.
class Simulation {
 public:
  explicit Simulation(int64_t start_ms) : clock_(start_ms) {}

  // Runs until `end_ms` (inclusive). Returns how many points were taken.
  int RunUntil(const BackupPolicy& policy, int64_t end_ms,
               std::vector<int64_t> on_demand_times = {}) {
    std::sort(on_demand_times.begin(), on_demand_times.end());
    size_t next_od = 0;
    while (next_od < on_demand_times.size() && on_demand_times[next_od] <= clock_.NowMs())
      ++next_od;
    int taken = 0;
    for (;;) {
      const int64_t scheduled = NextRun(policy, clock_.NowMs()).value();
      const bool od = next_od < on_demand_times.size() && on_demand_times[next_od] < scheduled;
      const int64_t t = od ? on_demand_times[next_od] : scheduled;
      if (t > end_ms) break;
      clock_.SetMs(t);
      if (od) {
        ++next_od;
        points_.push_back(OnDemand(t));
      } else {
        points_.push_back(Scheduled(t));
      }
      ++taken;
      PruneNow(policy);
    }
    clock_.SetMs(std::max(clock_.NowMs(), end_ms));
    return taken;
  }

  // One prune at the current time (as after a policy edit). Returns the ids it expired.
  Strings PruneNow(const BackupPolicy& policy) {
    const PruneResult r = Prune(policy, points_, clock_.NowMs());
    ExpectPartition(points_, r);
    points_.clear();
    for (const auto& k : r.keep) points_.push_back(k.point);
    for (const auto& e : r.expire) all_expired_.push_back(e.id);
    last_ = r;
    return ExpiredIds(r);
  }

  Strings Dates() const { return KeptDates(last_); }
  Strings Ids() const { return KeptIds(last_); }
  const PruneResult& last() const { return last_; }
  const std::vector<PointInfo>& points() const { return points_; }
  size_t expired_count() const { return all_expired_.size(); }
  FakeClock& clock() { return clock_; }

 private:
  FakeClock clock_;
  std::vector<PointInfo> points_;
  Strings all_expired_;
  PruneResult last_;
};

constexpr const char* kGfsRetention = R"({
  "daily":   {"count": 7},
  "weekly":  {"count": 4, "daysOfWeek": ["Sunday"]},
  "monthly": {"count": 12, "daysOfMonth": [1]},
  "yearly":  {"count": 3, "monthsOfYear": ["January"], "daysOfMonth": [1]}})";

TEST(RetentionSimulationTest, FourHundredDaysOfDailyBackups) {
  const BackupPolicy p = DailyWith(kGfsRetention);
  Simulation sim(Utc(2024, 1, 1));
  // 2024-01-01 .. 2025-02-03: 400 days across the 2024 leap day and a year end.
  EXPECT_EQ(sim.RunUntil(p, Utc(2025, 2, 3, 12)), 400);
  EXPECT_EQ(sim.Dates(), (Strings{// yearly (January 1st; only two years exist yet)
                                  "2024-01-01",
                                  // monthly (the 1st of the last 12 months that have one)
                                  "2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01",
                                  "2024-07-01", "2024-08-01", "2024-09-01", "2024-10-01",
                                  "2024-11-01", "2024-12-01", "2025-01-01",
                                  // weekly (Sundays)
                                  "2025-01-12", "2025-01-19", "2025-01-26",
                                  // daily (the last 7 days; also holds Sunday 02-02 and the 1st)
                                  "2025-01-28", "2025-01-29", "2025-01-30", "2025-01-31",
                                  "2025-02-01", "2025-02-02", "2025-02-03"}));
  EXPECT_EQ(sim.points().size(), 22u);
  EXPECT_EQ(sim.expired_count(), 378u);
  auto reasons = ReasonsByDate(sim.last());
  EXPECT_EQ(reasons["2024-01-01"], (Strings{"yearly"}));
  EXPECT_EQ(reasons["2024-03-01"], (Strings{"monthly"}));
  EXPECT_EQ(reasons["2025-01-01"], (Strings{"monthly", "yearly"}));
  EXPECT_EQ(reasons["2025-01-12"], (Strings{"weekly"}));
  EXPECT_EQ(reasons["2025-02-01"], (Strings{"daily", "monthly"}));
  EXPECT_EQ(reasons["2025-02-02"], (Strings{"daily", "weekly"}));
  EXPECT_EQ(reasons["2025-02-03"], (Strings{"latest", "daily"}));
  // Leap day 2024-02-29 was an ordinary daily point and is long gone; 2024-02-01 fell out of
  // the 12 monthly slots when 2025-02-01 arrived.

  // Pruning every day gives exactly what one prune of all 400 points gives.
  const PruneResult batch = Prune(p, DailyPoints(2024, 1, 1, 400), sim.clock().NowMs());
  EXPECT_EQ(KeptIds(batch), sim.Ids());
}

TEST(RetentionSimulationTest, PolicyEditedMidYearAppliesAtTheNextPrune) {
  const BackupPolicy generous = DailyWith(R"({
      "daily":   {"count": 30},
      "weekly":  {"count": 8, "daysOfWeek": ["Sunday"]},
      "monthly": {"count": 12, "daysOfMonth": [1]},
      "yearly":  {"count": 3, "monthsOfYear": ["January"], "daysOfMonth": [1]}})");
  const BackupPolicy shrunk = DailyWith(R"({
      "daily":   {"count": 7},
      "weekly":  {"count": 4, "daysOfWeek": ["Sunday"]},
      "monthly": {"count": 3, "daysOfMonth": [1]}})");
  Simulation sim(Utc(2024, 1, 1));
  EXPECT_EQ(sim.RunUntil(generous, Utc(2024, 7, 18, 12)), 200);
  ASSERT_EQ(sim.points().size(), 40u);  // 30 daily + May 26, Jun 2/9/16 + Jan..Jun 1sts
  EXPECT_EQ(sim.Dates().front(), "2024-01-01");

  // The edit: the very next prune (no new backup needed) applies the smaller counts.
  const Strings expired = sim.PruneNow(shrunk);
  EXPECT_EQ(expired.size(), 27u);
  EXPECT_EQ(sim.Dates(),
            (Strings{"2024-05-01", "2024-06-01", "2024-06-23", "2024-06-30", "2024-07-01",
                     "2024-07-07", "2024-07-12", "2024-07-13", "2024-07-14", "2024-07-15",
                     "2024-07-16", "2024-07-17", "2024-07-18"}));
  // Among the expired: the yearly point (the tier is gone) and the old dailies.
  EXPECT_NE(std::find(expired.begin(), expired.end(), "2024-01-01T02:00:00.000Z"), expired.end());
  EXPECT_NE(std::find(expired.begin(), expired.end(), "2024-07-11T02:00:00.000Z"), expired.end());

  // Run on with the shrunk policy, then grow it back: growing keeps more from now on but cannot
  // bring back what was deleted.
  EXPECT_EQ(sim.RunUntil(shrunk, Utc(2024, 10, 27, 1)), 100);  // .. 2024-10-26
  EXPECT_TRUE(sim.PruneNow(generous).empty());
  EXPECT_EQ(sim.RunUntil(generous, Utc(2025, 2, 3, 12)), 100);  // 2024-10-27 .. 2025-02-03
  Strings want = {"2024-08-01", "2024-09-01", "2024-10-01", "2024-11-01", "2024-12-01",
                  "2024-12-15", "2024-12-22", "2024-12-29", "2025-01-01"};
  for (int d = 5; d <= 31; ++d) want.push_back(Iso(Utc(2025, 1, d)).substr(0, 10));
  for (int d = 1; d <= 3; ++d) want.push_back(Iso(Utc(2025, 2, d)).substr(0, 10));
  EXPECT_EQ(sim.Dates(), want);
}

TEST(RetentionSimulationTest, ScheduleEditedFromDailyToWeekly) {
  const BackupPolicy daily = DailyWith(R"({"daily": {"count": 14},
                                           "weekly": {"count": 4, "daysOfWeek": ["Sunday"]}})");
  const BackupPolicy wednesdays = MustParse(R"({
      "schedule": {"frequency": "Weekly", "days": ["Wednesday"], "times": ["02:00"]},
      "retention": {"weekly": {"count": 3, "daysOfWeek": ["Wednesday"]}}})");
  Simulation sim(Utc(2024, 3, 1));
  EXPECT_EQ(sim.RunUntil(daily, Utc(2024, 3, 31, 12)), 31);
  // After the edit nothing on a Sunday qualifies any more; Wednesdays from before the edit do.
  sim.PruneNow(wednesdays);
  EXPECT_EQ(sim.Dates(), (Strings{"2024-03-20", "2024-03-27", "2024-03-31"}));
  EXPECT_EQ(sim.RunUntil(wednesdays, Utc(2024, 4, 30)), 4);  // April 3, 10, 17, 24
  EXPECT_EQ(sim.Dates(), (Strings{"2024-04-10", "2024-04-17", "2024-04-24"}));
}

TEST(RetentionSimulationTest, HourlyScheduleAcrossTheLeapDay) {
  const BackupPolicy p = MustParse(R"({"schedule": {"frequency": "Hourly", "intervalHours": 4},
                                       "retention": {"hourly": {"count": 12},
                                                     "daily": {"count": 7}}})");
  Simulation sim(Utc(2024, 2, 20));
  EXPECT_EQ(sim.RunUntil(p, Utc(2024, 3, 20, 23)), 30 * 6 - 1);  // first run is 04:00
  Strings want;
  for (int d = 14; d <= 18; ++d) want.push_back(Iso(Utc(2024, 3, d, 20)));
  for (int d = 19; d <= 20; ++d)
    for (int h = 0; h < 24; h += 4) want.push_back(Iso(Utc(2024, 3, d, h)));
  EXPECT_EQ(sim.Ids(), want);
}

TEST(RetentionSimulationTest, OnDemandPointsAlongsideTheSchedule) {
  const BackupPolicy p =
      DailyWith(R"({"daily": {"count": 7}})", R"(, "onDemandRetentionDays": 10)");
  Simulation sim(Utc(2024, 6, 1));
  std::vector<int64_t> on_demand;
  for (int d = 1; d <= 60; d += 5) on_demand.push_back(Utc(2024, 6, 1, 15) + (d - 1) * kMsPerDay);
  // 60 daily backups (June 1 .. July 30) and 12 on-demand ones (June 1, 6, ... July 26).
  EXPECT_EQ(sim.RunUntil(p, Utc(2024, 7, 30, 16), on_demand), 72);
  // On-demand points younger than 10 days (July 21 and 26) and the last 7 daily points.
  EXPECT_EQ(sim.Ids(), (Strings{"od-2024-07-21T15:00:00.000Z", "2024-07-24T02:00:00.000Z",
                                "2024-07-25T02:00:00.000Z", "2024-07-26T02:00:00.000Z",
                                "od-2024-07-26T15:00:00.000Z", "2024-07-27T02:00:00.000Z",
                                "2024-07-28T02:00:00.000Z", "2024-07-29T02:00:00.000Z",
                                "2024-07-30T02:00:00.000Z"}));
  // Ten days after the one of July 21, it goes at the next prune.
  sim.clock().SetMs(Utc(2024, 7, 31, 15));
  const Strings expired = sim.PruneNow(p);
  EXPECT_EQ(expired, (Strings{"od-2024-07-21T15:00:00.000Z"}));
}

}  // namespace
}  // namespace stratus::recovery::policy
