// Stratus.Network through the API of an in-process region (fake hypervisor, fake network
// engine): VNETs and subnets, NICs and their addresses, VMs holding NICs, and the datapath the
// engine is asked for.
#include <gtest/gtest.h>

#include "common/in_process_region.h"
#include "network/router_routing.h"

namespace stratus::test {
namespace {

class NetworkProviderTest : public InProcessRegionTest {
 protected:
  static std::string Vnet(const std::string& name) {
    return std::string(kRg) + "/providers/Stratus.Network/virtualNetworks/" + name;
  }
  static std::string Nic(const std::string& name) {
    return std::string(kRg) + "/providers/Stratus.Network/networkInterfaces/" + name;
  }
  static std::string Vm(const std::string& name) {
    return std::string(kRg) + "/providers/Stratus.Compute/virtualMachines/" + name;
  }
  // `subnets`: [name, prefix] pairs, in order.
  static Json VnetBody(Json spaces, std::vector<std::pair<std::string, std::string>> subnets) {
    Json s = Json::array();
    for (auto& [name, prefix] : subnets)
      s.push_back({{"name", name}, {"properties", {{"addressPrefix", prefix}}}});
    return {{"location", "regionA"},
            {"properties", {{"addressSpace", {{"addressPrefixes", spaces}}}, {"subnets", s}}}};
  }
  static Json NicBody(const std::string& vnet, const std::string& subnet,
                      const std::string& static_ip = "") {
    Json props = {{"subnet", {{"id", Vnet(vnet) + "/subnets/" + subnet}}}};
    if (!static_ip.empty()) {
      props["privateIPAddress"] = static_ip;
      props["privateIPAllocationMethod"] = "Static";
    }
    return {{"location", "regionA"},
            {"properties", {{"ipConfigurations", {{{"name", "ipconfig1"}, {"properties", props}}}}}}};
  }
  static std::string Ip(const api::ApiResponse& nic) {
    return nic.body["properties"]["ipConfigurations"][0]["properties"].value("privateIPAddress", "");
  }
  void MakeVnet() {
    auto r = Call("PUT", Vnet("v1"),
                  VnetBody({"10.1.0.0/16"}, {{"front", "10.1.1.0/24"}, {"back", "10.1.2.0/29"}}));
    ASSERT_EQ(r.status, 201) << r.body.dump();
  }
};

TEST_F(NetworkProviderTest, VnetWithSubnetsIsStoredAndBuiltOnTheHost) {
  MakeVnet();
  auto get = Call("GET", Vnet("v1"));
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(get.body["type"], "Stratus.Network/virtualNetworks");
  EXPECT_EQ(get.body["properties"]["provisioningState"], "Succeeded");
  ASSERT_EQ(get.body["properties"]["subnets"].size(), 2u);
  EXPECT_EQ(get.body["properties"]["subnets"][0]["id"], Vnet("v1") + "/subnets/front");
  const network::VnetDatapath* d = net().Vnet("v1");
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(d->subnets.size(), 2u);
  EXPECT_EQ(d->subnets[0].gateway.ToString(), "10.1.1.1");
  EXPECT_EQ(d->dns_domain, "v1.internal");
  EXPECT_NE(d->subnets[0].bridge, d->subnets[1].bridge);
  // Subnets as child resources: list, get, add one to the VNET in use.
  auto list = Call("GET", Vnet("v1") + "/subnets");
  ASSERT_EQ(list.status, 200) << list.body.dump();
  EXPECT_EQ(list.body["value"].size(), 2u);
  auto one = Call("GET", Vnet("v1") + "/subnets/back");
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(one.body["properties"]["addressPrefix"], "10.1.2.0/29");
  auto add = Call("PUT", Vnet("v1") + "/subnets/GatewaySubnet",
                  {{"properties", {{"addressPrefix", "10.1.255.0/27"}}}});
  ASSERT_EQ(add.status, 201) << add.body.dump();
  EXPECT_EQ(net().Vnet("v1")->subnets.size(), 3u);
  // More address space on a VNET in use.
  auto grow = Call("PUT", Vnet("v1"),
                   VnetBody({"10.1.0.0/16", "10.9.0.0/16"},
                            {{"front", "10.1.1.0/24"}, {"back", "10.1.2.0/29"},
                             {"GatewaySubnet", "10.1.255.0/27"}, {"far", "10.9.0.0/24"}}));
  ASSERT_EQ(grow.status, 200) << grow.body.dump();
  EXPECT_EQ(net().Vnet("v1")->subnets.size(), 4u);
  // The same PUT again changes nothing (same etag).
  auto again = Call("PUT", Vnet("v1"),
                    VnetBody({"10.1.0.0/16", "10.9.0.0/16"},
                             {{"front", "10.1.1.0/24"}, {"back", "10.1.2.0/29"},
                              {"GatewaySubnet", "10.1.255.0/27"}, {"far", "10.9.0.0/24"}}));
  EXPECT_EQ(again.headers["ETag"], grow.headers["ETag"]);
  // Deleting the VNET removes its datapath.
  EXPECT_EQ(Call("DELETE", Vnet("v1")).status, 200);
  EXPECT_EQ(net().VnetCount(), 0u);
  EXPECT_EQ(Call("GET", Vnet("v1")).status, 404);
}

TEST_F(NetworkProviderTest, BadLayoutsAreRefusedAndCreateNothing) {
  struct Case {
    Json spaces;
    std::vector<std::pair<std::string, std::string>> subnets;
    std::string code;
  };
  std::vector<Case> cases = {
      {{"10.0.0.0/33"}, {}, "InvalidAddressPrefixFormat"},
      {{"10.0.0.5/24"}, {}, "InvalidAddressPrefixFormat"},
      {{"10.0.0.0/16", "10.0.128.0/17"}, {}, "NetcfgVnetAddressSpacesOverlap"},
      {{"10.0.0.0/16"}, {{"a", "10.1.0.0/24"}}, "NetcfgSubnetRangeOutsideVnet"},
      {{"10.0.0.0/16"}, {{"a", "10.0.0.0/24"}, {"b", "10.0.0.128/25"}}, "NetcfgSubnetRangesOverlap"},
      {{"10.0.0.0/16"}, {{"a", "10.0.0.0/30"}}, "NetcfgInvalidSubnet"},
      {{"10.0.0.0/16"}, {{"a", "not-a-prefix"}}, "InvalidAddressPrefixFormat"},
  };
  for (auto& c : cases) {
    auto r = Call("PUT", Vnet("bad"), VnetBody(c.spaces, c.subnets));
    EXPECT_EQ(r.status, 400) << c.code << ": " << r.body.dump();
    EXPECT_EQ(Code(r), c.code) << r.body.dump();
  }
  EXPECT_EQ(Call("PUT", Vnet("bad"), {{"location", "regionA"}, {"properties", Json::object()}}).status, 400);
  EXPECT_EQ(Call("GET", Vnet("bad")).status, 404);
  EXPECT_EQ(net().VnetCount(), 0u);
}

TEST_F(NetworkProviderTest, NicAddressesAreAllocatedInOrderAndChecked) {
  MakeVnet();
  auto a = Call("PUT", Nic("a"), NicBody("v1", "front"));
  ASSERT_EQ(a.status, 201) << a.body.dump();
  EXPECT_EQ(Ip(a), "10.1.1.4");  // .0-.3 are reserved
  EXPECT_EQ(a.body["properties"]["ipConfigurations"][0]["properties"]["privateIPAllocationMethod"],
            "Dynamic");
  std::string mac = a.body["properties"].value("macAddress", "");
  EXPECT_EQ(mac.size(), 17u);
  EXPECT_EQ(mac.substr(0, 9), "52-54-00-");
  auto b = Call("PUT", Nic("b"), NicBody("v1", "front"));
  EXPECT_EQ(Ip(b), "10.1.1.5");
  auto s = Call("PUT", Nic("s"), NicBody("v1", "front", "10.1.1.200"));
  ASSERT_EQ(s.status, 201) << s.body.dump();
  EXPECT_EQ(Ip(s), "10.1.1.200");

  struct Bad {
    std::string ip;
    std::string code;
  };
  for (auto& c : std::vector<Bad>{{"10.1.2.4", "PrivateIPAddressNotInSubnet"},
                                  {"10.1.1.1", "PrivateIPAddressInReservedRange"},
                                  {"10.1.1.255", "PrivateIPAddressInReservedRange"},
                                  {"10.1.1.5", "PrivateIPAddressInUse"},
                                  {"10.1.1", "InvalidIPAddressFormat"}}) {
    auto r = Call("PUT", Nic("x"), NicBody("v1", "front", c.ip));
    EXPECT_EQ(r.status, 400) << c.ip;
    EXPECT_EQ(Code(r), c.code) << c.ip << ": " << r.body.dump();
  }
  // Dynamic with an address: that one when it is free, else the next free one, never an error.
  auto wish = [&](const std::string& name, const std::string& ip) {
    Json body = NicBody("v1", "front", ip);
    body["properties"]["ipConfigurations"][0]["properties"]["privateIPAllocationMethod"] =
        "Dynamic";
    return Call("PUT", Nic(name), body);
  };
  auto w1 = wish("w1", "10.1.1.77");
  ASSERT_EQ(w1.status, 201) << w1.body.dump();
  EXPECT_EQ(Ip(w1), "10.1.1.77");
  EXPECT_EQ(w1.body["properties"]["ipConfigurations"][0]["properties"]["privateIPAllocationMethod"],
            "Dynamic");
  EXPECT_EQ(Ip(wish("w2", "10.1.1.77")), "10.1.1.6");  // taken
  EXPECT_EQ(Ip(wish("w3", "10.1.1.1")), "10.1.1.7");   // reserved
  for (const char* n : {"w1", "w2", "w3"}) EXPECT_EQ(Call("DELETE", Nic(n)).status, 200);

  auto missing = Call("PUT", Nic("x"), NicBody("v1", "nowhere"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Code(missing), "InvalidResourceReference");
  EXPECT_EQ(Call("GET", Nic("x")).status, 404);

  // A /29 has 3 usable addresses; the fourth NIC gets a clear error and nothing is created.
  for (const char* n : {"p1", "p2", "p3"}) ASSERT_EQ(Call("PUT", Nic(n), NicBody("v1", "back")).status, 201);
  auto full = Call("PUT", Nic("p4"), NicBody("v1", "back"));
  EXPECT_EQ(full.status, 400);
  EXPECT_EQ(Code(full), "SubnetIsFull");
  EXPECT_EQ(Call("GET", Nic("p4")).status, 404);
  // A freed address is given again, lowest first.
  EXPECT_EQ(Call("DELETE", Nic("a")).status, 200);
  EXPECT_EQ(Ip(Call("PUT", Nic("c"), NicBody("v1", "front"))), "10.1.1.4");

  // The engine serves every NIC's MAC -> address.
  const network::VnetDatapath* d = net().Vnet("v1");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->hosts.size(), 6u);

  // Subnets with NICs cannot go or change.
  auto del = Call("DELETE", Vnet("v1") + "/subnets/back");
  EXPECT_EQ(del.status, 409);
  EXPECT_EQ(Code(del), "InUseSubnetCannotBeDeleted");
  auto shrink = Call("PUT", Vnet("v1"), VnetBody({"10.1.0.0/16"}, {{"front", "10.1.1.0/24"}}));
  EXPECT_EQ(Code(shrink), "InUseSubnetCannotBeDeleted");
  auto change = Call("PUT", Vnet("v1") + "/subnets/back", {{"properties", {{"addressPrefix", "10.1.3.0/24"}}}});
  EXPECT_EQ(Code(change), "InUseSubnetCannotBeUpdated");
  EXPECT_EQ(Code(Call("DELETE", Vnet("v1"))), "InUseSubnetCannotBeDeleted");
  // The subnet shows which IP configurations use it.
  auto sub = Call("GET", Vnet("v1") + "/subnets/back");
  EXPECT_EQ(sub.body["properties"]["ipConfigurations"].size(), 3u);
}

TEST_F(NetworkProviderTest, ANicMadeWithAMacKeepsItAndAMacIsUniqueInItsVnet) {
  MakeVnet();
  ASSERT_EQ(Call("PUT", Vnet("v2"), VnetBody({"10.2.0.0/16"}, {{"front", "10.2.1.0/24"}})).status,
            201);
  Json body = NicBody("v1", "front");
  body["properties"]["macAddress"] = "52-54-00-AB-CD-01";
  auto a = Call("PUT", Nic("a"), body);
  ASSERT_EQ(a.status, 201) << a.body.dump();
  EXPECT_EQ(a.body["properties"]["macAddress"], "52-54-00-AB-CD-01");
  ASSERT_NE(net().Vnet("v1"), nullptr);
  bool served = false;
  for (auto& h : net().Vnet("v1")->hosts) served = served || h.mac == "52:54:00:ab:cd:01";
  EXPECT_TRUE(served) << "DHCP answers the MAC asked for";
  // The same MAC in the same VNET: refused, nothing made; in another VNET (its own layer 2): made.
  body["properties"]["macAddress"] = "52:54:00:ab:cd:01";
  auto twice = Call("PUT", Nic("b"), body);
  EXPECT_EQ(twice.status, 409) << twice.body.dump();
  EXPECT_EQ(Code(twice), "MacAddressInUse");
  EXPECT_EQ(Call("GET", Nic("b")).status, 404);
  Json other = NicBody("v2", "front");
  other["properties"]["macAddress"] = "52-54-00-AB-CD-01";
  EXPECT_EQ(Call("PUT", Nic("c"), other).status, 201);
  // Moved into v1, c would share a's MAC there: refused.
  Json moved = NicBody("v1", "front");
  EXPECT_EQ(Code(Call("PUT", Nic("c"), moved)), "MacAddressInUse");
  // A NIC keeps its MAC: the same one again is fine, another is refused.
  body["properties"]["macAddress"] = "52-54-00-AB-CD-01";
  EXPECT_EQ(Call("PUT", Nic("a"), body).status, 200);
  body["properties"]["macAddress"] = "52-54-00-AB-CD-02";
  EXPECT_EQ(Code(Call("PUT", Nic("a"), body)), "PropertyChangeNotAllowed");
  for (const char* bad : {"01-00-5E-00-00-01", "00-00-00-00-00-00", "12-34-56-78-9A-BC",
                          "52-54-00-AB-CD", "52-54-00-AB-CD-GG"}) {
    Json b = NicBody("v1", "front");
    b["properties"]["macAddress"] = bad;
    auto r = Call("PUT", Nic("d"), b);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(Code(r), "InvalidMacAddress") << bad;
  }
  EXPECT_EQ(Call("GET", Nic("d")).status, 404);
}

TEST_F(NetworkProviderTest, AStaleIfMatchIsPreconditionFailedAndChangesNothing) {
  MakeVnet();
  auto created = Call("PUT", Nic("n1"), NicBody("v1", "front"));
  ASSERT_EQ(created.status, 201) << created.body.dump();
  const std::string etag = created.headers["ETag"];
  ASSERT_FALSE(etag.empty());
  const std::string nsg = std::string(kRg) + "/providers/Stratus.Network/networkSecurityGroups/n1";
  ASSERT_EQ(Call("PUT", nsg, {{"location", "regionA"}}).status, 201);
  // A writer that read the first version changes it...
  Json with_nsg = NicBody("v1", "front");
  with_nsg["properties"]["networkSecurityGroup"] = {{"id", nsg}};
  auto first = Call("PUT", Nic("n1"), with_nsg, {{"if-match", etag}});
  ASSERT_EQ(first.status, 200) << first.body.dump();
  // ... a second one with the same ETag is refused, and nothing changes (record, datapath).
  network::SecurityDatapath before = net().security();
  auto stale = Call("PUT", Nic("n1"), NicBody("v1", "back"), {{"if-match", etag}});
  EXPECT_EQ(stale.status, 412) << stale.body.dump();
  Json now = Call("GET", Nic("n1")).body;
  EXPECT_EQ(now["properties"]["networkSecurityGroup"]["id"], nsg);
  EXPECT_EQ(now["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"],
            Vnet("v1") + "/subnets/front");
  EXPECT_EQ(net().security().nics.size(), before.nics.size());
  // The NSG's own ETag guards it the same way; If-None-Match: * refuses a create over it.
  auto nsg_etag = Call("GET", nsg).headers["ETag"];
  EXPECT_EQ(Call("PUT", nsg, {{"location", "regionA"}}, {{"if-match", "\"stale\""}}).status, 412);
  EXPECT_EQ(Call("PUT", nsg, {{"location", "regionA"}}, {{"if-none-match", "*"}}).status, 412);
  EXPECT_EQ(Call("GET", nsg).headers["ETag"], nsg_etag);
}

TEST_F(NetworkProviderTest, VmHoldsItsNicsAndKeepsTheirAddressesAcrossDeallocate) {
  MakeVnet();
  ASSERT_EQ(Call("PUT", Nic("n1"), NicBody("v1", "front")).status, 201);
  ASSERT_EQ(Call("PUT", Nic("n2"), NicBody("v1", "front")).status, 201);
  Json vm = InProcessRegion::VmBody(0);
  vm["properties"]["networkProfile"] = {
      {"networkInterfaces",
       {{{"id", Nic("n1")}, {"properties", {{"primary", true}}}},
        {{"id", Nic("n2")}, {"properties", {{"primary", false}}}}}}};
  auto put = Call("PUT", Vm("web"), vm);
  ASSERT_EQ(put.status, 201) << put.body.dump();
  Finish(put);
  auto nic = Call("GET", Nic("n1"));
  EXPECT_EQ(nic.body["properties"]["virtualMachine"]["id"], Vm("web"));
  EXPECT_EQ(nic.body["properties"]["primary"], true);
  std::string ip = Ip(nic);
  // The domain plugs both NICs, primary first, with their MACs; DNS knows the VM's name.
  auto dom = hv().Get("stratus-" + Call("GET", Vm("web")).body["properties"].value("vmId", ""));
  ASSERT_TRUE(dom.has_value());
  ASSERT_EQ(dom->spec.nics.size(), 2u);
  std::string mac = nic.body["properties"].value("macAddress", "");
  std::replace(mac.begin(), mac.end(), '-', ':');
  EXPECT_EQ(ToLower(dom->spec.nics[0].mac), ToLower(mac));
  const network::VnetDatapath* d = net().Vnet("v1");
  ASSERT_NE(d, nullptr);
  bool named = false;
  for (auto& h : d->hosts) named = named || (h.hostname == "host-1" && h.ip.ToString() == ip);
  EXPECT_TRUE(named);

  // A NIC in use cannot be deleted or taken by another VM.
  auto del = Call("DELETE", Nic("n1"));
  EXPECT_EQ(del.status, 409);
  EXPECT_EQ(Code(del), "NicInUse");
  Json other = InProcessRegion::VmBody(0);
  other["properties"]["storageProfile"]["osDisk"] = {{"name", "other-os"}};
  other["properties"]["networkProfile"] = {{"networkInterfaces", {{{"id", Nic("n1")}}}}};
  auto taken = Call("PUT", Vm("other"), other);
  EXPECT_EQ(taken.status, 409) << taken.body.dump();
  EXPECT_EQ(Code(taken), "NicInUse");

  // Deallocate and start: the same address.
  Finish(Call("POST", Vm("web") + "/deallocate"));
  Finish(Call("POST", Vm("web") + "/start"));
  EXPECT_EQ(Ip(Call("GET", Nic("n1"))), ip);

  // Deleting the VM releases its NICs (deleteOption Detach).
  Finish(Call("DELETE", Vm("web")));
  EXPECT_TRUE(Call("GET", Nic("n1")).body["properties"]["virtualMachine"].is_null());
  EXPECT_EQ(Call("DELETE", Nic("n1")).status, 200);
}

TEST_F(NetworkProviderTest, NicsArePluggedAndUnpluggedWhileTheVmRuns) {
  MakeVnet();
  ASSERT_EQ(Call("PUT", Nic("n1"), NicBody("v1", "front")).status, 201);
  ASSERT_EQ(Call("PUT", Nic("n2"), NicBody("v1", "back")).status, 201);
  Json vm = InProcessRegion::VmBody(0);
  vm["properties"]["networkProfile"] = {{"networkInterfaces", {{{"id", Nic("n1")}}}}};
  Finish(Call("PUT", Vm("web"), vm));
  std::string dom = "stratus-" + Call("GET", Vm("web")).body["properties"].value("vmId", "");
  ASSERT_EQ(hv().Get(dom)->spec.nics.size(), 1u);
  // Plug n2 into the running VM: attached live, held by the VM, no restart.
  Json body = Call("GET", Vm("web")).body;
  body["properties"]["networkProfile"]["networkInterfaces"].push_back(
      {{"id", Nic("n2")}, {"properties", {{"primary", false}}}});
  auto plug = Call("PUT", Vm("web"), body);
  ASSERT_LT(plug.status, 300) << plug.body.dump();
  EXPECT_EQ(Finish(plug).value("status", ""), "Succeeded");
  auto d = hv().Get(dom);
  ASSERT_TRUE(d.has_value());
  ASSERT_EQ(d->spec.nics.size(), 2u);
  EXPECT_EQ(d->state, compute::PowerState::kRunning);
  EXPECT_EQ(Call("GET", Nic("n2")).body["properties"]["virtualMachine"]["id"], Vm("web"));
  // The primary NIC stays while the VM runs.
  Json swap = Call("GET", Vm("web")).body;
  for (auto& n : swap["properties"]["networkProfile"]["networkInterfaces"])
    n["properties"]["primary"] = n.value("id", "") == Nic("n2");
  auto refused = Call("PUT", Vm("web"), swap);
  EXPECT_EQ(refused.status, 409) << refused.body.dump();
  EXPECT_EQ(Code(refused), "OperationNotAllowed");
  // Unplug n2: detached live and released.
  Json back = Call("GET", Vm("web")).body;
  back["properties"]["networkProfile"]["networkInterfaces"].erase(1);
  EXPECT_EQ(Finish(Call("PUT", Vm("web"), back)).value("status", ""), "Succeeded");
  ASSERT_EQ(hv().Get(dom)->spec.nics.size(), 1u);
  EXPECT_TRUE(Call("GET", Nic("n2")).body["properties"]["virtualMachine"].is_null());
  EXPECT_EQ(Call("DELETE", Nic("n2")).status, 200);
}

TEST_F(NetworkProviderTest, VmNicRulesAreChecked) {
  MakeVnet();
  for (const char* n : {"a", "b", "c"}) ASSERT_EQ(Call("PUT", Nic(n), NicBody("v1", "front")).status, 201);
  Json vm = InProcessRegion::VmBody(0);
  // Standard_S1 takes 2 NICs.
  vm["properties"]["networkProfile"] = {
      {"networkInterfaces",
       {{{"id", Nic("a")}, {"properties", {{"primary", true}}}},
        {{"id", Nic("b")}},
        {{"id", Nic("c")}}}}};
  auto many = Call("PUT", Vm("vm"), vm);
  EXPECT_EQ(many.status, 400);
  EXPECT_EQ(Code(many), "NetworkInterfaceCountExceeded");
  vm["properties"]["networkProfile"] = {
      {"networkInterfaces", {{{"id", Nic("a")}}, {{"id", Nic("b")}}}}};
  EXPECT_EQ(Code(Call("PUT", Vm("vm"), vm)), "VmPrimaryNicRequired");
  vm["properties"]["networkProfile"] = {{"networkInterfaces", {{{"id", Nic("ghost")}}}}};
  auto ghost = Call("PUT", Vm("vm"), vm);
  EXPECT_EQ(ghost.status, 404);
  EXPECT_EQ(Code(ghost), "InvalidResourceReference");
  EXPECT_EQ(Call("GET", Vm("vm")).status, 404);
  auto sizes = Call("GET", "/subscriptions/sub1/providers/Stratus.Compute/locations/regionA/vmSizes");
  ASSERT_EQ(sizes.status, 200) << sizes.body.dump();
  EXPECT_EQ(sizes.body["value"][0].value("maxNetworkInterfaces", 0), 2);
}

TEST_F(NetworkProviderTest, RestartConvergesEveryVnetAndSweepsTheRest) {
  MakeVnet();
  ASSERT_EQ(Call("PUT", Nic("a"), NicBody("v1", "front")).status, 201);
  // The host lost the VNET (a reboot) and kept one no record claims.
  ASSERT_TRUE(net().RemoveVnet(net().Vnet("v1")->netns).ok());
  network::VnetDatapath stray;
  stray.name = "stray";
  stray.netns = "stv-zzzz-0999";
  ASSERT_TRUE(net().ApplyVnet(stray).ok());
  Restart();
  ASSERT_NE(net().Vnet("v1"), nullptr);
  EXPECT_EQ(net().Vnet("v1")->hosts.size(), 1u);
  EXPECT_EQ(net().Vnet("stray"), nullptr);
}

TEST_F(NetworkProviderTest, ADatapathFailureIsReportedAndHealedAtStart) {
  MakeVnet();
  net().Fail(Internal("ip: simulated failure"));
  auto r = Call("PUT", Nic("a"), NicBody("v1", "front"));
  EXPECT_EQ(r.status, 500) << r.body.dump();
  EXPECT_NE(r.body.dump().find("retries at its next start"), std::string::npos);
  // The record was kept; the next start converges.
  Restart();
  EXPECT_EQ(net().Vnet("v1")->hosts.size(), 1u);
}

TEST_F(NetworkProviderTest, PeeringsConnectWhenBothSidesExistAndFollowEveryChange) {
  MakeVnet();  // v1: 10.1.0.0/16
  ASSERT_EQ(Call("PUT", Vnet("v2"), VnetBody({"10.2.0.0/16"}, {{"a", "10.2.1.0/24"}})).status, 201);
  auto peer = [&](const std::string& from, const std::string& name, const std::string& to,
                  Json extra = Json::object()) {
    Json props = {{"remoteVirtualNetwork", {{"id", Vnet(to)}}}};
    props.update(extra);
    return Call("PUT", Vnet(from) + "/virtualNetworkPeerings/" + name, {{"properties", props}});
  };
  auto state = [&](const std::string& vnet, const std::string& name) {
    auto r = Call("GET", Vnet(vnet) + "/virtualNetworkPeerings/" + name);
    return r.status == 200 ? r.body["properties"].value("peeringState", "") : std::to_string(r.status);
  };
  // One side: Initiated, nothing on the host yet.
  auto a = peer("v1", "to-v2", "v2");
  ASSERT_EQ(a.status, 201) << a.body.dump();
  EXPECT_EQ(a.body["properties"]["peeringState"], "Initiated");
  EXPECT_EQ(a.body["type"], "Stratus.Network/virtualNetworks/virtualNetworkPeerings");
  EXPECT_TRUE(net().Vnet("v1")->peerings.empty());
  // Both sides: Connected, each router gets the other's space over one link.
  auto b = peer("v2", "to-v1", "v1");
  ASSERT_EQ(b.status, 201) << b.body.dump();
  EXPECT_EQ(b.body["properties"]["peeringState"], "Connected");
  EXPECT_EQ(state("v1", "to-v2"), "Connected");
  auto got = Call("GET", Vnet("v1") + "/virtualNetworkPeerings/to-v2");
  EXPECT_EQ(got.body["properties"]["remoteAddressSpace"]["addressPrefixes"], Json({"10.2.0.0/16"}));
  EXPECT_EQ(got.body["properties"]["allowVirtualNetworkAccess"], true);
  EXPECT_EQ(got.body["properties"]["allowForwardedTraffic"], false);
  const network::VnetDatapath* d1 = net().Vnet("v1");
  const network::VnetDatapath* d2 = net().Vnet("v2");
  ASSERT_EQ(d1->peerings.size(), 1u);
  ASSERT_EQ(d2->peerings.size(), 1u);
  EXPECT_EQ(d1->peerings[0].remote_netns, d2->netns);
  EXPECT_EQ(d1->peerings[0].veth, d2->peerings[0].remote_veth);
  EXPECT_EQ(d1->peerings[0].remote_veth, d2->peerings[0].veth);
  EXPECT_EQ(d1->peerings[0].remote_transit, d2->transit);
  ASSERT_EQ(d1->peerings[0].remote_spaces.size(), 1u);
  EXPECT_EQ(d1->peerings[0].remote_spaces[0].ToString(), "10.2.0.0/16");
  EXPECT_EQ(Call("GET", Vnet("v1") + "/virtualNetworkPeerings").body["value"].size(), 1u);
  EXPECT_EQ(Call("GET", Vnet("v1")).body["properties"]["virtualNetworkPeerings"].size(), 1u);

  // Refused, with nothing changed.
  ASSERT_EQ(Call("PUT", Vnet("v3"), VnetBody({"10.1.128.0/17"}, {})).status, 201);
  ASSERT_EQ(Call("PUT", Vnet("v4"), VnetBody({"10.4.0.0/16"}, {})).status, 201);
  EXPECT_EQ(Code(peer("v1", "to-v3", "v3")), "VnetAddressSpacesOverlap");
  EXPECT_EQ(Code(peer("v2", "to-v3", "v3")), "VnetAddressSpacesOverlap")
      << "v3 overlaps v1, which v2 is peered with";
  EXPECT_EQ(Code(peer("v1", "again", "v2")), "VirtualNetworkPeeringAlreadyExists");
  EXPECT_EQ(Code(peer("v1", "self", "v1")), "CannotPeerVirtualNetworkToItself");
  EXPECT_EQ(peer("v1", "nowhere", "v9").status, 404);
  EXPECT_EQ(Code(peer("v1", "to-v2", "v4")), "CannotChangeRemoteVirtualNetwork");
  EXPECT_EQ(Code(peer("v1", "gw", "v4", {{"useRemoteGateways", true}})), "FeatureNotAvailable");
  EXPECT_EQ(peer("v1", "bad", "v4", {{"allowForwardedTraffic", "yes"}}).status, 400);
  EXPECT_EQ(Call("GET", Vnet("v1") + "/virtualNetworkPeerings").body["value"].size(), 1u);
  auto del_v1 = Call("DELETE", Vnet("v1"));
  EXPECT_EQ(del_v1.status, 409);
  EXPECT_EQ(Code(del_v1), "InUseVirtualNetworkCannotBeDeleted");

  // A VNET written back as read keeps its peerings; new ones cannot come that way.
  Json v1 = Call("GET", Vnet("v1")).body;
  EXPECT_EQ(Call("PUT", Vnet("v1"), v1).status, 200);
  EXPECT_EQ(state("v1", "to-v2"), "Connected");
  v1["properties"]["virtualNetworkPeerings"].push_back({{"name", "sneaky"}});
  EXPECT_EQ(Call("PUT", Vnet("v1"), v1).status, 400);

  // The peer grows: kept in sync on the other side (no sync action); an overlapping space is
  // refused.
  EXPECT_EQ(Code(Call("PUT", Vnet("v2"), VnetBody({"10.2.0.0/16", "10.1.200.0/24"},
                                                  {{"a", "10.2.1.0/24"}}))),
            "VnetAddressSpacesOverlap");
  ASSERT_EQ(Call("PUT", Vnet("v2"), VnetBody({"10.2.0.0/16", "10.5.0.0/16"}, {{"a", "10.2.1.0/24"}}))
                .status,
            200);
  got = Call("GET", Vnet("v1") + "/virtualNetworkPeerings/to-v2");
  EXPECT_EQ(got.body["properties"]["remoteAddressSpace"]["addressPrefixes"],
            Json({"10.2.0.0/16", "10.5.0.0/16"}));
  EXPECT_EQ(net().Vnet("v1")->peerings[0].remote_spaces.size(), 2u);

  // One side goes: the other is Disconnected and its link goes; it connects again when the
  // side comes back.
  EXPECT_EQ(Call("DELETE", Vnet("v2") + "/virtualNetworkPeerings/to-v1").status, 200);
  EXPECT_EQ(state("v1", "to-v2"), "Disconnected");
  EXPECT_TRUE(net().Vnet("v1")->peerings.empty());
  EXPECT_TRUE(net().Vnet("v2")->peerings.empty());
  EXPECT_EQ(Call("DELETE", Vnet("v2") + "/virtualNetworkPeerings/to-v1").status, 204);
  ASSERT_EQ(peer("v2", "to-v1", "v1").status, 201);
  EXPECT_EQ(state("v1", "to-v2"), "Connected");
  EXPECT_EQ(net().Vnet("v1")->peerings.size(), 1u);
  // Access off on v2's side: still routed, but v1 is no longer in v2's VirtualNetwork tag.
  ASSERT_EQ(peer("v2", "to-v1", "v1", {{"allowVirtualNetworkAccess", false}}).status, 200);
  EXPECT_FALSE(net().Vnet("v2")->peerings[0].allow_access);
  EXPECT_TRUE(net().Vnet("v1")->peerings[0].allow_access);

  // The resource group goes with its peered VNETs.
  Json del = Finish(Call("DELETE", kRg));
  EXPECT_EQ(del.value("status", ""), "Succeeded") << del.dump();
  EXPECT_EQ(net().VnetCount(), 0u);
}

TEST_F(NetworkProviderTest, PeeredSpacesAreInTheVirtualNetworkTag) {
  MakeVnet();
  ASSERT_EQ(Call("PUT", Vnet("v2"), VnetBody({"10.3.0.0/16"}, {{"a", "10.3.1.0/24"}})).status, 201);
  std::string nsg = std::string(kRg) + "/providers/Stratus.Network/networkSecurityGroups/n1";
  ASSERT_EQ(Call("PUT", nsg, {{"location", "regionA"}}).status, 201);
  Json nic = NicBody("v1", "front");
  nic["properties"]["networkSecurityGroup"] = {{"id", nsg}};
  ASSERT_EQ(Call("PUT", Nic("n1"), nic).status, 201);
  auto vnet_sources = [&] {
    auto eff = Call("POST", Nic("n1") + "/effectiveNetworkSecurityGroups");
    EXPECT_EQ(eff.status, 200) << eff.body.dump();
    for (auto& r : eff.body["value"][0]["effectiveSecurityRules"])
      if (r["name"] == "defaultSecurityRules/AllowVnetInBound")
        return r["expandedSourceAddressPrefix"];
    return Json();
  };
  EXPECT_EQ(vnet_sources(), Json({"10.1.0.0/16"}));
  for (auto [from, to] : {std::pair{"v1", "v2"}, {"v2", "v1"}})
    ASSERT_EQ(Call("PUT", Vnet(from) + "/virtualNetworkPeerings/p",
                   {{"properties", {{"remoteVirtualNetwork", {{"id", Vnet(to)}}}}}})
                  .status,
              201);
  EXPECT_EQ(vnet_sources(), Json({"10.1.0.0/16", "10.3.0.0/16"}));
  ASSERT_EQ(Call("DELETE", Vnet("v2") + "/virtualNetworkPeerings/p").status, 200);
  EXPECT_EQ(vnet_sources(), Json({"10.1.0.0/16"}));
}

TEST_F(NetworkProviderTest, RouteTablesOnSubnetsReachTheDatapathAndTheEffectiveView) {
  MakeVnet();  // v1 10.1.0.0/16: front 10.1.1.0/24, back 10.1.2.0/29
  ASSERT_EQ(Call("PUT", Vnet("v1") + "/subnets/GatewaySubnet",
                 {{"properties", {{"addressPrefix", "10.1.255.0/27"}}}})
                .status,
            201);
  const std::string rt = std::string(kRg) + "/providers/Stratus.Network/routeTables/rt1";
  auto route = [](const std::string& name, const std::string& prefix, const std::string& type,
                  const std::string& ip = "") {
    Json p = {{"addressPrefix", prefix}, {"nextHopType", type}};
    if (!ip.empty()) p["nextHopIpAddress"] = ip;
    return Json{{"name", name}, {"properties", p}};
  };
  auto put = Call("PUT", rt,
                  {{"location", "regionA"},
                   {"properties", {{"routes", {route("to-fw", "10.1.2.0/29", "VirtualAppliance",
                                                     "10.1.255.4")}}}}});
  ASSERT_EQ(put.status, 201) << put.body.dump();
  EXPECT_EQ(put.body["type"], "Stratus.Network/routeTables");
  EXPECT_EQ(put.body["properties"]["routes"][0]["id"], rt + "/routes/to-fw");
  EXPECT_EQ(put.body["properties"]["subnets"], Json::array());
  // Bad routes: refused, nothing changed.
  for (auto [body, code] :
       {std::pair{route("x", "10.0.0.0/8", "Router"), "InvalidRouteNextHopType"},
        {route("x", "10.0.0.0/8", "VirtualAppliance"), "InvalidRouteNextHopIpAddress"},
        {route("x", "10.1.2.0/29", "None"), "DuplicateRouteAddressPrefix"},
        {route("x", "10.0.0.0/33", "None"), "InvalidAddressPrefixFormat"}}) {
    auto bad = Call("PUT", rt + "/routes/x", {{"properties", body["properties"]}});
    EXPECT_EQ(bad.status, 400) << body.dump();
    EXPECT_EQ(Code(bad), code) << bad.body.dump();
  }
  EXPECT_EQ(Call("GET", rt + "/routes").body["value"].size(), 1u);

  // Associated with the front subnet (the GatewaySubnet could have one as well).
  Json v1 = Call("GET", Vnet("v1")).body;
  for (auto& sub : v1["properties"]["subnets"])
    if (sub["name"] == "front") sub["properties"]["routeTable"] = {{"id", rt}};
  auto assoc = Call("PUT", Vnet("v1"), v1);
  ASSERT_EQ(assoc.status, 200) << assoc.body.dump();
  const network::VnetDatapath* d = net().Vnet("v1");
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->subnets[0].route_table, 0u);
  EXPECT_EQ(d->subnets[1].route_table, 0u);
  ASSERT_FALSE(d->subnets[0].routes.empty());
  EXPECT_TRUE(d->subnets[0].routes[0].user);
  EXPECT_EQ(d->subnets[0].routes[0].route.next_hop_ip.ToString(), "10.1.255.4");
  EXPECT_EQ(Call("GET", rt).body["properties"]["subnets"][0]["id"], Vnet("v1") + "/subnets/front");
  // An appliance in no subnet of a VNET using the table is refused, on the table and on the
  // subnet.
  auto outside = Call("PUT", rt + "/routes/far", {{"properties", route("far", "0.0.0.0/0",
                                                                       "VirtualAppliance",
                                                                       "10.1.100.4")["properties"]}});
  EXPECT_EQ(Code(outside), "NextHopIpAddressNotInVirtualNetwork") << outside.body.dump();
  ASSERT_EQ(Call("PUT", Vnet("v2"), VnetBody({"10.2.0.0/16"}, {{"a", "10.2.1.0/24"}})).status, 201);
  auto v2_sub = Call("PUT", Vnet("v2") + "/subnets/a",
                     {{"properties", {{"addressPrefix", "10.2.1.0/24"}, {"routeTable", {{"id", rt}}}}}});
  EXPECT_EQ(Code(v2_sub), "NextHopIpAddressNotInVirtualNetwork") << v2_sub.body.dump();
  EXPECT_EQ(Call("PUT", Vnet("v2") + "/subnets/a",
                 {{"properties", {{"addressPrefix", "10.2.1.0/24"},
                                  {"routeTable", {{"id", rt + "x"}}}}}})
                .status,
            404);
  // A new route reaches the datapath.
  ASSERT_EQ(Call("PUT", rt + "/routes/no-internet",
                 {{"properties", route("", "0.0.0.0/0", "None")["properties"]}})
                .status,
            201);
  EXPECT_EQ(net().Vnet("v1")->subnets[0].routes[1].route.next_hop, network::NextHop::kNone);

