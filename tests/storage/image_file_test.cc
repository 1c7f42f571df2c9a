// The checks of an untrusted image file, against the real qemu-img.
#include "storage/image_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"
#include "storage/qcow2_disk_engine.h"

namespace stratus::storage {
namespace {

using ::testing::HasSubstr;

class ImageFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    auto r = RunProcess({"qemu-img", "--version"});
    if (!r.ok() || r->exit_code != 0) GTEST_SKIP() << "qemu-img is needed";
    ASSERT_TRUE(WriteFileAtomic(dir_.Path("secret"), "TOP-SECRET").ok());
  }

  test::ScopedTempDir dir_{"image-file"};
};

TEST_F(ImageFileTest, InspectionRefusesAnythingThatReadsAnotherFile) {
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

  // The engine converts with the format pinned.
  std::string out = dir_.Path("out.qcow2");
  ASSERT_TRUE(Qcow2DiskEngine().CreateFromSource(out, raw, 0, r->format).ok());
  auto converted = InspectImageFile(out, "f");
  ASSERT_TRUE(converted.ok());
  EXPECT_EQ(converted->format, "qcow2");
  EXPECT_EQ(converted->virtual_size, 1u << 20);
}

}  // namespace
}  // namespace stratus::storage
