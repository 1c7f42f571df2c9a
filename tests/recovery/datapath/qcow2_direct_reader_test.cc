#include "recovery/datapath/qcow2_direct_reader.h"

#include <gtest/gtest.h>

#include <random>

#include "image_test_util.h"
#include "recovery/datapath/image_source.h"
#include "recovery/datapath/qemu_nbd_export.h"

namespace stratus::recovery::datapath {
namespace {

using test::kMiB;

// Reads the whole disk through qemu-nbd only (the reference).
std::string ReadAllOverNbd(const std::string& image, const std::string& dir) {
  ImageSourceOptions o;
  o.image = image;
  o.socket_dir = dir;
  o.connections = 1;
  o.direct_reads = false;
  auto s = OpenImageSource(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return "";
  std::string out(s->source->size(), '\0');
  EXPECT_TRUE(s->source->Read(0, 0, out.data(), out.size()).ok());
  EXPECT_FALSE(s->source->has_direct_reader());
  EXPECT_TRUE(s->Close().ok());
  return out;
}

// A three-layer chain: raw base, qcow2 middle with a compressed cluster, qcow2 top with
// zeroed, discarded, partly overwritten and fresh clusters.
class Qcow2DirectReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    base_ = tmp_.Path("base.raw");
    mid_ = tmp_.Path("mid.qcow2");
    top_ = tmp_.Path("top.qcow2");
    test::Run({"qemu-img", "create", "-q", "-f", "raw", base_, std::to_string(32 * kMiB)});
    test::Run({"qemu-io", "-f", "raw", "-c", "write -q -P 0x11 0 6M", "-c",
               "write -q -P 0x12 20M 1M", base_});
    // Relative backing names, as a managed disk made from an image may have.
    test::Run({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", mid_});
    test::QemuIo(mid_, {"write -q -c -P 0x21 4M 1M", "write -q -P 0x22 7M 300k"});
    test::Run({"qemu-img", "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top_});
    test::QemuIo(top_, {"write -q -P 0x31 512k 1M", "write -q -z 2M 1M", "write -q -P 0x33 30M 2M",
                        "discard -q 20M 64k"});
    test::WriteRandom(top_, tmp_.path(), 9 * kMiB + 4096, 3 * kMiB, 7);
  }
  test::TempDir tmp_{"direct"};
  std::string base_, mid_, top_;
};

TEST_F(Qcow2DirectReaderTest, ReadsEveryLayerLikeQemuAndDeclinesCompressedClusters) {
  std::string want = ReadAllOverNbd(top_, tmp_.path());
  ASSERT_EQ(want.size(), 32 * kMiB);
  auto r = Qcow2DirectReader::Open(top_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto& reader = **r;
  ASSERT_EQ(reader.files().size(), 3u);
  EXPECT_EQ(reader.files()[2], base_);

  // Whole-MiB slots, as a backup reads them: each is either read directly and equal to what
  // qemu reads, or declined (only the one holding the compressed cluster).
  int declined = 0;
  std::string buf(kMiB, 'x');
  for (uint64_t off = 0; off < 32 * kMiB; off += kMiB) {
    auto done = reader.Read(off, buf.data(), kMiB);
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    if (!*done) {
      ++declined;
      EXPECT_EQ(off, 4 * kMiB);
      continue;
    }
    ASSERT_EQ(buf, want.substr(off, kMiB)) << "slot at " << off;
  }
  EXPECT_EQ(declined, 1);

  // Odd ranges that straddle extents.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) {
    uint64_t len = 1 + rng() % (3 * kMiB);
    uint64_t off = rng() % (32 * kMiB - len);
    std::string b(len, 'y');
    auto done = reader.Read(off, b.data(), len);
    ASSERT_TRUE(done.ok());
    if (*done) ASSERT_EQ(b, want.substr(off, len)) << off << "+" << len;
    else EXPECT_TRUE(off < 5 * kMiB && off + len > 4 * kMiB) << off << "+" << len;
  }
  // Out of range: declined, not an error.
  auto past = reader.Read(32 * kMiB - 10, buf.data(), 20);
  ASSERT_TRUE(past.ok());
  EXPECT_FALSE(*past);
}

TEST_F(Qcow2DirectReaderTest, ImageSourceServesDirectAndFallsBackOverNbd) {
  std::string want = ReadAllOverNbd(top_, tmp_.path());
  ImageSourceOptions o;
  o.image = top_;
  o.socket_dir = tmp_.path();
  o.connections = 2;
  auto s = OpenImageSource(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->source->has_direct_reader()) << s->direct_unavailable;
  std::string all(want.size(), '\0');
  for (uint64_t off = 0; off < all.size(); off += kMiB)
    ASSERT_TRUE(s->source->Read(static_cast<int>(off / kMiB % 2), off, &all[off], kMiB).ok());
  EXPECT_TRUE(all == want);
  EXPECT_TRUE(s->Close().ok());
}

TEST_F(Qcow2DirectReaderTest, MapParsingRejectsGapsAndGarbage) {
  EXPECT_FALSE(ParseImageMap("{}").ok());
  EXPECT_FALSE(ParseImageMap("[{\"start\": 0}]").ok());
  auto gap = ParseImageMap(
      "[{\"start\":0,\"length\":4096,\"depth\":0,\"present\":true,\"zero\":false,\"data\":true,"
      "\"offset\":0},{\"start\":8192,\"length\":4096,\"depth\":0,\"present\":true,\"zero\":true,"
      "\"data\":false}]");
  EXPECT_FALSE(gap.ok());
  auto ok = ParseImageMap(
      "[{\"start\":0,\"length\":4096,\"depth\":1,\"present\":true,\"zero\":false,\"data\":true},"
      "{\"start\":4096,\"length\":4096,\"depth\":1,\"present\":false,\"zero\":true,\"data\":false}]");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE((*ok)[0].data);
  EXPECT_EQ((*ok)[0].host_offset, -1);  // compressed: no offset
  EXPECT_FALSE((*ok)[1].data);
  // A map pointing at a layer the chain does not have is refused.
  EXPECT_FALSE(Qcow2DirectReader::FromMap(*ok, {}, 8192).ok() &&
               (*ok)[0].host_offset >= 0);
  std::vector<Qcow2DirectReader::MapExtent> bad = {{0, 4096, 3, true, 0}};
  EXPECT_FALSE(Qcow2DirectReader::FromMap(bad, {base_}, 4096).ok());
  EXPECT_FALSE(Qcow2DirectReader::FromMap(bad, {base_}, 8192).ok());
}

TEST_F(Qcow2DirectReaderTest, RefusesImagesItCannotMap) {
  // A qcow2 whose data lives in an external data file: host offsets point into that file.
  std::string ext = tmp_.Path("ext.qcow2");
  test::Run({"qemu-img", "create", "-q", "-f", "qcow2", "-o",
             "data_file=" + tmp_.Path("ext.data"), ext, "16M"});
  auto r = Qcow2DirectReader::Open(ext);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("external data file"), std::string::npos)
      << r.status().ToString();
  EXPECT_FALSE(Qcow2DirectReader::Open(top_, "vmdk").ok());
  EXPECT_FALSE(Qcow2DirectReader::Open(tmp_.Path("nope.qcow2")).ok());
}

}  // namespace
}  // namespace stratus::recovery::datapath
