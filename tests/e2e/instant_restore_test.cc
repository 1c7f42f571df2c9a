// Instant restore end to end on a real stratusd + libvirt/QEMU: a VM whose user script writes
// 24 MiB of random data to its data disk is backed up; the point is restored as a new VM with
// "instant": true, which runs while its disks are still being pulled from the vault over NBD;
// the job ends with both times recorded; the new VM boots with the data disk byte for byte. A
// second instant restore loses its VM and its stratusd (kill -9) mid-fill: after the restart the
// sockets are served again, the VM starts from them and the fill completes. No qcow2 keeps a
// backing file and the NBD sockets are gone.
#include <chrono>
#include <filesystem>
#include <thread>

#include "harness.h"

namespace stratus::e2e {
namespace {

constexpr const char* kInstantRg = "rg-instant";

// Formats and fills the lun0 disk on the first boot only (restored VMs keep the user script).
constexpr const char* kUserScript =
    "#!/bin/sh\n"
    "for b in /sys/block/vd*; do [ \"$(cat $b/serial 2>/dev/null)\" = lun0 ] && "
    "dev=${b##*/}; done\n"
    "mkdir -p /mnt/d\n"
    "if ! mount /dev/$dev /mnt/d 2>/dev/null; then\n"
    "  mkfs.ext4 -q -F /dev/$dev && mount /dev/$dev /mnt/d &&\n"
    "  dd if=/dev/urandom of=/mnt/d/blob bs=1M count=24 2>/dev/null && sync && "
    "touch /mnt/d/done &&\n"
    "  sync\n"
    "fi\n"
    "echo userscript-finished\n";

class InstantRestoreTest : public DaemonTest {
 protected:
  InstantRestoreTest() : DaemonTest(DaemonOptions("regionIr").Group(kInstantRg)) {}
};

TEST_F(InstantRestoreTest, VmRunsBeforeItsDisksAreFilledAndEndsWithTheBackedUpData) {
  Daemon& d = this->d();
  TestVm src;
  ASSERT_NO_FATAL_FAILURE(CreateVm("src",
                                   TinyVm()
                                       .ComputerName("src")
                                       .CustomData(kUserScript)
                                       .OsDisk("src-os", 1)
                                       .DataDisk(0, "src-data", 4),
                                   &src));
  ASSERT_TRUE(d.WaitForConsole(src.path, "userscript-finished", Seconds(180)));
  Guest(src.domain, "test -f /mnt/d/done");
  const std::string blob_sum = Guest(src.domain, "sha256sum /mnt/d/blob | cut -d' ' -f1");
  ASSERT_EQ(blob_sum.size(), 65u) << blob_sum;

  // ---- vault, policy, protection, one backup
  ASSERT_EQ(d.Put(VaultPath("v1"), {{"location", d.region()}}).status, 201);
  auto pol = d.Put(VaultPath("v1") + "/backupPolicies/daily", DailyPolicyBody());
  ASSERT_EQ(pol.status, 201) << pol.Describe();
  const std::string item_path = VaultPath("v1") + "/protectedItems/src";
  ASSERT_EQ(d.Put(item_path, ProtectedItemBody(src.id, pol.json.value("id", ""))).status, 201);
  auto bk = d.Post(item_path + "/backup");
  ASSERT_EQ(bk.status, 202) << bk.Describe();
  d.WaitFor(bk, Seconds(300));
  const std::vector<Json> pts = RecoveryPoints(item_path);
  ASSERT_EQ(pts.size(), 1u) << Json(pts).dump();
  const std::string point_path = pts[0].value("id", "");

  // ---- bad input
  {
    auto disks =
        d.Post(point_path + "/restore",
               {{"restoreType", "RestoreDisks"}, {"diskNamePrefix", "x"}, {"instant", true}});
    EXPECT_EQ(disks.status, 400) << disks.Describe();
    auto notbool =
        d.Post(point_path + "/restore",
               {{"restoreType", "AlternateLocation"}, {"vmName", "x"}, {"instant", "yes"}});
    EXPECT_EQ(notbool.status, 400) << notbool.Describe();
  }

  // ---- instant restore as a new VM
  auto rs = d.Post(point_path + "/restore",
                   {{"restoreType", "AlternateLocation"}, {"vmName", "fast"}, {"instant", true}});
  ASSERT_EQ(rs.status, 202) << rs.Describe();
  const std::string job_path = rs.json.value("id", "");
  const std::string fast_path = d.VmPath(kInstantRg, "fast");
  bool running_while_filling = false;
  bool restarted = false;
  Json job;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  // (reused below)
  while (std::chrono::steady_clock::now() < deadline) {
    auto j = d.Get(job_path);
    ASSERT_EQ(j.status, 200) << j.Describe();
    job = j.json;
    const std::string status = job["properties"].value("status", "");
    if (status == "Completed" || status == "Failed") break;
    if (job["properties"].contains("timeToVmStartedMs")) {
      auto vm = d.Get(fast_path);
      if (vm.status == 200) {
        std::string dom_fast = DomainName(vm.json["properties"].value("vmId", ""));
        if (Daemon::DomainState(dom_fast) == "running") running_while_filling = true;
      }
      // stratusd restarts mid-fill, once the guest is up and idle (QEMU's NBD client
      // reconnects, but libvirt 9.0 cannot give it a reconnect delay: guest reads during the
      // gap would fail, and a failed mount would make the user script write new data).
      if (!restarted && running_while_filling &&
          d.WaitForConsole(fast_path, "userscript-finished", Seconds(1))) {
        restarted = true;
        ASSERT_TRUE(d.Restart());
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(job["properties"].value("status", ""), "Completed") << job.dump(2) << d.LogTail();
  const Json& p = job["properties"];
  ASSERT_TRUE(p.contains("timeToVmStartedMs")) << p.dump();
  ASSERT_TRUE(p.contains("timeToFullyRestoredMs")) << p.dump();
  EXPECT_LE(p.value("timeToVmStartedMs", 0), p.value("timeToFullyRestoredMs", 0)) << p.dump();
  std::printf("instant restore: VM started after %lld ms, fully restored after %lld ms%s\n",
              static_cast<long long>(p.value("timeToVmStartedMs", 0)),
              static_cast<long long>(p.value("timeToFullyRestoredMs", 0)),
              restarted ? " (stratusd restarted mid-fill)" : "");
  RecordProperty("timeToVmStartedMs", std::to_string(p.value("timeToVmStartedMs", 0)));
  RecordProperty("timeToFullyRestoredMs", std::to_string(p.value("timeToFullyRestoredMs", 0)));
  EXPECT_TRUE(running_while_filling) << "the VM never ran while its disks were being filled";

  // ---- the new VM holds the data
  TestVm fast;
  ASSERT_NO_FATAL_FAILURE(GetVm("fast", &fast));
  ASSERT_TRUE(d.WaitForConsole(fast_path, "STRATUS-GUEST-READY hostname=fast", Seconds(180)));
  // Its user script found the file system and mounted it instead of writing new data.
  ASSERT_TRUE(d.WaitForConsole(fast_path, "userscript-finished", Seconds(120)));
  EXPECT_EQ(Guest(fast.domain, "sha256sum /mnt/d/blob | cut -d' ' -f1"), blob_sum)
      << "the instantly restored data disk differs from the source";

  // ---- for comparison: the same point restored the classic way (every byte copied first)
  {
    auto classic = d.Post(point_path + "/restore",
                          {{"restoreType", "AlternateLocation"}, {"vmName", "classic"}});
    ASSERT_EQ(classic.status, 202) << classic.Describe();
    Json cj = FinishJob(classic, Seconds(600));
    ASSERT_EQ(cj["properties"].value("status", ""), "Completed") << cj.dump(2);
    std::printf("classic restore of the same point: VM started after %lld ms\n",
                static_cast<long long>(cj["properties"].value("durationMs", 0)));
    RecordProperty("classicRestoreMs", std::to_string(cj["properties"].value("durationMs", 0)));
  }

  // ---- a second instant restore: its VM dies mid-fill and stratusd is killed (-9); after the
  // restart the sockets are served again, the VM starts again from them and the fill completes.
  auto rs2 = d.Post(point_path + "/restore",
                    {{"restoreType", "AlternateLocation"}, {"vmName", "again"}, {"instant", true}});
  ASSERT_EQ(rs2.status, 202) << rs2.Describe();
  const std::string job2_path = rs2.json.value("id", "");
  const std::string again_path = d.VmPath(kInstantRg, "again");
  std::string again_dom;
  bool cut_mid_fill = false;
  deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (std::chrono::steady_clock::now() < deadline) {
    auto j = d.Get(job2_path);
    ASSERT_EQ(j.status, 200) << j.Describe();
    // A job is Queued before it runs: only an end status ends the wait.
    std::string status = j.json["properties"].value("status", "");
    if (status == "Completed" || status == "Failed") break;
    if (j.json["properties"].contains("timeToVmStartedMs")) {
      auto vm = d.Get(again_path);
      ASSERT_EQ(vm.status, 200) << vm.Describe();
      again_dom = DomainName(vm.json["properties"].value("vmId", ""));
      std::string out;
      RunCommand({"virsh", "-c", "qemu:///system", "destroy", again_dom}, &out);
      cut_mid_fill = d.Get(job2_path).json["properties"].value("status", "") == "InProgress";
      ASSERT_TRUE(d.Kill9());
      ASSERT_TRUE(d.Start());
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(again_dom.empty()) << "the second restore never started its VM";
  // The reconciler may already have started it; otherwise start it by the API.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  if (Daemon::DomainState(again_dom) != "running")
    d.WaitFor(d.Act("POST", again_path + "/start"), Seconds(120));
  Json job2 = WaitJobEnd(job2_path, std::chrono::minutes(10));
  ASSERT_EQ(job2["properties"].value("status", ""), "Completed") << job2.dump(2) << d.LogTail();
  EXPECT_TRUE(job2["properties"].contains("timeToFullyRestoredMs")) << job2.dump(2);
  EXPECT_TRUE(cut_mid_fill) << "the second fill ended before the VM was destroyed";
  ASSERT_TRUE(d.WaitForConsole(again_path, "userscript-finished", Seconds(180)));
  EXPECT_EQ(Guest(again_dom, "sha256sum /mnt/d/blob | cut -d' ' -f1"), blob_sum)
      << "the data disk of the VM restored across a crash differs from the source";

  // ---- no backing files left, no sockets left
  for (const auto& f : FilesUnder(d.data_dir() + "/disks")) {
    std::string out;
    ASSERT_EQ(RunCommand({"qemu-img", "info", "-U", "--output=json", f}, &out), 0) << out;
    EXPECT_EQ(out.find("backing-filename"), std::string::npos) << f << ": " << out;
  }
  std::error_code ec;
  size_t sockets = 0;
  if (std::filesystem::is_directory(d.data_dir() + "/nbd", ec))
    for (const auto& e : std::filesystem::directory_iterator(d.data_dir() + "/nbd", ec)) {
      ++sockets;
      ADD_FAILURE() << "left behind: " << e.path();
    }
  EXPECT_EQ(sockets, 0u);

  // ---- a corrupt chunk: the fill fails and the job names the point, the disk and the offset
  const std::string chunk = LargestFile(VaultChunkFiles(d.data_dir()));
  ASSERT_FALSE(chunk.empty());
  ASSERT_TRUE(FlipByte(chunk, 100)) << chunk;
  auto rs3 =
      d.Post(point_path + "/restore",
             {{"restoreType", "AlternateLocation"}, {"vmName", "broken"}, {"instant", true}});
  ASSERT_EQ(rs3.status, 202) << rs3.Describe();
  Json job3 = FinishJob(rs3, Seconds(600));
  ASSERT_EQ(job3["properties"].value("status", ""), "Failed") << job3.dump(2);
  const std::string msg = job3["properties"]["error"].value("message", "");
  EXPECT_EQ(job3["properties"]["error"].value("code", ""), "ChunkCorrupt") << job3.dump(2);
  EXPECT_NE(msg.find(pts[0].value("name", "")), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset"), std::string::npos) << msg;
  EXPECT_TRUE(msg.find("disk 'lun0'") != std::string::npos ||
              msg.find("disk 'osdisk'") != std::string::npos)
      << msg;
  if (std::filesystem::is_directory(d.data_dir() + "/nbd", ec)) {
    EXPECT_TRUE(std::filesystem::is_empty(d.data_dir() + "/nbd", ec)) << "sockets left behind";
  }
}

}  // namespace
}  // namespace stratus::e2e
