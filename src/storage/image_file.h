// What a file offered as an image is: the checks of an untrusted disk image (an upload or a file
// below an --import-dir) before any engine reads it.
//
// The format comes from the file's own bytes (qcow2 magic, else raw); a qcow2 that would make
// QEMU open another file (backing file, external data file) or that is encrypted is refused;
// then `qemu-img info` with that format pinned, bounded by `timeout` and `prlimit` (a crafted
// image must not hang or exhaust the host), must agree. The result's format is what the engine
// is told to read (DiskEngine::CreateFromSource's `source_format`): the file is never probed.
// Independent of the disk engine: users bring qcow2 or raw files whatever the engine keeps.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace stratus::storage {

struct ImageFileInfo {
  std::string format;  // "qcow2" or "raw"
  uint64_t virtual_size = 0;
};

// InvalidArgument "InvalidImage" (target `field`) for anything but a plain qcow2/raw file.
// Messages never quote the file's bytes.
Result<ImageFileInfo> InspectImageFile(const std::string& path, const std::string& field);

}  // namespace stratus::storage
