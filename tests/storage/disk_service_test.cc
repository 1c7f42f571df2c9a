// DiskService with the real SqliteStore and Qcow2DiskEngine in a temp dir.
#include "storage/disk_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include <filesystem>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"
#include "storage/qcow2_disk_engine.h"
#include "store/sqlite_store.h"

namespace stratus::storage {
namespace {

using ::testing::HasSubstr;

constexpr const char* kVmId =
    "/subscriptions/sub1/resourceGroups/rg/providers/Stratus.Compute/virtualMachines/vm1";

ResourceId Disk(const std::string& name) {
  return ResourceId::Resource("sub1", "rg", "Stratus.Storage", "disks", name);
}
ResourceId Snap(const std::string& name) {
  return ResourceId::Resource("sub1", "rg", "Stratus.Storage", "snapshots", name);
}

// The VMs owning disks, as the test scripts them (compute::VmService in the daemon).
struct FakeOwners final : DiskOwners {
  std::function<Result<bool>(const std::string&,
                             const std::vector<std::pair<std::string, std::string>>&, bool)>
      live_snapshot = [](const std::string&,
                         const std::vector<std::pair<std::string, std::string>>&,
                         bool) -> Result<bool> { return NotFound("no running VM"); };
  std::function<Status(const std::string&, const ResourceId&)> apply_tier =
      [](const std::string&, const ResourceId&) { return Status::Ok(); };
  Result<bool> LiveSnapshot(const std::string& vm,
                            const std::vector<std::pair<std::string, std::string>>& targets,
                            bool quiesce) override {
    return live_snapshot(vm, targets, quiesce);
  }
  bool IsRunning(const std::string&) override { return false; }
  Status ApplyTier(const std::string& vm, const ResourceId& disk) override {
    return apply_tier(vm, disk);
  }
};

class DiskServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    if (!RunProcess({"qemu-img", "--version"}).ok()) GTEST_SKIP() << "qemu-img is not installed";
    auto s = store::SqliteStore::Open(dir_.Path("state.db"), store::SqliteStore::Durability::kNormal);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    api::RegionContext ctx{store_.get(), nullptr, &clock_, "regionA", dir_.path()};
    disks_ = std::make_unique<DiskService>(ctx, &engine_);
    disks_->SetOwners(&owners_);
  }

  DiskSpec EmptySpec(const std::string& name, int64_t gb = 1) {
    DiskSpec s;
    s.id = Disk(name);
    s.location = "regionA";
    s.size_gb = gb;
    s.option = CreateOption::kEmpty;
    s.creation_data = {{"createOption", "Empty"}};
    return s;
  }

  store::Record MustEnsure(const DiskSpec& spec) {
    auto r = disks_->EnsureDisk(spec, "alice");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : store::Record{};
  }

  std::string Path(const store::Record& r) { return r.internal.value("path", ""); }

  void WritePattern(const std::string& path, int pattern) {
    char cmd[64];
    std::snprintf(cmd, sizeof cmd, "write -P 0x%02x 0 1M", pattern);
    ASSERT_TRUE(RunChecked({"qemu-io", "-f", "qcow2", "-c", cmd, path}).ok());
  }

  int Compare(const std::string& a, const std::string& b) {
    auto r = RunProcess({"qemu-img", "compare", "-q", a, b});
    return r.ok() ? r->exit_code : -1;
  }

  size_t FilesIn(const std::string& sub) {
    std::error_code ec;
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(dir_.Path(sub), ec)) {
      (void)e;
      ++n;
    }
    return n;
  }

  test::ScopedTempDir dir_{"disks"};
  FakeClock clock_{1795341600000};
  Qcow2DiskEngine engine_;
  std::unique_ptr<store::Store> store_;
  FakeOwners owners_;
  std::unique_ptr<DiskService> disks_;
};

TEST_F(DiskServiceTest, EnsureDiskCreatesRecordAndFile) {
  store::Record r = MustEnsure(EmptySpec("d1", 2));
  EXPECT_EQ(r.key, Disk("d1").Key());
  EXPECT_EQ(r.type, "stratus.storage/disks");
  const Json& p = r.body["properties"];
  EXPECT_EQ(p["provisioningState"], "Succeeded");
  EXPECT_EQ(p["diskSizeGB"], 2);
  EXPECT_EQ(p["diskSizeBytes"], 2 * kGiB);
  EXPECT_EQ(p["diskState"], "Unattached");
  EXPECT_EQ(p["creationData"]["createOption"], "Empty");
  EXPECT_EQ(p["timeCreated"], "2026-11-22T10:00:00.000Z");
  EXPECT_EQ(r.body["sku"]["name"], "Standard_LRS");
  EXPECT_EQ(r.body["systemData"]["createdBy"], "alice");
  std::string uid = p["uniqueId"];
  EXPECT_EQ(Path(r), dir_.Path("disks/" + uid + ".qcow2"));
  EXPECT_TRUE(PathExists(Path(r)));
  auto stored = store_->Get(Disk("d1").Key());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->body["properties"]["provisioningState"], "Succeeded");
}

