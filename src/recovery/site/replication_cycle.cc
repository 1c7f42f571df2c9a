// ReplicationService's cycles in the source region (docs/site-recovery.md "Capture"): one VM,
// or every VM of a consistency group at one instant, captured (a libvirt pull backup of the
// running VMs at once, or the stopped VMs' qcow2 files with a persistent bitmap added first),
// sent with SendCycle, and recorded once the target confirmed the point. A cycle cut on the way
// leaves its checkpoint and the extents it meant to send (<data>/replication/<item>/resume.json):
// the next cycle resumes it — it sends what changed since that checkpoint and the cut cycle's
// extents above how far the target holds them.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "core/clock.h"
#include "core/fs.h"
#include "recovery/datapath/image_source.h"
#include "recovery/service/guest_hooks.h"
#include "recovery/service/records.h"
#include "recovery/site/cycle_sender.h"
#include "recovery/site/replication_internal.h"
#include "recovery/site/replication_service.h"

namespace stratus::recovery::site {

using service::ListAll;
using namespace repl;  // NOLINT: this module's own helpers

std::string ReplicationService::GroupKey(const store::Record& outbound) {
  std::string g = outbound.body.value("group", "");
  return g.empty() ? "" : ToLower(outbound.body.value("targetRegion", "")) + "|" + g;
}

Status ReplicationService::RunCycle(const std::string& item) {
  ASSIGN_OR_RETURN(store::Record r, d_.ctx.store->Get(kOutboundPrefix + ToLower(item)));
  std::vector<store::Record> members;
  std::string group = GroupKey(r);
  if (group.empty()) {
    members.push_back(r);
  } else {
    ASSIGN_OR_RETURN(auto out, ListAll(d_.ctx.store, kOutboundPrefix, kOutboundType));
    for (auto& m : out)
      if (GroupKey(m) == group && m.body.value("state", "") == "Enabled") members.push_back(m);
  }
  return GroupCycle(members);
}

// One VM's part of a cycle (a group's cycle has one per member).
struct ReplicationService::Member {
  store::Record out;
  std::string item;
  store::Record vm;
  std::optional<api::ResourceLock> lock;
  std::string domain, prev, cp, scratch, maps_dir;
  uint64_t confirmed = 0;
  bool running = false, full = false, exported = false;
  bool base_not_empty = false;
  std::vector<VmDisk> disks;
  std::vector<datapath::ImageSource> refs;  // a reprotect's first cycle: CycleDisk::reference
  std::vector<std::unique_ptr<BlockHashes>> maps;
  std::vector<datapath::ImageSource> images;
  std::vector<std::unique_ptr<datapath::NbdSource>> sources;
  compute::PullBackup backup;
  CycleRequest req;
  Result<CycleStats> sent = Internal("no cycle ran");
  // A cut cycle this one resumes (0: none): its checkpoint (bitmap) and, by disk, the extents it
  // meant to send.
  uint64_t resume_seq = 0;
  std::string resume_cp;
  std::map<std::string, std::vector<datapath::Extent>> resume;
  std::vector<std::vector<datapath::Extent>> planned;  // this cycle's, once SendCycle knows
  bool resume_written = false;  // this cycle's resume.json is written: a cut can be resumed
  bool app_attempted = false;    // this cycle ran the guest's hooks and froze its file systems
};

namespace {

std::string ResumeFile(const std::string& maps_dir) { return JoinPath(maps_dir, "resume.json"); }

}  // namespace

// Checkpoint `name` of the member's VM is no base any more: libvirt's (a running VM), or the
// persistent bitmaps of that name in its qcow2 files (a stopped one).
void ReplicationService::DropCheckpoint(Member& m, const std::string& name) {
  if (m.running) (void)d_.hv->DeleteCheckpoint(m.domain, name);
  else
    for (auto& d : m.disks) (void)d_.engine->RemoveBitmap(d.path, name);
}

// What a cut cycle left to resume, if it is still of use: a cycle after the last confirmed one,
// with a checkpoint, over the same disks.
void ReplicationService::LoadResume(Member& m) {
  auto text = ReadFile(ResumeFile(m.maps_dir));
  if (!text.ok()) return;
  Json doc = Json::parse(*text, nullptr, false);
  const uint64_t seq = doc.is_object() ? doc.value("seq", uint64_t{0}) : 0;
  const std::string cp = doc.is_object() ? doc.value("checkpoint", "") : "";
  bool usable = seq > m.confirmed && !cp.empty() && doc["disks"].is_object() &&
                doc["disks"].size() == m.disks.size();
  std::map<std::string, std::vector<datapath::Extent>> lists;
  for (auto& d : m.disks) {
    if (!usable || !doc["disks"].contains(d.name) || !doc["disks"][d.name].is_array()) {
      usable = false;
      break;
    }
    for (auto& e : doc["disks"][d.name])
      if (e.is_array() && e.size() == 2 && e[0].is_number_unsigned() && e[1].is_number_unsigned())
        lists[d.name].push_back({e[0].get<uint64_t>(), e[1].get<uint64_t>(), 0});
  }
  if (!usable) {
    DropResume(m);
    return;
  }
  m.resume_seq = seq;
  m.resume_cp = cp;
  m.resume = std::move(lists);
  m.full = false;  // the cut cycle's checkpoint is the base
}

// The resume is of no use (its checkpoint is gone, the disks changed): the cycle starts from the
// last confirmed checkpoint, and the file goes (its checkpoint with it, when there is one).
void ReplicationService::DropResume(Member& m) {
  if (!m.resume_cp.empty() && m.resume_cp != m.prev) DropCheckpoint(m, m.resume_cp);
  m.resume_seq = 0;
  m.resume_cp.clear();
  m.resume.clear();
  m.full = m.prev.empty();
  (void)RemoveFile(ResumeFile(m.maps_dir));
}

// The target opened this cycle: should it be cut — the link, the target, or this daemon killed —
// the next cycle resumes it from its checkpoint with the extents it means to send, written down
// here before a byte is sent. False when they cannot be written down. (The checkpoint of the
// cycle it resumes, if any, goes in FinishMember: the running export reads from it.)
bool ReplicationService::KeepResume(Member& m, uint64_t seq) {
  if (m.planned.size() != m.disks.size()) return false;
  Json disks = Json::object();
  for (size_t i = 0; i < m.disks.size(); ++i) {
    Json list = Json::array();
    for (auto& e : m.planned[i]) list.push_back({e.offset, e.length});
    disks[m.disks[i].name] = std::move(list);
  }
  Json doc = {{"seq", seq}, {"checkpoint", m.cp}, {"disks", disks}};
  Status w = WriteFileAtomic(ResumeFile(m.maps_dir), doc.dump() + "\n", 0600);
  if (!w.ok()) {
    spdlog::warn("replication item {}: cannot keep cycle {} to resume: {}", m.item, seq,
                 w.ToString());
    return false;
  }
  return true;
}


Status ReplicationService::PrepareMember(Member& m) {
  m.item = m.out.body.value("item", "");
  auto vm = d_.ctx.store->Get(m.out.body.value("vmKey", ""));
  if (!vm.ok()) {
    // The VM is gone: replication ends here; the target keeps its points.
    RETURN_IF_ERROR(PutWithRetry(d_.ctx.store, m.out.key, [&](store::Record& r) {
      r.body["state"] = "SourceVmDeleted";
      r.body["lastError"] = "the VM was deleted";
      return true;
    }));
    return NotFound("the VM was deleted", m.item, "SourceVmDeleted");
  }
  m.vm = *vm;
  // The VM's one backup job slot (a backup job takes it too); not the VM's own lock, so that the
  // VM's operations never wait for a cycle.
  auto lock = d_.ctx.ops->TryLock({m.vm.key + "/datapath"});
  if (!lock.ok()) return Status(StatusCode::kConflict, "Busy", "a backup of the VM is running");
  m.lock.emplace(std::move(lock).value());
  m.confirmed = m.out.body.value("seq", uint64_t{0});
  m.prev = m.out.body.value("checkpoint", "");
  m.full = m.prev.empty();
  m.domain = m.vm.internal.value("domain", "");
  m.scratch = JoinPath(d_.ctx.data_dir, "scratch/srep-" + m.item.substr(0, 8));
  m.maps_dir = JoinPath(d_.ctx.data_dir, "replication/" + m.item);
  ASSIGN_OR_RETURN(m.disks, VmDisks(m.vm));
  // A reprotected item: its target's replica stands on that region's old copy of the disks.
  m.base_not_empty = m.out.body.value("baseNotEmpty", false);
  auto info = d_.hv->Info(m.domain);
  m.running = info.ok() && info->state == compute::PowerState::kRunning;
  RETURN_IF_ERROR(MakeDirs(m.scratch, 0711));
  RETURN_IF_ERROR(MakeDirs(m.maps_dir, 0700));
  LoadResume(m);
  if (m.running)
    (void)d_.hv->EndPullBackup(m.domain);  // a job a killed daemon left (we hold the VM's lock)
  // A VM started again after cycles of it stopped: the base is a bitmap in its qcow2 files that
  // libvirt has no record of (the stopped path adds bitmaps itself). QEMU loaded it at start:
  // make it a checkpoint again, so the cycle stays incremental (else CaptureRunning falls back
  // to a full one).
  if (m.running && m.resume_seq != 0) {
    // The cut cycle's checkpoint, if libvirt still has it (else the last confirmed one is the
    // base).
    auto cps = d_.hv->ListCheckpoints(m.domain);
    if (!cps.ok() || std::find(cps->begin(), cps->end(), m.resume_cp) == cps->end()) DropResume(m);
  }
  if (m.running && !m.prev.empty()) {
    auto cps = d_.hv->ListCheckpoints(m.domain);
    if (cps.ok() && std::find(cps->begin(), cps->end(), m.prev) == cps->end()) {
      std::vector<std::string> devs;
      for (auto& d : m.disks) devs.push_back(d.dev);
      Status r = d_.hv->RedefineCheckpoint(m.domain, m.prev, devs);
      if (r.ok())
        spdlog::info("replication item {}: the VM runs again; its base {} is a checkpoint again",
                     m.item, m.prev);
    }
  }
  // Checkpoints of cycles a killed daemon never recorded, and those whose deletion failed (a VM
  // that stopped while its last running cycle ended): only the confirmed one is a base. A
  // stopped VM's go too (their bitmaps and libvirt's record of them).
  if (auto cps = d_.hv->ListCheckpoints(m.domain); cps.ok())
    for (auto& c : *cps)
      if (c.rfind("srep-" + m.item.substr(0, 8) + "-", 0) == 0 && c != m.prev && c != m.resume_cp)
        (void)d_.hv->DeleteCheckpoint(m.domain, c);
  return Status::Ok();
}

// A reprotected item's first cycle: the extents the target lacks besides the bitmap's.
std::vector<datapath::Extent> ReplicationService::SeedExtents(const Member& m,
                                                              const std::string& disk) {
  std::vector<datapath::Extent> out;
  if (m.confirmed > 0 || m.resume_seq != 0) return out;  // a resume's extents hold them
  const Json seed = m.out.body.value("seedExtents", Json::object()).value(disk, Json::array());
  for (auto& e : seed)
    if (e.is_array() && e.size() == 2) out.push_back({e[0].get<uint64_t>(), e[1].get<uint64_t>(), 0});
  return out;
}

// A reprotect's first cycle: this region's replica of the point the target's copy was at (the
// item this one reverses, at its failover point), where there is one.
datapath::NbdSource* ReplicationService::ReferenceFor(Member& m, const std::string& disk) {
  // Not for a resume: the target may hold the cut cycle's bytes anywhere in its extents.
  if (m.full || m.confirmed > 0 || m.resume_seq != 0) return nullptr;
  const std::string ref_item = m.out.body.value("referenceItem", "");
  const uint64_t ref_seq = m.out.body.value("referenceSeq", uint64_t{0});
  if (ref_item.empty() || ref_seq == 0) return nullptr;
  auto chain = receiver_->Chain(ref_item, disk);
  if (!chain.ok()) return nullptr;
  auto image = (*chain)->PointImage(ref_seq);
  if (!image.ok()) return nullptr;
  datapath::ImageSourceOptions io;
  io.image = *image;
  io.socket_dir = m.scratch;
  io.connections = 1;
  io.force_share = true;
  auto src = datapath::OpenImageSource(io);
  if (!src.ok()) {
    spdlog::warn("replication item {}: the replica of point {} cannot be read ({}): its changed "
                 "clusters are sent whole", m.item, ref_seq, src.status().ToString());
    return nullptr;
  }
  m.refs.push_back(std::move(src).value());
  return m.refs.back().source.get();
}

// What B holds per 4 KiB block, as of the last confirmed cycle (a full cycle starts afresh).
BlockHashes* ReplicationService::MapFor(Member& m, size_t i, uint64_t size) {
  m.maps.push_back(std::make_unique<BlockHashes>(
      BlockHashes::Load(JoinPath(m.maps_dir, m.disks[i].name + ".hashes"), size,
                        m.full ? ~uint64_t{0} : m.confirmed)));
  return m.maps.back().get();
}

Status ReplicationService::CaptureRunning(std::vector<Member*>& running, Json& meta, bool quiesce) {
  if (running.empty()) return Status::Ok();
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::vector<compute::GroupPullMember> gm;
    for (auto* m : running) {
      compute::GroupPullMember g;
      g.domain = m->domain;
      for (auto& d : m->disks) g.spec.target_devs.push_back(d.dev);
      g.spec.checkpoint = m->cp;
      g.spec.incremental_from = m->resume_seq != 0 ? m->resume_cp : m->full ? "" : m->prev;
      g.spec.quiesce = quiesce;
      g.spec.socket_path = JoinPath(m->scratch, "sock/nbd.sock");
      g.spec.scratch_dir = JoinPath(m->scratch, "overlay");
      gm.push_back(std::move(g));
    }
    auto got = running.size() == 1 ? [&]() -> Result<compute::GroupPullBackup> {
      // One VM: no pause needed, the backup job's start is its instant.
      ASSIGN_OR_RETURN(compute::PullBackup b, d_.hv->BeginPullBackup(gm[0].domain, gm[0].spec));
      compute::GroupPullBackup one;
      one.backups.push_back(std::move(b));
      return one;
    }() : d_.hv->BeginGroupPullBackup(gm);
    if (!got.ok() && got.status().arm_code() == "CheckpointNotFound" && attempt < 2) {
      // A member's base is gone (the VM was stopped and started, a disk replaced): that member
      // resumes nothing, or sends a full cycle; the group keeps its one instant.
      bool changed = false;
      for (auto* m : running)
        if (m->resume_seq != 0 && got.status().target() == m->resume_cp) {
          spdlog::warn("replication item {}: checkpoint {} of the cut cycle is gone ({}): no resume",
                       m->item, m->resume_cp, got.status().message());
          DropResume(*m);
          changed = true;
        }
      if (changed) continue;
      for (auto* m : running)
        if (!m->full && got.status().target() == m->prev) {
          spdlog::warn("replication item {}: checkpoint {} cannot be a base ({}): a full cycle",
                       m->item, m->prev, got.status().message());
          m->full = true;
          changed = true;
        }
      if (!changed)
        for (auto* m : running) {
          if (m->resume_seq != 0) DropResume(*m);
          m->full = true;
        }
      continue;
    }
    if (!got.ok()) return got.status();
    int64_t at = WallMs();
    meta["capturedMs"] = at;
    meta["capturedAt"] = FormatIso8601(at);
    if (running.size() > 1) meta["freezeMilliseconds"] = got->freeze_us / 1000.0;
    for (size_t i = 0; i < running.size(); ++i) {
      running[i]->backup = std::move(got->backups[i]);
      running[i]->exported = true;
    }
    return Status::Ok();
  }
  return Internal("no capture");
}

