#include "network/lb/lb_datapath.h"

#include <algorithm>

#include "network/lb/maglev.h"
#include "network/nft_json.h"

namespace stratus::network {

namespace {

using nft::Addr;
using nft::Match;
using nft::Meta;
using nft::Verdict;

// The hash's seed: any fixed value (a restart must make the same choices).
constexpr uint32_t kHashSeed = 0x5354524c;  // "STRL"

Json Rule(const std::string& chain, Json expr) { return nft::Rule(kLbTable, chain, expr); }

std::string MapName(const std::string& key) { return "m_" + key; }
std::string CounterName(const std::string& key) { return "c_" + key; }

Json Payload(const std::string& proto, const char* field) {
  return {{"payload", {{"protocol", proto}, {"field", field}}}};
}

// Matches a rule's frontend: its address, and for a rule with a port the protocol and port.
Json FrontendMatch(Ipv4 frontend, const std::string& protocol, int port) {
  Json e = Json::array({Match(Addr("daddr"), frontend.ToString())});
  if (protocol == "all") {
    if (port == 0) return e;
    e.push_back(Meta("l4proto", {{"set", Json::array({"tcp", "udp"})}}));
  } else {
    e.push_back(Meta("l4proto", protocol));
  }
  e.push_back(Match({{"payload", {{"protocol", "th"}, {"field", "dport"}}}}, port));
  return e;
}

// What a rule hashes: Default the 5-tuple, SourceIPProtocol the 3-tuple, SourceIP the 2-tuple.
Json HashInput(const LbRuleDatapath& r) {
  Json parts = Json::array({Addr("saddr"), Addr("daddr")});
  if (r.distribution != LbDistribution::kSourceIp)
    parts.push_back({{"meta", {{"key", "l4proto"}}}});
  if (r.distribution == LbDistribution::kDefault &&
      !(r.protocol == "all" && r.frontend_port == 0)) {
    parts.push_back(Payload("th", "sport"));
    parts.push_back(Payload("th", "dport"));
  }
  return {{"concat", parts}};
}

Json AddrSet(const std::vector<Ipv4>& addrs) {
  Json s = Json::array();
  for (auto& a : addrs) s.push_back(a.ToString());
  return {{"set", s}};
}

}  // namespace

Json LbStructure(const LbDatapath& lb) {
  Json doc = Json::array();
  for (auto& r : lb.rules) {
    doc.push_back(
        {{"add",
          {{"counter", {{"family", "ip"}, {"table", kLbTable}, {"name", CounterName(r.key)}}}}}});
    doc.push_back({{"add",
                    {{"map",
                      {{"family", "ip"},
                       {"table", kLbTable},
                       {"name", MapName(r.key)},
                       {"type", "mark"},
                       {"map", "ipv4_addr"}}}}}});
  }
  for (auto& n : lb.nats)
    doc.push_back(
        {{"add",
          {{"counter", {{"family", "ip"}, {"table", kLbTable}, {"name", CounterName(n.key)}}}}}});
  doc.push_back(nft::Chain(kLbTable, "count", "filter", "prerouting", -200));
  doc.push_back(nft::Chain(kLbTable, "pre", "nat", "prerouting", -110));
  doc.push_back(nft::Chain(kLbTable, "post", "nat", "postrouting", 90));
  for (auto& r : lb.rules) {
    Json count = FrontendMatch(r.frontend, r.protocol, r.frontend_port);
    count.push_back({{"counter", CounterName(r.key)}});
    doc.push_back(Rule("count", count));
    Json pre = FrontendMatch(r.frontend, r.protocol, r.frontend_port);
    pre.push_back(
        {{"mangle",
          {{"key", {{"meta", {{"key", "mark"}}}}},
           {"value",
            {{"jhash",
              {{"mod", kMaglevTableSize}, {"seed", kHashSeed}, {"expr", HashInput(r)}}}}}}}});
    Json dnat = {
        {"addr",
         {{"map", {{"key", {{"meta", {{"key", "mark"}}}}}, {"data", "@" + MapName(r.key)}}}}}};
    if (r.backend_port != 0) dnat["port"] = r.backend_port;
    pre.push_back({{"dnat", dnat}});
    doc.push_back(Rule("pre", pre));
  }
  for (auto& n : lb.nats) {
    Json count = FrontendMatch(n.frontend, n.protocol, n.frontend_port);
    count.push_back({{"counter", CounterName(n.key)}});
    doc.push_back(Rule("count", count));
    Json pre = FrontendMatch(n.frontend, n.protocol, n.frontend_port);
    pre.push_back({{"dnat", {{"addr", n.backend.ToString()}, {"port", n.backend_port}}}});
    doc.push_back(Rule("pre", pre));
  }
  if (!lb.frontends.empty())
    doc.push_back(Rule("pre", {Match(Addr("daddr"), AddrSet(lb.frontends)), Verdict("drop")}));
  // Hairpin: back out of the link it came in by, so the reply must come back here.
  Json dnatted = Match({{"ct", {{"key", "status"}}}}, "dnat", "in");
  for (auto& link : lb.subnet_links)
    doc.push_back(Rule(
        "post",
        {dnatted,
         Meta("iifname", link),
         Meta("oifname", link),
         {{"snat",
           {{"addr", {{"ct", {{"key", "daddr"}, {"family", "ip"}, {"dir", "original"}}}}}}}}}));
  if (!lb.uplink.empty())
    for (auto& s : lb.snats)
      if (!s.sources.empty())
        doc.push_back(Rule("post", {Meta("oifname", lb.uplink),
                                    Match(Addr("saddr"), AddrSet(s.sources)),
                                    {{"snat", {{"addr", s.to.ToString()}}}}}));
  return doc;
}

std::map<std::string, std::vector<std::string>> LbElements(const LbDatapath& lb) {
  std::map<std::string, std::vector<std::string>> out;
  for (auto& r : lb.rules) {
    std::vector<std::string> keys;
    for (auto& b : r.backends) keys.push_back(b.ToString());
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    auto table = MaglevTable(keys);
    std::vector<std::string> slots(kMaglevTableSize);
    for (size_t s = 0; s < table.size(); ++s) slots[s] = keys[table[s]];
    out[MapName(r.key)] = std::move(slots);
  }
  return out;
}

namespace {

Json Element(const std::string& map, Json elems, const char* verb) {
  return {{verb,
           {{"element",
             {{"family", "ip"}, {"table", kLbTable}, {"name", map}, {"elem", std::move(elems)}}}}}};
}

}  // namespace

Json LbTableDocument(const Json& structure,
                     const std::map<std::string, std::vector<std::string>>& elements) {
  Json doc = nft::FreshTable(kLbTable);
  for (auto& c : structure) doc.push_back(c);
  for (auto& [map, slots] : elements) {
    Json elems = Json::array();
    for (size_t s = 0; s < slots.size(); ++s)
      if (!slots[s].empty()) elems.push_back(Json::array({s, slots[s]}));
    if (!elems.empty()) doc.push_back(Element(map, std::move(elems), "add"));
  }
  return {{"nftables", doc}};
}

Json LbElementChanges(const std::map<std::string, std::vector<std::string>>& have,
                      const std::map<std::string, std::vector<std::string>>& want) {
  Json doc = Json::array();
  for (auto& [map, slots] : want) {
    auto it = have.find(map);
    static const std::vector<std::string> kNone;
    const std::vector<std::string>& old = it == have.end() ? kNone : it->second;
    Json del = Json::array(), add = Json::array();
    for (size_t s = 0; s < slots.size(); ++s) {
      const std::string was = s < old.size() ? old[s] : "";
      if (was == slots[s]) continue;
      if (!was.empty()) del.push_back(s);
      if (!slots[s].empty()) add.push_back(Json::array({s, slots[s]}));
    }
    if (!del.empty()) doc.push_back(Element(map, std::move(del), "delete"));
    if (!add.empty()) doc.push_back(Element(map, std::move(add), "add"));
  }
  if (doc.empty()) return nullptr;
  return {{"nftables", doc}};
}

Json RemoveLbDocument() { return nft::RemoveTable(kLbTable); }

}  // namespace stratus::network