  // The effective routes of a NIC in front: user routes, then the system ones, the replaced
  // Internet route Invalid.
  ASSERT_EQ(Call("PUT", Nic("n1"), NicBody("v1", "front")).status, 201);
  auto eff = Call("POST", Nic("n1") + "/effectiveRouteTable");
  ASSERT_EQ(eff.status, 200) << eff.body.dump();
  const Json& routes = eff.body["value"];
  ASSERT_GE(routes.size(), 4u);
  EXPECT_EQ(routes[0]["source"], "User");
  EXPECT_EQ(routes[0]["nextHopType"], "VirtualAppliance");
  EXPECT_EQ(routes[0]["nextHopIpAddress"], Json({"10.1.255.4"}));
  EXPECT_EQ(routes[2]["source"], "Default");
  EXPECT_EQ(routes[2]["nextHopType"], "VnetLocal");
  EXPECT_EQ(routes[3]["nextHopType"], "Internet");
  EXPECT_EQ(routes[3]["state"], "Invalid");

  // In use: the table cannot go; once the subnet lets go, it can, and the datapath follows.
  EXPECT_EQ(Code(Call("DELETE", rt)), "InUseRouteTableCannotBeDeleted");
  ASSERT_EQ(Call("PUT", Vnet("v1") + "/subnets/front",
                 {{"properties", {{"addressPrefix", "10.1.1.0/24"}}}})
                .status,
            200);
  EXPECT_EQ(net().Vnet("v1")->subnets[0].route_table, 0u);
  EXPECT_EQ(Call("DELETE", rt).status, 200);
  EXPECT_EQ(Call("GET", rt).status, 404);
}

TEST_F(NetworkProviderTest, AnApplianceInAPeeredHubSteersWhatASpokeSubnetSendsIt) {
  MakeVnet();  // the spoke, v1 10.1.0.0/16: front 10.1.1.0/24, back 10.1.2.0/29
  ASSERT_EQ(Call("PUT", Vnet("hub"), VnetBody({"10.5.0.0/16"}, {{"fw", "10.5.1.0/24"}})).status,
            201);
  const std::string rt = std::string(kRg) + "/providers/Stratus.Network/routeTables/to-hub";
  Json table = {{"location", "regionA"},
                {"properties",
                 {{"routes",
                   {{{"name", "all-to-fw"},
                     {"properties",
                      {{"addressPrefix", "0.0.0.0/0"},
                       {"nextHopType", "VirtualAppliance"},
                       {"nextHopIpAddress", "10.5.1.4"}}}}}}}}};
  ASSERT_EQ(Call("PUT", rt, table).status, 201);
  auto front_with_table = [&] {
    return Call("PUT", Vnet("v1") + "/subnets/front",
                {{"properties", {{"addressPrefix", "10.1.1.0/24"}, {"routeTable", {{"id", rt}}}}}});
  };
  // Not peered: the hub's firewall is in no VNET the spoke reaches.
  EXPECT_EQ(Code(front_with_table()), "NextHopIpAddressNotInVirtualNetwork");
  // Peered (one side is enough to accept it; the route works once Connected).
  ASSERT_EQ(Call("PUT", Vnet("v1") + "/virtualNetworkPeerings/to-hub",
                 {{"properties", {{"remoteVirtualNetwork", {{"id", Vnet("hub")}}}}}})
                .status,
            201);
  auto assoc = front_with_table();
  ASSERT_EQ(assoc.status, 200) << assoc.body.dump();
  EXPECT_TRUE(net().Vnet("v1")->peerings.empty()) << "Initiated: no link yet";
  ASSERT_EQ(Call("PUT", Vnet("hub") + "/virtualNetworkPeerings/to-spoke",
                 {{"properties",
                   {{"remoteVirtualNetwork", {{"id", Vnet("v1")}}}, {"allowForwardedTraffic", true}}}})
                .status,
            201);
  // The hub routes what front sends it by front's routes: everything to the firewall but the
  // hub's own space (front's longer peering route) and the spoke's (never sent to the hub).
  const network::VnetDatapath* hub = net().Vnet("hub");
  ASSERT_NE(hub, nullptr);
  ASSERT_EQ(hub->peerings.size(), 1u);
  ASSERT_EQ(hub->peerings[0].steered.size(), 1u) << "front only: back has no route table";
  const network::SteeredSubnet& st = hub->peerings[0].steered[0];
  EXPECT_EQ(st.source.ToString(), "10.1.1.0/24");
  EXPECT_EQ(st.table & 0xff000000u, network::PeerSteeringTable(0));
  std::map<std::string, std::string> hops;
  for (auto& h : st.routes) hops[h.prefix.ToString()] = h.appliance ? h.appliance->ToString() : "";
  EXPECT_EQ(hops["0.0.0.0/0"], "10.5.1.4");
  ASSERT_TRUE(hops.count("10.5.0.0/16"));
  EXPECT_EQ(hops["10.5.0.0/16"], "") << "the peering route: on as any traffic from the spoke";
  // The spoke's front routes its default to the hub's firewall.
  const network::VnetDatapath* spoke = net().Vnet("v1");
  ASSERT_NE(spoke, nullptr);
  EXPECT_NE(spoke->subnets[0].route_table, 0u);
  // The hub's space grows: the spoke's peering route to it is in the hub's table at once.
  Json hub_body = Call("GET", Vnet("hub")).body;
  hub_body["properties"]["addressSpace"]["addressPrefixes"] = {"10.5.0.0/16", "10.6.0.0/16"};
  ASSERT_EQ(Call("PUT", Vnet("hub"), hub_body).status, 200);
  bool steered_new_space = false;
  for (auto& h : net().Vnet("hub")->peerings[0].steered[0].routes)
    steered_new_space = steered_new_space || (h.prefix.ToString() == "10.6.0.0/16" && !h.appliance);
  EXPECT_TRUE(steered_new_space) << "the hub's table lacks the spoke's route to its new space";
  // A route change reaches the hub too; without an appliance route, nothing is steered.
  table["properties"]["routes"][0]["properties"] = {{"addressPrefix", "0.0.0.0/0"},
                                                     {"nextHopType", "None"}};
  ASSERT_EQ(Call("PUT", rt, table).status, 200);
  EXPECT_TRUE(net().Vnet("hub")->peerings[0].steered.empty());
}

}  // namespace
}  // namespace stratus::test

