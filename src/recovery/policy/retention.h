// Retention: which recovery points of one protected item a backup policy keeps.
//
// Prune() is a pure function of (policy, points, now): it holds no state, so an edited policy
// takes effect at the very next prune, and pruning twice changes nothing the second time. The
// caller deletes the `expire` list from the vault (then GC frees their chunks).
//
// Semantics (grandfather-father-son), evaluated in the policy's fixed UTC offset:
//   1. Scheduled and on-demand points are separate. The tiers below only look at scheduled
//      points; an on-demand point is kept ("onDemand") while now < its expiry, which is
//      `retain_until_ms` when set, else time + onDemandRetentionDays * 24h, and expires from then
//      on. So a "backup now" neither uses up a daily slot nor displaces a scheduled point.
//   2. Each tier has a period and a qualifying test:
//        hourly   clock hour       every scheduled point
//        daily    calendar day     every scheduled point
//        weekly   ISO week         points taken on one of daysOfWeek
//        monthly  calendar month   points on a day matching daysOfMonth
//        yearly   calendar year    points in monthsOfYear on a day matching daysOfMonth
//      Walking qualifying points from newest to oldest, the tier keeps the newest point of each
//      period until it has kept `count` of them. Periods are counted only when they have a
//      qualifying point ("the last 30 days that have a backup", as restic, borg and Proxmox
//      Backup Server do), not as calendar time ("30 days back from now", as Azure does): if
//      backups stop or fail for a month, the last good points are not aged out behind the
//      operator's back (the flip side: points of an item whose backups stopped for good stay
//      until protection is stopped with their deletion). With an uninterrupted schedule both
//      readings agree. The current period counts: daily 7 at noon keeps today's newest point
//      and the newest of the 6 previous days that have one.
//   3. A point kept by any tier or rule survives, with every reason that kept it.
//   4. The newest point of all (scheduled or on-demand) is always kept ("latest"), so neither a
//      policy edit nor a long outage can leave an item with no point at all.
// "Newest" and every period are judged by PointInfo::CalendarMs() (the nominal run time of a
// scheduled point, the snapshot time otherwise); ties are broken by id, the larger counting as
// newer. Expiry of on-demand points is judged by time_ms.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recovery/policy/backup_policy.h"

namespace stratus::recovery::policy {

// A recovery point as retention sees it.
struct PointInfo {
  std::string id;       // unique among the points passed to one Prune call
  int64_t time_ms = 0;  // UTC time the point was taken (its snapshot instant)
  bool on_demand = false;
  // On-demand only: explicit expiry chosen at "backup now" time (UTC ms); 0 = use the policy's
  // onDemandRetentionDays.
  int64_t retain_until_ms = 0;
  // Scheduled only: the nominal run time the point was taken for (UTC ms, before stagger and
  // queueing); 0 = time_ms. Retention files a point under its nominal time, so Sunday's 23:55
  // run that started at 00:07 on Monday is still Sunday's weekly point.
  int64_t scheduled_ms = 0;

  // The time retention files the point under: scheduled_ms when set, else time_ms.
  int64_t CalendarMs() const { return !on_demand && scheduled_ms != 0 ? scheduled_ms : time_ms; }

  bool operator==(const PointInfo&) const = default;
};

// Reasons, in the order they are listed in KeptPoint::reasons.
inline constexpr const char* kReasonLatest = "latest";
inline constexpr const char* kReasonHourly = "hourly";
inline constexpr const char* kReasonDaily = "daily";
inline constexpr const char* kReasonWeekly = "weekly";
inline constexpr const char* kReasonMonthly = "monthly";
inline constexpr const char* kReasonYearly = "yearly";
inline constexpr const char* kReasonOnDemand = "onDemand";

struct KeptPoint {
  PointInfo point;
  std::vector<std::string> reasons;  // never empty
};

struct PruneResult {
  std::vector<KeptPoint> keep;    // oldest first
  std::vector<PointInfo> expire;  // oldest first
};

// Splits `points` (any order) into those `policy` keeps at `now_ms` and those that expire. Every
// input point is in exactly one of the two lists.
PruneResult Prune(const BackupPolicy& policy, const std::vector<PointInfo>& points, int64_t now_ms);

// When an on-demand point expires (UTC ms): retain_until_ms if set, else
// time_ms + onDemandRetentionDays days.
int64_t OnDemandExpiryMs(const BackupPolicy& policy, const PointInfo& point);

}  // namespace stratus::recovery::policy
