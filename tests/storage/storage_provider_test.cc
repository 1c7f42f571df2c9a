// Stratus.Storage through ApiServer::Handle, over an in-process region (the real SqliteStore
// and Qcow2DiskEngine; "tiny" is its 64 MiB platform image).
#include "storage/storage_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "api/server.h"
#include "common/api_request.h"
#include "common/in_process_region.h"
#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"
#include "storage/qcow2_disk_engine.h"
#include "store/sqlite_store.h"

namespace stratus::storage {
namespace {

using ::testing::HasSubstr;

constexpr const char* kRg = test::InProcessRegion::kRg;

std::string DiskPath(const std::string& name) {
  return std::string(kRg) + "/providers/Stratus.Storage/disks/" + name;
}
std::string SnapPath(const std::string& name) {
  return std::string(kRg) + "/providers/Stratus.Storage/snapshots/" + name;
}

class StorageProviderTest : public test::InProcessRegionTest {
 protected:
  static Json EmptyDisk(int gb, const std::string& sku = "Standard_LRS") {
    return {{"location", "regionA"},
            {"sku", {{"name", sku}}},
            {"properties", {{"diskSizeGB", gb}, {"creationData", {{"createOption", "Empty"}}}}}};
  }

  // Creates a disk and waits; returns its GET body.
  Json Create(const std::string& name, const Json& body) {
    api::ApiResponse r = Call("PUT", DiskPath(name), body);
    EXPECT_EQ(r.status, 201) << r.body.dump();
    Json op = Finish(r);
    EXPECT_EQ(op["status"], "Succeeded") << op.dump();
    return Call("GET", DiskPath(name)).body;
  }

