#include "compute/images.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "core/fs.h"
#include "core/resource_id.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"
#include "storage/qcow2_disk_engine.h"
#include "store/sqlite_store.h"

namespace stratus::compute {
namespace {

using ::testing::HasSubstr;

class ImageCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    if (!RunProcess({"qemu-img", "--version"}).ok()) GTEST_SKIP() << "qemu-img is not installed";
    auto s = store::SqliteStore::Open(dir_.Path("state.db"), store::SqliteStore::Durability::kNormal);
    ASSERT_TRUE(s.ok());
    store_ = std::move(s).value();
    platform_ = dir_.Path("platform");
    ASSERT_TRUE(MakeDirs(platform_).ok());
    catalog_ = std::make_unique<ImageCatalog>(store_.get(), &engine_, platform_);
  }

  void AddPlatformImage(const std::string& folder, const Json& image_json, bool with_disk = true) {
    std::string d = JoinPath(platform_, folder);
    ASSERT_TRUE(MakeDirs(d).ok());
    ASSERT_TRUE(WriteFileAtomic(JoinPath(d, "image.json"), image_json.dump()).ok());
    if (!with_disk) return;
    ASSERT_TRUE(RunChecked({"qemu-img", "create", "-q", "-f", "qcow2",
                            JoinPath(d, image_json.value("disk", "disk.qcow2")), "48M"})
                    .ok());
  }

  test::ScopedTempDir dir_{"images"};
  std::string platform_;
  std::unique_ptr<store::Store> store_;
  storage::Qcow2DiskEngine engine_;
  std::unique_ptr<ImageCatalog> catalog_;
};

TEST_F(ImageCatalogTest, ResolvesAPlatformImage) {
  AddPlatformImage("tiny", {{"name", "tiny"},
                            {"disk", "rootfs.qcow2"},
                            {"kernel", "vmlinuz"},
                            {"initrd", "initrd.img"},
                            {"cmdline", "console=ttyS0 root=/dev/vda"},
                            {"osType", "Linux"}});
  auto img = catalog_->Resolve("tiny");
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->id, "tiny");
  EXPECT_EQ(img->name, "tiny");
  EXPECT_EQ(img->disk_path, JoinPath(platform_, "tiny/rootfs.qcow2"));
  EXPECT_EQ(img->kernel, JoinPath(platform_, "tiny/vmlinuz"));
  EXPECT_EQ(img->initrd, JoinPath(platform_, "tiny/initrd.img"));
  EXPECT_EQ(img->cmdline, "console=ttyS0 root=/dev/vda");
  EXPECT_EQ(img->os_type, "Linux");
  EXPECT_EQ(img->size_bytes, 48ull << 20);

  Json j = ImageCatalog::ToJson(*img);
  EXPECT_EQ(j["id"], "tiny");
  EXPECT_EQ(j["sizeBytes"], 48ull << 20);
  EXPECT_EQ(j["directKernelBoot"], true);
}

TEST_F(ImageCatalogTest, DefaultsForAMinimalImageJson) {
  AddPlatformImage("plain", Json::object());
  auto img = catalog_->Resolve("plain");
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->id, "plain");
  EXPECT_EQ(img->disk_path, JoinPath(platform_, "plain/disk.qcow2"));
  EXPECT_TRUE(img->kernel.empty());
  EXPECT_EQ(img->os_type, "Linux");
  EXPECT_EQ(ImageCatalog::ToJson(*img)["directKernelBoot"], false);
}

TEST_F(ImageCatalogTest, UnknownImageIsImageNotFound) {
  for (const char* ref : {"nope", "Nope2"}) {
    auto img = catalog_->Resolve(ref);
    ASSERT_FALSE(img.ok());
    EXPECT_EQ(img.status().code(), StatusCode::kNotFound);
    EXPECT_EQ(img.status().http_status(), 404);
    EXPECT_EQ(img.status().arm_code(), "ImageNotFound");
    EXPECT_THAT(img.status().message(), HasSubstr(ref));
  }
  // A folder without image.json is not an image.
  ASSERT_TRUE(MakeDirs(JoinPath(platform_, "empty")).ok());
  EXPECT_EQ(catalog_->Resolve("empty").status().arm_code(), "ImageNotFound");
}

