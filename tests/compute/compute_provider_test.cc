// ComputeProvider and StorageProvider driven through ApiServer::Handle, over a FakeHypervisor,
// the real SqliteStore and the real Qcow2DiskEngine (qemu-img) in a temp dir, with a platform
// image made by qemu-img.
#include "compute/compute_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "api/server.h"
#include "common/api_request.h"
#include "common/in_process_region.h"
#include "compute/fake_hypervisor.h"
#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"
#include "storage/qcow2_disk_engine.h"
#include "storage/storage_provider.h"
#include "store/sqlite_store.h"

namespace stratus::compute {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kRg = test::InProcessRegion::kRg;

std::string VmPath(const std::string& name) {
  return std::string(kRg) + "/providers/Stratus.Compute/virtualMachines/" + name;
}
std::string DiskPath(const std::string& name) {
  return std::string(kRg) + "/providers/Stratus.Storage/disks/" + name;
}
std::string SnapPath(const std::string& name) {
  return std::string(kRg) + "/providers/Stratus.Storage/snapshots/" + name;
}

TEST(TargetForLunTest, MapsLunsToVirtioNames) {
  EXPECT_EQ(VmService::TargetForLun(0), "vdb");
  EXPECT_EQ(VmService::TargetForLun(1), "vdc");
  EXPECT_EQ(VmService::TargetForLun(24), "vdz");
  EXPECT_EQ(VmService::TargetForLun(25), "vdaa");
  EXPECT_EQ(VmService::TargetForLun(26), "vdab");
  EXPECT_EQ(VmService::TargetForLun(50), "vdaz");
  EXPECT_EQ(VmService::TargetForLun(51), "vdba");
  EXPECT_EQ(VmService::TargetForLun(63), "vdbm");
  std::set<std::string> seen;
  for (int lun = 0; lun <= 63; ++lun) seen.insert(VmService::TargetForLun(lun));
  EXPECT_EQ(seen.size(), 64u);
  EXPECT_FALSE(seen.count("vda"));   // the OS disk
  EXPECT_FALSE(seen.count("vdzz"));  // the config drive
}

TEST(DomainNameTest, PrefixesTheVmId) {
  EXPECT_EQ(VmService::DomainName("1234"), "stratus-1234");
}

class ComputeProviderTest : public test::InProcessRegionTest {
 protected:
  void TearDown() override {
    if (region_) hv().OpenDefineGate();
    InProcessRegionTest::TearDown();
  }

  static void ApiResponseOk(const api::ApiResponse& r, int status) {
    ASSERT_EQ(r.status, status) << r.body.dump();
  }

  ComputeProvider* compute() { return region_->control()->compute(); }

  static Json VmBody(const std::string& size = "Standard_S1", int data_disks = 2,
                     const std::string& image = "tiny") {
    Json dds = Json::array();
    for (int i = 0; i < data_disks; ++i) dds.push_back({{"lun", i}, {"diskSizeGB", 1 + i}});
    return {{"location", "regionA"},
            {"properties",
             {{"hardwareProfile", {{"vmSize", size}}},
              {"storageProfile", {{"imageReference", {{"id", image}}}, {"dataDisks", dds}}},
              {"osProfile", {{"computerName", "host-1"}, {"customData", "echo hi\n"}}}}}};
  }

  // Creates a VM and waits for it; returns its GET body.
  Json CreateVm(const std::string& name, const Json& body = VmBody()) {
    api::ApiResponse r = Call("PUT", VmPath(name), body);
    EXPECT_EQ(r.status, 201) << r.body.dump();
    Json op = Finish(r);
    EXPECT_EQ(op["status"], "Succeeded") << op.dump();
    return Call("GET", VmPath(name)).body;
  }

  Json Action(const std::string& vm, const std::string& action, Json body = Json::object()) {
    api::ApiResponse r = Call("POST", VmPath(vm) + "/" + action, std::move(body));
    EXPECT_TRUE(r.status == 202 || r.status == 200) << action << ": " << r.status << " " << r.body.dump();
    return Finish(r);
  }

