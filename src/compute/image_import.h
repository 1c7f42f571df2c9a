// Image import: how bytes from outside get into a user image without opening
// the host to the caller.
//
// Two ways in, both ending in the same checked conversion:
//  - a host file (`properties.source.filePath`, `kernel`, `initrd`): only below
//  a folder the
//    operator allows with `stratusd --import-dir` (none by default), after
//    symlinks and ".." are resolved, only a regular file, opened once here and
//    read through that descriptor afterwards (a file swapped behind the path
//    later changes nothing);
//  - an upload (`properties.source.upload` then `PUT {image}/upload/{part}`):
//  the bytes are
//    streamed into the image's own folder (mode 0600) with the declared size as
//    the limit.
// Either way the disk is inspected (storage/image_file.h) and must be qcow2 or
// raw with no backing file and no external data file (either would make
// qemu-img read another host file), then converted by the disk engine with its
// format pinned.
// Kernels and initrds are copied into the image's folder.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/http_server.h"
#include "core/status.h"

namespace stratus::compute {

inline constexpr uint64_t kMaxKernelBytes = 256ull << 20;

// A host file opened for import. Owns the descriptor; not copyable.
class HostImportFile {
 public:
  // Resolves `path` (symlinks, ".."), requires it to lie below one of
  // `allowed_dirs` (already resolved) and to be a regular file of at most
  // `max_bytes`, and opens it read-only. InvalidArgument "ImportPathNotAllowed"
  // (target `field`) when import is disabled or the path is outside every
  // allowed folder; "InvalidImage" when it is not a regular file, is too large
  // or cannot be opened. Messages name the path as given, never file contents.
  static Result<std::unique_ptr<HostImportFile>> Open(const std::string& path,
                                                      const std::vector<std::string>& allowed_dirs,
                                                      uint64_t max_bytes, const std::string& field);
  ~HostImportFile();
  HostImportFile(const HostImportFile&) = delete;
  HostImportFile& operator=(const HostImportFile&) = delete;

  // A path child processes (qemu-img) can open that names this very file:
  // "/proc/<stratusd pid>/fd/<n>".
  std::string ProcPath() const;
  uint64_t size() const { return size_; }
  // Copies the whole file to `dest` (created 0600, fsync'd, atomically
  // renamed).
  Status CopyTo(const std::string& dest) const;

 private:
  HostImportFile(int fd, uint64_t size) : fd_(fd), size_(size) {}
  int fd_;
  uint64_t size_;
};

// Resolves and checks each --import-dir: it must exist and be a directory.
// Returns the resolved paths.
Result<std::vector<std::string>> ResolveImportDirs(const std::vector<std::string>& dirs);

// Receives an upload into `<final_path>.part` (0600, created exclusively) and,
// on Commit(), fsyncs it and renames it to `final_path`. An uncommitted part
// file is removed on destruction.
class FileUploadSink final : public api::BodySink {
 public:
  static Result<std::shared_ptr<FileUploadSink>> Create(const std::string& final_path,
                                                        uint64_t max_bytes);
  ~FileUploadSink() override;
  Status Write(const char* data, size_t n) override;
  // The first Write failure, if any.
  const Status& status() const { return status_; }
  uint64_t written() const { return written_; }
  Status Commit();
  // Held for as long as the upload runs (e.g. the resource's lock).
  std::shared_ptr<void> hold;

 private:
  FileUploadSink(int fd, std::string part, std::string final_path, uint64_t max)
      : fd_(fd), part_(std::move(part)), final_(std::move(final_path)), max_(max) {}
  int fd_;
  std::string part_;
  std::string final_;
  uint64_t max_;
  uint64_t written_ = 0;
  bool committed_ = false;
  Status status_;
};

}  // namespace stratus::compute
