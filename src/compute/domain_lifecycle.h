// DomainLifecycle: defines a VM's domain on the host, runs and stops it, and reports its state.
//
// The compute controller describes a domain (DomainSpec) and drives its power state; an engine
// makes it real. Engines: LibvirtHypervisor (libvirt_hypervisor.h) for libvirt/QEMU; unit tests
// use a fake.
//
// Domains are persistent: they survive a restart of stratusd and of the engine. `name` is the
// engine-side name ("stratus-<vmUuid>"), unique on the host; `uuid` the VM's stable identity.
//
// Thread-safety: implementations are safe for concurrent calls from any thread, also on the same
// domain (an engine serialises what must not interleave).
//
// Errors of every call besides those listed: Unavailable when the engine cannot be reached,
// Internal when it fails in a way not listed here. Messages name the domain.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compute/domain_disks.h"
#include "core/status.h"

namespace stratus::compute {

// One network interface: a virtio NIC whose tap `tap` (made by the engine, named so) joins
// bridge `bridge`, with MAC `mac` ("52:54:00:12:34:56").
struct NicAttachment {
  std::string mac;
  std::string bridge;
  std::string tap;
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
  std::vector<NicAttachment> nics;    // first is the primary NIC (the guest's eth0)
  std::string console_log_path;       // serial console is appended here (survives restarts)
  std::string metadata_json;          // stored in the domain's <metadata> (resource id etc.)
};

enum class PowerState { kRunning, kStopped, kPaused, kCrashed, kUnknown };
// "running", "stopped", "paused", "crashed", "unknown".
const char* PowerStateName(PowerState s);

struct DomainInfo {
  std::string name;
  std::string uuid;
  PowerState state = PowerState::kUnknown;
  int64_t boot_time_ms = 0;   // wall-clock ms when the running QEMU process started; 0 if not
  std::string metadata_json;  // as given in DomainSpec
};

class DomainLifecycle {
 public:
  virtual ~DomainLifecycle() = default;

  // Creates the persistent definition of `spec.name`, or replaces it when it exists (a running
  // domain runs on as it was until its next start). Does not start it. With an empty
  // `spec.uuid` a replaced domain keeps its UUID. InvalidArgument for a bad spec (empty name,
  // vcpus < 1, memory < 16 MiB, a bad disk, a disk target used twice); Conflict when a domain of
  // that name exists with another UUID.
  virtual Status Define(const DomainSpec& spec) = 0;
  // Removes the definition. OK if absent; Conflict while the domain runs.
  virtual Status Undefine(const std::string& name) = 0;
  // Boots a defined domain. OK when it already runs (a retried start); NotFound for an unknown
  // domain.
  virtual Status Start(const std::string& name) = 0;
  // Boots a defined domain with its vCPUs paused: the emulator is up, its devices made, the
  // guest has run no instruction (Start runs it: a paused domain is resumed). OK when the domain
  // is active already (paused or running); NotFound for an unknown domain.
  virtual Status StartPaused(const std::string& name) = 0;
  // Graceful ACPI shutdown, then hard power-off after `timeout_ms`; returns once the domain is
  // stopped. OK if already stopped; NotFound for an unknown domain.
  virtual Status Shutdown(const std::string& name, int timeout_ms) = 0;
  // Hard power-off. OK if already stopped; NotFound for an unknown domain.
  virtual Status PowerOff(const std::string& name) = 0;
  // Asks the guest to reboot and does not wait. NotFound for an unknown domain; Conflict when it
  // does not run.
  virtual Status Reboot(const std::string& name) = 0;

  // NotFound if the domain does not exist.
  virtual Result<DomainInfo> Info(const std::string& name) = 0;
  // Every domain whose name starts with `prefix`, sorted by name.
  virtual Result<std::vector<DomainInfo>> List(const std::string& prefix) = 0;
};

}  // namespace stratus::compute
