// DiskSnapshots: copies disks of a domain, all as they were at one instant, into new files.
//
// Used for snapshots of the disks of a VM (Stratus.Storage/snapshots of an attached disk, and
// the VM action captureSnapshots, every disk at once); backups use PullBackups (pull_backups.h)
// instead, which export only what changed. Engines: LibvirtHypervisor (libvirt_hypervisor.h); unit
// tests use a fake that copies with qemu-img.
//
// Thread-safety: implementations are safe for concurrent calls from any thread; an engine
// serialises a snapshot with the other changes to the same domain.
//
// Errors of every call besides those listed: Unavailable when the engine cannot be reached,
// Internal when it fails in a way not listed here. Messages name the domain and the disk.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace stratus::compute {

// Disk of a running or stopped domain to capture in a snapshot, and where the copy goes.
struct SnapshotTarget {
  std::string target_dev;  // "vda"
  std::string dest_path;   // new qcow2 file to create (must not exist)
};

class DiskSnapshots {
 public:
  virtual ~DiskSnapshots() = default;

  // Copies the given disks of a domain as they were at one single instant into new qcow2 files.
  // Running domain: one QEMU transaction (libvirt push-mode backup), optionally with guest
  // fsfreeze around it when `quiesce` (without an answering agent it proceeds unfrozen);
  // stopped domain: offline copy. Returns whether the file systems were frozen. On failure no
  // destination file is left behind.
  // InvalidArgument when `targets` is empty, names a disk or a destination twice, or has a
  // relative destination; Conflict when a destination exists; NotFound for an unknown domain or
  // disk; Internal when the copy fails.
  virtual Result<bool> SnapshotDisks(const std::string& name,
                                     const std::vector<SnapshotTarget>& targets, bool quiesce) = 0;
};

}  // namespace stratus::compute
