#include "recovery/vault/disk_index.h"

#include <gtest/gtest.h>

namespace stratus::recovery::vault {
namespace {

ChunkId IdOf(uint8_t b) {
  ChunkId id;
  id.bytes.fill(b);
  return id;
}

DiskIndex MakeIndex(uint64_t size, uint32_t chunk, const std::string& pattern) {
  DiskIndex d;
  d.name = "osdisk";
  d.size = size;
  d.chunk_size = chunk;
  for (size_t i = 0; i < d.slot_count(); ++i)
    d.chunks.push_back(pattern[i % pattern.size()] == 'H' ? ChunkId::Hole()
                                                          : IdOf(static_cast<uint8_t>(i + 1)));
  return d;
}

TEST(DiskIndexTest, SlotsCoverTheDiskAndTheLastOneMayBeShort) {
  DiskIndex d = MakeIndex((3u << 20) + 4096, 1u << 20, "D");
  EXPECT_EQ(d.slot_count(), 4u);
  EXPECT_EQ(d.SlotLength(0), 1u << 20);
  EXPECT_EQ(d.SlotLength(3), 4096u);
  EXPECT_EQ(d.SlotOffset(3), 3u << 20);
  EXPECT_TRUE(d.Validate().ok());
}

TEST(DiskIndexTest, EncodeDecodeRoundTripsMixedRuns) {
  DiskIndex d = MakeIndex(100u << 20, 1u << 20, "DDHHHHDHDDDHHH");
  std::string enc = EncodeIndex(d);
  DiskIndex back;
  back.name = d.name;
  back.size = d.size;
  back.chunk_size = d.chunk_size;
  ASSERT_TRUE(DecodeIndex(enc, &back).ok());
  EXPECT_EQ(back.chunks, d.chunks);
}

TEST(DiskIndexTest, HoleRunsCostAFewBytes) {
  DiskIndex d = MakeIndex(64ull << 30, 1u << 20, "H");  // 64 GiB, empty
  EXPECT_LT(EncodeIndex(d).size(), 16u);
  DiskIndex full = MakeIndex(1ull << 30, 1u << 20, "D");
  EXPECT_LT(EncodeIndex(full).size(), 1024u * 32 + 16);
}

TEST(DiskIndexTest, MalformedEncodingsAreRejected) {
  DiskIndex d = MakeIndex(8u << 20, 1u << 20, "DH");
  std::string enc = EncodeIndex(d);
  DiskIndex back = d;
  back.chunks.clear();
  EXPECT_FALSE(DecodeIndex(enc.substr(0, enc.size() - 1), &back).ok());  // truncated
  EXPECT_FALSE(DecodeIndex(enc + "x", &back).ok());                      // trailing
  std::string bad_version = enc;
  bad_version[0] = 9;
  EXPECT_FALSE(DecodeIndex(bad_version, &back).ok());
  back.size = 16u << 20;  // slot count mismatch
  EXPECT_FALSE(DecodeIndex(enc, &back).ok());
}

TEST(DiskIndexTest, ChunkSizeMustBeAPowerOfTwoInRange) {
  EXPECT_TRUE(ValidateChunkSize(1u << 20).ok());
  EXPECT_TRUE(ValidateChunkSize(64u << 10).ok());
  EXPECT_FALSE(ValidateChunkSize(3u << 20).ok());
  EXPECT_FALSE(ValidateChunkSize(32u << 10).ok());
  EXPECT_FALSE(ValidateChunkSize(32u << 20).ok());
}

TEST(DiskIndexTest, ChunkIdHexRoundTrips) {
  ChunkId id = IdOf(0xab);
  auto back = ChunkId::FromHex(id.Hex());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, id);
  EXPECT_FALSE(ChunkId::FromHex("xyz").ok());
  EXPECT_TRUE(ChunkId::Hole().is_hole());
  EXPECT_FALSE(id.is_hole());
}

}  // namespace
}  // namespace stratus::recovery::vault
