// LibvirtHypervisor: connection, DomainLifecycle, DomainDisks and GuestAgent. DiskSnapshots,
// PullBackups and BlockJobs are in libvirt_disk_snapshots.cc, libvirt_pull_backups.cc and
// libvirt_block_jobs.cc; helpers they share in libvirt_internal.h.

#include "compute/libvirt_hypervisor.h"

#include <dirent.h>
#include <libvirt/libvirt-qemu.h>
#include <signal.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <sstream>
#include <string_view>
#include <thread>

#include "compute/libvirt_internal.h"
#include "core/fs.h"
#include "core/resource_id.h"

namespace stratus::compute {

namespace {

using libvirt::CString;
using libvirt::DomainHandle;
using libvirt::DomainList;
using libvirt::SharedConnect;
using libvirt::TypedParams;
using Clock = std::chrono::steady_clock;

void QuietErrorHandler(void*, virErrorPtr) {}

// virInitialize must run once before threads use libvirt; the default error handler would print
// every error to stderr, so errors are only collected (virGetLastError) instead. Writing to the
// socket of a libvirtd that went away raises SIGPIPE, which would kill the process: libvirt
// expects applications to ignore it (done here unless the process installed its own handler).
void InitLibvirtOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, QuietErrorHandler);
    struct sigaction old {};
    if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
      struct sigaction ign {};
      ign.sa_handler = SIG_IGN;
      sigemptyset(&ign.sa_mask);
      sigaction(SIGPIPE, &ign, nullptr);
    }
  });
}

