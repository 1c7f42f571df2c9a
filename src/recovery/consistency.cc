#include "recovery/consistency.h"

#include "core/resource_id.h"

namespace stratus::recovery {

const char* ConsistencyName(Consistency c) {
  switch (c) {
    case Consistency::kApplication: return "ApplicationConsistent";
    case Consistency::kFileSystem: return "FileSystemConsistent";
    case Consistency::kCrash: return "CrashConsistent";
  }
  return "CrashConsistent";
}

Result<Consistency> ParseConsistency(const std::string& name) {
  for (auto c : {Consistency::kApplication, Consistency::kFileSystem, Consistency::kCrash})
    if (EqualsIgnoreCase(name, ConsistencyName(c))) return c;
  return InvalidArgument("Unknown consistency '" + name + "'; use ApplicationConsistent, "
                             "FileSystemConsistent or CrashConsistent.",
                         "consistency");
}

}  // namespace stratus::recovery
