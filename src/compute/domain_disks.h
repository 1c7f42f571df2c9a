// DomainDisks: adds, removes and throttles the disks of a defined domain.
//
// The compute controller attaches data disks to a VM, detaches them and sets their I/O limits;
// the disk images themselves belong to storage (storage::DiskService) and are only referenced
// here by path. Engines: LibvirtHypervisor (libvirt_hypervisor.h); unit tests use a fake.
//
// Every change goes to the persistent definition and, while the domain runs, to the live domain
// as well, so it survives a restart of the domain, of stratusd and of the engine.
//
// Thread-safety: implementations are safe for concurrent calls from any thread, also on the same
// domain (an engine serialises what must not interleave).
//
// Errors of every call besides those listed: Unavailable when the engine cannot be reached,
// Internal when it fails in a way not listed here. Messages name the domain and the disk.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace stratus::compute {

// Per-disk throttling (libvirt <iotune>); 0 means "no limit".
struct IoTune {
  uint64_t total_iops_sec = 0;
  uint64_t total_bytes_sec = 0;
  bool operator==(const IoTune&) const = default;
};

struct DiskAttachment {
  std::string target_dev;        // "vda", "vdb", ...
  std::string path;              // image file on the host
  std::string format = "qcow2";  // "qcow2" or "raw"
  bool read_only = false;
  std::string serial;  // visible in the guest as /sys/block/vdX/serial (max 20 chars)
  IoTune iotune;
};

class DomainDisks {
 public:
  virtual ~DomainDisks() = default;

  // Attaches `disk` to domain `name` (persistent, and live if it runs). OK when the same image
  // is already attached at `disk.target_dev` (a retried attach). InvalidArgument for a bad
  // attachment (target not a virtio name like "vdb", relative path, unknown format); Conflict
  // when the target is in use by another disk; NotFound for an unknown domain.
  virtual Status AttachDisk(const std::string& name, const DiskAttachment& disk) = 0;
  // Detaches the disk at `target_dev` (live first if the domain runs, then from the persistent
  // definition). NotFound when no such disk is attached or the domain is unknown; Unavailable
  // when a running guest did not release the disk in time (the definition then keeps it).
  virtual Status DetachDisk(const std::string& name, const std::string& target_dev) = 0;
  // Replaces the I/O limits of the disk at `target_dev` (persistent, and live if it runs).
  // NotFound for an unknown domain or disk.
  virtual Status SetIoTune(const std::string& name, const std::string& target_dev,
                           const IoTune& tune) = 0;
};

}  // namespace stratus::compute
