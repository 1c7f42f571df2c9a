// SendCycle: the source region's end of one replication cycle (docs/site-recovery.md
// "Capture"): the disks of one VM (or of every VM of a group, as separate items) as they were at
// the cycle's instant, read over NBD — only the extents the change tracker marks, or every
// allocated extent for a full cycle — in pieces of at most 1 MiB, each sent as data
// (compressed) or, when it reads as zeros, as a zero frame, in batches of about 8 MiB, then
// committed. The target makes the cycle a point only when the commit is answered.
//
// A failure anywhere aborts the cycle at the target (best effort) and returns the error. The
// target keeps what it received (flushed batch by batch) to be resumed: the caller keeps this
// cycle's checkpoint and `planned` (the extents it meant to send), and the next cycle sends what
// changed since this one's checkpoint plus `resume` — the planned extents above how far the
// target says it holds them (`resume_of` names the cut cycle). Without a resume (the target kept
// nothing, or the caller lost its state) the next cycle starts from the last confirmed checkpoint
// and sends a superset. `bandwidth_bytes_per_s` (0 = none) caps what is sent, the pairing's cap;
// under a cap, batches are smaller (about a second of the link each), so a cut loses little.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "recovery/datapath/nbd_source.h"
#include "recovery/site/block_hashes.h"
#include "recovery/site/peer_client.h"

namespace stratus::recovery::site {

struct CycleDisk {
  std::string name;  // "osdisk", "lun0", ...
  datapath::NbdSource* source = nullptr;
  // Meta context whose extents with the dirty flag are what changed ("qemu:dirty-bitmap:...");
  // "" = a full cycle: every extent base:allocation does not report as a hole or zeros.
  std::string changed_context;
  // Extents to send besides the changed ones (with changed_context): a reprotect's first cycle
  // adds what the target wrote on its own and what it lacks of the points after its copy.
  std::vector<datapath::Extent> extra;
  // With `hashes`: where the map knows nothing, what the target holds reads as `reference` does
  // (a reprotect's first cycle: B's replica of the point A's copy was at), except in `extra`
  // (where the target wrote on its own or lacks later points). The changed extents are read
  // there too, and their 4 KiB blocks that read the same are not sent. nullptr: none.
  datapath::NbdSource* reference = nullptr;
  // A full cycle over a replica that already holds data: send zero frames for the holes too.
  // (Without it, a full cycle is a seed onto an empty replica.)
  bool zero_holes = false;
  // What the target holds, per 4 KiB block: blocks of a changed extent that the target has
  // already are not sent; the map is updated with what is sent (the caller saves it once the
  // cycle is confirmed). nullptr: every byte of a changed extent is sent.
  BlockHashes* hashes = nullptr;
  // A resumed cycle (CycleRequest::resume_of): the cut cycle's planned extents of this disk.
  // Those above how far the target holds them are sent too; the map's blocks in them are
  // unknown (the target may hold the cut cycle's bytes there).
  std::vector<datapath::Extent> resume;
};

struct CycleRequest {
  std::string item;  // the target's item id
  uint64_t seq = 0;
  std::vector<CycleDisk> disks;
  Json meta = Json::object();  // recorded with the point (capturedAt, consistency, ...)
  uint64_t bandwidth_bytes_per_s = 0;
  // Checked after the data is sent, before the commit: an error aborts the cycle (a stopped
  // VM's disks read without locks must not have been started meanwhile).
  std::function<Status()> before_commit;
  // Called once the target opened the cycle and `planned` is filled, before any data is sent
  // (the caller writes down what a resume needs).
  std::function<void()> after_begin;
  // The cut cycle this one resumes (0: none); see CycleDisk::resume.
  uint64_t resume_of = 0;
  // Filled, once the target opened the cycle, with each disk's extents this cycle sends (in
  // `disks` order), also when it fails after that: what a resume of this cycle needs. Left as it
  // was when the begin fails. nullptr: not wanted.
  std::vector<std::vector<datapath::Extent>>* planned = nullptr;
};

struct CycleStats {
  uint64_t bytes_changed = 0;  // bytes the tracker marked (or allocated, for a full cycle)
  uint64_t bytes_sent = 0;     // bytes on the wire (batches)
  uint64_t zero_bytes = 0;     // of bytes_changed, sent as zero frames
  uint64_t bytes_unchanged = 0;  // of bytes_changed, not sent: the target holds them already
  uint64_t frames = 0;
  // A resumed cycle: the cut cycle it resumed, and the bytes of that cycle the target held
  // already (not sent again).
  uint64_t resumed_from = 0;
  uint64_t bytes_resumed = 0;
  int64_t duration_ms = 0;
  // Per disk: {"<name>": {"bytesChanged", "bytesSent"}}.
  Json disks = Json::object();
  Json ToJson() const;
};

Result<CycleStats> SendCycle(const PeerClient& peer, const CycleRequest& request);

}  // namespace stratus::recovery::site
