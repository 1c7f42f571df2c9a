#include "recovery/vault/vault.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "vault_test_util.h"

namespace stratus::recovery::vault {
namespace {

using test::kChunk;

class VaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    VaultCreateOptions o;
    o.chunk_size = kChunk;
    tv_ = test::TestVault::Make(tmp_, o);
    ASSERT_NE(tv_.vault, nullptr);
  }
  Vault& v() { return *tv_.vault; }

  // Backs up `disk` (its bytes) as one disk called `name`; returns the point.
  RecoveryPoint Backup(const std::string& disk, const std::string& name = "osdisk") {
    auto s = v().BeginBackup();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    DiskIndex idx = IndexOf(**s, disk, name);
    PointSpec spec;
    spec.disks.push_back(idx);
    spec.vm_config = {{"name", "vm1"}};
    auto p = (*s)->Commit(spec);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : RecoveryPoint{};
  }

  DiskIndex IndexOf(BackupSession& s, const std::string& disk, const std::string& name) {
    DiskIndex idx;
    idx.name = name;
    idx.size = disk.size();
    idx.chunk_size = kChunk;
    for (uint64_t i = 0; i < idx.slot_count(); ++i) {
      auto r = s.Store(test::Bytes(disk) + idx.SlotOffset(i), idx.SlotLength(i));
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      idx.chunks.push_back(r.ok() ? r->id : ChunkId::Hole());
    }
    return idx;
  }

  std::string Read(const RecoveryPoint& p, const std::string& disk = "osdisk") {
    const DiskIndex* d = p.FindDisk(disk);
    std::string out;
    ByteBuffer buf;
    for (uint64_t i = 0; i < d->slot_count(); ++i) {
      if (d->chunks[i].is_hole()) {
        out.append(d->SlotLength(i), '\0');
      } else {
        Status st = v().ReadChunk(d->chunks[i], &buf);
        EXPECT_TRUE(st.ok()) << st.ToString();
        out.append(buf.view());
      }
    }
    return out;
  }

  // A disk: compressible text, random data, a zero region, a repeat of the first chunk.
  static std::string SampleDisk(uint64_t seed) {
    std::string d = test::RandomData(4 * kChunk, seed, true);
    d += test::RandomData(4 * kChunk, seed + 1);
    d += std::string(8 * kChunk, '\0');
    d += d.substr(0, kChunk);
    d += test::RandomData(1000, seed + 2);  // short last slot
    return d;
  }

  test::TempDir tmp_;
  test::TestVault tv_;
};

TEST_F(VaultTest, BackupAndReadBackWithHolesAndDedup) {
  std::string disk = SampleDisk(1);
  RecoveryPoint p = Backup(disk);
  EXPECT_EQ(Read(p), disk);
  const DiskIndex& d = p.disks[0];
  EXPECT_EQ(d.slot_count(), 18u);
  EXPECT_EQ(d.allocated_slots(), 10u);  // 8 zero slots are holes
  // The repeated first chunk is stored once; holes not at all.
  EXPECT_EQ(test::CountChunks(v()), 9u);
  EXPECT_EQ(d.chunks[16], d.chunks[0]);
  // Compressible chunks are stored compressed.
  auto size = [&](const ChunkId& id) {
    std::string s;
    EXPECT_TRUE(v().backend().Get(Vault::ChunkKey(id), &s).ok());
    return s.size();
  };
  EXPECT_LT(size(d.chunks[0]), kChunk / 4);
  EXPECT_GT(size(d.chunks[5]), kChunk);
}

TEST_F(VaultTest, SecondBackupOfSameDataWritesNothing) {
  std::string disk = SampleDisk(1);
  Backup(disk);
  size_t before = test::CountChunks(v());
  auto s = v().BeginBackup();
  ASSERT_TRUE(s.ok());
  for (size_t off = 0; off < disk.size(); off += kChunk) {
    auto r = (*s)->Store(test::Bytes(disk) + off, std::min<size_t>(kChunk, disk.size() - off));
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->written);
  }
  EXPECT_EQ(test::CountChunks(v()), before);
}

