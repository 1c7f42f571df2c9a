// One replication data path end to end on loopback, without VMs: two paired regions' peer links
// (PairingService), the target's ReplicaReceiver, and SendCycle reading a qcow2 over qemu-nbd —
// a full cycle (allocated extents only), then an incremental one from a persistent dirty bitmap,
// each checked with qemu-img compare against the source; a cycle cut before its commit is no
// point; a third paired region cannot write the item.
#include <gtest/gtest.h>

#include <functional>

#include "api/operations.h"
#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"
#include "recovery/datapath/image_source.h"
#include "recovery/site/block_hashes.h"
#include "recovery/site/block_stream.h"
#include "recovery/site/cycle_sender.h"
#include "recovery/site/pairing_service.h"
#include "recovery/site/replica_receiver.h"
#include "store/sqlite_store.h"

namespace stratus::recovery::site {
namespace {

constexpr uint64_t kDiskSize = 16 << 20;

// A region with just a store, operation locks and a peer link.
struct MiniRegion {
  MiniRegion(const std::string& name, const std::string& dir) : clock(1795341600000) {
    MakeDirs(dir).ok();
    store = std::move(store::SqliteStore::Open(JoinPath(dir, "state.db"),
                                               store::SqliteStore::Durability::kNormal)
                          .value());
    ops = std::make_unique<api::OperationManager>(store.get(), &clock, 1);
    api::RegionContext ctx{store.get(), ops.get(), &clock, name, dir};
    PeerLinkOptions o;
    o.call_timeout = std::chrono::seconds(5);
    pairing = std::move(PairingService::Open(ctx, o).value());
  }
  ~MiniRegion() {
    pairing->Stop();
    ops->Shutdown();
  }
  FakeClock clock;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<api::OperationManager> ops;
  std::unique_ptr<PairingService> pairing;
};

class ReplicationCycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static const bool tools =
        RunProcess({"qemu-img", "--version"}).ok() && RunProcess({"qemu-nbd", "--version"}).ok();
    if (!tools) GTEST_SKIP() << "qemu-img and qemu-nbd are needed";
    a_ = std::make_unique<MiniRegion>("regionA", tmp_.Path("a"));
    b_ = std::make_unique<MiniRegion>("regionB", tmp_.Path("b"));
    receiver_ = std::make_unique<ReplicaReceiver>(
        [this](const std::string& item) -> Result<ReplicaReceiver::Item> {
          if (lookups_left_ == 0) return Unavailable("the link is down");
          if (lookups_left_ > 0) --lookups_left_;
          if (item != "item1") return NotFound("no item " + item);
          return ReplicaReceiver::Item{"regionA", tmp_.Path("b/replicas/item1")};
        },
        [this](const std::string& item, uint64_t seq, const Json& meta, const Json& stats) {
          points_.push_back(seq);
          EXPECT_EQ(meta.value("note", ""), "seq " + std::to_string(seq));
          return Status::Ok();
        });
    receiver_->RegisterRoutes(b_->pairing->server());
    ASSERT_TRUE(a_->pairing->Start().ok());
    ASSERT_TRUE(b_->pairing->Start().ok());
    auto token = b_->pairing->NewToken(10);
    ASSERT_TRUE(token.ok());
    ASSERT_TRUE(a_->pairing->Pair("regionB", (*token)["token"], "test").ok());

