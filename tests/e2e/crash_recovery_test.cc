// kill -9 of stratusd in the middle of a create, then a restart: the interrupted operation ends
// (Succeeded, or Failed with everything it made removed) and the region is consistent: no VM or
// disk stuck half-made, no disk file without a disk record, no domain without a VM.
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include "harness.h"

namespace stratus::e2e {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kCrashRg = "rg-crash";

class CrashRecoveryTest : public DaemonTest {
 protected:
  CrashRecoveryTest() : DaemonTest(DaemonOptions("regionCrash").Group(kCrashRg)) {}

  // Every VM is Succeeded and running; every disk is Succeeded, has its file and is attached
  // only to a VM that lists it; every disk file, VM folder and domain belongs to a record.
  void ExpectConsistent(const std::string& when) {
    SCOPED_TRACE(when);
    auto vms = d().Get(d().GroupPath(kCrashRg) + "/providers/Stratus.Compute/virtualMachines");
    ASSERT_EQ(vms.status, 200) << vms.Describe();
    std::set<std::string> vm_ids, vm_rids, domains;
    std::map<std::string, std::string> disk_owner;  // disk id -> VM id, from the VMs' models
    for (auto& vm : vms.json["value"]) {
      const Json& p = vm["properties"];
      std::string name = vm.value("name", "");
      EXPECT_EQ(p.value("provisioningState", ""), "Succeeded")
          << "VM " << name << " half-made: " << vm.dump();
      std::string vm_id = p.value("vmId", "");
      vm_ids.insert(vm_id);
      vm_rids.insert(Lower(vm.value("id", "")));
      domains.insert(DomainName(vm_id));
      EXPECT_EQ(Daemon::DomainState(DomainName(vm_id)), "running") << "VM " << name;
      EXPECT_EQ(d().InstanceView(d().VmPath(kCrashRg, name)).value("powerState", ""), "running");
      disk_owner[Lower(p["storageProfile"]["osDisk"]["managedDisk"].value("id", ""))] =
          Lower(vm.value("id", ""));
      for (auto& dd : p["storageProfile"]["dataDisks"])
        disk_owner[Lower(dd["managedDisk"].value("id", ""))] = Lower(vm.value("id", ""));
    }
    auto disks = d().Get(d().GroupPath(kCrashRg) + "/providers/Stratus.Storage/disks");
    ASSERT_EQ(disks.status, 200) << disks.Describe();
    std::set<std::string> disk_files, disk_ids;
    for (auto& disk : disks.json["value"]) {
      std::string name = disk.value("name", "");
      const Json& p = disk["properties"];
      disk_ids.insert(Lower(disk.value("id", "")));
      EXPECT_EQ(p.value("provisioningState", ""), "Succeeded")
          << "disk " << name << " half-made: " << disk.dump();
      std::string file = d().data_dir() + "/disks/" + p.value("uniqueId", "?") + ".qcow2";
      disk_files.insert(file);
      EXPECT_TRUE(std::filesystem::exists(file)) << "disk " << name << " has no file " << file;
      std::string owner = Lower(disk.value("managedBy", ""));
      auto it = disk_owner.find(Lower(disk.value("id", "")));
      if (it != disk_owner.end()) {
        EXPECT_EQ(owner, it->second) << "disk " << name << " is in a VM's model";
        EXPECT_EQ(p.value("diskState", ""), "Attached") << "disk " << name;
      } else {
        EXPECT_EQ(owner, "") << "disk " << name << " is managed by a VM that does not list it";
        EXPECT_EQ(p.value("diskState", ""), "Unattached") << "disk " << name;
      }
    }
    for (auto& [disk_id, vm] : disk_owner)
      EXPECT_TRUE(disk_ids.count(disk_id)) << "VM " << vm << " uses a missing disk " << disk_id;
    for (auto& f : FilesUnder(d().data_dir() + "/disks"))
      EXPECT_TRUE(disk_files.count(f)) << "orphan disk file " << f;
    const std::string vms_dir = d().data_dir() + "/vms/";
    for (auto& f : FilesUnder(vms_dir)) {
      std::string vm_id = f.substr(vms_dir.size(), f.find('/', vms_dir.size()) - vms_dir.size());
      EXPECT_TRUE(vm_ids.count(vm_id)) << "orphan VM file " << f;
    }
    for (auto& dom : d().OwnedDomains())
      EXPECT_TRUE(domains.count(dom)) << "domain " << dom << " belongs to no VM";
  }

