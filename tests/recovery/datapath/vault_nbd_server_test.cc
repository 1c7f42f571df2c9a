#include "recovery/datapath/vault_nbd_server.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <thread>

#include "core/fs.h"
#include "core/subprocess.h"
#include "image_test_util.h"
#include "recovery/datapath/nbd_source.h"

namespace stratus::recovery::datapath {
namespace {

using vault::test::RandomData;
using vault::test::TempDir;
using vault::test::TestVault;

constexpr uint32_t kChunk = 64u << 10;
// Five and a bit chunks' worth of slots per MiB; the last slot is short (12 KiB).
constexpr uint64_t kSize = 80 * uint64_t{kChunk} + 12288;

class VaultNbdServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    vault::VaultCreateOptions vo;
    vo.chunk_size = kChunk;
    tv_ = TestVault::Make(tmp_, vo);
    ASSERT_NE(tv_.vault, nullptr);
    // Data slots, holes, an all-zero data slot (stored as a hole), a short last slot.
    data_ = RandomData(kSize, 7, /*compressible=*/false);
    for (uint64_t s = 10; s < 20; ++s) std::memset(&data_[s * kChunk], 0, kChunk);
    std::memset(&data_[40 * kChunk], 0, kChunk);
    for (uint64_t s = 50; s < 60; ++s)  // compressible slots
      std::memcpy(&data_[s * kChunk], RandomData(kChunk, s, true).data(), kChunk);
    auto session = tv_.vault->BeginBackup();
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    vault::DiskIndex d;
    d.name = "data0";
    d.size = kSize;
    d.chunk_size = kChunk;
    for (uint64_t s = 0; s < d.slot_count(); ++s) {
      auto r = (*session)->Store(vault::test::Bytes(data_) + s * kChunk, d.SlotLength(s));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      d.chunks.push_back(r->id);
    }
    vault::PointSpec spec;
    spec.disks.push_back(d);
    auto p = (*session)->Commit(spec);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    point_ = *p;
    expected_path_ = tmp_.Path("expected.raw");
    std::ofstream(expected_path_, std::ios::binary).write(data_.data(), data_.size());
  }

  std::unique_ptr<VaultNbdServer> Serve(VaultNbdServerOptions o = {}) {
    o.socket_path = tmp_.Path("nbd.sock");
    auto s = VaultNbdServer::Start(*tv_.vault, point_, "data0", std::move(o));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  std::unique_ptr<NbdSource> Connect(const VaultNbdServer& s, int connections = 1) {
    NbdSource::Options o;
    o.address = s.uri();
    o.connections = connections;
    o.meta_contexts = {};
    auto src = NbdSource::Connect(o);
    EXPECT_TRUE(src.ok()) << src.status().ToString();
    return src.ok() ? std::move(src).value() : nullptr;
  }

  TempDir tmp_{"vnbd"};
  TestVault tv_;
  std::string data_;
  vault::RecoveryPoint point_;
  std::string expected_path_;
};

TEST_F(VaultNbdServerTest, LibnbdReadsAreBitExactIncludingUnalignedAndSpanningReads) {
  auto s = Serve();
  ASSERT_NE(s, nullptr);
  auto src = Connect(*s);
  ASSERT_NE(src, nullptr);
  EXPECT_EQ(src->size(), kSize);
  EXPECT_TRUE(src->read_only());

  std::string all(kSize, '\1');
  for (uint64_t off = 0; off < kSize; off += 1 << 20) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(1 << 20, kSize - off));
    ASSERT_TRUE(src->Read(0, off, &all[off], n).ok());
  }
  EXPECT_TRUE(all == data_);

  std::mt19937_64 rng(42);
  for (int i = 0; i < 200; ++i) {
    uint64_t len = 1 + rng() % (3 * kChunk);
    uint64_t off = rng() % (kSize - len);
    std::string got(len, '\1');
    ASSERT_TRUE(src->Read(0, off, got.data(), len).ok()) << off << "+" << len;
    ASSERT_EQ(0, std::memcmp(got.data(), data_.data() + off, len)) << off << "+" << len;
  }
  // The short last slot, to the last byte.
  std::string tail(5000, '\1');
  ASSERT_TRUE(src->Read(0, kSize - 5000, tail.data(), 5000).ok());
  EXPECT_EQ(0, std::memcmp(tail.data(), data_.data() + kSize - 5000, 5000));
  // Beyond the end: an error, not a crash.
  EXPECT_FALSE(src->Read(0, kSize - 10, tail.data(), 20).ok());
  EXPECT_GT(s->stats().cache_hits, 0u);
  EXPECT_EQ(s->stats().read_errors, 0u);
}

