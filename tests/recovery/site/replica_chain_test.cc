// ReplicaChain over real qcow2 files, qemu-img and qemu-nbd: every point reads back exactly the
// disk as of its cycle, a cycle that was not sealed is never a point (and is gone after a
// "crash"), thinning keeps the other points' content (also when cut in the middle), and a clone
// is copy-on-write.
#include "recovery/site/replica_chain.h"

#include <gtest/gtest.h>

#include <map>

#include "core/fs.h"
#include "core/json.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"

namespace stratus::recovery::site {
namespace {

constexpr uint64_t kChainSize = 4 << 20;

class ReplicaChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static const bool tools =
        RunProcess({"qemu-img", "--version"}).ok() && RunProcess({"qemu-nbd", "--version"}).ok();
    if (!tools) GTEST_SKIP() << "qemu-img and qemu-nbd are needed";
    dir_ = tmp_.Path("chain");
  }

  // The guest-visible bytes of `image`.
  std::string Content(const std::string& image) {
    std::string raw = tmp_.Path("read.raw");
    auto r = RunChecked({"qemu-img", "convert", "-O", "raw", image, raw});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    auto data = ReadFile(raw);
    return data.ok() ? *data : "";
  }
  // One cycle: `writes` (offset -> bytes) into the chain as cycle `seq`, sealed; the model
  // follows.
  void Cycle(ReplicaChain& c, uint64_t seq, const std::map<uint64_t, std::string>& writes,
             bool seal = true) {
    auto w = c.BeginCycle(seq);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (auto& [off, bytes] : writes) {
      ASSERT_TRUE((*w)->Write(off, bytes.data(), bytes.size()).ok());
      if (seal) model_.replace(off, bytes.size(), bytes);
    }
    ASSERT_TRUE((*w)->Finish().ok());
    if (seal) {
      ASSERT_TRUE(c.Seal(seq).ok());
      states_[seq] = model_;
    }
  }
  void ExpectPoints(ReplicaChain& c) {
    for (uint64_t p : c.Points()) {
      auto image = c.PointImage(p);
      ASSERT_TRUE(image.ok());
      ASSERT_TRUE(states_.count(p)) << "point " << p << " was never sealed";
      EXPECT_TRUE(Content(*image) == states_[p]) << "point " << p << " reads other bytes";
    }
  }

  test::ScopedTempDir tmp_{"replica"};
  std::string dir_;
  std::string model_ = std::string(kChainSize, '\0');
  std::map<uint64_t, std::string> states_;
};

TEST_F(ReplicaChainTest, EveryPointReadsBackItsCycleAndAnUnsealedCycleIsNoPoint) {
  auto c = ReplicaChain::Open(dir_, kChainSize);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Cycle(**c, 1, {{0, std::string(65536, 'a')}, {1 << 20, std::string(4096, 'b')}});
  Cycle(**c, 2, {{4096, std::string(4096, 'c')}});
  Cycle(**c, 5,
        {{(1 << 20) + 512, std::string(512, 'd')}, {kChainSize - 4096, std::string(4096, 'e')}});
  EXPECT_EQ((*c)->Points(), (std::vector<uint64_t>{1, 2, 5}));
  ExpectPoints(**c);
  EXPECT_FALSE((*c)->BeginCycle(5).ok()) << "cycles go forward";

  // A cycle whose data came but was not sealed (the link or B cut before the end).
  Cycle(**c, 6, {{0, std::string(4096, 'x')}}, /*seal=*/false);
  EXPECT_FALSE((*c)->BeginCycle(7).ok()) << "the open cycle is sealed or discarded first";
  c->reset();
  auto again = ReplicaChain::Open(dir_, kChainSize);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Points(), (std::vector<uint64_t>{1, 2, 5}));
  EXPECT_EQ((*again)->layers().size(), 3u);
  EXPECT_FALSE(PathExists(JoinPath(dir_, "l00000000000000000006.qcow2")));
  ExpectPoints(**again);
  Cycle(**again, 6, {{8192, std::string(4096, 'y')}});
  ExpectPoints(**again);
}

