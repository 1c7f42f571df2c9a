// Network mapping of site recovery (failover_network.h) between two in-process regions: the NICs
// A records with each cycle, network mappings and their bad inputs, a failover whose VM keeps
// its private address and MAC in the mapped network, a test failover into an isolated copy of
// the source network (made, shared, removed by the cleanup), per-item overrides, and a NIC
// without a mapping left out with a note.
#include <gtest/gtest.h>

#include "recovery/site/replication_test_util.h"

namespace stratus::recovery::site {
namespace {

std::string NetPath(const std::string& type, const std::string& name) {
  return InProcessRegion::Path("Stratus.Network/" + type, name);
}

Json VnetBody(const std::string& region, const std::string& space,
              std::vector<std::pair<std::string, std::string>> subnets) {
  Json s = Json::array();
  for (auto& [name, prefix] : subnets)
    s.push_back({{"name", name}, {"properties", {{"addressPrefix", prefix}}}});
  return {{"location", region},
          {"properties", {{"addressSpace", {{"addressPrefixes", {space}}}}, {"subnets", s}}}};
}

class FailoverNetworkTest : public ReplicationTest {
 protected:
  void SetUp() override {
    ReplicationTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // A: db1 gets a NIC in vnet-a/front with a static address, and a second one in vnet-x (no
    // mapping in B).
    ASSERT_NO_FATAL_FAILURE(PutVnet(*a_, "vnet-a", "regionA", "10.1.0.0/16",
                                    {{"front", "10.1.1.0/24"}, {"back", "10.1.2.0/24"}}));
    ASSERT_NO_FATAL_FAILURE(
        PutVnet(*a_, "vnet-x", "regionA", "10.9.0.0/16", {{"default", "10.9.0.0/24"}}));
    auto nic = [&](const std::string& name, const std::string& subnet, const std::string& ip) {
      Json props = {{"subnet", {{"id", subnet}}}};
      if (!ip.empty()) {
        props["privateIPAllocationMethod"] = "Static";
        props["privateIPAddress"] = ip;
      }
      return a_->Call("PUT", NetPath("networkInterfaces", name),
                      {{"location", "regionA"},
                       {"properties",
                        {{"ipConfigurations", {{{"name", "ipconfig1"}, {"properties", props}}}}}}});
    };
    auto n1 = nic("db1-nic", NetPath("virtualNetworks", "vnet-a") + "/subnets/front", "10.1.1.10");
    ASSERT_EQ(n1.status, 201) << n1.body.dump();
    mac_ = n1.body["properties"].value("macAddress", "");
    auto n2 = nic("db1-nic2", NetPath("virtualNetworks", "vnet-x") + "/subnets/default", "");
    ASSERT_EQ(n2.status, 201) << n2.body.dump();
    Json vm = a_->Call("GET", kVm).body;
    Json body = {{"location", "regionA"}, {"properties", vm["properties"]}};
    body["properties"]["networkProfile"] = {
        {"networkInterfaces",
         {{{"id", NetPath("networkInterfaces", "db1-nic")}, {"properties", {{"primary", true}}}},
          {{"id", NetPath("networkInterfaces", "db1-nic2")}, {"properties", {{"primary", false}}}}}}};
    for (const char* k : {"provisioningState", "vmId", "instanceView", "timeCreated"})
      body["properties"].erase(k);
    auto put = a_->Call("PUT", kVm, body);
    ASSERT_LT(put.status, 300) << put.body.dump();
    a_->Finish(put);
    // B: vnet-b with the same space, vnet-t for drills.
    ASSERT_NO_FATAL_FAILURE(
        PutVnet(*b_, "vnet-b", "regionB", "10.1.0.0/16", {{"front", "10.1.1.0/24"}}));
    ASSERT_NO_FATAL_FAILURE(
        PutVnet(*b_, "vnet-t", "regionB", "10.1.0.0/16", {{"front", "10.1.1.0/24"}}));
  }
  // VNET `name` of region `r` (in `location`) with `subnets`.
  static void PutVnet(InProcessRegion& r, const std::string& name, const std::string& location,
                      const std::string& space,
                      std::vector<std::pair<std::string, std::string>> subnets) {
    auto put = r.Call("PUT", NetPath("virtualNetworks", name),
                      VnetBody(location, space, std::move(subnets)));
    ASSERT_EQ(put.status, 201) << put.body.dump();
  }
  // vnet-a → vnet-b, as mapping "a-to-b".
  void MapAToB() {
    auto r = b_->Call("PUT", Mapping("a-to-b"),
                      {{"properties", {{"primaryNetworkId", NetPath("virtualNetworks", "vnet-a")},
                                       {"recoveryNetworkId", NetPath("virtualNetworks", "vnet-b")}}}});
    ASSERT_EQ(r.status, 201) << r.body.dump();
  }
  std::string Mapping(const std::string& name) {
    return kVault + "/replicationNetworkMappings/" + name;
  }
  static const network::DhcpHost* HostOf(const network::VnetDatapath* d, const std::string& mac) {
    if (!d) return nullptr;
    for (auto& h : d->hosts)
      if (EqualsIgnoreCase(h.mac, mac)) return &h;
    return nullptr;
  }
  static std::string ColonMac(std::string mac) {
    for (char& c : mac) c = c == '-' ? ':' : static_cast<char>(std::tolower(c));
    return mac;
  }
  std::string mac_;  // db1-nic's, as ARM shows it
};

TEST_F(FailoverNetworkTest, MappingsAreCheckedAndOnePerSourceNetwork) {
  auto code = [&](const std::string& name, const Json& props) {
    auto r = b_->Call("PUT", Mapping(name), {{"properties", props}});
    return std::to_string(r.status) + " " + InProcessRegion::Code(r);
  };
  const std::string src = NetPath("virtualNetworks", "vnet-a");
  const std::string dst = NetPath("virtualNetworks", "vnet-b");
  EXPECT_EQ(code("m", {{"recoveryNetworkId", dst}}), "400 MissingParameter");
  EXPECT_EQ(code("m", {{"primaryNetworkId", "/nope"}, {"recoveryNetworkId", dst}}),
            "400 InvalidResourceId");
  EXPECT_EQ(code("m", {{"primaryNetworkId", src}}), "400 MissingParameter");
  EXPECT_EQ(code("m", {{"primaryNetworkId", src},
                       {"recoveryNetworkId", NetPath("virtualNetworks", "nowhere")}}),
            "404 InvalidResourceReference");
  EXPECT_EQ(code("m", {{"primaryNetworkId", src}, {"recoveryNetworkId", dst},
                       {"testNetworkId", dst}}),
            "400 InvalidTestNetwork");
  EXPECT_EQ(code("m", {{"primaryNetworkId", src}, {"recoveryNetworkId", dst}, {"extra", 1}}),
            "400 InvalidParameter");
  std::string other_sub = dst;
  other_sub.replace(other_sub.find("sub1"), 4, "sub2");
  EXPECT_EQ(code("m", {{"primaryNetworkId", src}, {"recoveryNetworkId", other_sub}}),
            "400 InvalidResourceId");
  EXPECT_EQ(b_->Call("GET", Mapping("m")).status, 404) << "nothing recorded";
  auto ok = b_->Call("PUT", Mapping("m"), {{"properties", {{"primaryNetworkId", src},
                                                           {"recoveryNetworkId", dst}}}});
  ASSERT_EQ(ok.status, 201) << ok.body.dump();
  EXPECT_EQ(ok.body["properties"]["recoveryNetworkFriendlyName"], "vnet-b");
  EXPECT_EQ(ok.body["properties"]["state"], "Paired");
  EXPECT_EQ(code("m2", {{"primaryNetworkId", src}, {"recoveryNetworkId", dst}}),
            "409 NetworkMappingExists");
  // A GET-modify-PUT works; the list shows it; DELETE removes it.
  Json again = b_->Call("GET", Mapping("m")).body;
  again["properties"]["testNetworkId"] = NetPath("virtualNetworks", "vnet-t");
  auto upd = b_->Call("PUT", Mapping("m"), again);
  ASSERT_EQ(upd.status, 200) << upd.body.dump();
  EXPECT_EQ(upd.body["properties"]["testNetworkFriendlyName"], "vnet-t");
  EXPECT_EQ(b_->Call("GET", kVault + "/replicationNetworkMappings").body["value"].size(), 1u);
  EXPECT_EQ(b_->Call("DELETE", Mapping("m")).status, 200);
  EXPECT_EQ(b_->Call("DELETE", Mapping("m")).status, 204);
}

TEST_F(FailoverNetworkTest, FailoverKeepsAddressAndMacAndATestRunsInAnIsolatedCopy) {
  const std::string item = kVault + "/replicationProtectedItems/db1";
  ASSERT_NO_FATAL_FAILURE(MapAToB());
  // Bad per-item NIC settings are refused with nothing recorded.
  Json body = ItemBody(vm_id_);
  body["properties"]["vmNics"] = {{{"nicId", NetPath("networkInterfaces", "db1-nic")},
                                   {"recoveryVMNetworkId", NetPath("virtualNetworks", "nowhere")}}};
  EXPECT_EQ(InProcessRegion::Code(b_->Call("PUT", item, body)), "InvalidResourceReference");
  body["properties"]["vmNics"] = {{{"nicId", "/x"}}};
  EXPECT_EQ(InProcessRegion::Code(b_->Call("PUT", item, body)), "InvalidResourceId");
  body["properties"]["vmNics"] = {{{"nicId", NetPath("networkInterfaces", "db1-nic")},
                                   {"recoveryVMNetworkId", NetPath("virtualNetworks", "vnet-b")},
                                   {"tfoVMNetworkId", NetPath("virtualNetworks", "vnet-b")}}};
  EXPECT_EQ(InProcessRegion::Code(b_->Call("PUT", item, body)), "InvalidTestNetwork");
  EXPECT_EQ(b_->Call("GET", item).status, 404);
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, ItemBody(vm_id_)))["status"], "Succeeded");
  Json it = WaitPoints("db1", 1);
  // A recorded both NICs and their networks; the item says where each goes.
  const Json& cfg = it["properties"]["vmConfig"];
  ASSERT_EQ(cfg["networkInterfaces"].size(), 2u) << cfg.dump();
  EXPECT_EQ(cfg["virtualNetworks"].size(), 2u) << cfg.dump();
  const Json& nics = it["properties"]["networkInterfaces"];
  ASSERT_EQ(nics.size(), 2u) << it.dump();
  EXPECT_EQ(nics[0]["from"], "NetworkMapping");
  EXPECT_EQ(nics[0]["networkId"], NetPath("virtualNetworks", "vnet-b"));
  EXPECT_EQ(nics[0]["subnetName"], "front");
  EXPECT_EQ(nics[0]["testFailover"]["isolated"], true);
  EXPECT_EQ(nics[1]["from"], "None") << "vnet-x has no mapping";
  EXPECT_TRUE(nics[1]["networkId"].is_null());

  // A test failover: isolated copies of vnet-a and vnet-x (same spaces, private subnets), each
  // NIC with its address and MAC there.
  Json tf = b_->Finish(b_->Call("POST", item + "/testFailover", Json::object()));
  ASSERT_EQ(tf["status"], "Succeeded") << tf.dump();
  const std::string iso = NetPath("virtualNetworks", "vnet-a-test");
  EXPECT_EQ(tf["properties"]["testNetworks"],
            Json::array({iso, NetPath("virtualNetworks", "vnet-x-test")}))
      << tf.dump();
  auto iso_vnet = b_->Call("GET", iso);
  ASSERT_EQ(iso_vnet.status, 200);
  EXPECT_EQ(iso_vnet.body["properties"]["addressSpace"]["addressPrefixes"][0], "10.1.0.0/16");
  ASSERT_EQ(iso_vnet.body["properties"]["subnets"].size(), 2u);
  EXPECT_EQ(iso_vnet.body["properties"]["subnets"][0]["properties"]["defaultOutboundAccess"], false);
  ASSERT_NE(b_->net().Vnet("vnet-a-test"), nullptr);
  EXPECT_EQ(b_->net().Vnet("vnet-a-test")->uplink.private_subnets.size(), 2u)
      << "no way out of the drill's network";
  const network::DhcpHost* h = HostOf(b_->net().Vnet("vnet-a-test"), ColonMac(mac_));
  ASSERT_NE(h, nullptr) << "the test VM's NIC has A's MAC";
  EXPECT_EQ(h->ip.ToString(), "10.1.1.10");

  // A real failover while the drill runs: in vnet-b, the same address and MAC.
  a_->control()->replication()->Stop();
  a_->control()->pairing()->Stop();
  Json fo = b_->Finish(b_->Call("POST", item + "/unplannedFailover", Json::object()));
  ASSERT_EQ(fo["status"], "Succeeded") << fo.dump();
  ASSERT_EQ(fo["properties"]["networkInterfaces"].size(), 1u) << fo.dump();
  Json after = b_->Call("GET", item).body["properties"];
  EXPECT_FALSE(after.contains("rpoInSeconds")) << "a failed-over item replicates no more";
  EXPECT_EQ(after["replicationHealth"], "Normal");
  bool noted = false;  // the NIC of vnet-x, which has no mapping, is left out and said so
  for (auto& n : fo["properties"]["networkNotes"])
    noted = noted || n.get<std::string>().find("vnet-x") != std::string::npos;
  EXPECT_TRUE(noted) << fo.dump();
  const Json& made = fo["properties"]["networkInterfaces"][0];
  EXPECT_EQ(made["macAddress"], mac_);
  EXPECT_EQ(made["ipConfigurations"][0]["privateIPAddress"], "10.1.1.10");
  EXPECT_EQ(made["ipConfigurations"][0]["subnetId"],
            NetPath("virtualNetworks", "vnet-b") + "/subnets/front");
  h = HostOf(b_->net().Vnet("vnet-b"), ColonMac(mac_));
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->ip.ToString(), "10.1.1.10");
  Json vm = b_->Call("GET", fo["properties"].value("vmId", "")).body;
  ASSERT_EQ(vm["properties"]["networkProfile"]["networkInterfaces"].size(), 1u) << vm.dump();
  EXPECT_EQ(vm["properties"]["networkProfile"]["networkInterfaces"][0]["properties"]["deleteOption"],
            "Delete");

  // The cleanup: the test VM, its NIC and the isolated network go; the failed-over VM stays.
  Json cl = b_->Finish(b_->Call("POST", item + "/testFailoverCleanup", Json::object()));
  ASSERT_EQ(cl["status"], "Succeeded") << cl.dump();
  EXPECT_EQ(b_->Call("GET", iso).status, 404);
  EXPECT_EQ(b_->Call("GET", NetPath("virtualNetworks", "vnet-x-test")).status, 404);
  EXPECT_EQ(b_->net().Vnet("vnet-a-test"), nullptr);
  EXPECT_EQ(b_->Call("GET", NetPath("networkInterfaces", "db1-test-nic0")).status, 404);
  EXPECT_NE(HostOf(b_->net().Vnet("vnet-b"), ColonMac(mac_)), nullptr);
}

