#include "recovery/vault/keys.h"

#include <gtest/gtest.h>

#include "core/base64.h"
#include "vault_test_util.h"

namespace stratus::recovery::vault {
namespace {

TEST(KeysTest, PlatformKeyWrapsAndUnwraps) {
  test::TempDir tmp;
  std::string path = tmp.Path("platform.key");
  ASSERT_TRUE(CreatePlatformKeyFile(path).ok());
  EXPECT_EQ(CreatePlatformKeyFile(path).code(), StatusCode::kConflict);
  auto master = RandomKey();
  ASSERT_TRUE(master.ok());
  auto wrapped = WrapMasterKey(*master, "v1", KeySource::PlatformKeyFile(path));
  ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
  auto back = UnwrapMasterKey(*wrapped, "v1", KeySource::PlatformKeyFile(path));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(0, std::memcmp(back->data(), master->data(), kKeyBytes));
  // The wrapped key does not contain the master key in clear.
  EXPECT_EQ(wrapped->dump().find(Base64Encode(std::string_view(
                reinterpret_cast<const char*>(master->data()), kKeyBytes))),
            std::string::npos);
}

TEST(KeysTest, WrongPlatformKeyFileIsAClearError) {
  test::TempDir tmp;
  ASSERT_TRUE(CreatePlatformKeyFile(tmp.Path("a.key")).ok());
  ASSERT_TRUE(CreatePlatformKeyFile(tmp.Path("b.key")).ok());
  auto master = RandomKey();
  auto wrapped = WrapMasterKey(*master, "v1", KeySource::PlatformKeyFile(tmp.Path("a.key")));
  ASSERT_TRUE(wrapped.ok());
  auto back = UnwrapMasterKey(*wrapped, "v1", KeySource::PlatformKeyFile(tmp.Path("b.key")));
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().arm_code(), "PlatformKeyMismatch");
  auto missing = UnwrapMasterKey(*wrapped, "v1", KeySource::PlatformKeyFile(tmp.Path("c.key")));
  EXPECT_EQ(missing.status().arm_code(), "PlatformKeyMissing");
}

TEST(KeysTest, CustomerPassphraseIsNeverStoredAndAWrongOneIsRejected) {
  auto master = RandomKey();
  auto wrapped = WrapMasterKey(*master, "v1", KeySource::CustomerPassphrase("correct horse"));
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(wrapped->dump().find("correct horse"), std::string::npos);
  EXPECT_EQ((*wrapped)["protection"], "customer");
  EXPECT_EQ((*wrapped)["kdf"]["name"], "scrypt");
  auto bad = UnwrapMasterKey(*wrapped, "v1", KeySource::CustomerPassphrase("wrong horse"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "the customer key does not match this vault");
  EXPECT_EQ(bad.status().arm_code(), "CustomerKeyMismatch");
  auto good = UnwrapMasterKey(*wrapped, "v1", KeySource::CustomerPassphrase("correct horse"));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(0, std::memcmp(good->data(), master->data(), kKeyBytes));
}

TEST(KeysTest, TheWrapIsBoundToTheVault) {
  auto master = RandomKey();
  auto wrapped = WrapMasterKey(*master, "v1", KeySource::CustomerPassphrase("pw"));
  EXPECT_FALSE(UnwrapMasterKey(*wrapped, "v2", KeySource::CustomerPassphrase("pw")).ok());
}

TEST(KeysTest, KindMismatchIsNamed) {
  test::TempDir tmp;
  ASSERT_TRUE(CreatePlatformKeyFile(tmp.Path("a.key")).ok());
  auto master = RandomKey();
  auto wrapped = WrapMasterKey(*master, "v1", KeySource::CustomerPassphrase("pw"));
  auto r = UnwrapMasterKey(*wrapped, "v1", KeySource::PlatformKeyFile(tmp.Path("a.key")));
  EXPECT_EQ(r.status().arm_code(), "KeyProtectionMismatch");
}

TEST(KeysTest, SubKeysDifferPerPurposeAndVault) {
  auto master = RandomKey();
  auto a = DeriveVaultKeys(*master, "v1");
  auto b = DeriveVaultKeys(*master, "v2");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(0, std::memcmp(a->id_key.data(), a->data_key.data(), kKeyBytes));
  EXPECT_NE(0, std::memcmp(a->data_key.data(), a->manifest_key.data(), kKeyBytes));
  EXPECT_NE(0, std::memcmp(a->id_key.data(), b->id_key.data(), kKeyBytes));
}

TEST(CryptoTest, Base64AndHexRoundTrip) {
  for (std::string s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\x01\xff", 3)}) {
    auto back = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(Base64Decode("abc").ok());
  uint8_t out[2];
  EXPECT_TRUE(FromHex("abff", out, 2));
  EXPECT_EQ(ToHex(out, 2), "abff");
  EXPECT_FALSE(FromHex("zz00", out, 2));
}

}  // namespace
}  // namespace stratus::recovery::vault