TEST_F(ReplicaChainTest, ThinningKeepsTheOtherPointsAndFinishesAfterACut) {
  auto c = ReplicaChain::Open(dir_, kChainSize);
  ASSERT_TRUE(c.ok());
  for (uint64_t s = 1; s <= 6; ++s)
    Cycle(**c, s, {{(s - 1) * 8192, std::string(8192, static_cast<char>('a' + s))},
                   {0, std::string(512, static_cast<char>('A' + s))}});
  ASSERT_TRUE((*c)->DropPoint(2).ok());
  ASSERT_TRUE((*c)->DropPoint(4).ok());
  EXPECT_EQ((*c)->Points(), (std::vector<uint64_t>{1, 3, 5, 6}));
  ExpectPoints(**c);
  EXPECT_FALSE((*c)->DropPoint(6).ok()) << "the newest point stays";
  EXPECT_FALSE((*c)->DropPoint(3, {5}).ok()) << "point 5 (pinned) reads point 3's layer";
  EXPECT_TRUE((*c)->DropPoint(5, {3}).ok()) << "a pin below does not stop it";
  ExpectPoints(**c);

  // A merge cut after its intent was recorded: the next Open finishes it.
  Json doc = Json::parse(*ReadFile(JoinPath(dir_, "chain.json")));
  doc["merging"] = doc["layers"][1]["file"];  // point 3's layer merges into point 1's
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir_, "chain.json"), doc.dump()).ok());
  c->reset();
  auto again = ReplicaChain::Open(dir_, kChainSize);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->Points(), (std::vector<uint64_t>{3, 6}));
  ExpectPoints(**again);
}

TEST_F(ReplicaChainTest, AClonedPointIsCopyOnWrite) {
  auto c = ReplicaChain::Open(dir_, kChainSize);
  ASSERT_TRUE(c.ok());
  Cycle(**c, 1, {{0, std::string(65536, 'a')}});
  Cycle(**c, 2, {{65536, std::string(65536, 'b')}});
  std::string clone = tmp_.Path("clone.qcow2");
  ASSERT_TRUE((*c)->CloneAt(1, clone).ok());
  EXPECT_TRUE(Content(clone) == states_[1]);
  ASSERT_TRUE(RunChecked({"qemu-io", "-f", "qcow2", "-c", "write -P 0x7a 0 4096", clone}).ok());
  ExpectPoints(**c);  // the chain did not change
  std::string changed = states_[1];
  changed.replace(0, 4096, std::string(4096, 'z'));
  EXPECT_TRUE(Content(clone) == changed);
  EXPECT_FALSE((*c)->CloneAt(9, tmp_.Path("none.qcow2")).ok());
}

// Reprotect: a chain made on an existing image reads it where no cycle wrote, never writes it,
// and ChangedBetween names exactly the clusters the cycles in a range wrote.
TEST_F(ReplicaChainTest, AChainOnAnOldDiskReadsItUnderTheCyclesAndNamesWhatTheyChanged) {
  std::string old_disk = tmp_.Path("old.qcow2");
  ASSERT_TRUE(
      RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", old_disk, std::to_string(kChainSize)})
          .ok());
  std::string fill = tmp_.Path("fill.raw");
  ASSERT_TRUE(WriteFileAtomic(fill, std::string(kChainSize, 'o'), 0600).ok());
  ASSERT_TRUE(RunChecked({"qemu-img", "convert", "-n", "-f", "raw", "-O", "qcow2", fill,
                          old_disk}).ok());
  model_ = std::string(kChainSize, 'o');
  std::string before = Content(old_disk);
  auto c = ReplicaChain::Open(dir_, kChainSize, old_disk);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Cycle(**c, 10, {{65536, std::string(4096, 'a')}});
  Cycle(**c, 20, {{1 << 20, std::string(131072, 'b')}});
  Cycle(**c, 30, {{3 << 20, std::string(65536, 'c')}});
  ExpectPoints(**c);
  EXPECT_TRUE(Content(old_disk) == before) << "the old disk is never written";

  auto changed = (*c)->ChangedBetween(10, 30);
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  ASSERT_EQ(changed->size(), 2u);
  EXPECT_EQ((*changed)[0].offset, 1u << 20);
  EXPECT_EQ((*changed)[0].length, 131072u);
  EXPECT_EQ((*changed)[1].offset, 3u << 20);
  EXPECT_EQ((*changed)[1].length, 65536u);
  auto none = (*c)->ChangedBetween(30, 30);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // Thinning merges a layer into the one below: the range still covers what it wrote.
  ASSERT_TRUE((*c)->DropPoint(20).ok());
  auto merged = (*c)->ChangedBetween(10, 30);
  ASSERT_TRUE(merged.ok());
  uint64_t bytes = 0;
  for (auto& e : *merged) bytes += e.length;
  EXPECT_EQ(bytes, 131072u + 65536u);
}

}  // namespace
}  // namespace stratus::recovery::site
