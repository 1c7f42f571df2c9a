// Hypervisor: the seam between the compute controller and a VM engine.
//
// The controller describes a domain (DomainSpec) and drives its lifecycle; an engine makes it
// real. LibvirtHypervisor (libvirt_hypervisor.h) is the engine for libvirt/QEMU; unit tests use
// a fake. Implementations are thread-safe: every method may be called from any thread.
//
// Domains are persistent (they survive a restart of stratusd and of libvirtd); `name` is the
// engine-side name ("stratus-<vmUuid>") and `uuid` the VM's stable identity.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace stratus::compute {

// Per-disk throttling (libvirt <iotune>); 0 means "no limit".
struct IoTune {
  uint64_t total_iops_sec = 0;
  uint64_t total_bytes_sec = 0;
  bool operator==(const IoTune&) const = default;
};

struct DiskAttachment {
  std::string target_dev;  // "vda", "vdb", ...
  std::string path;        // image file on the host
  std::string format = "qcow2";  // "qcow2" or "raw"
  bool read_only = false;
  std::string serial;      // visible in the guest as /sys/block/vdX/serial (max 20 chars)
  IoTune iotune;
};

struct DomainSpec {
  std::string name;  // engine name, unique on the host
  std::string uuid;  // stable identity (RFC 4122)
  int vcpus = 1;
  int memory_mib = 256;
  // Direct kernel boot when `kernel` is set (images that carry their kernel); otherwise the
  // firmware boots the first disk.
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  std::vector<DiskAttachment> disks;  // first is the OS disk
  std::string console_log_path;       // serial console is appended here (survives restarts)
  std::string metadata_json;          // stored in the domain's <metadata> (resource id etc.)
};

enum class PowerState { kRunning, kStopped, kPaused, kCrashed, kUnknown };
const char* PowerStateName(PowerState s);

struct DomainInfo {
  std::string name;
  std::string uuid;
  PowerState state = PowerState::kUnknown;
  int64_t boot_time_ms = 0;   // wall-clock ms when the running QEMU process started; 0 if not
  std::string metadata_json;  // as given in DomainSpec
};

// Disk of a running or stopped domain to capture in a snapshot, and where the copy goes.
struct SnapshotTarget {
  std::string target_dev;  // "vda"
  std::string dest_path;   // new qcow2 file to create (must not exist)
};

// A pull-mode backup of a running domain: the engine exports the disks as they were at one
// instant over NBD on a unix socket and creates a checkpoint at that instant, so that the next
// backup can export only the blocks written since.
//
// Checkpoints are named points in a domain's disk history. On libvirt 9.0/QEMU 7.2 each
// checkpoint is a persistent dirty bitmap inside every qcow2 disk it covers, named exactly like
// the checkpoint (`qemu-img info` of a stopped domain's disk lists e.g. "name: ck-1, flags:
// [auto], granularity: 65536" per checkpoint). Every bitmap stays enabled ("auto"), so bitmap X
// records every write since checkpoint X, also writes made while the domain was stopped by
// anything that opens the image through QEMU's block layer. A stopped domain cannot serve a
// pull backup: read its qcow2 files directly (`qemu-nbd -r`; with `-B <checkpoint>` the meta
// context "qemu:dirty-bitmap:<checkpoint>" lists the blocks written since that checkpoint).
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

// Progress of a block job (bytes of `end` done; both may change while it runs).
struct BlockJobProgress {
  bool active = false;
  uint64_t cur = 0;
  uint64_t end = 0;
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;

  // Creates or replaces the persistent definition. Does not start it.
  virtual Status Define(const DomainSpec& spec) = 0;
  // Removes the definition (domain must not be running). OK if absent.
  virtual Status Undefine(const std::string& name) = 0;
  virtual Status Start(const std::string& name) = 0;
  // Graceful ACPI shutdown, then hard power-off after `timeout_ms`. OK if already stopped.
  virtual Status Shutdown(const std::string& name, int timeout_ms) = 0;
  // Hard power-off. OK if already stopped.
  virtual Status PowerOff(const std::string& name) = 0;
  virtual Status Reboot(const std::string& name) = 0;

  // NotFound if the domain does not exist.
  virtual Result<DomainInfo> Info(const std::string& name) = 0;
  // Every domain whose name starts with `prefix`.
  virtual Result<std::vector<DomainInfo>> List(const std::string& prefix) = 0;

  // Adds/removes a disk in the persistent definition and, if the domain runs, live.
  virtual Status AttachDisk(const std::string& name, const DiskAttachment& disk) = 0;
  virtual Status DetachDisk(const std::string& name, const std::string& target_dev) = 0;
  // Changes throttling of one disk (persistent, and live if running).
  virtual Status SetIoTune(const std::string& name, const std::string& target_dev,
                           const IoTune& tune) = 0;

  // Sends one guest-agent command ({"execute":..., "arguments":...}) and returns its "return".
  // Unavailable if the agent does not answer within `timeout_s`.
  virtual Result<Json> AgentCommand(const std::string& name, const Json& command,
                                    int timeout_s) = 0;

  // Copies the given disks of a domain as they were at one single instant into new qcow2 files.
  // Running domain: one QEMU transaction (libvirt push-mode backup), optionally with guest
  // fsfreeze around it when `quiesce`; stopped domain: offline copy. Returns whether the
  // file system was frozen.
  virtual Result<bool> SnapshotDisks(const std::string& name,
                                     const std::vector<SnapshotTarget>& targets,
                                     bool quiesce) = 0;

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
  // Ends the domain's pull backup: the NBD server stops, the socket and scratch files go. OK if
  // there is none (also when the domain is not running or does not exist).
  virtual Status EndPullBackup(const std::string& domain) = 0;
  // The domain's checkpoints, oldest first (parents before children). NotFound for an unknown
  // domain.
  virtual Result<std::vector<std::string>> ListCheckpoints(const std::string& domain) = 0;
  // Deletes a checkpoint and its bitmaps, running or stopped; the changes it recorded stay
  // covered by its older checkpoints (their bitmaps record every write since they were taken,
  // which is what libvirt's merge on delete amounts to). OK if the checkpoint or the domain is
  // absent. Allowed during a pull backup, even of its base: the export keeps its own bitmap.
  virtual Status DeleteCheckpoint(const std::string& domain, const std::string& checkpoint) = 0;

  // Starts a block pull on disk `disk` (target dev "vda" or the image path) of a running
  // domain: QEMU copies every cluster its backing chain holds into the top image and drops the
  // backing file when done (instant restore fills a disk this way while the VM runs). Returns
  // at once; watch it with GetBlockJob. Conflict "OperationNotAllowed" when the domain is not
  // running, Conflict when a block job already runs on the disk, NotFound for an unknown
  // domain or disk. The default implementation says the engine cannot do it.
  virtual Status BlockPull(const std::string& domain, const std::string& disk);
  // The block job running on `disk`: `active` false when there is none (it finished, failed
  // or was never started; libvirt forgets a job once it ends). NotFound for an unknown domain.
  virtual Result<BlockJobProgress> GetBlockJob(const std::string& domain, const std::string& disk);
};

}  // namespace stratus::compute
