#include "network/nat_rules.h"

#include "network/nft_json.h"

namespace stratus::network {

namespace {

using nft::Addr;
using nft::Meta;
using nft::Replies;
using nft::Verdict;

Json Chain(const std::string& name, const std::string& type, const std::string& hook, int prio) {
  return nft::Chain(kNatTable, name, type, hook, prio);
}

Json Rule(const std::string& chain, Json expr) { return nft::Rule(kNatTable, chain, expr); }

}  // namespace

Json RouterNatDocument(const UplinkDatapath& uplink, Ipv4 transit) {
  Json doc = nft::FreshTable(kNatTable);
  Json dnat = {{"family", "ip"},
               {"table", kNatTable},
               {"name", "dnat"},
               {"type", "ipv4_addr"},
               {"map", "ipv4_addr"}};
  Json snat = dnat;
  snat["name"] = "snat";
  Json de = Json::array(), se = Json::array();
  for (auto& n : uplink.nats) {
    de.push_back(Json::array({n.public_ip.ToString(), n.private_ip.ToString()}));
    se.push_back(Json::array({n.private_ip.ToString(), n.public_ip.ToString()}));
  }
  if (!de.empty()) {
    dnat["elem"] = de;
    snat["elem"] = se;
  }
  doc.push_back({{"add", {{"map", dnat}}}});
  doc.push_back({{"add", {{"map", snat}}}});
  doc.push_back(Chain("pre", "nat", "prerouting", -100));
  doc.push_back(Chain("post", "nat", "postrouting", 100));
  doc.push_back(Chain("fwd", "filter", "forward", 0));
  doc.push_back(Chain("in", "filter", "input", 0));
  const std::string& up = uplink.veth;
  doc.push_back(Rule(
      "pre", {Meta("iifname", up),
              {{"dnat", {{"addr", {{"map", {{"key", Addr("daddr")}, {"data", "@dnat"}}}}}}}}}));
  doc.push_back(Rule(
      "post", {Meta("oifname", up),
               {{"snat", {{"addr", {{"map", {{"key", Addr("saddr")}, {"data", "@snat"}}}}}}}}}));
  doc.push_back(Rule("post", {Meta("oifname", up), {{"snat", {{"addr", transit.ToString()}}}}}));
  // Private subnets: nothing leaves but from addresses with a public IP.
  Json with_public = Json::array();
  for (auto& n : uplink.nats) with_public.push_back(n.private_ip.ToString());
  for (auto& pfx : uplink.private_subnets) {
    Json expr = {
        Meta("oifname", up),
        {{"match",
          {{"op", "=="},
           {"left", Addr("saddr")},
           {"right", {{"prefix", {{"addr", pfx.network.ToString()}, {"len", pfx.length}}}}}}}}};
    if (!with_public.empty())
      expr.push_back(
          {{"match", {{"op", "!="}, {"left", Addr("saddr")}, {"right", {{"set", with_public}}}}}});
    expr.push_back(Verdict("drop"));
    doc.push_back(Rule("fwd", expr));
  }
  doc.push_back(Rule("fwd", {Meta("iifname", up), Replies(), Verdict("accept")}));
  doc.push_back(
      Rule("fwd",
           {Meta("iifname", up),
            {{"match", {{"op", "in"}, {"left", {{"ct", {{"key", "status"}}}}}, {"right", "dnat"}}}},
            Verdict("accept")}));
  doc.push_back(Rule("fwd", {Meta("iifname", up), Verdict("drop")}));
  doc.push_back(Rule("in", {Meta("iifname", up), Replies(), Verdict("accept")}));
  doc.push_back(Rule("in", {Meta("iifname", up), Verdict("drop")}));
  return {{"nftables", doc}};
}

Json EdgeDocument(const EdgeDatapath& edge) {
  Json doc = nft::FreshTable(kNatTable);
  doc.push_back(Chain("fwd", "filter", "forward", 0));
  doc.push_back(Chain("post", "nat", "postrouting", 100));
  Json pool = {{"prefix", {{"addr", edge.pool.network.ToString()}, {"len", edge.pool.length}}}};
  doc.push_back(Rule("fwd", {Meta("iifname", edge.uplink), Replies(), Verdict("accept")}));
  doc.push_back(Rule("fwd", {Meta("iifname", edge.uplink),
                             {{"match", {{"op", "!="}, {"left", Addr("daddr")}, {"right", pool}}}},
                             Verdict("drop")}));
  Json transit = {{"prefix", {{"addr", "169.254.0.0"}, {"len", 16}}}};
  doc.push_back(
      Rule("post", {Meta("oifname", edge.uplink),
                    {{"match", {{"op", "=="}, {"left", Addr("saddr")}, {"right", transit}}}},
                    {{"snat", {{"addr", edge.uplink_ip.ToString()}}}}}));
  return {{"nftables", doc}};
}

Json RemoveNatDocument() { return nft::RemoveTable(kNatTable); }

}  // namespace stratus::network