  // Deleting the group removes everything: the region works after the crash.
  void ExpectGroupDeletesCleanly() {
    auto r = d().Act("DELETE", d().GroupPath(kCrashRg));
    ASSERT_EQ(r.status, 202) << r.Describe();
    EXPECT_SUCCEEDED(d().WaitFor(r, Seconds(180)));
    EXPECT_TRUE(d().OwnedDomains().empty());
    for (auto sub : {"/disks", "/vms", "/snapshots"})
      EXPECT_TRUE(FilesUnder(d().data_dir() + sub).empty())
          << sub << ": " << ::testing::PrintToString(FilesUnder(d().data_dir() + sub));
  }

  // PUTs a VM with one data disk, lets `crash_point` wait for the moment to crash, kill -9s
  // stratusd, restarts it and checks that the create ended cleanly one way or the other.
  // With `wait_for_domain`, stratusd stays down until libvirtd has finished starting the domain
  // (as after a crash and a restart a few seconds later).
  void CrashDuringVmCreate(const std::function<std::string(const std::string& op_url)>& crash_point,
                           bool wait_for_domain = false) {
    const std::string name = "crashvm";
    const std::string vm = d().VmPath(kCrashRg, name);
    auto put = d().Put(
        vm, TinyVm().ComputerName("crashvm").OsDisk("crashvm-os").DataDisk(0, "crashvm-data"));
    ASSERT_EQ(put.status, 201) << put.Describe();
    const std::string op_url = put.Header("Azure-AsyncOperation");
    ASSERT_FALSE(op_url.empty());
    std::string where = crash_point(op_url);
    ASSERT_TRUE(d().Kill9());
    std::fprintf(stderr, "[e2e] killed stratusd -9 at: %s\n", where.c_str());
    RecordProperty("killed_at", where);
    if (wait_for_domain) {
      std::string dom = DomainName(put.json["properties"].value("vmId", ""));
      std::string state = Daemon::DomainState(dom);
      for (int i = 0; i < 300 && (state == "" || state == "paused (starting up)"); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        state = Daemon::DomainState(dom);
      }
      std::fprintf(stderr, "[e2e] domain state before the restart: '%s'\n", state.c_str());
      where += "; domain '" + state + "' at the restart";
    }
    ASSERT_TRUE(d().Start());

    Json op = d().WaitOperation(op_url, Seconds(240));
    std::string status = op.value("status", "");
    SCOPED_TRACE("killed at " + where + "; operation after restart: " + op.dump());
    ASSERT_TRUE(status == "Succeeded" || status == "Failed") << op.dump();
    auto g = d().Get(vm);
    if (status == "Succeeded") {
      ASSERT_EQ(g.status, 200) << g.Describe();
      EXPECT_EQ(g.json["properties"].value("provisioningState", ""), "Succeeded") << g.Describe();
      std::string dom = DomainName(g.json["properties"].value("vmId", ""));
      EXPECT_EQ(Daemon::DomainState(dom), "running");
      // The guest boots from the disks made across the crash.
      std::string console;
      EXPECT_TRUE(
          d().WaitForConsole(vm, "STRATUS-GUEST-READY hostname=crashvm", Seconds(90), 1, &console))
          << console;
      EXPECT_TRUE(Daemon::WaitGuestDisk(dom, "lun0", true, Seconds(30)));
    } else {
      EXPECT_EQ(g.status, 404) << "a failed create must leave no VM behind: " << g.Describe();
      EXPECT_EQ(d().Get(d().DiskPath(kCrashRg, "crashvm-os")).status, 404);
      EXPECT_EQ(d().Get(d().DiskPath(kCrashRg, "crashvm-data")).status, 404);
    }
    ExpectConsistent("after kill -9 at " + where + " and restart");
    ExpectGroupDeletesCleanly();
  }
};

TEST_F(CrashRecoveryTest, KillDuringVmCreateRightAfterAccepted) {
  CrashDuringVmCreate([&](const std::string& op_url) {
    auto op = d().Get(op_url.substr(op_url.find("/subscriptions/")));
    return "right after the 201 (operation " + op.json.value("status", "?") + " " +
           std::to_string(op.json.value("percentComplete", -1)) + "% " +
           op.json.value("message", "") + ")";
  });
}

// Waits until the create operation says "starting" (libvirt is starting the domain).
std::string UntilStarting(Daemon& d, const std::string& op_url) {
  const std::string path = op_url.substr(op_url.find("/subscriptions/"));
  auto deadline = Clock::now() + std::chrono::seconds(120);
  Json op;
  while (Clock::now() < deadline) {
    op = d.Get(path).json;
    if (op.value("status", "") != "InProgress" || op.value("message", "") == "starting") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return "operation " + op.value("status", "?") + " " +
         std::to_string(op.value("percentComplete", -1)) + "% '" + op.value("message", "") + "'";
}

// Restarted at once: libvirtd may still be starting the domain.
TEST_F(CrashRecoveryTest, KillWhileStartingDomainRestartAtOnce) {
  CrashDuringVmCreate([&](const std::string& op_url) { return UntilStarting(d(), op_url); });
}

// Restarted after libvirtd finished starting the domain the dead daemon asked for.
TEST_F(CrashRecoveryTest, KillWhileStartingDomainRestartLater) {
  CrashDuringVmCreate([&](const std::string& op_url) { return UntilStarting(d(), op_url); },
                      /*wait_for_domain=*/true);
}

TEST_F(CrashRecoveryTest, KillDuringDiskCreate) {
  struct Case {
    std::string name;
    Json creation;
  };
  const std::vector<Case> cases = {
      {"crash-empty", {{"createOption", "Empty"}}},
      {"crash-fromimage", {{"createOption", "FromImage"}, {"imageReference", {{"id", "tiny"}}}}},
      {"crash-copy",
       {{"createOption", "Copy"}, {"sourceResourceId", d().DiskPath(kCrashRg, "crash-source")}}},
  };
  // The source of the copy, made before any crash.
  {
    auto r = d().Put(d().DiskPath(kCrashRg, "crash-source"),
                     {{"location", d().region()},
                      {"properties",
                       {{"creationData",
                         {{"createOption", "FromImage"}, {"imageReference", {{"id", "tiny"}}}}}}}});
    ASSERT_EQ(r.status, 201) << r.Describe();
    ASSERT_SUCCEEDED(d().WaitFor(r));
  }
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    Json body = {{"location", d().region()},
                 {"sku", {{"name", "Premium_LRS"}}},
                 {"properties", {{"creationData", c.creation}}}};
    if (c.creation.value("createOption", "") == "Empty") body["properties"]["diskSizeGB"] = 1;
    const std::string path = d().DiskPath(kCrashRg, c.name);
    auto put = d().Put(path, body);
    ASSERT_EQ(put.status, 201) << put.Describe();
    const std::string op_url = put.Header("Azure-AsyncOperation");
    ASSERT_TRUE(d().Kill9());
    ASSERT_TRUE(d().Start());
    Json op = d().WaitOperation(op_url, Seconds(120));
    std::string status = op.value("status", "");
    std::fprintf(stderr, "[e2e] disk %s after kill -9 right after the 201: %s\n", c.name.c_str(),
                 op.dump().c_str());
    ASSERT_TRUE(status == "Succeeded" || status == "Failed") << op.dump();
    auto g = d().Get(path);
    if (status == "Succeeded") {
      ASSERT_EQ(g.status, 200) << g.Describe();
      EXPECT_EQ(g.json["properties"].value("provisioningState", ""), "Succeeded");
      EXPECT_EQ(g.json["sku"].value("name", ""), "Premium_LRS");
      EXPECT_GE(g.json["properties"].value("diskSizeGB", 0), 1);
    } else {
      EXPECT_EQ(g.status, 404) << "a failed create must leave no disk behind: " << g.Describe();
      // Creating it again works.
      auto again = d().Act("PUT", path, body);
      ASSERT_EQ(again.status, 201) << again.Describe();
      EXPECT_SUCCEEDED(d().WaitFor(again));
    }
    ExpectConsistent("after kill -9 during the create of disk " + c.name);
  }
  ExpectGroupDeletesCleanly();
}

}  // namespace
}  // namespace stratus::e2e