  static std::string Domain(const Json& vm) {
    return VmService::DomainName(vm["properties"].value("vmId", ""));
  }

  std::string PowerState(const std::string& vm) {
    api::ApiResponse r = Call("GET", VmPath(vm) + "/instanceView");
    return r.body.value("powerState", "");
  }
};

TEST_F(ComputeProviderTest, CreateVmDefinesAndStartsTheDomainWithItsDisks) {
  api::ApiResponse put = Call("PUT", VmPath("vm1"), VmBody());
  ASSERT_EQ(put.status, 201) << put.body.dump();
  EXPECT_EQ(put.body["properties"]["provisioningState"], "Creating");
  EXPECT_FALSE(put.headers["ETag"].empty());
  Json op = Finish(put);
  EXPECT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(op["operation"], "Stratus.Compute/virtualMachines/write");

  api::ApiResponse get = Call("GET", VmPath("vm1"));
  ASSERT_EQ(get.status, 200);
  const Json& p = get.body["properties"];
  EXPECT_EQ(p["provisioningState"], "Succeeded");
  EXPECT_EQ(p["hardwareProfile"]["vmSize"], "Standard_S1");
  EXPECT_EQ(p["storageProfile"]["osDisk"]["name"], "vm1_OsDisk");
  EXPECT_EQ(p["storageProfile"]["osDisk"]["managedDisk"]["id"], DiskPath("vm1_OsDisk"));
  ASSERT_EQ(p["storageProfile"]["dataDisks"].size(), 2u);
  EXPECT_EQ(p["storageProfile"]["dataDisks"][1]["name"], "vm1_DataDisk_1");
  EXPECT_EQ(PowerState("vm1"), "running");

  // The domain: running, size S1, OS disk + 2 data disks + the config drive.
  auto dom = hv().Get(Domain(get.body));
  ASSERT_TRUE(dom.has_value());
  EXPECT_EQ(dom->state, compute::PowerState::kRunning);
  EXPECT_EQ(dom->spec.uuid, p["vmId"]);
  EXPECT_EQ(dom->spec.vcpus, 1);
  EXPECT_EQ(dom->spec.memory_mib, 512);
  EXPECT_THAT(dom->spec.metadata_json, HasSubstr(VmPath("vm1")));
  ASSERT_EQ(dom->spec.disks.size(), 4u);
  EXPECT_EQ(dom->spec.disks[0].target_dev, "vda");
  EXPECT_EQ(dom->spec.disks[0].path, DiskFile("vm1_OsDisk"));
  EXPECT_EQ(dom->spec.disks[1].target_dev, "vdb");
  EXPECT_EQ(dom->spec.disks[1].path, DiskFile("vm1_DataDisk_0"));
  EXPECT_EQ(dom->spec.disks[1].serial, "lun0");
  EXPECT_EQ(dom->spec.disks[2].target_dev, "vdc");
  EXPECT_EQ(dom->spec.disks[2].path, DiskFile("vm1_DataDisk_1"));
  // Caps: the lower of the disk tier (Standard: 500 IOPS, 60 MB/s) and the size (S1: 1000, 50).
  EXPECT_EQ(dom->spec.disks[1].iotune.total_iops_sec, 500u);
  EXPECT_EQ(dom->spec.disks[1].iotune.total_bytes_sec, 50u * 1000 * 1000);
  const DiskAttachment& cfg = dom->spec.disks[3];
  EXPECT_EQ(cfg.serial, "stratus-config");
  EXPECT_EQ(cfg.format, "raw");
  EXPECT_TRUE(cfg.read_only);
  ASSERT_TRUE(PathExists(cfg.path));

  // The config drive carries the computer name and the custom data.
  auto host = RunProcess({"debugfs", "-R", "cat /hostname", cfg.path});
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->out, "host-1\n");
  auto script = RunProcess({"debugfs", "-R", "cat /user-script", cfg.path});
  EXPECT_EQ(script->out, "echo hi\n");

