// Clock: the one source of time. Tests use FakeClock for schedules and retention.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace stratus {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, milliseconds since the Unix epoch.
  virtual int64_t NowMs() const = 0;
  // Monotonic milliseconds for measuring durations.
  virtual int64_t MonotonicMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  int64_t MonotonicMs() const override;
  static SystemClock* Default();
};

// Thread-safe manually driven clock for tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms) : now_(start_ms) {}
  int64_t NowMs() const override { return now_.load(); }
  int64_t MonotonicMs() const override { return now_.load(); }
  void AdvanceMs(int64_t ms) { now_ += ms; }
  void SetMs(int64_t ms) { now_ = ms; }

 private:
  std::atomic<int64_t> now_;
};

// "2026-11-22T10:00:00.123Z"
std::string FormatIso8601(int64_t ms_since_epoch);

// Milliseconds since the epoch of an ISO 8601 UTC time as the API writes and reads them:
// "YYYY-MM-DDThh:mm:ss" with an optional fraction (digits past milliseconds are cut) and a
// final "Z". InvalidArgument with `field` as the target for anything else (another offset, a
// missing or out-of-range part, trailing text).
Result<int64_t> ParseIso8601(std::string_view text, const std::string& field);

}  // namespace stratus
