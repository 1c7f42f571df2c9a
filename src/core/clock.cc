#include "core/clock.h"

#include <ctime>
#include <fmt/format.h>

namespace stratus {

int64_t SystemClock::NowMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t SystemClock::MonotonicMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

SystemClock* SystemClock::Default() {
  static SystemClock clock;
  return &clock;
}

std::string FormatIso8601(int64_t ms) {
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm_utc;
  gmtime_r(&secs, &tm_utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm_utc.tm_year + 1900,
                     tm_utc.tm_mon + 1, tm_utc.tm_mday, tm_utc.tm_hour, tm_utc.tm_min,
                     tm_utc.tm_sec, static_cast<int>(ms % 1000));
}

Result<int64_t> ParseIso8601(std::string_view text, const std::string& field) {
  auto bad = [&] {
    return InvalidArgument("'" + field + "' must be an ISO 8601 UTC time like "
                           "2026-12-31T00:00:00Z, not '" + std::string(text) + "'.",
                           field);
  };
  // strptime accepts spaces and short fields; the API's form has fixed digits.
  static constexpr std::string_view kForm = "dddd-dd-ddTdd:dd:dd";
  if (text.size() < kForm.size() + 1) return bad();
  for (size_t i = 0; i < kForm.size(); ++i) {
    bool digit = text[i] >= '0' && text[i] <= '9';
    if (kForm[i] == 'd' ? !digit : text[i] != kForm[i]) return bad();
  }
  std::string head(text.substr(0, kForm.size()));
  struct tm tm = {};
  const char* end = ::strptime(head.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr || *end != '\0') return bad();
  size_t pos = kForm.size();
  int ms = 0;
  if (text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 3) ms = ms * 10 + (text[pos] - '0');
      ++digits, ++pos;
    }
    if (digits == 0) return bad();
    for (; digits < 3; ++digits) ms *= 10;
  }
  if (pos + 1 != text.size() || text[pos] != 'Z')
    return InvalidArgument("'" + field + "' must end with Z (UTC).", field);
  return static_cast<int64_t>(::timegm(&tm)) * 1000 + ms;
}

}  // namespace stratus
