// Shared bodies of the recovery service tests built on test::InProcessRegion.
#pragma once

#include "core/json.h"

namespace stratus::recovery::service::test_util {

// A backup policy body: daily at 02:00, 7 daily points kept, crash-consistent.
inline Json DailyPolicyBody() {
  return {{"properties",
           {{"schedule", {{"frequency", "Daily"}, {"times", {"02:00"}}}},
            {"retention", {{"daily", {{"count", 7}}}}},
            {"consistency", "CrashConsistent"}}}};
}

}  // namespace stratus::recovery::service::test_util
