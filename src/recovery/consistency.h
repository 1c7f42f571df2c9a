// Consistency of a recovery point or snapshot: what a restore of it can promise.
#pragma once

#include <string>

#include "core/status.h"

namespace stratus::recovery {

enum class Consistency {
  kApplication,  // guest agent ran the application's pre/post scripts around the freeze
  kFileSystem,   // guest agent froze and thawed the file systems
  kCrash,        // no guest cooperation: as after a power cut
};

// "ApplicationConsistent", "FileSystemConsistent", "CrashConsistent".
const char* ConsistencyName(Consistency c);
// Parses the names above (case-insensitive); InvalidArgument otherwise.
Result<Consistency> ParseConsistency(const std::string& name);

}  // namespace stratus::recovery
