#include "cli/config.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/fs.h"
#include "core/uuid.h"

namespace stratus::cli {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("stratus-cli-config-" + NewUuid())).string();
    ASSERT_TRUE(MakeDirs(dir_).ok());
  }
  void TearDown() override { RemoveTree(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = JoinPath(dir_, name);
    EXPECT_TRUE(WriteFileAtomic(path, text).ok());
    return path;
  }
  std::string dir_;
};

const char* kTwoRegions = R"({
  "default": "regionA",
  "regions": {
    "regionA": {"endpoint": "http://127.0.0.1:8780", "tokenFile": "/t/a.token",
                "subscription": "11111111-2222-3333-4444-555555555555", "location": "regionA"},
    "regionB": {"endpoint": "127.0.0.1:8781/", "subscription": "s2"}
  }
})";

TEST_F(ConfigTest, ParsesRegionsAndDefaults) {
  auto config = ParseCliConfig(kTwoRegions, "/cfg.json");
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->default_region, "regionA");
  ASSERT_EQ(config->regions.size(), 2u);
  const RegionConfig& a = config->regions.at("regionA");
  EXPECT_EQ(a.endpoint, "http://127.0.0.1:8780");
  EXPECT_EQ(a.token_file, "/t/a.token");
  EXPECT_EQ(a.subscription, "11111111-2222-3333-4444-555555555555");
  const RegionConfig& b = config->regions.at("regionB");
  EXPECT_EQ(b.endpoint, "http://127.0.0.1:8781");  // scheme added, trailing slash dropped
  EXPECT_EQ(b.location, "regionB");                // defaults to the region name
}

TEST_F(ConfigTest, SelectsDefaultOrNamedRegion) {
  auto config = ParseCliConfig(kTwoRegions, "/cfg.json");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(SelectRegion(*config, "")->name, "regionA");
  EXPECT_EQ(SelectRegion(*config, "regionB")->name, "regionB");
  auto unknown = SelectRegion(*config, "regionC");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().exit_code(), ExitCode::kUsage);
  EXPECT_NE(unknown.error().message().find("regionA, regionB"), std::string::npos);
}

TEST_F(ConfigTest, SingleRegionNeedsNoDefault) {
  auto config = ParseCliConfig(R"({"regions":{"only":{"endpoint":"http://h:1"}}})", "/c");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(SelectRegion(*config, "")->name, "only");
}

TEST_F(ConfigTest, MissingFileIsAClearError) {
  std::string path = JoinPath(dir_, "nope/config.json");
  auto config = LoadCliConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().exit_code(), ExitCode::kLocalError);
  EXPECT_EQ(config.error().code(), "ConfigNotFound");
  EXPECT_NE(config.error().message().find(path), std::string::npos);
  EXPECT_NE(config.error().message().find("STRATUS_CONFIG"), std::string::npos);
}

TEST_F(ConfigTest, LoadsFromFile) {
  auto config = LoadCliConfig(Write("config.json", kTwoRegions));
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->regions.size(), 2u);
}

TEST_F(ConfigTest, RejectsMalformedDocuments) {
  for (const char* text :
       {"not json", "[]", R"({"regions":{}})", R"({"regions":{"a":{"tokenFile":"/x"}}})",
        R"({"regions":{"a":{"endpoint":5}}})",
        R"({"default":"b","regions":{"a":{"endpoint":"http://h:1"}}})"}) {
    auto config = ParseCliConfig(text, "/bad.json");
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.error().exit_code(), ExitCode::kLocalError);
    EXPECT_NE(config.error().message().find("/bad.json"), std::string::npos) << text;
  }
}

TEST_F(ConfigTest, TokenFromFileIsTrimmed) {
  RegionConfig region;
  region.name = "regionA";
  region.token_file = Write("admin.token", "  s3cr3t\n");
  EXPECT_EQ(*LoadToken(region, nullptr), "s3cr3t");
  EXPECT_EQ(*LoadToken(region, ""), "s3cr3t");
}

TEST_F(ConfigTest, EnvTokenOverridesFile) {
  RegionConfig region;
  region.token_file = JoinPath(dir_, "missing.token");
  EXPECT_EQ(*LoadToken(region, "from-env\n"), "from-env");
}

TEST_F(ConfigTest, UnreadableOrEmptyTokenIsAnError) {
  RegionConfig region;
  region.name = "regionA";
  region.token_file = JoinPath(dir_, "missing.token");
  auto missing = LoadToken(region, nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().exit_code(), ExitCode::kLocalError);
  EXPECT_NE(missing.error().message().find(region.token_file), std::string::npos);
  region.token_file = Write("empty.token", " \n");
  EXPECT_FALSE(LoadToken(region, nullptr).ok());
}

TEST(ConfigPathTest, EnvOverridesHome) {
  EXPECT_EQ(ConfigPath("/etc/s.json", "/home/u"), "/etc/s.json");
  EXPECT_EQ(ConfigPath("", "/home/u"), "/home/u/.stratus/config.json");
  EXPECT_EQ(ConfigPath(nullptr, "/home/u"), "/home/u/.stratus/config.json");
}

}  // namespace
}  // namespace stratus::cli
