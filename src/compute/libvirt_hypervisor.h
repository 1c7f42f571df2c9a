// LibvirtHypervisor: the Hypervisor engine for libvirt/QEMU, over libvirt's C API.
//
// Its code is split by the concerns of hypervisor.h: connection, DomainLifecycle,
// DomainDisks and GuestAgent in libvirt_hypervisor.cc, DiskSnapshots in
// libvirt_disk_snapshots.cc, PullBackups in libvirt_pull_backups.cc, BlockJobs in
// libvirt_block_jobs.cc; the helpers they share are in libvirt_internal.h.
//
// Domains are persistent libvirt domains defined from DomainXml() (domain_xml.h). The driver
// talks to one libvirtd connection (normally qemu:///system), which libvirt makes thread-safe;
// when libvirtd restarts, the first call that finds the connection dead reopens it and retries
// once (a non-idempotent call whose first attempt reached libvirtd may then report Conflict).
//
// Errors: NotFound when the domain does not exist (VIR_ERR_NO_DOMAIN); Conflict when the domain
// is in the wrong state for the request (e.g. Undefine while running, a disk target already in
// use); Unavailable when libvirtd or the guest agent cannot be reached or a guest did not release
// a disk in time; InvalidArgument for a bad spec; Internal otherwise. Messages name the domain
// and carry libvirt's own message.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "compute/domain_xml.h"
#include "compute/hypervisor.h"
#include "compute/libvirt_handles.h"
#include "storage/disk_engine.h"

namespace stratus::compute {

struct LastError;  // libvirt_internal.h

class LibvirtHypervisor : public Hypervisor {
 public:
  struct Options {
    std::string uri = "qemu:///system";
    // Works on the domains' disk files while they are stopped (offline copies, checkpoint
    // bitmaps). Required.
    storage::DiskEngine* disk_engine = nullptr;
    DomainXmlOptions xml;  // domain type ("qemu"/"kvm"), machine, disk cache/io
    // How long DetachDisk waits for a running guest to release a disk (includes the ~5 s
    // libvirt itself waits for the unplug event).
    int detach_timeout_ms = 15000;
    // How long SnapshotDisks/BeginPullBackup(quiesce=true) wait for guest-fsfreeze-freeze.
    int freeze_timeout_s = 10;
    // How long EndPullBackup waits for libvirt to finish the aborted backup job.
    int end_backup_timeout_ms = 30000;
    // Directory where libvirt keeps "<name>.pid" of running QEMU processes (boot time).
    // Empty: derived from the URI (/run/libvirt/qemu for qemu:///system).
    std::string qemu_run_dir;
  };

  // Connects to `uri` (e.g. "qemu:///system"); `domain_type` is "qemu" (TCG) or "kvm".
  // Unavailable if libvirtd does not answer, InvalidArgument for an unknown domain type.
  static Result<std::unique_ptr<LibvirtHypervisor>> Open(const std::string& uri,
                                                         const std::string& domain_type,
                                                         storage::DiskEngine* disk_engine);
  static Result<std::unique_ptr<LibvirtHypervisor>> Open(const Options& options);

  ~LibvirtHypervisor() override;

  // DomainLifecycle. Reboot asks the guest (agent
  // if present, else ACPI) and does not wait; a guest without an OS ignores it.
  Status Define(const DomainSpec& spec) override;
  Status Undefine(const std::string& name) override;
  Status Start(const std::string& name) override;
  Status StartPaused(const std::string& name) override;
  Status Shutdown(const std::string& name, int timeout_ms) override;
  Status PowerOff(const std::string& name) override;
  Status Reboot(const std::string& name) override;
  Result<DomainInfo> Info(const std::string& name) override;
  Result<std::vector<DomainInfo>> List(const std::string& prefix) override;

  // DomainDisks. Live detach needs the guest's cooperation (ACPI PCI hot-unplug): if the guest
  // has not released the disk within detach_timeout_ms, Unavailable is returned, the persistent
  // definition keeps the disk and the unplug request stays pending in QEMU.
  Status AttachDisk(const std::string& name, const DiskAttachment& disk) override;
  Status DetachDisk(const std::string& name, const std::string& target_dev) override;
  Status AttachNic(const std::string& name, const NicAttachment& nic) override;
  Status DetachNic(const std::string& name, const NicAttachment& nic) override;
  Status SetIoTune(const std::string& name, const std::string& target_dev,
                   const IoTune& tune) override;

  // GuestAgent, over libvirt's qemu-agent-command.
  Result<Json> AgentCommand(const std::string& name, const Json& command, int timeout_s) override;

  // DiskSnapshots. Running: libvirt push-mode backup (libvirt creates each dest file as root and
  // lends it to the QEMU user for the job; the parent directory only needs to be writable by
  // root). Stopped: `qemu-img convert -O qcow2` per disk. Dest files are removed again on
  // failure.
  Result<bool> SnapshotDisks(const std::string& name, const std::vector<SnapshotTarget>& targets,
                             bool quiesce) override;

