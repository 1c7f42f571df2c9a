// The security datapath's model, whole transactions and diffs (nsg_compiler.h), and the
// attribution of element counters to rules (nsg_counters.h). Pure; the kernel's side is in
// linux_network_engine_test.cc.
#include "network/nsg_compiler.h"

#include <gtest/gtest.h>

#include "network/nsg_counters.h"

namespace stratus::network {
namespace {

SecurityRule Rule(const std::string& name, int priority, Access access, const std::string& src,
                  uint16_t port, Direction dir = Direction::kInbound) {
  SecurityRule r;
  r.name = name;
  r.priority = priority;
  r.direction = dir;
  r.access = access;
  r.protocol = "Tcp";
  r.sources = {src};
  r.destinations = {"*"};
  r.source_ports = {PortRange{}};
  r.destination_ports = {PortRange{port, port}};
  return r;
}

SecurityDatapath Datapath() {
  SecurityDatapath d;
  d.table = "stratus_t1";
  d.tap_prefix = "stt1";
  NsgStage s;
  s.key = "n1v1";
  s.tags.vnet_spaces = {*ParseIpv4Prefix("10.1.0.0/16", "")};
  s.rules = {Rule("a", 100, Access::kAllow, "10.1.1.4", 80),
             Rule("b", 110, Access::kAllow, "10.1.1.5", 80),
             Rule("c", 120, Access::kDeny, "10.1.1.0/24", 22)};
  d.stages = {s};
  d.nics = {{"stt1n1", "", "n1v1", "52:54:00:00:00:01", {*ParseIpv4("10.1.1.4", "")}},
            {"stt1n2", "", "", "52:54:00:00:00:02", {*ParseIpv4("10.1.1.5", "")}}};
  d.gateways = {*ParseIpv4("10.1.1.1", "")};
  return d;
}

// The commands of a transaction as "verb kind name" lines (elements: also their count).
std::vector<std::string> Commands(const Json& doc) {
  std::vector<std::string> out;
  for (auto& c : doc["nftables"])
    for (auto& [verb, what] : c.items())
      for (auto& [kind, obj] : what.items()) {
        std::string line = verb + " " + kind + " " + obj.value("name", obj.value("chain", ""));
        if (obj.contains("elem")) line += " x" + std::to_string(obj["elem"].size());
        out.push_back(line);
      }
  return out;
}

bool Has(const std::vector<std::string>& cmds, const std::string& line) {
  return std::find(cmds.begin(), cmds.end(), line) != cmds.end();
}

TEST(NsgCompilerTest, RunsOfOneAccessShareASetAndEveryElementKnowsItsRule) {
  SecurityModel m = ModelSecurity(Datapath(), 3);
  // Inbound: [a b] allow, [c] deny, then the defaults (allow, allow, deny: two more runs).
  ASSERT_TRUE(m.sets.count("r_n1v1_in_100_g3p"));
  ASSERT_TRUE(m.sets.count("r_n1v1_in_120_g3p"));
  const RuleSet& allow = m.sets.at("r_n1v1_in_100_g3p");
  EXPECT_EQ(allow.owners.size(), 2u);
  ASSERT_EQ(m.rules.size(), 2u);  // inbound, outbound
  EXPECT_EQ(m.rules[0].rules[0], "securityRules/a");
  EXPECT_EQ(m.rules[0].rules[3], "defaultSecurityRules/AllowVnetInBound");
  for (auto& [box, owner] : allow.owners)
    EXPECT_EQ(m.rules[0].rules[owner],
              box.src_first == 0x0a010104 ? "securityRules/a" : "securityRules/b");
  EXPECT_EQ(m.chains.at("nsg_n1v1_in_g3").size(), 4u);  // one lookup per set of the direction
  EXPECT_EQ(m.out_by_tap.at("stt1n1"), "nic_stt1n1_out_g3");
  EXPECT_FALSE(m.out_by_tap.count("stt1n2"));  // no NSG: only its source check
  EXPECT_EQ(m.spoof_by_tap.size(), 2u);
}

TEST(NsgCompilerTest, ARuleTwoRulesProduceIsCountedOnTheEarlier) {
  SecurityDatapath d = Datapath();
  d.stages[0].rules.push_back(Rule("a-again", 105, Access::kAllow, "10.1.1.4", 80));
  SecurityModel m = ModelSecurity(d, 1);
  const RuleSet& allow = m.sets.at("r_n1v1_in_100_g1p");
  EXPECT_EQ(allow.owners.size(), 2u);
  for (auto& [box, owner] : allow.owners)
    EXPECT_NE(m.rules[0].rules[owner], "securityRules/a-again");
}

TEST(NsgCompilerTest, OverlappingRulesOfARunGoToLayersWhoseElementsNeverOverlap) {
  SecurityDatapath d = Datapath();
  // b's /16 holds a's address; c (Allow everything, no ports) holds the default allows.
  d.stages[0].rules = {Rule("a", 100, Access::kAllow, "10.1.1.4", 80),
                       Rule("b", 110, Access::kAllow, "10.1.0.0/16", 80)};
  SecurityRule all = Rule("all", 120, Access::kAllow, "*", 0);
  all.protocol = "*";
  all.destination_ports = {PortRange{}};
  d.stages[0].rules.push_back(all);
  SecurityModel m = ModelSecurity(d, 1);
  ASSERT_TRUE(m.sets.count("r_n1v1_in_100_g1p"));
  ASSERT_TRUE(m.sets.count("r_n1v1_in_100_g1p1")) << "b overlaps a: a second layer";
  ASSERT_TRUE(m.sets.count("r_n1v1_in_100_g1a"));
  ASSERT_TRUE(m.sets.count("r_n1v1_in_100_g1a1")) << "the default allows inside 'all'";
  EXPECT_EQ(m.rules[0].rules[m.sets.at("r_n1v1_in_100_g1p").owners.begin()->second],
            "securityRules/a");
  EXPECT_EQ(m.rules[0].rules[m.sets.at("r_n1v1_in_100_g1a").owners.begin()->second],
            "securityRules/all");
  // The chain looks them up layer by layer, lower first.
  const auto& chain = m.chains.at("nsg_n1v1_in_g1");
  std::vector<std::string> lookups;
  for (auto& r : chain) lookups.push_back(r[0]["match"]["right"].get<std::string>());
  auto at = [&](const std::string& s) {
    return std::find(lookups.begin(), lookups.end(), s) - lookups.begin();
  };
  EXPECT_LT(at("@r_n1v1_in_100_g1p"), at("@r_n1v1_in_100_g1p1"));
  // No two elements of one set overlap.
  for (auto& [name, set] : m.sets)
    for (auto i = set.owners.begin(); i != set.owners.end(); ++i)
      for (auto j = std::next(i); j != set.owners.end(); ++j) {
        const RuleBox &x = i->first, &y = j->first;
        bool overlap = x.src_first <= y.src_last && y.src_first <= x.src_last &&
                       x.dst_first <= y.dst_last && y.dst_first <= x.dst_last &&
                       x.proto_first <= y.proto_last && y.proto_first <= x.proto_last &&
                       x.sport_first <= y.sport_last && y.sport_first <= x.sport_last &&
                       x.dport_first <= y.dport_last && y.dport_first <= x.dport_last;
        EXPECT_FALSE(overlap) << name;
      }
  // Disjoint rules stay in one layer, however many.
  d.stages[0].rules.clear();
  for (int i = 0; i < 3000; ++i)
    d.stages[0].rules.push_back(Rule("r" + std::to_string(i), 100 + i % 3000, Access::kDeny,
                                     "172.16." + std::to_string(i / 250) + "." +
                                         std::to_string(i % 250 + 1),
                                     22));
  SecurityModel big = ModelSecurity(d, 1);
  EXPECT_EQ(big.sets.at("r_n1v1_in_100_g1p").owners.size(), 3000u);
  EXPECT_FALSE(big.sets.count("r_n1v1_in_100_g1p1"));
}

TEST(NsgCompilerTest, AWholeCompileReplacesTheLastGeneration) {
  SecurityModel m = ModelSecurity(Datapath(), 2);
  ExistingSecurity old{true, 1, {"nsg_n1v1_in_g1", "nic_stt1n1_src_g1"}, {"r_n1v1_in_100_g1p"}};
  auto cmds = Commands(CompileSecurity(m, old));
  EXPECT_TRUE(Has(cmds, "delete chain nsg_n1v1_in_g1"));
  EXPECT_TRUE(Has(cmds, "delete set r_n1v1_in_100_g1p"));
  EXPECT_TRUE(Has(cmds, "add set r_n1v1_in_100_g2p"));
  EXPECT_TRUE(Has(cmds, "add element r_n1v1_in_100_g2p x2"));
  EXPECT_FALSE(Has(cmds, "add set flows")) << "the state sets stay";
  auto fresh = Commands(CompileSecurity(m, ExistingSecurity{}));
  EXPECT_TRUE(Has(fresh, "add set flows"));
  ExistingSecurity after = ExistingOf(m);
  EXPECT_EQ(after.generation, 2u);
  EXPECT_EQ(after.sets.size(), m.sets.size());
}

TEST(NsgCompilerTest, AOneRuleChangeIsOneElementOutAndOneIn) {
  SecurityDatapath d = Datapath();
  SecurityModel from = ModelSecurity(d, 4);
  d.stages[0].rules[1].destination_ports = {PortRange{8080, 8080}};
  SecurityModel to = ModelSecurity(d, 4);
  auto diff = DiffSecurity(from, to);
  ASSERT_TRUE(diff.has_value());
  EXPECT_EQ(Commands(*diff), (std::vector<std::string>{"delete element r_n1v1_in_100_g4p x1",
                                                       "add element r_n1v1_in_100_g4p x1"}));
  auto same = DiffSecurity(to, to);
  ASSERT_TRUE(same.has_value());
  EXPECT_TRUE((*same)["nftables"].empty());
}

TEST(NsgCompilerTest, ANewRunAndANewNicAreAddedAndWhatGoesIsEmptiedThenDeleted) {
  SecurityDatapath d = Datapath();
  SecurityModel from = ModelSecurity(d, 1);
  // b becomes a Deny and c an Allow: runs [a] [b] [c + the default allows] (a new set for b's
  // run; c's keeps its name and element, its verdict changes in the chain); NIC 2 gets the NSG
  // too.
  d.stages[0].rules[1].access = Access::kDeny;
  d.stages[0].rules[2].access = Access::kAllow;
  d.nics[1].nic_stage = "n1v1";
  SecurityModel to = ModelSecurity(d, 1);
  auto diff = DiffSecurity(from, to);
  ASSERT_TRUE(diff.has_value());
  auto cmds = Commands(*diff);
  EXPECT_TRUE(Has(cmds, "flush chain nsg_n1v1_in_g1"));
  EXPECT_TRUE(Has(cmds, "add set r_n1v1_in_110_g1p"));
  EXPECT_TRUE(Has(cmds, "delete set r_n1v1_in_65000_g1a"));  // the defaults joined c's run
  EXPECT_FALSE(Has(cmds, "delete set r_n1v1_in_120_g1p"));
  EXPECT_TRUE(Has(cmds, "add chain nic_stt1n2_out_g1"));
  EXPECT_TRUE(Has(cmds, "add element out_by_tap x1"));
  EXPECT_FALSE(Has(cmds, "flush chain nic_stt1n1_out_g1")) << "unchanged chains stay";
  // Back: the NIC's chains are unhooked, emptied and deleted, in that order.
  auto back = DiffSecurity(to, from);
  ASSERT_TRUE(back.has_value());
  auto b = Commands(*back);
  auto pos = [&](const std::string& l) { return std::find(b.begin(), b.end(), l) - b.begin(); };
  ASSERT_TRUE(Has(b, "delete element out_by_tap x1"));
  ASSERT_TRUE(Has(b, "delete chain nic_stt1n2_out_g1"));
  EXPECT_LT(pos("delete element out_by_tap x1"), pos("flush chain nic_stt1n2_out_g1"));
  EXPECT_LT(pos("flush chain nic_stt1n2_out_g1"), pos("delete chain nic_stt1n2_out_g1"));
}

TEST(NsgCompilerTest, WhatADiffCannotSayIsCompiledWhole) {
  SecurityModel a = ModelSecurity(Datapath(), 1);
  EXPECT_FALSE(DiffSecurity(a, ModelSecurity(Datapath(), 2)).has_value());
  SecurityModel b = a;
  b.out_by_tap["stt1n1"] = "nic_other";
  EXPECT_FALSE(DiffSecurity(a, b).has_value());
}

TEST(NsgCountersTest, ElementsAreReadInEveryShapeNftPrintsThem) {
  Json v = {{"concat",
             {{{"prefix", {{"addr", "10.1.0.0"}, {"len", 16}}}},
              "10.1.1.4",
              6,
              {{"range", {1024, 2047}}},
              "80"}}};
  auto box = ParseRuleElement(v, true);
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  EXPECT_EQ(box->src_first, 0x0a010000u);
  EXPECT_EQ(box->src_last, 0x0a01ffffu);
  EXPECT_EQ(box->dst_first, box->dst_last);
  EXPECT_EQ(box->proto_first, 6);
  EXPECT_EQ(box->sport_last, 2047);
  EXPECT_EQ(box->dport_first, 80);
  Json plain = {{"concat", {{{"range", {"0.0.0.0", "255.255.255.255"}}}, "10.1.1.4", "icmp"}}};
  auto p = ParseRuleElement(plain, false);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->proto_last, 1);
  EXPECT_FALSE(ParseRuleElement(plain, true).ok());
  EXPECT_FALSE(ParseRuleElement(Json("x"), false).ok());
}

TEST(NsgCountersTest, CountersAreSummedByTheRuleThatOwnsEachElement) {
  SecurityModel m = ModelSecurity(Datapath(), 1);
  auto elem = [](const std::string& src, int port, int packets) {
    return Json{{"elem",
                 {{"val",
                   {{"concat",
                     {src,
                      {{"prefix", {{"addr", "0.0.0.0"}, {"len", 0}}}},
                      6,
                      {{"range", {0, 65535}}},
                      port}}}},
                  {"counter", {{"packets", packets}, {"bytes", packets * 60}}}}}};
  };
  std::map<std::string, Json> listings;
  listings["r_n1v1_in_100_g1p"] = {
      {"nftables",
       {{{"metainfo", Json::object()}},
        {{"set",
          {{"elem",
            {elem("10.1.1.4", 80, 7), elem("10.1.1.5", 80, 2), elem("9.9.9.9", 1, 5)}}}}}}}};
  auto counters = CountRuleHits(m, listings);
  std::map<std::string, uint64_t> by_rule;
  for (auto& c : counters)
    if (c.direction == Direction::kInbound) by_rule[c.rule] = c.packets;
  EXPECT_EQ(by_rule["securityRules/a"], 7u);
  EXPECT_EQ(by_rule["securityRules/b"], 2u);
  EXPECT_EQ(by_rule["securityRules/c"], 0u);  // listed, matched nothing
  EXPECT_EQ(by_rule.count("defaultSecurityRules/DenyAllInBound"), 1u);
  EXPECT_EQ(counters.size(), m.rules[0].rules.size() + m.rules[1].rules.size());
}

}  // namespace
}  // namespace stratus::network
