// BlockJobs: long-running copies inside a running domain's disk chain, done by the engine.
//
// Instant restore (recovery/service/instant_restore.h) starts a VM on qcow2 overlays backed by
// the vault's NBD exports, then has the engine pull every backing cluster into the overlays
// while the guest runs. Engines: LibvirtHypervisor (libvirt_hypervisor.h, virDomainBlockPull);
// unit tests use a fake whose pulls finish at once.
//
// An optional capability: an engine without block jobs inherits the defaults (block_jobs.cc),
// which return NotSupported (core/status.h: InvalidArgument, ARM code "NotSupported") and touch
// nothing.
//
// Thread-safety: implementations are safe for concurrent calls from any thread. A disk has at
// most one block job at a time.
//
// Errors of every call besides those listed: Unavailable when the engine cannot be reached,
// Internal when it fails in a way not listed here. Messages name the domain and the disk.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace stratus::compute {

// Progress of a block job (bytes of `end` done; both may change while it runs).
struct BlockJobProgress {
  bool active = false;
  uint64_t cur = 0;
  uint64_t end = 0;
};

class BlockJobs {
 public:
  virtual ~BlockJobs() = default;

  // Starts a block pull on disk `disk` (target dev "vda" or the image path) of a running
  // domain: QEMU copies every cluster its backing chain holds into the top image and drops the
  // backing file when done (instant restore fills a disk this way while the VM runs). Returns
  // at once; watch it with GetBlockJob. Conflict "OperationNotAllowed" when the domain is not
  // running, Conflict when a block job already runs on the disk, NotFound for an unknown
  // domain or disk. Default: NotSupported.
  virtual Status BlockPull(const std::string& domain, const std::string& disk);
  // The block job running on `disk`: `active` false when there is none (it finished, failed
  // or was never started; libvirt forgets a job once it ends). NotFound for an unknown domain.
  // Default: NotSupported.
  virtual Result<BlockJobProgress> GetBlockJob(const std::string& domain, const std::string& disk);
};

}  // namespace stratus::compute