TEST_F(ImageCatalogTest, ReferencesThatAreNotNamesOrIdsAreRejected) {
  auto empty = catalog_->Resolve("");
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.status().arm_code(), "MissingParameter");
  // No escaping the platform directory.
  EXPECT_FALSE(catalog_->Resolve("..").ok());
  EXPECT_EQ(catalog_->Resolve("..").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->Resolve("../../etc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->Resolve(".hidden").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ImageCatalogTest, CorruptImageJsonIsAnInternalError) {
  std::string d = JoinPath(platform_, "broken");
  ASSERT_TRUE(MakeDirs(d).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(d, "image.json"), "{not json").ok());
  auto img = catalog_->Resolve("broken");
  EXPECT_EQ(img.status().code(), StatusCode::kInternal);
}

TEST_F(ImageCatalogTest, PlatformImagesListsOnlyValidImages) {
  AddPlatformImage("alpha", {{"name", "alpha"}});
  AddPlatformImage("beta", {{"name", "beta"}});
  ASSERT_TRUE(MakeDirs(JoinPath(platform_, "not-an-image")).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(platform_, "stray-file"), "x").ok());
  auto imgs = catalog_->PlatformImages();
  std::vector<std::string> names;
  for (auto& i : imgs) names.push_back(i.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "beta"}));
  ImageCatalog missing(store_.get(), &engine_, dir_.Path("no-such-dir"));
  EXPECT_TRUE(missing.PlatformImages().empty());
}

TEST_F(ImageCatalogTest, ResolvesAUserImageResource) {
  ResourceId id = ResourceId::Resource("sub1", "rg", "Stratus.Compute", "images", "golden");
  store::Record rec;
  rec.key = id.Key();
  rec.type = "stratus.compute/images";
  rec.body = {{"id", id.ToString()},
              {"properties",
               {{"provisioningState", "Succeeded"}, {"osType", "Linux"}, {"cmdline", "quiet"},
                {"sizeBytes", 1234}}}};
  rec.internal = {{"path", "/data/images/u/disk.qcow2"}, {"kernel", "/data/images/u/vmlinuz"}};
  ASSERT_TRUE(store_->Put(rec).ok());

  auto img = catalog_->Resolve(ToLower(id.ToString()));  // ids match case-insensitively
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->name, "golden");
  EXPECT_EQ(img->disk_path, "/data/images/u/disk.qcow2");
  EXPECT_EQ(img->kernel, "/data/images/u/vmlinuz");
  EXPECT_EQ(img->cmdline, "quiet");
  EXPECT_EQ(img->size_bytes, 1234u);

  rec.body["properties"]["provisioningState"] = "Creating";
  ASSERT_TRUE(store_->Put(rec).ok());
  EXPECT_EQ(catalog_->Resolve(id.ToString()).status().code(), StatusCode::kConflict);

  auto missing = catalog_->Resolve(
      ResourceId::Resource("sub1", "rg", "Stratus.Compute", "images", "other").ToString());
  EXPECT_EQ(missing.status().arm_code(), "ImageNotFound");
  EXPECT_EQ(catalog_->Resolve("/subscriptions/sub1/bogus").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ImageCatalogTest, ARecordOfAnotherTypeIsNotAnImage) {
  ResourceId disk = ResourceId::Resource("sub1", "rg", "Stratus.Storage", "disks", "d1");
  store::Record rec;
  rec.key = disk.Key();
  rec.type = "stratus.storage/disks";
  rec.body = {{"properties", {{"provisioningState", "Succeeded"}}}};
  rec.internal = {{"path", "/secret/disk.qcow2"}};
  ASSERT_TRUE(store_->Put(rec).ok());
  auto img = catalog_->Resolve(disk.ToString());
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().arm_code(), "ImageNotFound");
}

}  // namespace
}  // namespace stratus::compute
