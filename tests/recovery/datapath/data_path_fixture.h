// Fixture of the data-path tests on real qcow2 images: qemu-io writes, persistent dirty bitmaps,
// qemu-nbd exports, libnbd reads, the vault, and restores checked by SHA-256 of the whole disk.
#pragma once

#include <gtest/gtest.h>

#include <random>

#include "image_test_util.h"
#include "recovery/datapath/backup_disk.h"
#include "recovery/datapath/qemu_nbd_export.h"
#include "recovery/datapath/restore_disk.h"

namespace stratus::recovery::datapath::test {

using vault::DiskIndex;
using vault::RecoveryPoint;

class DataPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    tv_ = vault::test::TestVault::Make(tmp_);
    ASSERT_NE(tv_.vault, nullptr);
    image_ = tmp_.Path("disk.qcow2");
  }
  vault::Vault& v() { return *tv_.vault; }

  // Backs up image_ as disk "osdisk". With `previous`, exports `bitmap` and backs up
  // incrementally from it; `use_bitmap` false simulates a lost checkpoint.
  Result<std::pair<RecoveryPoint, BackupDiskStats>> Backup(const RecoveryPoint* previous,
                                                          const std::string& bitmap,
                                                          bool use_bitmap = true) {
    QemuNbdOptions qo;
    qo.image = image_;
    qo.socket_dir = tmp_.path();
    if (previous && use_bitmap) qo.bitmap = bitmap;
    ASSIGN_OR_RETURN(auto exp, QemuNbdExport::Start(qo));
    NbdSource::Options so;
    so.address = exp->uri();
    so.connections = 3;
    if (previous && use_bitmap) so.meta_contexts.push_back(DirtyBitmapContext(bitmap));
    ASSIGN_OR_RETURN(auto src, NbdSource::Connect(so));
    ASSIGN_OR_RETURN(auto session, v().BeginBackup());
    BackupDiskOptions bo;
    bo.disk_name = "osdisk";
    bo.threads = 3;
    if (previous) {
      bo.previous = previous->FindDisk("osdisk");
      bo.changed_context = DirtyBitmapContext(bitmap);
    }
    ASSIGN_OR_RETURN(BackupDiskResult r, BackupDisk(*session, *src, bo));
    vault::PointSpec spec;
    spec.parent_point_id = previous ? previous->point_id : "";
    spec.disks.push_back(r.index);
    ASSIGN_OR_RETURN(RecoveryPoint p, session->Commit(spec));
    return std::make_pair(p, r.stats);
  }

  std::string Restore(const RecoveryPoint& p, DiskFormat fmt) {
    std::string dest = tmp_.Path("restored." + std::string(fmt == DiskFormat::kRaw ? "raw" : "qcow2"));
    RemoveFile(dest);
    RestoreOptions ro;
    ro.format = fmt;
    ro.threads = 2;
    auto st = RestoreDisk(v(), p, "osdisk", dest, ro);
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    if (!st.ok()) return "";
    std::string sha = DiskSha256(dest, fmt == DiskFormat::kRaw ? "raw" : "qcow2", tmp_.path());
    RemoveFile(dest);
    return sha;
  }

  std::string ImageSha() { return DiskSha256(image_, "qcow2", tmp_.path()); }

  // Random writes of assorted sizes at 4 KiB-aligned offsets, a zeroing and a discard.
  void RandomWrites(uint64_t seed, uint64_t disk_size) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 6; ++i) {
      uint64_t len = 4096 * (1 + rng() % 700);  // 4 KiB .. 2.7 MiB
      uint64_t off = 4096 * (rng() % ((disk_size - len) / 4096));
      WriteRandom(image_, tmp_.path(), off, len, seed * 100 + i, i % 2 == 0);
    }
    uint64_t zoff = 4096 * (rng() % ((disk_size - kMiB) / 4096));
    uint64_t doff = 4096 * (rng() % ((disk_size - kMiB) / 4096));
    QemuIo(image_, {"write -q -z " + std::to_string(zoff) + " 256k",
                          "discard -q " + std::to_string(doff) + " 128k"});
  }

  void InitialContent(uint64_t size) {
    CreateQcow2(image_, size);
    WriteRandom(image_, tmp_.path(), 0, 6 * kMiB, 1, true);
    WriteRandom(image_, tmp_.path(), 20 * kMiB + 12288, 9 * kMiB, 2);
    WriteRandom(image_, tmp_.path(), size - 3 * kMiB, 3 * kMiB, 3);
    QemuIo(image_, {"write -q -P 0 40M 4M", "write -q -z 50M 4M"});
  }

  TempDir tmp_{"backup"};
  vault::test::TestVault tv_;
  std::string image_;
};

}  // namespace stratus::recovery::datapath::test