  // Disks: recorded as attached to the VM, files on disk, the OS disk a copy of the image.
  for (const char* name : {"vm1_OsDisk", "vm1_DataDisk_0", "vm1_DataDisk_1"}) {
    api::ApiResponse d = Call("GET", DiskPath(name));
    ASSERT_EQ(d.status, 200) << name;
    EXPECT_EQ(d.body["managedBy"], VmPath("vm1")) << name;
    EXPECT_EQ(d.body["properties"]["diskState"], "Attached") << name;
    EXPECT_EQ(d.body["properties"]["provisioningState"], "Succeeded") << name;
    EXPECT_TRUE(PathExists(DiskFile(name))) << name;
  }
  EXPECT_EQ(Call("GET", DiskPath("vm1_DataDisk_1")).body["properties"]["diskSizeGB"], 2);
  EXPECT_EQ(Compare(image_disk(), DiskFile("vm1_OsDisk")), 0);
}

TEST_F(ComputeProviderTest, InvalidRequestsCreateNothing) {
  api::ApiResponse size = Call("PUT", VmPath("vm1"), VmBody("Standard_S5"));
  EXPECT_EQ(size.status, 400);
  EXPECT_EQ(Code(size), "UnknownVmSize");

  api::ApiResponse many = Call("PUT", VmPath("vm1"), VmBody("Standard_S1", 3));
  EXPECT_EQ(many.status, 400);
  EXPECT_EQ(Code(many), "TooManyDataDisks");

  api::ApiResponse image = Call("PUT", VmPath("vm1"), VmBody("Standard_S1", 1, "no-such-image"));
  EXPECT_EQ(image.status, 404);
  EXPECT_EQ(Code(image), "ImageNotFound");

  Json unknown = VmBody();
  unknown["properties"]["storageProfile"]["osDisk"] = {{"color", "blue"}};
  api::ApiResponse prop = Call("PUT", VmPath("vm1"), unknown);
  EXPECT_EQ(prop.status, 400);
  EXPECT_EQ(prop.body["error"]["target"], "properties.storageProfile.osDisk.color");

  Json dup = VmBody("Standard_S2", 2);
  dup["properties"]["storageProfile"]["dataDisks"][1]["lun"] = 0;
  EXPECT_EQ(Code(Call("PUT", VmPath("vm1"), dup)), "InvalidLun");

  Json name = VmBody();
  name["properties"]["osProfile"]["computerName"] = "bad_name";
  EXPECT_EQ(Call("PUT", VmPath("vm1"), name).status, 400);

  EXPECT_EQ(Call("GET", VmPath("vm1")).status, 404);
  EXPECT_EQ(hv().DomainCount(), 0u);
  EXPECT_EQ(FilesIn("disks"), 0u);
  EXPECT_EQ(Call("GET", std::string(kRg) + "/resources").body["value"].size(), 0u);
}

TEST_F(ComputeProviderTest, WritesWhileTheCreateRunsAreConflicts) {
  hv().CloseDefineGate();
  api::ApiResponse put = Call("PUT", VmPath("vm1"), VmBody("Standard_S1", 1));
  ASSERT_EQ(put.status, 201);
  ASSERT_TRUE(hv().WaitDefineBlocked());

  api::ApiResponse again = Call("PUT", VmPath("vm1"), VmBody("Standard_S1", 1));
  EXPECT_EQ(again.status, 409) << again.body.dump();
  EXPECT_EQ(Code(again), "OperationNotAllowed");
  api::ApiResponse start = Call("POST", VmPath("vm1") + "/start", Json::object());
  EXPECT_EQ(start.status, 409);
  EXPECT_EQ(Call("DELETE", VmPath("vm1")).status, 409);
  // Its new disks are locked too.
  EXPECT_EQ(Call("DELETE", DiskPath("vm1_DataDisk_0")).status, 409);

  hv().OpenDefineGate();
  Json op = Finish(put);
  EXPECT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(PowerState("vm1"), "running");
}

