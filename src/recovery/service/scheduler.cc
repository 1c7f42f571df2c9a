#include "recovery/service/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "core/clock.h"
#include "recovery/policy/schedule.h"
#include "recovery/service/records.h"

namespace stratus::recovery::service {

void Scheduler::Tick(int64_t now_ms) {
  auto items = ListAll(ctx_.store, "/subscriptions/", kItemType);
  if (!items.ok()) return;
  for (auto& item : *items) {
    if (item.body["properties"].value("protectionState", "") != "Protected") continue;
    auto pol = PolicyOf(ctx_.store, item);
    if (!pol.ok()) continue;
    int64_t stagger = policy::Stagger(item.key, *pol);
    int64_t last = item.internal.value("lastScheduledMs", now_ms);
    auto next = policy::NextRun(*pol, last);
    if (!next || *next + stagger > now_ms) continue;
    // Missed runs (daemon down): run once, for the latest one that is due.
    int64_t due = *next;
    for (;;) {
      auto n = policy::NextRun(*pol, due);
      if (!n || *n + stagger > now_ms) break;
      due = *n;
    }
    item.internal["lastScheduledMs"] = due;
    if (!ctx_.store->Put(item).ok()) continue;
    auto id = ResourceId::Parse(item.body.value("id", ""));
    if (!id.ok()) continue;
    Status r = backups_->Scheduled(*id, due);
    if (!r.ok())
      spdlog::warn("scheduled backup of {}: {}", item.body.value("id", ""), r.ToString());
    else
      spdlog::info("scheduled backup of {} (run of {})", item.body.value("id", ""),
                   FormatIso8601(due));
  }
}

void Scheduler::Start() {
  int interval_ms = 2000;
  if (const char* e = std::getenv("STRATUS_SCHEDULER_INTERVAL_MS"))
    interval_ms = std::max(100, std::atoi(e));
  thread_ = std::thread([this, interval_ms] {
    for (;;) {
      {
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait_for(g, std::chrono::milliseconds(interval_ms), [&] { return stopping_; });
        if (stopping_) return;
      }
      Tick(ctx_.clock->NowMs());
    }
  });
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace stratus::recovery::service
