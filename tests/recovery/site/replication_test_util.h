// The fixture of replication tests between two whole in-process regions (their control planes
// over a fake hypervisor and a fake network engine, real qcow2 disks, real peer links on
// loopback): A holds a stopped VM "db1" with a data disk holding a pattern, B a vault "v1",
// the regions are paired.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/in_process_region.h"
#include "recovery/site/replication_service.h"

namespace stratus::recovery::site {

using test::InProcessRegion;

inline constexpr char kProv[] = "/subscriptions/sub1/providers/Stratus.RecoveryServices";
inline const std::string kVault = InProcessRegion::Path("Stratus.RecoveryServices/vaults", "v1");
inline const std::string kVm = InProcessRegion::Path("Stratus.Compute/virtualMachines", "db1");

class ReplicationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static const bool tools = RunProcess({"qemu-img", "--version"}).ok() &&
                              RunProcess({"qemu-nbd", "--version"}).ok() &&
                              RunProcess({"mke2fs", "-V"}).ok();
    if (!tools) GTEST_SKIP() << "qemu-img, qemu-nbd and mke2fs are needed";
    a_ = std::make_unique<InProcessRegion>("regionA", true);
    b_ = std::make_unique<InProcessRegion>("regionB", true);
    ASSERT_TRUE(a_->ok() && b_->ok());
    auto token = a_->Call("POST", std::string(kProv) + "/generatePairingToken", Json::object());
    ASSERT_EQ(b_->Call("PUT", std::string(kProv) + "/regionPairings/regionA",
                       {{"properties", {{"pairingToken", token.body["token"]}}}})
                  .status,
              201);
    // A stopped VM with a data disk holding a pattern.
    Json body = InProcessRegion::VmBody(1);
    body["location"] = "regionA";
    auto put = a_->Call("PUT", kVm, body);
    ASSERT_EQ(put.status, 201) << put.body.dump();
    ASSERT_EQ(a_->Finish(put)["status"], "Succeeded");
    vm_id_ = put.body.value("id", "");
    ASSERT_EQ(a_->Finish(a_->Call("POST", kVm + "/powerOff", Json::object()))["status"],
              "Succeeded");
    data_disk_ = a_->DiskFile("db1_DataDisk_0");
    os_disk_ = a_->DiskFile("db1_OsDisk");
    ASSERT_FALSE(data_disk_.empty());
    ASSERT_FALSE(os_disk_.empty()) << "os disk name";
    ASSERT_TRUE(
        RunChecked({"qemu-io", "-f", "qcow2", "-c", "write -P 0x3c 1M 2M", data_disk_}).ok());
    ASSERT_EQ(b_->Call("PUT", kVault, {{"location", "regionB"}}).status, 201);
  }

  Json ItemBody(const std::string& vm, const std::string& region = "regionA") {
    return {{"properties",
             {{"sourceRegion", region},
              {"sourceVmId", vm},
              {"policy", {{"crashConsistentFrequencyInSeconds", 5}}}}}};
  }
  // qemu-io `cmd` on a source disk of a stopped VM that replicates: a cycle takes the image's
  // write lock for a moment (qemu-img adds or removes its bitmap), so a locked image is tried
  // again for up to 10 s.
  static bool WriteSource(const std::string& cmd, const std::string& disk) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto r = RunProcess({"qemu-io", "-f", "qcow2", "-c", cmd, disk});
      if (!r.ok()) return false;
      if (r->exit_code == 0 && r->err.find("lock") == std::string::npos &&
          r->out.find("lock") == std::string::npos)
        return true;
      if (r->err.find("lock") == std::string::npos && r->out.find("lock") == std::string::npos) {
        ADD_FAILURE() << "qemu-io " << cmd << " " << disk << ": " << r->out << r->err;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "qemu-io " << cmd << " " << disk << ": the image stayed locked";
    return false;
  }
  // A second VM `name` in A like the fixture's (one 1 GiB data disk), stopped; returns its id
  // ("" after a failure).
  std::string MakeStoppedVm(const std::string& name) {
    const std::string vm = InProcessRegion::Path("Stratus.Compute/virtualMachines", name);
    auto put = a_->Call("PUT", vm, InProcessRegion::VmBody(1));
    EXPECT_EQ(put.status, 201) << put.body.dump();
    if (put.status != 201 || a_->Finish(put)["status"] != "Succeeded") return "";
    EXPECT_EQ(a_->Finish(a_->Call("POST", vm + "/powerOff", Json::object()))["status"],
              "Succeeded");
    return put.body.value("id", "");
  }
  // After a planned failover: each item (name → A's data disk file) is failed over, Planned, and
  // its VM's data disk in B is A's, byte for byte.
  void ExpectPlannedWithEveryWrite(const std::vector<std::pair<std::string, std::string>>& items) {
    for (auto& [name, disk] : items) {
      auto cmp =
          RunProcess({"qemu-img", "compare", "-U", "-q", disk, b_->DiskFile(name + "-lun0")});
      ASSERT_TRUE(cmp.ok());
      EXPECT_EQ(cmp->exit_code, 0) << name << "'s last write is in B: " << cmp->out << cmp->err;
      Json it = b_->Call("GET", kVault + "/replicationProtectedItems/" + name).body["properties"];
      EXPECT_EQ(it["protectionState"], "FailedOver") << it.dump();
      EXPECT_EQ(it["failoverType"], "Planned") << it.dump();
    }
  }
  // Waits (up to 30 s) until item `name` has at least `n` points; returns the item.
  Json WaitPoints(const std::string& name, size_t n) {
    Json item;
    for (int i = 0; i < 300; ++i) {
      item = b_->Call("GET", kVault + "/replicationProtectedItems/" + name).body;
      if (item["properties"].value("recoveryPointCount", 0) >= static_cast<int>(n)) return item;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "no " << n << " points: " << item.dump();
    return item;
  }
  // qemu-img compare of A's disk file with disk `disk` of B's newest point: 0 = same.
  int CompareNewest(const std::string& item_id, const std::string& disk, const std::string& file) {
    auto chain = b_->control()->replication()->receiver().Chain(item_id, disk);
    if (!chain.ok() || (*chain)->Points().empty()) return -1;
    auto image = (*chain)->PointImage((*chain)->Points().back());
    // -U: never lock A's disk (the source's cycles add bitmaps to it meanwhile).
    auto r = RunProcess({"qemu-img", "compare", "-U", "-q", file, *image});
    return r.ok() ? r->exit_code : -1;
  }

  std::unique_ptr<InProcessRegion> a_, b_;
  std::string vm_id_, data_disk_, os_disk_;
};

}  // namespace stratus::recovery::site
