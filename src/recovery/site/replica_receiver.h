// ReplicaReceiver: the target region's end of replication cycles (docs/site-recovery.md
// "Replica and points"). Peer routes, paired-only, each checked against the item's source
// region (a paired region cannot write another region's replicas):
//   POST /peer/v1/replication/cycle/begin   {"item","seq","disks":[{"name","sizeBytes"}],"meta",
//                                            "changedBytes"?: what the cycle will go through,
//                                            "resumeOf"?: the source's cut cycle this one resumes}
//                                            -> {"item","seq","resumed"?: {"<disk>": through}}
//   POST /peer/v1/replication/cycle/blocks?item=&seq=&disk=&done=&changed=&through=
//                                            a BlockStream batch (bytes); done: changed bytes the
//                                            source has gone through (of `changed`); through: the
//                                            offset of the disk below which the source has sent
//                                            all it meant to (default: the batch's last byte)
//   POST /peer/v1/replication/cycle/commit  {"item","seq"}
//   POST /peer/v1/replication/cycle/abort   {"item","seq","error"?}
// Begin opens a new layer on every disk's ReplicaChain. A batch is decoded and checked whole
// (BlockStream) before a byte is written; once written it is flushed and the layer records how
// far through the disk the cycle is durable. Commit seals every disk's layer, then hands the
// point to `on_point` (which records it): a point is never visible before all of its data is
// durable. A cycle cut anywhere before that is no point, but its layers are kept (ReplicaChain
// "resumable") — across a restart of this daemon too: the source's next cycle names it in
// `resumeOf`, and gets back, per disk, how far the cut cycle's data is durable here; it then sends
// only the cut cycle's extents above that, plus what changed since. A begin that resumes nothing
// (or another cycle) discards what was kept.
//
// Thread-safety: one mutex; cycles of different items are serialised too (B writes through one
// qemu-nbd per open disk, the link is the bottleneck).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/json.h"
#include "core/status.h"
#include "recovery/site/peer_server.h"
#include "recovery/site/replica_chain.h"

namespace stratus::recovery::site {

// Where a batch of blocks stands in its cycle (the blocks route's query).
struct BatchPosition {
  uint64_t done = 0;     // of the cycle's changed bytes, gone through at the source
  uint64_t changed = 0;  // the cycle's changed bytes, when the source says it here (0: keep)
  // The offset of the disk below which the source sent all it meant to; 0: the batch's end.
  uint64_t through = 0;
};

class ReplicaReceiver {
 public:
  struct Item {
    std::string source_region;  // the only region that may write it
    std::string dir;            // its replicas: <dir>/<disk name>/
    // False once the item was failed over: cycles are refused ("ItemFailedOver").
    bool accepts_cycles = true;
    // Disks whose replica stands on an existing image (a reprotected item: this region's stale
    // copy of the VM's disk), by disk name; the others start empty.
    std::map<std::string, std::string> base_images = {};
  };
  using Lookup = std::function<Result<Item>(const std::string& item)>;
  using OnPoint = std::function<Status(const std::string& item, uint64_t seq, const Json& meta,
                                       const Json& stats)>;

  ReplicaReceiver(Lookup lookup, OnPoint on_point);
  void RegisterRoutes(PeerServer& server);

  // The chain of `disk` of `item` (opened on first use and kept).
  Result<ReplicaChain*> Chain(const std::string& item, const std::string& disk, uint64_t size = 0);
  // Forgets an item's open cycle and chains (before its replicas are deleted).
  void Forget(const std::string& item);

  Result<Json> Begin(const PeerCaller& caller, const Json& body);
  Result<Json> Blocks(const PeerCaller& caller, const std::string& item, uint64_t seq,
                      const std::string& disk, std::string_view batch,
                      const BatchPosition& at = {});
  Result<Json> Commit(const PeerCaller& caller, const Json& body);
  Result<Json> Abort(const PeerCaller& caller, const Json& body);
  // An item's cycle in flight ({"cycle": {"sequence","startTime","changedBytes","doneBytes",
  // "bytesReceived","wireBytes","bytesPerSecond" (on the link)}}, absent when none) and the source's last abort reason
  // since the last commit ("lastError": {"message","time"}). In memory: a restart forgets both.
  Json Progress(const std::string& item);

 private:
  struct OpenCycle {
    uint64_t seq = 0;
    Json meta;
    std::map<std::string, std::unique_ptr<CycleWriter>> writers;  // by disk name
    std::map<std::string, uint64_t> sizes;
    uint64_t bytes = 0, zero_bytes = 0, frames = 0;
    uint64_t changed = 0, done = 0;  // the source's changed bytes, and how far it is through them
    uint64_t wire = 0;               // batch bytes received (compressed, on the link)
    int64_t started_ms = 0;
    std::map<std::string, uint64_t> through;  // by disk: durable below this offset
    uint64_t resumed_from = 0;  // the cut cycle it resumed (0: none)
  };
  Result<Item> Authorize(const PeerCaller& caller, const std::string& item);
  // The item's open cycle `seq` (Conflict "ReplicationCycleNotOpen" if another or none).
  Result<std::map<std::string, OpenCycle>::iterator> OpenCycleOf(const PeerCaller& caller,
                                                                 const std::string& item,
                                                                 uint64_t seq);
  Result<ReplicaChain*> ChainLocked(const std::string& item, const Item& info,
                                    const std::string& disk, uint64_t size);
  void DiscardLocked(const std::string& item);
  // The item's open cycle stops here, its layers kept for a resume (flushed first).
  void SuspendLocked(const std::string& item);
  // Layers kept for a resume on the item's disks other than `keep` go.
  void DiscardKeptLocked(const std::string& item, const Item& info,
                         const std::map<std::string, uint64_t>& keep);

  Lookup lookup_;
  OnPoint on_point_;
  std::mutex mu_;
  std::map<std::string, Json> last_error_;  // by item
  std::map<std::string, OpenCycle> open_;
  std::map<std::string, std::unique_ptr<ReplicaChain>> chains_;  // "<item>/<disk>"
};

}  // namespace stratus::recovery::site
