#include "recovery/service/instant_restore.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "core/clock.h"
#include "core/fs.h"
#include "recovery/service/records.h"
#include "recovery/vault/crypto.h"

namespace stratus::recovery::service {
namespace {

constexpr int kPollMs = 500;
// Pull attempts that end without filling the disk, in a row, before the job fails.
constexpr int kMaxPullFailures = 5;

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

InstantRestore::InstantRestore(api::RegionContext ctx, compute::Hypervisor* hv,
                               storage::DiskService* disks, VaultRegistry* vaults)
    : ctx_(std::move(ctx)), hv_(hv), disks_(disks), vaults_(vaults) {}

InstantRestore::~InstantRestore() { Stop(); }

std::string InstantRestore::SocketPath(const std::string& job_name, const std::string& disk) const {
  std::string p = JoinPath(ctx_.data_dir, "nbd/" + job_name + "-" + disk + ".sock");
  if (p.size() < 100) return p;
  // sockaddr_un holds 107 bytes: fall back to a short name derived from the long one.
  std::string h = vault::Sha256Hex(p).substr(0, 24);
  return "/run/stratus-nbd/" + h + ".sock";
}

std::string InstantRestore::RegistryPath(const std::string& job_name) const {
  return JoinPath(ctx_.data_dir, "instant-restore/" + job_name + ".json");
}

bool InstantRestore::stopping() const {
  std::lock_guard<std::mutex> g(mu_);
  return stopping_;
}

bool InstantRestore::Owns(const std::string& job_name) const {
  return PathExists(RegistryPath(job_name));
}

bool InstantRestore::PointInUse(const std::string& point_name) const {
  std::lock_guard<std::mutex> g(mu_);
  for (const auto& [job, s] : servers_)
    if (s.point_name == point_name) return true;
  return false;
}

Status InstantRestore::Serve(const std::string& job_name, vault::Vault& v,
                             const vault::RecoveryPoint& point, const std::string& disk) {
  std::string sock = SocketPath(job_name, disk);
  RETURN_IF_ERROR(MakeDirs(std::filesystem::path(sock).parent_path().string(), 0711));
  datapath::VaultNbdServerOptions o;
  o.socket_path = sock;
  ASSIGN_OR_RETURN(auto server, datapath::VaultNbdServer::Start(v, point, disk, o));
  std::lock_guard<std::mutex> g(mu_);
  auto& js = servers_[job_name];
  js.point_name = point.point_id;
  js.by_disk[disk] = std::move(server);
  return Status::Ok();
}

void InstantRestore::StopServers(const std::string& job_name) {
  JobServers js;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = servers_.find(job_name);
    if (it == servers_.end()) return;
    js = std::move(it->second);
    servers_.erase(it);
  }
  for (auto& [disk, s] : js.by_disk) s->Stop();
}

Status InstantRestore::PrepareDisk(const ResourceId& job, vault::Vault& v,
                                   const vault::RecoveryPoint& point, const std::string& disk,
                                   const std::string& dest) {
  const vault::DiskIndex* d = point.FindDisk(disk);
  if (d == nullptr)
    return NotFound("recovery point '" + point.point_id + "' has no disk '" + disk + "'", disk,
                    "DiskNotFound");
  RETURN_IF_ERROR(Serve(job.name(), v, point, disk));
  // Owner-only, like every disk: libvirt gives it to QEMU when the VM starts.
  Status r = disks_->engine()->CreateOverNbd(dest, SocketPath(job.name(), disk), d->size);
  if (!r.ok()) {
    Abandon(job);
    return Status(r.code(), "InstantRestoreFailed",
                  "creating the instant-restore overlay of disk '" + disk + "' (" + dest +
                      "): " + r.message());
  }
  return Status::Ok();
}

void InstantRestore::Abandon(const ResourceId& job) {
  StopServers(job.name());
  RemoveFile(RegistryPath(job.name()));
}

void InstantRestore::UpdateJob(const ResourceId& job, const std::function<void(Json&)>& fn) {
  UpdateProperties(ctx_.store, job, fn);
}

Status InstantRestore::Fill(const ResourceId& job, const ResourceId& point_id,
                            const ResourceId& vm_id, const Json& targets, int64_t started_ms,
                            api::OperationContext& octx) {
  int64_t vm_started = ctx_.clock->NowMs() - started_ms;
  Json reg = {{"version", 1},
              {"jobId", job.ToString()},
              {"recoveryPointId", point_id.ToString()},
              {"vmId", vm_id.ToString()},
              {"startedMs", started_ms},
              {"disks", Json::array()}};
  Status registered = [&]() -> Status {
    for (const auto& t : targets) {
      std::string disk = t.value("disk", "");
      ASSIGN_OR_RETURN(ResourceId did, ResourceId::Parse(t.value("diskId", "")));
      ASSIGN_OR_RETURN(std::string path, disks_->PathOf(did));
      reg["disks"].push_back(
          {{"disk", disk}, {"path", path}, {"socket", SocketPath(job.name(), disk)}});
    }
    RETURN_IF_ERROR(MakeDirs(JoinPath(ctx_.data_dir, "instant-restore"), 0700));
    return WriteFileAtomic(RegistryPath(job.name()), reg.dump(2), 0600);
  }();
  if (!registered.ok()) {
    Abandon(job);
    return registered;
  }
  UpdateJob(job, [&](Json& p) {
    p["instant"] = true;
    p["timeToVmStartedMs"] = vm_started;
    p["vmId"] = vm_id.ToString();
  });
  spdlog::info("instant restore {}: VM {} started after {} ms; filling its disks", job.name(),
               vm_id.name(), vm_started);
  return PullAll(job, reg, [&](int percent, const std::string& message) {
    octx.SetProgress(percent, message);
  });
}

Status InstantRestore::PullAll(const ResourceId& job, const Json& reg, const ProgressFn& progress) {
  const std::string job_name = job.name();
  auto fail = [&](Status st) {
    Abandon(job);
    return st;
  };
  ASSIGN_OR_RETURN(ResourceId vm_id, ResourceId::Parse(reg.value("vmId", "")));
  uint64_t total = 0;
  std::vector<uint64_t> sizes;
  for (const auto& d : reg["disks"]) {
    auto usage = disks_->engine()->Usage(d.value("path", ""));
    uint64_t size = usage.ok() ? usage->virtual_bytes : 0;
    sizes.push_back(size);
    total += size;
  }
  uint64_t filled_before = 0;  // bytes of the disks already done
  size_t i = 0;
  for (const auto& d : reg["disks"]) {
    const std::string disk = d.value("disk", "");
    const std::string path = d.value("path", "");
    int failures = 0;
    int64_t last_update = 0;
    for (;;) {
      if (stopping())
        return Status(StatusCode::kUnavailable, kInstantRestoreSuspended,
                      "stratusd is stopping; instant restore " + job_name +
                          " continues when it starts again");
      // The overlay without a backing file is filled.
      auto inspected = disks_->engine()->Inspect(path);
      if (!inspected.ok()) return fail(inspected.status());
      if (inspected->backing.empty()) break;
      // Which domain, and is it running?
      auto vm = ctx_.store->Get(vm_id.Key());
      if (!vm.ok())
        return fail(Status(StatusCode::kNotFound, "InstantRestoreFailed",
                           "the restored VM " + vm_id.name() +
                               " was deleted before its disk '" + disk + "' was filled"));
      std::string dom = vm->internal.is_object() ? vm->internal.value("domain", "") : "";
      auto info = dom.empty() ? Result<compute::DomainInfo>(NotFound("no domain yet")) : hv_->Info(dom);
      if (!info.ok() || info->state != compute::PowerState::kRunning) {
        // Stopped (or still being created): keep serving, wait for the next start.
        std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs * 2));
        continue;
      }
      auto job_info = hv_->GetBlockJob(dom, path);
      if (job_info.ok() && job_info->active) {
        failures = 0;
        int64_t now = SteadyMs();
        if (now - last_update >= 1000) {
          last_update = now;
          uint64_t cur = job_info->end ? job_info->cur * sizes[i] / job_info->end : 0;
          uint64_t done = filled_before + cur;
          UpdateJob(job, [&](Json& p) {
            p["progress"] = {{"bytesDone", done},
                             {"bytesTotal", total},
                             {"percent", total ? static_cast<int>(done * 100 / total) : 0},
                             {"phase", "Filling"},
                             {"disk", disk}};
          });
          progress(total ? static_cast<int>(done * 100 / total) : 0, "filling disk " + disk);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
        continue;
      }
      // No job and still backed: the pull ended without filling, or has not started yet.
      std::optional<datapath::NbdReadError> bad;
      {
        std::lock_guard<std::mutex> g(mu_);
        auto it = servers_.find(job_name);
        if (it != servers_.end() && it->second.by_disk.count(disk))
          bad = it->second.by_disk[disk]->first_error();
      }
      if (bad)
        return fail(Status(StatusCode::kInternal, "ChunkCorrupt",
                           "instant restore cannot fill disk '" + disk + "' of the restored VM: " +
                               bad->message + " (chunk " + bad->chunk_id + ")"));
      if (failures >= kMaxPullFailures)
        return fail(Status(StatusCode::kInternal, "InstantRestoreFailed",
                           "the block pull of disk '" + disk + "' of VM " + vm_id.name() +
                               " ended without filling it " + std::to_string(failures) +
                               " times in a row"));
      Status st = hv_->BlockPull(dom, path);
      if (!st.ok())
        spdlog::warn("instant restore {}: block pull of {}: {}", job_name, disk, st.ToString());
      ++failures;
      // Backing off: right after a restart of stratusd, QEMU's NBD client reconnects to the
      // vault's export a moment after the export is back, and a pull started meanwhile ends at
      // once (a fresh-clone CI run saw five in 0.5 s). 0.5, 1, 2, 4, 4 s: about 11 s in all.
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min(kPollMs << (failures - 1), 4000)));
    }
    filled_before += sizes[i];
    ++i;
  }
  int64_t now = ctx_.clock->NowMs();
  UpdateJob(job, [&](Json& p) {
    p["timeToFullyRestoredMs"] = now - reg.value("startedMs", now);
    p["progress"] = {{"bytesDone", total}, {"bytesTotal", total}, {"percent", 100},
                     {"phase", "Filled"}};
  });
  spdlog::info("instant restore {}: every disk filled after {} ms", job_name,
               now - reg.value("startedMs", now));
  Abandon(job);
  return Status::Ok();
}