// Starts a defined domain. QEMU refuses an image another process holds the write lock of; a
// replication cycle or a backup of a stopped VM takes it for milliseconds (qemu-img adding or
// removing a bitmap), so a start that meets it tries again for up to 3 s. On failure, *err is
// libvirt's error of the last try.
bool CreateDomain(virDomainPtr dom, unsigned int flags, LastError* err) {
  auto deadline = Clock::now() + std::chrono::seconds(3);
  for (;;) {
    if (virDomainCreateWithFlags(dom, flags) == 0) return true;
    *err = GetLastError();
    if (err->message.find("Failed to get \"write\" lock") == std::string::npos &&
        err->message.find("Failed to get shared \"write\" lock") == std::string::npos)
      return false;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Hard power-off; OK if the domain is not running (also when it stops while we try).
Status DestroyDomain(virDomainPtr dom, const std::string& name) {
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(bool active, IsActive(dom, name));
    if (!active) return Status::Ok();
    if (virDomainDestroy(dom) == 0) return Status::Ok();
    LastError e = GetLastError();
    ASSIGN_OR_RETURN(active, IsActive(dom, name));
    if (!active) return Status::Ok();
    // libvirt reports a QEMU that does not die within its SIGKILL grace as a system error
    // ("Device or resource busy"); that usually resolves within seconds.
    if (e.code != VIR_ERR_SYSTEM_ERROR || attempt >= 2) {
      return StatusFromError(e, "power off domain " + Quoted(name));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

PowerState MapState(int state, int reason) {
  switch (state) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
    case VIR_DOMAIN_SHUTDOWN:  // still running, shutting down
      return PowerState::kRunning;
    case VIR_DOMAIN_PAUSED:
    case VIR_DOMAIN_PMSUSPENDED:
      return PowerState::kPaused;
    case VIR_DOMAIN_SHUTOFF:
      return reason == VIR_DOMAIN_SHUTOFF_CRASHED ? PowerState::kCrashed : PowerState::kStopped;
    case VIR_DOMAIN_CRASHED:
      return PowerState::kCrashed;
    default:
      return PowerState::kUnknown;
  }
}

// Start time of process `pid` as wall-clock ms (10 ms resolution), or 0. /proc/<pid>/stat's
// starttime counts clock ticks since boot on CLOCK_BOOTTIME.
int64_t ProcessStartMs(long pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return 0;
  size_t paren = stat->rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream in(stat->substr(paren + 1));
  std::string field;
  // After "(comm)": field 3 (state) ... field 22 (starttime) is the 20th.
  for (int i = 0; i < 20 && (in >> field); ++i) {
  }
  if (!in) return 0;
  long long ticks = std::strtoll(field.c_str(), nullptr, 10);
  long hz = sysconf(_SC_CLK_TCK);
  if (ticks <= 0 || hz <= 0) return 0;
  // The boot instant from /proc/stat's btime: a constant, so every call gives the same answer
  // (REALTIME - BOOTTIME sampled per call drifts with clock slewing and flipped the rounding).
  auto proc_stat = ReadFile("/proc/stat");
  if (!proc_stat.ok()) return 0;
  size_t at = proc_stat->find("\nbtime ");
  if (at == std::string::npos) return 0;
  long long btime = std::strtoll(proc_stat->c_str() + at + 7, nullptr, 10);
  if (btime <= 0) return 0;
  return btime * 1000 + ticks * 1000 / hz;
}

bool CmdlineHas(long pid, const std::string& arg, const std::string& value) {
  auto cmd = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmd.ok()) return false;
  std::string needle = arg + '\0' + value + '\0';
  return cmd->find(needle) != std::string::npos;
}

// Finds the QEMU process with "-uuid <uuid>" on its command line (when no pid file is known).
long FindQemuPidByUuid(const std::string& uuid) {
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return 0;
  long found = 0;
  while (dirent* ent = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(ent->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (CmdlineHas(pid, "-uuid", uuid)) {
      found = pid;
      break;
    }
  }
  closedir(dir);
  return found;
}

std::string RunDirForUri(const std::string& uri) {
  if (uri == "qemu:///system" || uri == "qemu+unix:///system") return "/run/libvirt/qemu";
  if (uri == "qemu:///session" || uri == "qemu+unix:///session") {
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg != nullptr) return std::string(xdg) + "/libvirt/qemu/run";
  }
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Construction and connection

LibvirtHypervisor::LibvirtHypervisor(Options options) : options_(std::move(options)) {
  run_dir_ = options_.qemu_run_dir.empty() ? RunDirForUri(options_.uri) : options_.qemu_run_dir;
}

LibvirtHypervisor::~LibvirtHypervisor() = default;

Result<std::unique_ptr<LibvirtHypervisor>> LibvirtHypervisor::Open(
    const std::string& uri, const std::string& domain_type, storage::DiskEngine* disk_engine) {
  Options o;
  o.uri = uri;
  o.disk_engine = disk_engine;
  o.xml.domain_type = domain_type;
  return Open(o);
}

Result<std::unique_ptr<LibvirtHypervisor>> LibvirtHypervisor::Open(const Options& options) {
  if (options.xml.domain_type != "qemu" && options.xml.domain_type != "kvm") {
    return InvalidArgument("domain type '" + options.xml.domain_type + "' is not 'qemu' or 'kvm'",
                           "domain_type");
  }
  if (options.uri.empty()) return InvalidArgument("libvirt URI is empty", "uri");
  if (options.disk_engine == nullptr) return InvalidArgument("no disk engine", "disk_engine");
  InitLibvirtOnce();
  std::unique_ptr<LibvirtHypervisor> h(new LibvirtHypervisor(options));
  auto conn = h->Connection();
  if (!conn.ok()) return conn.status();
  return h;
}

Result<SharedConnect> LibvirtHypervisor::Connection() {
  std::lock_guard<std::mutex> lock(conn_mu_);
  if (conn_) return conn_;
  virConnectPtr c = virConnectOpen(options_.uri.c_str());
  if (c == nullptr) {
    LastError e = GetLastError();
    return Unavailable("cannot connect to libvirt at " + options_.uri + ": " + e.message);
  }
  conn_ = libvirt::MakeSharedConnect(c);
  return conn_;
}

void LibvirtHypervisor::ForgetConnection(const SharedConnect& dead) {
  std::lock_guard<std::mutex> lock(conn_mu_);
  if (conn_ == dead) conn_.reset();
}

std::shared_ptr<std::mutex> LibvirtHypervisor::DomainLock(const std::string& name) {
  std::lock_guard<std::mutex> lock(locks_mu_);
  if (domain_locks_.size() > 256) {
    std::erase_if(domain_locks_, [](const auto& kv) { return kv.second.expired(); });
  }
  auto& weak = domain_locks_[name];
  auto m = weak.lock();
  if (!m) {
    m = std::make_shared<std::mutex>();
    weak = m;
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

Status LibvirtHypervisor::Define(const DomainSpec& spec) {
  ASSIGN_OR_RETURN(std::string xml, DomainXml(spec, options_.xml));
  auto m = DomainLock(spec.name);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Status {
    std::string define_xml = xml;
    auto existing = LookupDomain(conn, spec.name);
    if (existing.ok()) {
      char uuid[VIR_UUID_STRING_BUFLEN] = {};
      if (virDomainGetUUIDString(existing->get(), uuid) < 0) {
        return LibvirtFailure("get the UUID of domain " + Quoted(spec.name));
      }
      if (spec.uuid.empty()) {
        // Replacing: keep the identity libvirt gave the domain.
        DomainSpec with_uuid = spec;
        with_uuid.uuid = uuid;
        ASSIGN_OR_RETURN(define_xml, DomainXml(with_uuid, options_.xml));
      } else if (strcasecmp(uuid, spec.uuid.c_str()) != 0) {
        return Conflict("domain " + Quoted(spec.name) + " already exists with UUID " + uuid +
                        ", not " + spec.uuid);
      }
    } else if (existing.status().code() != StatusCode::kNotFound) {
      return existing.status();
    }
    DomainHandle d(virDomainDefineXMLFlags(conn, define_xml.c_str(), VIR_DOMAIN_DEFINE_VALIDATE));
    if (!d) return LibvirtFailure("define domain " + Quoted(spec.name));
    return Status::Ok();
  });
}

Status LibvirtHypervisor::Undefine(const std::string& name) {
  auto m = DomainLock(name);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Status {
    auto d = LookupDomain(conn, name);
    if (!d.ok()) return d.status().code() == StatusCode::kNotFound ? Status::Ok() : d.status();
    ASSIGN_OR_RETURN(bool active, IsActive(d->get(), name));
    if (active) {
      return Conflict("cannot undefine domain " + Quoted(name) + ": it is running");
    }
    unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                     VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM;
    if (virDomainUndefineFlags(d->get(), flags) == 0) return Status::Ok();
    LastError e = GetLastError();
    if (e.code == VIR_ERR_NO_DOMAIN) return Status::Ok();
    if (e.code == VIR_ERR_NO_SUPPORT || e.code == VIR_ERR_INVALID_ARG) {
      // A driver without checkpoint/NVRAM support refuses those flags.
      if (virDomainUndefine(d->get()) == 0) return Status::Ok();
      e = GetLastError();
      if (e.code == VIR_ERR_NO_DOMAIN) return Status::Ok();
    }
    return StatusFromError(e, "undefine domain " + Quoted(name));
  });
}

Status LibvirtHypervisor::Start(const std::string& name) {
  auto m = DomainLock(name);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    if (active) {
      // A domain libvirt is still starting (paused, reason "starting up": e.g. the daemon was
      // killed mid-start) is not running yet: wait for it, bounded, and resume a paused one.
      auto deadline = Clock::now() + std::chrono::seconds(30);
      for (;;) {
        int state = 0, reason = 0;
        if (virDomainGetState(d.get(), &state, &reason, 0) < 0)
          return LibvirtFailure("get the state of domain " + Quoted(name));
        if (state == VIR_DOMAIN_RUNNING) return Status::Ok();
        if (state == VIR_DOMAIN_SHUTOFF) break;  // gave up starting: create it below
        if (state == VIR_DOMAIN_PAUSED && reason != VIR_DOMAIN_PAUSED_STARTING_UP) {
          if (virDomainResume(d.get()) < 0) return LibvirtFailure("resume domain " + Quoted(name));
          return Status::Ok();
        }
        if (Clock::now() >= deadline)
          return Unavailable("domain " + Quoted(name) + " did not finish starting in 30 s");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    LastError e;
    if (CreateDomain(d.get(), 0, &e)) return Status::Ok();
    ASSIGN_OR_RETURN(active, IsActive(d.get(), name));
    if (active && e.code == VIR_ERR_OPERATION_INVALID) return Status::Ok();  // raced a start
    return StatusFromError(e, "start domain " + Quoted(name));
  });
}

Status LibvirtHypervisor::StartPaused(const std::string& name) {
  auto m = DomainLock(name);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    if (active) return Status::Ok();
    LastError e;
    if (CreateDomain(d.get(), VIR_DOMAIN_START_PAUSED, &e)) return Status::Ok();
    ASSIGN_OR_RETURN(active, IsActive(d.get(), name));
    if (active && e.code == VIR_ERR_OPERATION_INVALID) return Status::Ok();  // raced a start
    return StatusFromError(e, "start domain " + Quoted(name) + " paused");
  });
}

Status LibvirtHypervisor::Shutdown(const std::string& name, int timeout_ms) {
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    if (!active) return Status::Ok();
    if (virDomainShutdownFlags(d.get(), VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) == 0) {
      auto deadline = Clock::now() + std::chrono::milliseconds(std::max(0, timeout_ms));
      for (;;) {
        ASSIGN_OR_RETURN(active, IsActive(d.get(), name));
        if (!active) return Status::Ok();
        if (Clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      spdlog::info("domain {} did not shut down within {} ms; powering it off", name, timeout_ms);
    } else {
      LastError e = GetLastError();
      spdlog::info("ACPI shutdown of domain {} failed ({}); powering it off", name, e.message);
    }
    return DestroyDomain(d.get(), name);
  });
}

Status LibvirtHypervisor::PowerOff(const std::string& name) {
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    return DestroyDomain(d.get(), name);
  });
}

