#include "recovery/vault/vault_copy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "recovery/datapath/restore_disk.h"
#include "vault_test_util.h"

namespace stratus::recovery::vault {
namespace {

using test::kChunk;

// Fails every Put of a chunk after the first `allow` of them (an interrupted copy).
class FailingBackend final : public ObjectBackend {
 public:
  FailingBackend(std::unique_ptr<ObjectBackend> inner, int allow)
      : inner_(std::move(inner)), allow_(allow) {}
  Status Put(const std::string& key, std::string_view data, Durability d) override {
    if (key.rfind("chunks/", 0) == 0 && puts_++ >= allow_)
      return Internal("injected failure writing " + key);
    return inner_->Put(key, data, d);
  }
  Status Get(const std::string& key, std::string* out) override { return inner_->Get(key, out); }
  Result<bool> Exists(const std::string& key) override { return inner_->Exists(key); }
  Status Delete(const std::string& key, Durability d) override { return inner_->Delete(key, d); }
  Status List(const std::string& prefix,
              const std::function<Status(std::string_view, uint64_t)>& fn) override {
    return inner_->List(prefix, fn);
  }
  Status Sync() override { return inner_->Sync(); }
  Result<uint64_t> CleanupIncompletePuts() override { return inner_->CleanupIncompletePuts(); }
  std::string Describe() const override { return "failing:" + inner_->Describe(); }

 private:
  std::unique_ptr<ObjectBackend> inner_;
  std::atomic<int> puts_{0};
  const int allow_;
};

class VaultCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    VaultCreateOptions o;
    o.chunk_size = kChunk;
    tv_ = test::TestVault::Make(tmp_, o);
    ASSERT_NE(tv_.vault, nullptr);
    copy_dir_ = tmp_.Path("copy");
  }
  Vault& v() { return *tv_.vault; }

  RecoveryPoint Backup(const std::string& disk) {
    auto s = v().BeginBackup();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    DiskIndex idx;
    idx.name = "osdisk";
    idx.size = disk.size();
    idx.chunk_size = kChunk;
    for (uint64_t i = 0; i < idx.slot_count(); ++i) {
      auto r = (*s)->Store(test::Bytes(disk) + idx.SlotOffset(i), idx.SlotLength(i));
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      idx.chunks.push_back(r.ok() ? r->id : ChunkId::Hole());
    }
    PointSpec spec;
    spec.disks.push_back(idx);
    auto p = (*s)->Commit(spec);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : RecoveryPoint{};
  }

  // Disk generation `gen`: a shared base with a few slots changed, and a zero region.
  static std::string Disk(int gen) {
    std::string d = test::RandomData(6 * kChunk, 100, true);
    d += std::string(3 * kChunk, '\0');
    d += test::RandomData(3 * kChunk, 200);
    for (int g = 1; g <= gen; ++g) {
      std::string delta = test::RandomData(kChunk, 300 + g);
      d.replace(static_cast<size_t>(g % 6) * kChunk, kChunk, delta);
    }
    return d;
  }

  Result<CopyStats> CatchUp(const CopyOptions& o = {}) {
    ASSIGN_OR_RETURN(auto c, VaultCopier::OpenLocal(v(), copy_dir_));
    return c->CatchUp(o);
  }

  std::unique_ptr<Vault> OpenCopyStandalone() {
    auto c = Vault::OpenLocal(copy_dir_, KeySource::PlatformKeyFile(tv_.key_path));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  // Every visible point of the copy verifies.
  void ExpectCopyConsistent() {
    auto c = OpenCopyStandalone();
    ASSERT_NE(c, nullptr);
    auto r = c->VerifyAll();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->ok()) << r->Summary();
  }

  test::TempDir tmp_;
  test::TestVault tv_;
  std::string copy_dir_;
};

TEST_F(VaultCopyTest, CopiesSeveralPointsOnceWithDedupThenNothing) {
  RecoveryPoint p1 = Backup(Disk(0));
  RecoveryPoint p2 = Backup(Disk(1));
  RecoveryPoint p3 = Backup(Disk(2));
  auto s = CatchUp();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->ok()) << s->Summary();
  EXPECT_EQ(s->points_copied, 3u);
  EXPECT_TRUE(s->config_copied);
  EXPECT_EQ(s->points_behind, 0u);
  // Chunks shared by the points moved once: the copy holds exactly the primary's chunks.
  EXPECT_EQ(s->chunks_copied, test::CountChunks(v()));
  auto c = OpenCopyStandalone();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(test::CountChunks(*c), test::CountChunks(v()));
  EXPECT_EQ(*c->ListPoints(), *v().ListPoints());
  // Same objects byte for byte (no re-encryption).
  std::string a, b;
  ASSERT_TRUE(v().backend().Get(Vault::ChunkKey(p3.disks[0].chunks[0]), &a).ok());
  ASSERT_TRUE(c->backend().Get(Vault::ChunkKey(p3.disks[0].chunks[0]), &b).ok());
  EXPECT_EQ(a, b);

  auto again = CatchUp();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->points_copied, 0u);
  EXPECT_EQ(again->chunks_copied, 0u);
  EXPECT_FALSE(again->config_copied);

  Backup(Disk(3));
  auto inc = CatchUp();
  ASSERT_TRUE(inc.ok());
  EXPECT_EQ(inc->points_copied, 1u);
  EXPECT_EQ(inc->chunks_copied, 1u);  // one changed slot
  ExpectCopyConsistent();
}

