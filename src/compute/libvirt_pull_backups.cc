// LibvirtHypervisor as PullBackups: pull-mode backup jobs with checkpoints, and the checkpoints'
// listing and deletion (online through libvirt, offline through the disk engine).

#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "compute/libvirt_hypervisor.h"
#include "compute/libvirt_internal.h"
#include "core/fs.h"
#include "core/json.h"

namespace stratus::compute {

namespace {

using libvirt::CheckpointHandle;
using libvirt::CheckpointList;
using libvirt::CString;
using libvirt::DomainHandle;
using Clock = std::chrono::steady_clock;

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

Result<LibvirtHypervisor::PreparedPullBackup> LibvirtHypervisor::PreparePullBackup(
    virDomainPtr dom, const std::string& name, const PullBackupSpec& spec) {
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
  PreparedPullBackup out;
  out.dac_label = live.dac_label;
  std::vector<PullBackupDiskXml> disks;
  for (const auto& dev : spec.target_devs) {
    PullBackupDiskXml d;
    d.target_dev = dev;
    d.scratch_path = ScratchPath(spec.scratch_dir, name, spec.checkpoint, dev);
    d.full = !spec.incremental_from.empty() && covered.count(dev) == 0;
    // The checkpoint does not exist yet, so no job can be using a file named after it: this is
    // a leftover of a crashed attempt, and libvirt refuses to reuse an existing scratch file.
    RETURN_IF_ERROR(RemoveFile(d.scratch_path));
    out.scratch_paths.push_back(d.scratch_path);
    disks.push_back(std::move(d));
  }
  out.backup_xml = PullBackupXml(all_disks, disks, spec.incremental_from, spec.socket_path);
  out.checkpoint_xml = CheckpointXml(spec.checkpoint, all_disks, bitmap_disks);
  return out;
}

Status LibvirtHypervisor::PullBackupFailed(const LastError& e, const std::string& name,
                                           const PullBackupSpec& spec,
                                           const PreparedPullBackup& prepared) {
  for (const auto& path : prepared.scratch_paths) {
    Status st = RemoveFile(path);
    if (!st.ok()) spdlog::warn("cannot remove scratch file: {}", st.message());
  }
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
                      " must be writable by QEMU's user " + prepared.dac_label +
                      "; pass a directory that does not exist yet)",
                  "socket_path");
  }
  return st;
}

void LibvirtHypervisor::UndoPullBackup(virDomainPtr dom, const std::string& name,
                                       const std::string& checkpoint) {
  Status end = EndPullBackupOf(dom, name);
  if (!end.ok()) spdlog::warn("cannot end a failed pull backup: {}", end.message());
  if (virDomainCheckpointPtr cp = virDomainCheckpointLookupByName(dom, checkpoint.c_str(), 0)) {
    CheckpointHandle h(cp);
    if (virDomainCheckpointDelete(cp, 0) < 0) {
      spdlog::warn("cannot delete checkpoint {} of domain {} after a failed pull backup: {}",
                   checkpoint, name, GetLastError().message);
    }
  }
}

Result<PullBackup> LibvirtHypervisor::StartPullBackup(virDomainPtr dom, const std::string& name,
                                                      const PullBackupSpec& spec) {
  ASSIGN_OR_RETURN(PreparedPullBackup prepared, PreparePullBackup(dom, name, spec));
  bool frozen = spec.quiesce && FreezeGuest(dom, name, "pull backup");
  int rc = virDomainBackupBegin(dom, prepared.backup_xml.c_str(), prepared.checkpoint_xml.c_str(), 0);
  LastError e;
  if (rc < 0) e = GetLastError();
  // The instant is fixed once the job has started (or failed): thaw right away.
  if (frozen) ThawGuest(dom, name);
  if (rc < 0) return PullBackupFailed(e, name, spec, prepared);

  auto backup = DescribePullBackup(dom, name, spec, frozen);
  // The caller cannot use a backup it knows nothing about: undo it.
  if (!backup.ok()) UndoPullBackup(dom, name, spec.checkpoint);
  return backup;
}

