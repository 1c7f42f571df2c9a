// Backup end to end on a real stratusd + libvirt/QEMU: a running VM whose guest writes between
// backups is protected by a policy; a full backup, then incrementals (libvirt checkpoints and
// pull-mode NBD: only changed blocks are read), one of them while another is running (queued),
// one of the stopped VM (qcow2 bitmap); restore as a new VM that boots and holds the data byte for
// byte; verify; a corrupted chunk is named by verify and refused by restore; bad input.
#include "harness.h"

namespace stratus::e2e {
namespace {

constexpr const char* kBackupRg = "rg-backup";

class BackupTest : public DaemonTest {
 protected:
  BackupTest() : DaemonTest(DaemonOptions("regionBk").Group(kBackupRg)) {}

  // VM `name` (1 GiB OS disk, 1 GiB data disk at LUN 0), booted, with an ext4 file system on its
  // data disk mounted at /mnt/d in the guest.
  void CreateVmWithDataFs(const std::string& name, TestVm* vm) {
    ASSERT_NO_FATAL_FAILURE(CreateVm(
        name, TinyVm().ComputerName(name).OsDisk(name + "-os", 1).DataDisk(0, name + "-data"), vm));
    std::string dev;
    ASSERT_NO_FATAL_FAILURE(WaitGuestDisk(*vm, "lun0", &dev));
    Guest(vm->domain, "set -e; mkfs.ext4 -q -F /dev/" + dev + "; mkdir -p /mnt/d; mount /dev/" +
                          dev + " /mnt/d");
  }
};

TEST_F(BackupTest, IncrementalForeverChainAndRestoreAsNewVm) {
  Daemon& d = this->d();
  TestVm vm;
  ASSERT_NO_FATAL_FAILURE(CreateVmWithDataFs("src", &vm));
  Guest(vm.domain,
        "set -e; echo gen1 > /mnt/d/gen.txt; "
        "dd if=/dev/urandom of=/mnt/d/blob bs=1M count=24 2>/dev/null; sync");

  // ---- vault, policy, protection (and their bad input)
  auto v = d.Put(VaultPath("v1"), {{"location", d.region()}});
  ASSERT_EQ(v.status, 201) << v.Describe();
  EXPECT_EQ(v.json["properties"]["encryption"].value("keySource", ""), "Platform");
  const std::string pol_path = VaultPath("v1") + "/backupPolicies/daily";
  {
    auto bad = d.Put(pol_path, DailyPolicyBody(0));
    EXPECT_EQ(bad.status, 400) << bad.Describe();
    auto unknown = d.Put(pol_path, {{"properties",
                                     {{"schedule", {{"frequency", "Daily"}, {"times", {"02:00"}}}},
                                      {"retention", {{"daily", {{"count", 7}}}}},
                                      {"colour", "blue"}}}});
    EXPECT_EQ(unknown.status, 400) << unknown.Describe();
    auto impossible =
        d.Put(pol_path, {{"properties",
                          {{"schedule", {{"frequency", "Hourly"}, {"intervalHours", 5}}},
                           {"retention", {{"daily", {{"count", 7}}}}}}}});
    EXPECT_EQ(impossible.status, 400) << impossible.Describe();
    EXPECT_EQ(d.Get(pol_path).status, 404) << "a refused policy must not exist";
  }
  auto pol = d.Put(pol_path, DailyPolicyBody(7, "FileSystemConsistent"));
  ASSERT_EQ(pol.status, 201) << pol.Describe();
  const std::string item_path = VaultPath("v1") + "/protectedItems/src";
  auto item = d.Put(item_path, ProtectedItemBody(vm.id, pol.json.value("id", "")));
  ASSERT_EQ(item.status, 201) << item.Describe();
  EXPECT_FALSE(item.json["properties"].value("nextScheduledBackupTime", "").empty()) << item.body;
  {
    auto twice = d.Put(VaultPath("v1") + "/protectedItems/again",
                       ProtectedItemBody(vm.id, pol.json.value("id", "")));
    EXPECT_EQ(twice.status, 409) << twice.Describe();
    EXPECT_EQ(twice.ErrorCode(), "AlreadyProtected");
  }

  // ---- full backup of the running VM
  Json full = FinishJob(d.Post(item_path + "/backup"));
  ASSERT_EQ(full["properties"].value("status", ""), "Completed") << full.dump();
  EXPECT_EQ(full["properties"].value("backupType", ""), "Full");
  EXPECT_EQ(full["properties"].value("consistency", ""), "FileSystemConsistent") << full.dump();
  EXPECT_GT(full["properties"].value("bytesAdded", uint64_t{0}), 20u << 20) << full.dump();

  // ---- the guest writes; two backups asked at once: the second is queued, both succeed
  Guest(vm.domain,
        "set -e; echo gen2 > /mnt/d/gen.txt; "
        "dd if=/dev/urandom of=/mnt/d/blob bs=1M count=2 seek=5 conv=notrunc 2>/dev/null; sync");
  auto b1 = d.Post(item_path + "/backup");
  auto b2 = d.Post(item_path + "/backup");
  ASSERT_EQ(b1.status, 202) << b1.Describe();
  ASSERT_EQ(b2.status, 202) << "a second backup while one runs is queued, not refused: "
                            << b2.Describe();
  Json inc1 = FinishJob(b1), inc2 = FinishJob(b2);
  for (const Json* j : {&inc1, &inc2}) {
    ASSERT_EQ((*j)["properties"].value("status", ""), "Completed") << j->dump();
    EXPECT_EQ((*j)["properties"].value("backupType", ""), "Incremental") << j->dump();
    // Only changed blocks are read: far less than the 2 GiB of disks.
    EXPECT_LT((*j)["properties"].value("bytesRead", uint64_t{1} << 40), 64u << 20) << j->dump();
  }
  const std::string blob_sum = Guest(vm.domain, "sha256sum /mnt/d/blob | cut -d' ' -f1");
  ASSERT_EQ(blob_sum.size(), 65u) << blob_sum;

  // ---- restore the newest point as a new VM: it boots and holds the data
  const std::vector<Json> pts = RecoveryPoints(item_path);
  ASSERT_EQ(pts.size(), 3u) << Json(pts).dump();
  const Json& newest = pts.front();
  EXPECT_EQ(newest["properties"].value("recoveryPointType", ""), "Incremental");
  const std::string newest_path = newest.value("id", "");
  {
    auto exists =
        d.Post(newest_path + "/restore", {{"restoreType", "AlternateLocation"}, {"vmName", "src"}});
    EXPECT_EQ(exists.status, 409) << "restoring onto an existing name: " << exists.Describe();
    auto bad = d.Post(newest_path + "/restore", {{"restoreType", "Sideways"}});
    EXPECT_EQ(bad.status, 400) << bad.Describe();
  }
  Json restore = FinishJob(
      d.Post(newest_path + "/restore", {{"restoreType", "AlternateLocation"}, {"vmName", "copy"}}));
  ASSERT_EQ(restore["properties"].value("status", ""), "Completed") << restore.dump();
  TestVm copy;
  ASSERT_NO_FATAL_FAILURE(GetVm("copy", &copy));
  std::string copy_dev;
  ASSERT_NO_FATAL_FAILURE(
      WaitGuestDisk(copy, "lun0", &copy_dev, "STRATUS-GUEST-READY hostname=copy"));
  EXPECT_EQ(Guest(copy.domain, "mkdir -p /mnt/r; mount -o ro /dev/" + copy_dev +
                                   " /mnt/r && cat /mnt/r/gen.txt"),
            "gen2\n");
  EXPECT_EQ(Guest(copy.domain, "sha256sum /mnt/r/blob | cut -d' ' -f1"), blob_sum)
      << "the restored data disk differs from the source";

  // ---- single files out of the point, without booting anything
  {
    auto ls = d.Post(newest_path + "/listFiles", {{"disk", "lun0"}, {"path", "/"}});
    ASSERT_EQ(ls.status, 200) << ls.Describe();
    bool found = false;
    for (auto& e : ls.json["entries"])
      if (e.value("name", "") == "blob") {
        found = true;
        EXPECT_EQ(e.value("size", 0), 24 << 20);
        EXPECT_EQ(e.value("type", ""), "File");
      }
    EXPECT_TRUE(found) << ls.body;
    auto ex = d.Post(newest_path + "/extractFiles", {{"disk", "lun0"}, {"paths", {"/gen.txt"}}});
    ASSERT_EQ(ex.status, 200) << ex.Describe();
    EXPECT_EQ(ex.json["files"][0].value("contentBase64", ""), "Z2VuMgo=") << ex.body;  // "gen2\n"
    auto missing = d.Post(newest_path + "/extractFiles", {{"disk", "lun0"}, {"paths", {"/nope"}}});
    EXPECT_EQ(missing.status, 404) << missing.Describe();
  }

  // ---- a stopped VM: incremental from the qcow2 bitmap of the last checkpoint
  ASSERT_SUCCEEDED(ActAndWait("POST", vm.path + "/powerOff", Json::object(), Seconds(120)));
  Json stopped = FinishJob(d.Post(item_path + "/backup"));
  ASSERT_EQ(stopped["properties"].value("status", ""), "Completed") << stopped.dump();
  EXPECT_EQ(stopped["properties"].value("backupType", ""), "Incremental") << stopped.dump();
  EXPECT_EQ(stopped["properties"].value("consistency", ""), "CrashConsistent");
  EXPECT_FALSE(stopped["properties"].value("consistencyReason", "").empty());

  // ---- restore in place (OriginalLocation) of the first, full point: the VM keeps its id and
  // comes back with gen1; the next backup cannot be incremental (history replaced) and says why
  {
    const Json& oldest = pts.back();
    Json r = FinishJob(
        d.Post(oldest.value("id", "") + "/restore", {{"restoreType", "OriginalLocation"}}));
    ASSERT_EQ(r["properties"].value("status", ""), "Completed") << r.dump();
    ASSERT_SUCCEEDED(ActAndWait("POST", vm.path + "/start", Json::object(), Seconds(120)));
    std::string dev2;
    ASSERT_NO_FATAL_FAILURE(WaitGuestDisk(vm, "lun0", &dev2, "STRATUS-GUEST-READY", 2));
    EXPECT_EQ(Guest(vm.domain,
                    "mkdir -p /mnt/o; mount -o ro /dev/" + dev2 + " /mnt/o && cat /mnt/o/gen.txt"),
              "gen1\n");
    auto g = d.Get(vm.path);
    EXPECT_EQ(g.json.value("id", ""), vm.id) << "the VM keeps its identity";
    Json after = FinishJob(d.Post(item_path + "/backup"));
    ASSERT_EQ(after["properties"].value("status", ""), "Completed") << after.dump();
    EXPECT_EQ(after["properties"].value("backupType", ""), "FullDedup") << after.dump();
    EXPECT_FALSE(after["properties"].value("fallbackReason", "").empty()) << after.dump();
  }

  // ---- verify: clean; then a corrupted chunk is named and refused
  {
    auto ver = d.Post(VaultPath("v1") + "/verify");
    ASSERT_EQ(ver.status, 202) << ver.Describe();
    Json op = d.WaitFor(ver);
    ASSERT_SUCCEEDED(op);
    EXPECT_GT(op["properties"].value("chunksChecked", 0), 0) << op.dump();
  }
  const std::string chunk = LargestFile(VaultChunkFiles(d.data_dir()));
  ASSERT_FALSE(chunk.empty());
  ASSERT_TRUE(FlipByte(chunk, 100)) << chunk;
  auto ver = d.Post(VaultPath("v1") + "/verify");
  Json vop = d.WaitFor(ver);
  EXPECT_EQ(vop.value("status", ""), "Failed") << vop.dump();
  ASSERT_FALSE(vop["properties"]["problems"].empty()) << vop.dump();
  const Json problem = vop["properties"]["problems"][0];
  EXPECT_FALSE(problem.value("recoveryPointId", "").empty()) << problem.dump();
  EXPECT_FALSE(problem.value("disk", "").empty()) << problem.dump();
  {
    Json r = FinishJob(
        d.Post(item_path + "/recoveryPoints/" + problem.value("recoveryPointId", "") + "/restore",
               {{"restoreType", "RestoreDisks"},
                {"diskNamePrefix", "bad"},
                {"disks", {problem.value("disk", "")}}}));
    EXPECT_EQ(r["properties"].value("status", ""), "Failed") << "restore must refuse: " << r.dump();
    EXPECT_EQ(d.Get(d.DiskPath(kBackupRg, "bad-" + problem.value("disk", ""))).status, 404);
  }

  // ---- jobs history; stop protection with data; the vault can go
  auto jobs = d.Get(VaultPath("v1") + "/backupJobs");
  ASSERT_EQ(jobs.status, 200);
  EXPECT_GE(jobs.json["value"].size(), 8u) << jobs.body;
  EXPECT_EQ(d.Delete(VaultPath("v1")).status, 409) << "a vault with protected items stays";
  EXPECT_EQ(d.Delete(item_path + "?deleteBackupData=true").status, 200);
  EXPECT_EQ(d.Delete(VaultPath("v1")).status, 200);
  EXPECT_EQ(d.Get(VaultPath("v1")).status, 404);
}

// Application-consistent points: the guest's hooks in /etc/stratus/backup.d run `pre` before
// the instant (their writes are in the point) and `post` after it; a failing `pre` gives a
// file-system-consistent point with the hook named, and `post` still runs.
TEST_F(BackupTest, ApplicationConsistentThroughGuestHooks) {
  Daemon& d = this->d();
  TestVm vm;
  ASSERT_NO_FATAL_FAILURE(CreateVmWithDataFs("app", &vm));
  // The "application" keeps its state in memory until its pre hook flushes it to disk.
  Guest(vm.domain,
        "set -e; mkdir -p /etc/stratus/backup.d; "
        "printf '%s\\n' '#!/bin/sh' "
        "'case \"$1\" in pre) echo quiesced > /mnt/d/app-state; sync;; "
        "post) echo \"post after $(cat /mnt/d/app-state)\" >> /run/hook.log;; esac' "
        "> /etc/stratus/backup.d/10-app; chmod +x /etc/stratus/backup.d/10-app");

  auto v = d.Put(VaultPath("v1"), {{"location", d.region()}});
  ASSERT_EQ(v.status, 201) << v.Describe();
  auto pol =
      d.Put(VaultPath("v1") + "/backupPolicies/app", DailyPolicyBody(7, "ApplicationConsistent"));
  ASSERT_EQ(pol.status, 201) << pol.Describe();
  const std::string item_path = VaultPath("v1") + "/protectedItems/app";
  auto item = d.Put(item_path, ProtectedItemBody(vm.id, pol.json.value("id", "")));
  ASSERT_EQ(item.status, 201) << item.Describe();

  Json ok = FinishJob(d.Post(item_path + "/backup"));
  ASSERT_EQ(ok["properties"].value("status", ""), "Completed") << ok.dump();
  EXPECT_EQ(ok["properties"].value("consistency", ""), "ApplicationConsistent") << ok.dump();
  ASSERT_EQ(ok["properties"]["guestHooks"].size(), 2u) << ok.dump();
  EXPECT_EQ(ok["properties"]["guestHooks"][0].value("phase", ""), "pre");
  EXPECT_EQ(ok["properties"]["guestHooks"][0].value("succeeded", false), true) << ok.dump();
  EXPECT_EQ(ok["properties"]["guestHooks"][1].value("phase", ""), "post");
  EXPECT_EQ(Guest(vm.domain, "cat /run/hook.log"), "post after quiesced\n");
  // What the pre hook flushed is in the point.
  const std::string point = ok["properties"].value("recoveryPointId", "");
  auto ex = d.Post(point + "/extractFiles", {{"disk", "lun0"}, {"paths", {"/app-state"}}});
  ASSERT_EQ(ex.status, 200) << ex.Describe();
  EXPECT_EQ(ex.json["files"][0].value("contentBase64", ""), "cXVpZXNjZWQK") << ex.body;  // quiesced

  // A pre hook that fails: the point is file-system consistent, the reason names the hook,
  // and every post hook still runs.
  Guest(vm.domain,
        "set -e; printf '%s\\n' '#!/bin/sh' '[ \"$1\" = pre ] && { echo cannot flush >&2; "
        "exit 3; }; echo post-ran >> /run/hook.log' > /etc/stratus/backup.d/20-broken; "
        "chmod +x /etc/stratus/backup.d/20-broken");
  Json bad = FinishJob(d.Post(item_path + "/backup"));
  ASSERT_EQ(bad["properties"].value("status", ""), "Completed") << bad.dump();
  EXPECT_EQ(bad["properties"].value("consistency", ""), "FileSystemConsistent") << bad.dump();
  std::string why = bad["properties"].value("consistencyReason", "");
  EXPECT_NE(why.find("20-broken exited with 3"), std::string::npos) << why;
  EXPECT_NE(why.find("cannot flush"), std::string::npos) << why;
  EXPECT_EQ(Guest(vm.domain, "cat /run/hook.log"),
            "post after quiesced\npost-ran\npost after quiesced\n");
}

}  // namespace
}  // namespace stratus::e2e