Status LibvirtHypervisor::Reboot(const std::string& name) {
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    if (virDomainReboot(d.get(), 0) < 0) return LibvirtFailure("reboot domain " + Quoted(name));
    return Status::Ok();
  });
}

// ---------------------------------------------------------------------------------------------
// Queries

int64_t LibvirtHypervisor::BootTimeMs(const std::string& name) const {
  long pid = 0;
  if (!run_dir_.empty()) {
    auto text = ReadFile(JoinPath(run_dir_, name + ".pid"));
    if (text.ok()) pid = std::strtol(text->c_str(), nullptr, 10);
  }
  if (pid <= 0) return 0;
  return ProcessStartMs(pid);
}

Result<DomainInfo> LibvirtHypervisor::InfoOf(virDomainPtr dom) {
  DomainInfo info;
  const char* name = virDomainGetName(dom);
  info.name = name != nullptr ? name : "";
  char uuid[VIR_UUID_STRING_BUFLEN] = {};
  if (virDomainGetUUIDString(dom, uuid) < 0) {
    return LibvirtFailure("get the UUID of domain " + Quoted(info.name));
  }
  info.uuid = uuid;
  int state = 0, reason = 0;
  if (virDomainGetState(dom, &state, &reason, 0) < 0) {
    return LibvirtFailure("get the state of domain " + Quoted(info.name));
  }
  info.state = MapState(state, reason);
  CString md(virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, kMetadataNamespace,
                                  VIR_DOMAIN_AFFECT_CURRENT));
  if (md) {
    auto text = ParseMetadataElement(md.get());
    if (!text.ok()) {
      return Internal("cannot parse the metadata of domain " + Quoted(info.name) + ": " +
                      text.status().message());
    }
    info.metadata_json = std::move(text).value();
  } else {
    LastError e = GetLastError();
    if (e.code != VIR_ERR_NO_DOMAIN_METADATA) {
      return StatusFromError(e, "get the metadata of domain " + Quoted(info.name));
    }
  }
  if (info.state == PowerState::kRunning || info.state == PowerState::kPaused) {
    info.boot_time_ms = BootTimeMs(info.name);
    if (info.boot_time_ms == 0) {
      // No pid file known for this URI (or it vanished): find QEMU by the domain's UUID.
      if (long pid = FindQemuPidByUuid(info.uuid); pid > 0) {
        info.boot_time_ms = ProcessStartMs(pid);
      }
    }
  }
  return info;
}

