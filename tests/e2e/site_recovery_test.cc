// Site recovery between two real regions on this machine: two stratusd daemons, each with its own
// data dir, API port and peer link. Pairing with the CLI (`stratus recovery pair token` in A,
// `pair create` in B): what each side records, the link checked both ways, across a restart of A
// (same identity, same peer port), and reported unreachable while A is down. Replication of a
// running VM: libvirt pull backups with checkpoints in A, points in B that hold exactly A's disks.
#include <gtest/gtest.h>

#include <thread>

#include "e2e/harness.h"

namespace stratus::e2e {
namespace {

constexpr const char* kSrRg = "rg-sr";

// Region A is the fixture's daemon (d()), region B a second one.
class SiteRecoveryTest : public DaemonTest {
 protected:
  SiteRecoveryTest() : DaemonTest(DaemonOptions("regionA").Group(kSrRg)) {}
  void SetUp() override {
    DaemonTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(b_.Start());
  }
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- regionA log ----\n" << d().LogTail() << "\n";
      std::cerr << "---- regionB log ----\n" << b_.LogTail() << "\n";
    }
    b_.Cleanup();
    DaemonTest::TearDown();
  }
  // B pairs with A, makes group kSrRg and vault v1, and replicates `vm` as `item` (a point every
  // 5 s); the enable operation has succeeded.
  // A point every 5 s; application-consistent ones every `app_minutes` (0: none).
  void ReplicateIntoB(const TestVm& vm, const std::string& item, int app_minutes = 0) {
    ASSERT_NO_FATAL_FAILURE(PairBWithA());
    ASSERT_EQ(b_.Put(b_.GroupPath(kSrRg), {{"location", "regionB"}}).status, 201);
    ASSERT_EQ(b_.Put(b_.VaultPath(kSrRg, "v1"), {{"location", "regionB"}}).status, 201);
    auto put = b_.Put(item, {{"properties",
                              {{"sourceRegion", "regionA"},
                               {"sourceVmId", vm.id},
                               {"policy",
                                {{"crashConsistentFrequencyInSeconds", 5},
                                 {"appConsistentFrequencyInMinutes", app_minutes}}}}}});
    ASSERT_EQ(put.status, 201) << put.Describe();
    ASSERT_SUCCEEDED(b_.WaitFor(put));
  }
  // B pairs with A through the API.
  void PairBWithA() {
    auto token = d().Post(d().SubPath() + "/providers/Stratus.RecoveryServices/generatePairingToken");
    ASSERT_EQ(token.status, 200) << token.Describe();
    auto put = b_.Put(PairingPath(b_, "regionA"),
                      {{"properties", {{"pairingToken", token.json["token"]}}}});
    ASSERT_EQ(put.status, 201) << put.Describe();
  }

  // `stratus <args>` against region `d`; returns the exit code, *out its output.
  static int Cli(const Daemon& d, std::vector<std::string> args, std::string* out) {
    std::vector<std::string> argv = {"env", "STRATUS_CONFIG=" + d.cli_config_path(),
                                     STRATUS_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out);
  }
  static std::string PairingPath(const Daemon& d, const std::string& peer) {
    return d.SubPath() + "/providers/Stratus.RecoveryServices/regionPairings/" + peer;
  }
  static std::string NetPath(const Daemon& d, const std::string& type, const std::string& name) {
    return d.ResourcePath(kSrRg, "Stratus.Network", type, name);
  }
  // VNET `name` of region `d` with subnet "front" (10.40.1.0/24) in 10.40.0.0/16.
  static void PutVnet(Daemon& d, const std::string& name) {
    auto r = d.Put(NetPath(d, "virtualNetworks", name),
                   {{"location", d.region()},
                    {"properties",
                     {{"addressSpace", {{"addressPrefixes", {"10.40.0.0/16"}}}},
                      {"subnets", {{{"name", "front"}, {"properties", {{"addressPrefix", "10.40.1.0/24"}}}}}}}}});
    ASSERT_EQ(r.status, 201) << r.Describe();
  }
  // NIC `name` in A's vnet-a/front at 10.40.1.10 (made with the VNET); its MAC in *mac
  // ("52:54:00:..", as the guest shows it).
  void PutSourceNic(const std::string& name, std::string* mac) {
    ASSERT_NO_FATAL_FAILURE(PutVnet(d(), "vnet-a"));
    auto r = d().Put(NetPath(d(), "networkInterfaces", name),
                     {{"location", d().region()},
                      {"properties",
                       {{"ipConfigurations",
                         {{{"name", "ipconfig1"},
                           {"properties",
                            {{"subnet", {{"id", NetPath(d(), "virtualNetworks", "vnet-a") + "/subnets/front"}}},
                             {"privateIPAllocationMethod", "Static"},
                             {"privateIPAddress", "10.40.1.10"}}}}}}}}});
    ASSERT_EQ(r.status, 201) << r.Describe();
    *mac = r.json["properties"].value("macAddress", "");
    for (char& c : *mac) c = c == '-' ? ':' : static_cast<char>(std::tolower(c));
  }
  Json WithNic(Json body, const std::string& nic) {
    body["properties"]["networkProfile"] = {
        {"networkInterfaces", {{{"id", NetPath(d(), "networkInterfaces", nic)}}}}};
    return body;
  }
  // The guest of `domain` has `mac` and 10.40.1.10 on eth0 and reaches its gateway: B's router
  // (of the mapped network, or the test's isolated copy) serves the NIC A's VM had.
  static void ExpectSourceAddress(const std::string& domain, const std::string& mac) {
    std::string seen = Guest(domain, "cat /sys/class/net/eth0/address; ip -4 -o addr show eth0; "
                                     "ping -c 2 -W 2 10.40.1.1 >/dev/null && echo GATEWAY-OK; "
                                     "udhcpc -i eth0 -n -q -s /bin/true -t 3 -T 2 2>&1",
                             Seconds(300));
    EXPECT_NE(seen.find(mac), std::string::npos) << seen;
    EXPECT_NE(seen.find("10.40.1.10/24"), std::string::npos) << seen;
    EXPECT_NE(seen.find("GATEWAY-OK"), std::string::npos) << seen;
    EXPECT_NE(seen.find("lease of 10.40.1.10 obtained"), std::string::npos) << seen;
  }

