#include "recovery/vault/chunk_codec.h"

#include <gtest/gtest.h>

#include "vault_test_util.h"

namespace stratus::recovery::vault {
namespace {

VaultKeys Keys(uint8_t seed) {
  SecretKey master;
  for (size_t i = 0; i < master.size(); ++i) master.data()[i] = static_cast<uint8_t>(seed + i);
  auto k = DeriveVaultKeys(master, "vault-" + std::to_string(seed));
  EXPECT_TRUE(k.ok());
  return *k;
}

TEST(ChunkCodecTest, RoundTripsCompressibleAndIncompressibleData) {
  VaultKeys keys = Keys(1);
  for (bool compressible : {true, false}) {
    std::string data = test::RandomData(1 << 20, 7, compressible);
    ChunkId id = ComputeChunkId(keys, test::Bytes(data), data.size());
    ByteBuffer enc, dec;
    ASSERT_TRUE(EncodeChunk(keys, id, test::Bytes(data), data.size(), 1, &enc).ok());
    if (compressible) {
      EXPECT_LT(enc.size(), data.size() / 4);
    } else {
      EXPECT_EQ(enc.size(), data.size() + kChunkHeaderBytes + kGcmTagBytes);  // stored raw
    }
    ASSERT_TRUE(DecodeChunk(keys, id, enc.view(), &dec).ok());
    EXPECT_EQ(dec.view(), data);
  }
}

TEST(ChunkCodecTest, IdsAreKeyedSoTheyDoNotRevealContentAcrossVaults) {
  std::string data = test::RandomData(4096, 1);
  EXPECT_NE(ComputeChunkId(Keys(1), test::Bytes(data), data.size()),
            ComputeChunkId(Keys(2), test::Bytes(data), data.size()));
  EXPECT_EQ(ComputeChunkId(Keys(1), test::Bytes(data), data.size()),
            ComputeChunkId(Keys(1), test::Bytes(data), data.size()));
}

TEST(ChunkCodecTest, EncryptionUsesAFreshNonceEachTime) {
  VaultKeys keys = Keys(1);
  std::string data = test::RandomData(65536, 3, true);
  ChunkId id = ComputeChunkId(keys, test::Bytes(data), data.size());
  ByteBuffer a, b;
  ASSERT_TRUE(EncodeChunk(keys, id, test::Bytes(data), data.size(), 1, &a).ok());
  ASSERT_TRUE(EncodeChunk(keys, id, test::Bytes(data), data.size(), 1, &b).ok());
  EXPECT_NE(a.view(), b.view());
}

TEST(ChunkCodecTest, AnyModifiedByteIsDetected) {
  VaultKeys keys = Keys(1);
  std::string data = test::RandomData(1 << 16, 5, true);
  ChunkId id = ComputeChunkId(keys, test::Bytes(data), data.size());
  ByteBuffer enc, dec;
  ASSERT_TRUE(EncodeChunk(keys, id, test::Bytes(data), data.size(), 1, &enc).ok());
  std::string stored(enc.view());
  for (size_t pos : {size_t{0}, size_t{5}, size_t{9}, size_t{14}, size_t{30}, stored.size() - 1}) {
    std::string bad = stored;
    bad[pos] ^= 0x01;
    for (IdCheck check : {IdCheck::kRehash, IdCheck::kAuthenticate}) {
      Status st = DecodeChunk(keys, id, bad, &dec, check);
      EXPECT_FALSE(st.ok()) << "flip at " << pos;
      EXPECT_EQ(st.arm_code(), "ChunkCorrupt");
    }
  }
  EXPECT_FALSE(DecodeChunk(keys, id, stored.substr(0, 10), &dec).ok());
}

TEST(ChunkCodecTest, AChunkStoredUnderAnotherIdIsRejected) {
  VaultKeys keys = Keys(1);
  std::string a = test::RandomData(4096, 1), b = test::RandomData(4096, 2);
  ChunkId ida = ComputeChunkId(keys, test::Bytes(a), a.size());
  ChunkId idb = ComputeChunkId(keys, test::Bytes(b), b.size());
  ByteBuffer enc, dec;
  ASSERT_TRUE(EncodeChunk(keys, ida, test::Bytes(a), a.size(), 1, &enc).ok());
  Status st = DecodeChunk(keys, idb, enc.view(), &dec, IdCheck::kAuthenticate);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("authentication failed"), std::string::npos) << st.message();
}

TEST(ChunkCodecTest, WrongKeyCannotDecrypt) {
  std::string data = test::RandomData(4096, 1);
  VaultKeys k1 = Keys(1), k2 = Keys(2);
  ChunkId id = ComputeChunkId(k1, test::Bytes(data), data.size());
  ByteBuffer enc, dec;
  ASSERT_TRUE(EncodeChunk(k1, id, test::Bytes(data), data.size(), 1, &enc).ok());
  EXPECT_FALSE(DecodeChunk(k2, id, enc.view(), &dec).ok());
}

TEST(ChunkCodecTest, IsAllZero) {
  std::string z(1 << 20, '\0');
  EXPECT_TRUE(IsAllZero(test::Bytes(z), z.size()));
  z[(1 << 20) - 1] = 1;
  EXPECT_FALSE(IsAllZero(test::Bytes(z), z.size()));
  z[(1 << 20) - 1] = 0;
  z[3] = 1;
  EXPECT_FALSE(IsAllZero(test::Bytes(z), z.size()));
  EXPECT_TRUE(IsAllZero(test::Bytes(z), 3));
}

}  // namespace
}  // namespace stratus::recovery::vault