TEST_F(ComputeProviderTest, FailedCreateIsRecordedAsFailed) {
  hv().FailDefine(Internal("libvirt said no"));
  api::ApiResponse put = Call("PUT", VmPath("vm1"), VmBody("Standard_S1", 0));
  ASSERT_EQ(put.status, 201);
  Json op = Finish(put);
  EXPECT_EQ(op["status"], "Failed");
  EXPECT_THAT(op["error"]["message"].get<std::string>(), HasSubstr("libvirt said no"));
  EXPECT_EQ(Call("GET", VmPath("vm1")).body["properties"]["provisioningState"], "Failed");
  // A retry after the cause is gone completes the VM.
  hv().FailDefine(Status::Ok());
  api::ApiResponse retry = Call("PUT", VmPath("vm1"), VmBody("Standard_S1", 0));
  ASSERT_EQ(retry.status, 200) << retry.body.dump();
  EXPECT_EQ(Finish(retry)["status"], "Succeeded");
  EXPECT_EQ(PowerState("vm1"), "running");
}

TEST_F(ComputeProviderTest, AttachedDiskCannotBeDeleted) {
  CreateVm("vm1", VmBody("Standard_S1", 1));
  api::ApiResponse r = Call("DELETE", DiskPath("vm1_DataDisk_0"));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "DiskAttached");
  EXPECT_EQ(Call("GET", DiskPath("vm1_DataDisk_0")).status, 200);
  EXPECT_TRUE(PathExists(DiskFile("vm1_DataDisk_0")));
}

TEST_F(ComputeProviderTest, PowerActionsAndResize) {
  Json vm = CreateVm("vm1");
  std::string dom = Domain(vm);

  api::ApiResponse busy = Call("POST", VmPath("vm1") + "/resize", {{"vmSize", "Standard_S2"}});
  EXPECT_EQ(busy.status, 409);
  EXPECT_EQ(Code(busy), "OperationNotAllowed");
  api::ApiResponse put_resize = Call("PUT", VmPath("vm1"), VmBody("Standard_S2"));
  EXPECT_EQ(put_resize.status, 409);

  EXPECT_EQ(Action("vm1", "powerOff")["status"], "Succeeded");
  EXPECT_EQ(hv().Get(dom)->state, compute::PowerState::kStopped);
  EXPECT_EQ(PowerState("vm1"), "stopped");

  // S0 allows one data disk: the VM has two.
  api::ApiResponse small = Call("POST", VmPath("vm1") + "/resize", {{"vmSize", "Standard_S0"}});
  EXPECT_EQ(small.status, 400);
  EXPECT_EQ(Code(small), "TooManyDataDisks");
  EXPECT_EQ(Code(Call("POST", VmPath("vm1") + "/resize", {{"vmSize", "Huge"}})), "UnknownVmSize");

  EXPECT_EQ(Action("vm1", "resize", {{"vmSize", "standard_s2"}})["status"], "Succeeded");
  EXPECT_EQ(Call("GET", VmPath("vm1")).body["properties"]["hardwareProfile"]["vmSize"],
            "Standard_S2");
  EXPECT_EQ(hv().Get(dom)->spec.vcpus, 2);  // re-defined while stopped
  EXPECT_EQ(hv().Get(dom)->spec.memory_mib, 1024);
  EXPECT_EQ(hv().Get(dom)->state, compute::PowerState::kStopped);

  EXPECT_EQ(Action("vm1", "start")["status"], "Succeeded");
  EXPECT_EQ(hv().Get(dom)->state, compute::PowerState::kRunning);
  EXPECT_EQ(PowerState("vm1"), "running");

  EXPECT_EQ(Action("vm1", "restart")["status"], "Succeeded");
  EXPECT_THAT(hv().Calls(), Contains("Reboot " + dom));

  EXPECT_EQ(Action("vm1", "deallocate")["status"], "Succeeded");
  EXPECT_FALSE(hv().Get(dom).has_value());
  EXPECT_EQ(PowerState("vm1"), "deallocated");
  // Deallocated: resize applies at the next start.
  EXPECT_EQ(Action("vm1", "resize", {{"vmSize", "Standard_S3"}})["status"], "Succeeded");
  EXPECT_FALSE(hv().Get(dom).has_value());
  EXPECT_EQ(Action("vm1", "start")["status"], "Succeeded");
  ASSERT_TRUE(hv().Get(dom).has_value());
  EXPECT_EQ(hv().Get(dom)->state, compute::PowerState::kRunning);
  EXPECT_EQ(hv().Get(dom)->spec.vcpus, 3);
  EXPECT_EQ(hv().Get(dom)->spec.disks.size(), 4u);

  EXPECT_EQ(Call("POST", VmPath("vm1") + "/explode", Json::object()).status, 404);
  EXPECT_EQ(Call("POST", VmPath("nope") + "/start", Json::object()).status, 404);
}