Status ReplicationService::OpenRunning(Member& m) {
  for (size_t i = 0; i < m.disks.size(); ++i) {
    const auto& ed = m.backup.disks[i];
    datapath::NbdSource::Options so;
    so.address = "nbd+unix:///" + ed.export_name + "?socket=" + m.backup.socket_path;
    if (!ed.bitmap.empty()) so.meta_contexts.push_back(datapath::DirtyBitmapContext(ed.bitmap));
    ASSIGN_OR_RETURN(auto src, datapath::NbdSource::Connect(so));
    CycleDisk cd;
    cd.name = m.disks[i].name;
    cd.source = src.get();
    if (!ed.bitmap.empty() && !m.full) cd.changed_context = datapath::DirtyBitmapContext(ed.bitmap);
    cd.zero_holes = m.full && (m.confirmed > 0 || m.base_not_empty);
    if (!m.full) cd.extra = SeedExtents(m, cd.name);
    if (m.resume_seq != 0) cd.resume = m.resume[cd.name];
    cd.hashes = MapFor(m, i, src->size());
    cd.reference = ReferenceFor(m, cd.name);
    m.req.disks.push_back(cd);
    m.sources.push_back(std::move(src));
  }
  return Status::Ok();
}

Status ReplicationService::OpenStopped(Member& m) {
  // Stopped: its qcow2 files as they are, changes from the persistent bitmap of the cut cycle it
  // resumes, or of the last confirmed cycle, when it is there and sound.
  auto sound = [&](const std::string& bitmap) {
    for (auto& d : m.disks) {
      bool have = false;
      auto list = d_.engine->ListBitmaps(d.path);
      if (list.ok())
        for (auto& b : *list) have = have || (b.name == bitmap && !b.in_use && b.enabled);
      if (!have) return false;
    }
    return true;
  };
  // (The base of a resume is the cut cycle's bitmap alone: the confirmed one before it is
  // frozen once a newer libvirt checkpoint exists, which is as it should be.)
  if (m.resume_seq != 0 && !sound(m.resume_cp)) DropResume(m);
  if (m.resume_seq == 0 && (m.prev.empty() || !sound(m.prev))) m.full = true;
  // Bitmaps of cycles a killed daemon never recorded: only the confirmed one is a base.
  for (auto& d : m.disks)
    if (auto list = d_.engine->ListBitmaps(d.path); list.ok())
      for (auto& b : *list)
        if (b.name.rfind("srep-" + m.item.substr(0, 8) + "-", 0) == 0 && b.name != m.prev &&
            b.name != m.resume_cp)
          (void)d_.engine->RemoveBitmap(d.path, b.name);
  // The next cycle's base, added before the disks are read: whatever writes them from here on
  // (the VM started again, a tool) is in it, so no write falls between two cycles' bitmaps. A
  // reader holding the image's shared lock for a moment (a backup, qemu-img) refuses it: retry
  // a little, then give the cycle up (the next one tries again).
  for (auto& d : m.disks) {
    Status s;
    for (int attempt = 0; attempt < 20; ++attempt) {
      s = d_.engine->AddBitmap(d.path, m.cp);
      if (s.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!s.ok()) {
      for (auto& done : m.disks) (void)d_.engine->RemoveBitmap(done.path, m.cp);
      return Status(s.code(), s.arm_code(),
                    "disk " + d.path + ": cannot add bitmap " + m.cp + ": " + s.message());
    }
  }
  for (auto& d : m.disks) {
    datapath::ImageSourceOptions io;
    io.image = d.path;
    io.bitmap = m.resume_seq != 0 ? m.resume_cp : m.full ? "" : m.prev;
    io.socket_dir = m.scratch;
    io.connections = 1;
    io.force_share = true;  // the VM may start meanwhile: checked before the commit
    ASSIGN_OR_RETURN(auto img, datapath::OpenImageSource(io));
    m.images.push_back(std::move(img));
  }
  for (size_t i = 0; i < m.disks.size(); ++i) {
    CycleDisk cd;
    cd.name = m.disks[i].name;
    cd.source = m.images[i].source.get();
    if (!m.full)
      cd.changed_context = datapath::DirtyBitmapContext(m.resume_seq != 0 ? m.resume_cp : m.prev);
    cd.zero_holes = m.full && (m.confirmed > 0 || m.base_not_empty);
    if (!m.full) cd.extra = SeedExtents(m, cd.name);
    if (m.resume_seq != 0) cd.resume = m.resume[cd.name];
    cd.hashes = MapFor(m, i, m.images[i].source->size());
    cd.reference = ReferenceFor(m, cd.name);
    m.req.disks.push_back(cd);
  }
  // Read without locks: if the VM started (or anything changed it) while we read, this is no
  // point; the next cycle reads it running.
  const std::string etag = m.vm.etag, key = m.vm.key, domain = m.domain;
  m.req.before_commit = [this, etag, key, domain]() -> Status {
    auto now_vm = d_.ctx.store->Get(key);
    auto now_info = d_.hv->Info(domain);
    if (!now_vm.ok() || now_vm->etag != etag ||
        (now_info.ok() && now_info->state == compute::PowerState::kRunning))
      return Conflict("the VM changed while its stopped disks were read", "",
                      "SourceChangedDuringCycle");
    return Status::Ok();
  };
  return Status::Ok();
}

Status ReplicationService::GroupCycle(std::vector<store::Record>& outs) {
  if (outs.empty()) return Status::Ok();
  int64_t started = WallMs();
  std::vector<std::unique_ptr<Member>> members;
  for (auto& o : outs) {
    auto m = std::make_unique<Member>();
    m->out = o;
    Status p = PrepareMember(*m);
    if (p.arm_code() == "SourceVmDeleted") continue;  // the others go on
    if (!p.ok()) return p;  // busy or broken: the whole group waits (one instant or none)
    members.push_back(std::move(m));
  }
  if (members.empty()) return Status::Ok();
  // Cycle numbers only grow, also across a crash of this daemon between the target's commit
  // and the record below (the target refuses a number it has): the wall clock in ms, or one more
  // than the last confirmed. A group's members share the number: it names the instant.
  uint64_t seq = static_cast<uint64_t>(WallMs());
  for (auto& m : members) seq = std::max(seq, m->confirmed + 1);
  std::string group = GroupKey(members[0]->out);
  Json meta = {{"capturedMs", started},
               {"capturedAt", FormatIso8601(started)},
               {"consistency", "CrashConsistent"},
               {"cycle", Json::object()}};
  if (!group.empty()) meta["groupMembers"] = members.size();
  std::vector<Member*> running;
  for (auto& m : members) {
    m->cp = CheckpointName(m->item, seq);
    if (m->running) running.push_back(m.get());
  }
  // An application-consistent cycle when a running member's policy says one is due (a group's
  // members at once: its point is one instant): the guest's pre hooks before the instant, its
  // file systems frozen at it, the post hooks after (docs/site-recovery.md "Application-
  // consistent points").
  bool want_app = false;
  for (auto* m : running) {
    const int64_t every = m->out.body.value("appIntervalSeconds", int64_t{0});
    if (every > 0 && started - m->out.body.value("lastAppMs", int64_t{0}) >= every * 1000)
      want_app = true;
  }
  constexpr int kHookTimeoutS = 60;
  std::vector<service::GuestHookRun> pre(running.size());
  if (want_app)
    for (size_t i = 0; i < running.size(); ++i) {
      pre[i] = service::RunGuestHooks(service::AgentOf(d_.hv, running[i]->domain), "pre",
                                      kHookTimeoutS);
      running[i]->app_attempted = true;
    }
  // The instant: every running member at once (stopped ones do not change meanwhile, which
  // their commit checks).
  Status captured = CaptureRunning(running, meta, want_app);
  std::string reason;
  if (want_app) {
    // The guest's applications go on whatever happened; the point's consistency is its weakest
    // member's.
    std::string consistency = "ApplicationConsistent";
    for (size_t i = 0; i < running.size(); ++i) {
      if (pre[i].agent_ok && pre[i].hooks > 0) {
        service::GuestHookRun post = service::RunGuestHooks(
            service::AgentOf(d_.hv, running[i]->domain), "post", kHookTimeoutS);
        if (!post.ok) spdlog::warn("replication item {}: post hooks: {}", running[i]->item, post.problem);
      }
      if (!captured.ok()) continue;
      std::string mine = "ApplicationConsistent";
      if (!running[i]->backup.frozen) {
        mine = "CrashConsistent";
        reason = "the guest agent of " + running[i]->domain +
                 " did not answer, so its file systems could not be frozen";
      } else if (!pre[i].ok) {
        mine = "FileSystemConsistent";
        if (reason.empty()) reason = pre[i].problem;
      }
      if (mine == "CrashConsistent" ||
          (mine == "FileSystemConsistent" && consistency == "ApplicationConsistent"))
        consistency = mine;
    }
    // A stopped member is captured as it was left: no hooks ran in it.
    if (running.size() < members.size() && consistency == "ApplicationConsistent") {
      consistency = "FileSystemConsistent";
      reason = "a stopped member ran no hooks";
    }
    meta["consistency"] = consistency;
    if (!reason.empty()) meta["consistencyReason"] = reason.substr(0, 500);
  }
  if (!captured.ok()) {
    for (auto& m : members) RemoveTree(m->scratch);
    (void)RecordFailure(members, captured);
    return captured;
  }
  for (auto& m : members) {
    Status opened = m->running ? OpenRunning(*m) : OpenStopped(*m);
    if (!opened.ok()) {
      m->sent = opened;
      continue;
    }
    auto client = d_.pairing->ClientFor(m->out.body.value("targetRegion", ""));
    if (!client.ok()) {
      m->sent = client.status();
      continue;
    }
    m->req.item = m->item;
    m->req.seq = seq;
    m->req.resume_of = m->resume_seq;
    m->req.planned = &m->planned;
    Member* mp = m.get();
    m->req.after_begin = [this, mp, seq] { mp->resume_written = KeepResume(*mp, seq); };
    m->req.meta = meta;
    // The VM's configuration as of this point (its NICs may have changed since the enable).
    m->req.meta["vmConfig"] = SourceConfig(m->vm);
    // The pairing's cap on what this region sends (PATCH regionPairings/{peer}).
    if (auto pr = d_.pairing->Get(m->out.body.value("targetRegion", "")); pr.ok())
      m->req.bandwidth_bytes_per_s =
          static_cast<uint64_t>(pr->body["properties"].value("replicationBandwidthMbps", 0)) *
          1000000 / 8;
    m->sent = SendCycle(*client, m->req);
    // Done with this member's export: the guest's writes stop going through the scratch.
    m->sources.clear();
    for (auto& img : m->images) (void)img.Close();
    for (auto& img : m->refs) (void)img.Close();
    if (m->exported) {
      Status end = d_.hv->EndPullBackup(m->domain);
      if (!end.ok()) spdlog::warn("ending the replication export of {}: {}", m->domain, end.ToString());
    }
  }
  Status first_error;
  for (auto& m : members) {
    Status s = FinishMember(*m, seq, started);
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  return first_error;
}

Status ReplicationService::RecordFailure(std::vector<std::unique_ptr<Member>>& members,
                                         const Status& why) {
  int64_t now = WallMs();
  for (auto& m : members)
    (void)PutWithRetry(d_.ctx.store, m->out.key, [&](store::Record& r) {
      r.body["lastError"] = why.message();
      r.body["lastErrorTime"] = FormatIso8601(now);
      r.body["nextDueMs"] = now + 1000;  // retry soon: the RPO is what matters
      return true;
    });
  return why;
}

Status ReplicationService::FinishMember(Member& m, uint64_t seq, int64_t started) {
  const std::string key = m.out.key;
  // A cut cycle whose extents are known is kept to be resumed (its checkpoint is the next
  // cycle's base); else its checkpoint (a stopped VM's new bitmap) is no base.
  const bool resumable = !m.sent.ok() && m.sent.status().arm_code() != "ItemFailedOver" &&
                         (m.exported || !m.running) && m.resume_written;
  if (!m.sent.ok() && !resumable) {
    if (m.exported) (void)d_.hv->DeleteCheckpoint(m.domain, m.cp);
    if (!m.running)
      for (auto& d : m.disks) (void)d_.engine->RemoveBitmap(d.path, m.cp);
    if (m.resume_written) (void)RemoveFile(ResumeFile(m.maps_dir));  // the item failed over
  }
  // This cut cycle is the one to resume now: the one it resumed is no base any more.
  if (resumable && !m.resume_cp.empty() && m.resume_cp != m.prev && m.resume_cp != m.cp)
    DropCheckpoint(m, m.resume_cp);
  RemoveTree(m.scratch);
  int64_t ended = WallMs();
  if (!m.sent.ok() && m.sent.status().arm_code() == "ItemFailedOver") {
    // The target failed the VM over: replicating to it is over (reprotect starts anew).
    return PutWithRetry(d_.ctx.store, key, [&](store::Record& r) {
      r.body["state"] = "TargetFailedOver";
      r.body["lastError"] = m.sent.status().message();
      return true;
    });
  }
  if (!m.sent.ok()) {
    (void)PutWithRetry(d_.ctx.store, key, [&](store::Record& r) {
      r.body["lastError"] = m.sent.status().message();
      r.body["lastErrorTime"] = FormatIso8601(ended);
      r.body["nextDueMs"] = ended + 1000;  // retry soon: the RPO is what matters
      return true;
    });
    return m.sent.status();
  }
  // Confirmed: the maps say what B holds now (a crash before this costs one unfiltered cycle).
  for (size_t i = 0; i < m.maps.size(); ++i) {
    Status saved = m.maps[i]->Save(JoinPath(m.maps_dir, m.disks[i].name + ".hashes"), seq);
    if (!saved.ok())
      spdlog::warn("replication item {}: saving the block map: {}", m.item, saved.ToString());
  }
  // Confirmed: the previous checkpoint (and the cut cycle's this one resumed) is no longer a
  // base.
  for (const std::string& old : {m.prev, m.resume_cp}) {
    if (old.empty() || old == m.cp) continue;
    // A checkpoint libvirt knows (also one a running cycle took before the VM stopped: libvirt's
    // record goes with its bitmaps), then any bitmap of that name it did not know.
    (void)d_.hv->DeleteCheckpoint(m.domain, old);
    if (!m.running)
      for (auto& d : m.disks) (void)d_.engine->RemoveBitmap(d.path, old);
  }
  int64_t interval_ms = m.out.body.value("intervalSeconds", 30) * 1000;
  const bool full = m.full;
  Status recorded = PutWithRetry(d_.ctx.store, key, [&](store::Record& r) {
    r.body["seq"] = seq;
    r.body["checkpoint"] = m.cp;
    r.body["nextDueMs"] = started + interval_ms;
    r.body["lastCycle"] = m.sent->ToJson();
    r.body["lastCycle"]["full"] = full;
    if (m.req.meta.contains("freezeMilliseconds"))
      r.body["lastCycle"]["freezeMilliseconds"] = m.req.meta["freezeMilliseconds"];
    r.body["lastCycleTime"] = FormatIso8601(ended);
    r.body.erase("lastError");
    r.body.erase("seedExtents");  // sent
    if (m.app_attempted) r.body["lastAppMs"] = started;  // the next one is due from here
    return true;
  });
  if (recorded.ok() && (m.resume_seq != 0 || m.resume_written))
    (void)RemoveFile(ResumeFile(m.maps_dir));
  return recorded;
}

}  // namespace stratus::recovery::site
