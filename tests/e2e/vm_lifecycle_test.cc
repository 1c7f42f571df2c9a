// The main end-to-end flow: one VM through its whole life on a real stratusd + libvirt/QEMU.
//
// create (2 data disks of different tiers, customData) -> boots, guest sees its disks by LUN
// serial, customData ran, httpd answers -> libvirt iotune matches the tiers -> data written in the
// guest -> captureSnapshots (3, FileSystemConsistent) -> disk from the snapshot, hot-attached,
// holds the data -> stratusd SIGTERM and kill -9 restarts leave QEMU alone -> powerOff / start /
// deallocate / resize / start -> delete with disks, delete the group -> nothing left behind.
#include <algorithm>
#include <regex>
#include <thread>

#include "harness.h"

namespace stratus::e2e {
namespace {

constexpr const char* kLifeRg = "rg-life";
constexpr const char* kVm = "web1";
constexpr const char* kComputerName = "lifehost1";

class VmLifecycleTest : public DaemonTest {
 protected:
  VmLifecycleTest() : DaemonTest(DaemonOptions("regionLife").Group(kLifeRg)) {}

  Json VmSize(const std::string& name) {
    auto r = d().Get(d().SubPath() + "/providers/Stratus.Compute/locations/" + d().region() +
                     "/vmSizes");
    EXPECT_EQ(r.status, 200) << r.Describe();
    for (auto& s : r.json.value("value", Json::array()))
      if (s.value("name", "") == name) return s;
    ADD_FAILURE() << "no VM size " << name << " in " << r.body;
    return Json::object();
  }

