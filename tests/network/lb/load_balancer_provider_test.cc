// Stratus.Network/loadBalancers through the API of an in-process region (fake network engine):
// the checks that need other resources, NICs joining pools and NAT rules, the datapath the
// engine is asked for, and the view with each pool's members.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/in_process_region.h"
#include "network/lb/load_balancer.h"

namespace stratus::test {
namespace {

std::string Net(const std::string& type, const std::string& name) {
  return std::string(InProcessRegion::kRg) + "/providers/Stratus.Network/" + type + "/" + name;
}
const std::string kLb = Net("loadBalancers", "web-lb");

Json Ref(const std::string& kind, const std::string& name) {
  return {{"id", kLb + "/" + kind + "/" + name}};
}

class LoadBalancerProviderTest : public InProcessRegionTest {
 protected:
  void SetUp() override {
    InProcessRegionTest::SetUp();
    for (auto [name, space] : {std::pair{"v1", "10.1.0.0/16"}, {"v2", "10.2.0.0/16"}}) {
      std::string prefix = std::string(space).substr(0, 5);
      auto r =
          Call("PUT", Net("virtualNetworks", name),
               {{"location", "regionA"},
                {"properties",
                 {{"addressSpace", {{"addressPrefixes", {space}}}},
                  {"subnets",
                   {{{"name", "web"}, {"properties", {{"addressPrefix", prefix + "1.0/24"}}}},
                    {{"name", "app"}, {"properties", {{"addressPrefix", prefix + "2.0/24"}}}}}}}}});
      ASSERT_EQ(r.status, 201) << r.body.dump();
    }
    auto pip = Call("PUT", Net("publicIPAddresses", "web-ip"),
                    {{"location", "regionA"}, {"sku", {{"name", "Standard"}}}});
    ASSERT_EQ(pip.status, 201) << pip.body.dump();
    pip_address_ = pip.body["properties"].value("ipAddress", "");
  }

  // A public load balancer: frontend fe on web-ip, pool web, Tcp probe, rule 80 -> 8080,
  // NAT rule ssh1 50001 -> 22.
  static Json LbBody() {
    return {
        {"location", "regionA"},
        {"sku", {{"name", "Standard"}}},
        {"properties",
         {{"frontendIPConfigurations",
           {{{"name", "fe"},
             {"properties", {{"publicIPAddress", {{"id", Net("publicIPAddresses", "web-ip")}}}}}}}},
          {"backendAddressPools", {{{"name", "web"}}}},
          {"probes", {{{"name", "tcp"}, {"properties", {{"protocol", "Tcp"}, {"port", 8080}}}}}},
          {"loadBalancingRules",
           {{{"name", "http"},
             {"properties",
              {{"frontendIPConfiguration", Ref("frontendIPConfigurations", "fe")},
               {"backendAddressPool", Ref("backendAddressPools", "web")},
               {"probe", Ref("probes", "tcp")},
               {"protocol", "Tcp"},
               {"frontendPort", 80},
               {"backendPort", 8080}}}}}},
          {"inboundNatRules",
           {{{"name", "ssh1"},
             {"properties",
              {{"frontendIPConfiguration", Ref("frontendIPConfigurations", "fe")},
               {"protocol", "Tcp"},
               {"frontendPort", 50001},
               {"backendPort", 22}}}}}}}}};
  }

  // A NIC in `vnet`/web, in pool `pool` and NAT rule `nat` of the load balancer ("" for none).
  static Json NicBody(const std::string& vnet, const std::string& pool,
                      const std::string& nat = "") {
    Json p = {{"subnet", {{"id", Net("virtualNetworks", vnet) + "/subnets/web"}}}};
    if (!pool.empty()) p["loadBalancerBackendAddressPools"] = {Ref("backendAddressPools", pool)};
    if (!nat.empty()) p["loadBalancerInboundNatRules"] = {Ref("inboundNatRules", nat)};
    return {{"location", "regionA"},
            {"properties", {{"ipConfigurations", {{{"name", "ipconfig1"}, {"properties", p}}}}}}};
  }

