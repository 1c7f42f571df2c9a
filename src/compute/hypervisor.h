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
};

}  // namespace stratus::compute