    disk_ = tmp_.Path("a/disk.qcow2");
    ASSERT_TRUE(
        RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", disk_, std::to_string(kDiskSize)})
            .ok());
    Io("write -P 0x11 0 1M");
    Io("write -P 0x22 5M 64k");
    Io("write -z 6M 1M");  // zeros: never sent in a full cycle
  }
  // B's daemon restarts: a new receiver over the same replicas takes the routes.
  void RestartReceiver() {
    auto next = std::make_unique<ReplicaReceiver>(
        [this](const std::string& item) -> Result<ReplicaReceiver::Item> {
          return ReplicaReceiver::Item{"regionA", tmp_.Path("b/replicas/item1")};
        },
        [this](const std::string&, uint64_t seq, const Json&, const Json&) {
          points_.push_back(seq);
          return Status::Ok();
        });
    next->RegisterRoutes(b_->pairing->server());
    receiver_ = std::move(next);
  }
  void Io(const std::string& cmd) {
    ASSERT_TRUE(RunChecked({"qemu-io", "-f", "qcow2", "-c", cmd, disk_}).ok()) << cmd;
  }
  // One cycle of the source disk; `bitmap` "" = full; `hashes`: the block map to filter with.
  // `reference` / `extra`: CycleDisk's (an image read over its own qemu-nbd).
  Result<CycleStats> Cycle(uint64_t seq, const std::string& bitmap,
                           BlockHashes* hashes = nullptr, const std::string& reference = "",
                           std::vector<datapath::Extent> extra = {},
                           std::function<Status()> before_commit = nullptr,
                           std::function<void(CycleRequest&)> tweak = nullptr) {
    datapath::ImageSourceOptions io;
    io.image = disk_;
    io.bitmap = bitmap;
    io.connections = 1;
    io.direct_reads = false;
    ASSIGN_OR_RETURN(auto img, datapath::OpenImageSource(io));
    CycleRequest req;
    req.item = "item1";
    req.seq = seq;
    req.meta = {{"note", "seq " + std::to_string(seq)}};
    CycleDisk d;
    d.name = "osdisk";
    d.source = img.source.get();
    if (!bitmap.empty()) d.changed_context = datapath::DirtyBitmapContext(bitmap);
    d.hashes = hashes;
    d.extra = std::move(extra);
    datapath::ImageSource ref;
    if (!reference.empty()) {
      datapath::ImageSourceOptions ro;
      ro.image = reference;
      ro.connections = 1;
      ro.direct_reads = false;
      ro.force_share = true;
      ASSIGN_OR_RETURN(ref, datapath::OpenImageSource(ro));
      d.reference = ref.source.get();
    }
    req.disks.push_back(d);
    req.before_commit = std::move(before_commit);
    if (tweak) tweak(req);
    ASSIGN_OR_RETURN(PeerClient client, a_->pairing->ClientFor("regionB"));
    auto r = SendCycle(client, req);
    (void)img.Close();
    if (ref.source) (void)ref.Close();
    return r;
  }
  // qemu-img compare of the source with point `seq` in B: 0 = same.
  int CompareWithPoint(uint64_t seq) {
    auto chain = receiver_->Chain("item1", "osdisk");
    if (!chain.ok()) return -1;
    auto image = (*chain)->PointImage(seq);
    if (!image.ok()) return -1;
    auto r = RunProcess({"qemu-img", "compare", "-q", disk_, *image});
    return r.ok() ? r->exit_code : -1;
  }

  test::ScopedTempDir tmp_{"replcycle"};
  std::unique_ptr<MiniRegion> a_, b_;
  std::unique_ptr<ReplicaReceiver> receiver_;
  std::vector<uint64_t> points_;
  std::string disk_;
  int lookups_left_ = -1;  // B answers this many more peer calls, then the link is down (-1: all)
};

uint64_t Bytes(const std::vector<datapath::Extent>& extents) {
  uint64_t n = 0;
  for (auto& e : extents) n += e.length;
  return n;
}

