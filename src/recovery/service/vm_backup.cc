#include "recovery/service/vm_backup.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>

#include "core/fs.h"
#include "recovery/datapath/backup_disk.h"
#include "recovery/datapath/image_source.h"
#include "recovery/datapath/nbd_source.h"
#include "recovery/datapath/qemu_nbd_export.h"
#include "recovery/datapath/restore_disk.h"
#include "recovery/service/guest_hooks.h"

namespace stratus::recovery::service {

using datapath::BackupDiskOptions;
using datapath::BackupDiskResult;
using datapath::NbdSource;

std::string BitmapForPoint(const std::string& point_id) { return "stratus-" + point_id; }

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Whether `path` holds a usable (cleanly closed, recording) bitmap `name`, and why not.
bool UsableBitmap(storage::DiskEngine* engine, const std::string& path, const std::string& name,
                  std::string* why) {
  auto list = engine->ListBitmaps(path);
  if (!list.ok()) {
    *why = "cannot list the bitmaps of the disk: " + list.status().message();
    return false;
  }
  for (auto& b : *list) {
    if (b.name != name) continue;
    if (b.in_use) {
      *why = "the change-tracking bitmap was not saved cleanly (the VM stopped abruptly)";
      return false;
    }
    if (!b.enabled) {
      *why = "the change-tracking bitmap is disabled";
      return false;
    }
    return true;
  }
  *why = "no change-tracking bitmap since the previous point (the VM ran a backup while "
         "running, or the disk was replaced or restored)";
  return false;
}

// Reads one image file into the session.
Result<BackupDiskResult> ReadDisk(vault::BackupSession& session, const std::string& image,
                                  const std::string& disk_name, const vault::DiskIndex* previous,
                                  const std::string& bitmap, const VmBackupRequest& req,
                                  std::function<void(const datapath::BackupProgress&)> progress) {
  datapath::ImageSourceOptions io;
  io.image = image;
  io.bitmap = bitmap;
  io.socket_dir = req.scratch_dir;
  io.connections = 3;
  ASSIGN_OR_RETURN(auto img, datapath::OpenImageSource(io));
  if (!img.direct_unavailable.empty())
    spdlog::info("reading {} over NBD only: {}", image, img.direct_unavailable);
  BackupDiskOptions bo;
  bo.disk_name = disk_name;
  bo.previous = previous;
  if (!bitmap.empty()) bo.changed_context = datapath::DirtyBitmapContext(bitmap);
  bo.threads = req.threads > 0 ? req.threads : 3;
  bo.progress = std::move(progress);
  auto r = datapath::BackupDisk(session, *img.source, bo);
  Status stop = img.Close();
  if (!stop.ok()) spdlog::warn("stopping qemu-nbd for {}: {}", image, stop.ToString());
  return r;
}

}  // namespace