TEST_F(DiskServiceTest, EnsureDiskIsIdempotent) {
  store::Record first = MustEnsure(EmptySpec("d1"));
  store::Record second = MustEnsure(EmptySpec("d1"));
  EXPECT_EQ(second.body["properties"]["uniqueId"], first.body["properties"]["uniqueId"]);
  EXPECT_EQ(Path(second), Path(first));
  EXPECT_EQ(second.etag, first.etag);  // nothing was rewritten
  EXPECT_EQ(FilesIn("disks"), 1u);
}

TEST_F(DiskServiceTest, EnsureDiskFinishesAnInterruptedCreate) {
  store::Record first = MustEnsure(EmptySpec("d1"));
  // As a crash mid-create leaves it: record Creating, no file.
  ASSERT_TRUE(RemoveFile(Path(first)).ok());
  first.body["properties"]["provisioningState"] = "Creating";
  ASSERT_TRUE(store_->Put(first).ok());
  store::Record again = MustEnsure(EmptySpec("d1"));
  EXPECT_EQ(again.body["properties"]["provisioningState"], "Succeeded");
  EXPECT_EQ(Path(again), Path(first));
  EXPECT_TRUE(PathExists(Path(again)));
}

TEST_F(DiskServiceTest, EnsureDiskFromImageCopiesTheImage) {
  std::string image = dir_.Path("image.qcow2");
  ASSERT_TRUE(engine_.CreateEmpty(image, 64ull << 20).ok());
  WritePattern(image, 0x5a);
  DiskSpec spec = EmptySpec("os", 1);
  spec.option = CreateOption::kFromImage;
  spec.source_path = image;
  store::Record r = MustEnsure(spec);
  EXPECT_EQ(r.body["properties"]["diskSizeGB"], 1);
  EXPECT_EQ(Compare(image, Path(r)), 0);
}

TEST_F(DiskServiceTest, FailedCreateMarksTheRecordFailed) {
  DiskSpec spec = EmptySpec("d1");
  spec.option = CreateOption::kFromImage;
  spec.source_path = dir_.Path("no-such-image.qcow2");
  auto r = disks_->EnsureDisk(spec, "alice");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  auto stored = store_->Get(Disk("d1").Key());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->body["properties"]["provisioningState"], "Failed");
}

TEST_F(DiskServiceTest, ValidateSize) {
  EXPECT_TRUE(disks_->ValidateSize(1).ok());
  for (int64_t bad : {int64_t{0}, int64_t{-1}, kMaxDiskSizeGB + 1}) {
    Status st = disks_->ValidateSize(bad);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(st.arm_code(), "InvalidDiskSize") << bad;
    EXPECT_EQ(st.target(), "diskSizeGB");
  }
  auto free = FreeBytes(dir_.path());
  ASSERT_TRUE(free.ok());
  int64_t too_big = static_cast<int64_t>(*free / kGiB) + 2;
  if (too_big > kMaxDiskSizeGB) GTEST_SKIP() << "the test file system has more than 32 TiB free";
  Status st = disks_->ValidateSize(too_big);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.arm_code(), "DiskTooLarge");
  EXPECT_THAT(st.message(), HasSubstr(std::to_string(too_big) + " GiB"));
  EXPECT_TRUE(disks_->ValidateSize(std::max<int64_t>(1, too_big - 20)).ok());
}

TEST_F(DiskServiceTest, AttachmentIsRecorded) {
  MustEnsure(EmptySpec("d1"));
  ASSERT_TRUE(disks_->SetAttachment(Disk("d1"), kVmId, 0).ok());
  auto r = store_->Get(Disk("d1").Key());
  EXPECT_EQ(r->body["managedBy"], kVmId);
  EXPECT_EQ(r->body["properties"]["diskState"], "Attached");
  ASSERT_TRUE(disks_->SetAttachment(Disk("d1"), "").ok());
  r = store_->Get(Disk("d1").Key());
  EXPECT_FALSE(r->body.contains("managedBy"));
  EXPECT_EQ(r->body["properties"]["diskState"], "Unattached");
  EXPECT_EQ(disks_->SetAttachment(Disk("nope"), kVmId).code(), StatusCode::kNotFound);
}

