// Libvirt XML for Stratus domains: DomainSpec -> <domain> XML, and the few facts Stratus reads
// back out of libvirt's XML (disks, iotune, metadata).
//
// Pure functions without I/O; thread-safe. Every string from a spec is XML-escaped; strings that
// XML 1.0 cannot carry (control characters) are rejected with InvalidArgument.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compute/hypervisor.h"
#include "core/status.h"

namespace stratus::compute {

// Namespace of the element holding DomainSpec::metadata_json inside <metadata>.
inline constexpr char kMetadataNamespace[] = "https://stratus.dev/xmlns/vm/1";
inline constexpr char kMetadataPrefix[] = "stratus";
inline constexpr char kMetadataElement[] = "vm";
// virtio-serial channel name qemu-guest-agent listens on.
inline constexpr char kGuestAgentChannel[] = "org.qemu.guest_agent.0";

// Host-level choices that are not part of a VM's spec.
struct DomainXmlOptions {
  // "qemu" (TCG, works nested and in containers) or "kvm" (hardware virtualisation).
  std::string domain_type = "qemu";
  // i440fx ("pc") boots faster than q35 under TCG and hot-plugs PCI devices without
  // pre-allocated root ports.
  std::string machine = "pc";
  // Disk cache/io modes. cache='none' (O_DIRECT) keeps the host page cache out of the guest's
  // durability path; io='native' needs O_DIRECT, use "threads" together with another cache mode.
  std::string disk_cache = "none";
  std::string disk_io = "native";
};

// Validates `spec` and renders the persistent <domain> definition:
//  - <domain type=options.domain_type>, x86_64 machine options.machine, ACPI/APIC, vcpus, memory;
//  - direct kernel boot (<kernel>/<initrd>/<cmdline>) when spec.kernel is set, else boot from hd;
//  - virtio disks (driver qcow2|raw, cache/io from options, discard='unmap'), <serial>, <iotune>
//    when non-zero;
//  - one <interface type='bridge'> per NIC (virtio, MAC, bridge, tap name);
//  - serial console on a pty logged (by virtlogd) to console_log_path, plus <console>;
//  - a virtio-serial channel for the guest agent; virtio-rng; no USB, graphics or balloon;
//  - on_poweroff/on_crash destroy, on_reboot restart;
//  - metadata_json as text of <stratus:vm xmlns:stratus=kMetadataNamespace> in <metadata>.
// InvalidArgument naming the field for an invalid spec (empty name, bad target, format...).
Result<std::string> DomainXml(const DomainSpec& spec, const DomainXmlOptions& options);

// <disk> element for one attachment (same rendering as inside DomainXml).
Result<std::string> DiskXml(const DiskAttachment& disk, const DomainXmlOptions& options);

// <interface type='bridge'> of one NIC (virtio, MAC, source bridge, target tap), each line
// prefixed by `indent`. The NIC must have been validated (DomainXml does).
std::string NicXml(const NicAttachment& nic, const std::string& indent = "");

// Minimal <disk> element that identifies a disk by target for virDomainDetachDeviceFlags.
std::string DiskTargetXml(const std::string& target_dev);

// <domainbackup> for a push-mode full backup without checkpoint: every target in `targets` is
// copied into a new qcow2 file at its dest_path; every other disk in `all_disks` gets
// backup='no'.
std::string BackupXml(const std::vector<std::string>& all_disks,
                      const std::vector<SnapshotTarget>& targets);

// One disk of a pull-mode backup.
struct PullBackupDiskXml {
  std::string target_dev;
  std::string scratch_path;  // qcow2 file libvirt creates for the copy-before-write data
  bool full = false;         // export fully even when the backup is incremental
};

// <domainbackup mode='pull'> served on the unix socket `socket_path`: every disk in `disks` is
// exported, incremental since checkpoint `incremental_from` unless that is empty or the disk
// says `full`; every other disk in `all_disks` gets backup='no'.
std::string PullBackupXml(const std::vector<std::string>& all_disks,
                          const std::vector<PullBackupDiskXml>& disks,
                          const std::string& incremental_from, const std::string& socket_path);

// <domaincheckpoint> named `name` with a bitmap on each disk in `bitmap_disks`; every other disk
// in `all_disks` gets checkpoint='no'.
std::string CheckpointXml(const std::string& name, const std::vector<std::string>& all_disks,
                          const std::vector<std::string>& bitmap_disks);

// Escapes & < > ' " for use in XML text and attribute values.
std::string XmlEscape(const std::string& s);

// What Stratus reads back from a libvirt domain XML (virDomainGetXMLDesc).
struct ParsedDisk {
  std::string target_dev;
  std::string device;  // "disk", "cdrom", ...
  std::string path;    // <source file=> or <source dev=>; empty for an empty drive
  std::string format;  // <driver type=>
  bool read_only = false;
  std::string serial;
  IoTune iotune;
};

struct ParsedDomain {
  std::string type;  // "qemu", "kvm"
  std::string name;
  std::string uuid;
  std::vector<ParsedDisk> disks;
  std::vector<std::string> nic_macs;  // <interface><mac address>, lower case
  std::string metadata_json;  // empty if the domain has no Stratus metadata
  // User:group QEMU runs as, from <seclabel model='dac'><label> of the live XML ("+64055:+64055"
  // or "user:group"); empty if absent.
  std::string dac_label;
};

// What Stratus reads back from virDomainBackupGetXMLDesc.
struct ParsedBackupDisk {
  std::string target_dev;
  bool backup = false;        // backup='yes'
  std::string mode;           // backupmode: "full" or "incremental"
  std::string export_name;    // exportname (pull mode)
  std::string export_bitmap;  // exportbitmap (pull mode, incremental); "" otherwise
  std::string scratch_path;   // <scratch file=>
};

struct ParsedBackup {
  std::string mode;         // "push" or "pull"
  std::string incremental;  // checkpoint name, "" for a full backup
  std::string socket_path;  // <server transport='unix' socket=>
  std::vector<ParsedBackupDisk> disks;
};

// Parses a <domainbackup>. InvalidArgument if it is not well-formed or not a <domainbackup>.
Result<ParsedBackup> ParseBackupXml(const std::string& xml);

// What Stratus reads back from virDomainCheckpointGetXMLDesc.
struct ParsedCheckpointDisk {
  std::string target_dev;
  std::string bitmap;  // name of the bitmap in the disk's image
};

struct ParsedCheckpoint {
  std::string name;
  std::string parent;                       // "" for the oldest
  int64_t creation_time = 0;                // seconds since the epoch
  std::vector<ParsedCheckpointDisk> disks;  // only disks with checkpoint='bitmap'
};

// Parses a <domaincheckpoint>. InvalidArgument if it is not well-formed or not one.
Result<ParsedCheckpoint> ParseCheckpointXml(const std::string& xml);

// Parses libvirt's domain XML. InvalidArgument if it is not well-formed or not a <domain>.
Result<ParsedDomain> ParseDomainXml(const std::string& xml);

// Parses the text of the Stratus metadata element as virDomainGetMetadata returns it.
Result<std::string> ParseMetadataElement(const std::string& xml);

// The disk with `target_dev`, or nullptr.
const ParsedDisk* FindDisk(const ParsedDomain& domain, const std::string& target_dev);

}  // namespace stratus::compute
