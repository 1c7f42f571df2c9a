#include "recovery/datapath/nbd_source.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "image_test_util.h"
#include "recovery/datapath/qemu_nbd_export.h"

namespace stratus::recovery::datapath {
namespace {

using test::kMiB;

class NbdSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    image_ = tmp_.Path("disk.qcow2");
    test::CreateQcow2(image_, 64 * kMiB);
    test::QemuIo(image_, {"write -q -P 0x41 1M 2M", "write -q -P 0x42 10M 64k", "write -q -z 20M 1M"});
  }
  std::unique_ptr<QemuNbdExport> Export(const std::string& bitmap = "") {
    QemuNbdOptions o;
    o.image = image_;
    o.bitmap = bitmap;
    o.socket_dir = tmp_.path();
    auto e = QemuNbdExport::Start(o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(e).value() : nullptr;
  }
  test::TempDir tmp_{"nbd"};
  std::string image_;
};

TEST_F(NbdSourceTest, ReadsDataAndReportsAllocation) {
  auto exp = Export();
  ASSERT_NE(exp, nullptr);
  NbdSource::Options o;
  o.address = exp->uri();
  o.connections = 3;
  auto src = NbdSource::Connect(o);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  EXPECT_EQ((*src)->size(), 64 * kMiB);
  EXPECT_TRUE((*src)->read_only());
  EXPECT_TRUE((*src)->HasMetaContext(kBaseAllocation));

  auto ext = (*src)->Extents(kBaseAllocation);
  ASSERT_TRUE(ext.ok()) << ext.status().ToString();
  uint64_t data = 0, covered = 0;
  for (const auto& e : *ext) {
    EXPECT_EQ(e.offset, covered);
    covered += e.length;
    if (!(e.flags & kStateZero)) data += e.length;
  }
  EXPECT_EQ(covered, 64 * kMiB);
  EXPECT_EQ(data, 2 * kMiB + 64 * 1024);  // the zero-written MiB reads as zeroes

  // Parallel reads on separate connections.
  std::vector<std::thread> pool;
  for (int c = 0; c < 3; ++c) {
    pool.emplace_back([&, c] {
      std::string buf(kMiB, '\0');
      ASSERT_TRUE((*src)->Read(c, kMiB + c * 4096, buf.data(), buf.size()).ok());
      EXPECT_EQ(buf, std::string(kMiB, 'A'));
    });
  }
  for (auto& t : pool) t.join();
  std::string tail(8192, 'x');
  ASSERT_TRUE((*src)->Read(0, 10 * kMiB + 60 * 1024, tail.data(), tail.size()).ok());
  EXPECT_EQ(tail, std::string(4096, 'B') + std::string(4096, '\0'));
}

TEST_F(NbdSourceTest, DirtyBitmapShowsWhatChangedSinceItWasAdded) {
  ASSERT_TRUE(test::AddBitmap(image_, "b1").ok());
  EXPECT_EQ(test::AddBitmap(image_, "b1").code(), StatusCode::kConflict);
  test::QemuIo(image_, {"write -q -P 0x43 30M 128k", "write -q -P 0x44 1M 4k"});
  auto bitmaps = test::ListBitmaps(image_);
  ASSERT_TRUE(bitmaps.ok());
  ASSERT_EQ(bitmaps->size(), 1u);
  EXPECT_EQ((*bitmaps)[0].name, "b1");
  EXPECT_TRUE((*bitmaps)[0].enabled);
  EXPECT_FALSE((*bitmaps)[0].in_use);

  auto exp = Export("b1");
  ASSERT_NE(exp, nullptr);
  NbdSource::Options o;
  o.address = exp->uri();
  o.meta_contexts = {kBaseAllocation, DirtyBitmapContext("b1")};
  auto src = NbdSource::Connect(o);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  ASSERT_TRUE((*src)->HasMetaContext(DirtyBitmapContext("b1")));
  auto ext = (*src)->Extents(DirtyBitmapContext("b1"));
  ASSERT_TRUE(ext.ok()) << ext.status().ToString();
  std::vector<std::pair<uint64_t, uint64_t>> dirty;
  for (const auto& e : *ext)
    if (e.flags & kStateDirty) dirty.emplace_back(e.offset, e.length);
  // Bitmap granularity is 64 KiB: the 4 KiB write dirties one granule.
  ASSERT_EQ(dirty.size(), 2u);
  EXPECT_EQ(dirty[0], std::make_pair(1 * kMiB, uint64_t{64 * 1024}));
  EXPECT_EQ(dirty[1], std::make_pair(30 * kMiB, uint64_t{128 * 1024}));
  EXPECT_FALSE((*src)->Extents("qemu:dirty-bitmap:nope").ok());
}

TEST_F(NbdSourceTest, ErrorsNameTheInput) {
  QemuNbdOptions o;
  o.image = tmp_.Path("missing.qcow2");
  EXPECT_EQ(QemuNbdExport::Start(o).status().code(), StatusCode::kNotFound);
  o.image = image_;
  o.bitmap = "no-such-bitmap";
  o.socket_dir = tmp_.path();
  auto bad = QemuNbdExport::Start(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().arm_code(), "QemuNbdFailed");
  EXPECT_NE(bad.status().message().find("no-such-bitmap"), std::string::npos)
      << bad.status().message();

  NbdSource::Options so;
  so.address = tmp_.Path("no.sock");
  auto conn = NbdSource::Connect(so);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().arm_code(), "NbdConnectFailed");
  EXPECT_NE(conn.status().message().find("no.sock"), std::string::npos);
}