void InstantRestore::Resume(const Json& reg) {
  auto job = ResourceId::Parse(reg.value("jobId", ""));
  auto point_id = ResourceId::Parse(reg.value("recoveryPointId", ""));
  if (!job.ok() || !point_id.ok()) return;
  // Serve again as soon as the vault opens (a customer-key vault waits for its unlock).
  vault::Vault* v = nullptr;
  vault::RecoveryPoint point;
  while (!stopping()) {
    auto ov = vaults_->Open(point_id->Parent().Parent());
    Status st = ov.status();
    if (ov.ok()) {
      auto p = (*ov)->ReadPoint(point_id->name());
      if (p.ok()) {
        v = *ov;
        point = *p;
        break;
      }
      st = p.status();
    }
    spdlog::warn("instant restore {}: cannot serve its disks yet: {}", job->name(), st.ToString());
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  if (v == nullptr) return;
  for (const auto& d : reg["disks"]) {
    Status st = Serve(job->name(), *v, point, d.value("disk", ""));
    if (!st.ok())
      spdlog::error("instant restore {}: serving disk {} again: {}", job->name(),
                    d.value("disk", ""), st.ToString());
  }
  spdlog::info("instant restore {}: serving its disks again; resuming the fill", job->name());
  Status st = PullAll(*job, reg, [](int, const std::string&) {});
  if (st.arm_code() == kInstantRestoreSuspended) return;
  int64_t now = ctx_.clock->NowMs();
  int64_t started = reg.value("startedMs", now);
  UpdateJob(*job, [&](Json& p) {
    StampJobEnd(p, started, now);
    if (st.ok()) {
      p["status"] = "Completed";
      p["result"] = {{"vmId", reg.value("vmId", "")}};
    } else {
      p["status"] = "Failed";
      p["error"] = {{"code", st.arm_code()}, {"message", st.message()}};
    }
  });
}

void InstantRestore::Start() {
  std::string dir = JoinPath(ctx_.data_dir, "instant-restore");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".json") continue;
    auto text = ReadFile(e.path().string());
    if (!text.ok()) continue;
    Json reg = Json::parse(*text, nullptr, false);
    if (reg.is_discarded()) continue;
    std::lock_guard<std::mutex> g(mu_);
    resume_threads_.emplace_back([this, reg] { Resume(reg); });
  }
}

void InstantRestore::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> g(mu_);
    threads.swap(resume_threads_);
  }
  for (auto& t : threads)
    if (t.joinable()) t.join();
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [n, s] : servers_) names.push_back(n);
  }
  for (auto& n : names) {
    JobServers js;
    {
      std::lock_guard<std::mutex> g(mu_);
      js = std::move(servers_[n]);
      servers_.erase(n);
    }
    for (auto& [disk, s] : js.by_disk) s->Stop();
  }
}

}  // namespace stratus::recovery::service