  Daemon b_{"regionB"};
};

TEST_F(SiteRecoveryTest, RegionsPairWithTheCliAndTheLinkSurvivesARestart) {
  Daemon& a_ = d();
  ASSERT_NE(a_.peer_port(), 0);
  ASSERT_NE(a_.peer_port(), b_.peer_port());

  std::string out;
  ASSERT_EQ(Cli(a_, {"recovery", "pair", "token", "--expires-in-minutes", "10", "-o", "json"}, &out), 0)
      << out;
  Json token = Json::parse(out, nullptr, false);
  ASSERT_TRUE(token.is_object()) << out;
  EXPECT_EQ(token["region"], "regionA");
  EXPECT_EQ(token["peerEndpoint"], "https://127.0.0.1:" + std::to_string(a_.peer_port()));

  ASSERT_EQ(Cli(b_, {"recovery", "pair", "create", "--token", token["token"]}, &out), 0) << out;
  EXPECT_NE(out.find("regionA"), std::string::npos) << out;
  auto b_side = b_.Get(PairingPath(b_, "regionA"));
  ASSERT_EQ(b_side.status, 200) << b_side.Describe();
  EXPECT_EQ(b_side.json["properties"]["peerCertificateThumbprint"],
            token["certificateThumbprint"]);
  auto a_side = a_.Get(PairingPath(a_, "regionB"));
  ASSERT_EQ(a_side.status, 200) << a_side.Describe();
  EXPECT_EQ(a_side.json["properties"]["initiatedBy"], "Peer");
  EXPECT_EQ(a_side.json["properties"]["peerCertificateThumbprint"],
            b_side.json["properties"]["localCertificateThumbprint"]);
  EXPECT_EQ(a_side.json["properties"]["peerEndpoint"],
            "https://127.0.0.1:" + std::to_string(b_.peer_port()));

  ASSERT_EQ(Cli(b_, {"recovery", "pair", "check", "--peer", "regionA"}, &out), 0) << out;
  ASSERT_EQ(Cli(a_, {"recovery", "pair", "check", "--peer", "regionB"}, &out), 0) << out;

  // The identity and the port outlive a restart.
  ASSERT_TRUE(a_.Restart());
  ASSERT_EQ(Cli(b_, {"recovery", "pair", "check", "--peer", "regionA"}, &out), 0) << out;

  // A down: reported, nothing changes.
  ASSERT_TRUE(a_.Kill9());
  EXPECT_EQ(Cli(b_, {"recovery", "pair", "check", "--peer", "regionA"}, &out), 6) << out;
  EXPECT_NE(out.find("PeerRegionUnreachable"), std::string::npos) << out;
  ASSERT_EQ(Cli(b_, {"recovery", "pair", "list", "-o", "json"}, &out), 0) << out;
  EXPECT_NE(out.find("regionA"), std::string::npos) << out;

  // Unpairing while A is down: B forgets, warns that A was not told.
  ASSERT_EQ(Cli(b_, {"recovery", "pair", "delete", "--peer", "regionA"}, &out), 0) << out;
  EXPECT_NE(out.find("was not reached"), std::string::npos) << out;
  EXPECT_EQ(b_.Get(PairingPath(b_, "regionA")).status, 404);
}

// The file of managed disk `name` of group kSrRg in region `d` ("" and a failure if it is not
// there).
std::string DiskFile(const Daemon& d, const std::string& name) {
  auto disk = d.Get(d.DiskPath(kSrRg, name));
  EXPECT_EQ(disk.status, 200) << disk.Describe();
  if (disk.status != 200) return "";
  return d.data_dir() + "/disks/" + disk.json["properties"].value("uniqueId", "") + ".qcow2";
}

// The newest sealed layer of replica disk `disk` of item `item_id` in region `d` (its chain.json).
std::string NewestReplica(const Daemon& d, const std::string& item_id, const std::string& disk) {
  std::string dir = d.data_dir() + "/replicas/" + item_id + "/" + disk;
  Json chain = Json::parse(ReadWholeFile(dir + "/chain.json"), nullptr, false);
  if (!chain.is_object()) return "";
  std::string file;
  for (auto& l : chain["layers"])
    if (l.value("sealed", false)) file = l.value("file", "");
  return file.empty() ? "" : dir + "/" + file;
}