  std::string FileOf(const std::string& key) {
    auto rec = store()->Get(ToLower(key));
    return rec.ok() ? rec->internal.value("path", "") : "";
  }
};

TEST_F(StorageProviderTest, CreateAnEmptyDisk) {
  api::ApiResponse put = Call("PUT", DiskPath("d1"), EmptyDisk(2));
  ASSERT_EQ(put.status, 201) << put.body.dump();
  EXPECT_EQ(put.body["properties"]["provisioningState"], "Creating");
  EXPECT_EQ(put.body["properties"]["diskSizeGB"], 2);
  Json op = Finish(put);
  EXPECT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(op["operation"], "Stratus.Storage/disks/write");

  api::ApiResponse get = Call("GET", DiskPath("d1"));
  ASSERT_EQ(get.status, 200);
  const Json& p = get.body["properties"];
  EXPECT_EQ(p["provisioningState"], "Succeeded");
  EXPECT_EQ(p["diskSizeGB"], 2);
  EXPECT_EQ(p["diskState"], "Unattached");
  EXPECT_EQ(p["diskIOPSReadWrite"], 500);
  EXPECT_EQ(p["diskMBpsReadWrite"], 60);
  EXPECT_GT(p["allocatedBytes"].get<uint64_t>(), 0u);
  EXPECT_LT(p["allocatedBytes"].get<uint64_t>(), 8u << 20);
  EXPECT_EQ(get.body["sku"]["tier"], "Standard");
  EXPECT_EQ(get.headers["ETag"], get.body["etag"]);
  EXPECT_TRUE(PathExists(FileOf(DiskPath("d1"))));
}

TEST_F(StorageProviderTest, InvalidDiskRequestsAre400) {
  Json no_size = EmptyDisk(1);
  no_size["properties"].erase("diskSizeGB");
  EXPECT_EQ(Code(Call("PUT", DiskPath("d1"), no_size)), "MissingParameter");
  EXPECT_EQ(Code(Call("PUT", DiskPath("d1"), EmptyDisk(1, "Ultra_LRS"))), "InvalidSku");
  EXPECT_EQ(Call("PUT", DiskPath("d1"), EmptyDisk(0)).status, 400);
  EXPECT_EQ(Call("PUT", DiskPath("d1"), EmptyDisk(kMaxDiskSizeGB + 1)).status, 400);
  Json option = EmptyDisk(1);
  option["properties"]["creationData"]["createOption"] = "Restore";
  EXPECT_EQ(Call("PUT", DiskPath("d1"), option).status, 400);
  Json extra = EmptyDisk(1);
  extra["properties"]["creationData"]["bogus"] = 1;
  api::ApiResponse r = Call("PUT", DiskPath("d1"), extra);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["target"], "properties.creationData.bogus");
  Json far = EmptyDisk(1);
  far["location"] = "regionB";
  EXPECT_EQ(Call("PUT", DiskPath("d1"), far).status, 400);
  auto free = FreeBytes(data_dir());
  ASSERT_TRUE(free.ok());
  int64_t too_big = static_cast<int64_t>(*free / kGiB) + 2;
  if (too_big <= kMaxDiskSizeGB) {
    EXPECT_EQ(Code(Call("PUT", DiskPath("d1"), EmptyDisk(static_cast<int>(too_big)))), "DiskTooLarge");
  }
  ops()->WaitIdle();
  EXPECT_EQ(Call("GET", DiskPath("d1")).status, 404);
}

TEST_F(StorageProviderTest, CreateFromImageAndCopy) {
  Json from_image = {{"properties",
                      {{"creationData", {{"createOption", "FromImage"}, {"imageReference", {{"id", "tiny"}}}}}}}};
  Json os = Create("os", from_image);
  EXPECT_EQ(os["properties"]["diskSizeGB"], 1);  // 64 MiB rounds up to 1 GiB
  EXPECT_EQ(Compare(image_disk(), FileOf(DiskPath("os"))), 0);

  Json copy = {{"properties",
                {{"diskSizeGB", 2},
                 {"creationData", {{"createOption", "Copy"}, {"sourceResourceId", DiskPath("os")}}}}}};
  Json c = Create("copy", copy);
  EXPECT_EQ(c["properties"]["diskSizeGB"], 2);
  EXPECT_EQ(Compare(FileOf(DiskPath("os")), FileOf(DiskPath("copy"))), 0);
  EXPECT_NE(FileOf(DiskPath("os")), FileOf(DiskPath("copy")));

  Json no_ref = {{"properties", {{"creationData", {{"createOption", "FromImage"}}}}}};
  EXPECT_EQ(Code(Call("PUT", DiskPath("x"), no_ref)), "MissingParameter");
  Json bad_ref = from_image;
  bad_ref["properties"]["creationData"]["imageReference"]["id"] = "nope";
  EXPECT_EQ(Code(Call("PUT", DiskPath("x"), bad_ref)), "ImageNotFound");
  Json no_src = copy;
  no_src["properties"]["creationData"]["sourceResourceId"] = DiskPath("missing");
  EXPECT_EQ(Call("PUT", DiskPath("x"), no_src).status, 404);
  Json smaller = {{"properties",
                   {{"diskSizeGB", 1},
                    {"creationData", {{"createOption", "Copy"}, {"sourceResourceId", DiskPath("copy")}}}}}};
  EXPECT_EQ(Code(Call("PUT", DiskPath("x"), smaller)), "InvalidDiskSize");
}

TEST_F(StorageProviderTest, UpdatesGrowOnlyAndHonourPreconditions) {
  Create("d1", EmptyDisk(1));
  std::string etag = Call("GET", DiskPath("d1")).body["etag"];
  api::ApiResponse grown = Call("PUT", DiskPath("d1"), EmptyDisk(2), {{"if-match", etag}});
  ASSERT_EQ(grown.status, 200) << grown.body.dump();
  EXPECT_EQ(grown.body["properties"]["diskSizeGB"], 2);
  EXPECT_EQ(engine().Usage(FileOf(DiskPath("d1")))->virtual_bytes, 2 * kGiB);

  EXPECT_EQ(Call("PUT", DiskPath("d1"), EmptyDisk(3), {{"if-match", etag}}).status, 412);
  EXPECT_EQ(Call("PUT", DiskPath("d1"), EmptyDisk(3), {{"if-none-match", "*"}}).status, 412);
  api::ApiResponse shrink = Call("PUT", DiskPath("d1"), EmptyDisk(1));
  EXPECT_EQ(shrink.status, 400);
  EXPECT_EQ(Code(shrink), "InvalidDiskSize");
  EXPECT_EQ(engine().Usage(FileOf(DiskPath("d1")))->virtual_bytes, 2 * kGiB);

  api::ApiResponse tier = Call("PATCH", DiskPath("d1"), {{"sku", {{"name", "premium_lrs"}}}});
  ASSERT_EQ(tier.status, 200) << tier.body.dump();
  EXPECT_EQ(tier.body["sku"]["name"], "Premium_LRS");
  EXPECT_EQ(tier.body["properties"]["diskIOPSReadWrite"], 5000);
  api::ApiResponse patch = Call("PATCH", DiskPath("d1"), {{"properties", {{"diskSizeGB", 3}}}, {"tags", {{"a", "b"}}}});
  ASSERT_EQ(patch.status, 200) << patch.body.dump();
  EXPECT_EQ(patch.body["properties"]["diskSizeGB"], 3);
  EXPECT_EQ(patch.body["tags"]["a"], "b");
  EXPECT_EQ(Call("PATCH", DiskPath("d1"), {{"properties", {{"diskState", "x"}}}}).status, 400);
  EXPECT_EQ(Call("PATCH", DiskPath("nope"), {{"tags", Json::object()}}).status, 404);
}

TEST_F(StorageProviderTest, SnapshotsAreTakenAndImmutable) {
  Create("d1", EmptyDisk(1));
  api::ApiResponse put = Call("PUT", SnapPath("s1"),
                              {{"properties", {{"creationData", {{"sourceResourceId", DiskPath("d1")}}}}}});
  ASSERT_EQ(put.status, 201) << put.body.dump();
  Json op = Finish(put);
  EXPECT_EQ(op["status"], "Succeeded") << op.dump();
  api::ApiResponse s = Call("GET", SnapPath("s1"));
  ASSERT_EQ(s.status, 200);
  EXPECT_EQ(s.body["properties"]["consistency"], "FileSystemConsistent");
  EXPECT_EQ(s.body["properties"]["diskSizeGB"], 1);
  std::string file = FileOf(SnapPath("s1"));
  EXPECT_EQ(Compare(FileOf(DiskPath("d1")), file), 0);

  api::ApiResponse retag = Call("PUT", SnapPath("s1"), {{"tags", {{"k", "v"}}}});
  ASSERT_EQ(retag.status, 200) << retag.body.dump();
  EXPECT_EQ(retag.body["tags"]["k"], "v");
  EXPECT_EQ(FileOf(SnapPath("s1")), file);

  // A disk made from the snapshot.
  Json from_snap = {{"properties",
                     {{"creationData", {{"createOption", "Copy"}, {"sourceResourceId", SnapPath("s1")}}}}}};
  Create("restored", from_snap);
  EXPECT_EQ(Compare(file, FileOf(DiskPath("restored"))), 0);

  EXPECT_EQ(Code(Call("PUT", SnapPath("s2"), {{"properties", Json::object()}})), "MissingParameter");
  EXPECT_EQ(Call("PUT", SnapPath("s2"),
                 {{"properties", {{"creationData", {{"sourceResourceId", SnapPath("s1")}}}}}})
                .status,
            400);

  EXPECT_EQ(Call("DELETE", SnapPath("s1")).status, 200);
  EXPECT_FALSE(PathExists(file));
  EXPECT_EQ(Call("DELETE", SnapPath("s1")).status, 204);
}

TEST_F(StorageProviderTest, DeleteRemovesTheFileAndHonoursIfMatch) {
  Json d = Create("d1", EmptyDisk(1));
  std::string file = FileOf(DiskPath("d1"));
  EXPECT_EQ(Call("DELETE", DiskPath("d1"), nullptr, {{"if-match", "\"stale\""}}).status, 412);
  EXPECT_TRUE(PathExists(file));
  EXPECT_EQ(Call("DELETE", DiskPath("d1"), nullptr, {{"if-match", d["etag"]}}).status, 200);
  EXPECT_FALSE(PathExists(file));
  EXPECT_EQ(Call("GET", DiskPath("d1")).status, 404);
  EXPECT_EQ(Call("DELETE", DiskPath("d1")).status, 204);
}

TEST_F(StorageProviderTest, GroupDeleteRemovesDisksAndSnapshots) {
  Create("d1", EmptyDisk(1));
  ASSERT_EQ(Finish(Call("PUT", SnapPath("s1"),
                        {{"properties", {{"creationData", {{"sourceResourceId", DiskPath("d1")}}}}}}))["status"],
            "Succeeded");
  std::string disk_file = FileOf(DiskPath("d1")), snap_file = FileOf(SnapPath("s1"));
  Json op = Finish(Call("DELETE", kRg));
  EXPECT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_FALSE(PathExists(disk_file));
  EXPECT_FALSE(PathExists(snap_file));
  EXPECT_EQ(Call("GET", DiskPath("d1")).status, 404);
}

TEST_F(StorageProviderTest, InterruptedDiskCreateIsCleanedUpAfterARestart) {
  Json d = Create("d1", EmptyDisk(1));
  // What a daemon killed mid-create leaves: record Creating, a partial file, the op InProgress.
  auto rec = store()->Get(ToLower(DiskPath("d1")));
  ASSERT_TRUE(rec.ok());
  rec->body["properties"]["provisioningState"] = "Creating";
  ASSERT_TRUE(store()->Put(*rec).ok());
  std::string file = rec->internal.value("path", "");
  store::OperationRecord op;
  op.id = "op-disk";
  op.subscription = "sub1";
  op.resource_key = rec->key;
  op.status = "InProgress";
  op.body = {{"resourceId", DiskPath("d1")}, {"status", "InProgress"}};
  op.internal = {{"name", "Stratus.Storage/disks/write"}, {"caller", "admin"}, {"data", Json::object()}};
  ASSERT_TRUE(store()->PutOperation(op).ok());

  Restart(/*resume=*/false);
  ASSERT_TRUE(ops()->RecoverInterrupted().ok());
  ops()->WaitIdle();
  auto after = store()->GetOperation("op-disk");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status, "Failed");
  EXPECT_THAT(after->body["error"]["message"].get<std::string>(), HasSubstr("interrupted"));
  EXPECT_EQ(Call("GET", DiskPath("d1")).status, 404);
  EXPECT_FALSE(PathExists(file));
}

}  // namespace
}  // namespace stratus::storage

