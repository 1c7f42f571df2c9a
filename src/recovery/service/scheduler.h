// Scheduler: runs the backup policies. Every protected item whose policy has a run due (its
// nominal time plus the item's stagger, policy/schedule.h) gets a scheduled backup; runs missed
// while the daemon was down collapse into one, for the latest that is due. The item's cursor
// (internal.lastScheduledMs) is written before the backup starts, so a run is started at most
// once.
//
// One thread, started by Start() and ended by Stop(), ticks every interval
// (STRATUS_SCHEDULER_INTERVAL_MS, default 2000); tests call Tick() directly with their clock.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "api/provider.h"
#include "recovery/service/backup_jobs.h"

namespace stratus::recovery::service {

class Scheduler {
 public:
  // `backups` outlives it.
  Scheduler(api::RegionContext ctx, BackupJobs* backups)
      : ctx_(std::move(ctx)), backups_(backups) {}
  ~Scheduler() { Stop(); }

  void Start();
  void Stop();
  // One pass at `now_ms`.
  void Tick(int64_t now_ms);

 private:
  api::RegionContext ctx_;
  BackupJobs* backups_;
  std::mutex mu_;  // guards stopping_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace stratus::recovery::service