TEST_F(SiteRecoveryTest, ARunningVmIsReplicatedAndItsPointsHoldTheDisksAsCaptured) {
  TestVm vm;
  std::string mac;
  ASSERT_NO_FATAL_FAILURE(PutSourceNic("db1-nic", &mac));
  ASSERT_NO_FATAL_FAILURE(CreateVm(
      "db1",
      WithNic(TinyVm().ComputerName("db1").OsDisk("db1-os", 1).DataDisk(0, "db1-data"), "db1-nic"),
      &vm));
  std::string dev;
  ASSERT_NO_FATAL_FAILURE(WaitGuestDisk(vm, "lun0", &dev));
  Guest(vm.domain, "dd if=/dev/urandom of=/dev/" + dev + " bs=1M count=8 seek=1 conv=fsync 2>/dev/null");
  // The "application" writes its state to the data disk in its pre hook: an application-
  // consistent point holds it.
  Guest(vm.domain,
        "set -e; mkdir -p /etc/stratus/backup.d; "
        "printf '%s\\n' '#!/bin/sh' "
        "'case \"$1\" in pre) echo QUIESCED | dd of=/dev/" + dev + " bs=512 seek=1 conv=fsync 2>/dev/null;; "
        "post) echo post >> /run/hook.log;; esac' "
        "> /etc/stratus/backup.d/10-app; chmod +x /etc/stratus/backup.d/10-app");
  const std::string item = b_.VaultPath(kSrRg, "v1") + "/replicationProtectedItems/db1";
  ASSERT_NO_FATAL_FAILURE(ReplicateIntoB(vm, item, /*app_minutes=*/60));
  auto wait_points = [&](int n, Seconds timeout) {
    Json got;
    for (auto end = std::chrono::steady_clock::now() + timeout;
         std::chrono::steady_clock::now() < end;) {
      got = b_.Get(item).json;
      if (got["properties"].value("recoveryPointCount", 0) >= n) return got;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ADD_FAILURE() << "fewer than " << n << " points: " << got.dump();
    return got;
  };
  Json it = wait_points(1, Seconds(180));
  std::string item_id = it["properties"].value("replicatedItemId", "");
  EXPECT_EQ(it["properties"]["protectionState"], "Protected");
  // The first point is application-consistent (the hooks ran around the instant, the file
  // systems were frozen at it); the ones after it, within the hour, are crash-consistent.
  Json first = b_.Get(item + "/recoveryPoints").json["value"][0];
  EXPECT_EQ(first["properties"].value("recoveryPointType", ""), "ApplicationConsistent")
      << first.dump();
  EXPECT_TRUE(it["properties"].contains("lastApplicationConsistentPointTime")) << it.dump();
  EXPECT_EQ(Guest(vm.domain, "cat /run/hook.log"), "post\n");

  // The guest writes; a later point carries it. Then the VM stops; the cycle after that holds
  // the disks exactly as A has them.
  Guest(vm.domain, "dd if=/dev/urandom of=/dev/" + dev + " bs=4k count=16 seek=5000 conv=fsync 2>/dev/null");
  int n = it["properties"].value("recoveryPointCount", 0);
  it = wait_points(n + 2, Seconds(120));
  EXPECT_LE(it["properties"].value("rpoInSeconds", 999), 30) << it.dump();
  EXPECT_EQ(it["properties"]["replicationHealth"], "Normal");

  // A drill: the test VM boots in B from copy-on-write clones of the newest point and reads the
  // guest's write; replication goes on meanwhile; the cleanup removes it.
  std::string out;
  ASSERT_EQ(
      Cli(b_,
          {"recovery", "replication", "test-failover", "-g", kSrRg, "--vault", "v1", "-n", "db1"},
          &out),
      0)
      << out;
  auto test_vm = b_.Get(b_.VmPath(kSrRg, "db1-test"));
  ASSERT_EQ(test_vm.status, 200) << test_vm.Describe();
  std::string test_domain = "stratus-" + test_vm.json["properties"].value("vmId", "");
  std::string seen = Guest(test_domain, "dd if=/dev/" + dev +
                                            " bs=4k count=16 skip=5000 2>/dev/null | md5sum",
                           Seconds(300));
  EXPECT_EQ(seen, Guest(vm.domain, "dd if=/dev/" + dev + " bs=4k count=16 skip=5000 2>/dev/null | md5sum"))
      << "the test VM reads what the guest wrote";
  // No network mapping: the drill's NIC is in an isolated copy of vnet-a made in B (same space,
  // no way out), with A's address and MAC.
  auto iso = b_.Get(NetPath(b_, "virtualNetworks", "vnet-a-test"));
  ASSERT_EQ(iso.status, 200) << iso.Describe();
  EXPECT_EQ(iso.json["properties"]["subnets"][0]["properties"]["defaultOutboundAccess"], false);
  ExpectSourceAddress(test_domain, mac);
  n = b_.Get(item).json["properties"].value("recoveryPointCount", 0);
  it = wait_points(n + 1, Seconds(120));
  EXPECT_EQ(it["properties"]["testFailoverState"], "Completed");
  EXPECT_LE(it["properties"].value("rpoInSeconds", 999), 30) << "RPO met during the drill";
  ASSERT_EQ(
      Cli(b_,
          {"recovery", "replication", "test-cleanup", "-g", kSrRg, "--vault", "v1", "-n", "db1"},
          &out),
      0)
      << out;
  EXPECT_EQ(b_.Get(b_.VmPath(kSrRg, "db1-test")).status, 404);
  EXPECT_EQ(RunCommand({"virsh", "-c", "qemu:///system", "domstate", test_domain}, &out) == 0, false)
      << "the test VM's domain is gone: " << out;
  EXPECT_EQ(b_.Get(NetPath(b_, "virtualNetworks", "vnet-a-test")).status, 404)
      << "the isolated network went with the drill";

  ASSERT_SUCCEEDED(ActAndWait("POST", vm.path + "/powerOff"));
  n = it["properties"].value("recoveryPointCount", 0);
  wait_points(n + 2, Seconds(120));
  std::string a_file = DiskFile(d(), "db1-data");
  ASSERT_FALSE(a_file.empty());
  std::string replica = NewestReplica(b_, item_id, "lun0");
  ASSERT_FALSE(replica.empty());
  EXPECT_EQ(RunCommand({"qemu-img", "compare", "-U", "-q", a_file, replica}, &out), 0) << out;

  // Checkpoints in A: only the newest replication one is kept between cycles. A cycle in flight
  // holds two for a moment (the next one is added before the old one goes), so look a few times.
  int srep = 0;
  for (auto until = std::chrono::steady_clock::now() + Seconds(20);
       std::chrono::steady_clock::now() < until;) {
    RunCommand({"virsh", "-c", "qemu:///system", "checkpoint-list", vm.domain, "--name"}, &out);
    srep = 0;
    for (size_t at = out.find("srep-"); at != std::string::npos; at = out.find("srep-", at + 1)) ++srep;
    if (srep <= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  EXPECT_LE(srep, 1) << out;

  // Started again, the VM's cycles stay incremental: the stopped cycles' bitmap (QEMU loads it)
  // becomes a checkpoint again rather than the base being lost.
  ASSERT_SUCCEEDED(ActAndWait("POST", vm.path + "/start"));
  n = b_.Get(item).json["properties"].value("recoveryPointCount", 0);
  wait_points(n + 2, Seconds(180));
  std::string log = d().LogTail(5000);
  EXPECT_NE(log.find("its base srep-"), std::string::npos) << log;
  EXPECT_EQ(log.find("a full cycle"), std::string::npos) << log;

  // Disabling stops A (its checkpoints go) and removes B's replicas.
  auto del = b_.Delete(item);
  ASSERT_EQ(del.status, 202) << del.Describe();
  ASSERT_SUCCEEDED(b_.WaitFor(del));
  EXPECT_EQ(b_.Get(item).status, 404);
  RunCommand({"virsh", "-c", "qemu:///system", "checkpoint-list", vm.domain, "--name"}, &out);
  EXPECT_EQ(out.find("srep-"), std::string::npos) << out;
}

TEST_F(SiteRecoveryTest, RegionALostFailoverKeepsTheRecordsThenReprotectAndFailbackSendOnlyWhatDiffers) {
  TestVm vm;
  ASSERT_NO_FATAL_FAILURE(CreateVm(
      "db1", TinyVm().ComputerName("db1").OsDisk("db1-os", 1).DataDisk(0, "db1-data"), &vm));
  std::string dev;
  ASSERT_NO_FATAL_FAILURE(WaitGuestDisk(vm, "lun0", &dev));
  const std::string item = b_.VaultPath(kSrRg, "v1") + "/replicationProtectedItems/db1";
  ASSERT_NO_FATAL_FAILURE(ReplicateIntoB(vm, item));

  // The database: numbered records, one 512-byte block each, each fsync'd before the next;
  // /tmp/last (guest memory) says how far it got.
  std::string writer =
      "i=1; while :; do printf 'REC %08d\\n' $i | dd of=/dev/" + dev +
      " bs=512 seek=$i count=1 conv=notrunc,fsync 2>/dev/null; echo $i > /tmp/last; "
      "i=$((i+1)); done";
  Json exec = {{"execute", "guest-exec"},
               {"arguments", {{"path", "/bin/sh"}, {"arg", {"-c", writer}}}}};
  std::string out;
  ASSERT_EQ(RunCommand({"virsh", "-c", "qemu:///system", "qemu-agent-command", vm.domain,
                        exec.dump()}, &out), 0) << out;
  // Records as time goes: (steady ms, last record) every half second.
  std::vector<std::pair<int64_t, int>> seen;
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  for (int k = 0; k < 40; ++k) {
    seen.push_back({now_ms(), std::atoi(Guest(vm.domain, "cat /tmp/last 2>/dev/null || echo 0").c_str())});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  ASSERT_GT(seen.back().second, 20) << "the guest writes records";
  Json before = b_.Get(item).json;
  ASSERT_GE(before["properties"].value("recoveryPointCount", 0), 2) << before.dump();

  // Region A is lost: its daemon and the VM's QEMU are killed.
  auto rpo = b_.Get(item).json["properties"].value("rpoInSeconds", -1);
  int64_t killed = now_ms();
  ASSERT_TRUE(d().Kill9());
  RunCommand({"virsh", "-c", "qemu:///system", "destroy", vm.domain}, &out);
  ASSERT_GE(rpo, 0);
  // What the guest had written RPO seconds before the kill (a second of slack for the sampling).
  int floor = 0;
  for (auto& [t, n] : seen)
    if (t <= killed - (rpo + 1) * 1000) floor = n;

  // Unplanned failover in B: nothing of A is needed.
  auto fo = b_.Post(item + "/unplannedFailover");
  ASSERT_EQ(fo.status, 202) << fo.Describe();
  Json op = b_.WaitFor(fo);
  ASSERT_SUCCEEDED(op);
  std::string new_vm = op["properties"].value("vmId", "");
  auto got = b_.Get(b_.VmPath(kSrRg, "db1"));
  ASSERT_EQ(got.status, 200) << got.Describe();
  std::string domain = "stratus-" + got.json["properties"].value("vmId", "");
  // The VM boots in B; its records are contiguous from 1 and reach at least `floor`.
  std::string count = Guest(domain,
                            "i=1; while dd if=/dev/" + dev + " bs=512 skip=$i count=1 2>/dev/null | "
                            "grep -q \"^REC $(printf %08d $i)\"; do i=$((i+1)); done; echo $((i-1))",
                            Seconds(300));
  int last = std::atoi(count.c_str());
  EXPECT_GE(last, floor) << "RPO at the kill " << rpo << " s";
  EXPECT_GE(last, 1);
  // Nothing after the last contiguous record but unwritten blocks (a torn point would leave a
  // later record behind a gap).
  std::string after = Guest(domain, "dd if=/dev/" + dev + " bs=512 skip=" + std::to_string(last + 1) +
                                        " count=2000 2>/dev/null | grep -c '^REC' || true");
  EXPECT_EQ(std::atoi(after.c_str()), 0) << "records after a gap: a torn point";
  Json it = b_.Get(item).json;
  EXPECT_EQ(it["properties"]["protectionState"], "FailedOver");
  std::cerr << "[ info ] RPO at the kill " << rpo << " s; records in A then >= " << floor
            << ", in B after failover " << last << "; Stratus failover time "
            << op["properties"].value("stratusTimeMs", -1) << " ms\n";

  // Reprotect. The VM writes 8 MiB in B; region A comes back and its VM (restarted by A's
  // reconcile) writes 2 MiB of its own after the cut. Reprotect sends B's VM back onto A's old
  // copy: only those blocks (and the records A wrote after its last cycle), and A's own writes
  // are overwritten.
  ASSERT_EQ(Guest(domain, "dd if=/dev/urandom of=/dev/" + dev +
                              " bs=1M count=8 seek=64 conv=fsync 2>/dev/null; echo ok"),
            "ok\n");
  ASSERT_TRUE(d().Start());
  ASSERT_EQ(Guest(vm.domain, "dd if=/dev/urandom of=/dev/" + dev +
                                 " bs=1M count=2 seek=32 conv=fsync 2>/dev/null; echo ok",
                  Seconds(300)),
            "ok\n");
  ASSERT_EQ(d().Put(d().VaultPath(kSrRg, "v1"), {{"location", "regionA"}}).status, 201);
  ASSERT_EQ(Cli(b_,
                {"recovery", "replication", "reprotect", "-g", kSrRg, "--vault", "v1", "-n", "db1",
                 "-o", "json"},
                &out),
            0)
      << out;
  // The operation as JSON, after the progress lines.
  Json rp = Json::parse(out.substr(std::min(out.size(), out.find("{\n"))), nullptr, false);
  ASSERT_TRUE(rp.is_object()) << out;
  const Json& sum = rp["properties"];
  EXPECT_TRUE(sum.value("incremental", false)) << sum.dump();
  const uint64_t written = 10ull << 20;
  uint64_t lun0_sent = sum["disks"]["lun0"].value("bytesSent", uint64_t{0});
  uint64_t lun0_changed = sum["disks"]["lun0"].value("bytesChanged", uint64_t{0});
  EXPECT_GE(lun0_changed, written) << sum.dump();
  // 1.1x what was written since the failover, plus 1 MiB for the records A wrote between its
  // last shipped cycle and the kill (a few 64 KiB clusters).
  EXPECT_LE(lun0_sent, written * 11 / 10 + (1u << 20)) << sum.dump();
  std::cerr << "[ info ] reprotect: data disk " << lun0_changed << " bytes changed, " << lun0_sent
            << " sent (" << written << " written since the failover); all disks "
            << sum.value("bytesSent", uint64_t{0}) << " sent of "
            << sum.value("bytesChanged", uint64_t{0}) << " changed\n";
  // A's old VM is held: it may not start while its disks are the replica's base.
  auto start = d().Post(vm.path + "/start");
  EXPECT_EQ(start.status, 409) << start.Describe();
  EXPECT_EQ(start.json["error"].value("code", ""), "VmIsReplicaBase") << start.Describe();
  // The reverse item in A: once B's VM is off and a cycle later, A's replica is B's disk exactly
  // (A's own 2 MiB overwritten).
  const std::string rev_item = d().VaultPath(kSrRg, "v1") + "/replicationProtectedItems/db1";
  auto rev = d().Get(rev_item);
  ASSERT_EQ(rev.status, 200) << rev.Describe();
  ASSERT_SUCCEEDED(b_.WaitFor(b_.Post(b_.VmPath(kSrRg, "db1") + "/powerOff")));
  int rev_points = d().Get(rev_item).json["properties"].value("recoveryPointCount", 0);
  for (auto end = std::chrono::steady_clock::now() + Seconds(120);
       d().Get(rev_item).json["properties"].value("recoveryPointCount", 0) < rev_points + 2 &&
       std::chrono::steady_clock::now() < end;)
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::string a_replica =
      NewestReplica(d(), rev.json["properties"].value("replicatedItemId", ""), "lun0");
  ASSERT_FALSE(a_replica.empty());
  std::string b_file = DiskFile(b_, "db1-lun0");
  ASSERT_FALSE(b_file.empty());
  EXPECT_EQ(RunCommand({"qemu-img", "compare", "-U", "-q", a_replica, b_file}, &out), 0) << out;

  // Failback: a planned failover of the reverse item, from A. B's VM (off) sends its last cycle;
  // A's original VM takes it into its own disks and starts.
  ASSERT_EQ(Cli(d(),
                {"recovery", "replication", "failover", "-g", kSrRg, "--vault", "v1", "-n", "db1",
                 "--planned"},
                &out),
            0)
      << out;
  rev = d().Get(rev_item);
  EXPECT_EQ(rev.json["properties"].value("protectionState", ""), "FailedOver") << rev.Describe();
  EXPECT_EQ(rev.json["properties"].value("failoverType", ""), "Planned") << rev.Describe();
  EXPECT_TRUE(rev.json["properties"].value("failback", false)) << rev.Describe();
  EXPECT_EQ(rev.json["properties"].value("failedOverVmId", ""), vm.id) << rev.Describe();
  std::string a_file = DiskFile(d(), "db1-data");
  ASSERT_FALSE(a_file.empty());
  EXPECT_EQ(RunCommand({"qemu-img", "compare", "-U", "-q", a_file, b_file}, &out), 0)
      << "A's VM holds what B's had: " << out;
  ASSERT_EQ(Guest(vm.domain, "echo up", Seconds(300)), "up\n");

  // Reprotect A -> B again: B's item starts over on B's (now stopped, held) VM; only what A's VM
  // writes from its start on is sent.
  ASSERT_EQ(Guest(vm.domain, "dd if=/dev/urandom of=/dev/" + dev +
                                 " bs=1M count=4 seek=128 conv=fsync 2>/dev/null; echo ok"),
            "ok\n");
  ASSERT_EQ(Cli(d(),
                {"recovery", "replication", "reprotect", "-g", kSrRg, "--vault", "v1", "-n", "db1",
                 "-o", "json"},
                &out),
            0)
      << out;
  rp = Json::parse(out.substr(std::min(out.size(), out.find("{\n"))), nullptr, false);
  ASSERT_TRUE(rp.is_object()) << out;
  const Json& back = rp["properties"];
  EXPECT_TRUE(back.value("incremental", false)) << back.dump();
  uint64_t back_sent = back["disks"]["lun0"].value("bytesSent", uint64_t{0});
  EXPECT_GE(back_sent, 4ull << 20) << back.dump();
  EXPECT_LE(back_sent, (4ull << 20) * 11 / 10) << back.dump();
  std::cerr << "[ info ] reprotect A->B after the failback: data disk " << back_sent
            << " bytes sent (4 MiB written); all disks " << back.value("bytesSent", uint64_t{0})
            << " sent\n";
  auto again = b_.Get(item);
  ASSERT_EQ(again.status, 200) << again.Describe();
  EXPECT_EQ(again.json["properties"].value("sourceRegion", ""), "regionA") << again.Describe();
  EXPECT_NE(again.json["properties"].value("protectionState", ""), "FailedOver")
      << again.Describe();
  auto b_start = b_.Post(b_.VmPath(kSrRg, "db1") + "/start");
  EXPECT_EQ(b_start.status, 409) << "B's VM is now the held base: " << b_start.Describe();
}

TEST_F(SiteRecoveryTest, PlannedFailoverLosesNoRecord) {
  TestVm vm;
  std::string mac;
  ASSERT_NO_FATAL_FAILURE(PutSourceNic("db1-nic", &mac));
  ASSERT_NO_FATAL_FAILURE(CreateVm(
      "db1",
      WithNic(TinyVm().ComputerName("db1").OsDisk("db1-os", 1).DataDisk(0, "db1-data"), "db1-nic"),
      &vm));
  std::string dev;
  ASSERT_NO_FATAL_FAILURE(WaitGuestDisk(vm, "lun0", &dev));
  const std::string item = b_.VaultPath(kSrRg, "v1") + "/replicationProtectedItems/db1";
  ASSERT_NO_FATAL_FAILURE(ReplicateIntoB(vm, item));
  // vnet-a fails over to B's vnet-b (the same space), mapped with the CLI.
  ASSERT_NO_FATAL_FAILURE(PutVnet(b_, "vnet-b"));
  std::string out;
  ASSERT_EQ(Cli(b_,
                {"recovery", "network-mapping", "create", "-g", kSrRg, "--vault", "v1", "-n",
                 "a-to-b", "--source-network", NetPath(d(), "virtualNetworks", "vnet-a"),
                 "--target-network", "vnet-b"},
                &out),
            0)
      << out;
  ASSERT_EQ(
      Cli(b_, {"recovery", "replication", "nic-show", "-g", kSrRg, "--vault", "v1", "-n", "db1"},
          &out),
      0)
      << out;
  EXPECT_NE(out.find("vnet-b/front"), std::string::npos) << out;
  for (auto end = std::chrono::steady_clock::now() + Seconds(180);
       b_.Get(item).json["properties"].value("recoveryPointCount", 0) < 1 &&
       std::chrono::steady_clock::now() < end;)
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // The database writes numbered, fsync'd records until its VM is shut down.
  std::string writer =
      "i=1; while :; do printf 'REC %08d\\n' $i | dd of=/dev/" + dev +
      " bs=512 seek=$i count=1 conv=notrunc,fsync 2>/dev/null; echo $i > /tmp/last; "
      "i=$((i+1)); done";
  Json exec = {{"execute", "guest-exec"},
               {"arguments", {{"path", "/bin/sh"}, {"arg", {"-c", writer}}}}};
  ASSERT_EQ(RunCommand({"virsh", "-c", "qemu:///system", "qemu-agent-command", vm.domain,
                        exec.dump()}, &out), 0) << out;
  std::this_thread::sleep_for(std::chrono::seconds(8));
  ASSERT_GT(std::atoi(Guest(vm.domain, "cat /tmp/last 2>/dev/null || echo 0").c_str()), 5);

  ASSERT_EQ(Cli(b_,
                {"recovery", "replication", "failover", "-g", kSrRg, "--vault", "v1", "-n", "db1",
                 "--planned"},
                &out),
            0)
      << out;
  Json it = b_.Get(item).json;
  EXPECT_EQ(it["properties"]["protectionState"], "FailedOver") << it.dump();
  EXPECT_EQ(it["properties"]["failoverType"], "Planned");
  // The VM is stopped in A; B's disk is A's, byte for byte: no record is lost.
  auto info = d().Get(vm.path + "/instanceView");
  EXPECT_NE(info.body.find("PowerState/stopped"), std::string::npos) << info.Describe();
  std::string a_file = DiskFile(d(), "db1-data");
  ASSERT_FALSE(a_file.empty());
  std::string b_file = DiskFile(b_, "db1-lun0");
  ASSERT_FALSE(b_file.empty());
  EXPECT_EQ(RunCommand({"qemu-img", "compare", "-U", a_file, b_file}, &out), 0) << out;
  // And the VM in B reads them all.
  auto got = b_.Get(b_.VmPath(kSrRg, "db1"));
  ASSERT_EQ(got.status, 200) << got.Describe();
  std::string domain = "stratus-" + got.json["properties"].value("vmId", "");
  std::string count = Guest(domain,
                            "i=1; while dd if=/dev/" + dev + " bs=512 skip=$i count=1 2>/dev/null | "
                            "grep -q \"^REC $(printf %08d $i)\"; do i=$((i+1)); done; echo $((i-1))",
                            Seconds(300));
  std::cerr << "[ info ] planned failover: " << std::atoi(count.c_str())
            << " records in B, A's data disk and B's identical\n";
  EXPECT_GT(std::atoi(count.c_str()), 5);
  // Its NIC is in vnet-b with A's address and MAC, served by B's router.
  ExpectSourceAddress(domain, mac);
}

// Whether replica disk `disk` of item `item_id` in region `d` has a layer not sealed (a cycle
// being written).
bool CycleOpen(const Daemon& d, const std::string& item_id, const std::string& disk) {
  Json chain = Json::parse(
      ReadWholeFile(d.data_dir() + "/replicas/" + item_id + "/" + disk + "/chain.json"), nullptr,
      false);
  if (!chain.is_object()) return false;
  for (auto& l : chain["layers"])
    if (!l.value("sealed", true)) return true;
  return false;
}

TEST_F(SiteRecoveryTest, TargetKilledMidCycleKeepsNoTornPointAndResumesWithWhatIsMissing) {
  TestVm vm;
  ASSERT_NO_FATAL_FAILURE(CreateVm(
      "db1", TinyVm().ComputerName("db1").OsDisk("db1-os", 1).DataDisk(0, "db1-data"), &vm));
  std::string dev;
  ASSERT_NO_FATAL_FAILURE(WaitGuestDisk(vm, "lun0", &dev));
  const std::string item = b_.VaultPath(kSrRg, "v1") + "/replicationProtectedItems/db1";
  ASSERT_NO_FATAL_FAILURE(ReplicateIntoB(vm, item));
  Json it;
  for (auto end = std::chrono::steady_clock::now() + Seconds(180);
       std::chrono::steady_clock::now() < end;) {
    it = b_.Get(item).json;
    if (it["properties"].value("recoveryPointCount", 0) >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_GE(it["properties"].value("recoveryPointCount", 0), 1) << it.dump();
  std::string item_id = it["properties"].value("replicatedItemId", "");
  // A slow link (A's send cap, 4 Mbit/s) and 8 MiB of new data: the next cycle takes ~16 s.
  const std::string cap = d().SubPath() + "/providers/Stratus.RecoveryServices/regionPairings/regionB";
  ASSERT_EQ(d().Patch(cap, {{"properties", {{"replicationBandwidthMbps", 4}}}}).status, 200);
  Guest(vm.domain, "dd if=/dev/urandom of=/dev/" + dev + " bs=1M count=8 seek=64 conv=fsync 2>/dev/null");
  bool open = false;
  for (auto end = std::chrono::steady_clock::now() + Seconds(60);
       !open && std::chrono::steady_clock::now() < end;) {
    open = CycleOpen(b_, item_id, "lun0");
    if (!open) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(open) << "no cycle was seen in flight";
  std::this_thread::sleep_for(std::chrono::seconds(5));  // some of its data is written
  Json before = b_.Get(item).json;
  int points_before = before["properties"].value("recoveryPointCount", 0);
  uint64_t last_seq = 0;
  Json listed = b_.Get(item + "/recoveryPoints").json;
  for (auto& p : listed["value"])
    last_seq = std::max(last_seq, p["properties"].value("sequence", uint64_t{0}));
  ASSERT_TRUE(b_.Kill9());
  ASSERT_TRUE(b_.Start());
  // The cut cycle left no point.
  EXPECT_EQ(b_.Get(item).json["properties"].value("recoveryPointCount", 0), points_before);
  // A's next cycle resumes the cut one: of its 8 MiB, only what B had not made durable is sent
  // again (batches of about a second of the capped link, ~0.5 MB each), with what changed since.
  Json resumed;
  for (auto end = std::chrono::steady_clock::now() + Seconds(120);
       resumed.is_null() && std::chrono::steady_clock::now() < end;) {
    uint64_t first = 0;
    Json now = b_.Get(item + "/recoveryPoints").json;
    for (auto& p : now["value"]) {
      uint64_t s = p["properties"].value("sequence", uint64_t{0});
      if (s > last_seq && (first == 0 || s < first)) {
        first = s;
        resumed = p;
      }
    }
    if (resumed.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_FALSE(resumed.is_null()) << "no cycle after the cut: " << b_.Get(item).Describe();
  std::cerr << "[ info ] resumed cycle: " << resumed["properties"].dump() << "\n";
  EXPECT_TRUE(resumed["properties"].contains("resumedFromSequence")) << resumed.dump();
  EXPECT_LT(resumed["properties"].value("bytesReceived", uint64_t{0}), 7u << 20)
      << "the part of the cut cycle B held was not sent again";
  ASSERT_EQ(d().Patch(cap, {{"properties", {{"replicationBandwidthMbps", 0}}}}).status, 200);
  // And the cycles after it hold A's disk.
  ASSERT_SUCCEEDED(ActAndWait("POST", vm.path + "/powerOff"));
  for (auto end = std::chrono::steady_clock::now() + Seconds(180);
       std::chrono::steady_clock::now() < end;) {
    it = b_.Get(item).json;
    if (it["properties"].value("recoveryPointCount", 0) >= points_before + 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_GE(it["properties"].value("recoveryPointCount", 0), points_before + 2) << it.dump();
  std::string a_file = DiskFile(d(), "db1-data");
  ASSERT_FALSE(a_file.empty());
  std::string out;
  EXPECT_EQ(RunCommand({"qemu-img", "compare", "-U", "-q", a_file, NewestReplica(b_, item_id, "lun0")},
                       &out),
            0)
      << "B's newest point holds A's disk: " << out;
}

TEST_F(SiteRecoveryTest, ATwoVmGroupFailsOverToOneInstant) {
  // Two VMs, records written alternately: record i on app1 when i is odd, on app2 when even,
  // each fsync'd and answered before the next is written (the host orders them). A point of both
  // VMs at one instant holds records 1..K for one K: app1's last and app2's last differ by one.
  TestVm vm1, vm2;
  ASSERT_NO_FATAL_FAILURE(CreateVm(
      "app1", TinyVm().ComputerName("app1").OsDisk("app1-os", 1).DataDisk(0, "app1-data"), &vm1));
  ASSERT_NO_FATAL_FAILURE(CreateVm(
      "app2", TinyVm().ComputerName("app2").OsDisk("app2-os", 1).DataDisk(0, "app2-data"), &vm2));
  std::string dev1, dev2;
  ASSERT_NO_FATAL_FAILURE(WaitGuestDisk(vm1, "lun0", &dev1));
  ASSERT_NO_FATAL_FAILURE(WaitGuestDisk(vm2, "lun0", &dev2));
  ASSERT_NO_FATAL_FAILURE(PairBWithA());
  ASSERT_EQ(b_.Put(b_.GroupPath(kSrRg), {{"location", "regionB"}}).status, 201);
  ASSERT_EQ(b_.Put(b_.VaultPath(kSrRg, "v1"), {{"location", "regionB"}}).status, 201);
  std::string out;
  for (auto* vm : {&vm1, &vm2})
    ASSERT_EQ(Cli(b_,
                  {"recovery", "replication", "enable", "-g", kSrRg, "--vault", "v1", "-n",
                   vm == &vm1 ? "app1" : "app2", "--source-region", "regionA", "--source-vm",
                   vm->id, "--frequency", "5", "--consistency-group", "app"},
                  &out),
              0)
        << out;
  const std::string group = b_.VaultPath(kSrRg, "v1") + "/replicationConsistencyGroups/app";
  auto group_points = [&] {
    Json g = b_.Get(group).json;
    return g["properties"].value("recoveryPointCount", 0);
  };
  for (auto end = std::chrono::steady_clock::now() + Seconds(240);
       group_points() < 1 && std::chrono::steady_clock::now() < end;)
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_GE(group_points(), 1) << b_.Get(group).Describe();
  int before = group_points();

  // Writing, while the group's cycles run (a point every 5 s).
  auto write = [&](int i) {
    const TestVm& vm = i % 2 ? vm1 : vm2;
    Guest(vm.domain, "printf 'REC %08d\\n' " + std::to_string(i) + " | dd of=/dev/" +
                         (i % 2 ? dev1 : dev2) + " bs=512 seek=" + std::to_string(i) +
                         " count=1 conv=notrunc,fsync 2>/dev/null");
  };
  int written = 0;
  for (auto end = std::chrono::steady_clock::now() + Seconds(25);
       std::chrono::steady_clock::now() < end;)
    write(++written);
  ASSERT_GT(written, 10);
  // The points taken while the records were written: the middle one is the test's.
  Json pts = b_.Get(group + "/recoveryPoints").json;
  ASSERT_GE(static_cast<int>(pts["value"].size()), before + 3) << pts.dump();
  std::string point = pts["value"][before + (pts["value"].size() - before) / 2].value("name", "");
  Json shown = b_.Get(group).json;
  std::cerr << "[ info ] group freeze " << shown["properties"].value("lastFreezeMilliseconds", -1.0)
            << " ms, RPO " << shown["properties"].value("rpoInSeconds", -1) << " s, "
            << written << " records written\n";
  EXPECT_EQ(shown["properties"]["memberCount"], 2);
  EXPECT_GT(shown["properties"].value("lastFreezeMilliseconds", -1.0), 0.0) << shown.dump();

  ASSERT_EQ(Cli(b_,
                {"recovery", "group", "failover", "-g", kSrRg, "--vault", "v1", "-n", "app",
                 "--recovery-point", point, "-o", "json"},
                &out),
            0)
      << out;
  // The operation as JSON, after the progress lines.
  size_t json_at = out.rfind("\n{");
  Json op = Json::parse(json_at == std::string::npos ? out : out.substr(json_at), nullptr, false);
  ASSERT_TRUE(op.is_object()) << out;
  EXPECT_EQ(op["properties"]["vms"].size(), 2u) << out;
  std::string d1, d2;
  for (auto [name, domain] : {std::pair{"app1", &d1}, std::pair{"app2", &d2}}) {
    auto got = b_.Get(b_.VmPath(kSrRg, name));
    ASSERT_EQ(got.status, 200) << got.Describe();
    *domain = "stratus-" + got.json["properties"].value("vmId", "");
  }
  // The last record of `dev` in `domain`, stepping by 2 from `first` while each block holds its
  // record; 0 when the first is missing.
  auto last_record = [](const std::string& domain, const std::string& dev, int first) {
    std::string n = Guest(domain,
                          "i=" + std::to_string(first) + "; last=0; while dd if=/dev/" + dev +
                              " bs=512 skip=$i count=1 2>/dev/null | grep -q \"^REC $(printf %08d $i)\"; "
                              "do last=$i; i=$((i+2)); done; echo $last",
                          Seconds(300));
    return std::atoi(n.c_str());
  };
  int last1 = last_record(d1, dev1, 1), last2 = last_record(d2, dev2, 2);
  std::cerr << "[ info ] at point " << point << ": app1's last record " << last1 << ", app2's "
            << last2 << "\n";
  EXPECT_GT(std::max(last1, last2), 0) << "the point was taken while records were written";
  EXPECT_LT(std::max(last1, last2), written) << "the point was taken while records were written";
  EXPECT_EQ(std::abs(last1 - last2), 1) << "one instant: records 1.." << std::max(last1, last2);
}

}  // namespace
}  // namespace stratus::e2e