Result<GroupPullBackup> LibvirtHypervisor::BeginGroupPullBackup(
    const std::vector<GroupPullMember>& members) {
  if (members.empty()) return InvalidArgument("a group pull backup needs members", "members");
  std::set<std::string> names;
  for (const auto& m : members) {
    RETURN_IF_ERROR(ValidatePullBackupSpec(m.domain, m.spec));
    if (!names.insert(m.domain).second)
      return InvalidArgument("domain " + Quoted(m.domain) + " is listed twice", "members");
  }
  // Each domain's lock, in name order (so two groups sharing domains cannot deadlock).
  std::vector<std::shared_ptr<std::mutex>> mutexes;
  std::vector<std::unique_lock<std::mutex>> locks;
  for (const auto& n : names) mutexes.push_back(DomainLock(n));
  for (auto& m : mutexes) locks.emplace_back(*m);

  return WithConnection([&](virConnectPtr conn) -> Result<GroupPullBackup> {
    const size_t n = members.size();
    std::vector<DomainHandle> doms;
    std::vector<PreparedPullBackup> prepared;
    for (const auto& m : members) {
      ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, m.domain));
      doms.push_back(std::move(d));
    }
    // Everything that can be done before the instant is done before it: the freeze is only the
    // pause, the jobs' start and the resume.
    for (size_t i = 0; i < n; ++i) {
      auto p = PreparePullBackup(doms[i].get(), members[i].domain, members[i].spec);
      if (!p.ok()) {
        for (auto& done : prepared)
          for (const auto& path : done.scratch_paths) (void)RemoveFile(path);
        return p.status();
      }
      prepared.push_back(std::move(p).value());
    }
    std::vector<std::optional<LastError>> job_errors(n);
    std::vector<bool> frozen(n, false);
    for (size_t i = 0; i < n; ++i)
      frozen[i] = members[i].spec.quiesce && FreezeGuest(doms[i].get(), members[i].domain,
                                                         "group pull backup");
    // One step on every domain at once, each on its own thread (libvirt's connection serves
    // concurrent calls); returns each domain's error.
    auto on_all = [&](const std::function<int(size_t)>& step) {
      std::vector<std::optional<LastError>> errors(n);
      std::vector<std::thread> threads;
      for (size_t i = 1; i < n; ++i)
        threads.emplace_back([&, i] {
          if (step(i) < 0) errors[i] = GetLastError();
        });
      if (step(0) < 0) errors[0] = GetLastError();
      for (auto& t : threads) t.join();
      return errors;
    };
    // Every domain is paused before any job starts, and each resumes as soon as its own job
    // has started: a domain's writes before its instant all happened before the last pause,
    // so none can depend on another domain's write after that one's instant (a consistent
    // cut), and no domain is held longer than its own job's start.
    std::vector<bool> paused(n, false);
    std::vector<std::optional<LastError>> resume_errors(n);
    auto t0 = Clock::now();
    auto pause_errors = on_all([&](size_t i) {
      int rc = virDomainSuspend(doms[i].get());
      if (rc == 0) paused[i] = true;
      return rc;
    });
    std::optional<size_t> failed_pause;
    for (size_t i = 0; i < n; ++i)
      if (pause_errors[i]) failed_pause = i;
    std::vector<std::optional<LastError>> begin_errors(n);
    auto resume = [&](size_t i) {
      if (paused[i] && virDomainResume(doms[i].get()) < 0) resume_errors[i] = GetLastError();
    };
    if (!failed_pause) {
      begin_errors = on_all([&](size_t i) {
        int rc = virDomainBackupBegin(doms[i].get(), prepared[i].backup_xml.c_str(),
                                      prepared[i].checkpoint_xml.c_str(), 0);
        // The job's error, read before the resume's call replaces this thread's last error
        // (each thread writes its own slot).
        if (rc < 0) job_errors[i] = GetLastError();
        resume(i);
        return rc;
      });
      for (size_t i = 0; i < n; ++i)
        if (job_errors[i]) begin_errors[i] = job_errors[i];
    } else {
      for (size_t i = 0; i < n; ++i) resume(i);
    }
    auto t1 = Clock::now();
    for (size_t i = 0; i < n; ++i)
      if (frozen[i]) ThawGuest(doms[i].get(), members[i].domain);
    for (size_t i = 0; i < n; ++i)
      if (resume_errors[i])
        spdlog::error("group pull backup: cannot resume domain {}: {}", members[i].domain,
                      resume_errors[i]->message);

    Status failed;
    if (failed_pause) {
      failed = StatusFromError(*pause_errors[*failed_pause],
                               "pause domain " + Quoted(members[*failed_pause].domain));
    }
    for (size_t i = 0; i < n && failed.ok(); ++i)
      if (begin_errors[i])
        failed = PullBackupFailed(*begin_errors[i], members[i].domain, members[i].spec, prepared[i]);
    GroupPullBackup out;
    out.freeze_us = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
    if (failed.ok()) {
      for (size_t i = 0; i < n && failed.ok(); ++i) {
        auto b = DescribePullBackup(doms[i].get(), members[i].domain, members[i].spec, frozen[i]);
        if (!b.ok()) failed = b.status();
        else out.backups.push_back(std::move(b).value());
      }
    }
    if (!failed.ok()) {
      // All or nothing: the members whose job started are undone.
      for (size_t i = 0; i < n; ++i) {
        if (failed_pause || begin_errors[i]) {
          for (const auto& path : prepared[i].scratch_paths) (void)RemoveFile(path);
          continue;
        }
        UndoPullBackup(doms[i].get(), members[i].domain, members[i].spec.checkpoint);
      }
      return failed;
    }
    return out;
  });
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