Result<DomainInfo> LibvirtHypervisor::Info(const std::string& name) {
  return WithConnection([&](virConnectPtr conn) -> Result<DomainInfo> {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    auto info = InfoOf(d.get());
    if (!info.ok() && info.status().code() == StatusCode::kNotFound) {
      return NotFound("domain " + Quoted(name) + " not found", name);
    }
    return info;
  });
}

Result<std::vector<DomainInfo>> LibvirtHypervisor::List(const std::string& prefix) {
  return WithConnection([&](virConnectPtr conn) -> Result<std::vector<DomainInfo>> {
    DomainList list;
    int n = virConnectListAllDomains(conn, list.ptr(), 0);
    list.set_size(n);
    if (n < 0) return LibvirtFailure("list domains");
    std::vector<DomainInfo> out;
    for (int i = 0; i < list.size(); ++i) {
      const char* name = virDomainGetName(list[i]);
      if (name == nullptr || std::string_view(name).substr(0, prefix.size()) != prefix) continue;
      auto info = InfoOf(list[i]);
      if (!info.ok()) {
        if (info.status().code() == StatusCode::kNotFound) continue;  // undefined meanwhile
        return info.status();
      }
      out.push_back(std::move(info).value());
    }
    std::sort(out.begin(), out.end(),
              [](const DomainInfo& a, const DomainInfo& b) { return a.name < b.name; });
    return out;
  });
}

