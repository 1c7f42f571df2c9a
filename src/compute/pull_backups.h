// PullBackups: incremental backups of a running domain's disks, read by the caller over NBD.
//
// The backup service (recovery/service/vm_backup.h) asks the engine to export the disks as they
// were at one instant over NBD on a unix socket, reads them into a vault, and ends the export.
// The engine creates a checkpoint at that instant, so that the next backup can export only the
// blocks written since. Engines: LibvirtHypervisor (libvirt_hypervisor.h); unit tests use a fake
// that keeps checkpoints as names.
//
// Checkpoints are named points in a domain's disk history. On libvirt 9.0/QEMU 7.2 each
// checkpoint is a persistent dirty bitmap inside every qcow2 disk it covers, named exactly like
// the checkpoint (`qemu-img info` of a stopped domain's disk lists e.g. "name: ck-1, flags:
// [auto], granularity: 65536" per checkpoint). Every bitmap stays enabled ("auto"), so bitmap X
// records every write since checkpoint X, also writes made while the domain was stopped by
// anything that opens the image through QEMU's block layer. A stopped domain cannot serve a
// pull backup: read its qcow2 files directly (`qemu-nbd -r`; with `-B <checkpoint>` the meta
// context "qemu:dirty-bitmap:<checkpoint>" lists the blocks written since that checkpoint).
//
// Thread-safety: implementations are safe for concurrent calls from any thread; an engine
// serialises these calls with the other changes to the same domain. A domain has at most one
// backup job at a time.
//
// Errors of every call besides those listed: Unavailable when the engine cannot be reached,
// Internal when it fails in a way not listed here. Messages name the domain and the checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace stratus::compute {

struct PullBackupSpec {
  std::vector<std::string> target_devs;  // disks to export, e.g. {"vda", "vdb"}
  // Checkpoint created at the backup instant: a name unique per domain (e.g. from the backup's
  // id), [A-Za-z0-9._-], at most 64 characters, not starting with '.'.
  std::string checkpoint;
  // Previous checkpoint for an incremental export, or "" for a full export.
  std::string incremental_from;
  // NBD unix socket QEMU serves on (absolute, shorter than 108 bytes). Its directory must be
  // writable by QEMU's user: use a directory that does not exist yet (it is created and handed
  // to QEMU's user) or one QEMU's user may already write.
  std::string socket_path;
  // Where QEMU keeps the old contents of blocks the guest overwrites during the backup (one
  // qcow2 per disk; created if missing; the files are removed when the backup ends).
  std::string scratch_dir;
  // Freeze the guest's file systems (guest agent) around the instant; without an answering
  // agent the backup proceeds unfrozen (PullBackup::frozen says which).
  bool quiesce = false;
};

struct PullBackup {
  std::string socket_path;
  struct Disk {
    std::string target_dev;
    std::string export_name;  // NBD export name on socket_path
    // Dirty bitmap of the incremental export: read the extents that NBD block status reports
    // dirty in meta context "qemu:dirty-bitmap:<bitmap>". "" for a full export of this disk
    // (full backups, and disks the `incremental_from` checkpoint did not cover).
    std::string bitmap;
    uint64_t size_bytes = 0;  // guest-visible size
  };
  std::vector<Disk> disks;  // in the order of PullBackupSpec::target_devs
  bool frozen = false;      // whether the guest's file systems were frozen at the instant
};

// One domain of a group pull backup.
struct GroupPullMember {
  std::string domain;
  PullBackupSpec spec;
};

struct GroupPullBackup {
  std::vector<PullBackup> backups;  // in the order of the members
  // How long the group was held still: from the first domain paused to the last resumed (0
  // for an engine that takes the instant without pausing).
  int64_t freeze_us = 0;
};

class PullBackups {
 public:
  virtual ~PullBackups() = default;

  // Starts a pull-mode backup of `spec.target_devs` of a running domain, all at one instant,
  // and creates checkpoint `spec.checkpoint` at that instant. The exports stay readable until
  // EndPullBackup. The checkpoint exists from here on even if the caller's read then fails: the
  // next backup can still be incremental from an older checkpoint, or the caller deletes it.
  // Errors: Conflict "OperationNotAllowed" if the domain is not running (read its qcow2 files
  // instead, see above); NotFound "CheckpointNotFound" if `incremental_from` does not exist or
  // a disk it covers no longer carries its bitmap (domain redefined, disk replaced): fall back
  // to a full backup; Conflict if the checkpoint name exists or a backup job is running;
  // NotFound for an unknown domain or disk; InvalidArgument for a bad spec.
  virtual Result<PullBackup> BeginPullBackup(const std::string& domain,
                                             const PullBackupSpec& spec) = 0;
  // Starts pull backups of several running domains, all disks of all domains at one instant
  // (a consistency group: no write any domain makes after the instant is in any export, every
  // write any domain completed before it is in all). All or nothing: when one member's job
  // cannot start, the jobs of the others are ended and their new checkpoints deleted, and the
  // error names that member's domain. Errors as BeginPullBackup's; InvalidArgument for no
  // members or a domain listed twice. The default runs the members one after the other: an
  // engine must override it to deliver one instant (LibvirtHypervisor pauses them all).
  virtual Result<GroupPullBackup> BeginGroupPullBackup(const std::vector<GroupPullMember>& members) {
    if (members.empty()) return InvalidArgument("a group pull backup needs members", "members");
    GroupPullBackup out;
    for (const auto& m : members) {
      auto b = BeginPullBackup(m.domain, m.spec);
      if (!b.ok()) {
        for (size_t i = 0; i < out.backups.size(); ++i) {
          (void)EndPullBackup(members[i].domain);
          (void)DeleteCheckpoint(members[i].domain, members[i].spec.checkpoint);
        }
        return b.status();
      }
      out.backups.push_back(std::move(b).value());
    }
    return out;
  }
  // Ends the domain's pull backup: the NBD server stops, the socket and scratch files go. OK if
  // there is none (also when the domain is not running or does not exist). Conflict when the
  // domain's backup job is not a pull backup; Unavailable when the engine does not finish
  // tearing the job down in time.
  virtual Status EndPullBackup(const std::string& domain) = 0;
  // The domain's checkpoints, oldest first (parents before children). NotFound for an unknown
  // domain.
  virtual Result<std::vector<std::string>> ListCheckpoints(const std::string& domain) = 0;
  // Deletes a checkpoint and its bitmaps, running or stopped; the changes it recorded stay
  // covered by its older checkpoints (their bitmaps record every write since they were taken,
  // which is what libvirt's merge on delete amounts to). OK if the checkpoint or the domain is
  // absent. Allowed during a pull backup, even of its base: the export keeps its own bitmap.
  // InvalidArgument for an empty checkpoint name.
  virtual Status DeleteCheckpoint(const std::string& domain, const std::string& checkpoint) = 0;
  // Makes checkpoint `checkpoint` known to the engine for the persistent bitmaps of that name
  // that each of `target_devs`' qcow2 files carries already (added by the disk engine before
  // the domain was made, as a failover does), so that a pull backup can be incremental from it.
  // Its creation time is now; it has no parent. OK if the checkpoint exists. A running domain's
  // disks are checked by the engine (NotFound "CheckpointNotFound" when one lacks the bitmap).
  // Default: NotSupported.
  virtual Status RedefineCheckpoint(const std::string& domain, const std::string& checkpoint,
                                    const std::vector<std::string>& target_devs) {
    (void)domain, (void)target_devs;
    return NotSupported("this engine cannot redefine checkpoint '" + checkpoint + "'");
  }
};

}  // namespace stratus::compute