namespace stratus::test {
namespace {

class PublicIpTest : public NetworkProviderTest {
 protected:
  static std::string Pip(const std::string& name) {
    return std::string(kRg) + "/providers/Stratus.Network/publicIPAddresses/" + name;
  }
  static Json PipBody(const std::string& method, const std::string& sku = "") {
    Json b = {{"location", "regionA"}, {"properties", {{"publicIPAllocationMethod", method}}}};
    if (!sku.empty()) b["sku"] = {{"name", sku}};
    return b;
  }
  static Json NicWithPip(const std::string& pip) {
    Json b = NicBody("v1", "front");
    b["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"] = {{"id", Pip(pip)}};
    return b;
  }
  std::vector<network::PublicNat> Nats() {
    const network::VnetDatapath* d = net().Vnet("v1");
    return d ? d->uplink.nats : std::vector<network::PublicNat>{};
  }
};

TEST_F(PublicIpTest, StaticIsReservedDynamicFollowsItsNicAndBothNatOneToOne) {
  ASSERT_TRUE(net().edge().has_value()) << "the edge is applied at start";
  EXPECT_EQ(net().edge()->netns.rfind("ste-", 0), 0u);
  MakeVnet();
  EXPECT_FALSE(net().Vnet("v1")->uplink.edge_netns.empty()) << "the VNET gets its uplink link";
  auto st = Call("PUT", Pip("web-ip"), PipBody("Static"));
  ASSERT_EQ(st.status, 201) << st.body.dump();
  EXPECT_EQ(st.body["properties"]["ipAddress"], "203.0.113.1");
  EXPECT_EQ(st.body["sku"]["name"], "Standard");
  EXPECT_EQ(st.body["type"], "Stratus.Network/publicIPAddresses");
  auto dyn = Call("PUT", Pip("dyn-ip"), PipBody("Dynamic", "Basic"));
  ASSERT_EQ(dyn.status, 201) << dyn.body.dump();
  EXPECT_FALSE(dyn.body["properties"].contains("ipAddress")) << "no address until a NIC uses it";
  auto bad = Call("PUT", Pip("bad"), PipBody("Dynamic", "Standard"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["error"]["code"], "StandardSkuPublicIPAddressesMustBeStatic");
  EXPECT_EQ(Call("GET", Pip("bad")).status, 404);

  // A NIC with the Dynamic one: the address is taken now, and NATed to the NIC's.
  auto nic = Call("PUT", Nic("n1"), NicWithPip("dyn-ip"));
  ASSERT_EQ(nic.status, 201) << nic.body.dump();
  EXPECT_EQ(nic.body["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]["id"],
            Pip("dyn-ip"));
  auto got = Call("GET", Pip("dyn-ip"));
  EXPECT_EQ(got.body["properties"]["ipAddress"], "203.0.113.2");
  EXPECT_EQ(got.body["properties"]["ipConfiguration"]["id"],
            Nic("n1") + "/ipConfigurations/ipconfig1");
  ASSERT_EQ(Nats().size(), 1u);
  EXPECT_EQ(Nats()[0].public_ip.ToString(), "203.0.113.2");
  EXPECT_EQ(Nats()[0].private_ip.ToString(), Ip(nic));
  // One public IP, one IP configuration.
  auto twice = Call("PUT", Nic("n2"), NicWithPip("dyn-ip"));
  EXPECT_EQ(twice.status, 400);
  EXPECT_EQ(twice.body["error"]["code"], "PublicIPAddressInUse");
  EXPECT_EQ(Call("GET", Nic("n2")).status, 404) << "nothing created";
  auto del = Call("DELETE", Pip("dyn-ip"));
  EXPECT_EQ(del.status, 409);
  EXPECT_EQ(del.body["error"]["code"], "PublicIPAddressCannotBeDeleted");
  // Moved to the Static one: the Dynamic one gives its address back, the NAT follows.
  ASSERT_EQ(Call("PUT", Nic("n1"), NicWithPip("web-ip")).status, 200);
  EXPECT_FALSE(Call("GET", Pip("dyn-ip")).body["properties"].contains("ipAddress"));
  ASSERT_EQ(Nats().size(), 1u);
  EXPECT_EQ(Nats()[0].public_ip.ToString(), "203.0.113.1");
  // Detached (the NIC deleted): the Static one keeps its address.
  ASSERT_EQ(Call("DELETE", Nic("n1")).status, 200);
  EXPECT_TRUE(Nats().empty());
  EXPECT_EQ(Call("GET", Pip("web-ip")).body["properties"]["ipAddress"], "203.0.113.1");
  EXPECT_FALSE(Call("GET", Pip("web-ip")).body["properties"].contains("ipConfiguration"));
  EXPECT_EQ(Call("DELETE", Pip("web-ip")).status, 200);
  // Unknown references.
  auto unknown = Call("PUT", Nic("n3"), NicWithPip("nope"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body["error"]["code"], "InvalidResourceReference");
}

TEST_F(PublicIpTest, APrivateSubnetHasNoDefaultOutboundAccess) {
  Json body = VnetBody({"10.1.0.0/16"}, {{"front", "10.1.1.0/24"}, {"back", "10.1.2.0/24"}});
  body["properties"]["subnets"][1]["properties"]["defaultOutboundAccess"] = false;
  auto v = Call("PUT", Vnet("v1"), body);
  ASSERT_EQ(v.status, 201) << v.body.dump();
  EXPECT_EQ(v.body["properties"]["subnets"][1]["properties"]["defaultOutboundAccess"], false);
  EXPECT_FALSE(v.body["properties"]["subnets"][0]["properties"].contains("defaultOutboundAccess"));
  ASSERT_NE(net().Vnet("v1"), nullptr);
  auto priv = net().Vnet("v1")->uplink.private_subnets;
  ASSERT_EQ(priv.size(), 1u);
  EXPECT_EQ(priv[0].ToString(), "10.1.2.0/24");
  body["properties"]["subnets"][1]["properties"]["defaultOutboundAccess"] = "no";
  EXPECT_EQ(Call("PUT", Vnet("v1"), body).status, 400);
  body["properties"]["subnets"][1]["properties"]["defaultOutboundAccess"] = true;
  ASSERT_EQ(Call("PUT", Vnet("v1"), body).status, 200);
  EXPECT_TRUE(net().Vnet("v1")->uplink.private_subnets.empty());
}

TEST_F(PublicIpTest, AnExhaustedPoolIsAClearErrorAndCreatesNothing) {
  MakeVnet();
  for (int i = 1; i <= 6; ++i) {
    auto r = Call("PUT", Pip("ip" + std::to_string(i)), PipBody("Static"));
    ASSERT_EQ(r.status, 201) << r.body.dump();
    EXPECT_EQ(r.body["properties"]["ipAddress"], "203.0.113." + std::to_string(i));
  }
  auto full = Call("PUT", Pip("ip7"), PipBody("Static"));
  EXPECT_EQ(full.status, 409);
  EXPECT_EQ(full.body["error"]["code"], "PublicIPAddressPoolExhausted");
  EXPECT_EQ(Call("GET", Pip("ip7")).status, 404);
  // A Dynamic one can be created, but no NIC can take it while the pool is full.
  ASSERT_EQ(Call("PUT", Pip("dyn"), PipBody("Dynamic", "Basic")).status, 201);
  auto nic = Call("PUT", Nic("n1"), NicWithPip("dyn"));
  EXPECT_EQ(nic.status, 409);
  EXPECT_EQ(nic.body["error"]["code"], "PublicIPAddressPoolExhausted");
  EXPECT_EQ(Call("GET", Nic("n1")).status, 404);
  // Freed, the address is given again (lowest first).
  ASSERT_EQ(Call("DELETE", Pip("ip3")).status, 200);
  ASSERT_EQ(Call("PUT", Nic("n1"), NicWithPip("dyn")).status, 201);
  EXPECT_EQ(Call("GET", Pip("dyn")).body["properties"]["ipAddress"], "203.0.113.3");
  // Bad input.
  Json chosen = PipBody("Static");
  chosen["properties"]["ipAddress"] = "203.0.113.9";
  EXPECT_EQ(Call("PUT", Pip("chosen"), chosen).status, 400);
  Json zones = PipBody("Static");
  zones["zones"] = {"1"};
  EXPECT_EQ(Call("PUT", Pip("zoned"), zones).status, 400);
  EXPECT_EQ(Call("PUT", Pip("v6"), {{"location", "regionA"},
                                    {"properties", {{"publicIPAddressVersion", "IPv6"}}}})
                .status,
            400);
}

TEST_F(PublicIpTest, AnUpdateWithoutSkuKeepsTheSku) {
  MakeVnet();
  ASSERT_EQ(Call("PUT", Nic("n1"), NicBody("v1", "front")).status, 201);
  ASSERT_EQ(Call("PUT", Pip("dyn"), PipBody("Dynamic", "Basic")).status, 201);
  // A PUT without sku keeps Basic (and its method).
  auto again = Call("PUT", Pip("dyn"), {{"location", "regionA"}, {"tags", {{"k", "v"}}},
                                        {"properties", {{"publicIPAllocationMethod", "Dynamic"}}}});
  EXPECT_EQ(again.status, 200) << again.body.dump();
  EXPECT_EQ(again.body["sku"]["name"], "Basic");
}

TEST_F(PublicIpTest, ARestartGivesBackTheAddressOfADynamicIpNoNicUses) {
  MakeVnet();
  ASSERT_EQ(Call("PUT", Pip("dyn"), PipBody("Dynamic", "Basic")).status, 201);
  ASSERT_EQ(Call("PUT", Nic("n1"), NicWithPip("dyn")).status, 201);
  // A crash between writing the public IP and the NIC: the address is taken, no NIC uses it.
  std::string key = ToLower(std::string(kRg) + "/providers/Stratus.Network/networkInterfaces/n1");
  ASSERT_TRUE(store()->Delete(key).ok());
  Restart();
  EXPECT_FALSE(Call("GET", Pip("dyn")).body["properties"].contains("ipAddress"));
}

}  // namespace
}  // namespace stratus::test
