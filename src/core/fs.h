// File-system helpers with the durability Stratus promises: atomic replace with fsync of the
// file and its directory. All functions return a Status naming the path on failure.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace stratus {

// Writes `data` to `path` atomically: temp file in the same dir, fsync, rename, fsync dir.
Status WriteFileAtomic(const std::string& path, const std::string& data, int mode = 0644);
Result<std::string> ReadFile(const std::string& path);
// Creates `path` and missing parents; the mode is applied to `path` only if it was created.
Status MakeDirs(const std::string& path, int mode = 0755);
Status FsyncDir(const std::string& dir);
bool PathExists(const std::string& path);
// Removes a file; OK if it did not exist.
Status RemoveFile(const std::string& path);
// Removes a directory tree; OK if it did not exist.
Status RemoveTree(const std::string& path);
// Bytes free on the file system holding `path`.
Result<uint64_t> FreeBytes(const std::string& path);
std::string JoinPath(const std::string& a, const std::string& b);

}  // namespace stratus
