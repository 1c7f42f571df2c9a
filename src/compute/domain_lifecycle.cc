#include "compute/domain_lifecycle.h"

namespace stratus::compute {

const char* PowerStateName(PowerState s) {
  switch (s) {
    case PowerState::kRunning:
      return "running";
    case PowerState::kStopped:
      return "stopped";
    case PowerState::kPaused:
      return "paused";
    case PowerState::kCrashed:
      return "crashed";
    case PowerState::kUnknown:
      return "unknown";
  }
  return "unknown";
}

}  // namespace stratus::compute
