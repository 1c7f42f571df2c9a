// The calendar of a backup policy: when its scheduled backups are due, and how far each protected
// item's start is shifted so that the VMs sharing a policy do not all start the same second.
//
// Times are UTC milliseconds since the Unix epoch; the schedule is evaluated in the policy's fixed
// UTC offset (no DST), so every day has the same local run times and a Weekly schedule repeats
// every 7 days. All functions are pure and thread-safe.
//
// Scheduler contract: keep the *nominal* time of the last run per protected item, ask
// NextRun(policy, last_nominal) for the next nominal time, and start the job at
// nominal + Stagger(item, policy). Because Stagger is below 10% of the smallest gap between two
// runs and below 15 minutes, a staggered run never passes the next nominal run, and with an Hourly
// window it stays inside the window (the last run of a window starts at least an hour before its
// end). After a policy edit, simply call NextRun with the new policy.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "recovery/policy/backup_policy.h"

namespace stratus::recovery::policy {

inline constexpr int64_t kMaxStaggerMs = 15 * kMsPerMinute;

// The first scheduled (unstaggered) run strictly after `after_ms`. nullopt only for a policy that
// has no runs at all, which ParseBackupPolicy never returns (a hand-built policy might).
std::optional<int64_t> NextRun(const BackupPolicy& policy, int64_t after_ms);

// The next `n` scheduled runs strictly after `after_ms`, ascending (fewer only when NextRun would
// return nullopt).
std::vector<int64_t> NextRunsAfter(const BackupPolicy& policy, int64_t after_ms, int n);

// The smallest interval between two consecutive scheduled runs (including across midnight and
// across weeks); 0 for a policy without runs.
int64_t MinRunGapMs(const BackupPolicy& policy);

// Upper bound (exclusive) of Stagger for this policy: min(15 min, 10% of MinRunGapMs), in ms.
int64_t StaggerBoundMs(const BackupPolicy& policy);

// A deterministic start offset in [0, StaggerBoundMs(policy)), whole seconds, derived from a
// stable hash (FNV-1a 64 + a 64-bit finalizer) of the lowercased protected item id, so it is the
// same on every host, build and restart and the same for ids differing only in case (ARM ids are
// case-insensitive).
int64_t Stagger(std::string_view protected_item_id, const BackupPolicy& policy);

}  // namespace stratus::recovery::policy