  // The iotune libvirt must enforce for a disk: the smaller of the tier's and the size's caps.
  void ExpectIoTune(const std::vector<DomainDisk>& disks, const std::string& serial,
                    const Json& disk_body, const Json& size) {
    const DomainDisk* dd = FindBySerial(disks, serial);
    ASSERT_NE(dd, nullptr) << "no disk with serial " << serial << " in the domain XML";
    uint64_t tier_iops = disk_body["properties"].value("diskIOPSReadWrite", uint64_t{0});
    uint64_t tier_mbps = disk_body["properties"].value("diskMBpsReadWrite", uint64_t{0});
    uint64_t want_iops = std::min(tier_iops, size.value("maxDiskIops", uint64_t{0}));
    uint64_t want_bytes = std::min(tier_mbps, size.value("maxDiskMBps", uint64_t{0})) * 1000000;
    EXPECT_EQ(dd->total_iops_sec, want_iops) << "disk " << serial << " (" << dd->target << ")";
    EXPECT_EQ(dd->total_bytes_sec, want_bytes) << "disk " << serial << " (" << dd->target << ")";
  }
};

TEST_F(VmLifecycleTest, FullLifecycle) {
  Daemon& d = this->d();
  const std::string vm_path = d.VmPath(kLifeRg, kVm);
  const std::string payload = "snapshot-payload-" + RandomHex(8);

  // ---- create the VM (in the fixture's resource group)
  const std::string script =
      "#!/bin/sh\n"
      "echo \"customdata-ok $(hostname)\" > /root/customdata-marker\n"
      "echo customdata-finished\n";
  Json vm_body = TinyVm()
                     .ComputerName(kComputerName)
                     .CustomData(script)
                     .OsDisk("web1-os", 1, "Standard_LRS")
                     .DataDisk(0, "web1-std", 1, "Standard_LRS")
                     .DataDisk(1, "web1-prem", 1, "Premium_LRS");
  vm_body["tags"] = {{"suite", "e2e"}};
  vm_body["properties"]["storageProfile"]["osDisk"]["deleteOption"] = "Delete";
  auto put = d.Put(vm_path, vm_body);
  ASSERT_EQ(put.status, 201) << put.Describe();
  EXPECT_EQ(put.json["properties"].value("provisioningState", ""), "Creating");
  EXPECT_FALSE(put.Header("ETag").empty());
  const std::string vm_id = put.json["properties"].value("vmId", "");
  ASSERT_FALSE(vm_id.empty()) << put.Describe();
  const std::string vm_rid = put.json.value("id", "");
  const std::string dom = DomainName(vm_id);
  {
    Json op = d.WaitFor(put, Seconds(180));
    ASSERT_SUCCEEDED(op);
    EXPECT_EQ(op.value("percentComplete", 0), 100);
  }
  {
    auto g = d.Get(vm_path);
    ASSERT_EQ(g.status, 200) << g.Describe();
    EXPECT_EQ(g.json["properties"].value("provisioningState", ""), "Succeeded");
    EXPECT_EQ(g.json["properties"]["osProfile"].value("computerName", ""), kComputerName);
    EXPECT_FALSE(g.json["properties"]["osProfile"].contains("customData"))
        << "customData must not be echoed back";
  }
  Json view = d.InstanceView(vm_path);
  EXPECT_EQ(view.value("powerState", ""), "running") << view.dump();
  const std::string boot_time = view.value("bootTime", "");
  ASSERT_FALSE(boot_time.empty()) << "no bootTime: " << view.dump();
  EXPECT_EQ(Daemon::DomainState(dom), "running");

  // ---- the guest boots with its name, agent, disks, customData and web page
  std::string console;
  ASSERT_TRUE(d.WaitForConsole(vm_path,
                               std::string("STRATUS-GUEST-READY hostname=") + kComputerName,
                               Seconds(90), 1, &console))
      << "console:\n"
      << console;
  {
    std::string agent;
    for (int i = 0; i < 60 && agent != "Ready"; ++i) {
      agent = d.InstanceView(vm_path)["agent"].value("status", "");
      if (agent != "Ready") std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    EXPECT_EQ(agent, "Ready");
  }
  std::string err;
  auto serials = Daemon::GuestDisksBySerial(dom, &err);
  ASSERT_TRUE(err.empty()) << err;
  ASSERT_TRUE(serials.count("lun0")) << "guest sees no lun0 disk";
  ASSERT_TRUE(serials.count("lun1")) << "guest sees no lun1 disk";
  EXPECT_TRUE(serials.count("os"));
  EXPECT_TRUE(serials.count("stratus-config"));
  EXPECT_EQ(serials["os"], "vda");
  const std::string lun0_dev = serials["lun0"];
  EXPECT_TRUE(d.WaitForConsole(vm_path, "STRATUS-USER-SCRIPT-DONE rc=0", Seconds(60), 1, &console))
      << console;
  {
    auto r = Daemon::AgentExec(dom, "cat /root/customdata-marker");
    ASSERT_TRUE(r.ok) << r.Describe();
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(r.out, std::string("customdata-ok ") + kComputerName + "\n");
  }
  {
    auto r = Daemon::AgentExec(dom, "wget -qO- http://127.0.0.1/");
    ASSERT_TRUE(r.ok) << r.Describe();
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_NE(r.out.find(kComputerName), std::string::npos) << r.out;
  }

  // ---- libvirt enforces the tiers' caps (the smaller of disk tier and VM size)
  Json s1 = VmSize("Standard_S1");
  Json std_disk = d.Get(d.DiskPath(kLifeRg, "web1-std")).json;
  Json prem_disk = d.Get(d.DiskPath(kLifeRg, "web1-prem")).json;
  Json os_disk = d.Get(d.DiskPath(kLifeRg, "web1-os")).json;
  EXPECT_EQ(std_disk["properties"].value("diskIOPSReadWrite", 0), 500);
  EXPECT_EQ(std_disk["properties"].value("diskMBpsReadWrite", 0), 60);
  EXPECT_EQ(prem_disk["properties"].value("diskIOPSReadWrite", 0), 5000);
  EXPECT_EQ(prem_disk["properties"].value("diskMBpsReadWrite", 0), 200);
  {
    auto disks = ParseDomainDisks(Daemon::DomainXml(dom));
    ExpectIoTune(disks, "os", os_disk, s1);
    ExpectIoTune(disks, "lun0", std_disk, s1);
    ExpectIoTune(disks, "lun1", prem_disk, s1);
    // With Standard_S1 (1000 IOPS, 50 MB/s per disk): Premium is capped by the size.
    const DomainDisk* p = FindBySerial(disks, "lun1");
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->total_iops_sec, 1000u);
    const DomainDisk* s = FindBySerial(disks, "lun0");
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->total_iops_sec, 500u);
  }
  for (const Json* disk : {&std_disk, &prem_disk, &os_disk}) {
    EXPECT_EQ((*disk)["properties"].value("diskState", ""), "Attached") << disk->dump();
    EXPECT_EQ(Lower(disk->value("managedBy", "")), Lower(vm_rid)) << disk->dump();
    EXPECT_EQ((*disk)["properties"].value("provisioningState", ""), "Succeeded");
  }