TEST_F(FailoverNetworkTest, AnItemsNicSettingsOverrideTheMapping) {
  const std::string item = kVault + "/replicationProtectedItems/db1";
  ASSERT_EQ(b_->Call("PUT", Mapping("a-to-b"),
                     {{"properties", {{"primaryNetworkId", NetPath("virtualNetworks", "vnet-a")},
                                      {"recoveryNetworkId", NetPath("virtualNetworks", "vnet-b")},
                                      {"testNetworkId", NetPath("virtualNetworks", "vnet-t")}}}})
                .status,
            201);
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, ItemBody(vm_id_)))["status"], "Succeeded");
  WaitPoints("db1", 1);
  // Only the NIC settings change: no new enable (200 at once), and the address is taken at the
  // failover; the second NIC goes into vnet-b too, its subnet chosen by name.
  Json body = ItemBody(vm_id_);
  body["properties"]["vmNics"] = {
      {{"nicId", NetPath("networkInterfaces", "db1-nic")}, {"replicaNicStaticIPAddress", "10.1.1.77"}},
      {{"nicId", NetPath("networkInterfaces", "db1-nic2")},
       {"recoveryVMNetworkId", NetPath("virtualNetworks", "vnet-b")},
       {"recoveryVMSubnetName", "front"}}};
  auto upd = b_->Call("PUT", item, body);
  ASSERT_EQ(upd.status, 200) << upd.body.dump();
  EXPECT_EQ(upd.body["properties"]["networkInterfaces"][1]["from"], "Item");
  EXPECT_EQ(upd.body["properties"]["networkInterfaces"][0]["testFailover"]["networkId"],
            NetPath("virtualNetworks", "vnet-t"));
  body["properties"]["vmNics"][1]["recoveryVMSubnetName"] = "nope";
  EXPECT_EQ(InProcessRegion::Code(b_->Call("PUT", item, body)), "InvalidResourceReference");
  // The drill uses the mapping's test network, which stays after the cleanup.
  Json tf = b_->Finish(b_->Call("POST", item + "/testFailover", Json::object()));
  ASSERT_EQ(tf["status"], "Succeeded") << tf.dump();
  EXPECT_NE(HostOf(b_->net().Vnet("vnet-t"), ColonMac(mac_)), nullptr);
  ASSERT_EQ(b_->Finish(b_->Call("POST", item + "/testFailoverCleanup", Json::object()))["status"],
            "Succeeded");
  EXPECT_EQ(b_->Call("GET", NetPath("virtualNetworks", "vnet-t")).status, 200);
  a_->control()->replication()->Stop();
  a_->control()->pairing()->Stop();
  Json fo = b_->Finish(b_->Call("POST", item + "/unplannedFailover", Json::object()));
  ASSERT_EQ(fo["status"], "Succeeded") << fo.dump();
  ASSERT_EQ(fo["properties"]["networkInterfaces"].size(), 2u) << fo.dump();
  EXPECT_EQ(fo["properties"]["networkInterfaces"][0]["ipConfigurations"][0]["privateIPAddress"],
            "10.1.1.77");
  EXPECT_EQ(fo["properties"]["networkInterfaces"][0]["macAddress"], mac_);
  EXPECT_EQ(fo["properties"]["networkInterfaces"][1]["ipConfigurations"][0]["subnetId"],
            NetPath("virtualNetworks", "vnet-b") + "/subnets/front");
}

