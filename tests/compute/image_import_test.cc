#include "compute/image_import.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "core/fs.h"
#include "core/scoped_temp_dir.h"

namespace stratus::compute {
namespace {

using ::testing::HasSubstr;

class ImageImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    import_ = dir_.Path("import");
    std::filesystem::create_directories(import_);
    auto resolved = ResolveImportDirs({import_});
    ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
    allowed_ = *resolved;
    ASSERT_TRUE(WriteFileAtomic(dir_.Path("secret"), "TOP-SECRET").ok());
  }
  Result<std::unique_ptr<HostImportFile>> Open(const std::string& path, uint64_t max = 1 << 30) {
    return HostImportFile::Open(path, allowed_, max, "properties.source.filePath");
  }

  test::ScopedTempDir dir_{"image-import"};
  std::string import_;
  std::vector<std::string> allowed_;
};

TEST_F(ImageImportTest, OnlyRegularFilesBelowAnImportDirOpen) {
  ASSERT_TRUE(WriteFileAtomic(import_ + "/ok.raw", std::string(4096, 'x')).ok());
  auto ok = Open(import_ + "/ok.raw");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)->size(), 4096u);
  // The descriptor, not the path, is what gets read: replacing the file changes nothing.
  ASSERT_TRUE(WriteFileAtomic(import_ + "/ok.raw", "swapped").ok());
  ASSERT_TRUE((*ok)->CopyTo(dir_.Path("copy")).ok());
  EXPECT_EQ(ReadFile(dir_.Path("copy"))->size(), 4096u);
  struct stat st;
  ASSERT_EQ(::stat(dir_.Path("copy").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto proc = ReadFile((*ok)->ProcPath());
  ASSERT_TRUE(proc.ok());
  EXPECT_EQ(proc->size(), 4096u);

  std::filesystem::create_symlink(dir_.Path("secret"), import_ + "/link");
  std::filesystem::create_directories(import_ + "/sub");
  ASSERT_EQ(::mkfifo((import_ + "/fifo").c_str(), 0600), 0);
  ASSERT_TRUE(WriteFileAtomic(import_ + "/big", std::string(2000, 'b')).ok());
  struct Case {
    std::string path;
    std::string code;
    uint64_t max = 1 << 30;
  } cases[] = {
      {dir_.Path("secret"), "ImportPathNotAllowed"},
      {import_ + "/../secret", "ImportPathNotAllowed"},
      {import_ + "/link", "ImportPathNotAllowed"},  // resolves outside
      {import_, "ImportPathNotAllowed"},            // the folder itself
      {import_ + "/sub", "InvalidImage"},
      {import_ + "/fifo", "InvalidImage"},
      {import_ + "/missing", "InvalidImage"},
      {import_ + "/big", "InvalidImage", 1000},
      {"relative/path", "InvalidImage"},
  };
  for (auto& c : cases) {
    auto r = Open(c.path, c.max);
    ASSERT_FALSE(r.ok()) << c.path;
    EXPECT_EQ(r.status().arm_code(), c.code) << c.path << ": " << r.status().message();
    EXPECT_EQ(r.status().target(), "properties.source.filePath");
    EXPECT_EQ(r.status().message().find("TOP-SECRET"), std::string::npos);
  }
  // No import folder: host paths are off.
  auto off = HostImportFile::Open(import_ + "/ok.raw", {}, 1 << 30, "f");
  ASSERT_FALSE(off.ok());
  EXPECT_EQ(off.status().arm_code(), "ImportPathNotAllowed");
  EXPECT_THAT(off.status().message(), HasSubstr("upload"));
}

TEST_F(ImageImportTest, UploadSinkKeepsOnlyCompleteUploads) {
  std::string final_path = dir_.Path("disk.upload");
  {
    auto sink = FileUploadSink::Create(final_path, 10);
    ASSERT_TRUE(sink.ok());
    EXPECT_TRUE((*sink)->Write("12345", 5).ok());
    // Over the declared size: refused, and the failure sticks.
    EXPECT_EQ((*sink)->Write("1234567", 7).arm_code(), "UploadSizeMismatch");
    EXPECT_FALSE((*sink)->Write("1", 1).ok());
    EXPECT_FALSE((*sink)->Commit().ok());
  }
  EXPECT_FALSE(PathExists(final_path));
  EXPECT_FALSE(PathExists(final_path + ".part"));  // dropped without a commit
  auto sink = FileUploadSink::Create(final_path, 10);
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->Write("0123456789", 10).ok());
  EXPECT_EQ((*sink)->written(), 10u);
  ASSERT_TRUE((*sink)->Commit().ok());
  sink->reset();
  EXPECT_EQ(*ReadFile(final_path), "0123456789");
  struct stat st;
  ASSERT_EQ(::stat(final_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ImageImportTest, ImportDirsMustBeFolders) {
  EXPECT_FALSE(ResolveImportDirs({dir_.Path("missing")}).ok());
  EXPECT_FALSE(ResolveImportDirs({dir_.Path("secret")}).ok());
  auto ok = ResolveImportDirs({import_ + "/./"});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)[0], allowed_[0]);
}

}  // namespace
}  // namespace stratus::compute
