// Backup and restore of a VM's network interfaces (restore_network.h), through the API of an
// in-process region (FakeHypervisor, FakeNetworkEngine, real SQLite, qcow2 disks and vaults):
// a VM with two NICs — one with a static address, a security group and a reserved public IP,
// one forwarding — is backed up; the point records both; a restore gives the new VM the same
// NICs (the public IP comes back) or the ones its networkProfile asks for; bad requests change
// nothing; a restore that fails after making NICs removes them.
#include "recovery/service/restore_network.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/in_process_region.h"
#include "recovery/service/recovery_test_util.h"

namespace stratus::recovery::service {
namespace {

using test::InProcessRegion;
using ::testing::HasSubstr;

const std::string kNetVault = InProcessRegion::Path("Stratus.RecoveryServices/vaults", "v1");

std::string Net(const std::string& type, const std::string& name) {
  return InProcessRegion::Path("Stratus.Network/" + type, name);
}
std::string Vm(const std::string& name) {
  return InProcessRegion::Path("Stratus.Compute/virtualMachines", name);
}
std::string Subnet(const std::string& name) { return Net("virtualNetworks", "v1") + "/subnets/" + name; }

Json IpConfig(const std::string& subnet, const std::string& static_ip = "",
              const std::string& pip = "") {
  Json p = {{"subnet", {{"id", Subnet(subnet)}}}};
  if (!static_ip.empty()) {
    p["privateIPAddress"] = static_ip;
    p["privateIPAllocationMethod"] = "Static";
  }
  if (!pip.empty()) p["publicIPAddress"] = {{"id", Net("publicIPAddresses", pip)}};
  return {{"name", "ipconfig1"}, {"properties", p}};
}

class RestoreNetworkTest : public test::InProcessRegionTest {
 protected:
  // VNET v1 (front 10.1.1.0/24, back 10.1.2.0/24), NSG web, Static public IP pip1, VM vm1
  // (stopped) with NIC web-a (front, Static 10.1.1.10, NSG web, pip1; primary) and NIC web-b
  // (back, Dynamic 10.1.2.5 while 10.1.2.4 is free, IP forwarding), protected in vault v1; one backup: point_.
  void SetUp() override {
    test::InProcessRegionTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    Json subnets = Json::array();
    for (auto [n, p] : {std::pair{"front", "10.1.1.0/24"}, std::pair{"back", "10.1.2.0/24"}})
      subnets.push_back({{"name", n}, {"properties", {{"addressPrefix", p}}}});
    ASSERT_EQ(Call("PUT", Net("virtualNetworks", "v1"),
                   {{"location", "regionA"},
                    {"properties",
                     {{"addressSpace", {{"addressPrefixes", {"10.1.0.0/16"}}}}, {"subnets", subnets}}}})
                  .status,
              201);
    ASSERT_EQ(Call("PUT", Net("networkSecurityGroups", "web"), {{"location", "regionA"}}).status,
              201);
    auto pip = Call("PUT", Net("publicIPAddresses", "pip1"),
                    {{"location", "regionA"}, {"sku", {{"name", "Standard"}}}});
    ASSERT_EQ(pip.status, 201) << pip.body.dump();
    pip_address_ = pip.body["properties"].value("ipAddress", "");
    ASSERT_FALSE(pip_address_.empty());
    ASSERT_EQ(PutNic("web-a", {IpConfig("front", "10.1.1.10", "pip1")},
                     {{"networkSecurityGroup", {{"id", Net("networkSecurityGroups", "web")}}}}),
              201);
    // web-b's Dynamic address is not the lowest free one of its subnet (pad held that).
    ASSERT_EQ(PutNic("pad", {IpConfig("back")}), 201);
    ASSERT_EQ(PutNic("web-b", {IpConfig("back")}, {{"enableIPForwarding", true}}), 201);
    ASSERT_EQ(Call("DELETE", Net("networkInterfaces", "pad")).status, 200);
    Json vm = InProcessRegion::VmBody(1);
    vm["properties"]["networkProfile"] = {
        {"networkInterfaces",
         {{{"id", Net("networkInterfaces", "web-a")}, {"properties", {{"primary", true}}}},
          {{"id", Net("networkInterfaces", "web-b")}, {"properties", {{"primary", false}}}}}}};
    auto put = Call("PUT", Vm("vm1"), vm);
    ASSERT_EQ(put.status, 201) << put.body.dump();
    ASSERT_EQ(Finish(put)["status"], "Succeeded");
    ASSERT_EQ(Finish(Call("POST", Vm("vm1") + "/powerOff", Json::object()))["status"],
              "Succeeded");
    ASSERT_EQ(Call("PUT", kNetVault, {{"location", "regionA"}}).status, 201);
    auto pol = Call("PUT", kNetVault + "/backupPolicies/p1", test_util::DailyPolicyBody());
    ASSERT_EQ(pol.status, 201) << pol.body.dump();
    ASSERT_EQ(Call("PUT", kNetVault + "/protectedItems/vm1",
                   {{"properties",
                     {{"sourceResourceId", put.body.value("id", "")},
                      {"policyId", pol.body.value("id", "")}}}})
                  .status,
              201);
    auto r = Call("POST", kNetVault + "/protectedItems/vm1/backup", Json::object());
    ASSERT_EQ(r.status, 202) << r.body.dump();
    ASSERT_EQ(Finish(r)["status"], "Succeeded");
    point_ = Call("GET", r.body.value("id", "")).body["properties"].value("recoveryPointId", "");
    ASSERT_FALSE(point_.empty());
  }