TEST_F(DiskServiceTest, DeleteOfAnAttachedDiskIsAConflict) {
  store::Record r = MustEnsure(EmptySpec("d1"));
  ASSERT_TRUE(disks_->SetAttachment(Disk("d1"), kVmId).ok());
  Status st = disks_->DeleteDisk(Disk("d1"));
  EXPECT_EQ(st.code(), StatusCode::kConflict);
  EXPECT_EQ(st.http_status(), 409);
  EXPECT_EQ(st.arm_code(), "DiskAttached");
  EXPECT_THAT(st.message(), HasSubstr(kVmId));
  EXPECT_TRUE(PathExists(Path(r)));
  EXPECT_TRUE(store_->Get(Disk("d1").Key()).ok());
  // The VM's own delete forces it.
  EXPECT_TRUE(disks_->DeleteDisk(Disk("d1"), /*force=*/true).ok());
  EXPECT_FALSE(PathExists(Path(r)));
  EXPECT_FALSE(store_->Get(Disk("d1").Key()).ok());
}

TEST_F(DiskServiceTest, DeleteOfAnUnattachedDisk) {
  store::Record r = MustEnsure(EmptySpec("d1"));
  auto path = disks_->PathOf(Disk("d1"));
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path, Path(r));
  EXPECT_TRUE(disks_->DeleteDisk(Disk("d1")).ok());
  EXPECT_FALSE(PathExists(Path(r)));
  EXPECT_EQ(disks_->DeleteDisk(Disk("d1")).code(), StatusCode::kNotFound);
  EXPECT_EQ(disks_->PathOf(Disk("d1")).status().code(), StatusCode::kNotFound);
}

TEST_F(DiskServiceTest, SnapshotOfAnUnattachedDiskIsAnOfflineCopy) {
  store::Record d = MustEnsure(EmptySpec("d1"));
  WritePattern(Path(d), 0x5a);
  int hook_calls = 0;
  owners_.live_snapshot = [&](const std::string&, const std::vector<std::pair<std::string, std::string>>&,
                              bool) -> Result<bool> {
    ++hook_calls;
    return true;
  };
  auto s = disks_->EnsureSnapshot(Snap("s1"), "regionA", {{"k", "v"}}, Disk("d1"), "bob");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(hook_calls, 0);  // no VM holds the disk
  const Json& p = s->body["properties"];
  EXPECT_EQ(p["provisioningState"], "Succeeded");
  EXPECT_EQ(p["consistency"], "FileSystemConsistent");
  EXPECT_EQ(p["creationData"]["sourceResourceId"], Disk("d1").ToString());
  EXPECT_EQ(p["diskSizeGB"], 1);
  EXPECT_EQ(s->body["tags"]["k"], "v");
  std::string snap_path = s->internal.value("path", "");
  EXPECT_EQ(snap_path.rfind(dir_.Path("snapshots/"), 0), 0u) << snap_path;
  EXPECT_EQ(Compare(Path(d), snap_path), 0);
  // Independent of the disk afterwards.
  WritePattern(Path(d), 0x11);
  EXPECT_EQ(Compare(Path(d), snap_path), 1);

  // Idempotent.
  auto again = disks_->EnsureSnapshot(Snap("s1"), "regionA", Json::object(), Disk("d1"), "bob");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->internal.value("path", ""), snap_path);
  EXPECT_EQ(FilesIn("snapshots"), 1u);

  EXPECT_TRUE(disks_->DeleteSnapshot(Snap("s1")).ok());
  EXPECT_FALSE(PathExists(snap_path));
  EXPECT_FALSE(store_->Get(Snap("s1").Key()).ok());
  EXPECT_EQ(disks_->DeleteSnapshot(Snap("s1")).code(), StatusCode::kNotFound);
}

TEST_F(DiskServiceTest, SnapshotOfADiskOfAStoppedVmFallsBackToAnOfflineCopy) {
  store::Record d = MustEnsure(EmptySpec("d1"));
  ASSERT_TRUE(disks_->SetAttachment(Disk("d1"), kVmId).ok());
  std::vector<std::string> asked;
  owners_.live_snapshot = [&](const std::string& vm, const std::vector<std::pair<std::string, std::string>>&,
                              bool) -> Result<bool> {
    asked.push_back(vm);
    return NotFound("not running");
  };
  auto s = disks_->EnsureSnapshot(Snap("s1"), "regionA", Json::object(), Disk("d1"), "bob");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(asked, std::vector<std::string>{kVmId});
  EXPECT_EQ(s->body["properties"]["consistency"], "FileSystemConsistent");
  EXPECT_TRUE(PathExists(s->internal.value("path", "")));
}

