// DiskEngine: the seam between Stratus and where disk bytes live.
//
// Every operation on a disk's storage goes through this interface: the storage controller's
// create/copy/grow/delete, compute's image imports and offline copies, the hypervisor driver's
// offline checkpoint bitmaps, backup's dirty bitmaps and recovery's restore targets and
// instant-restore overlays. Qcow2DiskEngine (qcow2_disk_engine.h) keeps each disk as a
// thin-provisioned qcow2 file and drives qemu-img; a Ceph RBD engine would be one more file set
// beside it implementing the same calls (RBD images, `rbd` snapshots and object maps). What a
// disk is called is the engine's: `path` is opaque to callers (a file path for qcow2, a
// "pool/image" name for RBD). Reading a disk's bytes is the data path's (recovery/datapath/),
// whose readers are named for their engine (qcow2_direct_reader, qemu_nbd_export).
//
// Contract of every call:
//  - Errors by code. InvalidArgument: an argument the engine cannot take (a shrink, a bitmap name
//    it cannot store); NotFound: `path` (or the source) does not exist; Conflict:
//    the destination exists, or the bitmap name is taken; InvalidArgument "NotSupported"
//    (core/status.h) for an optional capability the engine lacks (the defaults below, which
//    change nothing); Internal: the engine's tool failed, with its message (a disk locked by a
//    running VM is one such failure: qemu-img refuses to write a disk QEMU holds).
//  - Atomicity. The Create* calls leave either a complete disk at `path` or nothing there (they
//    build under a temporary name, `<path>.creating` for qcow2, and rename; Remove of `path`
//    also removes that leftover of a crash). Grow, AddBitmap and RemoveBitmap are one metadata
//    update each: after a crash the disk has the old or the new state.
//  - Thread-safety. An engine holds no per-disk state: any call may come from any thread, and
//    calls on different disks are independent. Calls that change the same disk are serialized
//    by the caller (the disk's owner: DiskService, the VM's operation, the backup job). Readers
//    (Usage, Inspect, ListBitmaps) may run while a VM writes the disk; what they return is a
//    snapshot of the metadata at that moment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace stratus::storage {

struct DiskUsage {
  uint64_t virtual_bytes = 0;    // size the guest sees
  uint64_t allocated_bytes = 0;  // bytes actually used on the host
};

// A persistent dirty bitmap of a disk: which blocks changed since it was added (backup's
// incremental-forever tracking, libvirt's checkpoints).
struct DiskBitmap {
  std::string name;
  uint64_t granularity = 0;  // bytes per bit
  bool enabled = false;      // still recording writes
  bool in_use = false;       // held open by a running VM (its content is QEMU's until it stops)
};

// What a disk is, as the engine stores it.
struct DiskInfo {
  std::string format;  // the engine's format name: "qcow2", "raw", ("rbd")
  uint64_t virtual_bytes = 0;
  uint64_t allocated_bytes = 0;
  std::string backing;  // what unwritten blocks are read from; "" when self-contained
  std::vector<DiskBitmap> bitmaps;
};

class DiskEngine {
 public:
  virtual ~DiskEngine() = default;

  // New empty, thin disk of `size_bytes`. Conflict if `path` exists.
  virtual Status CreateEmpty(const std::string& path, uint64_t size_bytes) = 0;
  // New independent disk holding a copy of `source`, grown to `size_bytes` if that is larger
  // than the source (0: the source's size). Only allocated data is copied. `source_format`
  // pins how `source` is read ("qcow2", "raw"): an untrusted file must never be probed (a raw
  // file that looks like another format would make the engine open files it names). Empty:
  // the engine's own disks and platform images, whose format the engine may detect.
  // Conflict if `path` exists, NotFound if `source` does not.
  virtual Status CreateFromSource(const std::string& path, const std::string& source,
                                  uint64_t size_bytes, const std::string& source_format) = 0;
  // Grows a disk (InvalidArgument for a shrink; OK and unchanged for the same size).
  virtual Status Grow(const std::string& path, uint64_t new_size_bytes) = 0;
  virtual Result<DiskUsage> Usage(const std::string& path) = 0;
  // Format, sizes, backing and bitmaps in one read.
  virtual Result<DiskInfo> Inspect(const std::string& path) = 0;
  // Removes the disk; OK if it did not exist.
  virtual Status Remove(const std::string& path) = 0;

  // Optional capabilities (defaults in disk_engine.cc: NotSupported, nothing changed).

  // A new disk of `size_bytes` whose unwritten blocks are read from the raw NBD export on the
  // unix socket `nbd_socket` (instant restore: a VM starts on it while the vault serves the
  // point, and the hypervisor's block pull then copies every block in and drops the backing).
  // The export must be serving while the disk is created and whenever it is opened.
  virtual Status CreateOverNbd(const std::string& path, const std::string& nbd_socket,
                               uint64_t size_bytes);
  // The disk's persistent dirty bitmaps (none: an empty list).
  virtual Result<std::vector<DiskBitmap>> ListBitmaps(const std::string& path);
  // Adds an enabled bitmap that records every later write. Conflict if the name is taken.
  // The disk must not be in use by a running VM (a running VM's bitmaps are the hypervisor's).
  virtual Status AddBitmap(const std::string& path, const std::string& name);
  // Removes a bitmap; NotFound when the disk has none of that name. Same rule for running VMs.
  virtual Status RemoveBitmap(const std::string& path, const std::string& name);
};

}  // namespace stratus::storage
