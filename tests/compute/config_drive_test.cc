#include "compute/config_drive.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"

namespace stratus::compute {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ConfigDriveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    if (!RunProcess({"mke2fs", "-V"}).ok() || !RunProcess({"debugfs", "-V"}).ok())
      GTEST_SKIP() << "e2fsprogs (mke2fs, debugfs) is not installed";
  }

  // Runs one debugfs request against the image (read-only).
  std::string Debugfs(const std::string& img, const std::string& request) {
    auto r = RunProcess({"debugfs", "-R", request, img});
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code, 0) << r->err;
    return r.ok() ? r->out : std::string();
  }

  test::ScopedTempDir dir_{"cfgdrive"};
};

TEST_F(ConfigDriveTest, HoldsEveryFileWithItsContent) {
  std::string img = dir_.Path("config.img");
  ConfigDriveContent c;
  c.hostname = "web-01";
  c.user_script = "#!/bin/sh\necho hello > /tmp/x\n";
  c.network = "IFACE=eth0\nADDRESS=10.0.0.5/24\n";
  c.meta_json = R"({"version":1,"vmId":"abc","name":"web-01"})";
  Status st = BuildConfigDrive(img, c);
  ASSERT_TRUE(st.ok()) << st.ToString();

  std::string ls = Debugfs(img, "ls -l /");
  EXPECT_THAT(ls, HasSubstr("hostname"));
  EXPECT_THAT(ls, HasSubstr("user-script"));
  EXPECT_THAT(ls, HasSubstr("network"));
  EXPECT_THAT(ls, HasSubstr("meta.json"));

  EXPECT_EQ(Debugfs(img, "cat /hostname"), "web-01\n");
  EXPECT_EQ(Debugfs(img, "cat /user-script"), c.user_script);
  EXPECT_EQ(Debugfs(img, "cat /network"), c.network);
  EXPECT_EQ(Debugfs(img, "cat /meta.json"), c.meta_json);
  // The user script is executable.
  EXPECT_THAT(Debugfs(img, "stat /user-script"), HasSubstr("Mode:  0755"));

  // ext2, labelled, 4 MiB, and nothing left beside it.
  auto label = RunProcess({"e2label", img});
  if (label.ok() && label->exit_code == 0) {
    EXPECT_EQ(label->out, "cidata\n");
  }
  EXPECT_EQ(std::filesystem::file_size(img), 4u << 20);
  EXPECT_THAT(Debugfs(img, "stats"), Not(HasSubstr("has_journal")));
  EXPECT_FALSE(PathExists(img + ".tmp"));
  EXPECT_EQ(std::string(kConfigDriveSerial), "stratus-config");
}

TEST_F(ConfigDriveTest, OptionalFilesAreLeftOut) {
  std::string img = dir_.Path("config.img");
  ConfigDriveContent c;
  c.hostname = "bare";
  ASSERT_TRUE(BuildConfigDrive(img, c).ok());
  std::string ls = Debugfs(img, "ls -l /");
  EXPECT_THAT(ls, HasSubstr("hostname"));
  EXPECT_THAT(ls, Not(HasSubstr("user-script")));
  EXPECT_THAT(ls, Not(HasSubstr("network")));
  EXPECT_THAT(ls, Not(HasSubstr("meta.json")));
  EXPECT_EQ(Debugfs(img, "cat /hostname"), "bare\n");
}

TEST_F(ConfigDriveTest, RebuildReplacesTheImage) {
  std::string img = dir_.Path("config.img");
  ConfigDriveContent c;
  c.hostname = "first";
  c.user_script = "echo 1\n";
  ASSERT_TRUE(BuildConfigDrive(img, c).ok());
  c.hostname = "second";
  c.user_script.clear();
  ASSERT_TRUE(BuildConfigDrive(img, c).ok());
  EXPECT_EQ(Debugfs(img, "cat /hostname"), "second\n");
  EXPECT_THAT(Debugfs(img, "ls -l /"), Not(HasSubstr("user-script")));
  // Only the image itself in the directory.
  size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_.path())) {
    (void)e;
    ++n;
  }
  EXPECT_EQ(n, 1u);
}

TEST_F(ConfigDriveTest, UnwritableDestinationFails) {
  ConfigDriveContent c;
  c.hostname = "x";
  Status st = BuildConfigDrive(dir_.Path("no/such/dir/config.img"), c);
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(PathExists(dir_.Path("no/such/dir/config.img")));
}

}  // namespace
}  // namespace stratus::compute
