// RestoreDisk: sparse, bit-exact, and refusing damaged data.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "data_path_fixture.h"

namespace stratus::recovery::datapath::test {
namespace {

class RestoreDiskTest : public DataPathTest {};

TEST_F(RestoreDiskTest, HolesAndZeroesAreNotStoredAndRestoreSparse) {
  const uint64_t size = 256 * kMiB;
  CreateQcow2(image_, size);
  WriteRandom(image_, tmp_.path(), 100 * kMiB, 3 * kMiB, 5);
  QemuIo(image_, {"write -q -P 0 200M 16M", "write -q -z 220M 32M"});
  auto full = Backup(nullptr, "");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  const BackupDiskStats& s = full->second;
  const DiskIndex& d = full->first.disks[0];
  EXPECT_EQ(d.allocated_slots(), 3u);
  EXPECT_EQ(s.chunks_new, 3u);
  EXPECT_EQ(vault::test::CountChunks(v()), 3u);
  // Unallocated space and write-zeroes regions are not even read; written zeros are read once.
  EXPECT_EQ(s.bytes_read, 3 * kMiB + 16 * kMiB);
  EXPECT_EQ(s.hole_slots, 253u);

  std::string dest = tmp_.Path("sparse.raw");
  RestoreOptions ro;
  ro.format = DiskFormat::kRaw;
  auto st = RestoreDisk(v(), full->first, "osdisk", dest, ro);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->bytes_restored, 3 * kMiB);
  EXPECT_LE(AllocatedBytes(dest), 4 * kMiB);
  EXPECT_EQ(FileSha256(dest), ImageSha());
}

TEST_F(RestoreDiskTest, CorruptOrMissingChunkStopsRestoreWithPointDiskAndOffset) {
  InitialContent(64 * kMiB);
  auto full = Backup(nullptr, "");
  ASSERT_TRUE(full.ok());
  const RecoveryPoint& p = full->first;
  const DiskIndex& d = p.disks[0];
  // Slot 21 holds random data (written at 20 MiB + 12 KiB).
  ASSERT_FALSE(d.chunks[21].is_hole());
  vault::test::FlipByte(tv_.ChunkPath(d.chunks[21]), 5000);
  auto rep = v().Verify(p.point_id);
  ASSERT_TRUE(rep.ok());
  ASSERT_EQ(rep->problems.size(), 1u) << rep->Summary();
  EXPECT_EQ(rep->problems[0].point_id, p.point_id);
  EXPECT_EQ(rep->problems[0].disk, "osdisk");
  EXPECT_EQ(rep->problems[0].offset, 21 * kMiB);

  for (DiskFormat fmt : {DiskFormat::kRaw, DiskFormat::kQcow2}) {
    std::string dest = tmp_.Path("refused.img");
    RestoreOptions ro;
    ro.format = fmt;
    auto st = RestoreDisk(v(), p, "osdisk", dest, ro);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.status().arm_code(), "ChunkCorrupt");
    const std::string& m = st.status().message();
    EXPECT_NE(m.find(p.point_id), std::string::npos) << m;
    EXPECT_NE(m.find("'osdisk'"), std::string::npos) << m;
    EXPECT_NE(m.find("offset " + std::to_string(21 * kMiB)), std::string::npos) << m;
    EXPECT_NE(m.find("restore refused"), std::string::npos) << m;
    EXPECT_FALSE(PathExists(dest));
  }
  // Missing chunk.
  ASSERT_EQ(::unlink(tv_.ChunkPath(d.chunks[21]).c_str()), 0);
  RestoreOptions ro;
  ro.format = DiskFormat::kRaw;
  auto st = RestoreDisk(v(), p, "osdisk", tmp_.Path("refused.raw"), ro);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().arm_code(), "ChunkMissing");
  // No partial file is left behind.
  for (const auto& e : std::filesystem::directory_iterator(tmp_.path()))
    EXPECT_EQ(e.path().filename().string().find("restoring"), std::string::npos) << e.path();
}

TEST_F(RestoreDiskTest, RestoreRefusesAnExistingDestinationAndUnknownDisks) {
  InitialContent(64 * kMiB);
  auto full = Backup(nullptr, "");
  ASSERT_TRUE(full.ok());
  std::string dest = tmp_.Path("exists.raw");
  ASSERT_TRUE(WriteFileAtomic(dest, "keep me").ok());
  RestoreOptions ro;
  ro.format = DiskFormat::kRaw;
  EXPECT_EQ(RestoreDisk(v(), full->first, "osdisk", dest, ro).status().code(),
            StatusCode::kConflict);
  EXPECT_EQ(*ReadFile(dest), "keep me");
  EXPECT_EQ(RestoreDisk(v(), full->first, "data7", tmp_.Path("x.raw"), ro).status().arm_code(),
            "DiskNotFound");
  EXPECT_FALSE(ParseDiskFormat("vmdk").ok());
}


}  // namespace
}  // namespace stratus::recovery::datapath::test