TEST_F(ReplicationCycleTest, AFullThenAnIncrementalCycleMakeExactPoints) {
  ASSERT_TRUE(RunChecked({"qemu-img", "bitmap", "--add", "-f", "qcow2", disk_, "srep-1"}).ok());
  auto full = Cycle(1, "");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(points_, std::vector<uint64_t>{1});
  EXPECT_EQ(CompareWithPoint(1), 0);
  EXPECT_GE(full->bytes_changed, (1u << 20) + 65536u);
  EXPECT_LT(full->bytes_changed, 2u << 20) << "allocated extents only, not the 16 MiB disk";
  EXPECT_LT(full->bytes_sent, 64u << 10) << "patterns compress";

  // Changes since the bitmap: 4 KiB here and there, and a discard.
  Io("write -P 0x33 8M 4k");
  Io("write -P 0x44 12M 4k");
  Io("write -z 0 64k");
  auto inc = Cycle(2, "srep-1");
  ASSERT_TRUE(inc.ok()) << inc.status().ToString();
  EXPECT_EQ(points_, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(CompareWithPoint(2), 0);
  EXPECT_EQ(CompareWithPoint(1), 1) << "point 1 still holds the old data";
  EXPECT_LE(inc->bytes_changed, 3u * 65536u) << "only the dirty clusters";
  EXPECT_GE(inc->zero_bytes, 65536u) << "the discarded range went as zeros";
}

TEST_F(ReplicationCycleTest, TheBlockMapSendsOnlyThe4KiBBlocksThatChanged) {
  std::string map_file = tmp_.Path("a/osdisk.hashes");
  BlockHashes map = BlockHashes::Load(map_file, kDiskSize, 0);
  EXPECT_FALSE(map.loaded());
  ASSERT_TRUE(RunChecked({"qemu-img", "bitmap", "--add", "-f", "qcow2", disk_, "srep-1"}).ok());
  ASSERT_TRUE(Cycle(1, "", &map).ok());
  ASSERT_TRUE(map.Save(map_file, 1).ok());
  // Scattered 4 KiB writes, one per 64 KiB cluster (and one that rewrites what B has).
  Io("write -P 0x61 8M 4k");
  Io("write -P 0x62 9M 4k");
  Io("write -P 0x63 10M 4k");
  Io("write -P 0x11 0 4k");
  BlockHashes again = BlockHashes::Load(map_file, kDiskSize, 1);
  ASSERT_TRUE(again.loaded());
  EXPECT_FALSE(BlockHashes::Load(map_file, kDiskSize, 2).loaded()) << "a map is for one cycle";
  auto inc = Cycle(2, "srep-1", &again);
  ASSERT_TRUE(inc.ok()) << inc.status().ToString();
  EXPECT_EQ(CompareWithPoint(2), 0);
  EXPECT_EQ(inc->bytes_changed, 4u * 65536u) << "four dirty clusters were read";
  EXPECT_EQ(inc->bytes_unchanged, 4u * 65536u - 3u * 4096u) << "three blocks changed";
  EXPECT_LT(inc->bytes_sent, 3u * 4096u + 512u);
}

// A reprotect's first cycle: no map of what the target holds, but an image that reads as it
// (the replica of the point its copy was at) except where `extra` says.
TEST_F(ReplicationCycleTest, AReferenceImageStandsInForAnUnknownMapExceptInTheExtraExtents) {
  ASSERT_TRUE(RunChecked({"qemu-img", "bitmap", "--add", "-f", "qcow2", disk_, "srep-1"}).ok());
  ASSERT_TRUE(Cycle(1, "").ok());
  auto chain = receiver_->Chain("item1", "osdisk");
  ASSERT_TRUE(chain.ok());
  auto point1 = (*chain)->PointImage(1);
  ASSERT_TRUE(point1.ok());
  std::string ref = tmp_.Path("ref.qcow2");  // a copy: the chain grows under the cycle
  ASSERT_TRUE(RunChecked({"qemu-img", "convert", "-O", "qcow2", *point1, ref}).ok());
  Io("write -P 0x61 8M 4k");
  Io("write -P 0x62 9M 4k");
  Io("write -P 0x11 0 4k");  // what the target has already
  BlockHashes unknown = BlockHashes::Load(tmp_.Path("a/none.hashes"), kDiskSize, 1);
  ASSERT_FALSE(unknown.loaded());
  // The target wrote 9M..9M+64k on its own: that cluster goes whole (the extra extent).
  auto inc = Cycle(2, "srep-1", &unknown, ref, {{9 << 20, 65536, 0}});
  ASSERT_TRUE(inc.ok()) << inc.status().ToString();
  EXPECT_EQ(CompareWithPoint(2), 0);
  EXPECT_EQ(inc->bytes_changed, 3u * 65536u);
  EXPECT_EQ(inc->bytes_unchanged, 2u * 65536u - 4096u) << "two clusters matched the reference "
                                                          "but for the block written in each";
  EXPECT_LT(inc->bytes_sent, 65536u + 4096u + 1024u);
}

// A cycle the source gives up: no point, and B shows why until a cycle commits.
TEST_F(ReplicationCycleTest, ACycleTheSourceGivesUpLeavesItsReasonInB) {
  ASSERT_TRUE(Cycle(1, "").ok());
  auto cut = Cycle(2, "", nullptr, "", {}, [] {
    return Conflict("the VM changed while its stopped disks were read", "",
                    "SourceChangedDuringCycle");
  });
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(points_, std::vector<uint64_t>{1});
  Json progress = receiver_->Progress("item1");
  EXPECT_FALSE(progress.contains("cycle")) << progress.dump();
  EXPECT_NE(progress["lastError"].value("message", "").find("the VM changed"), std::string::npos)
      << progress.dump();
  ASSERT_TRUE(Cycle(3, "").ok());
  EXPECT_FALSE(receiver_->Progress("item1").contains("lastError"));
}

TEST_F(ReplicationCycleTest, ACycleCutBeforeItsCommitIsNoPointAndTheNextOneIsWhole) {
  ASSERT_TRUE(Cycle(1, "").ok());
  Io("write -P 0x55 2M 1M");
  // Cycle 2 begins and sends a batch; then the link drops (no commit).
  auto client = a_->pairing->ClientFor("regionB");
  ASSERT_TRUE(client.ok());
  auto begin = client->Call("POST", "/peer/v1/replication/cycle/begin",
                            Json{{"item", "item1"},
                                 {"seq", 2},
                                 {"changedBytes", 3 << 20},
                                 {"disks", {{{"name", "osdisk"}, {"sizeBytes", kDiskSize}}}}}
                                .dump());
  ASSERT_TRUE(begin.ok() && begin->status == 200) << (begin.ok() ? begin->body : "");
  BlockBatchWriter w;
  ASSERT_TRUE(w.AddData(2 << 20, std::string(1 << 20, 'U')).ok());
  auto blocks = client->Call("POST",
                             "/peer/v1/replication/cycle/blocks?item=item1&seq=2&disk=osdisk&done=" +
                                 std::to_string(1 << 20),
                             w.Take(), "application/octet-stream");
  ASSERT_TRUE(blocks.ok() && blocks->status == 200) << (blocks.ok() ? blocks->body : "");
  // B shows the cycle in flight: 1 MiB of 3 gone through.
  Json progress = receiver_->Progress("item1");
  EXPECT_EQ(progress["cycle"].value("changedBytes", 0u), 3u << 20) << progress.dump();
  EXPECT_EQ(progress["cycle"].value("doneBytes", 0u), 1u << 20) << progress.dump();
  EXPECT_EQ(progress["cycle"].value("bytesReceived", 0u), 1u << 20) << progress.dump();
  // A damaged batch is refused whole.
  ASSERT_TRUE(w.AddData(3 << 20, std::string(4096, 'V')).ok());
  std::string bad = w.Take();
  bad[bad.size() - 1] ^= 1;
  auto refused = client->Call("POST", "/peer/v1/replication/cycle/blocks?item=item1&seq=2&disk=osdisk",
                              bad, "application/octet-stream");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 400) << refused->body;
  EXPECT_NE(refused->body.find("ReplicationDataCorrupt"), std::string::npos);
  // B's daemon goes down and comes back: what it holds of cycle 2 is no point, but it is kept to
  // be resumed, durable up to the end of the batch it took.
  b_->pairing->Stop();
  receiver_ = std::make_unique<ReplicaReceiver>(
      [this](const std::string& item) -> Result<ReplicaReceiver::Item> {
        return ReplicaReceiver::Item{"regionA", tmp_.Path("b/replicas/item1")};
      },
      [this](const std::string&, uint64_t seq, const Json&, const Json&) {
        points_.push_back(seq);
        return Status::Ok();
      });
  EXPECT_EQ(points_, std::vector<uint64_t>{1});
  auto chain = receiver_->Chain("item1", "osdisk");
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ((*chain)->Points(), std::vector<uint64_t>{1});
  ASSERT_EQ((*chain)->layers().size(), 2u) << "cycle 2's layer is kept";
  EXPECT_EQ((*chain)->OpenSeq(), 2u);
  EXPECT_TRUE((*chain)->layers().back().resumable);
  EXPECT_EQ((*chain)->layers().back().through, 3u << 20);
  // (A new receiver needs its routes on a new server; the old one is stopped, so this test
  // drives the next cycle through the first receiver's successor directly.)
  // A cycle that resumes nothing: what was kept goes.
  PeerCaller a{"", "regionA"};
  auto began =
      receiver_->Begin(a, Json{{"item", "item1"},
                               {"seq", 3},
                               {"disks", {{{"name", "osdisk"}, {"sizeBytes", kDiskSize}}}}});
  ASSERT_TRUE(began.ok()) << began.status().ToString();
  EXPECT_FALSE(began->contains("resumed")) << began->dump();
  EXPECT_EQ((*chain)->layers().size(), 2u);
  EXPECT_EQ((*chain)->layers().back().seq, 3u);
  ASSERT_TRUE(w.AddData(2 << 20, std::string(1 << 20, 'W')).ok());
  ASSERT_TRUE(receiver_->Blocks(a, "item1", 3, "osdisk", w.Take()).ok());
  ASSERT_TRUE(receiver_->Commit(a, Json{{"item", "item1"}, {"seq", 3}}).ok());
  EXPECT_EQ(points_, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ((*chain)->Points(), (std::vector<uint64_t>{1, 3}));
  // And a cycle from a region that is not the source is refused by the receiver itself too.
  PeerCaller c{"", "regionC"};
  auto other =
      receiver_->Begin(c, Json{{"item", "item1"},
                               {"seq", 4},
                               {"disks", {{{"name", "osdisk"}, {"sizeBytes", kDiskSize}}}}});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().arm_code(), "ReplicationNotFromSource");
}

