// Crash safety and cross-process coordination of the vault: real child processes (fork), killed
// with SIGKILL at chosen moments, or running a backup while the parent collects garbage.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "recovery/vault/vault.h"
#include "vault_test_util.h"

namespace stratus::recovery::vault {
namespace {

using test::kChunk;

// A child process; the parent talks to it over two pipes, one byte at a time.
class Child {
 public:
  template <typename Fn>
  explicit Child(Fn body) {
    int up[2], down[2];
    if (::pipe(up) != 0 || ::pipe(down) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(up[0]);
      ::close(down[1]);
      to_parent_ = up[1];
      from_parent_ = down[0];
      int rc = body(*this);
      ::_exit(rc);
    }
    ::close(up[1]);
    ::close(down[0]);
    from_child_ = up[0];
    to_child_ = down[1];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // In the child.
  void Tell() {
    char c = 'x';
    (void)!::write(to_parent_, &c, 1);
  }
  void Await() {
    char c;
    (void)!::read(from_parent_, &c, 1);
  }
  // In the parent.
  bool AwaitChild() {
    char c;
    return ::read(from_child_, &c, 1) == 1;
  }
  void TellChild() {
    char c = 'x';
    (void)!::write(to_child_, &c, 1);
  }
  void Kill() {
    ::kill(pid_, SIGKILL);
    Wait();
  }
  int Wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int to_parent_ = -1, from_parent_ = -1, from_child_ = -1, to_child_ = -1;
};

class VaultCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    VaultCreateOptions o;
    o.chunk_size = kChunk;
    tv_ = test::TestVault::Make(tmp_, o);
    ASSERT_NE(tv_.vault, nullptr);
  }

  static std::string Disk(uint64_t seed, size_t chunks) {
    std::string d = test::RandomData(chunks * kChunk, seed, true);
    for (size_t i = 0; i < chunks; ++i) {  // distinct chunks
      std::memcpy(&d[i * kChunk], &seed, 8);
      d[i * kChunk + 8] = static_cast<char>(i);
    }
    return d;
  }

  // Stores `disk` in `s`; returns its index.
  static Result<DiskIndex> Store(BackupSession& s, const std::string& disk) {
    DiskIndex idx;
    idx.name = "osdisk";
    idx.size = disk.size();
    idx.chunk_size = kChunk;
    for (uint64_t i = 0; i < idx.slot_count(); ++i) {
      ASSIGN_OR_RETURN(StoreResult r,
                       s.Store(test::Bytes(disk) + idx.SlotOffset(i), idx.SlotLength(i)));
      idx.chunks.push_back(r.id);
    }
    return idx;
  }

  // Backs up `disk` as a new point of `v`.
  static RecoveryPoint Backup(Vault& v, const std::string& disk) {
    auto s = v.BeginBackup();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    auto idx = Store(**s, disk);
    EXPECT_TRUE(idx.ok()) << idx.status().ToString();
    PointSpec spec;
    spec.disks.push_back(*idx);
    auto p = (*s)->Commit(spec);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : RecoveryPoint{};
  }

  Vault& v() { return *tv_.vault; }