// A recovery plan's public IP step: skipped in a drill (its VMs stay isolated); after the
// failover, a Static public IP made in B on the VM's primary NIC, its address in the step.
TEST_F(FailoverNetworkTest, APlanStepGivesTheFailedOverVmAPublicIp) {
  const std::string item = kVault + "/replicationProtectedItems/db1";
  ASSERT_NO_FATAL_FAILURE(MapAToB());
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, ItemBody(vm_id_)))["status"], "Succeeded");
  WaitPoints("db1", 1);
  const std::string plan = kVault + "/replicationRecoveryPlans/app";
  Json action = {{"actionName", "db1-public-ip"},
                 {"customDetails",
                  {{"instanceType", "PublicIpActionDetails"},
                   {"replicationProtectedItem", "db1"},
                   {"publicIpAddressName", "db1-ip"}}}};
  Json body = {{"properties",
                {{"vmReadiness", "PowerState"},
                 {"groups", {{{"replicationProtectedItems", {item}}, {"endGroupActions", {action}}}}}}}};
  Json bad = body;
  bad["properties"]["groups"][0].erase("endGroupActions");
  bad["properties"]["groups"][0]["startGroupActions"] = {action};
  EXPECT_EQ(InProcessRegion::Code(b_->Call("PUT", plan, bad)), "InvalidParameter")
      << "before its item fails over";
  bad = body;
  bad["properties"]["groups"][0]["endGroupActions"][0]["customDetails"]["replicationProtectedItem"] =
      "nope";
  EXPECT_EQ(InProcessRegion::Code(b_->Call("PUT", plan, bad)), "ReplicatedItemNotFound");
  ASSERT_EQ(b_->Call("PUT", plan, body).status, 201);

  Json drill = b_->Finish(b_->Call("POST", plan + "/testFailover", Json::object()));
  ASSERT_EQ(drill["status"], "Succeeded") << drill.dump();
  EXPECT_EQ(drill["properties"]["steps"].back()["state"], "Skipped") << drill.dump();
  EXPECT_EQ(b_->Call("GET", NetPath("publicIPAddresses", "db1-ip")).status, 404);
  ASSERT_EQ(b_->Finish(b_->Call("POST", plan + "/testFailoverCleanup", Json::object()))["status"],
            "Succeeded");

  a_->control()->replication()->Stop();
  a_->control()->pairing()->Stop();
  Json run = b_->Finish(b_->Call("POST", plan + "/unplannedFailover", Json::object()));
  ASSERT_EQ(run["status"], "Succeeded") << run.dump();
  const Json& last = run["properties"]["steps"].back();
  EXPECT_EQ(last["name"], "group 1: db1-public-ip");
  EXPECT_EQ(last["state"], "Succeeded") << last.dump();
  auto pip = b_->Call("GET", NetPath("publicIPAddresses", "db1-ip"));
  ASSERT_EQ(pip.status, 200);
  const std::string address = pip.body["properties"].value("ipAddress", "");
  EXPECT_EQ(address.rfind("203.0.113.", 0), 0u) << pip.body.dump();
  EXPECT_NE(last.value("detail", "").find(address), std::string::npos) << last.dump();
  bool natted = false;
  for (auto& n : b_->net().Vnet("vnet-b")->uplink.nats)
    natted = natted || (n.public_ip.ToString() == address && n.private_ip.ToString() == "10.1.1.10");
  EXPECT_TRUE(natted) << "the public address leads to the failed-over VM's private one";
}