TEST_F(ComputeProviderTest, AttachAndDetachDataDisks) {
  Json vm = CreateVm("vm1", VmBody("Standard_S2", 2));
  std::string dom = Domain(vm);
  api::ApiResponse d = Call("PUT", DiskPath("extra"),
                            {{"location", "regionA"},
                             {"sku", {{"name", "Premium_LRS"}}},
                             {"properties", {{"diskSizeGB", 1}, {"creationData", {{"createOption", "Empty"}}}}}});
  ASSERT_EQ(d.status, 201) << d.body.dump();
  ASSERT_EQ(Finish(d)["status"], "Succeeded");
  hv().ClearCalls();

  api::ApiResponse r = Call("POST", VmPath("vm1") + "/attachDetachDataDisks",
                            {{"dataDisksToAttach", {{{"diskId", DiskPath("extra")}, {"lun", 5}}}},
                             {"dataDisksToDetach", {{{"diskId", DiskPath("vm1_DataDisk_1")}}}}});
  ASSERT_TRUE(r.status == 200 || r.status == 202) << r.body.dump();
  Json op = Finish(r);
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();

  // Hot-plugged into the running domain: vdg (LUN 5) in, vdc (LUN 1) out.
  auto calls = hv().Calls();
  EXPECT_THAT(calls, Contains("AttachDisk " + dom + " vdg"));
  EXPECT_THAT(calls, Contains("DetachDisk " + dom + " vdc"));
  auto spec = hv().Get(dom)->spec;
  std::set<std::string> targets;
  for (auto& a : spec.disks) targets.insert(a.target_dev);
  EXPECT_EQ(targets, (std::set<std::string>{"vda", "vdb", "vdg", "vdzz"}));
  for (auto& a : spec.disks)
    if (a.target_dev == "vdg") {
      EXPECT_EQ(a.path, DiskFile("extra"));
      EXPECT_EQ(a.iotune.total_iops_sec, 2000u);  // min(Premium 5000, S2 2000)
    }
  EXPECT_EQ(hv().Get(dom)->state, compute::PowerState::kRunning);

  api::ApiResponse extra = Call("GET", DiskPath("extra"));
  EXPECT_EQ(extra.body["managedBy"], VmPath("vm1"));
  EXPECT_EQ(extra.body["properties"]["diskState"], "Attached");
  api::ApiResponse gone = Call("GET", DiskPath("vm1_DataDisk_1"));
  EXPECT_FALSE(gone.body.contains("managedBy"));
  EXPECT_EQ(gone.body["properties"]["diskState"], "Unattached");
  // A detached disk can be deleted now.
  EXPECT_EQ(Call("DELETE", DiskPath("vm1_DataDisk_1")).status, 200);

  Json model = Call("GET", VmPath("vm1")).body["properties"]["storageProfile"]["dataDisks"];
  std::set<int> luns;
  for (auto& x : model) luns.insert(x["lun"].get<int>());
  EXPECT_EQ(luns, (std::set<int>{0, 5}));

  api::ApiResponse not_attached = Call("POST", VmPath("vm1") + "/attachDetachDataDisks",
                                       {{"dataDisksToDetach", {{{"diskId", DiskPath("nope")}}}}});
  EXPECT_EQ(not_attached.status, 400);
}