Result<std::string> LibvirtHypervisor::DomainXmlDesc(const std::string& name, bool inactive) {
  return WithConnection([&](virConnectPtr conn) -> Result<std::string> {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    return XmlDesc(d.get(), name, inactive);
  });
}

// ---------------------------------------------------------------------------------------------
// Disks

// Waits until `present` says the live domain no longer has the device (or the domain stopped),
// at most `timeout_ms` from `start`.
static Status WaitForUnplug(virDomainPtr d, const std::string& name, Clock::time_point start,
                            int timeout_ms, const std::string& what,
                            const std::function<bool(const ParsedDomain&)>& present) {
  auto deadline = start + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    ASSIGN_OR_RETURN(bool active, IsActive(d, name));
    if (!active) return Status::Ok();
    ASSIGN_OR_RETURN(ParsedDomain live, ParsedXml(d, name, /*inactive=*/false));
    if (!present(live)) return Status::Ok();
    if (Clock::now() >= deadline) {
      return Unavailable("cannot detach " + what + " from running domain " + Quoted(name) +
                         ": the guest did not release it within " + std::to_string(timeout_ms) +
                         " ms (hot-unplug needs a guest OS that handles ACPI PCI hot-plug); the "
                         "unplug request stays pending");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Status LibvirtHypervisor::AttachDisk(const std::string& name, const DiskAttachment& disk) {
  ASSIGN_OR_RETURN(std::string xml, DiskXml(disk, options_.xml));
  auto m = DomainLock(name);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    ASSIGN_OR_RETURN(ParsedDomain config, ParsedXml(d.get(), name, /*inactive=*/true));
    const ParsedDisk* in_config = FindDisk(config, disk.target_dev);
    const ParsedDisk* in_live = nullptr;
    ParsedDomain live;
    if (active) {
      ASSIGN_OR_RETURN(live, ParsedXml(d.get(), name, /*inactive=*/false));
      in_live = FindDisk(live, disk.target_dev);
    }
    // Already there (a resumed operation repeating its attach): nothing to do.
    bool same_config = in_config != nullptr && in_config->path == disk.path;
    bool same_live = in_live != nullptr && in_live->path == disk.path;
    if (same_config && (!active || same_live)) return Status::Ok();
    if (same_live && in_config == nullptr) {
      // Live only (a crash between the two halves of an attach): complete the definition.
      if (virDomainAttachDeviceFlags(d.get(), xml.c_str(), VIR_DOMAIN_AFFECT_CONFIG) < 0)
        return LibvirtFailure("attach " + disk.path + " as " + disk.target_dev +
                              " to the definition of domain " + Quoted(name));
      return Status::Ok();
    }
    bool in_use = in_config != nullptr || in_live != nullptr;
    if (in_use) {
      return Conflict("cannot attach " + disk.path + " to domain " + Quoted(name) + ": target " +
                      disk.target_dev + " is in use");
    }
    unsigned flags = VIR_DOMAIN_AFFECT_CONFIG | (active ? VIR_DOMAIN_AFFECT_LIVE : 0);
    if (virDomainAttachDeviceFlags(d.get(), xml.c_str(), flags) < 0) {
      return LibvirtFailure("attach " + disk.path + " as " + disk.target_dev + " to domain " +
                            Quoted(name));
    }
    return Status::Ok();
  });
}