// A failover cut by a restart of stratusd (here: its record put back as it is between the VM's
// creation and the failover's end) is undone at the next start: the VM, its disks and NICs go,
// the item is Protected again and fails over again.
TEST_F(FailoverNetworkTest, AFailoverCutByARestartIsUndoneAndRunsAgain) {
  const std::string item = kVault + "/replicationProtectedItems/db1";
  ASSERT_NO_FATAL_FAILURE(MapAToB());
  ASSERT_EQ(b_->Finish(b_->Call("PUT", item, ItemBody(vm_id_)))["status"], "Succeeded");
  WaitPoints("db1", 1);
  a_->control()->replication()->Stop();
  a_->control()->pairing()->Stop();
  Json fo = b_->Finish(b_->Call("POST", item + "/unplannedFailover", Json::object()));
  ASSERT_EQ(fo["status"], "Succeeded") << fo.dump();
  const std::string vm = fo["properties"].value("vmId", "");
  const std::string nic = fo["properties"]["networkInterfaces"][0].value("id", "");
  Json vm_body = b_->Call("GET", vm).body;
  std::vector<std::string> disks = {
      vm_body["properties"]["storageProfile"]["osDisk"]["managedDisk"].value("id", "")};
  for (auto& d : vm_body["properties"]["storageProfile"]["dataDisks"])
    disks.push_back(d["managedDisk"].value("id", ""));
  auto rec = b_->store()->Get(ToLower(item));
  ASSERT_TRUE(rec.ok());
  rec->body["properties"]["protectionState"] = "FailingOver";
  rec->internal["failoverMade"] = {{"vm", vm}, {"disks", disks}, {"nics", {nic}},
                                   {"testNetworks", Json::array()}, {"tmpPrefix", "failover-x-"}};
  ASSERT_TRUE(b_->store()->Put(*rec).ok());
  ASSERT_TRUE(b_->Restart());
  EXPECT_EQ(b_->Call("GET", vm).status, 404);
  EXPECT_EQ(b_->Call("GET", nic).status, 404);
  for (auto& d : disks) EXPECT_EQ(b_->Call("GET", d).status, 404) << d;
  Json it = b_->Call("GET", item).body;
  EXPECT_EQ(it["properties"]["protectionState"], "Protected") << it.dump();
  Json again = b_->Finish(b_->Call("POST", item + "/unplannedFailover", Json::object()));
  ASSERT_EQ(again["status"], "Succeeded") << again.dump();
  EXPECT_EQ(again["properties"]["networkInterfaces"][0]["macAddress"], mac_)
      << "the MAC is free again: " << again.dump();
}

}  // namespace
}  // namespace stratus::recovery::site