  // PullBackups: libvirt backup job (virDomainBackupBegin mode='pull') with a checkpoint
  // created in the same QEMU transaction. The socket's directory, if missing, is created with
  // mode 0750 and owned by QEMU's user (the domain's DAC label), since QEMU itself binds the
  // socket; libvirt creates the scratch files as root and lends them to QEMU. Disks that cannot
  // hold a bitmap (raw, read-only) are exported but get no bitmap in the new checkpoint; disks
  // the `incremental_from` checkpoint does not cover are exported fully.
  Result<PullBackup> BeginPullBackup(const std::string& domain,
                                     const PullBackupSpec& spec) override;
  // Everything checked and prepared per domain first (XML, socket directory, scratch files);
  // then virDomainSuspend, virDomainBackupBegin and virDomainResume, each on every domain at
  // once (one thread per domain). The freeze is the time from the first pause to the last
  // resume. A domain that cannot be paused or whose job does not start fails the whole group:
  // the others' jobs are ended and their new checkpoints deleted.
  Result<GroupPullBackup> BeginGroupPullBackup(const std::vector<GroupPullMember>& members) override;
  // Aborts the job (the normal end of a pull backup; the checkpoint stays), waits up to
  // end_backup_timeout_ms for libvirt to tear it down (Unavailable after that), then removes
  // what QEMU or libvirt left of the socket and scratch files.
  Status EndPullBackup(const std::string& domain) override;
  Result<std::vector<std::string>> ListCheckpoints(const std::string& domain) override;
  // Running: virDomainCheckpointDelete (QEMU drops the bitmaps in one transaction). Stopped:
  // libvirt 9.0 refuses ("cannot delete checkpoint for inactive domain"), so the bitmaps are
  // removed with `qemu-img bitmap --remove` and then only libvirt's metadata is deleted.
  Status DeleteCheckpoint(const std::string& domain, const std::string& checkpoint) override;
  // virDomainCheckpointCreateXML with REDEFINE (and REDEFINE_VALIDATE when running: QEMU must
  // have loaded every bitmap).
  Status RedefineCheckpoint(const std::string& domain, const std::string& checkpoint,
                            const std::vector<std::string>& target_devs) override;
  // BlockJobs: virDomainBlockPull (no bandwidth limit) / virDomainGetBlockJobInfo.
  Status BlockPull(const std::string& domain, const std::string& disk) override;
  Result<BlockJobProgress> GetBlockJob(const std::string& domain, const std::string& disk) override;

  // The libvirt XML of a domain (live if running unless `inactive`). For tests and diagnostics.
  Result<std::string> DomainXmlDesc(const std::string& name, bool inactive);

 private:
  explicit LibvirtHypervisor(Options options);

  // The current connection, opened on first use or after it was found dead.
  Result<libvirt::SharedConnect> Connection();
  // Drops `dead` if it is still the current connection.
  void ForgetConnection(const libvirt::SharedConnect& dead);
  // Runs fn(conn); if fn fails and the connection turns out dead, reconnects and runs it once
  // more. fn returns Status or Result<T>. Defined in libvirt_internal.h.
  template <typename Fn>
  auto WithConnection(Fn&& fn) -> decltype(fn(static_cast<virConnectPtr>(nullptr)));

  // Serialises the operations that inspect and then change one domain's devices or run state
  // (Define, Undefine, Start, Attach/Detach, SetIoTune, SnapshotDisks, pull backups and
  // checkpoints) within this process.
  std::shared_ptr<std::mutex> DomainLock(const std::string& name);

  Result<DomainInfo> InfoOf(virDomainPtr dom);
  int64_t BootTimeMs(const std::string& name) const;
  Result<bool> SnapshotRunning(virDomainPtr dom, const std::string& name,
                               const std::vector<SnapshotTarget>& targets, bool quiesce);
  Result<bool> SnapshotStopped(virDomainPtr dom, const std::string& name,
                               const std::vector<SnapshotTarget>& targets);
  Result<PullBackup> StartPullBackup(virDomainPtr dom, const std::string& name,
                                     const PullBackupSpec& spec);
  // What a pull backup's start needs, checked and made ready: the job's and the checkpoint's
  // XML, the socket directory, the scratch file paths (none left over).
  struct PreparedPullBackup {
    std::string backup_xml, checkpoint_xml, dac_label;
    std::vector<std::string> scratch_paths;
  };
  Result<PreparedPullBackup> PreparePullBackup(virDomainPtr dom, const std::string& name,
                                               const PullBackupSpec& spec);
  // virDomainBackupBegin failed with `e`: its scratch files go; the error, named.
  Status PullBackupFailed(const LastError& e, const std::string& name,
                          const PullBackupSpec& spec, const PreparedPullBackup& prepared);
  // A started job the caller will not get: ended, its checkpoint deleted.
  void UndoPullBackup(virDomainPtr dom, const std::string& name, const std::string& checkpoint);
  Result<PullBackup> DescribePullBackup(virDomainPtr dom, const std::string& name,
                                        const PullBackupSpec& spec, bool frozen);
  Status EndPullBackupOf(virDomainPtr dom, const std::string& name);
  Status DeleteCheckpointOffline(virDomainPtr dom, virDomainCheckpointPtr cp,
                                 const std::string& name, const std::string& checkpoint);
  // guest-fsfreeze-freeze; false (logged) when the agent does not freeze.
  bool FreezeGuest(virDomainPtr dom, const std::string& name, const char* why);
  void ThawGuest(virDomainPtr dom, const std::string& name);

  const Options options_;
  std::string run_dir_;  // resolved options_.qemu_run_dir; immutable

  std::mutex conn_mu_;           // guards conn_
  libvirt::SharedConnect conn_;  // null until opened / after it died

  std::mutex locks_mu_;  // guards domain_locks_
  std::unordered_map<std::string, std::weak_ptr<std::mutex>> domain_locks_;
};

}  // namespace stratus::compute
