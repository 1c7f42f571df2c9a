// RecoveryProvider driven through the API over an in-process region (daemon::ControlPlane with a
// FakeHypervisor, real SQLite, real qcow2 disks and real vaults in a temp dir): the CRUD rules,
// a backup of a stopped VM and its restores (bytes compared), the scheduler, retention and the
// alert a failed job sends.
#include "recovery/service/recovery_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "common/in_process_region.h"
#include "recovery/service/recovery_test_util.h"
#include "core/subprocess.h"

namespace stratus::recovery::service {
namespace {

using test::InProcessRegion;
using ::testing::HasSubstr;

const std::string kVault = InProcessRegion::Path("Stratus.RecoveryServices/vaults", "v1");

class RecoveryProviderTest : public test::InProcessRegionTest {
 protected:
  // vault v1 (with `webhooks`), policy p1 (daily, 7 days), a stopped VM vm1 with one data disk
  // holding a pattern, protected by item vm1.
  void Protect(Json webhooks = Json::array()) {
    ASSERT_EQ(
        Call("PUT", kVault,
             {{"location", "regionA"}, {"properties", {{"alerts", {{"webhooks", webhooks}}}}}})
            .status,
        201);
    auto pol = Call("PUT", kVault + "/backupPolicies/p1", test_util::DailyPolicyBody());
    ASSERT_EQ(pol.status, 201) << pol.body.dump();
    policy_id_ = pol.body.value("id", "");
    std::string vm = InProcessRegion::Path("Stratus.Compute/virtualMachines", "vm1");
    auto put = Call("PUT", vm, InProcessRegion::VmBody(1));
    ASSERT_EQ(put.status, 201) << put.body.dump();
    ASSERT_EQ(Finish(put)["status"], "Succeeded");
    vm_id_ = put.body.value("id", "");
    ASSERT_EQ(Finish(Call("POST", vm + "/powerOff", Json::object()))["status"],
              "Succeeded");
    data_disk_ = DiskFile("vm1_DataDisk_0");
    ASSERT_FALSE(data_disk_.empty());
    ASSERT_TRUE(
        RunChecked({"qemu-io", "-f", "qcow2", "-c", "write -P 0x3c 1M 2M", data_disk_}).ok());
    auto item = Call("PUT", kVault + "/protectedItems/vm1",
                     {{"properties", {{"sourceResourceId", vm_id_}, {"policyId", policy_id_}}}});
    ASSERT_EQ(item.status, 201) << item.body.dump();
  }

  // POST backup; returns the finished job's properties.
  Json Backup() {
    auto r = Call("POST", kVault + "/protectedItems/vm1/backup", Json::object());
    EXPECT_EQ(r.status, 202) << r.body.dump();
    Json op = Finish(r);
    EXPECT_EQ(op["status"], "Succeeded") << op.dump();
    return Call("GET", r.body.value("id", "")).body["properties"];
  }

