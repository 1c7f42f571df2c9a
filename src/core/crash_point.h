// CrashPoint: a named place inside a multi-step change where an end-to-end test can make
// stratusd die at once, exactly as `kill -9` would (SIGKILL: no destructor, no flush, no
// handler), to prove that a restart converges whatever step was cut.
//
// A point fires when the environment variable STRATUS_CRASH_AT, read once when first needed,
// equals its name. Unset (every production run), CrashPoint is a compare of two strings.
// Names are "<module>.<what was just done>", e.g. "network.nic-written"; the points are listed
// in docs/operations.md. Thread-safe.
#pragma once

namespace stratus {

void CrashPoint(const char* name);

}  // namespace stratus