Status LibvirtHypervisor::DetachDisk(const std::string& name, const std::string& target_dev) {
  auto m = DomainLock(name);
  std::lock_guard<std::mutex> lock(*m);
  auto start = Clock::now();
  std::string xml = DiskTargetXml(target_dev);
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    ASSIGN_OR_RETURN(ParsedDomain config, ParsedXml(d.get(), name, /*inactive=*/true));
    bool in_config = FindDisk(config, target_dev) != nullptr;
    bool in_live = false;
    if (active) {
      ASSIGN_OR_RETURN(ParsedDomain live, ParsedXml(d.get(), name, /*inactive=*/false));
      in_live = FindDisk(live, target_dev) != nullptr;
    }
    if (!in_config && !in_live) {
      return NotFound("disk " + target_dev + " is not attached to domain " + Quoted(name),
                      target_dev);
    }
    if (in_live) {
      // Live first: the persistent definition drops the disk only once the guest released it,
      // so a refused unplug leaves a consistent definition behind.
      if (virDomainDetachDeviceFlags(d.get(), xml.c_str(), VIR_DOMAIN_AFFECT_LIVE) < 0) {
        LastError e = GetLastError();
        ASSIGN_OR_RETURN(active, IsActive(d.get(), name));
        if (active) {
          return StatusFromError(e, "detach disk " + target_dev + " from domain " + Quoted(name));
        }
      }
      // libvirt returns after waiting ~5 s for the guest even if the unplug is still pending.
      RETURN_IF_ERROR(WaitForUnplug(
          d.get(), name, start, options_.detach_timeout_ms, "disk " + target_dev,
          [&](const ParsedDomain& live) { return FindDisk(live, target_dev) != nullptr; }));
    }
    if (in_config &&
        virDomainDetachDeviceFlags(d.get(), xml.c_str(), VIR_DOMAIN_AFFECT_CONFIG) < 0) {
      return LibvirtFailure("detach disk " + target_dev + " from the definition of domain " +
                            Quoted(name));
    }
    return Status::Ok();
  });
}

