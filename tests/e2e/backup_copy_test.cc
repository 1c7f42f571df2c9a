// Vault redundancy "Copy" end to end: bad copy locations are refused with nothing created; a
// backup of a running VM into a vault with a copy is followed by a Copy job that leaves the copy
// with the same vault.json, manifests and chunk objects (byte for byte) and copyStatus UpToDate;
// switching to Local stops copying and leaves the copy's files.
#include <dirent.h>

#include <filesystem>
#include <set>
#include <thread>

#include "core/fs.h"
#include "harness.h"

namespace stratus::e2e {
namespace {

constexpr const char* kCopyRg = "rg-copy";

// Relative paths of the regular files below dir/sub.
std::set<std::string> FilesBelow(const std::string& dir, const std::string& sub) {
  std::set<std::string> out;
  std::error_code ec;
  if (!std::filesystem::exists(dir + "/" + sub, ec)) return out;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir + "/" + sub, ec))
    if (e.is_regular_file()) out.insert(std::filesystem::relative(e.path(), dir).string());
  return out;
}

class BackupCopyTest : public DaemonTest {
 protected:
  BackupCopyTest() : DaemonTest(DaemonOptions("regionCp").Group(kCopyRg)) {}
  void SetUp() override {
    DaemonTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    copy_dir_ = d().root() + "/disk2/v1";  // in the test root: Cleanup removes it
    ASSERT_TRUE(MakeDirs(d().root() + "/disk2", 0700).ok());
  }
  std::string copy_dir_;
};

TEST_F(BackupCopyTest, BackupIsCopiedToTheSecondVault) {
  Daemon& d = this->d();
  // ---- bad locations: 400 naming the field, nothing created
  for (const std::string& bad : {std::string("relative/dir"), d.data_dir() + "/vaults/x",
                                 d.root() + "/no-such-disk/v1", d.root() + "/disk2/../disk2/v1"}) {
    auto r =
        d.Put(VaultPath("v1"), {{"location", d.region()},
                                {"properties", {{"redundancy", "Copy"}, {"copyLocation", bad}}}});
    EXPECT_EQ(r.status, 400) << bad << ": " << r.Describe();
    EXPECT_NE(r.body.find("copyLocation"), std::string::npos) << r.body;
  }
  EXPECT_EQ(
      d.Put(VaultPath("v1"), {{"location", d.region()}, {"properties", {{"redundancy", "Geo"}}}})
          .status,
      400);
  EXPECT_EQ(d.Get(VaultPath("v1")).status, 404) << "a refused vault must not exist";

  auto v = d.Put(VaultPath("v1"),
                 {{"location", d.region()},
                  {"properties", {{"redundancy", "Copy"}, {"copyLocation", copy_dir_}}}});
  ASSERT_EQ(v.status, 201) << v.Describe();
  EXPECT_EQ(v.json["properties"].value("redundancy", ""), "Copy");

  // ---- a running VM, protected, backed up
  TestVm vm;
  ASSERT_NO_FATAL_FAILURE(CreateVm("src", TinyVm().ComputerName("src").OsDisk("src-os", 1), &vm));
  auto pol = d.Put(VaultPath("v1") + "/backupPolicies/daily", DailyPolicyBody());
  ASSERT_EQ(pol.status, 201) << pol.Describe();
  const std::string item_path = VaultPath("v1") + "/protectedItems/src";
  auto item = d.Put(item_path, ProtectedItemBody(vm.id, pol.json.value("id", "")));
  ASSERT_EQ(item.status, 201) << item.Describe();
  auto b = d.Post(item_path + "/backup");
  ASSERT_EQ(b.status, 202) << b.Describe();
  Json job = FinishJob(b);
  ASSERT_EQ(job["properties"].value("status", ""), "Completed") << job.dump();

  // ---- the Copy job that follows
  Json status;
  for (int i = 0; i < 240; ++i) {
    status = d.Get(VaultPath("v1")).json["properties"].value("copyStatus", Json::object());
    if (status.value("state", "") == "UpToDate" || status.value("state", "") == "Failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_EQ(status.value("state", ""), "UpToDate") << status.dump() << "\n" << d.LogTail();
  EXPECT_EQ(status.value("pointsBehind", -1), 0) << status.dump();
  EXPECT_FALSE(status.value("lastCopyTime", "").empty()) << status.dump();
  auto jobs = d.Get(VaultPath("v1") + "/backupJobs");
  bool copy_job = false;
  for (auto& j : jobs.json["value"])
    if (j["properties"].value("operation", "") == "Copy" &&
        j["properties"].value("status", "") == "Completed" &&
        j["properties"]["copy"].value("pointsCopied", 0) >= 1)
      copy_job = true;
  EXPECT_TRUE(copy_job) << jobs.body;

  // The copy holds the same objects as the vault.
  std::string primary;
  for (auto& e : std::filesystem::directory_iterator(d.data_dir() + "/vaults"))
    primary = e.path().string();
  ASSERT_FALSE(primary.empty());
  EXPECT_EQ(*ReadFile(primary + "/vault.json"), *ReadFile(copy_dir_ + "/vault.json"));
  auto points = FilesBelow(primary, "points");
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(FilesBelow(copy_dir_, "points"), points);
  auto chunks = FilesBelow(primary, "chunks");
  EXPECT_FALSE(chunks.empty());
  EXPECT_EQ(FilesBelow(copy_dir_, "chunks"), chunks);
  for (const auto& c : chunks) {
    EXPECT_EQ(*ReadFile(primary + "/" + c), *ReadFile(copy_dir_ + "/" + c)) << c;
    break;  // one is enough for "byte for byte"; the set comparison covers the rest
  }
  auto now = d.Post(VaultPath("v1") + "/copy");
  ASSERT_EQ(now.status, 202) << now.Describe();
  EXPECT_SUCCEEDED(d.WaitFor(now, Seconds(120)));

  // ---- back to Local: copying stops, the copy's files stay
  auto local =
      d.Put(VaultPath("v1"), {{"location", d.region()}, {"properties", {{"redundancy", "Local"}}}});
  ASSERT_EQ(local.status, 200) << local.Describe();
  EXPECT_FALSE(local.json["properties"].contains("copyStatus")) << local.body;
  EXPECT_TRUE(PathExists(copy_dir_ + "/vault.json"));
  EXPECT_EQ(d.Post(VaultPath("v1") + "/copy").status, 409);
}

}  // namespace
}  // namespace stratus::e2e