Result<VmBackupResult> BackupVm(vault::Vault& vault, compute::Hypervisor* hv,
                                storage::DiskEngine* engine,
                                const VmBackupRequest& req) {
  int64_t start = NowMs();
  if (req.disks.empty()) return InvalidArgument("the VM has no disks to back up");
  for (auto& d : req.disks)
    if (!PathExists(d.path))
      return NotFound("disk '" + d.name + "' of the VM has no file (" + d.path +
                          "): it was deleted or lost",
                      d.name, "DiskNotFound");
  // QEMU (another user) writes the scratch copies of a running VM here.
  RETURN_IF_ERROR(MakeDirs(req.scratch_dir, 0711));
  VmBackupResult out;
  const bool want_freeze = req.wanted != Consistency::kCrash;

  ASSIGN_OR_RETURN(auto session, vault.BeginBackup());
  // The checkpoint (running VM) or bitmap (stopped VM) of this point carries the point's id, so
  // the next backup finds the changes since exactly this point.
  const std::string this_cp = BitmapForPoint(session->point_id());
  const std::string prev_cp = req.previous ? BitmapForPoint(req.previous->point_id) : "";
  std::vector<uint64_t> done(req.disks.size(), 0), total(req.disks.size(), 0);
  std::mutex progress_mu;
  auto progress_for = [&](size_t i) {
    return [&, i](const datapath::BackupProgress& p) {
      if (!req.progress) return;
      std::lock_guard<std::mutex> lock(progress_mu);
      done[i] = p.bytes_done;
      total[i] = p.bytes_total;
      uint64_t a = 0, b = 0;
      for (size_t k = 0; k < done.size(); ++k) a += done[k], b += total[k];
      req.progress(a, b);
    };
  };
  vault::PointSpec spec;
  spec.parent_point_id = req.previous ? req.previous->point_id : "";
  spec.vm_config = req.vm_config;
  bool all_incremental = req.previous != nullptr;
  auto account = [&](const VmDisk& d, const BackupDiskResult& r) {
    const auto& st = r.stats;
    if (st.mode != "incremental") all_incremental = false;
    out.bytes_read += st.bytes_read;
    out.bytes_added += st.bytes_stored;
    out.bytes_total += st.disk_size;
    if (!st.fallback_reason.empty() && out.fallback_reason.empty())
      out.fallback_reason = "disk " + d.name + ": " + st.fallback_reason;
    out.disk_stats.push_back({{"name", d.name},
                              {"lun", d.lun},
                              {"mode", st.mode},
                              {"sizeBytes", st.disk_size},
                              {"bytesRead", st.bytes_read},
                              {"bytesAdded", st.bytes_stored},
                              {"chunksNew", st.chunks_new},
                              {"chunksReused", st.chunks_reused},
                              {"chunksDeduplicated", st.chunks_deduplicated}});
    spec.disks.push_back(r.index);
  };
  auto wrap = [](const VmDisk& d, const Status& s) {
    return Status(s.code(), s.arm_code(), "backing up disk " + d.name + ": " + s.message(),
                  s.target());
  };

  if (req.running) {
    // One instant for all disks: a libvirt pull-mode backup that also creates this point's
    // checkpoint; incremental from the previous point's checkpoint when libvirt still has it.
    compute::PullBackupSpec ps;
    for (auto& d : req.disks) ps.target_devs.push_back(d.target_dev);
    ps.checkpoint = this_cp;
    ps.socket_path = JoinPath(req.scratch_dir, "sock/nbd.sock");
    ps.scratch_dir = JoinPath(req.scratch_dir, "overlay");
    ps.quiesce = want_freeze;
    if (req.previous) {
      auto cps = hv->ListCheckpoints(req.domain);
      bool have = cps.ok() && std::find(cps->begin(), cps->end(), prev_cp) != cps->end();
      if (have) {
        ps.incremental_from = prev_cp;
      } else {
        out.fallback_reason = "the VM's checkpoint of the previous point is gone (the VM was "
                              "redefined, deallocated or backed up while stopped)";
      }
    }
    // A backup job left on the domain by a stratusd that was killed mid-backup would refuse the
    // new one. The caller holds the VM's lock, so no other Stratus job can own it: end it.
    Status stale = hv->EndPullBackup(req.domain);
    if (!stale.ok()) spdlog::warn("ending a stale backup job of {}: {}", req.domain, stale.ToString());
    // Application consistency: the guest's pre hooks quiesce the applications before the
    // instant; the post hooks (run whatever happens next) let them go on.
    const bool want_app = req.wanted == Consistency::kApplication;
    GuestHookRun pre;
    if (want_app) {
      pre = RunGuestHooks(AgentOf(hv, req.domain), "pre", req.hook_timeout_s);
      out.hooks.push_back(pre.ToJson());
    }
    auto pb = hv->BeginPullBackup(req.domain, ps);
    if (!pb.ok() && pb.status().arm_code() == "CheckpointNotFound" && !ps.incremental_from.empty()) {
      out.fallback_reason = "the previous checkpoint is unusable: " + pb.status().message();
      ps.incremental_from.clear();
      pb = hv->BeginPullBackup(req.domain, ps);
    }
    std::string post_problem;
    if (want_app && pre.agent_ok && pre.hooks > 0) {
      GuestHookRun post = RunGuestHooks(AgentOf(hv, req.domain), "post", req.hook_timeout_s);
      out.hooks.push_back(post.ToJson());
      if (!post.ok) post_problem = post.problem;
    }
    if (!pb.ok()) return pb.status();
    spec.created_ms = NowMs();
    if (pb->frozen) {
      out.consistency = ConsistencyName(Consistency::kFileSystem);
      if (want_app && pre.ok) {
        out.consistency = ConsistencyName(Consistency::kApplication);
        if (!post_problem.empty())
          out.consistency_reason = "captured after the pre-backup hooks succeeded, but " + post_problem;
      } else if (want_app) {
        out.consistency_reason = pre.problem + "; the guest file systems were frozen";
      }
    } else {
      out.consistency = ConsistencyName(Consistency::kCrash);
      if (want_freeze)
        out.consistency_reason = "the guest agent did not answer, so the file systems could not "
                                 "be frozen";
    }
    Status failed;
    for (size_t i = 0; i < req.disks.size() && failed.ok(); ++i) {
      const VmDisk& d = req.disks[i];
      const auto& ed = pb->disks[i];
      const vault::DiskIndex* prev = req.previous ? req.previous->FindDisk(d.name) : nullptr;
      NbdSource::Options so;
      so.address = "nbd+unix:///" + ed.export_name + "?socket=" + pb->socket_path;
      so.connections = 3;
      if (!ed.bitmap.empty()) so.meta_contexts.push_back(datapath::DirtyBitmapContext(ed.bitmap));
      auto src = NbdSource::Connect(so);
      if (!src.ok()) {
        failed = wrap(d, src.status());
        break;
      }
      BackupDiskOptions bo;
      bo.disk_name = d.name;
      bo.previous = prev;
      if (!ed.bitmap.empty() && prev) bo.changed_context = datapath::DirtyBitmapContext(ed.bitmap);
      bo.threads = req.threads > 0 ? req.threads : 3;
      bo.progress = progress_for(i);
      auto r = datapath::BackupDisk(*session, **src, bo);
      if (!r.ok()) {
        failed = wrap(d, r.status());
        break;
      }
      account(d, *r);
    }
    Status end = hv->EndPullBackup(req.domain);
    if (!end.ok()) spdlog::warn("ending the backup job of {}: {}", req.domain, end.ToString());
    if (failed.ok() && !end.ok()) failed = end;
    if (!failed.ok()) {
      hv->DeleteCheckpoint(req.domain, this_cp);  // no point refers to it
      return failed;
    }
  } else {
    spec.created_ms = NowMs();
    out.consistency = ConsistencyName(Consistency::kCrash);
    if (want_freeze)
      out.consistency_reason = "the VM was stopped: there was no guest to freeze; the disks are "
                               "as the VM left them";
    for (size_t i = 0; i < req.disks.size(); ++i) {
      const VmDisk& d = req.disks[i];
      const vault::DiskIndex* prev = req.previous ? req.previous->FindDisk(d.name) : nullptr;
      std::string bitmap;
      if (prev) {
        std::string why;
        if (UsableBitmap(engine, d.path, prev_cp, &why)) {
          bitmap = prev_cp;
        } else if (out.fallback_reason.empty()) {
          out.fallback_reason = "disk " + d.name + ": " + why;
        }
      } else if (req.previous && out.fallback_reason.empty()) {
        out.fallback_reason = "disk " + d.name + " is new since the previous point";
      }
      auto r = ReadDisk(*session, d.path, d.name, prev, bitmap, req, progress_for(i));
      if (!r.ok()) return wrap(d, r.status());
      account(d, *r);
    }
  }

  out.backup_type = !req.previous ? "Full" : all_incremental ? "Incremental" : "FullDedup";
  if (out.backup_type != "FullDedup") out.fallback_reason.clear();
  spec.consistency = out.consistency;
  spec.metadata = req.metadata;
  spec.metadata["backupType"] = out.backup_type;
  spec.metadata["consistencyReason"] = out.consistency_reason;
  spec.metadata["disks"] = out.disk_stats;
  spec.metadata["bytesRead"] = out.bytes_read;
  spec.metadata["bytesAdded"] = out.bytes_added;
  auto committed = session->Commit(std::move(spec));
  if (!committed.ok()) {
    if (req.running) hv->DeleteCheckpoint(req.domain, this_cp);
    return committed.status();
  }
  out.point = std::move(committed).value();

  // Older checkpoints/bitmaps are no longer needed: the next backup starts from this point.
  std::vector<std::string> libvirt_cps;
  if (auto cps = hv->ListCheckpoints(req.domain); cps.ok()) libvirt_cps = *cps;
  for (auto& cp : libvirt_cps)
    if (cp.rfind("stratus-", 0) == 0 && cp != this_cp) {
      Status st = hv->DeleteCheckpoint(req.domain, cp);
      if (!st.ok()) spdlog::warn("deleting checkpoint {} of {}: {}", cp, req.domain, st.ToString());
    }
  // 3. Stopped VM: start tracking changes since this point; older bitmaps are no longer needed.
  if (!req.running) {
    std::string name = BitmapForPoint(out.point.point_id);
    for (auto& d : req.disks) {
      auto list = engine->ListBitmaps(d.path);
      if (list.ok())
        for (auto& b : *list)
          if (b.name.rfind("stratus-", 0) == 0 && b.name != name) (void)engine->RemoveBitmap(d.path, b.name);
      Status st = engine->AddBitmap(d.path, name);
      if (!st.ok())
        spdlog::warn("disk {}: cannot add change-tracking bitmap: {} (the next backup reads all "
                     "allocated extents)",
                     d.path, st.ToString());
    }
  }
  out.duration_ms = NowMs() - start;
  return out;
}

Status RestoreVmDisk(vault::Vault& vault, const vault::RecoveryPoint& point,
                     const std::string& disk_name, const std::string& dest,
                     std::function<void(uint64_t, uint64_t)> progress) {
  datapath::RestoreOptions ro;
  ro.format = datapath::DiskFormat::kQcow2;
  ro.progress = std::move(progress);
  return datapath::RestoreDisk(vault, point, disk_name, dest, ro).status();
}

}  // namespace stratus::recovery::service
