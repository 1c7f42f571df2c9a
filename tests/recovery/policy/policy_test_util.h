// Helpers shared by the backup policy tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/json.h"
#include "recovery/policy/backup_policy.h"
#include "recovery/policy/civil_time.h"

namespace stratus::recovery::policy::testing {

// UTC milliseconds of y-mo-d h:mi (UTC).
inline int64_t Utc(int y, int mo, int d, int h = 0, int mi = 0) {
  return UtcMsFromLocal({y, mo, d}, h * 60 + mi, 0);
}

// "2024-01-01T02:00:00.000Z"
inline std::string Iso(int64_t ms) { return FormatIso8601(ms); }

inline std::vector<std::string> Iso(const std::vector<int64_t>& ms) {
  std::vector<std::string> out;
  for (int64_t t : ms) out.push_back(Iso(t));
  return out;
}

// Parses policy properties written as JSON text; fails the test (and returns a default policy)
// when they do not parse or validate.
inline BackupPolicy MustParse(const std::string& json_text) {
  auto doc = ParseJson(json_text);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString() << "\n" << json_text;
  if (!doc.ok()) return {};
  auto policy = ParseBackupPolicy(*doc);
  EXPECT_TRUE(policy.ok()) << policy.status().ToString() << "\n" << json_text;
  if (!policy.ok()) return {};
  return *policy;
}

}  // namespace stratus::recovery::policy::testing
