// Hypervisor: the seam between Stratus and a VM engine, as the sum of its concerns.
//
// Each concern is a small interface with its own contract (what it is for, thread-safety, the
// error of each failure):
//   DomainLifecycle (domain_lifecycle.h)  Define, Undefine, Start, Shutdown, PowerOff, Reboot,
//                                         Info, List
//   DomainDisks (domain_disks.h)          AttachDisk, DetachDisk, SetIoTune
//   DomainNics (domain_nics.h)            AttachNic, DetachNic
//   GuestAgent (guest_agent.h)            AgentCommand
//   DiskSnapshots (disk_snapshots.h)      SnapshotDisks
//   PullBackups (pull_backups.h)          BeginPullBackup, EndPullBackup, ListCheckpoints,
//                                         DeleteCheckpoint
//   BlockJobs (block_jobs.h)              BlockPull, GetBlockJob (optional: defaults say
//                                         NotSupported)
// A VM engine implements all of them: LibvirtHypervisor (libvirt_hypervisor.h) for
// libvirt/QEMU; unit tests use a fake. Code that needs one concern only can take that interface.
//
// Implementations are thread-safe: every method may be called from any thread. Domains are
// persistent (they survive a restart of stratusd and of libvirtd); `name` is the engine-side
// name ("stratus-<vmUuid>") and `uuid` the VM's stable identity.
#pragma once

#include "compute/block_jobs.h"
#include "compute/disk_snapshots.h"
#include "compute/domain_disks.h"
#include "compute/domain_lifecycle.h"
#include "compute/domain_nics.h"
#include "compute/guest_agent.h"
#include "compute/pull_backups.h"

namespace stratus::compute {

class Hypervisor : public DomainLifecycle,
                   public DomainDisks,
                   public DomainNics,
                   public GuestAgent,
                   public DiskSnapshots,
                   public PullBackups,
                   public BlockJobs {
 public:
  ~Hypervisor() override = default;
};

}  // namespace stratus::compute