TEST_F(VaultTest, PointsAreVisibleOnlyAfterCommitAndSurviveReopen) {
  std::string disk = SampleDisk(2);
  {
    auto s = v().BeginBackup();
    ASSERT_TRUE(s.ok());
    IndexOf(**s, disk, "osdisk");
    EXPECT_TRUE(v().ListPoints()->empty());
    // Destroyed without Commit: abandoned.
  }
  EXPECT_TRUE(v().ListPoints()->empty());
  RecoveryPoint p = Backup(disk);
  auto reopened = tv_.Reopen();
  ASSERT_NE(reopened, nullptr);
  auto ids = reopened->ListPoints();
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 1u);
  EXPECT_EQ((*ids)[0], p.point_id);
  auto back = reopened->ReadPoint(p.point_id);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->vm_config["name"], "vm1");
  EXPECT_EQ(back->disks[0].chunks, p.disks[0].chunks);
}

TEST_F(VaultTest, CommitRefusesChunksTheSessionDidNotProtect) {
  std::string disk = SampleDisk(3);
  RecoveryPoint p1 = Backup(disk);
  auto s = v().BeginBackup();
  ASSERT_TRUE(s.ok());
  PointSpec spec;
  spec.disks.push_back(p1.disks[0]);  // reused without Retain()
  auto r = (*s)->Commit(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("neither stored nor retained"), std::string::npos);

  auto s2 = v().BeginBackup();
  ASSERT_TRUE(s2.ok());
  auto present = (*s2)->Retain(p1.disks[0].chunks);
  ASSERT_TRUE(present.ok());
  for (bool b : *present) EXPECT_TRUE(b);
  PointSpec spec2;
  spec2.parent_point_id = p1.point_id;
  spec2.disks.push_back(p1.disks[0]);
  auto p2 = (*s2)->Commit(spec2);
  ASSERT_TRUE(p2.ok()) << p2.status().ToString();
  EXPECT_EQ(Read(*p2), disk);
}

TEST_F(VaultTest, RetainReportsMissingChunks) {
  std::string disk = SampleDisk(4);
  RecoveryPoint p1 = Backup(disk);
  ASSERT_EQ(::unlink(tv_.ChunkPath(p1.disks[0].chunks[0]).c_str()), 0);
  auto s = v().BeginBackup();
  ASSERT_TRUE(s.ok());
  auto present = (*s)->Retain(p1.disks[0].chunks);
  ASSERT_TRUE(present.ok());
  EXPECT_FALSE((*present)[0]);
  EXPECT_TRUE((*present)[1]);
  EXPECT_TRUE((*present)[10]);  // a hole counts as present
}

TEST_F(VaultTest, VerifyNamesPointDiskAndOffsetOfCorruptAndMissingChunks) {
  RecoveryPoint p1 = Backup(SampleDisk(5), "osdisk");
  RecoveryPoint p2 = Backup(SampleDisk(50), "data0");
  auto clean = v().VerifyAll();
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok()) << clean->Summary();
  EXPECT_EQ(clean->points, 2u);

  // Corrupt one byte of slot 2 of p1, delete slot 5 of p2.
  ChunkId corrupt = p1.disks[0].chunks[2];
  test::FlipByte(tv_.ChunkPath(corrupt), 100);
  ChunkId missing = p2.disks[0].chunks[5];
  ASSERT_EQ(::unlink(tv_.ChunkPath(missing).c_str()), 0);

  auto r = v().VerifyAll();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->problems.size(), 2u) << r->Summary();
  std::map<std::string, ChunkProblem> by_point;
  for (auto& pr : r->problems) by_point[pr.point_id] = pr;
  EXPECT_EQ(by_point[p1.point_id].kind, ChunkProblem::Kind::kCorrupt);
  EXPECT_EQ(by_point[p1.point_id].disk, "osdisk");
  EXPECT_EQ(by_point[p1.point_id].offset, 2u * kChunk);
  EXPECT_EQ(by_point[p1.point_id].chunk_id, corrupt.Hex());
  EXPECT_EQ(by_point[p2.point_id].kind, ChunkProblem::Kind::kMissing);
  EXPECT_EQ(by_point[p2.point_id].disk, "data0");
  EXPECT_EQ(by_point[p2.point_id].offset, 5u * kChunk);
  EXPECT_NE(r->Summary().find("disk osdisk offset 131072"), std::string::npos) << r->Summary();

  auto one = v().Verify(p2.point_id);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->problems.size(), 1u);
  ByteBuffer buf;
  EXPECT_EQ(v().ReadChunk(missing, &buf).arm_code(), "ChunkMissing");
  EXPECT_EQ(v().ReadChunk(corrupt, &buf).arm_code(), "ChunkCorrupt");
}

