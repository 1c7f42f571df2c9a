#include "network/nat_rules.h"

namespace stratus::network {

namespace {

Json TableRef() { return {{"family", "ip"}, {"name", kNatTable}}; }

Json Chain(const std::string& name, const std::string& type, const std::string& hook, int prio) {
  return {{"add",
           {{"chain",
             {{"family", "ip"}, {"table", kNatTable}, {"name", name}, {"type", type},
              {"hook", hook}, {"prio", prio}, {"policy", "accept"}}}}}};
}

Json Rule(const std::string& chain, Json expr) {
  return {{"add", {{"rule", {{"family", "ip"}, {"table", kNatTable}, {"chain", chain},
                             {"expr", std::move(expr)}}}}}};
}

Json Meta(const std::string& key, const std::string& value, const std::string& op = "==") {
  return {{"match", {{"op", op}, {"left", {{"meta", {{"key", key}}}}}, {"right", value}}}};
}

Json Addr(const char* field) { return {{"payload", {{"protocol", "ip"}, {"field", field}}}}; }

Json CtState(Json states) {
  return {{"match", {{"op", "in"}, {"left", {{"ct", {{"key", "state"}}}}}, {"right", states}}}};
}

Json Replies() { return CtState(Json::array({"established", "related"})); }

Json Verdict(const char* v) { return {{v, nullptr}}; }

// Starts the document: the table made (if absent), deleted and made again, all in one
// transaction.
Json Fresh() {
  Json doc = Json::array();
  doc.push_back({{"add", {{"table", TableRef()}}}});
  doc.push_back({{"delete", {{"table", TableRef()}}}});
  doc.push_back({{"add", {{"table", TableRef()}}}});
  return doc;
}

}  // namespace

Json RouterNatDocument(const UplinkDatapath& uplink, Ipv4 transit) {
  Json doc = Fresh();
  Json dnat = {{"family", "ip"}, {"table", kNatTable}, {"name", "dnat"},
               {"type", "ipv4_addr"}, {"map", "ipv4_addr"}};
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
  doc.push_back(Rule("pre", {Meta("iifname", up),
                             {{"dnat", {{"addr", {{"map", {{"key", Addr("daddr")},
                                                           {"data", "@dnat"}}}}}}}}}));
  doc.push_back(Rule("post", {Meta("oifname", up),
                              {{"snat", {{"addr", {{"map", {{"key", Addr("saddr")},
                                                            {"data", "@snat"}}}}}}}}}));
  doc.push_back(Rule("post", {Meta("oifname", up), {{"snat", {{"addr", transit.ToString()}}}}}));
  // Private subnets: nothing leaves but from addresses with a public IP.
  Json with_public = Json::array();
  for (auto& n : uplink.nats) with_public.push_back(n.private_ip.ToString());
  for (auto& pfx : uplink.private_subnets) {
    Json expr = {Meta("oifname", up),
                 {{"match", {{"op", "=="}, {"left", Addr("saddr")},
                             {"right", {{"prefix", {{"addr", pfx.network.ToString()},
                                                    {"len", pfx.length}}}}}}}}};
    if (!with_public.empty())
      expr.push_back({{"match", {{"op", "!="}, {"left", Addr("saddr")},
                                 {"right", {{"set", with_public}}}}}});
    expr.push_back(Verdict("drop"));
    doc.push_back(Rule("fwd", expr));
  }
  doc.push_back(Rule("fwd", {Meta("iifname", up), Replies(), Verdict("accept")}));
  doc.push_back(Rule("fwd", {Meta("iifname", up),
                             {{"match", {{"op", "in"}, {"left", {{"ct", {{"key", "status"}}}}},
                                         {"right", "dnat"}}}},
                             Verdict("accept")}));
  doc.push_back(Rule("fwd", {Meta("iifname", up), Verdict("drop")}));
  doc.push_back(Rule("in", {Meta("iifname", up), Replies(), Verdict("accept")}));
  doc.push_back(Rule("in", {Meta("iifname", up), Verdict("drop")}));
  return {{"nftables", doc}};
}

Json EdgeDocument(const EdgeDatapath& edge) {
  Json doc = Fresh();
  doc.push_back(Chain("fwd", "filter", "forward", 0));
  doc.push_back(Chain("post", "nat", "postrouting", 100));
  Json pool = {{"prefix", {{"addr", edge.pool.network.ToString()}, {"len", edge.pool.length}}}};
  doc.push_back(Rule("fwd", {Meta("iifname", edge.uplink), Replies(), Verdict("accept")}));
  doc.push_back(Rule("fwd", {Meta("iifname", edge.uplink),
                             {{"match", {{"op", "!="}, {"left", Addr("daddr")}, {"right", pool}}}},
                             Verdict("drop")}));
  Json transit = {{"prefix", {{"addr", "169.254.0.0"}, {"len", 16}}}};
  doc.push_back(Rule("post", {Meta("oifname", edge.uplink),
                              {{"match", {{"op", "=="}, {"left", Addr("saddr")}, {"right", transit}}}},
                              {{"snat", {{"addr", edge.uplink_ip.ToString()}}}}}));
  return {{"nftables", doc}};
}

Json RemoveNatDocument() {
  return {{"nftables",
           {{{"add", {{"table", TableRef()}}}}, {{"delete", {{"table", TableRef()}}}}}}};
}

}  // namespace stratus::network