TEST_F(ComputeProviderTest, AttachingADiskOfAnotherVmIsAConflict) {
  CreateVm("vm1", VmBody("Standard_S1", 1));
  CreateVm("vm2", VmBody("Standard_S1", 0));
  api::ApiResponse r = Call("POST", VmPath("vm2") + "/attachDetachDataDisks",
                            {{"dataDisksToAttach", {{{"diskId", DiskPath("vm1_DataDisk_0")}}}}});
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "DiskAttached");
}

TEST_F(ComputeProviderTest, CaptureSnapshotsRecordsOneSnapshotPerDisk) {
  CreateVm("vm1", VmBody("Standard_S1", 1));
  hv().ClearCalls();
  Json op = Action("vm1", "captureSnapshots", {{"snapshotNamePrefix", "snap"}});
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  ASSERT_EQ(op["properties"]["snapshots"].size(), 2u);
  EXPECT_EQ(op["properties"]["consistency"], "FileSystemConsistent");
  int live = 0;
  for (auto& c : hv().Calls()) live += c.rfind("SnapshotDisks", 0) == 0;
  EXPECT_EQ(live, 1);  // one instant for all disks
  for (const char* disk : {"vm1_OsDisk", "vm1_DataDisk_0"}) {
    api::ApiResponse s = Call("GET", SnapPath(std::string("snap-") + disk));
    ASSERT_EQ(s.status, 200) << disk;
    EXPECT_EQ(s.body["properties"]["provisioningState"], "Succeeded");
    EXPECT_EQ(s.body["properties"]["creationData"]["sourceResourceId"], DiskPath(disk));
    EXPECT_EQ(s.body["properties"]["consistency"], "FileSystemConsistent");
  }
  auto os_snap = store()->Get(ToLower(SnapPath("snap-vm1_OsDisk")));
  ASSERT_TRUE(os_snap.ok());
  EXPECT_EQ(Compare(DiskFile("vm1_OsDisk"), os_snap->internal.value("path", "")), 0);
  EXPECT_EQ(FilesIn("snapshots"), 2u);

  api::ApiResponse dup = Call("POST", VmPath("vm1") + "/captureSnapshots", {{"snapshotNamePrefix", "snap"}});
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(Code(dup), "SnapshotExists");

  // Stopped: offline copies, no live backup.
  Action("vm1", "powerOff");
  hv().ClearCalls();
  Json off = Action("vm1", "captureSnapshots", {{"snapshotNamePrefix", "off"}});
  ASSERT_EQ(off["status"], "Succeeded") << off.dump();
  EXPECT_EQ(off["properties"]["snapshots"].size(), 2u);
  for (auto& c : hv().Calls()) EXPECT_NE(c.rfind("SnapshotDisks", 0), 0u) << c;
  EXPECT_EQ(FilesIn("snapshots"), 4u);
}

TEST_F(ComputeProviderTest, DeleteVmWithDeleteDisksRemovesTheFiles) {
  Json vm = CreateVm("vm1", VmBody("Standard_S1", 1));
  std::string dom = Domain(vm);
  std::string vm_dir = JoinPath(data_dir(), "vms/" + vm["properties"].value("vmId", ""));
  ASSERT_TRUE(PathExists(vm_dir));
  ASSERT_EQ(FilesIn("disks"), 2u);
  EXPECT_EQ(Call("DELETE", VmPath("vm1") + "?deleteDisks=maybe").status, 400);

  api::ApiResponse del = Call("DELETE", VmPath("vm1") + "?deleteDisks=true");
  ASSERT_EQ(del.status, 202) << del.body.dump();
  Json op = Finish(del);
  EXPECT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(Call("GET", VmPath("vm1")).status, 404);
  EXPECT_FALSE(hv().Get(dom).has_value());
  EXPECT_FALSE(PathExists(vm_dir));
  EXPECT_EQ(FilesIn("disks"), 0u);
  for (const char* name : {"vm1_OsDisk", "vm1_DataDisk_0"})
    EXPECT_EQ(Call("GET", DiskPath(name)).status, 404) << name;
  EXPECT_EQ(Call("DELETE", VmPath("vm1")).status, 204);
}