namespace stratus::storage {
namespace {

TEST_F(StorageProviderTest, DiskCreateInterruptedBeforeItBeganIsFinishedAfterARestart) {
  // What a daemon killed right after the 201 leaves: the operation InProgress with its spec,
  // no disk record, no file.
  store::OperationRecord op;
  op.id = "op-resume";
  op.subscription = "sub1";
  op.resource_key = ToLower(DiskPath("d2"));
  op.status = "InProgress";
  op.body = {{"resourceId", DiskPath("d2")}, {"status", "InProgress"}};
  op.internal = {{"name", "Stratus.Storage/disks/write"},
                 {"caller", "admin"},
                 {"data",
                  {{"spec",
                    {{"location", "regionA"},
                     {"tags", {{"k", "v"}}},
                     {"sku", "Premium_LRS"},
                     {"sizeGB", 1},
                     {"option", 0},
                     {"source", ""},
                     {"creationData", {{"createOption", "Empty"}}}}}}}};
  ASSERT_TRUE(store()->PutOperation(op).ok());

  Restart(/*resume=*/false);
  ASSERT_TRUE(ops()->RecoverInterrupted().ok());
  ops()->WaitIdle();
  auto after = store()->GetOperation("op-resume");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status, "Succeeded") << after->body.dump();
  auto g = Call("GET", DiskPath("d2"));
  ASSERT_EQ(g.status, 200);
  EXPECT_EQ(g.body["properties"]["provisioningState"], "Succeeded");
  EXPECT_EQ(g.body["sku"]["name"], "Premium_LRS");
  EXPECT_EQ(g.body["tags"]["k"], "v");
  EXPECT_TRUE(PathExists(FileOf(DiskPath("d2"))));
}

}  // namespace
}  // namespace stratus::storage