TEST_F(VaultCopyTest, CopyOpensAloneAndRestoresBitExact) {
  std::string disk = Disk(1);
  RecoveryPoint p = Backup(disk);
  ASSERT_TRUE(CatchUp().ok());
  // The primary is lost.
  tv_.vault.reset();
  RemoveTree(tv_.dir);
  auto c = OpenCopyStandalone();
  ASSERT_NE(c, nullptr);
  auto point = c->ReadPoint(p.point_id);
  ASSERT_TRUE(point.ok()) << point.status().ToString();
  datapath::RestoreOptions ro;
  ro.format = datapath::DiskFormat::kRaw;
  std::string out = tmp_.Path("restored.raw");
  auto r = datapath::RestoreDisk(*c, *point, "osdisk", out, ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto back = ReadFile(out);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == disk);
}

TEST_F(VaultCopyTest, InterruptedCopyShowsNoHalfPointAndResumes) {
  Backup(Disk(0));
  Backup(Disk(1));
  size_t total = test::CountChunks(v());
  {
    auto local = LocalDirBackend::Open(copy_dir_);
    ASSERT_TRUE(local.ok());
    VaultCopier copier(v(), std::make_unique<FailingBackend>(std::move(local).value(), 3),
                       copy_dir_ + "/state");
    CopyOptions o;
    o.threads = 1;
    auto s = copier.CatchUp(o);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.status().message().find("injected failure"), std::string::npos);
  }
  auto c = OpenCopyStandalone();
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->ListPoints()->empty());  // chunks written, no manifest: no point
  EXPECT_EQ(test::CountChunks(*c), 3u);
  ExpectCopyConsistent();

  auto s = CatchUp();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->points_copied, 2u);
  EXPECT_EQ(s->chunks_copied, total - 3);  // only what was missing
  ExpectCopyConsistent();

  // A manifest lost from the copy comes back alone.
  auto ids = v().ListPoints();
  ASSERT_TRUE(::unlink((copy_dir_ + "/points/" + (*ids)[1] + ".json").c_str()) == 0);
  auto again = CatchUp();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->points_copied, 1u);
  EXPECT_EQ(again->chunks_copied, 0u);
}

TEST_F(VaultCopyTest, PrunePropagatesAndCollectsTheCopysChunks) {
  RecoveryPoint p1 = Backup(Disk(0));
  RecoveryPoint p2 = Backup(Disk(4));
  ASSERT_TRUE(CatchUp().ok());
  ASSERT_TRUE(v().DeletePoint(p1.point_id).ok());
  ASSERT_TRUE(v().Gc().ok());
  auto s = CatchUp();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->points_removed, 1u);
  EXPECT_GT(s->chunks_gc_deleted, 0u);
  auto c = OpenCopyStandalone();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(*c->ListPoints(), std::vector<std::string>{p2.point_id});
  EXPECT_EQ(test::CountChunks(*c), test::CountChunks(v()));
  ExpectCopyConsistent();
}

TEST_F(VaultCopyTest, KeepInCopyAndAVanishedPrimaryStopThePrune) {
  RecoveryPoint p1 = Backup(Disk(0));
  RecoveryPoint p2 = Backup(Disk(1));
  ASSERT_TRUE(CatchUp().ok());
  // Lost from the primary by damage (the caller still knows the point): kept in the copy.
  ASSERT_EQ(::unlink((tv_.dir + "/points/" + p1.point_id + ".json").c_str()), 0);
  CopyOptions o;
  o.keep_in_copy = [&](const std::string& id) { return id == p1.point_id; };
  auto s = CatchUp(o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->points_removed, 0u);
  // The primary's disk is gone altogether: nothing is pruned.
  ASSERT_EQ(::unlink((tv_.dir + "/vault.json").c_str()), 0);
  ASSERT_EQ(::unlink((tv_.dir + "/points/" + p2.point_id + ".json").c_str()), 0);
  auto gone = CatchUp();
  EXPECT_FALSE(gone.ok());
  auto c = OpenCopyStandalone();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->ListPoints()->size(), 2u);
}

