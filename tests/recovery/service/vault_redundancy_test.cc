#include "recovery/service/vault_redundancy.h"

#include <gtest/gtest.h>

#include "core/fs.h"
#include "recovery/vault/vault_test_util.h"

namespace stratus::recovery::service {
namespace {

class RedundancyParseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    data_ = tmp_.Path("data");
    primary_ = data_ + "/vaults/uid1";
    ASSERT_TRUE(MakeDirs(primary_, 0700).ok());
    ASSERT_TRUE(MakeDirs(tmp_.Path("disk2"), 0700).ok());
  }
  Result<RedundancySetting> Parse(const Json& props, const RedundancySetting& cur = {}) {
    return ParseRedundancy(props, cur, data_, primary_, "vault-id-1");
  }
  Status Error(const Json& props) {
    auto r = Parse(props);
    EXPECT_FALSE(r.ok()) << props.dump();
    return r.ok() ? Status::Ok() : r.status();
  }

  vault::test::TempDir tmp_{"redundancy"};
  std::string data_, primary_;
};

TEST_F(RedundancyParseTest, LocalAndCopy) {
  auto local = Parse(Json::object());
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->mode, "Local");
  auto copy = Parse({{"redundancy", "copy"}, {"copyLocation", tmp_.Path("disk2/v1/")}});
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->mode, "Copy");
  EXPECT_EQ(copy->copy_location, tmp_.Path("disk2/v1"));
  // Omitted on update: unchanged; Copy without a location keeps the current one.
  auto same = Parse(Json::object(), *copy);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->copy_location, copy->copy_location);
  auto kept = Parse({{"redundancy", "Copy"}}, *copy);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->copy_location, copy->copy_location);
  auto off = Parse({{"redundancy", "Local"}}, *copy);
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->copy());
  EXPECT_TRUE(off->copy_location.empty());
}

TEST_F(RedundancyParseTest, BadValuesAre400sNamingTheField) {
  Status st = Error({{"redundancy", "Geo"}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.target(), "properties.redundancy");
  for (const Json& loc : {Json("relative/dir"), Json(""), Json(42), Json("/"),
                          Json(tmp_.Path("disk2/../disk2/v1")), Json(tmp_.Path("disk2//v1")),
                          Json(primary_ + "/copy"), Json(data_ + "/vaults/other"),
                          Json(tmp_.path()), Json(tmp_.Path("no-such-disk/v1"))}) {
    Status e = Error({{"redundancy", "Copy"}, {"copyLocation", loc}});
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument) << loc.dump();
    EXPECT_EQ(e.target(), "properties.copyLocation") << loc.dump();
  }
  EXPECT_EQ(Error({{"redundancy", "Copy"}}).target(), "properties.copyLocation");
  EXPECT_EQ(Error({{"redundancy", "Local"}, {"copyLocation", tmp_.Path("disk2/v1")}}).target(),
            "properties.copyLocation");
}

TEST_F(RedundancyParseTest, LocationMustBeEmptyOrThisVaultsCopy) {
  std::string loc = tmp_.Path("disk2/v1");
  ASSERT_TRUE(MakeDirs(loc, 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(loc + "/notes.txt", "x").ok());
  EXPECT_EQ(Error({{"redundancy", "Copy"}, {"copyLocation", loc}}).arm_code(),
            "CopyLocationInUse");
  RemoveFile(loc + "/notes.txt");
  ASSERT_TRUE(WriteFileAtomic(loc + "/vault.json", R"({"vault_id":"another"})").ok());
  EXPECT_EQ(Error({{"redundancy", "Copy"}, {"copyLocation", loc}}).arm_code(),
            "CopyLocationInUse");
  ASSERT_TRUE(WriteFileAtomic(loc + "/vault.json", R"({"vault_id":"vault-id-1"})").ok());
  EXPECT_TRUE(Parse({{"redundancy", "Copy"}, {"copyLocation", loc}}).ok());
}

TEST_F(RedundancyParseTest, ApplyWritesTheSettingAndSaysWhenToCopy) {
  Json props = {{"redundancy", "Local"}};
  RedundancySetting copy{"Copy", "/mnt/a"};
  EXPECT_TRUE(ApplyRedundancy(copy, props));
  EXPECT_EQ(props["copyLocation"], "/mnt/a");
  EXPECT_EQ(props["copyStatus"]["state"], "Pending");
  EXPECT_FALSE(ApplyRedundancy(copy, props));  // unchanged
  EXPECT_TRUE(ApplyRedundancy(RedundancySetting{"Copy", "/mnt/b"}, props));
  EXPECT_FALSE(ApplyRedundancy(RedundancySetting{}, props));
  EXPECT_EQ(props, Json({{"redundancy", "Local"}}));
}

}  // namespace
}  // namespace stratus::recovery::service