Status LibvirtHypervisor::AttachNic(const std::string& name, const NicAttachment& nic) {
  std::string xml = NicXml(nic);
  std::string mac = ToLower(nic.mac);
  auto m = DomainLock(name);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    ASSIGN_OR_RETURN(ParsedDomain config, ParsedXml(d.get(), name, /*inactive=*/true));
    auto has = [&](const ParsedDomain& p) {
      return std::find(p.nic_macs.begin(), p.nic_macs.end(), mac) != p.nic_macs.end();
    };
    bool in_config = has(config), in_live = false;
    if (active) {
      ASSIGN_OR_RETURN(ParsedDomain live, ParsedXml(d.get(), name, /*inactive=*/false));
      in_live = has(live);
    }
    // Each half that is missing (a resumed operation may find one done).
    unsigned flags = (in_config ? 0 : VIR_DOMAIN_AFFECT_CONFIG) |
                     (active && !in_live ? VIR_DOMAIN_AFFECT_LIVE : 0);
    if (flags == 0) return Status::Ok();
    if (virDomainAttachDeviceFlags(d.get(), xml.c_str(), flags) < 0)
      return LibvirtFailure("attach NIC " + mac + " (" + nic.tap + ") to domain " + Quoted(name));
    return Status::Ok();
  });
}

Status LibvirtHypervisor::DetachNic(const std::string& name, const NicAttachment& nic) {
  std::string mac = ToLower(nic.mac);
  std::string xml = NicXml(nic);  // libvirt finds the interface by its MAC
  auto m = DomainLock(name);
  std::lock_guard<std::mutex> lock(*m);
  auto start = Clock::now();
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    auto has = [&](bool inactive) -> Result<bool> {
      ASSIGN_OR_RETURN(ParsedDomain p, ParsedXml(d.get(), name, inactive));
      return std::find(p.nic_macs.begin(), p.nic_macs.end(), mac) != p.nic_macs.end();
    };
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    ASSIGN_OR_RETURN(bool in_config, has(true));
    bool in_live = false;
    if (active) {
      ASSIGN_OR_RETURN(in_live, has(false));
    }
    if (!in_config && !in_live)
      return NotFound("no NIC " + mac + " on domain " + Quoted(name), mac);
    if (in_live) {
      if (virDomainDetachDeviceFlags(d.get(), xml.c_str(), VIR_DOMAIN_AFFECT_LIVE) < 0) {
        LastError e = GetLastError();
        ASSIGN_OR_RETURN(active, IsActive(d.get(), name));
        if (active) return StatusFromError(e, "detach NIC " + mac + " from domain " + Quoted(name));
      }
      RETURN_IF_ERROR(WaitForUnplug(d.get(), name, start, options_.detach_timeout_ms, "NIC " + mac,
                                    [&](const ParsedDomain& live) {
                                      return std::find(live.nic_macs.begin(), live.nic_macs.end(),
                                                       mac) != live.nic_macs.end();
                                    }));
    }
    if (in_config && virDomainDetachDeviceFlags(d.get(), xml.c_str(), VIR_DOMAIN_AFFECT_CONFIG) < 0)
      return LibvirtFailure("detach NIC " + mac + " from the definition of domain " + Quoted(name));
    return Status::Ok();
  });
}