TEST_F(VaultNbdServerTest, QemuImgConvertAndQemuIoReadTheSameBytes) {
  auto s = Serve();
  ASSERT_NE(s, nullptr);
  std::string out = tmp_.Path("out.raw");
  auto r = RunProcess({"qemu-img", "convert", "-f", "raw", "-O", "raw", s->uri(), out});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(test::FileSha256(out), test::FileSha256(expected_path_));
  // qemu-io: a pattern-checked read inside the zero slots, and an unaligned read.
  auto io = RunProcess({"qemu-io", "-r", "-f", "raw", s->uri(), "-c",
                        "read -P 0 " + std::to_string(10 * kChunk + 512) + " 65536", "-c",
                        "read 12345 200000"});
  ASSERT_TRUE(io.ok()) << io.status().ToString();
  EXPECT_EQ(io->exit_code, 0) << io->out << io->err;
  EXPECT_EQ(io->out.find("fail"), std::string::npos) << io->out;
  // A JSON backing spec as instant restore writes it: qemu-img info opens it.
  std::string overlay = tmp_.Path("overlay.qcow2");
  std::string backing = "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"nbd\",\"server\":{\"type\":"
                        "\"unix\",\"path\":\"" + s->socket_path() + "\"}}}";
  auto mk = RunProcess({"qemu-img", "create", "-f", "qcow2", "-b", backing, "-F", "raw", overlay});
  ASSERT_TRUE(mk.ok());
  ASSERT_EQ(mk->exit_code, 0) << mk->err;
  EXPECT_EQ(test::DiskSha256(overlay, "qcow2", tmp_.path()), test::FileSha256(expected_path_));
}

TEST_F(VaultNbdServerTest, CorruptChunkFailsOnlyItsReadsWithEio) {
  // Corrupt the chunk of slot 3 on disk.
  const auto& id = point_.disks[0].chunks[3];
  std::string path = tv_.ChunkPath(id);
  auto bytes = ReadFile(path);
  ASSERT_TRUE(bytes.ok());
  (*bytes)[bytes->size() / 2] ^= 0x5a;
  ASSERT_TRUE(WriteFileAtomic(path, *bytes).ok());

  std::vector<NbdReadError> seen;
  std::mutex mu;
  VaultNbdServerOptions o;
  o.on_error = [&](const NbdReadError& e) {
    std::lock_guard<std::mutex> g(mu);
    seen.push_back(e);
  };
  auto s = Serve(o);
  ASSERT_NE(s, nullptr);
  auto src = Connect(*s);
  ASSERT_NE(src, nullptr);
  std::string buf(kChunk, '\0');
  EXPECT_FALSE(src->Read(0, 3 * kChunk + 100, buf.data(), 1000).ok());
  EXPECT_FALSE(src->Read(0, 2 * kChunk + 100, buf.data(), kChunk).ok());  // spans into slot 3
  // The connection stays usable for good chunks.
  ASSERT_TRUE(src->Read(0, 4 * kChunk, buf.data(), kChunk).ok());
  EXPECT_EQ(0, std::memcmp(buf.data(), data_.data() + 4 * kChunk, kChunk));
  auto e = s->first_error();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->offset, 3 * uint64_t{kChunk});
  EXPECT_EQ(e->chunk_id, id.Hex());
  EXPECT_NE(e->message.find("data0"), std::string::npos) << e->message;
  EXPECT_NE(e->message.find(point_.point_id), std::string::npos) << e->message;
  EXPECT_EQ(s->stats().read_errors, 2u);
  {
    std::lock_guard<std::mutex> g(mu);
    EXPECT_EQ(seen.size(), 2u);
  }
  // qemu-img sees a read error too.
  auto r = RunProcess({"qemu-img", "convert", "-f", "raw", "-O", "raw", s->uri(), tmp_.Path("x.raw")});
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->exit_code, 0);
}

TEST_F(VaultNbdServerTest, ManyParallelReadsOnManyConnections) {
  VaultNbdServerOptions o;
  o.cache_chunks = 4;  // force decodes and evictions under contention
  auto s = Serve(o);
  ASSERT_NE(s, nullptr);
  constexpr int kThreads = 8;
  auto src = Connect(*s, kThreads);
  ASSERT_NE(src, nullptr);
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::string got;
      for (int i = 0; i < 150; ++i) {
        uint64_t len = 1 + rng() % (2 * kChunk);
        uint64_t off = rng() % (kSize - len);
        got.assign(len, '\1');
        if (!src->Read(t, off, got.data(), len).ok() ||
            std::memcmp(got.data(), data_.data() + off, len) != 0)
          ++bad;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(s->stats().connections, static_cast<uint64_t>(kThreads));
  src.reset();
  s->Stop();
  EXPECT_FALSE(PathExists(tmp_.Path("nbd.sock")));
}

TEST_F(VaultNbdServerTest, ServedChunksSurviveGcAfterThePointIsDeleted) {
  auto s = Serve();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(tv_.vault->DeletePoint(point_.point_id).ok());
  auto gc = tv_.vault->Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_EQ(gc->chunks_deleted, 0u);
  auto src = Connect(*s);
  ASSERT_NE(src, nullptr);
  std::string all(kSize, '\1');
  ASSERT_TRUE(src->Read(0, 0, all.data(), 1 << 20).ok());
  ASSERT_TRUE(src->Read(0, 1 << 20, all.data() + (1 << 20), kSize - (1 << 20)).ok());
  EXPECT_TRUE(all == data_);
  src.reset();
  s->Stop();
  gc = tv_.vault->Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_GT(gc->chunks_deleted, 0u);
}

TEST_F(VaultNbdServerTest, UnknownDiskAndLongSocketPathAreRefused) {
  VaultNbdServerOptions o;
  o.socket_path = tmp_.Path("x.sock");
  auto s = VaultNbdServer::Start(*tv_.vault, point_, "osdisk", o);
  EXPECT_EQ(s.status().arm_code(), "DiskNotFound");
  o.socket_path = "/tmp/" + std::string(200, 'a');
  s = VaultNbdServer::Start(*tv_.vault, point_, "data0", o);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace stratus::recovery::datapath
