#include "cli/resolve.h"

#include <gtest/gtest.h>

#include "cli/fake_stratusd.h"

namespace stratus::cli {
namespace {

using testing::CliRun;
using testing::FakeStratusd;
using testing::kRg;
using testing::kSub;
using testing::kVm;

TEST(PathsTest, BuildsArmPaths) {
  EXPECT_EQ(GroupPath(kSub, "rg1"), kRg);
  EXPECT_EQ(ResourcePath(kSub, "rg1", ResourceKind::kVirtualMachine, "web1"),
            kRg + "/providers/Stratus.Compute/virtualMachines/web1");
  EXPECT_EQ(CollectionPath(kSub, "rg1", ResourceKind::kSnapshot),
            kRg + "/providers/Stratus.Storage/snapshots");
  EXPECT_EQ(OperationPath(kSub, "op1"),
            "/subscriptions/" + kSub + "/providers/Stratus.Resources/operations/op1");
  EXPECT_EQ(OperationPath(kSub, "http://127.0.0.1:8780/x/operations/op1?api-version=1"),
            "/x/operations/op1?api-version=1");
}

TEST(ResolveResourceIdTest, NameResolvesWithinGroup) {
  auto id = ResolveResourceId(kSub, "rg1", "d1", ResourceKind::kDisk, "--name");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, kRg + "/providers/Stratus.Storage/disks/d1");
}

TEST(ResolveResourceIdTest, IdOfTheRightTypeIsKept) {
  std::string disk_id = kRg + "/providers/stratus.storage/DISKS/d1";
  auto id = ResolveResourceId(kSub, "", disk_id, ResourceKind::kDisk, "--name");
  ASSERT_TRUE(id.ok()) << id.error().ToString();
  EXPECT_EQ(*id, disk_id);
}

TEST(ResolveResourceIdTest, WrongTypeOrMissingGroupIsUsageError) {
  std::string vm_id = kRg + "/providers/Stratus.Compute/virtualMachines/web1";
  auto wrong = ResolveResourceId(kSub, "rg1", vm_id, ResourceKind::kDisk, "--source");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().exit_code(), ExitCode::kUsage);
  EXPECT_NE(wrong.error().message().find("not a disk id"), std::string::npos);

  auto no_group = ResolveResourceId(kSub, "", "d1", ResourceKind::kDisk, "--source");
  ASSERT_FALSE(no_group.ok());
  EXPECT_EQ(no_group.error().exit_code(), ExitCode::kUsage);
  EXPECT_NE(no_group.error().message().find("-g"), std::string::npos);

  EXPECT_FALSE(ResolveResourceId(kSub, "rg1", "a/b", ResourceKind::kDisk, "--source").ok());
}

class ResolveWithApiTest : public ::testing::Test {
 protected:
  ResolveWithApiTest() {
    ApiClient::Options o;
    o.endpoint = fake_.endpoint();
    o.token = "tok";
    client_ = std::make_unique<ApiClient>(o);
    fake_.server().Get(R"(/subscriptions/[^/]+/providers/Stratus.Compute/platformImages)",
                       [](const httplib::Request&, httplib::Response& res) {
                         FakeStratusd::Reply(res, 200, {{"value", {{{"name", "tiny"}}}}});
                       });
  }
  // Serves GET `path` as an existing resource with that id.
  void Exists(const std::string& path) {
    fake_.server().Get(path, [path](const httplib::Request&, httplib::Response& res) {
      FakeStratusd::Reply(res, 200, {{"id", path}, {"name", path.substr(path.rfind('/') + 1)}});
    });
  }
  void ServeNotFound() {
    fake_.server().set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.status == 404) FakeStratusd::ReplyError(res, 404, "ResourceNotFound", "absent");
    });
  }

  FakeStratusd fake_;
  std::unique_ptr<ApiClient> client_;
};

TEST_F(ResolveWithApiTest, CopySourceFindsTheSnapshotOrTheDisk) {
  ServeNotFound();
  Exists(kRg + "/providers/Stratus.Storage/snapshots/snap1");
  Exists(kRg + "/providers/Stratus.Storage/disks/disk1");
  auto snap = ResolveCopySource(*client_, kSub, "rg1", "snap1", "--source");
  ASSERT_TRUE(snap.ok()) << snap.error().ToString();
  EXPECT_EQ(*snap, kRg + "/providers/Stratus.Storage/snapshots/snap1");
  auto disk = ResolveCopySource(*client_, kSub, "rg1", "disk1", "--source");
  ASSERT_TRUE(disk.ok()) << disk.error().ToString();
  EXPECT_EQ(*disk, kRg + "/providers/Stratus.Storage/disks/disk1");

  auto neither = ResolveCopySource(*client_, kSub, "rg1", "nope", "--source");
  ASSERT_FALSE(neither.ok());
  EXPECT_EQ(neither.error().exit_code(), ExitCode::kNotFound);
}

TEST_F(ResolveWithApiTest, CopySourceNamingBothIsAmbiguous) {
  ServeNotFound();
  Exists(kRg + "/providers/Stratus.Storage/snapshots/x");
  Exists(kRg + "/providers/Stratus.Storage/disks/x");
  auto both = ResolveCopySource(*client_, kSub, "rg1", "x", "--source");
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().exit_code(), ExitCode::kUsage);
}

TEST_F(ResolveWithApiTest, CopySourceIdNeedsNoRequest) {
  std::string id = kRg + "/providers/Stratus.Storage/snapshots/s9";
  auto got = ResolveCopySource(*client_, kSub, "", id, "--source");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, id);
  EXPECT_TRUE(fake_.requests().empty());
}

TEST_F(ResolveWithApiTest, ImageReferencePlatformCustomOrNotFound) {
  ServeNotFound();
  Exists(kRg + "/providers/Stratus.Compute/images/golden");
  auto tiny = ResolveImageReference(*client_, kSub, "rg1", "TINY");
  ASSERT_TRUE(tiny.ok()) << tiny.error().ToString();
  EXPECT_EQ(*tiny, (Json{{"id", "tiny"}}));
  auto golden = ResolveImageReference(*client_, kSub, "rg1", "golden");
  ASSERT_TRUE(golden.ok()) << golden.error().ToString();
  EXPECT_EQ(*golden, (Json{{"id", kRg + "/providers/Stratus.Compute/images/golden"}}));
  auto missing = ResolveImageReference(*client_, kSub, "rg1", "ubuntu");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().exit_code(), ExitCode::kNotFound);
  EXPECT_EQ(missing.error().code(), "ImageNotFound");
  EXPECT_NE(missing.error().message().find("tiny"), std::string::npos);
}

}  // namespace
}  // namespace stratus::cli
