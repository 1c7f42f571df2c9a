// ReplicaChain: one replicated disk in the target region (docs/site-recovery.md "Replica and
// points"): a qcow2 chain in its own folder —
//   base.qcow2            empty, the disk's size (never a point)
//   l<seq>.qcow2          one thin overlay per replication cycle, backed by the layer below
//   chain.json            the layers in order, which recovery point each holds, sealed or not
// A cycle's data goes into a new overlay (BeginCycle → CycleWriter), which is sealed (flushed,
// fsynced, recorded in chain.json) when all of it is there. The point of cycle `seq` is the
// chain up to its layer; a layer that was never sealed is not a point and is discarded when the
// chain is opened again. Whoever records recovery points (across the disks of a group) does so
// only after every disk's layer of that cycle is sealed.
//
// Dropping a point (thinning) merges the layer above it into its layer (`qemu-img commit`), so
// that layer then holds the next point, re-points the layer above (`qemu-img rebase -u`) and
// deletes the merged file; chain.json says "merging" first, so a crash in the middle is finished
// at the next Open. CloneAt makes a copy-on-write image of a point (failover, test failover):
// while a clone is in use, the layers at or below its point must not be merged (the caller pins
// them; DropPoint refuses a point under a pinned one).
//
// A chain may stand on an existing image (`backing`, given when the chain is made): base.qcow2
// is then an empty overlay of it, so the chain reads that image where no cycle wrote. Reprotect
// uses it: the replica of a failed-over VM in its original region is built on that region's
// stale copy of the VM's disk, and only the blocks that differ are sent. The backing image must
// not change while the chain exists (its owner keeps it still).
//
// A cycle cut before its seal (the link dropped, the source gave up, this daemon was killed) may
// be kept to be resumed: MarkResumable records, after its data up to there was flushed, how far
// through the disk the cycle's data is durable ("through": every block the source meant to send
// below that offset is written). Open keeps such a layer (and removes other unsealed ones);
// ResumeCycle hands it to the next cycle, which sends only what is missing above it (and what
// changed since) on top.
//
// Writes: chain.json atomically (temp, fsync, rename, fsync of the folder). Errors: Internal
// naming the file and the qemu-img / qemu-nbd message; InvalidArgument for a seq out of order.
// Thread-compatible: one ReplicaChain per disk, used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "recovery/datapath/nbd_source.h"
#include "recovery/datapath/qemu_nbd_export.h"

namespace stratus::recovery::site {

struct ReplicaLayer {
  std::string file;  // name in the chain's folder
  uint64_t seq = 0;  // the point (cycle) whose state the chain up to here holds
  bool sealed = false;
  // An unsealed layer kept for a resume, with its data durable below `through`.
  bool resumable = false;
  uint64_t through = 0;
};

// Writes one cycle's blocks into its layer, through qemu-nbd.
class CycleWriter {
 public:
  ~CycleWriter();
  Status Write(uint64_t offset, const void* data, size_t len);
  Status Zero(uint64_t offset, uint64_t len);
  // Flushes to stable storage (the export stays open).
  Status Flush();
  // Flushes to stable storage and stops the export. Call before ReplicaChain::Seal.
  Status Finish();
  uint64_t seq() const { return seq_; }

 private:
  friend class ReplicaChain;
  uint64_t seq_ = 0;
  std::unique_ptr<datapath::QemuNbdExport> export_;
  std::unique_ptr<datapath::NbdSource> nbd_;
};

class ReplicaChain {
 public:
  // Opens the chain in `dir`, or makes one of `size_bytes` there. Unsealed layers are removed;
  // an interrupted merge is finished.
  // `backing` (used only when the chain is made): the image the empty base stands on.
  static Result<std::unique_ptr<ReplicaChain>> Open(const std::string& dir, uint64_t size_bytes,
                                                    const std::string& backing = "");

  // A new overlay for cycle `seq` (greater than every layer's) on top of the chain, open for
  // writing. An unsealed layer of an earlier cycle must have been sealed or discarded.
  Result<std::unique_ptr<CycleWriter>> BeginCycle(uint64_t seq);
  // The open layer of `seq` is whole: mark it sealed (its data was flushed by Finish).
  Status Seal(uint64_t seq);
  // Removes the open (unsealed) layer of `seq`.
  Status Discard(uint64_t seq);
  // The open layer of `seq` is kept for a resume: its data below `through` was flushed.
  Status MarkResumable(uint64_t seq, uint64_t through);
  // The top layer, kept for a resume of cycle `old_seq`, becomes cycle `new_seq`'s (greater than
  // every sealed layer's), open for writing; `*through` is how far its data was durable.
  Result<std::unique_ptr<CycleWriter>> ResumeCycle(uint64_t old_seq, uint64_t new_seq,
                                                   uint64_t* through);
  // The seq of the unsealed top layer, 0 when the top is sealed or there is none.
  uint64_t OpenSeq() const;

  // Point `seq` goes (its layer then holds the next point). Not the newest point; not a point
  // at or below a pinned one.
  Status DropPoint(uint64_t seq, const std::set<uint64_t>& pinned = {});

  // A qcow2 at `path` whose content is point `seq`, backed by the chain (copy-on-write).
  Status CloneAt(uint64_t seq, const std::string& path) const;
  // The path of the layer holding point `seq` (qemu-img and QEMU read the chain from it).
  Result<std::string> PointImage(uint64_t seq) const;

  // Every extent written by the cycles after point `after` up to point `upto` (the layers with a
  // seq in (after, upto]), merged, in order: what changed between those two points. A layer
  // that thinning merged holds the changes of the points it absorbed too, so the answer may be
  // a superset, never less.
  Result<std::vector<datapath::Extent>> ChangedBetween(uint64_t after, uint64_t upto) const;

  const std::vector<ReplicaLayer>& layers() const { return layers_; }
  // The points the chain holds (sealed layers' seqs), oldest first.
  std::vector<uint64_t> Points() const;
  uint64_t size() const { return size_; }
  const std::string& dir() const { return dir_; }

 private:
  ReplicaChain() = default;
  Status Save() const;
  Status FinishMerge();
  Result<std::unique_ptr<CycleWriter>> Writer(uint64_t seq, const std::string& file) const;
  std::string Path(const std::string& file) const;
  int IndexOf(uint64_t seq) const;

  std::string dir_;
  uint64_t size_ = 0;
  std::vector<ReplicaLayer> layers_;
  // An interrupted DropPoint: merge layer `merge_top_` into the one below it.
  std::string merge_top_;
};

}  // namespace stratus::recovery::site