TEST_F(VaultTest, TamperedManifestIsDetectedByReadVerifyAndGc) {
  RecoveryPoint p = Backup(SampleDisk(6));
  std::string path = tv_.dir + "/points/" + p.point_id + ".json";
  std::string text = *ReadFile(path);
  size_t pos = text.find("CrashConsistent");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 15, "FileSystemConsi");
  ASSERT_TRUE(WriteFileAtomic(path, text).ok());
  auto r = v().ReadPoint(p.point_id);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().arm_code(), "ManifestTampered");
  auto rep = v().VerifyAll();
  ASSERT_TRUE(rep.ok());
  ASSERT_EQ(rep->problems.size(), 1u);
  EXPECT_EQ(rep->problems[0].kind, ChunkProblem::Kind::kManifest);
  EXPECT_EQ(rep->problems[0].point_id, p.point_id);
  // GC cannot tell that point's chunks from garbage, so it deletes nothing.
  size_t before = test::CountChunks(v());
  auto gc = v().Gc();
  EXPECT_FALSE(gc.ok());
  EXPECT_EQ(test::CountChunks(v()), before);
}

TEST_F(VaultTest, WrongCustomerKeyIsAClearErrorAndDecryptsNothing) {
  test::TempDir tmp2;
  std::string dir = tmp2.Path("cvault");
  {
    auto cv = Vault::CreateLocal(dir, KeySource::CustomerPassphrase("s3cret-customer-key"));
    ASSERT_TRUE(cv.ok()) << cv.status().ToString();
    EXPECT_EQ((*cv)->protection(), "customer");
  }
  std::string meta = *ReadFile(dir + "/vault.json");
  EXPECT_EQ(meta.find("s3cret"), std::string::npos);
  auto bad = Vault::OpenLocal(dir, KeySource::CustomerPassphrase("guess"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "the customer key does not match this vault");
  EXPECT_EQ(bad.status().arm_code(), "CustomerKeyMismatch");
  auto good = Vault::OpenLocal(dir, KeySource::CustomerPassphrase("s3cret-customer-key"));
  ASSERT_TRUE(good.ok()) << good.status().ToString();

  // Rotating the customer key: the old one stops working, data stays readable.
  ASSERT_TRUE((*good)->ChangeKey(KeySource::CustomerPassphrase("s3cret-customer-key"),
                                 KeySource::CustomerPassphrase("rotated"))
                  .ok());
  EXPECT_FALSE(Vault::OpenLocal(dir, KeySource::CustomerPassphrase("s3cret-customer-key")).ok());
  EXPECT_TRUE(Vault::OpenLocal(dir, KeySource::CustomerPassphrase("rotated")).ok());
}

TEST_F(VaultTest, ModifiedVaultSettingsAreDetected) {
  std::string path = tv_.dir + "/vault.json";
  Json doc = Json::parse(*ReadFile(path));
  doc["chunk_size"] = 4u << 20;
  ASSERT_TRUE(WriteFileAtomic(path, doc.dump()).ok());
  auto r = Vault::OpenLocal(tv_.dir, KeySource::PlatformKeyFile(tv_.key_path));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().arm_code(), "VaultMetadataCorrupt");
}