TEST_F(ComputeProviderTest, DeleteVmKeepsDataDisksByDefault) {
  CreateVm("vm1", VmBody("Standard_S1", 1));
  std::string data0 = DiskFile("vm1_DataDisk_0");
  api::ApiResponse del = Call("DELETE", VmPath("vm1"));
  ASSERT_EQ(del.status, 202);
  EXPECT_EQ(Finish(del)["status"], "Succeeded");
  // OS disk: deleteOption Delete. Data disks: Detach.
  EXPECT_EQ(Call("GET", DiskPath("vm1_OsDisk")).status, 404);
  api::ApiResponse d = Call("GET", DiskPath("vm1_DataDisk_0"));
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(d.body["properties"]["diskState"], "Unattached");
  EXPECT_FALSE(d.body.contains("managedBy"));
  EXPECT_TRUE(PathExists(data0));
  EXPECT_EQ(FilesIn("disks"), 1u);
}

TEST_F(ComputeProviderTest, DeletingTheGroupRemovesVmsBeforeTheirDisks) {
  Json vm = CreateVm("vm1", VmBody("Standard_S1", 1));
  api::ApiResponse del = Call("DELETE", kRg);
  ASSERT_EQ(del.status, 202);
  Json op = Finish(del);
  EXPECT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(hv().DomainCount(), 0u);
  EXPECT_EQ(FilesIn("disks"), 0u);
  EXPECT_EQ(Call("GET", VmPath("vm1")).status, 404);
}

TEST_F(ComputeProviderTest, ReconcileRedefinesLostDomainsAndLeavesRunningOnesAlone) {
  Json vm1 = CreateVm("vm1", VmBody("Standard_S1", 1));
  Json vm2 = CreateVm("vm2", VmBody("Standard_S1", 0));
  Json vm3 = CreateVm("vm3", VmBody("Standard_S1", 0));
  Action("vm3", "deallocate");
  std::string d1 = Domain(vm1), d2 = Domain(vm2), d3 = Domain(vm3);

  hv().Forget(d1);  // the host lost it
  hv().ClearCalls();
  ASSERT_TRUE(compute()->Start().ok());

  ASSERT_TRUE(hv().Get(d1).has_value());
  EXPECT_EQ(hv().Get(d1)->state, compute::PowerState::kRunning);
  EXPECT_EQ(hv().Get(d1)->spec.disks.size(), 3u);
  EXPECT_EQ(hv().Get(d1)->spec.disks[0].path, DiskFile("vm1_OsDisk"));
  EXPECT_FALSE(hv().Get(d3).has_value());  // deallocated stays so
  for (auto& c : hv().Calls()) {
    EXPECT_THAT(c, Not(HasSubstr(d2))) << "a running domain was touched: " << c;
    EXPECT_THAT(c, Not(HasSubstr(d3))) << c;
  }

  // A second reconcile finds everything in place and changes nothing.
  hv().ClearCalls();
  ASSERT_TRUE(compute()->Start().ok());
  EXPECT_TRUE(hv().Calls().empty()) << ::testing::PrintToString(hv().Calls());
  EXPECT_EQ(hv().Get(d2)->state, compute::PowerState::kRunning);
}

TEST_F(ComputeProviderTest, ReconcileStartsStoppedDomainsThatShouldRunButNotStoppedVms) {
  Json vm1 = CreateVm("vm1", VmBody("Standard_S1", 0));
  Json vm2 = CreateVm("vm2", VmBody("Standard_S1", 0));
  Action("vm2", "powerOff");
  std::string d1 = Domain(vm1), d2 = Domain(vm2);
  hv().SetState(d1, compute::PowerState::kStopped);  // e.g. the host rebooted
  hv().Forget(d2);
  ASSERT_TRUE(compute()->Start().ok());
  EXPECT_EQ(hv().Get(d1)->state, compute::PowerState::kRunning);
  ASSERT_TRUE(hv().Get(d2).has_value());  // defined again...
  EXPECT_EQ(hv().Get(d2)->state, compute::PowerState::kStopped);  // ...but left stopped
}

