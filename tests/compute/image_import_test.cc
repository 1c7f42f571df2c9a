#include "compute/image_import.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"

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
  static bool HaveQemuImg() {
    auto r = RunProcess({"qemu-img", "--version"});
    return r.ok() && r->exit_code == 0;
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

TEST_F(ImageImportTest, InspectionRefusesAnythingThatReadsAnotherFile) {
  if (!HaveQemuImg()) GTEST_SKIP() << "qemu-img is needed";
  std::string plain = dir_.Path("plain.qcow2"), backed = dir_.Path("backed.qcow2");
  std::string with_data = dir_.Path("datafile.qcow2"), raw = dir_.Path("disk.raw");
  ASSERT_TRUE(RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", plain, "8M"}).ok());
  ASSERT_TRUE(RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", dir_.Path("secret"),
                          "-F", "raw", backed, "8M"})
                  .ok());
  ASSERT_TRUE(RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", "-o",
                          "data_file=" + dir_.Path("data.bin"), with_data, "8M"})
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(raw, std::string(1 << 20, '\0')).ok());

  auto p = InspectImageFile(plain, "f");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->format, "qcow2");
  EXPECT_EQ(p->virtual_size, 8u << 20);
  auto r = InspectImageFile(raw, "f");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->format, "raw");
  for (auto& bad : {backed, with_data, dir_.Path("missing")}) {
    auto b = InspectImageFile(bad, "f");
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().arm_code(), "InvalidImage") << bad;
  }
  EXPECT_THAT(InspectImageFile(backed, "f").status().message(), HasSubstr("backing file"));
  EXPECT_THAT(InspectImageFile(with_data, "f").status().message(), HasSubstr("external file"));

  // A raw file whose bytes are a qcow2 header naming a backing file is a qcow2 to qemu-img:
  // inspection sees the backing file and refuses it.
  std::string disguised = dir_.Path("disguised.raw");
  ASSERT_TRUE(RunChecked({"cp", backed, disguised}).ok());
  EXPECT_FALSE(InspectImageFile(disguised, "f").ok());

  // Conversion pins the format.
  std::string out = dir_.Path("out.qcow2");
  ASSERT_TRUE(ConvertImageFile(raw, *r, out).ok());
  auto converted = InspectImageFile(out, "f");
  ASSERT_TRUE(converted.ok());
  EXPECT_EQ(converted->format, "qcow2");
  EXPECT_EQ(converted->virtual_size, 1u << 20);
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