Status LibvirtHypervisor::SetIoTune(const std::string& name, const std::string& target_dev,
                                    const IoTune& tune) {
  auto m = DomainLock(name);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    ASSIGN_OR_RETURN(ParsedDomain config, ParsedXml(d.get(), name, /*inactive=*/true));
    if (FindDisk(config, target_dev) == nullptr) {
      return NotFound("disk " + target_dev + " is not attached to domain " + Quoted(name),
                      target_dev);
    }
    TypedParams params;
    if (virTypedParamsAddULLong(params.ptr(), params.count(), params.capacity(),
                                VIR_DOMAIN_BLOCK_IOTUNE_TOTAL_BYTES_SEC,
                                tune.total_bytes_sec) < 0 ||
        virTypedParamsAddULLong(params.ptr(), params.count(), params.capacity(),
                                VIR_DOMAIN_BLOCK_IOTUNE_TOTAL_IOPS_SEC, tune.total_iops_sec) < 0) {
      return LibvirtFailure("build I/O limits for disk " + target_dev);
    }
    unsigned flags = VIR_DOMAIN_AFFECT_CONFIG | (active ? VIR_DOMAIN_AFFECT_LIVE : 0);
    if (virDomainSetBlockIoTune(d.get(), target_dev.c_str(), params.get(), params.size(), flags) <
        0) {
      return LibvirtFailure("set I/O limits of disk " + target_dev + " of domain " + Quoted(name));
    }
    return Status::Ok();
  });
}

// ---------------------------------------------------------------------------------------------
// Guest agent

namespace {

// One agent command on an open domain. Unavailable when the agent is absent, not connected or
// silent; Internal when the guest reported an error.
Result<Json> RunAgentCommand(virDomainPtr dom, const std::string& name, const Json& command,
                             int timeout_s) {
  std::string cmd = command.dump();
  int timeout = timeout_s > 0 ? timeout_s : VIR_DOMAIN_QEMU_AGENT_COMMAND_DEFAULT;
  CString reply(virDomainQemuAgentCommand(dom, cmd.c_str(), timeout, 0));
  std::string what = "run guest-agent command " + command.value("execute", std::string("?")) +
                     " in domain " + Quoted(name);
  if (!reply) {
    LastError e = GetLastError();
    switch (e.code) {
      case VIR_ERR_NO_DOMAIN:
        return NotFound("domain " + Quoted(name) + " not found", name);
      case VIR_ERR_INTERNAL_ERROR:  // the guest answered with an error
        return Internal("cannot " + what + ": " + e.message);
      default:  // not configured, not connected, not answering, domain not running
        return Unavailable("cannot " + what + ": " + e.message);
    }
  }
  auto parsed = ParseJson(reply.get());
  if (!parsed.ok()) {
    return Internal("cannot " + what + ": reply is not JSON: " + parsed.status().message());
  }
  if (parsed->contains("error")) {
    return Internal("cannot " + what + ": guest reported " + (*parsed)["error"].dump());
  }
  if (!parsed->contains("return")) return Json(nullptr);
  return (*parsed)["return"];
}

}  // namespace

Result<Json> LibvirtHypervisor::AgentCommand(const std::string& name, const Json& command,
                                             int timeout_s) {
  if (!command.is_object() || !command.contains("execute") || !command["execute"].is_string()) {
    return InvalidArgument("guest-agent command for domain " + Quoted(name) +
                               " needs a string \"execute\": " + command.dump(),
                           "command");
  }
  return WithConnection([&](virConnectPtr conn) -> Result<Json> {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    return RunAgentCommand(d.get(), name, command, timeout_s);
  });
}

bool LibvirtHypervisor::FreezeGuest(virDomainPtr dom, const std::string& name, const char* why) {
  auto r =
      RunAgentCommand(dom, name, {{"execute", "guest-fsfreeze-freeze"}}, options_.freeze_timeout_s);
  if (r.ok()) return true;
  spdlog::info("{} of domain {} proceeds without fsfreeze: {}", why, name, r.status().message());
  return false;
}

void LibvirtHypervisor::ThawGuest(virDomainPtr dom, const std::string& name) {
  Status thaw;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto r =
        RunAgentCommand(dom, name, {{"execute", "guest-fsfreeze-thaw"}}, options_.freeze_timeout_s);
    thaw = r.status();
    if (thaw.ok()) return;
  }
  spdlog::error("file systems of domain {} may still be frozen: {}", name, thaw.message());
}

}  // namespace stratus::compute