Status LibvirtHypervisor::RedefineCheckpoint(const std::string& domain,
                                             const std::string& checkpoint,
                                             const std::vector<std::string>& target_devs) {
  if (!IsValidCheckpointName(checkpoint) || target_devs.empty())
    return InvalidArgument("redefining checkpoint '" + checkpoint + "' of domain " +
                               Quoted(domain) + ": a valid name and disks are needed",
                           "checkpoint");
  auto m = DomainLock(domain);
  std::lock_guard<std::mutex> lock(*m);
  return WithConnection([&](virConnectPtr conn) -> Status {
    ASSIGN_OR_RETURN(DomainHandle d, LookupDomain(conn, domain));
    if (LookupCheckpoint(d.get(), domain, checkpoint).ok()) return Status::Ok();
    ASSIGN_OR_RETURN(bool active, IsActive(d.get(), domain));
    std::string xml = "<domaincheckpoint>\n  <name>" + XmlEscape(checkpoint) +
                      "</name>\n  <creationTime>" + std::to_string(::time(nullptr)) +
                      "</creationTime>\n  <disks>\n";
    for (const auto& dev : target_devs)
      xml += "    <disk name='" + XmlEscape(dev) + "' checkpoint='bitmap' bitmap='" +
             XmlEscape(checkpoint) + "'/>\n";
    xml += "  </disks>\n</domaincheckpoint>\n";
    unsigned flags = VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE;
    if (active) flags |= VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE;
    virDomainCheckpointPtr cp = virDomainCheckpointCreateXML(d.get(), xml.c_str(), flags);
    if (cp != nullptr) {
      CheckpointHandle h(cp);
      return Status::Ok();
    }
    LastError e = GetLastError();
    if (active && e.code == VIR_ERR_CHECKPOINT_INCONSISTENT)
      return CheckpointNotFound(domain, checkpoint, "has no bitmap on every disk: " + e.message);
    return StatusFromError(e, "redefine checkpoint '" + checkpoint + "' of domain " + Quoted(domain));
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
    // The engine takes the image's write lock: if the domain was started meanwhile (by another
    // libvirt client), this fails instead of changing a disk in use. A bitmap already gone is
    // what was asked for.
    Status r = options_.disk_engine->RemoveBitmap(disk->path, cd.bitmap);
    if (!r.ok() && r.code() != StatusCode::kNotFound) {
      return Internal("cannot delete checkpoint '" + checkpoint + "' of domain " + Quoted(name) +
                      ": " + r.message());
    }
  }
  if (virDomainCheckpointDelete(cp, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY) == 0) {
    return Status::Ok();
  }
  LastError e = GetLastError();
  if (e.code == VIR_ERR_NO_DOMAIN_CHECKPOINT) return Status::Ok();
  return StatusFromError(e, "delete checkpoint '" + checkpoint + "' of domain " + Quoted(name));
}

}  // namespace stratus::compute