  int PutNic(const std::string& name, Json configs, Json props = Json::object()) {
    props["ipConfigurations"] = std::move(configs);
    auto r = Call("PUT", Net("networkInterfaces", name),
                  {{"location", "regionA"}, {"properties", props}});
    EXPECT_LT(r.status, 300) << r.body.dump();
    return r.status;
  }

  // Deletes vm1 and its two NICs (pip1 stays: it is reserved).
  void DeleteSource() {
    ASSERT_EQ(Finish(Call("DELETE", Vm("vm1")))["status"], "Succeeded");
    ASSERT_EQ(Call("DELETE", Net("networkInterfaces", "web-a")).status, 200);
    ASSERT_EQ(Call("DELETE", Net("networkInterfaces", "web-b")).status, 200);
  }

  // POST restore as new VM `vm` with `extra` members; the finished operation.
  Json Restore(const std::string& vm, Json extra = Json::object()) {
    Json body = {{"restoreType", "AlternateLocation"}, {"vmName", vm}};
    body.update(extra);
    auto r = Call("POST", point_ + "/restore", body);
    EXPECT_EQ(r.status, 202) << r.body.dump();
    return Finish(r);
  }
  // The restore job's result (the operation's properties).
  static Json ResultOf(const Json& op) { return op["properties"].value("result", Json::object()); }

  static const Json& Config(const Json& nic) {
    return nic["properties"]["ipConfigurations"][0]["properties"];
  }
  size_t Count(const std::string& type) {
    auto r = Call("GET", std::string(InProcessRegion::kRg) + "/providers/Stratus.Network/" + type);
    return r.body.value("value", Json::array()).size();
  }

