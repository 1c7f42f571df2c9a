// Network security groups through the API of an in-process region: rules and their checks,
// associations with subnets and NICs, the datapath the engine is given, the effective view.
#include <gtest/gtest.h>

#include "common/in_process_region.h"

namespace stratus::test {
namespace {

class SecurityGroupsTest : public InProcessRegionTest {
 protected:
  static std::string P(const std::string& type, const std::string& name) {
    return std::string(kRg) + "/providers/Stratus.Network/" + type + "/" + name;
  }
  static Json RuleBody(const std::string& name, int priority, const std::string& access,
                       const std::string& port, const std::string& src = "*",
                       const std::string& dir = "Inbound") {
    return {{"name", name},
            {"properties",
             {{"priority", priority},
              {"direction", dir},
              {"access", access},
              {"protocol", "Tcp"},
              {"sourceAddressPrefix", src},
              {"sourcePortRange", "*"},
              {"destinationAddressPrefix", "*"},
              {"destinationPortRange", port}}}};
  }
  static Json NsgBody(Json rules) {
    return {{"location", "regionA"}, {"properties", {{"securityRules", rules}}}};
  }
  void MakeNetwork() {
    ASSERT_EQ(Call("PUT", P("networkSecurityGroups", "web-nsg"),
                   NsgBody({RuleBody("http", 100, "Allow", "80"),
                            RuleBody("no-ssh", 200, "Deny", "22", "Internet")}))
                  .status,
              201);
    ASSERT_EQ(Call("PUT", P("networkSecurityGroups", "subnet-nsg"),
                   NsgBody({RuleBody("admin", 300, "Allow", "8000-8100", "10.1.0.0/16")}))
                  .status,
              201);
    Json vnet = {{"location", "regionA"},
                 {"properties",
                  {{"addressSpace", {{"addressPrefixes", {"10.1.0.0/16"}}}},
                   {"subnets",
                    {{{"name", "front"},
                      {"properties",
                       {{"addressPrefix", "10.1.1.0/24"},
                        {"networkSecurityGroup", {{"id", P("networkSecurityGroups", "subnet-nsg")}}}}}}}}}}};
    auto v = Call("PUT", P("virtualNetworks", "v1"), vnet);
    ASSERT_EQ(v.status, 201) << v.body.dump();
    Json nic = {{"location", "regionA"},
                {"properties",
                 {{"networkSecurityGroup", {{"id", P("networkSecurityGroups", "web-nsg")}}},
                  {"ipConfigurations",
                   {{{"name", "ipconfig1"},
                     {"properties", {{"subnet", {{"id", P("virtualNetworks", "v1") + "/subnets/front"}}}}}}}}}}};
    auto n = Call("PUT", P("networkInterfaces", "web-nic"), nic);
    ASSERT_EQ(n.status, 201) << n.body.dump();
  }
};

TEST_F(SecurityGroupsTest, RulesAreStoredWithTheDefaultsAndAppliedToTheNicsThatUseThem) {
  ASSERT_NO_FATAL_FAILURE(MakeNetwork());
  auto nsg = Call("GET", P("networkSecurityGroups", "web-nsg"));
  ASSERT_EQ(nsg.status, 200);
  EXPECT_EQ(nsg.body["properties"]["securityRules"].size(), 2u);
  EXPECT_EQ(nsg.body["properties"]["defaultSecurityRules"].size(), 6u);
  EXPECT_EQ(nsg.body["properties"]["securityRules"][0]["properties"]["destinationPortRange"], "80");
  EXPECT_EQ(nsg.body["properties"]["networkInterfaces"].size(), 1u);
  auto sub_nsg = Call("GET", P("networkSecurityGroups", "subnet-nsg"));
  EXPECT_EQ(sub_nsg.body["properties"]["subnets"].size(), 1u);

  // The engine holds one stage per NSG and the NIC with both (subnet's, NIC's).
  network::SecurityDatapath d = net().security();
  ASSERT_EQ(d.nics.size(), 1u);
  EXPECT_FALSE(d.nics[0].subnet_stage.empty());
  EXPECT_FALSE(d.nics[0].nic_stage.empty());
  EXPECT_NE(d.nics[0].subnet_stage, d.nics[0].nic_stage);
  ASSERT_EQ(d.stages.size(), 2u);
  EXPECT_EQ(d.gateways.size(), 1u);

  // Rules as sub-resources: add, list, change, delete; each change reaches the engine.
  auto add = Call("PUT", P("networkSecurityGroups", "web-nsg") + "/securityRules/https",
                  RuleBody("https", 110, "Allow", "443"));
  ASSERT_EQ(add.status, 201) << add.body.dump();
  auto list = Call("GET", P("networkSecurityGroups", "web-nsg") + "/securityRules");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.body["value"].size(), 3u);
  size_t rules = 0;
  for (auto& s : net().security().stages) rules += s.rules.size();
  EXPECT_EQ(rules, 4u);
  EXPECT_EQ(Call("DELETE", P("networkSecurityGroups", "web-nsg") + "/securityRules/https").status, 200);
  rules = 0;
  for (auto& s : net().security().stages) rules += s.rules.size();
  EXPECT_EQ(rules, 3u);