  test::TempDir tmp_{"crash"};
  test::TestVault tv_;
};


TEST_F(VaultCrashTest, KillDashNineMidGcLeavesAConsistentVaultAndGcFinishesLater) {
  RecoveryPoint keep = Backup(v(), Disk(1, 40));
  RecoveryPoint drop1 = Backup(v(), Disk(2, 60));
  RecoveryPoint drop2 = Backup(v(), Disk(3, 60));
  ASSERT_TRUE(v().DeletePoint(drop1.point_id).ok());
  ASSERT_TRUE(v().DeletePoint(drop2.point_id).ok());
  size_t before = test::CountChunks(v());
  ASSERT_EQ(before, 160u);

  Child child([&](Child& self) {
    auto vault = tv_.Reopen();
    if (!vault) return 2;
    GcOptions o;
    o.batch = 8;
    o.progress = [&](uint64_t deleted, uint64_t) {
      if (deleted >= 16) {
        self.Tell();
        for (;;) ::pause();  // killed here, between batches
      }
    };
    (void)vault->Gc(o);
    return 3;
  });
  ASSERT_TRUE(child.AwaitChild());
  child.Kill();

  size_t mid = test::CountChunks(v());
  EXPECT_LT(mid, before);
  EXPECT_GT(mid, 40u);
  auto rep = v().VerifyAll();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->Summary();
  // The dead GC's run lock is gone with it: GC runs again and finishes.
  auto gc = v().Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_EQ(test::CountChunks(v()), 40u);
  EXPECT_TRUE(v().VerifyAll()->ok());
  // And backups go on.
  RecoveryPoint next = Backup(v(), Disk(4, 10));
  EXPECT_TRUE(v().Verify(next.point_id)->ok());
  (void)keep;
}

TEST_F(VaultCrashTest, KillDashNineMidSessionLeavesNoPointAndItsChunksAreCollected) {
  RecoveryPoint base = Backup(v(), Disk(1, 20));
  Child child([&](Child& self) {
    auto vault = tv_.Reopen();
    if (!vault) return 2;
    auto s = vault->BeginBackup();
    if (!s.ok()) return 3;
    std::string disk = Disk(9, 50);
    for (size_t i = 0; i < 50; ++i) {
      if (!(*s)->Store(test::Bytes(disk) + i * kChunk, kChunk).ok()) return 4;
      if (i == 30) {
        self.Tell();
        for (;;) ::pause();
      }
    }
    return 5;
  });
  ASSERT_TRUE(child.AwaitChild());
  child.Kill();
  EXPECT_EQ(v().ListPoints()->size(), 1u);
  EXPECT_EQ(test::CountChunks(v()), 20u + 31u);
  EXPECT_TRUE(v().VerifyAll()->ok());
  auto gc = v().Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_EQ(gc->stale_sessions, 1u);
  EXPECT_EQ(gc->chunks_deleted, 31u);
  EXPECT_EQ(test::CountChunks(v()), 20u);
  EXPECT_TRUE(v().Verify(base.point_id)->ok());
}

// A backup running in another process keeps its chunks, new and deduplicated, through a GC.
TEST_F(VaultCrashTest, GcInAnotherProcessKeepsChunksOfARunningBackup) {
  std::string garbage_disk = Disk(5, 30);
  RecoveryPoint garbage = Backup(v(), garbage_disk);
  ASSERT_TRUE(v().DeletePoint(garbage.point_id).ok());

  Child child([&](Child& self) {
    auto vault = tv_.Reopen();
    if (!vault) return 2;
    auto s = vault->BeginBackup();
    if (!s.ok()) return 3;
    // Half new data, half equal to the garbage point's data (dedup hits on unreferenced chunks).
    std::string disk = Disk(6, 30) + garbage_disk;
    auto idx = Store(**s, disk);
    if (!idx.ok()) return 4;
    self.Tell();   // stored; now the parent collects garbage
    self.Await();  // GC done
    PointSpec spec;
    spec.disks.push_back(*idx);
    auto p = (*s)->Commit(spec);
    return p.ok() ? 0 : 5;
  });
  ASSERT_TRUE(child.AwaitChild());
  auto gc = v().Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_EQ(gc->chunks_deleted, 0u);
  EXPECT_EQ(gc->chunks_protected, 60u);
  child.TellChild();
  ASSERT_EQ(child.Wait(), 0);
  auto ids = v().ListPoints();
  ASSERT_EQ(ids->size(), 1u);
  auto rep = v().VerifyAll();
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->Summary();
  EXPECT_EQ(rep->chunks_checked, 60u);
}

}  // namespace
}  // namespace stratus::recovery::vault
