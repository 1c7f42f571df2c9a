// File-system helpers with the durability Stratus promises: atomic replace with fsync of the
// file and its directory. All functions return a Status naming the path on failure.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace stratus {

// Writes `data` to `path` atomically: temp file in the same dir, fsync, rename, fsync dir. The
// file gets `mode` exactly (owner-only by default: nothing stratusd writes is for other users).
Status WriteFileAtomic(const std::string& path, const std::string& data, int mode = 0600);
Result<std::string> ReadFile(const std::string& path);
// Creates `path` and missing parents, each with exactly `mode`; existing folders are left as
// they are. 0711 for folders QEMU must traverse (no listing), 0700 for everything else.
Status MakeDirs(const std::string& path, int mode = 0700);
Status FsyncDir(const std::string& dir);
bool PathExists(const std::string& path);
// Removes a file; OK if it did not exist.
Status RemoveFile(const std::string& path);
// Removes a directory tree; OK if it did not exist.
Status RemoveTree(const std::string& path);
// Bytes free on the file system holding `path`.
Result<uint64_t> FreeBytes(const std::string& path);
std::string JoinPath(const std::string& a, const std::string& b);
// Internal("<what> '<path>' failed: <strerror(err)>"): a system call's failure, naming the path.
Status ErrnoStatus(const std::string& what, const std::string& path, int err = errno);

}  // namespace stratus