  // ---- data in the guest, then a consistent snapshot of all disks
  {
    auto r =
        Daemon::AgentExec(dom,
                          "set -e; mkfs.ext4 -q -F /dev/" + lun0_dev +
                              "; mkdir -p /mnt/data; mount /dev/" + lun0_dev + " /mnt/data; echo " +
                              payload + " > /mnt/data/hello.txt; sync; cat /mnt/data/hello.txt",
                          Seconds(120));
    ASSERT_TRUE(r.ok) << r.Describe();
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(r.out, payload + "\n");
  }
  std::string snap_std_id;
  {
    Json op = ActAndWait("POST", vm_path + "/captureSnapshots", {{"snapshotNamePrefix", "snap1"}},
                         Seconds(180));
    ASSERT_SUCCEEDED(op);
    Json props = op.value("properties", Json::object());
    EXPECT_EQ(props.value("consistency", ""), "FileSystemConsistent") << op.dump();
    Json ids = props.value("snapshots", Json::array());
    ASSERT_EQ(ids.size(), 3u) << op.dump();
    for (auto& id : ids) {
      std::string sid = id.get<std::string>();
      auto s = d.Get(sid);
      ASSERT_EQ(s.status, 200) << s.Describe();
      EXPECT_EQ(s.json["properties"].value("provisioningState", ""), "Succeeded");
      EXPECT_EQ(s.json["properties"].value("consistency", ""), "FileSystemConsistent");
      std::string src = s.json["properties"]["creationData"].value("sourceResourceId", "");
      if (Lower(src) == Lower(std_disk.value("id", ""))) snap_std_id = sid;
    }
    ASSERT_FALSE(snap_std_id.empty()) << "no snapshot of web1-std among " << ids.dump();
    // The guest's file systems were thawed again.
    auto t = Daemon::AgentExec(dom, "touch /mnt/data/after-snapshot && echo writable");
    ASSERT_TRUE(t.ok) << t.Describe();
    EXPECT_EQ(t.out, "writable\n") << t.Describe();
  }

  // ---- a disk made from the snapshot holds the data (hot-attached to the running VM)
  const std::string restored_path = d.DiskPath(kLifeRg, "web1-restored");
  std::string restored_id;
  {
    auto r = d.Put(
        restored_path,
        {{"location", d.region()},
         {"sku", {{"name", "Standard_LRS"}}},
         {"properties",
          {{"creationData", {{"createOption", "Copy"}, {"sourceResourceId", snap_std_id}}}}}});
    ASSERT_EQ(r.status, 201) << r.Describe();
    ASSERT_SUCCEEDED(d.WaitFor(r));
    auto g = d.Get(restored_path);
    ASSERT_EQ(g.status, 200) << g.Describe();
    EXPECT_EQ(g.json["properties"].value("provisioningState", ""), "Succeeded");
    EXPECT_EQ(g.json["properties"].value("diskState", ""), "Unattached");
    EXPECT_EQ(g.json["properties"].value("diskSizeGB", 0), 1);
    restored_id = g.json.value("id", "");
  }
  // Standard_S1 takes 2 data disks: hot-detach the Premium one first.
  {
    auto r = d.Act("POST", vm_path + "/attachDetachDataDisks",
                   {{"dataDisksToDetach", {{{"diskId", prem_disk.value("id", "")}}}}});
    EXPECT_EQ(r.status, 202) << "docs/api.md: VM actions answer 202 + operation headers";
    ASSERT_TRUE(r.status == 200 || r.status == 202) << r.Describe();
    ASSERT_SUCCEEDED(d.WaitFor(r));
    auto g = d.Get(d.DiskPath(kLifeRg, "web1-prem"));
    EXPECT_EQ(g.json["properties"].value("diskState", ""), "Unattached") << g.Describe();
    EXPECT_FALSE(g.json.contains("managedBy")) << g.Describe();
    EXPECT_TRUE(Daemon::WaitGuestDisk(dom, "lun1", /*present=*/false, Seconds(30)))
        << "the guest still sees lun1 after the detach";
    EXPECT_EQ(FindBySerial(ParseDomainDisks(Daemon::DomainXml(dom)), "lun1"), nullptr);
  }
  {
    auto r = d.Act("POST", vm_path + "/attachDetachDataDisks",
                   {{"dataDisksToAttach", {{{"diskId", restored_id}, {"lun", 2}}}}});
    EXPECT_EQ(r.status, 202) << "docs/api.md: VM actions answer 202 + operation headers";
    ASSERT_TRUE(r.status == 200 || r.status == 202) << r.Describe();
    ASSERT_SUCCEEDED(d.WaitFor(r));
    auto g = d.Get(restored_path);
    EXPECT_EQ(g.json["properties"].value("diskState", ""), "Attached") << g.Describe();
    EXPECT_EQ(Lower(g.json.value("managedBy", "")), Lower(vm_rid));
    std::string dev;
    ASSERT_TRUE(Daemon::WaitGuestDisk(dom, "lun2", /*present=*/true, Seconds(30), &dev))
        << "the hot-attached disk does not appear in the guest";
    auto m = Daemon::AgentExec(dom, "set -e; mkdir -p /mnt/restored; mount -o ro /dev/" + dev +
                                        " /mnt/restored; cat /mnt/restored/hello.txt");
    ASSERT_TRUE(m.ok) << m.Describe();
    EXPECT_EQ(m.exit_code, 0) << m.Describe();
    EXPECT_EQ(m.out, payload + "\n") << "the snapshot does not hold the data written before it";
    auto disks = ParseDomainDisks(Daemon::DomainXml(dom));
    ExpectIoTune(disks, "lun2", d.Get(restored_path).json, s1);
  }

