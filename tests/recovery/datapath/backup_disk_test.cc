// BackupDisk on real images: incremental chains, fallbacks, crash safety.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data_path_fixture.h"

namespace stratus::recovery::datapath::test {
namespace {

class BackupDiskTest : public DataPathTest {};

TEST_F(BackupDiskTest, IncrementalChainRestoresBitExactFromEveryPointAndAfterGc) {
  const uint64_t size = 64 * kMiB;
  InitialContent(size);
  std::vector<RecoveryPoint> points;
  std::vector<std::string> shas;
  // Full backup; the bitmap that tracks changes for the next one is added first.
  ASSERT_TRUE(AddBitmap(image_, "b0").ok());
  auto full = Backup(nullptr, "");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->second.mode, "full");
  points.push_back(full->first);
  shas.push_back(ImageSha());

  for (int k = 1; k <= 3; ++k) {
    RandomWrites(k, size);
    std::string cur = "b" + std::to_string(k - 1), next = "b" + std::to_string(k);
    ASSERT_TRUE(AddBitmap(image_, next).ok());
    auto inc = Backup(&points.back(), cur);
    ASSERT_TRUE(inc.ok()) << inc.status().ToString();
    ASSERT_TRUE(RemoveBitmap(image_, cur).ok());
    const BackupDiskStats& s = inc->second;
    EXPECT_EQ(s.mode, "incremental") << s.fallback_reason;
    EXPECT_GT(s.chunks_reused, 0u);
    // Only changed slots are read: 6 writes of <= 2.7 MiB touch at most ~24 slots.
    EXPECT_LE(s.bytes_read, 26 * kMiB);
    EXPECT_LT(s.bytes_read, full->second.bytes_read);
    points.push_back(inc->first);
    shas.push_back(ImageSha());
  }
  // Every point restores on its own, bit-exact, raw and qcow2.
  for (size_t i = 0; i < points.size(); ++i) {
    EXPECT_EQ(Restore(points[i], DiskFormat::kRaw), shas[i]) << "point " << i;
  }
  EXPECT_EQ(Restore(points[2], DiskFormat::kQcow2), shas[2]);
  EXPECT_NE(shas[0], shas[3]);