TEST_F(VaultTest, CreateRefusesAnExistingVaultAndOpenNamesAMissingOne) {
  auto again = Vault::CreateLocal(tv_.dir, KeySource::PlatformKeyFile(tv_.key_path));
  EXPECT_EQ(again.status().code(), StatusCode::kConflict);
  auto none = Vault::OpenLocal(tmp_.Path("nothing"), KeySource::PlatformKeyFile(tv_.key_path));
  EXPECT_EQ(none.status().arm_code(), "VaultNotFound");
  VaultCreateOptions bad;
  bad.chunk_size = 3000;
  EXPECT_FALSE(Vault::CreateLocal(tmp_.Path("v2"), KeySource::PlatformKeyFile(tv_.key_path), bad).ok());
}

TEST_F(VaultTest, DeletePointThenGcFreesOnlyItsChunks) {
  std::string a = SampleDisk(7), b = SampleDisk(8);
  b.replace(0, kChunk, a.substr(0, kChunk));  // share one chunk with a
  RecoveryPoint pa = Backup(a);
  RecoveryPoint pb = Backup(b);
  size_t total = test::CountChunks(v());
  ASSERT_TRUE(v().DeletePoint(pa.point_id).ok());
  EXPECT_EQ(v().DeletePoint(pa.point_id).code(), StatusCode::kNotFound);
  auto gc = v().Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_EQ(gc->points, 1u);
  EXPECT_GT(gc->chunks_deleted, 0u);
  EXPECT_GT(gc->bytes_freed, 0u);
  EXPECT_EQ(test::CountChunks(v()), total - gc->chunks_deleted);
  EXPECT_EQ(Read(pb), b);
  auto rep = v().VerifyAll();
  EXPECT_TRUE(rep->ok()) << rep->Summary();
  // Nothing left to collect.
  auto gc2 = v().Gc();
  ASSERT_TRUE(gc2.ok());
  EXPECT_EQ(gc2->chunks_deleted, 0u);
}

TEST_F(VaultTest, AbandonedSessionChunksAreCollectedWithoutGracePeriod) {
  {
    auto s = v().BeginBackup();
    ASSERT_TRUE(s.ok());
    IndexOf(**s, SampleDisk(9), "osdisk");
  }
  EXPECT_GT(test::CountChunks(v()), 0u);
  auto gc = v().Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(test::CountChunks(v()), 0u);
}

TEST_F(VaultTest, GcKeepsChunksOfARunningBackupIncludingDedupHitsOnGarbage) {
  std::string old_disk = SampleDisk(10);
  RecoveryPoint old_point = Backup(old_disk);
  ASSERT_TRUE(v().DeletePoint(old_point.point_id).ok());  // its chunks are now garbage

  auto s = v().BeginBackup();
  ASSERT_TRUE(s.ok());
  // The running backup stores new data and data equal to the garbage (a dedup hit).
  std::string fresh = SampleDisk(11);
  DiskIndex i1 = IndexOf(**s, fresh, "data0");
  DiskIndex i2 = IndexOf(**s, old_disk, "osdisk");

  auto gc = v().Gc();  // concurrently with the session (different lock holder)
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_GT(gc->chunks_protected, 0u);
  EXPECT_EQ(gc->chunks_deleted, 0u);

  PointSpec spec;
  spec.disks = {i1, i2};
  auto p = (*s)->Commit(spec);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(Read(*p, "osdisk"), old_disk);
  EXPECT_EQ(Read(*p, "data0"), fresh);
  auto gc2 = v().Gc();
  ASSERT_TRUE(gc2.ok());
  EXPECT_EQ(gc2->chunks_deleted, 0u);
  EXPECT_TRUE(v().VerifyAll()->ok());
}

