#include "compute/libvirt_hypervisor.h"

#include <dirent.h>
#include <grp.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <type_traits>

#include "core/fs.h"
#include "core/subprocess.h"

namespace stratus::compute {

namespace {

using libvirt::CheckpointHandle;
using libvirt::CheckpointList;
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

struct LastError {
  int code = VIR_ERR_INTERNAL_ERROR;
  std::string message = "unknown libvirt error";
};

// The calling thread's last libvirt error. Must be read before the next libvirt call.
LastError GetLastError() {
  LastError e;
  virErrorPtr err = virGetLastError();
  if (err != nullptr) {
    e.code = err->code;
    if (err->message != nullptr) e.message = err->message;
  }
  return e;
}

Status StatusFromError(const LastError& e, const std::string& what) {
  std::string msg = "cannot " + what + ": " + e.message;
  switch (e.code) {
    case VIR_ERR_NO_DOMAIN:
      return NotFound(msg);
    case VIR_ERR_OPERATION_INVALID:
      return Conflict(msg);
    case VIR_ERR_INVALID_ARG:
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_CONFIG_UNSUPPORTED:
      return InvalidArgument(msg);
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
    case VIR_ERR_RPC:
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AGENT_UNRESPONSIVE:
    case VIR_ERR_AGENT_UNSYNCED:
    case VIR_ERR_OPERATION_TIMEOUT:
      return Unavailable(msg);
    default:
      return Internal(msg);
  }
}

// Status for the libvirt call that just failed on this thread; `what` says what was attempted
// and on which domain ("start domain 'x'").
Status LibvirtFailure(const std::string& what) { return StatusFromError(GetLastError(), what); }

std::string Quoted(const std::string& name) { return "'" + name + "'"; }

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

Result<DomainHandle> LookupDomain(virConnectPtr conn, const std::string& name) {
  virDomainPtr d = virDomainLookupByName(conn, name.c_str());
  if (d == nullptr) {
    LastError e = GetLastError();
    if (e.code == VIR_ERR_NO_DOMAIN) {
      return NotFound("domain " + Quoted(name) + " not found", name);
    }
    return StatusFromError(e, "look up domain " + Quoted(name));
  }
  return DomainHandle(d);
}

Result<bool> IsActive(virDomainPtr dom, const std::string& name) {
  int r = virDomainIsActive(dom);
  if (r < 0) return LibvirtFailure("get the state of domain " + Quoted(name));
  return r == 1;
}

Result<std::string> XmlDesc(virDomainPtr dom, const std::string& name, bool inactive) {
  CString xml(virDomainGetXMLDesc(dom, inactive ? VIR_DOMAIN_XML_INACTIVE : 0));
  if (!xml) return LibvirtFailure("get the XML of domain " + Quoted(name));
  return std::string(xml.get());
}

Result<ParsedDomain> ParsedXml(virDomainPtr dom, const std::string& name, bool inactive) {
  ASSIGN_OR_RETURN(std::string xml, XmlDesc(dom, name, inactive));
  auto parsed = ParseDomainXml(xml);
  if (!parsed.ok()) {
    return Internal("cannot parse the XML of domain " + Quoted(name) + ": " +
                    parsed.status().message());
  }
  return std::move(parsed).value();
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
  timespec real{}, boot{};
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  int64_t offset_ms = (static_cast<int64_t>(real.tv_sec) - boot.tv_sec) * 1000 +
                      (static_cast<int64_t>(real.tv_nsec) - boot.tv_nsec) / 1000000;
  int64_t start_ms = offset_ms + ticks * 1000 / hz;
  // The offset is sampled anew on each call; round to the tick so repeated calls agree.
  int64_t tick_ms = std::max<int64_t>(1, 1000 / hz);
  return (start_ms + tick_ms / 2) / tick_ms * tick_ms;
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

Status ValidateSnapshotTargets(const std::string& name,
                               const std::vector<SnapshotTarget>& targets) {
  if (targets.empty()) {
    return InvalidArgument("snapshot of domain " + Quoted(name) + ": no disks given", "targets");
  }
  std::set<std::string> devs, dests;
  for (const auto& t : targets) {
    if (!devs.insert(t.target_dev).second) {
      return InvalidArgument(
          "snapshot of domain " + Quoted(name) + ": disk " + t.target_dev + " listed twice",
          "targets");
    }
    if (t.dest_path.empty() || t.dest_path[0] != '/') {
      return InvalidArgument("snapshot of domain " + Quoted(name) + ": destination '" +
                                 t.dest_path + "' for " + t.target_dev + " is not absolute",
                             "targets");
    }
    if (!dests.insert(t.dest_path).second) {
      return InvalidArgument(
          "snapshot of domain " + Quoted(name) + ": destination '" + t.dest_path + "' used twice",
          "targets");
    }
    if (PathExists(t.dest_path)) {
      return Conflict("snapshot of domain " + Quoted(name) + ": destination '" + t.dest_path +
                      "' already exists");
    }
  }
  return Status::Ok();
}

// Removes dest files after a failed snapshot (they did not exist before it started).
void RemoveDests(const std::vector<SnapshotTarget>& targets) {
  for (const auto& t : targets) {
    Status st = RemoveFile(t.dest_path);
    if (!st.ok()) spdlog::warn("cannot remove partial snapshot file: {}", st.message());
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Construction and connection

LibvirtHypervisor::LibvirtHypervisor(Options options) : options_(std::move(options)) {
  run_dir_ = options_.qemu_run_dir.empty() ? RunDirForUri(options_.uri) : options_.qemu_run_dir;
}

LibvirtHypervisor::~LibvirtHypervisor() = default;

Result<std::unique_ptr<LibvirtHypervisor>> LibvirtHypervisor::Open(const std::string& uri,
                                                                   const std::string& domain_type) {
  Options o;
  o.uri = uri;
  o.xml.domain_type = domain_type;
  return Open(o);
}

Result<std::unique_ptr<LibvirtHypervisor>> LibvirtHypervisor::Open(const Options& options) {
  if (options.xml.domain_type != "qemu" && options.xml.domain_type != "kvm") {
    return InvalidArgument("domain type '" + options.xml.domain_type + "' is not 'qemu' or 'kvm'",
                           "domain_type");
  }
  if (options.uri.empty()) return InvalidArgument("libvirt URI is empty", "uri");
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

template <typename Fn>
auto LibvirtHypervisor::WithConnection(Fn&& fn)
    -> decltype(fn(static_cast<virConnectPtr>(nullptr))) {
  using R = decltype(fn(static_cast<virConnectPtr>(nullptr)));
  for (int attempt = 0;; ++attempt) {
    auto conn = Connection();
    if (!conn.ok()) return R(conn.status());
    R r = fn(conn->get());
    if (StatusOf(r).ok() || attempt > 0 || virConnectIsAlive(conn->get()) == 1) return r;
    spdlog::warn("libvirt connection to {} was lost ({}); reconnecting", options_.uri,
                 StatusOf(r).message());
    ForgetConnection(*conn);
  }
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
          if (virDomainResume(d.get()) < 0)
            return LibvirtFailure("resume domain " + Quoted(name));
          return Status::Ok();
        }
        if (Clock::now() >= deadline)
          return Unavailable("domain " + Quoted(name) + " did not finish starting in 30 s");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    if (virDomainCreate(d.get()) == 0) return Status::Ok();
    LastError e = GetLastError();
    ASSIGN_OR_RETURN(active, IsActive(d.get(), name));
    if (active && e.code == VIR_ERR_OPERATION_INVALID) return Status::Ok();  // raced a start
    return StatusFromError(e, "start domain " + Quoted(name));
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
      auto deadline = start + std::chrono::milliseconds(options_.detach_timeout_ms);
      for (;;) {
        ASSIGN_OR_RETURN(active, IsActive(d.get(), name));
        if (!active) break;
        ASSIGN_OR_RETURN(ParsedDomain live, ParsedXml(d.get(), name, /*inactive=*/false));
        if (FindDisk(live, target_dev) == nullptr) break;
        if (Clock::now() >= deadline) {
          return Unavailable("cannot detach disk " + target_dev + " from running domain " +
                             Quoted(name) + ": the guest did not release it within " +
                             std::to_string(options_.detach_timeout_ms) +
                             " ms (hot-unplug needs a guest OS that handles ACPI PCI "
                             "hot-plug); the unplug request stays pending");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    if (in_config &&
        virDomainDetachDeviceFlags(d.get(), xml.c_str(), VIR_DOMAIN_AFFECT_CONFIG) < 0) {
      return LibvirtFailure("detach disk " + target_dev + " from the definition of domain " +
                            Quoted(name));
    }
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

// ---------------------------------------------------------------------------------------------
// Snapshots

Result<bool> LibvirtHypervisor::SnapshotDisks(const std::string& name,
                                              const std::vector<SnapshotTarget>& targets,
                                              bool quiesce) {
  RETURN_IF_ERROR(ValidateSnapshotTargets(name, targets));
  auto m = DomainLock(name);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Result<bool> {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    if (active) return SnapshotRunning(d.get(), name, targets, quiesce);
    return SnapshotStopped(d.get(), name, targets);
  });
}

Result<bool> LibvirtHypervisor::SnapshotRunning(virDomainPtr dom, const std::string& name,
                                                const std::vector<SnapshotTarget>& targets,
                                                bool quiesce) {
  ASSIGN_OR_RETURN(ParsedDomain live, ParsedXml(dom, name, /*inactive=*/false));
  std::vector<std::string> all_disks;
  for (const auto& disk : live.disks) all_disks.push_back(disk.target_dev);
  for (const auto& t : targets) {
    const ParsedDisk* disk = FindDisk(live, t.target_dev);
    if (disk == nullptr || disk->path.empty()) {
      return NotFound("snapshot of domain " + Quoted(name) + ": no disk " + t.target_dev,
                      t.target_dev);
    }
  }

  bool frozen = quiesce && FreezeGuest(dom, name, "snapshot");

  std::string xml = BackupXml(all_disks, targets);
  int rc = virDomainBackupBegin(dom, xml.c_str(), nullptr, 0);
  Status begin_status;
  if (rc < 0) begin_status = LibvirtFailure("start the disk snapshot of domain " + Quoted(name));
  // The point in time is fixed once the backup has started: thaw right away.
  if (frozen) ThawGuest(dom, name);
  if (!begin_status.ok()) {
    RemoveDests(targets);
    return begin_status;
  }

  // Wait for the push-mode job to end, then read its completion record.
  auto delay = std::chrono::milliseconds(10);
  for (;;) {
    int type = VIR_DOMAIN_JOB_NONE;
    TypedParams stats;
    if (virDomainGetJobStats(dom, &type, stats.ptr(), stats.count(), 0) < 0) {
      LastError e = GetLastError();
      auto active = IsActive(dom, name);
      if (active.ok() && !*active) break;  // domain stopped: the job ended with it
      virDomainAbortJob(dom);               // best effort: QEMU must stop writing the files
      RemoveDests(targets);
      return StatusFromError(e, "follow the disk snapshot of domain " + Quoted(name));
    }
    if (type == VIR_DOMAIN_JOB_NONE) break;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(250));
  }
  int type = VIR_DOMAIN_JOB_NONE;
  TypedParams stats;
  if (virDomainGetJobStats(dom, &type, stats.ptr(), stats.count(), VIR_DOMAIN_JOB_STATS_COMPLETED) <
      0) {
    Status st = LibvirtFailure("get the result of the disk snapshot of domain " + Quoted(name));
    RemoveDests(targets);
    return st;
  }
  int operation = -1;
  virTypedParamsGetInt(stats.get(), stats.size(), VIR_DOMAIN_JOB_OPERATION, &operation);
  if (type != VIR_DOMAIN_JOB_COMPLETED ||
      (operation != -1 && operation != VIR_DOMAIN_JOB_OPERATION_BACKUP)) {
    const char* errmsg = nullptr;
    virTypedParamsGetString(stats.get(), stats.size(), VIR_DOMAIN_JOB_ERRMSG, &errmsg);
    std::string why = errmsg != nullptr                  ? errmsg
                      : type == VIR_DOMAIN_JOB_CANCELLED ? "the job was cancelled"
                      : type == VIR_DOMAIN_JOB_NONE      ? "no completion record"
                                                         : "the job failed";
    RemoveDests(targets);
    return Internal("disk snapshot of domain " + Quoted(name) + " failed: " + why);
  }
  for (const auto& t : targets) {
    if (!PathExists(t.dest_path)) {
      RemoveDests(targets);
      return Internal("disk snapshot of domain " + Quoted(name) + " completed but " + t.dest_path +
                      " is missing");
    }
  }
  return frozen;
}

Result<bool> LibvirtHypervisor::SnapshotStopped(virDomainPtr dom, const std::string& name,
                                                const std::vector<SnapshotTarget>& targets) {
  ASSIGN_OR_RETURN(ParsedDomain config, ParsedXml(dom, name, /*inactive=*/true));
  std::vector<const ParsedDisk*> sources;
  for (const auto& t : targets) {
    const ParsedDisk* disk = FindDisk(config, t.target_dev);
    if (disk == nullptr || disk->path.empty()) {
      return NotFound("snapshot of domain " + Quoted(name) + ": no disk " + t.target_dev,
                      t.target_dev);
    }
    sources.push_back(disk);
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    std::string format = sources[i]->format.empty() ? "raw" : sources[i]->format;
    // qemu-img takes a shared lock on the source, so a concurrent start of the domain fails
    // rather than changing the disk under the copy.
    auto r = RunChecked({"qemu-img", "convert", "-f", format, "-O", "qcow2", sources[i]->path,
                         targets[i].dest_path});
    if (!r.ok()) {
      RemoveDests(targets);
      return Internal("snapshot of disk " + targets[i].target_dev + " of domain " + Quoted(name) +
                      " failed: " + r.status().message());
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Pull backups and checkpoints

namespace {

constexpr char kCheckpointNotFound[] = "CheckpointNotFound";

bool IsValidCheckpointName(const std::string& n) {
  if (n.empty() || n.size() > 64 || n[0] == '.') return false;
  for (char c : n) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status ValidatePullBackupSpec(const std::string& name, const PullBackupSpec& spec) {
  std::string what = "pull backup of domain " + Quoted(name);
  if (spec.target_devs.empty()) {
    return InvalidArgument(what + ": no disks given", "target_devs");
  }
  std::set<std::string> devs;
  for (const auto& dev : spec.target_devs) {
    if (!devs.insert(dev).second) {
      return InvalidArgument(what + ": disk " + dev + " listed twice", "target_devs");
    }
  }
  if (!IsValidCheckpointName(spec.checkpoint)) {
    return InvalidArgument(what + ": checkpoint name '" + spec.checkpoint +
                               "' is not 1-64 characters of [A-Za-z0-9._-] (not starting with "
                               "'.')",
                           "checkpoint");
  }
  if (!spec.incremental_from.empty() && spec.incremental_from == spec.checkpoint) {
    return InvalidArgument(
        what + ": incremental_from names the new checkpoint '" + spec.checkpoint + "'",
        "incremental_from");
  }
  // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
  if (spec.socket_path.empty() || spec.socket_path[0] != '/' || spec.socket_path.size() > 107 ||
      spec.socket_path.back() == '/') {
    return InvalidArgument(what + ": socket path '" + spec.socket_path +
                               "' is not an absolute file path of at most 107 bytes",
                           "socket_path");
  }
  if (spec.scratch_dir.empty() || spec.scratch_dir[0] != '/') {
    return InvalidArgument(what + ": scratch directory '" + spec.scratch_dir + "' is not absolute",
                           "scratch_dir");
  }
  return Status::Ok();
}

Status CheckpointNotFound(const std::string& name, const std::string& checkpoint,
                          const std::string& why) {
  return NotFound("checkpoint '" + checkpoint + "' of domain " + Quoted(name) + " " + why +
                      "; take a full backup instead",
                  checkpoint, kCheckpointNotFound);
}

// uid:gid of a DAC label: "+64055:+64055" (numeric) or "user:group".
std::optional<std::pair<uid_t, gid_t>> ParseDacLabel(const std::string& label) {
  size_t colon = label.find(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string user_name = label.substr(0, colon);
  std::string group_name = label.substr(colon + 1);
  auto number = [](const std::string& s) -> std::optional<unsigned long> {
    if (s.size() < 2 || s[0] != '+') return std::nullopt;
    char* end = nullptr;
    unsigned long v = std::strtoul(s.c_str() + 1, &end, 10);
    if (*end != '\0') return std::nullopt;
    return v;
  };
  std::optional<unsigned long> uid = number(user_name), gid = number(group_name);
  std::vector<char> buf(16384);
  if (!uid) {
    passwd pw{}, *found = nullptr;
    if (getpwnam_r(user_name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr)
      return std::nullopt;
    uid = found->pw_uid;
  }
  if (!gid) {
    struct group gr {};
    struct group* found = nullptr;
    if (getgrnam_r(group_name.c_str(), &gr, buf.data(), buf.size(), &found) != 0 ||
        found == nullptr)
      return std::nullopt;
    gid = found->gr_gid;
  }
  return std::pair<uid_t, gid_t>(static_cast<uid_t>(*uid), static_cast<gid_t>(*gid));
}

// QEMU (not libvirt) binds the NBD socket, as QEMU's user, and libvirt 9.0 does not prepare its
// directory: a missing directory is created for that user. An existing one is left as it is.
Status PrepareSocketDir(const std::string& name, const std::string& socket_path,
                        const std::string& dac_label) {
  std::string dir = std::filesystem::path(socket_path).parent_path().string();
  if (PathExists(dir)) return Status::Ok();
  RETURN_IF_ERROR(MakeDirs(dir, 0750));
  if (dac_label.empty()) return Status::Ok();  // QEMU runs as whoever runs libvirt: us
  auto ids = ParseDacLabel(dac_label);
  if (!ids) {
    return Internal("pull backup of domain " + Quoted(name) + ": cannot resolve QEMU's user '" +
                    dac_label + "' to give it " + dir);
  }
  if (chown(dir.c_str(), ids->first, ids->second) != 0) {
    return Internal("pull backup of domain " + Quoted(name) + ": cannot give " + dir +
                    " to QEMU's user " + dac_label + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string ScratchPath(const std::string& dir, const std::string& name,
                        const std::string& checkpoint, const std::string& dev) {
  return JoinPath(dir, name + "." + checkpoint + "." + dev + ".scratch.qcow2");
}

// The running backup job's description; NotFound when the domain has no backup job (or does
// not run).
Result<ParsedBackup> CurrentBackup(virDomainPtr dom, const std::string& name) {
  CString xml(virDomainBackupGetXMLDesc(dom, 0));
  if (!xml) {
    LastError e = GetLastError();
    if (e.code == VIR_ERR_NO_DOMAIN_BACKUP || e.code == VIR_ERR_OPERATION_INVALID) {
      return NotFound("domain " + Quoted(name) + " has no backup job", name);
    }
    return StatusFromError(e, "describe the backup job of domain " + Quoted(name));
  }
  auto parsed = ParseBackupXml(xml.get());
  if (!parsed.ok()) {
    return Internal("cannot parse the backup job of domain " + Quoted(name) + ": " +
                    parsed.status().message());
  }
  return std::move(parsed).value();
}

// The checkpoint, or NotFound (ARM code CheckpointNotFound) if the domain has none by that name.
Result<CheckpointHandle> LookupCheckpoint(virDomainPtr dom, const std::string& name,
                                          const std::string& checkpoint) {
  virDomainCheckpointPtr cp = virDomainCheckpointLookupByName(dom, checkpoint.c_str(), 0);
  if (cp == nullptr) {
    LastError e = GetLastError();
    if (e.code == VIR_ERR_NO_DOMAIN_CHECKPOINT) {
      return CheckpointNotFound(name, checkpoint, "does not exist");
    }
    return StatusFromError(e, "look up checkpoint '" + checkpoint + "' of domain " + Quoted(name));
  }
  return CheckpointHandle(cp);
}

Result<ParsedCheckpoint> CheckpointDesc(virDomainCheckpointPtr cp, const std::string& name,
                                        const std::string& checkpoint) {
  CString xml(virDomainCheckpointGetXMLDesc(cp, VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN));
  if (!xml) {
    return LibvirtFailure("describe checkpoint '" + checkpoint + "' of domain " + Quoted(name));
  }
  auto parsed = ParseCheckpointXml(xml.get());
  if (!parsed.ok()) {
    return Internal("cannot parse checkpoint '" + checkpoint + "' of domain " + Quoted(name) +
                    ": " + parsed.status().message());
  }
  return std::move(parsed).value();
}

// Names of the persistent bitmaps in a qcow2 image (the domain must not be running).
Result<std::vector<std::string>> Qcow2Bitmaps(const std::string& path) {
  ASSIGN_OR_RETURN(std::string out,
                   RunChecked({"qemu-img", "info", "-f", "qcow2", "--output=json", path}));
  auto info = ParseJson(out);
  if (!info.ok()) {
    return Internal("cannot parse `qemu-img info` of " + path + ": " + info.status().message());
  }
  std::vector<std::string> names;
  const Json* data = nullptr;
  if (info->contains("format-specific") && (*info)["format-specific"].contains("data")) {
    data = &(*info)["format-specific"]["data"];
  }
  if (data != nullptr && data->contains("bitmaps") && (*data)["bitmaps"].is_array()) {
    for (const auto& b : (*data)["bitmaps"]) names.push_back(b.value("name", std::string()));
  }
  return names;
}

}  // namespace

Result<PullBackup> LibvirtHypervisor::BeginPullBackup(const std::string& domain,
                                                      const PullBackupSpec& spec) {
  RETURN_IF_ERROR(ValidatePullBackupSpec(domain, spec));
  auto m = DomainLock(domain);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Result<PullBackup> {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, domain));
    return StartPullBackup(d.get(), domain, spec);
  });
}

Result<PullBackup> LibvirtHypervisor::StartPullBackup(virDomainPtr dom, const std::string& name,
                                                      const PullBackupSpec& spec) {
  ASSIGN_OR_RETURN(bool active, IsActive(dom, name));
  if (!active) {
    return Conflict("cannot start a pull backup of domain " + Quoted(name) +
                        ": it is not running (read its qcow2 files directly; each checkpoint is "
                        "a bitmap of the same name in them)",
                    name, "OperationNotAllowed");
  }
  ASSIGN_OR_RETURN(ParsedDomain live, ParsedXml(dom, name, /*inactive=*/false));
  std::vector<std::string> all_disks;
  for (const auto& disk : live.disks) all_disks.push_back(disk.target_dev);
  std::vector<std::string> bitmap_disks;
  for (const auto& dev : spec.target_devs) {
    const ParsedDisk* disk = FindDisk(live, dev);
    if (disk == nullptr || disk->path.empty()) {
      return NotFound("pull backup of domain " + Quoted(name) + ": no disk " + dev, dev);
    }
    // QEMU stores persistent bitmaps in qcow2 images only, and only in writable ones.
    if (disk->format == "qcow2" && !disk->read_only) bitmap_disks.push_back(dev);
  }

  auto running = CurrentBackup(dom, name);
  if (running.ok()) {
    return Conflict("cannot start a pull backup of domain " + Quoted(name) +
                    ": a backup job is already running (end it first)");
  }
  if (running.status().code() != StatusCode::kNotFound) return running.status();

  auto existing = LookupCheckpoint(dom, name, spec.checkpoint);
  if (existing.ok()) {
    return Conflict("cannot start a pull backup of domain " + Quoted(name) + ": checkpoint '" +
                        spec.checkpoint + "' already exists",
                    spec.checkpoint);
  }
  if (existing.status().arm_code() != kCheckpointNotFound) return existing.status();

  std::set<std::string> covered;  // disks with a bitmap of incremental_from
  if (!spec.incremental_from.empty()) {
    ASSIGN_OR_RETURN(CheckpointHandle base, LookupCheckpoint(dom, name, spec.incremental_from));
    ASSIGN_OR_RETURN(ParsedCheckpoint desc,
                     CheckpointDesc(base.get(), name, spec.incremental_from));
    for (const auto& disk : desc.disks) covered.insert(disk.target_dev);
  }

  RETURN_IF_ERROR(PrepareSocketDir(name, spec.socket_path, live.dac_label));
  RETURN_IF_ERROR(MakeDirs(spec.scratch_dir, 0711));
  std::vector<PullBackupDiskXml> disks;
  for (const auto& dev : spec.target_devs) {
    PullBackupDiskXml d;
    d.target_dev = dev;
    d.scratch_path = ScratchPath(spec.scratch_dir, name, spec.checkpoint, dev);
    d.full = !spec.incremental_from.empty() && covered.count(dev) == 0;
    // The checkpoint does not exist yet, so no job can be using a file named after it: this is
    // a leftover of a crashed attempt, and libvirt refuses to reuse an existing scratch file.
    RETURN_IF_ERROR(RemoveFile(d.scratch_path));
    disks.push_back(std::move(d));
  }
  auto remove_scratch = [&] {
    for (const auto& d : disks) {
      Status st = RemoveFile(d.scratch_path);
      if (!st.ok()) spdlog::warn("cannot remove scratch file: {}", st.message());
    }
  };
  std::string backup_xml = PullBackupXml(all_disks, disks, spec.incremental_from, spec.socket_path);
  std::string checkpoint_xml = CheckpointXml(spec.checkpoint, all_disks, bitmap_disks);

  bool frozen = spec.quiesce && FreezeGuest(dom, name, "pull backup");
  int rc = virDomainBackupBegin(dom, backup_xml.c_str(), checkpoint_xml.c_str(), 0);
  LastError e;
  if (rc < 0) e = GetLastError();
  // The instant is fixed once the job has started (or failed): thaw right away.
  if (frozen) ThawGuest(dom, name);
  if (rc < 0) {
    remove_scratch();
    switch (e.code) {
      case VIR_ERR_CHECKPOINT_INCONSISTENT:  // "missing or broken bitmap 'x' for disk 'vdb'"
        return CheckpointNotFound(name, spec.incremental_from, "cannot be used: " + e.message);
      case VIR_ERR_NO_DOMAIN_CHECKPOINT:  // deleted since the lookup above
        return CheckpointNotFound(name, spec.incremental_from, "does not exist");
      default:
        break;
    }
    Status st = StatusFromError(e, "start a pull backup of domain " + Quoted(name));
    if (e.message.find("bind") != std::string::npos) {
      return Status(st.code(), st.arm_code(),
                    st.message() + " (the directory of " + spec.socket_path +
                        " must be writable by QEMU's user " + live.dac_label +
                        "; pass a directory that does not exist yet)",
                    "socket_path");
    }
    return st;
  }

  auto backup = DescribePullBackup(dom, name, spec, frozen);
  if (!backup.ok()) {
    // The caller cannot use a backup it knows nothing about: undo it.
    Status end = EndPullBackupOf(dom, name);
    if (!end.ok()) spdlog::warn("cannot end a failed pull backup: {}", end.message());
    if (virDomainCheckpointPtr cp =
            virDomainCheckpointLookupByName(dom, spec.checkpoint.c_str(), 0)) {
      CheckpointHandle h(cp);
      if (virDomainCheckpointDelete(cp, 0) < 0) {
        spdlog::warn("cannot delete checkpoint {} of domain {} after a failed pull backup: {}",
                     spec.checkpoint, name, GetLastError().message);
      }
    }
  }
  return backup;
}

Result<PullBackup> LibvirtHypervisor::DescribePullBackup(virDomainPtr dom, const std::string& name,
                                                         const PullBackupSpec& spec, bool frozen) {
  auto job = CurrentBackup(dom, name);
  if (!job.ok()) {
    return Internal("pull backup of domain " + Quoted(name) +
                    " started but cannot be described: " + job.status().message());
  }
  PullBackup out;
  out.socket_path = job->socket_path.empty() ? spec.socket_path : job->socket_path;
  out.frozen = frozen;
  for (const auto& dev : spec.target_devs) {
    const ParsedBackupDisk* found = nullptr;
    for (const auto& d : job->disks) {
      if (d.target_dev == dev && d.backup) found = &d;
    }
    if (found == nullptr || found->export_name.empty()) {
      return Internal("pull backup of domain " + Quoted(name) + " does not export disk " + dev);
    }
    PullBackup::Disk disk;
    disk.target_dev = dev;
    disk.export_name = found->export_name;
    if (found->mode == "incremental") disk.bitmap = found->export_bitmap;
    virDomainBlockInfo info{};
    if (virDomainGetBlockInfo(dom, dev.c_str(), &info, 0) < 0) {
      return LibvirtFailure("get the size of disk " + dev + " of domain " + Quoted(name));
    }
    disk.size_bytes = info.capacity;
    out.disks.push_back(std::move(disk));
  }
  return out;
}

Status LibvirtHypervisor::EndPullBackup(const std::string& domain) {
  auto m = DomainLock(domain);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Status {
    auto d = LookupDomain(conn, domain);
    if (!d.ok()) return d.status().code() == StatusCode::kNotFound ? Status::Ok() : d.status();
    return EndPullBackupOf(d->get(), domain);
  });
}

Status LibvirtHypervisor::EndPullBackupOf(virDomainPtr dom, const std::string& name) {
  auto job = CurrentBackup(dom, name);
  if (!job.ok()) {
    return job.status().code() == StatusCode::kNotFound ? Status::Ok() : job.status();
  }
  if (job->mode != "pull") {
    return Conflict("cannot end the backup job of domain " + Quoted(name) +
                    ": it is a push-mode backup, not a pull backup");
  }
  // For a pull backup, aborting is the normal end: libvirt stops the NBD server, drops the
  // temporary bitmaps and scratch nodes, and keeps the checkpoint.
  if (virDomainAbortJob(dom) < 0) {
    LastError e = GetLastError();
    if (e.code != VIR_ERR_OPERATION_INVALID) {  // "no job is active": it ended meanwhile
      return StatusFromError(e, "end the pull backup of domain " + Quoted(name));
    }
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(options_.end_backup_timeout_ms);
  for (;;) {
    auto still = CurrentBackup(dom, name);
    if (!still.ok() && still.status().code() == StatusCode::kNotFound) break;
    if (!still.ok()) return still.status();
    if (Clock::now() >= deadline) {
      return Unavailable("the pull backup of domain " + Quoted(name) + " did not end within " +
                         std::to_string(options_.end_backup_timeout_ms) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // QEMU unlinks its socket and libvirt the scratch files it created; these only remain after
  // a crash of either, and would block the next backup using the same paths.
  std::vector<std::string> leftovers;
  if (!job->socket_path.empty()) leftovers.push_back(job->socket_path);
  for (const auto& d : job->disks) {
    if (!d.scratch_path.empty()) leftovers.push_back(d.scratch_path);
  }
  for (const auto& path : leftovers) {
    Status st = RemoveFile(path);
    if (!st.ok()) spdlog::warn("pull backup of domain {}: {}", name, st.message());
  }
  return Status::Ok();
}

Result<std::vector<std::string>> LibvirtHypervisor::ListCheckpoints(const std::string& domain) {
  return WithConnection([&](virConnectPtr conn) -> Result<std::vector<std::string>> {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, domain));
    CheckpointList list;
    int n =
        virDomainListAllCheckpoints(d.get(), list.ptr(), VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    list.set_size(n);
    if (n < 0) return LibvirtFailure("list the checkpoints of domain " + Quoted(domain));
    // Stratus takes each checkpoint with the previous one current, so the checkpoints form one
    // chain and parents-before-children is creation order.
    std::vector<std::string> names;
    for (int i = 0; i < list.size(); ++i) {
      const char* cp = virDomainCheckpointGetName(list[i]);
      if (cp != nullptr) names.emplace_back(cp);
    }
    return names;
  });
}

Status LibvirtHypervisor::DeleteCheckpoint(const std::string& domain,
                                           const std::string& checkpoint) {
  if (checkpoint.empty()) {
    return InvalidArgument("checkpoint name to delete from domain " + Quoted(domain) + " is empty",
                           "checkpoint");
  }
  auto m = DomainLock(domain);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Status {
    auto d = LookupDomain(conn, domain);
    if (!d.ok()) return d.status().code() == StatusCode::kNotFound ? Status::Ok() : d.status();
    auto cp = LookupCheckpoint(d->get(), domain, checkpoint);
    if (!cp.ok()) {
      return cp.status().arm_code() == kCheckpointNotFound ? Status::Ok() : cp.status();
    }
    ASSIGN_OR_RETURN(bool active, IsActive(d->get(), domain));
    if (!active) return DeleteCheckpointOffline(d->get(), cp->get(), domain, checkpoint);
    if (virDomainCheckpointDelete(cp->get(), 0) == 0) return Status::Ok();
    LastError e = GetLastError();
    if (e.code == VIR_ERR_NO_DOMAIN_CHECKPOINT) return Status::Ok();
    return StatusFromError(e, "delete checkpoint '" + checkpoint + "' of domain " + Quoted(domain));
  });
}

Status LibvirtHypervisor::DeleteCheckpointOffline(virDomainPtr dom, virDomainCheckpointPtr cp,
                                                  const std::string& name,
                                                  const std::string& checkpoint) {
  ASSIGN_OR_RETURN(ParsedCheckpoint desc, CheckpointDesc(cp, name, checkpoint));
  ASSIGN_OR_RETURN(ParsedDomain config, ParsedXml(dom, name, /*inactive=*/true));
  for (const auto& cd : desc.disks) {
    // The disk as it is attached now: a detached or replaced disk has nothing to remove.
    const ParsedDisk* disk = FindDisk(config, cd.target_dev);
    if (disk == nullptr || disk->path.empty() || disk->format != "qcow2") continue;
    auto bitmaps = Qcow2Bitmaps(disk->path);
    if (!bitmaps.ok()) {
      return Internal("cannot delete checkpoint '" + checkpoint + "' of domain " + Quoted(name) +
                      ": " + bitmaps.status().message());
    }
    if (std::find(bitmaps->begin(), bitmaps->end(), cd.bitmap) == bitmaps->end()) continue;
    // qemu-img takes the image's write lock: if the domain was started meanwhile (by another
    // libvirt client), this fails instead of changing a disk in use.
    auto r = RunChecked({"qemu-img", "bitmap", "-f", "qcow2", "--remove", disk->path, cd.bitmap});
    if (!r.ok()) {
      return Internal("cannot delete checkpoint '" + checkpoint + "' of domain " + Quoted(name) +
                      ": " + r.status().message());
    }
  }
  if (virDomainCheckpointDelete(cp, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY) == 0) {
    return Status::Ok();
  }
  LastError e = GetLastError();
  if (e.code == VIR_ERR_NO_DOMAIN_CHECKPOINT) return Status::Ok();
  return StatusFromError(e, "delete checkpoint '" + checkpoint + "' of domain " + Quoted(name));
}

// ---------------------------------------------------------------------------------------------
// Block jobs

Status LibvirtHypervisor::BlockPull(const std::string& name, const std::string& disk) {
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    if (!active)
      return Conflict("domain " + Quoted(name) + " is not running; its disk " + disk +
                          " cannot be pulled now",
                      disk, "OperationNotAllowed");
    if (virDomainBlockPull(d.get(), disk.c_str(), 0, 0) < 0)
      return LibvirtFailure("start a block pull of disk " + disk + " of domain " + Quoted(name));
    return Status::Ok();
  });
}

Result<BlockJobProgress> LibvirtHypervisor::GetBlockJob(const std::string& name,
                                                        const std::string& disk) {
  BlockJobProgress out;
  Status st = WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, name));
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), name));
    if (!active) return Status::Ok();
    virDomainBlockJobInfo info{};
    int r = virDomainGetBlockJobInfo(d.get(), disk.c_str(), &info, 0);
    if (r < 0)
      return LibvirtFailure("read the block job of disk " + disk + " of domain " + Quoted(name));
    out.active = r == 1;
    out.cur = info.cur;
    out.end = info.end;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

}  // namespace stratus::compute