  // ---- stratusd restarts never touch running VMs
  auto expect_untouched = [&](const char* what) {
    Json v = d.InstanceView(vm_path);
    EXPECT_EQ(v.value("powerState", ""), "running") << what << ": " << v.dump();
    EXPECT_EQ(v.value("bootTime", ""), boot_time) << what << ": QEMU was restarted";
    EXPECT_EQ(Daemon::DomainState(dom), "running") << what;
    auto g = d.Get(vm_path);
    EXPECT_EQ(g.json["properties"].value("provisioningState", ""), "Succeeded") << what;
    auto r = Daemon::AgentExec(dom, "cat /mnt/data/hello.txt");
    EXPECT_EQ(r.out, payload + "\n") << what << ": " << r.Describe();
  };
  ASSERT_TRUE(d.Restart());
  expect_untouched("after SIGTERM + restart");
  ASSERT_TRUE(d.Kill9());
  EXPECT_EQ(Daemon::DomainState(dom), "running") << "kill -9 of stratusd took the VM down";
  ASSERT_TRUE(d.Start());
  expect_untouched("after kill -9 + restart");

  // ---- power cycle
  {
    ASSERT_SUCCEEDED(ActAndWait("POST", vm_path + "/powerOff"));
    EXPECT_EQ(d.InstanceView(vm_path).value("powerState", ""), "stopped");
    EXPECT_EQ(Daemon::DomainState(dom), "shut off");
    EXPECT_TRUE(d.WaitForConsole(vm_path, "STRATUS-GUEST-SHUTDOWN clean", Seconds(5)))
        << "powerOff was not a clean guest shutdown";
  }
  {
    ASSERT_SUCCEEDED(ActAndWait("POST", vm_path + "/start"));
    Json v = d.InstanceView(vm_path);
    EXPECT_EQ(v.value("powerState", ""), "running") << v.dump();
    EXPECT_NE(v.value("bootTime", ""), boot_time);
    ASSERT_TRUE(d.WaitForConsole(vm_path, "STRATUS-GUEST-READY", Seconds(90), 2, &console))
        << console;
  }

