#include "core/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace stratus {

void CrashPoint(const char* name) {
  static const std::string armed = [] {
    const char* v = std::getenv("STRATUS_CRASH_AT");
    return std::string(v ? v : "");
  }();
  if (armed.empty() || armed != name) return;
  static const char kMsg[] = "stratusd: crash point reached (STRATUS_CRASH_AT)\n";
  (void)!::write(2, kMsg, sizeof(kMsg) - 1);
  ::kill(::getpid(), SIGKILL);
}

}  // namespace stratus