  // Delete the two oldest points, collect, and the rest still restores.
  ASSERT_TRUE(v().DeletePoint(points[0].point_id).ok());
  ASSERT_TRUE(v().DeletePoint(points[1].point_id).ok());
  auto gc = v().Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_GT(gc->chunks_deleted, 0u);
  auto rep = v().VerifyAll();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->Summary();
  for (size_t i = 2; i < points.size(); ++i)
    EXPECT_EQ(Restore(points[i], DiskFormat::kRaw), shas[i]) << "point " << i;
}

TEST_F(BackupDiskTest, WithoutTheBitmapItFallsBackToReadingAllocatedDataAndDeduplicates) {
  const uint64_t size = 64 * kMiB;
  InitialContent(size);
  auto full = Backup(nullptr, "");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  WriteRandom(image_, tmp_.path(), 8 * kMiB, 2 * kMiB, 77);
  // The checkpoint is lost: no bitmap "gone" in the image.
  auto inc = Backup(&full->first, "gone", /*use_bitmap=*/false);
  ASSERT_TRUE(inc.ok()) << inc.status().ToString();
  const BackupDiskStats& s = inc->second;
  EXPECT_EQ(s.mode, "full-dedup");
  EXPECT_NE(s.fallback_reason.find("qemu:dirty-bitmap:gone"), std::string::npos) << s.fallback_reason;
  EXPECT_EQ(s.bytes_read, full->second.bytes_read + 2 * kMiB);
  EXPECT_EQ(s.chunks_new, 2u);  // only the rewritten slots are new
  EXPECT_GT(s.chunks_deduplicated, 10u);
  EXPECT_EQ(Restore(inc->first, DiskFormat::kRaw), ImageSha());
}

TEST_F(BackupDiskTest, ReusedChunksThatVanishedAreReadAgain) {
  const uint64_t size = 64 * kMiB;
  InitialContent(size);
  ASSERT_TRUE(AddBitmap(image_, "b0").ok());
  auto full = Backup(nullptr, "");
  ASSERT_TRUE(full.ok());
  // Lose one chunk of the previous point (damage the vault); an incremental must not reuse it.
  vault::ChunkId lost = full->first.disks[0].chunks[0];
  ASSERT_EQ(::unlink(tv_.ChunkPath(lost).c_str()), 0);
  auto inc = Backup(&full->first, "b0");
  ASSERT_TRUE(inc.ok()) << inc.status().ToString();
  EXPECT_EQ(inc->second.mode, "incremental");
  EXPECT_EQ(inc->second.chunks_reread_missing, 1u);
  EXPECT_EQ(Restore(inc->first, DiskFormat::kRaw), ImageSha());
}

// A backup process killed with -9 in the middle: no point appears, the vault verifies clean, GC
// frees the orphans, and the next backup (an incremental from the last good point) succeeds.
TEST_F(BackupDiskTest, KillDashNineMidBackupLeavesAConsistentVault) {
  const uint64_t size = 64 * kMiB;
  InitialContent(size);
  ASSERT_TRUE(AddBitmap(image_, "b0").ok());
  auto full = Backup(nullptr, "");
  ASSERT_TRUE(full.ok());
  std::string sha_full = ImageSha();
  // New data the killed backup will have partly stored.
  for (int i = 0; i < 12; ++i)
    WriteRandom(image_, tmp_.path(), (8 + 4 * i) * kMiB, 2 * kMiB, 500 + i);
  size_t chunks_before = vault::test::CountChunks(v());

  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    auto vault = tv_.Reopen();
    QemuNbdOptions qo;
    qo.image = image_;
    qo.socket_dir = tmp_.path();
    qo.bitmap = "b0";
    auto exp = QemuNbdExport::Start(qo);
    if (!vault || !exp.ok()) ::_exit(2);
    NbdSource::Options so;
    so.address = (*exp)->uri();
    so.meta_contexts.push_back(DirtyBitmapContext("b0"));
    auto src = NbdSource::Connect(so);
    auto session = vault->BeginBackup();
    if (!src.ok() || !session.ok()) ::_exit(3);
    BackupDiskOptions bo;
    bo.disk_name = "osdisk";
    bo.threads = 1;
    bo.previous = full->first.FindDisk("osdisk");
    bo.changed_context = DirtyBitmapContext("b0");
    bool signalled = false;
    bo.progress = [&](const BackupProgress& p) {
      if (p.bytes_done >= 8 * kMiB && !signalled) {
        signalled = true;
        char c = 'x';
        (void)!::write(pipefd[1], &c, 1);
        for (;;) ::pause();  // wait for the kill
      }
    };
    (void)BackupDisk(**session, **src, bo);
    ::_exit(4);  // must not get here
  }
  ::close(pipefd[1]);
  char c;
  ASSERT_EQ(::read(pipefd[0], &c, 1), 1) << "child failed before the signal";
  ::close(pipefd[0]);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));

  auto ids = v().ListPoints();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->size(), 1u);  // the killed backup left no point
  EXPECT_GT(vault::test::CountChunks(v()), chunks_before);  // but some orphan chunks
  auto rep = v().VerifyAll();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->Summary();
  auto gc = v().Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_EQ(gc->stale_sessions, 1u);
  EXPECT_GT(gc->chunks_deleted, 0u);
  EXPECT_EQ(vault::test::CountChunks(v()), chunks_before);
  EXPECT_EQ(Restore(full->first, DiskFormat::kRaw), sha_full);

  // The bitmap is intact (the backup only read it), so the next backup is incremental.
  ASSERT_TRUE(AddBitmap(image_, "b1").ok());
  auto inc = Backup(&full->first, "b0");
  ASSERT_TRUE(inc.ok()) << inc.status().ToString();
  EXPECT_EQ(inc->second.mode, "incremental");
  EXPECT_EQ(Restore(inc->first, DiskFormat::kRaw), ImageSha());
  EXPECT_TRUE(v().VerifyAll()->ok());
}

}  // namespace
}  // namespace stratus::recovery::datapath::test