TEST_F(VaultCopyTest, FallbackReadHealsMissingAndCorruptChunks) {
  std::string disk = Disk(2);
  RecoveryPoint p = Backup(disk);
  ASSERT_TRUE(CatchUp().ok());
  const ChunkId missing = p.disks[0].chunks[0];
  const ChunkId corrupt = p.disks[0].chunks[10];
  ASSERT_FALSE(missing.is_hole());
  ASSERT_FALSE(corrupt.is_hole());
  ASSERT_EQ(::unlink(tv_.ChunkPath(missing).c_str()), 0);
  test::FlipByte(tv_.ChunkPath(corrupt), 40);
  ByteBuffer buf;
  EXPECT_EQ(v().ReadChunk(missing, &buf).arm_code(), "ChunkMissing");
  EXPECT_EQ(v().ReadChunk(corrupt, &buf).arm_code(), "ChunkCorrupt");

  auto copy = OpenLocalCopy(v(), copy_dir_);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  v().SetFallback(std::shared_ptr<Vault>(std::move(copy).value()));
  datapath::RestoreOptions ro;
  ro.format = datapath::DiskFormat::kRaw;
  std::string out = tmp_.Path("restored.raw");
  auto r = datapath::RestoreDisk(v(), p, "osdisk", out, ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(*ReadFile(out) == disk);
  EXPECT_EQ(v().chunks_repaired(), 2u);

  // The primary is whole again, without the copy.
  v().SetFallback(nullptr);
  auto rep = v().VerifyAll();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->Summary();
}

TEST_F(VaultCopyTest, ChunkLostInBothFailsOnlyItsPoint) {
  RecoveryPoint p1 = Backup(Disk(0));
  ChunkId lost = ChunkId::Hole();
  // A second point with one chunk of its own, which then vanishes from the primary.
  RecoveryPoint p2 = Backup(Disk(1));
  for (const auto& c : p2.disks[0].chunks)
    if (!c.is_hole() && std::find(p1.disks[0].chunks.begin(), p1.disks[0].chunks.end(), c) ==
                            p1.disks[0].chunks.end())
      lost = c;
  ASSERT_FALSE(lost.is_hole());
  ASSERT_EQ(::unlink(tv_.ChunkPath(lost).c_str()), 0);
  auto s = CatchUp();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(s->ok());
  EXPECT_EQ(s->points_copied, 1u);
  EXPECT_EQ(s->points_failed, 1u);
  EXPECT_EQ(s->points_behind, 1u);
  EXPECT_NE(s->errors[0].find(lost.Hex()), std::string::npos) << s->errors[0];
  ExpectCopyConsistent();
}

TEST_F(VaultCopyTest, RefusesAnotherVaultAndASecondRunner) {
  Backup(Disk(0));
  {
    auto other = Vault::CreateLocal(copy_dir_, KeySource::PlatformKeyFile(tv_.key_path));
    ASSERT_TRUE(other.ok());
  }
  auto s = CatchUp();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().arm_code(), "VaultCopyMismatch");
  RemoveTree(copy_dir_);

  ASSERT_TRUE(MakeDirs(copy_dir_ + "/state", 0700).ok());
  auto held = FileLock::Acquire(copy_dir_ + "/state/copy.lock", FileLock::Mode::kExclusive, false);
  ASSERT_TRUE(held.ok());
  auto busy = CatchUp();
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().arm_code(), "VaultCopyRunning");
}

TEST_F(VaultCopyTest, KeyChangeReachesTheCopy) {
  Backup(Disk(0));
  ASSERT_TRUE(CatchUp().ok());
  ASSERT_TRUE(v().ChangeKey(KeySource::PlatformKeyFile(tv_.key_path),
                            KeySource::CustomerPassphrase("a-customer-passphrase"))
                  .ok());
  auto s = CatchUp();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->config_copied);
  auto c = Vault::OpenLocal(copy_dir_, KeySource::CustomerPassphrase("a-customer-passphrase"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->ListPoints()->size(), 1u);
}

TEST_F(VaultCopyTest, AfterAHostCrashChunksInTheCopyAreCheckedBeforeUse) {
  RecoveryPoint p = Backup(Disk(0));
  ASSERT_TRUE(CatchUp().ok());
  // As if the host died mid-copy: the manifest never made it, a chunk is torn, and the journal of
  // the run names another boot.
  ASSERT_EQ(::unlink((copy_dir_ + "/points/" + p.point_id + ".json").c_str()), 0);
  const std::string torn = copy_dir_ + "/" + Vault::ChunkKey(p.disks[0].chunks[1]);
  ASSERT_EQ(::truncate(torn.c_str(), 10), 0);
  ASSERT_TRUE(WriteFileAtomic(copy_dir_ + "/state/copy.journal",
                              "{\"boot_id\":\"00000000\",\"pid\":1}", 0600)
                  .ok());
  auto s = CatchUp();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->verified_existing);
  EXPECT_EQ(s->points_copied, 1u);
  EXPECT_EQ(s->chunks_copied, 1u);
  EXPECT_FALSE(PathExists(copy_dir_ + "/state/copy.journal"));
  ExpectCopyConsistent();
}

}  // namespace
}  // namespace stratus::recovery::vault