  // In use: cannot be deleted; once neither subnet nor NIC uses them, they can, and the engine
  // holds nothing.
  auto in_use = Call("DELETE", P("networkSecurityGroups", "web-nsg"));
  EXPECT_EQ(in_use.status, 409);
  EXPECT_EQ(Code(in_use), "InUseNetworkSecurityGroupCannotBeDeleted");
  ASSERT_EQ(Call("DELETE", P("networkInterfaces", "web-nic")).status, 200);
  EXPECT_TRUE(net().security().nics.empty());
  EXPECT_EQ(Call("DELETE", P("networkSecurityGroups", "web-nsg")).status, 200);
}

TEST_F(SecurityGroupsTest, BadRulesAreRefusedWithTheirCodesAndChangeNothing) {
  struct Case {
    Json rules;
    std::string code;
  };
  Json bad_proto = RuleBody("p", 100, "Allow", "80");
  bad_proto["properties"]["protocol"] = "Sctp";
  Json bad_prefix = RuleBody("x", 100, "Allow", "80", "10.0.0.300/8");
  Json ports_on_icmp = RuleBody("i", 100, "Allow", "80");
  ports_on_icmp["properties"]["protocol"] = "Icmp";
  std::vector<Case> cases = {
      {{RuleBody("a", 100, "Allow", "80"), RuleBody("b", 100, "Deny", "81")}, "SecurityRuleConflict"},
      {{RuleBody("a", 99, "Allow", "80")}, "SecurityRuleInvalidPriority"},
      {{RuleBody("a", 4097, "Allow", "80")}, "SecurityRuleInvalidPriority"},
      {{RuleBody("a", 100, "Allow", "80-70")}, "SecurityRuleInvalidPortRange"},
      {{RuleBody("a", 100, "Allow", "65536")}, "SecurityRuleInvalidPortRange"},
      {{RuleBody("a", 100, "Maybe", "80")}, "SecurityRuleParameterContainsUnsupportedValue"},
      {{bad_proto}, "SecurityRuleParameterContainsUnsupportedValue"},
      {{bad_prefix}, "SecurityRuleInvalidAddressPrefix"},
      {{ports_on_icmp}, "SecurityRuleInvalidPortRange"},
  };
  for (auto& c : cases) {
    auto r = Call("PUT", P("networkSecurityGroups", "bad"), NsgBody(c.rules));
    EXPECT_EQ(r.status, 400) << c.code << " " << r.body.dump();
    EXPECT_EQ(Code(r), c.code) << r.body.dump();
  }
  EXPECT_EQ(Call("GET", P("networkSecurityGroups", "bad")).status, 404);
  // The same priority in the two directions is fine.
  auto ok = Call("PUT", P("networkSecurityGroups", "good"),
                 NsgBody({RuleBody("a", 100, "Allow", "80"),
                          RuleBody("b", 100, "Deny", "80", "*", "Outbound")}));
  EXPECT_EQ(ok.status, 201) << ok.body.dump();
  // An association with an NSG that does not exist.
  Json vnet = {{"location", "regionA"},
               {"properties",
                {{"addressSpace", {{"addressPrefixes", {"10.2.0.0/16"}}}},
                 {"subnets",
                  {{{"name", "s"},
                    {"properties",
                     {{"addressPrefix", "10.2.1.0/24"},
                      {"networkSecurityGroup", {{"id", P("networkSecurityGroups", "ghost")}}}}}}}}}}};
  auto v = Call("PUT", P("virtualNetworks", "v2"), vnet);
  EXPECT_EQ(v.status, 404) << v.body.dump();
  EXPECT_EQ(Code(v), "InvalidResourceReference");
}

TEST_F(SecurityGroupsTest, EffectiveRulesListSubnetThenNicInEvaluationOrderWithTagsExpanded) {
  ASSERT_NO_FATAL_FAILURE(MakeNetwork());
  auto eff = Call("POST", P("networkInterfaces", "web-nic") + "/effectiveNetworkSecurityGroups");
  ASSERT_EQ(eff.status, 200) << eff.body.dump();
  ASSERT_EQ(eff.body["value"].size(), 2u);
  EXPECT_TRUE(eff.body["value"][0]["association"].contains("subnet"));
  EXPECT_TRUE(eff.body["value"][1]["association"].contains("networkInterface"));
  const Json& rules = eff.body["value"][1]["effectiveSecurityRules"];
  ASSERT_EQ(rules.size(), 2u + 6u);
  EXPECT_EQ(rules[0]["name"], "securityRules/http");
  EXPECT_EQ(rules[1]["name"], "securityRules/no-ssh");
  EXPECT_EQ(rules[2]["name"], "defaultSecurityRules/AllowVnetInBound");
  EXPECT_EQ(rules[2]["expandedSourceAddressPrefix"], Json({"10.1.0.0/16"}));
  // Internet: everything but the VNET's space.
  EXPECT_EQ(rules[1]["expandedSourceAddressPrefix"],
            Json({"0.0.0.0-10.0.255.255", "10.2.0.0-255.255.255.255"}));
}

TEST_F(SecurityGroupsTest, RuleCountersSumTheDatapathsCountsPerRuleAndShowInTheEffectiveView) {
  ASSERT_NO_FATAL_FAILURE(MakeNetwork());
  network::SecurityDatapath d = net().security();
  ASSERT_EQ(d.nics.size(), 1u);
  const std::string web_stage = d.nics[0].nic_stage;
  using network::Direction;
  net().SetCounters({{web_stage, Direction::kInbound, "securityRules/http", 12, 900},
                     {web_stage, Direction::kInbound, "defaultSecurityRules/DenyAllInBound", 3, 180},
                     {d.nics[0].subnet_stage, Direction::kInbound, "securityRules/admin", 5, 300}});
  auto counters = Call("POST", P("networkSecurityGroups", "web-nsg") + "/ruleCounters");
  ASSERT_EQ(counters.status, 200) << counters.body.dump();
  const Json& v = counters.body["value"];
  ASSERT_EQ(v.size(), 2u + 6u) << "every rule, the defaults too";
  EXPECT_EQ(v[0]["name"], "securityRules/http");
  EXPECT_EQ(v[0]["packets"], 12);
  EXPECT_EQ(v[0]["bytes"], 900);
  EXPECT_EQ(v[0]["virtualNetworks"][0]["id"], P("virtualNetworks", "v1"));
  EXPECT_EQ(v[1]["name"], "securityRules/no-ssh");
  EXPECT_EQ(v[1]["packets"], 0);
  bool deny_all = false;
  for (auto& r : v)
    if (r["name"] == "defaultSecurityRules/DenyAllInBound") deny_all = r["packets"] == 3;
  EXPECT_TRUE(deny_all) << v.dump();
  EXPECT_EQ(Call("POST", P("networkSecurityGroups", "nope") + "/ruleCounters").status, 404);

  auto eff = Call("POST", P("networkInterfaces", "web-nic") + "/effectiveNetworkSecurityGroups");
  ASSERT_EQ(eff.status, 200);
  EXPECT_EQ(eff.body["value"][0]["effectiveSecurityRules"][0]["name"], "securityRules/admin");
  EXPECT_EQ(eff.body["value"][0]["effectiveSecurityRules"][0]["packets"], 5);
  EXPECT_EQ(eff.body["value"][1]["effectiveSecurityRules"][0]["packets"], 12);
  // Counters that cannot be read: the view still answers, without them; the action says why.
  net().Fail(Internal("network: reading the counters of set r_x failed"));
  auto no_counts = Call("POST", P("networkInterfaces", "web-nic") + "/effectiveNetworkSecurityGroups");
  ASSERT_EQ(no_counts.status, 200) << no_counts.body.dump();
  EXPECT_FALSE(no_counts.body["value"][1]["effectiveSecurityRules"][0].contains("packets"));
  net().Fail(Internal("network: reading the counters of set r_x failed"));
  EXPECT_EQ(Call("POST", P("networkSecurityGroups", "web-nsg") + "/ruleCounters").status, 500);
}

}  // namespace
}  // namespace stratus::test