  network::LbDatapath Lb(const std::string& vnet) { return net().Lb(vnet); }
  // Waits (up to 5 s) until the first rule of `vnet`'s table balances over `n` backends: the
  // probes' verdicts reach the router from the prober's thread.
  network::LbDatapath WaitBackends(const std::string& vnet, size_t n) {
    network::LbDatapath d;
    for (int i = 0; i < 500; ++i) {
      d = Lb(vnet);
      if (!d.rules.empty() && d.rules[0].backends.size() == n) return d;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the first rule of " << vnet << " never had " << n << " backends";
    return d;
  }

  std::string pip_address_;
};

TEST_F(LoadBalancerProviderTest, NicsJoinPoolsAndTheRouterBalancesOverThem) {
  auto put = Call("PUT", kLb, LbBody());
  ASSERT_EQ(put.status, 201) << put.body.dump();
  EXPECT_EQ(put.body["type"], "Stratus.Network/loadBalancers");
  EXPECT_EQ(put.body["properties"]["loadBalancingRules"][0]["id"],
            kLb + "/loadBalancingRules/http");
  EXPECT_TRUE(
      put.body["properties"]["backendAddressPools"][0]["properties"]["backendIPConfigurations"]
          .empty());
  for (auto [name, nat] : {std::pair{"n1", "ssh1"}, {"n2", ""}, {"n3", ""}}) {
    auto r = Call("PUT", Net("networkInterfaces", name), NicBody("v1", "web", nat));
    ASSERT_EQ(r.status, 201) << r.body.dump();
    EXPECT_EQ(r.body["properties"]["ipConfigurations"][0]["properties"]
                    ["loadBalancerBackendAddressPools"][0]["id"],
              kLb + "/backendAddressPools/web");
  }
  // The router of v1: one rule over the three NICs' addresses (once their probes answered), the
  // NAT rule to n1, the frontend routed here by the edge, outbound SNAT to the frontend; v2 has
  // none of it.
  const network::LbDatapath d = WaitBackends("v1", 3);
  ASSERT_EQ(d.rules.size(), 1u);
  EXPECT_EQ(d.rules[0].frontend.ToString(), pip_address_);
  EXPECT_EQ(d.rules[0].frontend_port, 80);
  EXPECT_EQ(d.rules[0].backend_port, 8080);
  ASSERT_EQ(d.rules[0].backends.size(), 3u);
  EXPECT_EQ(d.rules[0].backends[0].ToString(), "10.1.1.4");
  ASSERT_EQ(d.nats.size(), 1u);
  EXPECT_EQ(d.nats[0].backend.ToString(), "10.1.1.4");
  EXPECT_EQ(d.nats[0].backend_port, 22);
  EXPECT_EQ(d.subnet_links.size(), 2u);
  ASSERT_EQ(d.snats.size(), 1u);
  EXPECT_EQ(d.snats[0].sources.size(), 3u);
  ASSERT_EQ(net().Vnet("v1")->uplink.routed.size(), 1u);
  EXPECT_EQ(net().Vnet("v1")->uplink.routed[0].ToString(), pip_address_);
  EXPECT_TRUE(Lb("v2").empty());
  // A daemon restart (probes down meanwhile, as they would be until their first round): the
  // router keeps its three backends, nothing is rebuilt.
  probes().SetDown("10.1.1.4", true);
  int applies = net().lb_applies();
  int probed = probes().probes();
  Restart();
  for (int i = 0; i < 500 && probes().probes() < probed + 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(probes().probes(), probed + 3) << "the first round after the restart ran";
  EXPECT_EQ(Lb("v1").rules[0].backends.size(), 3u);
  EXPECT_EQ(net().lb_applies(), applies) << "no health change was applied";
  probes().SetDown("10.1.1.4", false);
  // The view: each pool's members and the NAT rule's one; sub-resources by id.
  auto get = Call("GET", kLb);
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(
      get.body["properties"]["backendAddressPools"][0]["properties"]["backendIPConfigurations"]
          .size(),
      3u);
  EXPECT_EQ(
      get.body["properties"]["inboundNatRules"][0]["properties"]["backendIPConfiguration"]["id"],
      Net("networkInterfaces", "n1") + "/ipConfigurations/ipconfig1");
  auto pool = Call("GET", kLb + "/backendAddressPools/web");
  ASSERT_EQ(pool.status, 200) << pool.body.dump();
  EXPECT_EQ(pool.body["properties"]["backendIPConfigurations"].size(), 3u);
  auto rules = Call("GET", kLb + "/loadBalancingRules");
  ASSERT_EQ(rules.status, 200) << rules.body.dump();
  EXPECT_EQ(rules.body["value"].size(), 1u);
  EXPECT_EQ(Call("GET", kLb + "/probes/nope").status, 404);
  // A NIC leaving the pool leaves the rule's backends; deleted, the same.
  ASSERT_EQ(Call("PUT", Net("networkInterfaces", "n3"), NicBody("v1", "")).status, 200);
  EXPECT_EQ(Lb("v1").rules[0].backends.size(), 2u);
  ASSERT_EQ(Call("DELETE", Net("networkInterfaces", "n2")).status, 200);
  EXPECT_EQ(Lb("v1").rules[0].backends.size(), 1u);
  // n1 stops answering its probe: after numberOfProbes (2) failures it leaves the rule; it
  // comes back at its next answer. backendHealth says so, with the time of the change.
  probes().SetDown("10.1.1.4", true);
  for (int i = 0; i < 2; ++i) {
    int before = probes().probes();
    clock().AdvanceMs(5000);  // the probe's interval
    for (int k = 0; k < 500 && probes().probes() == before; ++k)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  WaitBackends("v1", 0);
  EXPECT_GT(net().lb_applies(), applies) << "a health change applies the table alone";
  auto health = Call("GET", kLb + "/backendHealth");
  ASSERT_EQ(health.status, 200) << health.body.dump();
  Json b = health.body["value"][0]["backends"][0];
  EXPECT_EQ(b["health"], "Down") << health.body.dump();
  EXPECT_EQ(b["inRotation"], false);
  EXPECT_EQ(b["ipAddress"], "10.1.1.4");
  EXPECT_TRUE(b["since"].is_string());
  EXPECT_NE(b.value("lastError", "").find("refused"), std::string::npos) << b.dump();
  probes().SetDown("10.1.1.4", false);
  clock().AdvanceMs(5000);
  WaitBackends("v1", 1);
  EXPECT_EQ(Call("GET", kLb + "/backendHealth").body["value"][0]["backends"][0]["health"], "Up");
  // A rule added by a PUT of the load balancer reaches the router before the PUT answers.
  Json body = LbBody();
  Json r2 = body["properties"]["loadBalancingRules"][0];
  r2["name"] = "https";
  r2["properties"]["frontendPort"] = 443;
  r2["properties"]["backendPort"] = 8443;
  body["properties"]["loadBalancingRules"].push_back(r2);
  ASSERT_EQ(Call("PUT", kLb, body).status, 200);
  EXPECT_EQ(Lb("v1").rules.size(), 2u);
  // Deleting: refused while a NIC is in it; then the router's table is empty.
  auto del = Call("DELETE", kLb);
  EXPECT_EQ(del.status, 409);
  EXPECT_EQ(del.body["error"]["code"], "InUseLoadBalancerCannotBeDeleted");
  ASSERT_EQ(Call("DELETE", Net("networkInterfaces", "n1")).status, 200);
  ASSERT_EQ(Call("DELETE", kLb).status, 200);
  EXPECT_TRUE(Lb("v1").empty());
  EXPECT_TRUE(net().Vnet("v1")->uplink.routed.empty());
  EXPECT_EQ(Call("DELETE", kLb).status, 204);
}

TEST_F(LoadBalancerProviderTest, ReferencesToOtherResourcesAreChecked) {
  ASSERT_EQ(Call("PUT", kLb, LbBody()).status, 201);
  auto code = [&](const api::ApiResponse& r) { return r.body["error"].value("code", ""); };
  // The public IP of a frontend cannot go, nor be given to a NIC.
  auto del = Call("DELETE", Net("publicIPAddresses", "web-ip"));
  EXPECT_EQ(del.status, 409);
  EXPECT_EQ(code(del), "PublicIPAddressCannotBeDeleted");
  Json nic = NicBody("v1", "");
  nic["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"] = {
      {"id", Net("publicIPAddresses", "web-ip")}};
  auto with_pip = Call("PUT", Net("networkInterfaces", "n0"), nic);
  EXPECT_EQ(with_pip.status, 400);
  EXPECT_EQ(code(with_pip), "PublicIPAddressInUse");
  // ... nor to a second load balancer; a missing public IP is named.
  std::string text = LbBody().dump();
  for (size_t at; (at = text.find("loadBalancers/web-lb")) != std::string::npos;)
    text.replace(at, 20, "loadBalancers/other");
  auto second = Call("PUT", Net("loadBalancers", "other"), Json::parse(text));
  EXPECT_EQ(second.status, 400) << second.body.dump();
  EXPECT_EQ(code(second), "PublicIPAddressInUse");
  auto refs = Call("PUT", Net("loadBalancers", "other"), LbBody());
  EXPECT_EQ(code(refs), "InvalidResourceReference") << "its references name web-lb's pools";
  Json missing = LbBody();
  missing["properties"]["frontendIPConfigurations"][0]["properties"]["publicIPAddress"]["id"] =
      Net("publicIPAddresses", "nope");
  auto m = Call("PUT", kLb, missing);
  EXPECT_EQ(m.status, 404);
  EXPECT_EQ(code(m), "InvalidResourceReference");
  // Floating IP is not there yet: refused, not ignored.
  Json floating = LbBody();
  floating["properties"]["loadBalancingRules"][0]["properties"]["enableFloatingIP"] = true;
  auto f = Call("PUT", kLb, floating);
  EXPECT_EQ(f.status, 400);
  EXPECT_EQ(code(f), "FeatureNotAvailable");
  // A pool member in one VNET: a NIC of another is refused, and so is a missing pool.
  ASSERT_EQ(Call("PUT", Net("networkInterfaces", "n1"), NicBody("v1", "web", "ssh1")).status, 201);
  auto other_vnet = Call("PUT", Net("networkInterfaces", "n2"), NicBody("v2", "web"));
  EXPECT_EQ(other_vnet.status, 400);
  EXPECT_EQ(code(other_vnet), "NicAndLoadBalancerInDifferentVirtualNetworks");
  EXPECT_EQ(Call("GET", Net("networkInterfaces", "n2")).status, 404) << "nothing made";
  auto no_pool = Call("PUT", Net("networkInterfaces", "n2"), NicBody("v1", "nope"));
  EXPECT_EQ(no_pool.status, 404);
  EXPECT_EQ(code(no_pool), "InvalidResourceReference");
  // A NAT rule reaches one IP configuration.
  auto clash = Call("PUT", Net("networkInterfaces", "n2"), NicBody("v1", "web", "ssh1"));
  EXPECT_EQ(clash.status, 409);
  EXPECT_EQ(code(clash), "InboundNatRuleInUse");
  // A pool or NAT rule in use cannot be left out of the load balancer.
  Json no_nat = LbBody();
  no_nat["properties"]["inboundNatRules"] = Json::array();
  auto drop_nat = Call("PUT", kLb, no_nat);
  EXPECT_EQ(drop_nat.status, 409);
  EXPECT_EQ(code(drop_nat), "InUseInboundNatRuleCannotBeDeleted");
  EXPECT_EQ(Call("GET", kLb).body["properties"]["inboundNatRules"].size(), 1u) << "unchanged";
}

TEST_F(LoadBalancerProviderTest, AnInternalFrontendTakesAnAddressNoNicGets) {
  Json body = LbBody();
  body["properties"]["frontendIPConfigurations"][0]["properties"] = {
      {"subnet", {{"id", Net("virtualNetworks", "v1") + "/subnets/web"}}}};
  body["properties"]["inboundNatRules"] = Json::array();
  auto put = Call("PUT", kLb, body);
  ASSERT_EQ(put.status, 201) << put.body.dump();
  auto fe = put.body["properties"]["frontendIPConfigurations"][0]["properties"];
  EXPECT_EQ(fe["privateIPAddress"], "10.1.1.4") << fe.dump();
  EXPECT_EQ(fe["privateIPAllocationMethod"], "Dynamic");
  // The router holds it on the subnet's link, with no backend yet.
  const network::VnetDatapath* v = net().Vnet("v1");
  ASSERT_EQ(v->subnets[0].frontends.size(), 1u);
  EXPECT_EQ(v->subnets[0].frontends[0].ToString(), "10.1.1.4");
  EXPECT_TRUE(v->lb.snats.empty()) << "no outbound SNAT through an internal frontend";
  // A NIC gets the next address; the frontend keeps its own across a PUT.
  auto nic = Call("PUT", Net("networkInterfaces", "n1"), NicBody("v1", "web"));
  ASSERT_EQ(nic.status, 201) << nic.body.dump();
  EXPECT_EQ(nic.body["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
            "10.1.1.5");
  ASSERT_EQ(Call("PUT", kLb, body).status, 200);
  EXPECT_EQ(
      Call("GET", kLb)
          .body["properties"]["frontendIPConfigurations"][0]["properties"]["privateIPAddress"],
      "10.1.1.4");
  // A static frontend on an address a NIC holds is refused.
  body["properties"]["frontendIPConfigurations"][0]["properties"]["privateIPAddress"] = "10.1.1.5";
  auto taken = Call("PUT", kLb, body);
  EXPECT_EQ(taken.status, 400);
  EXPECT_EQ(taken.body["error"]["code"], "PrivateIPAddressInUse");
}

}  // namespace
}  // namespace stratus::test