  // ---- deallocate: domain gone, disks kept
  {
    ASSERT_SUCCEEDED(ActAndWait("POST", vm_path + "/deallocate"));
    EXPECT_EQ(d.InstanceView(vm_path).value("powerState", ""), "deallocated");
    EXPECT_EQ(Daemon::DomainState(dom), "") << "the domain is still defined";
    EXPECT_TRUE(d.OwnedDomains().empty());
    for (auto name : {"web1-os", "web1-std", "web1-restored"}) {
      auto g = d.Get(d.DiskPath(kLifeRg, name));
      ASSERT_EQ(g.status, 200) << name << ": " << g.Describe();
      EXPECT_EQ(g.json["properties"].value("diskState", ""), "Attached") << name;
    }
    EXPECT_EQ(FilesUnder(d.data_dir() + "/disks").size(), 4u)
        << "os, std, prem (detached) and restored disk files must all be kept";
  }
  // ---- resize while deallocated, start again
  {
    ASSERT_SUCCEEDED(ActAndWait("POST", vm_path + "/resize", {{"vmSize", "Standard_S2"}}));
    auto g = d.Get(vm_path);
    EXPECT_EQ(g.json["properties"]["hardwareProfile"].value("vmSize", ""), "Standard_S2");
  }
  {
    ASSERT_SUCCEEDED(ActAndWait("POST", vm_path + "/start"));
    EXPECT_EQ(d.InstanceView(vm_path).value("powerState", ""), "running");
    std::string xml = Daemon::DomainXml(dom);
    EXPECT_TRUE(std::regex_search(xml, std::regex("<vcpu[^>]*>2</vcpu>"))) << xml;
    // The caps follow the new size (Standard_S2: 100 MB/s per disk -> the tier's 60 MB/s).
    Json s2 = VmSize("Standard_S2");
    auto disks = ParseDomainDisks(xml);
    ExpectIoTune(disks, "os", d.Get(d.DiskPath(kLifeRg, "web1-os")).json, s2);
    ExpectIoTune(disks, "lun0", d.Get(d.DiskPath(kLifeRg, "web1-std")).json, s2);
    ASSERT_TRUE(d.WaitForConsole(vm_path, "STRATUS-GUEST-READY", Seconds(90), 3, &console))
        << console;
    auto n = Daemon::AgentExecWhenReady(dom, "nproc; mkdir -p /mnt/data; mount /dev/" + lun0_dev +
                                                 " /mnt/data; cat /mnt/data/hello.txt");
    ASSERT_TRUE(n.ok) << n.Describe();
    EXPECT_EQ(n.out, "2\n" + payload + "\n") << "after resize and restart: " << n.Describe();
  }

  // ---- delete the VM with its disks, then the group
  {
    ASSERT_SUCCEEDED(ActAndWait("DELETE", vm_path + "?deleteDisks=true"));
    EXPECT_EQ(d.Get(vm_path).status, 404);
    for (auto name : {"web1-os", "web1-std", "web1-restored"})
      EXPECT_EQ(d.Get(d.DiskPath(kLifeRg, name)).status, 404)
          << name << " survived deleteDisks=true";
    auto prem = d.Get(d.DiskPath(kLifeRg, "web1-prem"));
    EXPECT_EQ(prem.status, 200) << "a disk detached earlier is not the VM's: " << prem.Describe();
    EXPECT_EQ(Daemon::DomainState(dom), "");
  }
  {
    ASSERT_SUCCEEDED(ActAndWait("DELETE", d.GroupPath(kLifeRg)));
    EXPECT_EQ(d.Get(d.GroupPath(kLifeRg)).status, 404);
    EXPECT_EQ(d.Get(d.DiskPath(kLifeRg, "web1-prem")).status, 404);
    EXPECT_EQ(d.Get(snap_std_id).status, 404);
  }

  // ---- nothing left: no domain, no files, no QEMU
  EXPECT_TRUE(d.OwnedDomains().empty());
  for (auto sub : {"/disks", "/vms", "/snapshots"}) {
    auto files = FilesUnder(d.data_dir() + sub);
    EXPECT_TRUE(files.empty()) << "left in " << sub << ": " << ::testing::PrintToString(files);
  }
  std::vector<pid_t> qemu;
  for (int i = 0; i < 50; ++i) {
    qemu = ProcessesMentioning(d.data_dir() + "/");
    // The daemon itself mentions its data dir; only other processes count.
    qemu.erase(std::remove_if(
                   qemu.begin(), qemu.end(),
                   [&](pid_t p) {
                     return ReadWholeFile("/proc/" + std::to_string(p) + "/cmdline").find("qemu") ==
                            std::string::npos;
                   }),
               qemu.end());
    if (qemu.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(qemu.empty()) << "QEMU processes still use the data dir: "
                            << ::testing::PrintToString(qemu);
}

}  // namespace
}  // namespace stratus::e2e