TEST_F(DiskServiceTest, SnapshotOfADiskOfARunningVmGoesThroughTheHook) {
  store::Record d = MustEnsure(EmptySpec("d1"));
  ASSERT_TRUE(disks_->SetAttachment(Disk("d1"), kVmId).ok());
  bool frozen = false;
  owners_.live_snapshot = [&](const std::string& vm,
                              const std::vector<std::pair<std::string, std::string>>& targets,
                              bool quiesce) -> Result<bool> {
    EXPECT_TRUE(quiesce);
    EXPECT_EQ(targets.size(), 1u);
    EXPECT_EQ(targets[0].first, Disk("d1").Key());
    RETURN_IF_ERROR(engine_.CreateFromSource(targets[0].second, Path(d), 0, ""));
    return frozen;
  };
  auto crash = disks_->EnsureSnapshot(Snap("s1"), "regionA", Json::object(), Disk("d1"), "bob");
  ASSERT_TRUE(crash.ok()) << crash.status().ToString();
  EXPECT_EQ(crash->body["properties"]["consistency"], "CrashConsistent");
  frozen = true;
  auto fs = disks_->EnsureSnapshot(Snap("s2"), "regionA", Json::object(), Disk("d1"), "bob");
  ASSERT_TRUE(fs.ok());
  EXPECT_EQ(fs->body["properties"]["consistency"], "FileSystemConsistent");

  owners_.live_snapshot = [](const std::string&, const std::vector<std::pair<std::string, std::string>>&,
                             bool) -> Result<bool> { return Internal("backup job failed"); };
  auto failed = disks_->EnsureSnapshot(Snap("s3"), "regionA", Json::object(), Disk("d1"), "bob");
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr("backup job failed"));
}

TEST_F(DiskServiceTest, UpdateGrowsAndChangesTier) {
  store::Record d = MustEnsure(EmptySpec("d1", 1));
  ASSERT_TRUE(disks_->SetAttachment(Disk("d1"), kVmId).ok());
  std::vector<std::string> applied;
  owners_.apply_tier = [&](const std::string& vm, const ResourceId& disk) {
    applied.push_back(vm + " " + disk.name());
    return Status::Ok();
  };
  clock_.AdvanceMs(5000);
  auto r = disks_->Update(Disk("d1"), 2, "Premium_LRS", "carol");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body["properties"]["diskSizeGB"], 2);
  EXPECT_EQ(r->body["properties"]["diskSizeBytes"], 2 * kGiB);
  EXPECT_EQ(r->body["sku"]["name"], "Premium_LRS");
  EXPECT_EQ(r->body["systemData"]["lastModifiedBy"], "carol");
  EXPECT_EQ(engine_.Usage(Path(d))->virtual_bytes, 2 * kGiB);
  EXPECT_EQ(applied, std::vector<std::string>{std::string(kVmId) + " d1"});
  // Size only: no tier re-application.
  ASSERT_TRUE(disks_->Update(Disk("d1"), 3, "", "carol").ok());
  EXPECT_EQ(applied.size(), 1u);
}

TEST_F(DiskServiceTest, DecorateDiskAddsTierCapsAndAllocation) {
  store::Record d = MustEnsure(EmptySpec("d1"));
  Json body = d.body;
  body["sku"]["name"] = "Premium_LRS";
  disks_->DecorateDisk(body, Path(d));
  EXPECT_EQ(body["properties"]["diskIOPSReadWrite"], 5000);
  EXPECT_EQ(body["properties"]["diskMBpsReadWrite"], 200);
  EXPECT_EQ(body["sku"]["tier"], "Premium");
  EXPECT_GT(body["properties"]["allocatedBytes"].get<uint64_t>(), 0u);
}

TEST_F(DiskServiceTest, ResolveCopySource) {
  store::Record d = MustEnsure(EmptySpec("d1", 1));
  auto src = disks_->ResolveCopySource(Disk("d1").ToString());
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  EXPECT_EQ(src->first, Path(d));
  EXPECT_EQ(src->second, kGiB);

  EXPECT_EQ(disks_->ResolveCopySource(Disk("nope").ToString()).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(disks_->ResolveCopySource(kVmId).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(disks_->ResolveCopySource("not an id").status().code(), StatusCode::kInvalidArgument);

  d.body["properties"]["provisioningState"] = "Creating";
  ASSERT_TRUE(store_->Put(d).ok());
  EXPECT_EQ(disks_->ResolveCopySource(Disk("d1").ToString()).status().code(),
            StatusCode::kConflict);
}

}  // namespace
}  // namespace stratus::storage