TEST_F(NbdSourceTest, StopEndsQemuNbd) {
  auto exp = Export();
  ASSERT_NE(exp, nullptr);
  pid_t pid = exp->pid();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(exp->Stop().ok());
  EXPECT_NE(::kill(pid, 0), 0);
  EXPECT_FALSE(PathExists(exp->socket_path()));
}

TEST_F(NbdSourceTest, WritableExportAcceptsWritesAndFlush) {
  QemuNbdOptions o;
  o.image = image_;
  o.read_only = false;
  o.socket_dir = tmp_.path();
  auto exp = QemuNbdExport::Start(o);
  ASSERT_TRUE(exp.ok()) << exp.status().ToString();
  NbdSource::Options so;
  so.address = (*exp)->uri();
  so.connections = 2;
  so.need_writable = true;
  auto src = NbdSource::Connect(so);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  std::string data(kMiB, 'Z');
  ASSERT_TRUE((*src)->Write(1, 40 * kMiB, data.data(), data.size()).ok());
  ASSERT_TRUE((*src)->Zero(0, 1 * kMiB, kMiB).ok());
  ASSERT_TRUE((*src)->Flush().ok());
  std::string back(kMiB, '\0');
  ASSERT_TRUE((*src)->Read(0, 40 * kMiB, back.data(), back.size()).ok());
  EXPECT_EQ(back, data);
  ASSERT_TRUE((*src)->Read(1, 1 * kMiB, back.data(), back.size()).ok());
  EXPECT_EQ(back, std::string(kMiB, '\0'));
}

TEST(MergeExtentsTest, SortsJoinsOverlappingAndTouchingAndDropsEmpty) {
  auto m = MergeExtents({{100, 50, 1}, {0, 10, 2}, {10, 5, 3}, {120, 100, 4}, {400, 0, 5}});
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].offset, 0u);
  EXPECT_EQ(m[0].length, 15u);
  EXPECT_EQ(m[0].flags, 2u);
  EXPECT_EQ(m[1].offset, 100u);
  EXPECT_EQ(m[1].length, 120u);
  EXPECT_TRUE(MergeExtents({}).empty());
}

}  // namespace
}  // namespace stratus::recovery::datapath