// Stress the GC/session protocol: a session keeps deduplicating against garbage while GC runs
// with tiny batches on another thread; whatever the interleaving, the committed point is whole.
TEST_F(VaultTest, GcRacingASessionNeverLosesAReferencedChunk) {
  for (int round = 0; round < 5; ++round) {
    std::string disk = test::RandomData(64 * kChunk, 100 + round, true);
    for (size_t i = 0; i < 64; ++i) disk[i * kChunk] = static_cast<char>(i);  // distinct chunks
    RecoveryPoint garbage = Backup(disk);
    ASSERT_TRUE(v().DeletePoint(garbage.point_id).ok());

    auto s = v().BeginBackup();
    ASSERT_TRUE(s.ok());
    std::thread gc_thread([&] {
      GcOptions o;
      o.batch = 1;
      auto r = v().Gc(o);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
    });
    DiskIndex idx = IndexOf(**s, disk, "osdisk");
    gc_thread.join();
    PointSpec spec;
    spec.disks = {idx};
    auto p = (*s)->Commit(spec);
    ASSERT_TRUE(p.ok());
    auto rep = v().Verify(p->point_id);
    ASSERT_TRUE(rep.ok());
    ASSERT_TRUE(rep->ok()) << "round " << round << ": " << rep->Summary();
    EXPECT_EQ(Read(*p), disk);
    ASSERT_TRUE(v().DeletePoint(p->point_id).ok());
  }
}

TEST_F(VaultTest, OnlyOneGcAtATime) {
  auto lock = FileLock::Acquire(tv_.dir + "/state/gc.run.lock", FileLock::Mode::kExclusive, false);
  ASSERT_TRUE(lock.ok());
  auto gc = v().Gc();
  EXPECT_EQ(gc.status().arm_code(), "GarbageCollectionRunning");
}

TEST_F(VaultTest, LeasesOfDeadSessionsAreCleanedUpAndTornChunksOfAnotherBootRemoved) {
  // Simulate a session of a previous boot: a lease with an unlocked, foreign boot id, that
  // "wrote" one intact chunk and one torn (empty) chunk.
  std::string disk = SampleDisk(12);
  RecoveryPoint p = Backup(disk);
  ChunkId intact = p.disks[0].chunks[0];
  ChunkId torn = ChunkId::FromHex(std::string(64, 'e')).value();
  ASSERT_TRUE(v().backend().Put(Vault::ChunkKey(torn), "", Durability::kDeferred).ok());
  Json header = {{"format", "stratus-vault-lease"}, {"version", 1}, {"boot_id", "deadbeef"},
                 {"session_id", "s-old"}, {"pid", 1}};
  std::string lease = header.dump() + "\nW " + intact.Hex() + "\nW " + torn.Hex() + "\n";
  ASSERT_TRUE(MakeDirs(tv_.dir + "/state/sessions").ok());
  ASSERT_TRUE(WriteFileAtomic(tv_.dir + "/state/sessions/s-old.lease", lease).ok());
  auto gc = v().Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_EQ(gc->stale_sessions, 1u);
  EXPECT_EQ(gc->torn_chunks_removed, 1u);
  EXPECT_FALSE(PathExists(tv_.dir + "/state/sessions/s-old.lease"));
  EXPECT_FALSE(PathExists(tv_.ChunkPath(torn)));
  EXPECT_TRUE(PathExists(tv_.ChunkPath(intact)));
  EXPECT_TRUE(v().VerifyAll()->ok());
}

TEST_F(VaultTest, ParallelStoresFromManyThreads) {
  std::string disk = test::RandomData(256 * kChunk, 77, true);
  for (size_t i = 0; i < 256; ++i) disk[i * kChunk + 1] = static_cast<char>(i);
  auto s = v().BeginBackup();
  ASSERT_TRUE(s.ok());
  DiskIndex idx;
  idx.name = "osdisk";
  idx.size = disk.size();
  idx.chunk_size = kChunk;
  idx.chunks.resize(idx.slot_count());
  std::vector<std::thread> pool;
  std::atomic<size_t> next{0};
  for (int t = 0; t < 4; ++t) {
    pool.emplace_back([&] {
      for (size_t i; (i = next++) < idx.chunks.size();) {
        auto r = (*s)->Store(test::Bytes(disk) + i * kChunk, kChunk);
        ASSERT_TRUE(r.ok());
        idx.chunks[i] = r->id;
      }
    });
  }
  for (auto& t : pool) t.join();
  PointSpec spec;
  spec.disks = {idx};
  auto p = (*s)->Commit(spec);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Read(*p), disk);
}

}  // namespace
}  // namespace stratus::recovery::vault
