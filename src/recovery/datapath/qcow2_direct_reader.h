// Qcow2DirectReader: reads the guest data of an offline qcow2 (or raw) image straight from its
// files, the fast path of a stopped VM's backup ("read the qcow2 directly").
//
// `qemu-img map` gives, for every extent of the guest disk, the chain layer that holds it and
// the host offset of its data in that layer's file. Data clusters are then read with pread()
// from the page cache: no qemu-nbd process copying every byte through a socket, which cost
// more CPU than hashing it. Extents qemu-img cannot place (compressed clusters) are reported
// as "not direct" and the caller reads them over NBD instead.
//
// The map is taken once, at Open(): the image must not be written while the reader is used
// (a stopped VM's backup holds the VM's lock; qemu-nbd serves the same image read-only).
// Images with an external data file, encryption, or formats other than qcow2/raw in their
// chain are refused at Open() (the caller then stays on NBD).
//
// Thread-safety: Read() may be called concurrently (pread only).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace stratus::recovery::datapath {

class Qcow2DirectReader {
 public:
  struct MapExtent {
    uint64_t start = 0;
    uint64_t length = 0;
    int depth = 0;             // chain layer holding the data (0 = the image itself)
    bool data = false;         // false: reads as zeroes
    int64_t host_offset = -1;  // -1: data that cannot be read directly (compressed)
  };

  // Maps `image` (format "qcow2" or "raw") and opens every file of its backing chain.
  static Result<std::unique_ptr<Qcow2DirectReader>> Open(const std::string& image,
                                                         const std::string& format = "qcow2");
  // For tests: a reader over an already parsed map and chain of files.
  static Result<std::unique_ptr<Qcow2DirectReader>> FromMap(std::vector<MapExtent> extents,
                                                            const std::vector<std::string>& files,
                                                            uint64_t size);
  ~Qcow2DirectReader();
  Qcow2DirectReader(const Qcow2DirectReader&) = delete;
  Qcow2DirectReader& operator=(const Qcow2DirectReader&) = delete;

  // Reads [offset, offset+len). Returns false (nothing promised about buf) when part of the
  // range is not directly readable; an error when a read of a mapped file fails.
  Result<bool> Read(uint64_t offset, void* buf, size_t len) const;

  uint64_t size() const { return size_; }
  const std::vector<MapExtent>& extents() const { return extents_; }
  const std::vector<std::string>& files() const { return files_; }

 private:
  Qcow2DirectReader() = default;
  std::vector<MapExtent> extents_;  // sorted, contiguous, covering [0, size_)
  std::vector<std::string> files_;  // by depth
  std::vector<int> fds_;
  uint64_t size_ = 0;
};

// Parses `qemu-img map --output=json` text (exposed for tests).
Result<std::vector<Qcow2DirectReader::MapExtent>> ParseImageMap(const std::string& json_text);

}  // namespace stratus::recovery::datapath