  std::string point_, pip_address_;
};

TEST_F(RestoreNetworkTest, TheRecoveryPointRecordsTheNics) {
  Json props = Call("GET", point_).body["properties"];
  const Json& nics = props["networkInterfaces"];
  ASSERT_EQ(nics.size(), 2u) << props.dump();
  EXPECT_EQ(nics[0]["name"], "web-a");
  EXPECT_EQ(nics[0]["primary"], true);
  EXPECT_EQ(nics[0]["networkSecurityGroup"], Net("networkSecurityGroups", "web"));
  EXPECT_EQ(nics[0]["ipConfigurations"][0]["privateIPAddress"], "10.1.1.10");
  EXPECT_EQ(nics[0]["ipConfigurations"][0]["privateIPAllocationMethod"], "Static");
  EXPECT_EQ(nics[0]["ipConfigurations"][0]["subnet"], Subnet("front"));
  EXPECT_EQ(nics[0]["ipConfigurations"][0]["publicIPAddress"]["ipAddress"], pip_address_);
  EXPECT_EQ(nics[1]["name"], "web-b");
  EXPECT_EQ(nics[1]["enableIPForwarding"], true);
  EXPECT_EQ(nics[1]["ipConfigurations"][0]["privateIPAddress"], "10.1.2.5");
}

TEST_F(RestoreNetworkTest, ABackupWhoseNicCannotBeReadRecordsTheOthersAndSaysSo) {
  EXPECT_EQ(Call("GET", point_).body["properties"]["networkInterfacesComplete"], true);
  // web-b's record is lost (as if the store lost it): the VM still names it.
  ASSERT_TRUE(store()->Delete(ToLower(Net("networkInterfaces", "web-b"))).ok());
  auto r = Call("POST", kNetVault + "/protectedItems/vm1/backup", Json::object());
  ASSERT_EQ(r.status, 202) << r.body.dump();
  ASSERT_EQ(Finish(r)["status"], "Succeeded") << "the backup failed for a NIC it could not read";
  std::string point =
      Call("GET", r.body.value("id", "")).body["properties"].value("recoveryPointId", "");
  Json props = Call("GET", point).body["properties"];
  EXPECT_EQ(props["networkInterfacesComplete"], false) << props.dump();
  ASSERT_EQ(props["networkInterfaces"].size(), 1u) << props.dump();
  EXPECT_EQ(props["networkInterfaces"][0]["name"], "web-a");
  EXPECT_EQ(props["networkInterfaces"][0]["primary"], true);
  // A restore like the record gets the one NIC and says that some are missing.
  auto rs = Call("POST", point + "/restore", {{"restoreType", "AlternateLocation"}, {"vmName", "vm7"}});
  ASSERT_EQ(rs.status, 202) << rs.body.dump();
  Json op = Finish(rs);
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_THAT(ResultOf(op)["notes"].dump(), HasSubstr("lacks some of the VM's network interfaces"));
  EXPECT_EQ(Call("GET", Vm("vm7")).body["properties"]["networkProfile"]["networkInterfaces"].size(),
            1u);
}

TEST_F(RestoreNetworkTest, AVmWhoseNicsAreGoneComesBackWithTheSameAddressesAndItsReservedIp) {
  DeleteSource();
  EXPECT_EQ(Count("networkInterfaces"), 0u);
  Json op = Restore("vm2");
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  Json result = ResultOf(op);
  EXPECT_FALSE(result.contains("notes")) << result.dump();
  Json vm = Call("GET", Vm("vm2")).body;
  const Json& list = vm["properties"]["networkProfile"]["networkInterfaces"];
  ASSERT_EQ(list.size(), 2u) << vm.dump();
  EXPECT_EQ(list[0]["id"], Net("networkInterfaces", "vm2-nic0"));
  EXPECT_EQ(list[0]["properties"]["primary"], true);
  EXPECT_EQ(list[0]["properties"]["deleteOption"], "Delete");
  Json a = Call("GET", Net("networkInterfaces", "vm2-nic0")).body;
  EXPECT_EQ(Config(a)["privateIPAddress"], "10.1.1.10") << a.dump();
  EXPECT_EQ(Config(a)["privateIPAllocationMethod"], "Static");
  EXPECT_EQ(Config(a)["publicIPAddress"]["id"], Net("publicIPAddresses", "pip1"));
  EXPECT_EQ(a["properties"]["networkSecurityGroup"]["id"], Net("networkSecurityGroups", "web"));
  EXPECT_EQ(a["properties"]["virtualMachine"]["id"], vm.value("id", ""));
  Json b = Call("GET", Net("networkInterfaces", "vm2-nic1")).body;
  // The recorded Dynamic address, though a lower one is free.
  EXPECT_EQ(Config(b)["privateIPAddress"], "10.1.2.5");
  EXPECT_EQ(Config(b)["privateIPAllocationMethod"], "Dynamic");
  EXPECT_EQ(b["properties"]["enableIPForwarding"], true);
  // The reserved address is the same one, and the datapath NATs it to the restored NIC.
  Json pip = Call("GET", Net("publicIPAddresses", "pip1")).body;
  EXPECT_EQ(pip["properties"]["ipAddress"], pip_address_);
  EXPECT_EQ(pip["properties"]["ipConfiguration"]["id"],
            Net("networkInterfaces", "vm2-nic0") + "/ipConfigurations/ipconfig1");
  const network::VnetDatapath* d = net().Vnet("v1");
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(d->uplink.nats.size(), 1u);
  EXPECT_EQ(d->uplink.nats[0].public_ip.ToString(), pip_address_);
  EXPECT_EQ(d->uplink.nats[0].private_ip.ToString(), "10.1.1.10");
  ASSERT_EQ(result["networkInterfaces"].size(), 2u) << result.dump();
  EXPECT_EQ(result["networkInterfaces"][0]["ipConfigurations"][0]["publicIPAddress"], pip_address_);
  // The restore's NICs go with the VM; the reserved IP stays.
  ASSERT_EQ(Finish(Call("DELETE", Vm("vm2")))["status"], "Succeeded");
  EXPECT_EQ(Count("networkInterfaces"), 0u);
  EXPECT_EQ(Call("GET", Net("publicIPAddresses", "pip1")).status, 200);
}

TEST_F(RestoreNetworkTest, WhileTheSourceHoldsItsAddressesTheCopyGetsFreeOnesAndSaysSo) {
  Json op = Restore("vm3");
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  Json notes = ResultOf(op)["notes"];
  ASSERT_EQ(notes.size(), 3u) << op.dump();
  EXPECT_THAT(notes.dump(), HasSubstr("10.1.1.10 cannot be had again (PrivateIPAddressInUse)"));
  EXPECT_THAT(notes.dump(), HasSubstr("Public IP pip1 (" + pip_address_ + ") is used by network interface web-a"));
  Json a = Call("GET", Net("networkInterfaces", "vm3-nic0")).body;
  EXPECT_EQ(Config(a)["privateIPAddress"], "10.1.1.4") << a.dump();
  EXPECT_FALSE(Config(a).contains("publicIPAddress"));
  Json b = Call("GET", Net("networkInterfaces", "vm3-nic1")).body;
  EXPECT_EQ(Config(b)["privateIPAddress"], "10.1.2.4");
  // The source keeps everything.
  Json src = Call("GET", Net("networkInterfaces", "web-a")).body;
  EXPECT_EQ(Config(src)["publicIPAddress"]["id"], Net("publicIPAddresses", "pip1"));
}

TEST_F(RestoreNetworkTest, ANetworkProfileChoosesExistingAndNewNicsWithANewPublicIp) {
  ASSERT_EQ(PutNic("spare", {IpConfig("back")}), 201);
  Json profile = {
      {"networkApiVersion", "2020-11-01"},  // Azure's clients send it; taken and ignored
      {"networkInterfaces",
       {{{"id", Net("networkInterfaces", "spare")}, {"properties", {{"primary", false}}}}}},
      {"networkInterfaceConfigurations",
       {{{"name", "r-front"},
         {"properties",
          {{"primary", true},
           {"ipConfigurations",
            {{{"name", "ipconfig1"},
              {"properties",
               {{"subnet", {{"id", Subnet("front")}}},
                {"privateIPAddress", "10.1.1.50"},
                {"publicIPAddressConfiguration",
                 {{"name", "r-pip"}, {"sku", {{"name", "Standard"}}}}}}}}}}}}}}}};
  Json op = Restore("vm4", {{"networkProfile", profile}});
  ASSERT_EQ(op["status"], "Succeeded") << op.dump();
  Json vm = Call("GET", Vm("vm4")).body;
  const Json& list = vm["properties"]["networkProfile"]["networkInterfaces"];
  ASSERT_EQ(list.size(), 2u) << vm.dump();
  EXPECT_EQ(list[0]["id"], Net("networkInterfaces", "r-front"));  // the primary one first
  EXPECT_EQ(list[1]["properties"]["deleteOption"], "Detach");
  Json nic = Call("GET", Net("networkInterfaces", "r-front")).body;
  EXPECT_EQ(Config(nic)["privateIPAddress"], "10.1.1.50");
  Json pip = Call("GET", Net("publicIPAddresses", "r-pip")).body;
  EXPECT_EQ(pip["properties"]["publicIPAllocationMethod"], "Static");
  EXPECT_FALSE(pip["properties"].value("ipAddress", "").empty());
  EXPECT_EQ(Call("GET", Net("networkInterfaces", "spare")).body["properties"]["virtualMachine"]["id"],
            vm.value("id", ""));
  // An empty profile: a VM without NICs.
  Json none = Restore("vm5", {{"networkProfile", Json::object()}});
  ASSERT_EQ(none["status"], "Succeeded") << none.dump();
  EXPECT_TRUE(Call("GET", Vm("vm5"))
                  .body["properties"]["networkProfile"]["networkInterfaces"]
                  .empty());
}

TEST_F(RestoreNetworkTest, ABadNetworkProfileIsRefusedAndChangesNothing) {
  auto cfg = [](Json ip_config, const std::string& name = "n1", bool primary = true) {
    return Json{{"name", name},
                {"properties", {{"primary", primary}, {"ipConfigurations", {ip_config}}}}};
  };
  Json new_pip = IpConfig("front");
  new_pip["properties"]["publicIPAddressConfiguration"] = {
      {"name", "x-pip"},
      {"sku", {{"name", "Standard"}}},
      {"properties", {{"publicIPAllocationMethod", "Dynamic"}}}};
  Json pip_delete = IpConfig("front");
  pip_delete["properties"]["publicIPAddressConfiguration"] = {
      {"name", "x-pip"}, {"properties", {{"deleteOption", "Delete"}}}};
  Json both = IpConfig("front", "", "pip1");
  both["properties"]["publicIPAddressConfiguration"] = {{"name", "x-pip"}};
  struct Case {
    Json profile;
    int status;
    std::string code;
  } cases[] = {
      {Json::array(), 400, ""},
      {{{"nics", Json::array()}}, 400, ""},
      {{{"networkInterfaces", {{{"id", Net("networkInterfaces", "web-a")}}}}}, 409, "NicInUse"},
      {{{"networkInterfaces", {{{"id", Net("networkInterfaces", "nope")}}}}},
       404,
       "InvalidResourceReference"},
      {{{"networkInterfaceConfigurations",
         {cfg(IpConfig("front"), "n1"), cfg(IpConfig("back"), "n2")}}},
       400,
       "VmPrimaryNicRequired"},
      {{{"networkInterfaceConfigurations",
         {cfg(IpConfig("front"), "n1"), cfg(IpConfig("back"), "n2", false),
          cfg(IpConfig("back"), "n3", false)}}},
       400,
       "NetworkInterfaceCountExceeded"},
      {{{"networkInterfaceConfigurations", {cfg(IpConfig("front", "10.1.2.9"))}}},
       400,
       "PrivateIPAddressNotInSubnet"},
      {{{"networkInterfaceConfigurations", {cfg(IpConfig("front", "10.1.1.10"))}}},
       400,
       "PrivateIPAddressInUse"},
      {{{"networkInterfaceConfigurations",
         {cfg(IpConfig("front", "10.1.1.60"), "n1"), cfg(IpConfig("front", "10.1.1.60"), "n2", false)}}},
       400,
       "PrivateIPAddressInUse"},
      {{{"networkInterfaceConfigurations", {cfg(IpConfig("front", "", "pip1"))}}},
       400,
       "PublicIPAddressInUse"},
      {{{"networkInterfaceConfigurations", {cfg(both)}}}, 400, ""},
      {{{"networkInterfaceConfigurations", {cfg(new_pip)}}},
       400,
       "StandardSkuPublicIPAddressesMustBeStatic"},
      {{{"networkInterfaceConfigurations", {cfg(pip_delete)}}}, 400, ""},
      {{{"networkApiVersion", 7}}, 400, ""},
      {{{"networkInterfaceConfigurations", {cfg(IpConfig("front"), "web-b")}}}, 409, "ResourceExists"},
      {{{"networkInterfaceConfigurations", {cfg(IpConfig("nowhere"))}}}, 404, "InvalidResourceReference"},
      {{{"networkInterfaceConfigurations",
         {cfg({{"name", "ipconfig1"}, {"properties", {{"privateIPAddress", 5}}}})}}},
       400,
       ""},
      {{{"networkInterfaceConfigurations",
         {cfg({{"name", "ipconfig1"},
               {"properties", {{"subnet", {{"id", 5}}}, {"publicIPAddress", "x"}}}})}}},
       400,
       ""},
  };
  size_t nics = Count("networkInterfaces"), pips = Count("publicIPAddresses");
  size_t jobs = Call("GET", kNetVault + "/backupJobs").body["value"].size();
  for (auto& c : cases) {
    auto r = Call("POST", point_ + "/restore",
                  {{"restoreType", "AlternateLocation"}, {"vmName", "bad"}, {"networkProfile", c.profile}});
    EXPECT_EQ(r.status, c.status) << c.profile.dump() << " -> " << r.body.dump();
    if (!c.code.empty()) {
      EXPECT_EQ(Code(r), c.code) << c.profile.dump() << " -> " << r.body.dump();
    }
  }
  // Only a restore as a new VM takes one.
  auto disks = Call("POST", point_ + "/restore",
                    {{"restoreType", "RestoreDisks"}, {"diskNamePrefix", "d"},
                     {"networkProfile", Json::object()}});
  EXPECT_EQ(disks.status, 400) << disks.body.dump();
  EXPECT_EQ(Count("networkInterfaces"), nics);
  EXPECT_EQ(Count("publicIPAddresses"), pips);
  EXPECT_EQ(Call("GET", kNetVault + "/backupJobs").body["value"].size(), jobs);
  EXPECT_EQ(Call("GET", Vm("bad")).status, 404);
  // Without a profile, a recorded security group that is gone is named.
  DeleteSource();
  ASSERT_EQ(Call("DELETE", Net("networkSecurityGroups", "web")).status, 200);
  auto gone = Call("POST", point_ + "/restore", {{"restoreType", "AlternateLocation"}, {"vmName", "vm9"}});
  EXPECT_EQ(gone.status, 404) << gone.body.dump();
  EXPECT_THAT(gone.body.dump(), HasSubstr("Pass a networkProfile"));
  EXPECT_EQ(Count("networkInterfaces"), 0u);
}

TEST_F(RestoreNetworkTest, PublicIpsThePoolCannotHoldTogetherAreRefusedBeforeTheJob) {
  // The pool (203.0.113.1-6) has one address left: each of two new public IPs would pass a
  // check alone, together they do not.
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(Call("PUT", Net("publicIPAddresses", "fill" + std::to_string(i)),
                   {{"location", "regionA"}, {"sku", {{"name", "Standard"}}}})
                  .status,
              201);
  auto with_pip = [](const std::string& nic, const std::string& subnet, bool primary) {
    Json ic = IpConfig(subnet);
    ic["properties"]["publicIPAddressConfiguration"] = {{"name", nic + "-pip"}};
    return Json{{"name", nic},
                {"properties", {{"primary", primary}, {"ipConfigurations", {ic}}}}};
  };
  size_t nics = Count("networkInterfaces"), pips = Count("publicIPAddresses");
  size_t jobs = Call("GET", kNetVault + "/backupJobs").body["value"].size();
  auto r = Call("POST", point_ + "/restore",
                {{"restoreType", "AlternateLocation"},
                 {"vmName", "vm6"},
                 {"networkProfile",
                  {{"networkInterfaceConfigurations",
                    {with_pip("f1", "front", true), with_pip("f2", "back", false)}}}}});
  EXPECT_EQ(r.status, 409) << r.body.dump();
  EXPECT_EQ(Code(r), "PublicIPAddressPoolExhausted") << r.body.dump();
  // An existing Dynamic public IP without an address counts too.
  ASSERT_EQ(Call("PUT", Net("publicIPAddresses", "dyn"),
                 {{"location", "regionA"},
                  {"sku", {{"name", "Basic"}}},
                  {"properties", {{"publicIPAllocationMethod", "Dynamic"}}}})
                .status,
            201);
  Json dyn = IpConfig("back", "", "dyn");
  auto r2 = Call("POST", point_ + "/restore",
                 {{"restoreType", "AlternateLocation"},
                  {"vmName", "vm6"},
                  {"networkProfile",
                   {{"networkInterfaceConfigurations",
                     {with_pip("f1", "front", true),
                      {{"name", "f2"},
                       {"properties", {{"primary", false}, {"ipConfigurations", {dyn}}}}}}}}}});
  EXPECT_EQ(r2.status, 409) << r2.body.dump();
  EXPECT_EQ(Code(r2), "PublicIPAddressPoolExhausted") << r2.body.dump();
  EXPECT_EQ(Count("networkInterfaces"), nics);
  EXPECT_EQ(Count("publicIPAddresses"), pips + 1);
  EXPECT_EQ(Call("GET", kNetVault + "/backupJobs").body["value"].size(), jobs);
  // One new public IP fits.
  auto ok = Call("POST", point_ + "/restore",
                 {{"restoreType", "AlternateLocation"},
                  {"vmName", "vm6"},
                  {"networkProfile",
                   {{"networkInterfaceConfigurations", {with_pip("f1", "front", true)}}}}});
  ASSERT_EQ(ok.status, 202) << ok.body.dump();
  EXPECT_EQ(Finish(ok)["status"], "Succeeded");
}

TEST_F(RestoreNetworkTest, ARestoreThatFailsAfterMakingNicsRemovesThem) {
  auto with_pip = [](const std::string& nic, const std::string& subnet, bool primary) {
    Json ic = IpConfig(subnet);
    ic["properties"]["publicIPAddressConfiguration"] = {{"name", nic + "-pip"}};
    return Json{{"name", nic},
                {"properties", {{"primary", primary}, {"ipConfigurations", {ic}}}}};
  };
  // An existing NIC the restore would attach stays, unattached.
  ASSERT_EQ(PutNic("keep", {IpConfig("back")}), 201);
  size_t nics = Count("networkInterfaces"), pips = Count("publicIPAddresses");
  auto disks = [&] {
    return Call("GET", std::string(InProcessRegion::kRg) + "/providers/Stratus.Compute/disks")
        .body.value("value", Json::array())
        .size();
  };
  size_t disks_before = disks();
  // The NICs, their public IPs and the disks are made; the VM's definition fails.
  hv().FailDefine(Internal("the host refused the domain"));
  auto r = Call("POST", point_ + "/restore",
                {{"restoreType", "AlternateLocation"},
                 {"vmName", "vm6"},
                 {"vmSize", "Standard_S3"},  // three NICs: more than the recorded size allows
                 {"networkProfile",
                  {{"networkInterfaces",
                    {{{"id", Net("networkInterfaces", "keep")}, {"properties", {{"primary", false}}}}}},
                   {"networkInterfaceConfigurations",
                    {with_pip("f1", "front", true), with_pip("f2", "back", false)}}}}});
  ASSERT_EQ(r.status, 202) << r.body.dump();
  Json op = Finish(r);
  hv().FailDefine(Status::Ok());
  EXPECT_EQ(op["status"], "Failed") << op.dump();
  EXPECT_THAT(op.dump(), HasSubstr("the host refused the domain"));
  EXPECT_EQ(Count("networkInterfaces"), nics);
  EXPECT_EQ(Count("publicIPAddresses"), pips);
  EXPECT_EQ(Call("GET", Vm("vm6")).status, 404);
  EXPECT_EQ(disks(), disks_before) << "the restored disks went with the failed VM";
  for (auto* n : {"f1", "f2"}) {
    EXPECT_EQ(Call("GET", Net("publicIPAddresses", std::string(n) + "-pip")).status, 404);
    EXPECT_EQ(Call("GET", Net("networkInterfaces", n)).status, 404);
  }
  Json keep = Call("GET", Net("networkInterfaces", "keep")).body;
  EXPECT_EQ(keep.value("name", ""), "keep") << keep.dump();
  EXPECT_TRUE(keep["properties"].value("virtualMachine", Json()).is_null()) << keep.dump();
}

}  // namespace
}  // namespace stratus::recovery::service
