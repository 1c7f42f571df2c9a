#include "network/lb/load_balancer.h"

#include <gtest/gtest.h>

namespace stratus::network {
namespace {

const ResourceId kLb = *ResourceId::Parse(
    "/subscriptions/s1/resourceGroups/rg/providers/Stratus.Network/loadBalancers/web-lb");
const std::string kPip =
    "/subscriptions/s1/resourceGroups/rg/providers/Stratus.Network/publicIPAddresses/web-ip";
const std::string kSubnet =
    "/subscriptions/s1/resourceGroups/rg/providers/Stratus.Network/virtualNetworks/v/subnets/s";

Json Ref(const std::string& kind, const std::string& name) {
  return {{"id", LbChildId(kLb, kind, name)}};
}

// A public load balancer: frontend fe, pool web, Http probe, rule http 80 -> 8080, NAT ssh1.
Json Body() {
  return {{"sku", {{"name", "Standard"}}},
          {"properties",
           {{"frontendIPConfigurations",
             {{{"name", "fe"}, {"properties", {{"publicIPAddress", {{"id", kPip}}}}}}}},
            {"backendAddressPools", {{{"name", "web"}}}},
            {"probes",
             {{{"name", "http"},
               {"properties",
                {{"protocol", "Http"},
                 {"port", 8080},
                 {"requestPath", "/health"},
                 {"intervalInSeconds", 1},
                 {"numberOfProbes", 2}}}}}},
            {"loadBalancingRules",
             {{{"name", "http"},
               {"properties",
                {{"frontendIPConfiguration", Ref("frontendIPConfigurations", "fe")},
                 {"backendAddressPool", Ref("backendAddressPools", "web")},
                 {"probe", Ref("probes", "http")},
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

TEST(LoadBalancerTest, ParsesTheArmShapeAndWritesItBack) {
  auto lb = ParseLoadBalancer(Body(), kLb);
  ASSERT_TRUE(lb.ok()) << lb.status().ToString();
  EXPECT_FALSE(lb->Internal());
  ASSERT_EQ(lb->rules.size(), 1u);
  EXPECT_EQ(lb->rules[0].frontend, "fe");
  EXPECT_EQ(lb->rules[0].pool, "web");
  EXPECT_EQ(lb->rules[0].probe, "http");
  EXPECT_EQ(lb->rules[0].backend_port, 8080);
  EXPECT_EQ(lb->probes[0].interval_seconds, 1);
  EXPECT_EQ(lb->probes[0].threshold, 2);
  Json p = LoadBalancerProperties(*lb, kLb);
  EXPECT_EQ(p["loadBalancingRules"][0]["id"], LbChildId(kLb, "loadBalancingRules", "http"));
  EXPECT_EQ(p["loadBalancingRules"][0]["properties"]["loadDistribution"], "Default");
  EXPECT_EQ(p["frontendIPConfigurations"][0]["properties"]["inboundNatRules"][0]["id"],
            LbChildId(kLb, "inboundNatRules", "ssh1"));
  EXPECT_EQ(p["probes"][0]["properties"]["expectedStatusCodes"], Json::array({"200"}));
  // What the API shows parses back to the same thing.
  auto again = ParseLoadBalancer({{"sku", LoadBalancerSku(*lb)}, {"properties", p}}, kLb);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(LoadBalancerProperties(*again, kLb), p);
}

struct BadCase {
  const char* what;
  std::function<void(Json&)> change;
  const char* code;
  const char* field;
};

TEST(LoadBalancerTest, BadInputIsRefusedWithArmsCodes) {
  Json& (*rule)(Json&) = [](Json& b) -> Json& {
    return b["properties"]["loadBalancingRules"][0]["properties"];
  };
  const std::vector<BadCase> cases = {
      {"rule to a missing probe", [&](Json& b) { rule(b)["probe"] = Ref("probes", "nope"); },
       "InvalidResourceReference", "properties.loadBalancingRules[0].properties.probe"},
      {"rule to a missing pool",
       [&](Json& b) { rule(b)["backendAddressPool"] = Ref("backendAddressPools", "nope"); },
       "InvalidResourceReference",
       "properties.loadBalancingRules[0].properties.backendAddressPool"},
      {"rule to a missing frontend",
       [&](Json& b) { rule(b)["frontendIPConfiguration"] = Ref("frontendIPConfigurations", "x"); },
       "InvalidResourceReference",
       "properties.loadBalancingRules[0].properties.frontendIPConfiguration"},
      {"rule to another LB's pool",
       [&](Json& b) {
         rule(b)["backendAddressPool"]["id"] =
             "/subscriptions/s1/resourceGroups/rg/providers/Stratus.Network/loadBalancers/other/"
             "backendAddressPools/web";
       },
       "InvalidResourceReference",
       "properties.loadBalancingRules[0].properties.backendAddressPool"},
      {"two rules on one frontend port",
       [&](Json& b) {
         Json r2 = b["properties"]["loadBalancingRules"][0];
         r2["name"] = "http2";
         r2["properties"]["backendPort"] = 9090;
         b["properties"]["loadBalancingRules"].push_back(r2);
       },
       "LoadBalancingRuleFrontendPortConflict", "properties.loadBalancingRules[1]"},
      {"two rules on one pool and backend port",
       [&](Json& b) {
         Json r2 = b["properties"]["loadBalancingRules"][0];
         r2["name"] = "http2";
         r2["properties"]["frontendPort"] = 81;
         b["properties"]["loadBalancingRules"].push_back(r2);
       },
       "RulesUseSameBackendPortProtocolAndPool", "properties.loadBalancingRules[1]"},
      {"NAT rule on a rule's frontend port",
       [&](Json& b) { b["properties"]["inboundNatRules"][0]["properties"]["frontendPort"] = 80; },
       "LoadBalancingRuleFrontendPortConflict", "properties.inboundNatRules[0]"},
      {"HA ports on a public LB",
       [&](Json& b) {
         rule(b)["protocol"] = "All";
         rule(b)["frontendPort"] = 0;
         rule(b)["backendPort"] = 0;
       },
       "HaPortsRuleRequiresInternalLoadBalancer", "properties.loadBalancingRules[0].properties"},
      {"probe path without a slash",
       [&](Json& b) { b["properties"]["probes"][0]["properties"]["requestPath"] = "health"; },
       "InvalidProbeRequestPath", "properties.probes[0].properties.requestPath"},
      {"Http probe without a path",
       [&](Json& b) { b["properties"]["probes"][0]["properties"].erase("requestPath"); },
       "InvalidProbeRequestPath", "properties.probes[0].properties.requestPath"},
      {"probe interval 0",
       [&](Json& b) { b["properties"]["probes"][0]["properties"]["intervalInSeconds"] = 0; },
       "InvalidParameter", "properties.probes[0].properties.intervalInSeconds"},
      {"Basic sku", [&](Json& b) { b["sku"]["name"] = "Basic"; }, "InvalidLoadBalancerSku",
       "sku.name"},
      {"no frontend", [&](Json& b) { b["properties"]["frontendIPConfigurations"] = Json::array(); },
       "InvalidParameter", "properties.frontendIPConfigurations"},
      {"frontend with both",
       [&](Json& b) {
         b["properties"]["frontendIPConfigurations"][0]["properties"]["subnet"] = {{"id", kSubnet}};
       },
       "InvalidParameter", "properties.frontendIPConfigurations[0].properties"},
      {"two pools of one name",
       [&](Json& b) {
         b["properties"]["backendAddressPools"].push_back({{"name", "WEB"}});
       },
       "DuplicateResourceName", "properties.backendAddressPools[1].name"},
      {"unknown protocol", [&](Json& b) { rule(b)["protocol"] = "Sctp"; }, "InvalidParameter",
       "properties.loadBalancingRules[0].properties.protocol"},
      {"port out of range", [&](Json& b) { rule(b)["frontendPort"] = 70000; }, "InvalidParameter",
       "properties.loadBalancingRules[0].properties.frontendPort"},
      {"unknown member", [&](Json& b) { rule(b)["weight"] = 3; }, "InvalidParameter",
       "properties.loadBalancingRules[0].properties.weight"},
  };
  for (auto& c : cases) {
    Json b = Body();
    c.change(b);
    auto lb = ParseLoadBalancer(b, kLb);
    ASSERT_FALSE(lb.ok()) << c.what;
    EXPECT_EQ(lb.status().arm_code(), c.code) << c.what << ": " << lb.status().ToString();
    EXPECT_EQ(lb.status().target(), c.field) << c.what << ": " << lb.status().ToString();
  }
}

TEST(LoadBalancerTest, AnInternalLoadBalancerMayHaveHaPorts) {
  Json b = Body();
  b["properties"]["frontendIPConfigurations"][0]["properties"] = {
      {"subnet", {{"id", kSubnet}}}, {"privateIPAddress", "10.0.1.10"}};
  Json& r = b["properties"]["loadBalancingRules"][0]["properties"];
  r["protocol"] = "All";
  r["frontendPort"] = 0;
  r["backendPort"] = 0;
  auto lb = ParseLoadBalancer(b, kLb);
  ASSERT_TRUE(lb.ok()) << lb.status().ToString();
  EXPECT_TRUE(lb->Internal());
  EXPECT_TRUE(lb->rules[0].HaPorts());
  EXPECT_TRUE(lb->frontends[0].private_static);
  EXPECT_EQ(lb->frontends[0].private_ip, "10.0.1.10");
}

}  // namespace
}  // namespace stratus::network