TEST_F(ComputeProviderTest, InterruptedCreateIsResumedAfterARestart) {
  api::ApiResponse put = Call("PUT", VmPath("vm1"), VmBody("Standard_S1", 1));
  ASSERT_EQ(put.status, 201);
  Json done = Finish(put);
  ASSERT_EQ(done["status"], "Succeeded");
  std::string op_id = done["name"];
  Json vm = Call("GET", VmPath("vm1")).body;
  std::string dom = Domain(vm);

  // Rewind the state to what a daemon killed in the middle of the create leaves behind: the
  // operation InProgress, the VM Creating, one data disk not made yet, no domain.
  {
    auto op = store()->GetOperation(op_id);
    ASSERT_TRUE(op.ok());
    op->status = "InProgress";
    op->body["status"] = "InProgress";
    op->body["percentComplete"] = 10;
    op->body.erase("endTime");
    ASSERT_TRUE(store()->PutOperation(*op).ok());
    auto rec = store()->Get(ToLower(VmPath("vm1")));
    ASSERT_TRUE(rec.ok());
    rec->body["properties"]["provisioningState"] = "Creating";
    rec->internal["attachedDisks"] = Json::array();
    ASSERT_TRUE(store()->Put(*rec).ok());
    auto disk = store()->Get(ToLower(DiskPath("vm1_DataDisk_0")));
    ASSERT_TRUE(disk.ok());
    ASSERT_TRUE(RemoveFile(disk->internal.value("path", "")).ok());
    disk->body["properties"]["provisioningState"] = "Creating";
    disk->body.erase("managedBy");
    ASSERT_TRUE(store()->Put(*disk).ok());
    ASSERT_TRUE(hv().PowerOff(dom).ok());
    ASSERT_TRUE(hv().Undefine(dom).ok());
  }

  Restart(/*resume=*/false);
  EXPECT_FALSE(hv().Get(dom).has_value());  // reconcile leaves a VM that is still Creating alone
  ASSERT_TRUE(ops()->RecoverInterrupted().ok());
  ops()->WaitIdle();

  auto op = store()->GetOperation(op_id);
  ASSERT_TRUE(op.ok());
  EXPECT_EQ(op->status, "Succeeded") << op->body.dump();
  EXPECT_EQ(op->body["percentComplete"], 100);
  EXPECT_EQ(Call("GET", VmPath("vm1")).body["properties"]["provisioningState"], "Succeeded");
  ASSERT_TRUE(hv().Get(dom).has_value());
  EXPECT_EQ(hv().Get(dom)->state, compute::PowerState::kRunning);
  EXPECT_EQ(hv().Get(dom)->spec.disks.size(), 3u);
  EXPECT_TRUE(PathExists(DiskFile("vm1_DataDisk_0")));
  api::ApiResponse disk = Call("GET", DiskPath("vm1_DataDisk_0"));
  EXPECT_EQ(disk.body["properties"]["provisioningState"], "Succeeded");
  EXPECT_EQ(disk.body["managedBy"], VmPath("vm1"));
}

TEST_F(ComputeProviderTest, SubscriptionLevelCatalogues) {
  api::ApiResponse sizes =
      Call("GET", "/subscriptions/sub1/providers/Stratus.Compute/locations/regionA/vmSizes");
  ASSERT_EQ(sizes.status, 200);
  std::set<std::string> names;
  for (auto& s : sizes.body["value"]) names.insert(s["name"]);
  EXPECT_TRUE(names.count("Standard_S3"));
  EXPECT_EQ(Code(Call("GET", "/subscriptions/sub1/providers/Stratus.Compute/locations/elsewhere/vmSizes")),
            "LocationNotFound");
  api::ApiResponse imgs = Call("GET", "/subscriptions/sub1/providers/Stratus.Compute/platformImages");
  ASSERT_EQ(imgs.status, 200);
  ASSERT_EQ(imgs.body["value"].size(), 1u);
  EXPECT_EQ(imgs.body["value"][0]["name"], "tiny");
  EXPECT_EQ(imgs.body["value"][0]["sizeBytes"], 64ull << 20);
}

}  // namespace
}  // namespace stratus::compute