  std::string policy_id_, vm_id_, data_disk_;
};

TEST_F(RecoveryProviderTest, VaultsPoliciesAndItemsKeepTheirRules) {
  Protect();
  Json vault = Call("GET", kVault).body;
  EXPECT_EQ(vault["properties"]["protectedItemCount"], 1);
  EXPECT_EQ(vault["properties"]["state"], "Unlocked");
  EXPECT_EQ(Call("GET", kVault + "/backupPolicies/p1").body["properties"]["protectedItemsCount"],
            1);
  // One item per VM, a policy in use stays, a vault with items stays.
  auto twice = Call("PUT", kVault + "/protectedItems/again",
                    {{"properties", {{"sourceResourceId", vm_id_}, {"policyId", policy_id_}}}});
  EXPECT_EQ(Code(twice), "AlreadyProtected");
  EXPECT_EQ(Code(Call("DELETE", kVault + "/backupPolicies/p1")), "PolicyInUse");
  EXPECT_EQ(Code(Call("DELETE", kVault)), "VaultNotEmpty");
  EXPECT_EQ(Call("PUT", kVault + "/backupJobs/j1", Json::object()).status, 405);
  // The same PUT again changes nothing.
  auto same = Call("PUT", kVault + "/protectedItems/vm1",
                   {{"properties", {{"sourceResourceId", vm_id_}, {"policyId", policy_id_}}}});
  EXPECT_EQ(same.status, 200);
  // Stopping protection keeps the item; a backup is then refused.
  EXPECT_EQ(Call("DELETE", kVault + "/protectedItems/vm1").status, 200);
  EXPECT_EQ(Code(Call("POST", kVault + "/protectedItems/vm1/backup", Json::object())),
            "ProtectionStopped");
  EXPECT_EQ(Call("DELETE", kVault + "/protectedItems/vm1?deleteBackupData=true").status, 200);
  EXPECT_EQ(Call("DELETE", kVault + "/backupPolicies/p1").status, 200);
  EXPECT_EQ(Call("DELETE", kVault).status, 200);
}

TEST_F(RecoveryProviderTest, BackupOfAStoppedVmRestoresAsDisksAndAsANewVmBitForBit) {
  Protect();
  Json job = Backup();
  EXPECT_EQ(job["status"], "Completed") << job.dump();
  EXPECT_EQ(job["backupType"], "Full");
  EXPECT_EQ(job["operation"], "Backup");
  EXPECT_TRUE(job.contains("duration") && job.contains("durationMs") && job.contains("endTime"));
  std::string point = job.value("recoveryPointId", "");
  ASSERT_FALSE(point.empty());
  // Incremental: nothing changed, nothing added.
  Json again = Backup();
  EXPECT_EQ(again["backupType"], "Incremental") << again.dump();
  EXPECT_EQ(again["bytesAdded"], 0);

  auto r = Call("POST", point + "/restore",
                {{"restoreType", "RestoreDisks"}, {"diskNamePrefix", "back"}});
  ASSERT_EQ(r.status, 202) << r.body.dump();
  ASSERT_EQ(Finish(r)["status"], "Succeeded");
  EXPECT_EQ(Compare(DiskFile("back-lun0"), data_disk_), 0);
  EXPECT_EQ(Compare(DiskFile("back-osdisk"), DiskFile("vm1_OsDisk")), 0);

  // As a new VM: created through compute's VmService, disks attached.
  auto vm =
      Call("POST", point + "/restore", {{"restoreType", "AlternateLocation"}, {"vmName", "vm2"}});
  ASSERT_EQ(vm.status, 202) << vm.body.dump();
  Json op = Finish(vm);
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  Json vm2 = Call("GET", InProcessRegion::Path("Stratus.Compute/virtualMachines", "vm2")).body;
  EXPECT_EQ(vm2["properties"]["provisioningState"], "Succeeded") << vm2.dump();
  EXPECT_EQ(Compare(DiskFile("vm2_DataDisk_0"), data_disk_), 0);
  // A taken name is refused before any job exists.
  EXPECT_EQ(Code(Call("POST", point + "/restore",
                      {{"restoreType", "AlternateLocation"}, {"vmName", "vm2"}})),
            "ResourceExists");
}

TEST_F(RecoveryProviderTest, OriginalLocationRestoreReplacesTheDisksContents) {
  Protect();
  std::string point = Backup().value("recoveryPointId", "");
  ASSERT_TRUE(RunChecked({"qemu-io", "-f", "qcow2", "-c", "write -P 0x77 1M 1M", data_disk_}).ok());
  auto r = Call("POST", point + "/restore", {{"restoreType", "OriginalLocation"}});
  ASSERT_EQ(r.status, 202) << r.body.dump();
  ASSERT_EQ(Finish(r)["status"], "Succeeded");
  // The pattern written after the point is gone: 0x3c again at 1M.
  auto read = RunProcess({"qemu-io", "-f", "qcow2", "-c", "read -P 0x3c 1M 2M", data_disk_});
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->out.find("Pattern verification failed"), std::string::npos) << read->out;
}

TEST_F(RecoveryProviderTest, TheSchedulerStartsADueRunOnceAndRetentionKeepsThePolicy) {
  Protect();
  auto& clock = region_->clock();
  // 2026-11-22T10:00Z; the next daily run at 02:00 is tomorrow (plus the item's stagger).
  region_->control()->recovery()->SchedulerTick(clock.NowMs());
  region_->ops()->WaitIdle();
  auto jobs = Call("GET", kVault + "/backupJobs").body["value"];
  EXPECT_EQ(jobs.size(), 0u);
  clock.AdvanceMs(24 * 3600 * 1000);
  region_->control()->recovery()->SchedulerTick(clock.NowMs());
  region_->ops()->WaitIdle();
  region_->control()->recovery()->SchedulerTick(clock.NowMs());
  region_->ops()->WaitIdle();
  jobs = Call("GET", kVault + "/backupJobs").body["value"];
  ASSERT_EQ(jobs.size(), 1u) << jobs.dump();
  EXPECT_EQ(jobs[0]["properties"]["status"], "Completed") << jobs[0].dump();
  EXPECT_EQ(jobs[0]["properties"]["onDemand"], false);
  EXPECT_TRUE(jobs[0]["properties"].contains("scheduledTime"));
  // Ten days later one more run: the daily retention of 7 keeps the newest of each day.
  for (int day = 0; day < 9; ++day) {
    clock.AdvanceMs(24 * 3600 * 1000);
    region_->control()->recovery()->SchedulerTick(clock.NowMs());
    region_->ops()->WaitIdle();
  }
  auto points = Call("GET", kVault + "/protectedItems/vm1/recoveryPoints").body["value"];
  EXPECT_EQ(points.size(), 7u) << points.dump();
}

TEST_F(RecoveryProviderTest, AFailedJobAlertsTheVaultsWebhooks) {
  httplib::Server hook;
  std::atomic<int> calls{0};
  std::string payload;
  std::mutex mu;
  hook.Post("/alert", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> l(mu);
    payload = req.body;
    ++calls;
    res.status = 204;
  });
  int port = hook.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { hook.listen_after_bind(); });
  while (!hook.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Protect(Json::array({"http://127.0.0.1:" + std::to_string(port) + "/alert"}));
  // The VM's data disk file vanishes: the backup fails.
  ASSERT_EQ(::unlink(data_disk_.c_str()), 0);
  auto r = Call("POST", kVault + "/protectedItems/vm1/backup", Json::object());
  ASSERT_EQ(r.status, 202);
  Json op = Finish(r);
  hook.stop();
  t.join();
  EXPECT_EQ(op["status"], "Failed") << op.dump();
  Json job = Call("GET", r.body.value("id", "")).body["properties"];
  EXPECT_EQ(job["status"], "Failed");
  EXPECT_EQ(Call("GET", kVault + "/protectedItems/vm1").body["properties"]["lastBackupStatus"],
            "Failed");
  ASSERT_EQ(calls.load(), 1);
  Json sent = Json::parse(payload);
  EXPECT_EQ(sent["jobId"], r.body.value("id", ""));
  EXPECT_EQ(sent["operation"], "Backup");
  EXPECT_FALSE(sent["error"].value("message", "").empty()) << sent.dump();
}

}  // namespace
}  // namespace stratus::recovery::service
