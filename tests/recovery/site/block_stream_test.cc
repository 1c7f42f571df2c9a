// BlockStream: batches round-trip (compressible, incompressible and zero frames), and every kind
// of damage is refused with nothing returned.
#include "recovery/site/block_stream.h"

#include <gtest/gtest.h>

#include <random>

namespace stratus::recovery::site {
namespace {

std::string Random(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(g());
  return s;
}

TEST(BlockStreamTest, FramesRoundTripAndCompressWhenItHelps) {
  BlockBatchWriter w;
  std::string text(65536, 'a');
  std::string noise = Random(4096, 1);
  ASSERT_TRUE(w.AddData(0, text).ok());
  ASSERT_TRUE(w.AddData(1 << 20, noise).ok());
  ASSERT_TRUE(w.AddZero(2 << 20, 1 << 20).ok());
  EXPECT_EQ(w.frames(), 3u);
  EXPECT_EQ(w.plain_bytes(), 65536u + 4096u + (1u << 20));
  EXPECT_LT(w.stored_bytes(), 4096u + 1000u) << "the run of 'a' is compressed";
  std::string batch = w.Take();
  EXPECT_EQ(w.frames(), 0u);
  auto frames = DecodeBlockBatch(batch, 8 << 20);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ASSERT_EQ(frames->size(), 3u);
  EXPECT_EQ((*frames)[0].offset, 0u);
  EXPECT_EQ((*frames)[0].data, text);
  EXPECT_EQ((*frames)[1].offset, 1u << 20);
  EXPECT_EQ((*frames)[1].data, noise);
  EXPECT_TRUE((*frames)[2].zero);
  EXPECT_EQ((*frames)[2].length, 1u << 20);
  auto empty = DecodeBlockBatch(BlockBatchWriter().Take(), 1);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(BlockStreamTest, DamageIsRefusedWhole) {
  BlockBatchWriter w;
  ASSERT_TRUE(w.AddData(4096, Random(4096, 2)).ok());
  ASSERT_TRUE(w.AddData(0, std::string(8192, 'b')).ok());
  ASSERT_TRUE(w.AddZero(65536, 4096).ok());
  std::string batch = w.Take();
  ASSERT_TRUE(DecodeBlockBatch(batch, 1 << 20).ok());
  // Every single flipped byte past the magic is caught (bounds, lengths, zstd or SHA-256).
  for (size_t i = 8; i < batch.size(); ++i) {
    std::string bad = batch;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    auto r = DecodeBlockBatch(bad, 1 << 20);
    ASSERT_FALSE(r.ok()) << "flipped byte " << i;
    EXPECT_EQ(r.status().arm_code(), "ReplicationDataCorrupt");
  }
  EXPECT_FALSE(DecodeBlockBatch(batch.substr(0, batch.size() - 1), 1 << 20).ok());
  EXPECT_FALSE(DecodeBlockBatch(batch + "x", 1 << 20).ok());
  EXPECT_FALSE(DecodeBlockBatch("SRB0" + batch.substr(4), 1 << 20).ok());
  EXPECT_FALSE(DecodeBlockBatch(batch, 8191).ok()) << "a frame past the end of the disk";
  EXPECT_FALSE(w.AddData(0, "").ok());
  EXPECT_FALSE(w.AddZero(0, kMaxFrameBytes + 1).ok());
}

}  // namespace
}  // namespace stratus::recovery::site