// The link drops in the middle of a cycle (B hears no abort), the next one resumes it — and is cut
// too, then B restarts, and the one after resumes that: each sends only what the target lacks
// (the cut cycle's extents above how far B holds them) and what changed since the cut cycle's
// checkpoint, and every point reads back the source.
TEST_F(ReplicationCycleTest, ACutCycleIsResumedWithOnlyWhatIsMissingAlsoAfterARestart) {
  std::string map_file = tmp_.Path("a/osdisk.hashes");
  BlockHashes map = BlockHashes::Load(map_file, kDiskSize, 0);
  ASSERT_TRUE(RunChecked({"qemu-img", "bitmap", "--add", "-f", "qcow2", disk_, "srep-1"}).ok());
  ASSERT_TRUE(Cycle(1, "", &map).ok());
  ASSERT_TRUE(map.Save(map_file, 1).ok());
  // 4 MiB that does not compress, sent in 1 MiB batches (a 1 MiB/s cap).
  std::string rand = tmp_.Path("rand.bin");
  ASSERT_TRUE(RunChecked({"sh", "-c", "head -c 4194304 /dev/urandom > " + rand}).ok());
  Io("write -s " + rand + " 8M 4M");
  ASSERT_TRUE(RunChecked({"qemu-img", "bitmap", "--add", "-f", "qcow2", disk_, "srep-2"}).ok());
  std::vector<std::vector<datapath::Extent>> planned2;
  auto capped = [&](std::vector<std::vector<datapath::Extent>>* planned, uint64_t resume_of,
                    std::vector<datapath::Extent> resume) {
    return [=](CycleRequest& r) {
      r.bandwidth_bytes_per_s = 1 << 20;
      r.planned = planned;
      r.resume_of = resume_of;
      r.disks[0].resume = resume;
    };
  };
  lookups_left_ = 3;  // the begin and two batches, then the link is down
  BlockHashes m1 = BlockHashes::Load(map_file, kDiskSize, 1);
  auto cut = Cycle(2, "srep-1", &m1, "", {}, nullptr, capped(&planned2, 0, {}));
  ASSERT_FALSE(cut.ok());
  lookups_left_ = -1;
  EXPECT_EQ(points_, std::vector<uint64_t>{1});
  ASSERT_EQ(planned2.size(), 1u);
  EXPECT_EQ(Bytes(planned2[0]), 4u << 20) << "what cycle 2 meant to send";
  auto chain = receiver_->Chain("item1", "osdisk");
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ((*chain)->OpenSeq(), 2u);
  EXPECT_EQ((*chain)->layers().back().through, 10u << 20) << "two batches durable in B";

  // Cycle 3 resumes it (B still has it open): 1 MiB rewritten under what B holds, 64 KiB in what
  // it lacks; cut again after one batch (the rewritten 1 MiB compresses to nothing: that batch
  // holds it and 10M..11M).
  Io("write -P 0x72 8M 1M");
  Io("write -P 0x73 11M 64k");
  ASSERT_TRUE(RunChecked({"qemu-img", "bitmap", "--add", "-f", "qcow2", disk_, "srep-3"}).ok());
  std::vector<std::vector<datapath::Extent>> planned3;
  lookups_left_ = 2;
  BlockHashes m2 = BlockHashes::Load(map_file, kDiskSize, 1);
  cut = Cycle(3, "srep-2", &m2, "", {}, nullptr, capped(&planned3, 2, planned2[0]));
  ASSERT_FALSE(cut.ok());
  lookups_left_ = -1;
  ASSERT_EQ(planned3.size(), 1u);
  EXPECT_EQ(Bytes(planned3[0]), 3u << 20) << "the changed 1 MiB and cycle 2's last 2 MiB";
  EXPECT_EQ((*chain)->OpenSeq(), 3u);
  EXPECT_EQ((*chain)->layers().back().through, 11u << 20);

  // B's daemon restarts; cycle 4 resumes cycle 3 from what B made durable.
  RestartReceiver();
  chain = receiver_->Chain("item1", "osdisk");
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ((*chain)->OpenSeq(), 3u) << "kept across the restart";
  Io("write -P 0x74 2M 4k");
  BlockHashes m3 = BlockHashes::Load(map_file, kDiskSize, 1);
  auto resumed = Cycle(4, "srep-3", &m3, "", {}, nullptr, capped(nullptr, 3, planned3[0]));
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(points_, (std::vector<uint64_t>{1, 4}));
  EXPECT_EQ(CompareWithPoint(4), 0) << "the resumed point is the source";
  EXPECT_EQ(CompareWithPoint(1), 1) << "point 1 is untouched";
  EXPECT_EQ(resumed->resumed_from, 3u);
  EXPECT_EQ(resumed->bytes_resumed, 2u << 20) << "8M..11M was durable in B";
  EXPECT_EQ(resumed->bytes_changed, (1u << 20) + 65536u)
      << "11M..12M of the cut cycles and the 4 KiB write's cluster";
  EXPECT_LT(resumed->bytes_sent, (1u << 20) + 65536u);
}

TEST_F(ReplicationCycleTest, OnlyTheSourceRegionWritesAnItem) {
  MiniRegion c("regionC", tmp_.Path("c"));
  ASSERT_TRUE(c.pairing->Start().ok());
  auto token = b_->pairing->NewToken(10);
  ASSERT_TRUE(c.pairing->Pair("regionB", (*token)["token"], "test").ok());
  auto client = c.pairing->ClientFor("regionB");
  ASSERT_TRUE(client.ok());
  auto r = client->Call("POST", "/peer/v1/replication/cycle/begin",
                        Json{{"item", "item1"},
                             {"seq", 1},
                             {"disks", {{{"name", "osdisk"}, {"sizeBytes", kDiskSize}}}}}
                            .dump());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_NE(r->body.find("ReplicationNotFromSource"), std::string::npos);
  auto blocks = client->Call("POST", "/peer/v1/replication/cycle/blocks?item=item1&seq=1&disk=osdisk",
                             "SRB1\0\0\0\0", "application/octet-stream");
  ASSERT_TRUE(blocks.ok());
  EXPECT_EQ(blocks->status, 403);
  EXPECT_TRUE(points_.empty());
}

}  // namespace
}  // namespace stratus::recovery::site
