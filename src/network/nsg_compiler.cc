#include "network/nsg_compiler.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace stratus::network {

namespace {

constexpr char kFamily[] = "bridge";
constexpr int kFlowTimeoutS = 1800;
constexpr int kPingTimeoutS = 30;
constexpr int kFlowSetSize = 262144;

Json Payload(const char* proto, const char* field) {
  return {{"payload", {{"protocol", proto}, {"field", field}}}};
}
Json Meta(const char* key) { return {{"meta", {{"key", key}}}}; }
Json Match(Json left, Json right, const char* op = "==") {
  return {{"match", {{"op", op}, {"left", std::move(left)}, {"right", std::move(right)}}}};
}
Json Concat(std::vector<Json> parts) { return {{"concat", parts}}; }
Json Range(Json a, Json b) { return {{"range", {std::move(a), std::move(b)}}}; }
Json Verdict(const char* v) { return {{v, nullptr}}; }
Json Jump(const std::string& chain) { return {{"jump", {{"target", chain}}}}; }

struct Builder {
  const std::string& table;
  Json cmds = Json::array();

  Json Obj(Json o) const {
    o["family"] = kFamily;
    o["table"] = table;
    return o;
  }
  void Add(const char* kind, Json o) { cmds.push_back({{"add", {{kind, Obj(std::move(o))}}}}); }
  void Verb(const char* verb, const char* kind, const std::string& name) {
    cmds.push_back({{verb, {{kind, Obj({{"name", name}})}}}});
  }
  void Rule(const std::string& chain, std::vector<Json> expr) {
    Add("rule", {{"chain", chain}, {"expr", expr}});
  }
};

Json Ip(uint32_t v) { return Ipv4{v}.ToString(); }

// The protocol numbers a rule covers, as inclusive ranges.
std::vector<std::pair<int, int>> Protocols(const SecurityRule& r, bool ported) {
  if (r.protocol == "Tcp") return {{6, 6}};
  if (r.protocol == "Udp") return {{17, 17}};
  if (r.protocol == "Icmp") return {{1, 1}};
  if (r.protocol == "Esp") return {{50, 50}};
  if (r.protocol == "Ah") return {{51, 51}};
  if (ported) return {{6, 6}, {17, 17}};
  return {{0, 255}};
}

bool AllPorts(const SecurityRule& r) {
  return r.source_ports == std::vector<PortRange>{PortRange{}} &&
         r.destination_ports == std::vector<PortRange>{PortRange{}};
}

const std::vector<Json>& FiveTuple() {
  static const std::vector<Json> k = {Payload("ip", "saddr"), Payload("ip", "daddr"),
                                      Meta("l4proto"), Payload("th", "sport"),
                                      Payload("th", "dport")};
  return k;
}
const std::vector<Json>& ThreeTuple() {
  static const std::vector<Json> k = {Payload("ip", "saddr"), Payload("ip", "daddr"),
                                      Meta("l4proto")};
  return k;
}
const Json& FiveType() {
  static const Json k = {"ipv4_addr", "ipv4_addr", "inet_proto", "inet_service", "inet_service"};
  return k;
}
const Json& ThreeType() {
  static const Json k = {"ipv4_addr", "ipv4_addr", "inet_proto"};
  return k;
}

// One stage chain: runs of same-access rules, each a lookup in one set per kind.
void CompileStage(Builder& b, const NsgStage& stage, Direction dir, const std::string& gen) {
  const char* d = dir == Direction::kInbound ? "in" : "out";
  std::string chain = "nsg_" + stage.key + "_" + d + gen;
  b.Add("chain", {{"name", chain}});
  std::vector<SecurityRule> rules = RulesInOrder(stage.rules, dir);
  size_t i = 0;
  int run = 0;
  while (i < rules.size()) {
    Access access = rules[i].access;
    Json ported = Json::array(), plain = Json::array();
    for (; i < rules.size() && rules[i].access == access; ++i) {
      const SecurityRule& r = rules[i];
      auto src = ExpandAddresses(r.sources, stage.tags);
      auto dst = ExpandAddresses(r.destinations, stage.tags);
      bool with_ports = !AllPorts(r);
      for (auto& s : src)
        for (auto& t : dst)
          for (auto& [p0, p1] : Protocols(r, with_ports)) {
            if (!with_ports) {
              plain.push_back(Concat({Range(Ip(s.first), Ip(s.last)), Range(Ip(t.first), Ip(t.last)),
                                      Range(p0, p1)}));
              continue;
            }
            for (auto& sp : r.source_ports)
              for (auto& dp : r.destination_ports)
                ported.push_back(Concat({Range(Ip(s.first), Ip(s.last)),
                                         Range(Ip(t.first), Ip(t.last)), Range(p0, p1),
                                         Range(sp.first, sp.last), Range(dp.first, dp.last)}));
          }
    }
    const char* verdict = access == Access::kAllow ? "return" : "drop";
    std::string base = "r_" + stage.key + "_" + d + "_" + std::to_string(run++) + gen;
    for (int kind = 0; kind < 2; ++kind) {
      Json& elems = kind == 0 ? ported : plain;
      if (elems.empty()) continue;
      std::string set = base + (kind == 0 ? "p" : "a");
      b.Add("set", {{"name", set},
                    {"type", kind == 0 ? FiveType() : ThreeType()},
                    {"flags", {"interval"}},
                    {"stmt", {{{"counter", nullptr}}}}});
      b.Add("element", {{"name", set}, {"elem", elems}});
      b.Rule(chain, {Match(Concat(kind == 0 ? FiveTuple() : ThreeTuple()), "@" + set),
                     Verdict(verdict)});
    }
  }
}

}  // namespace

Json CompileSecurity(const SecurityDatapath& d, const ExistingSecurity& existing) {
  Builder b{d.table};
  const std::string gen = "_g" + std::to_string(existing.generation + 1);
  b.cmds.push_back({{"add", {{"table", {{"family", kFamily}, {"name", d.table}}}}}});
  // Drop what the last version made; the same transaction makes the new one.
  b.Add("map", {{"name", "out_by_tap"}, {"type", "ifname"}, {"map", "verdict"}});
  b.Add("map", {{"name", "in_by_tap"}, {"type", "ifname"}, {"map", "verdict"}});
  b.Add("map", {{"name", "spoof_by_tap"}, {"type", "ifname"}, {"map", "verdict"}});
  b.Verb("flush", "map", "out_by_tap");
  b.Verb("flush", "map", "in_by_tap");
  b.Verb("flush", "map", "spoof_by_tap");
  b.Add("chain", {{"name", "vnet"}});
  b.Verb("flush", "chain", "vnet");
  for (auto& c : existing.chains) b.Verb("flush", "chain", c);
  for (auto& c : existing.chains) b.Verb("delete", "chain", c);
  for (auto& s : existing.sets) b.Verb("delete", "set", s);
  // The state: reverse tuples of flows that passed. Made with the table, then kept (the kernel
  // marks them dynamic: adding them again would not match and fail).
  if (!existing.table) {
    b.Add("set", {{"name", "flows"}, {"type", FiveType()}, {"flags", {"timeout"}},
                  {"timeout", kFlowTimeoutS}, {"size", kFlowSetSize}});
    b.Add("set", {{"name", "pings"}, {"type", {"ipv4_addr", "ipv4_addr"}},
                  {"flags", {"timeout"}}, {"timeout", kPingTimeoutS}, {"size", kFlowSetSize}});
  }
  b.Add("chain", {{"name", "forward"}, {"type", "filter"}, {"hook", "forward"}, {"prio", 0},
                  {"policy", "accept"}});
  b.Verb("flush", "chain", "forward");
  std::string taps = d.tap_prefix + "*";
  b.Rule("forward", {Match(Meta("iifname"), taps), {{"goto", {{"target", "vnet"}}}}});
  b.Rule("forward", {Match(Meta("oifname"), taps), {{"goto", {{"target", "vnet"}}}}});

  // chain vnet
  b.Rule("vnet", {Match(Meta("protocol"), {{"set", {"ip", "arp"}}}, "!="), Verdict("drop")});
  b.Rule("vnet", {{{"vmap", {{"key", Meta("iifname")}, {"data", "@spoof_by_tap"}}}}});
  b.Rule("vnet", {Match(Meta("protocol"), "arp"), Verdict("accept")});
  b.Rule("vnet", {Match(Payload("udp", "sport"), 68), Match(Payload("udp", "dport"), 67),
                  Verdict("accept")});
  b.Rule("vnet", {Match(Payload("udp", "sport"), 67), Match(Payload("udp", "dport"), 68),
                  Verdict("accept")});
  if (!d.gateways.empty()) {
    Json gws = Json::array();
    for (auto& g : d.gateways) gws.push_back(g.ToString());
    Json set = {{"set", gws}};
    b.Rule("vnet", {Match(Payload("ip", "daddr"), set), Match(Payload("th", "dport"), 53),
                    Match(Meta("l4proto"), {{"set", {"tcp", "udp"}}}), Verdict("accept")});
    b.Rule("vnet", {Match(Payload("ip", "saddr"), set), Match(Payload("th", "sport"), 53),
                    Match(Meta("l4proto"), {{"set", {"tcp", "udp"}}}), Verdict("accept")});
  }
  b.Rule("vnet", {Match(Concat(FiveTuple()), "@flows"), Verdict("accept")});
  Json ping_key = Concat({Payload("ip", "saddr"), Payload("ip", "daddr")});
  b.Rule("vnet", {Match(Payload("icmp", "type"), "echo-reply"), Match(ping_key, "@pings"),
                  Verdict("accept")});
  b.Rule("vnet", {{{"vmap", {{"key", Meta("iifname")}, {"data", "@out_by_tap"}}}}});
  b.Rule("vnet", {{{"vmap", {{"key", Meta("oifname")}, {"data", "@in_by_tap"}}}}});
  Json reverse = Concat({Payload("ip", "daddr"), Payload("ip", "saddr"), Meta("l4proto"),
                         Payload("th", "dport"), Payload("th", "sport")});
  b.Rule("vnet", {Match(Meta("l4proto"), {{"set", {"tcp", "udp"}}}),
                  {{"set", {{"op", "update"}, {"elem", reverse}, {"set", "@flows"}}}}});
  Json ping_reverse = Concat({Payload("ip", "daddr"), Payload("ip", "saddr")});
  b.Rule("vnet", {Match(Payload("icmp", "type"), "echo-request"),
                  {{"set", {{"op", "update"}, {"elem", ping_reverse}, {"set", "@pings"}}}}});

  // The NSGs, then the NICs that use them.
  std::set<std::string> stage_keys;
  for (auto& s : d.stages) {
    stage_keys.insert(s.key);
    CompileStage(b, s, Direction::kInbound, gen);
    CompileStage(b, s, Direction::kOutbound, gen);
  }
  Json out_elems = Json::array(), in_elems = Json::array(), spoof_elems = Json::array();
  for (auto& n : d.nics) {
    // The source check of every NIC.
    std::string spoof_chain = "nic_" + n.tap + "_src" + gen;
    b.Add("chain", {{"name", spoof_chain}});
    b.Rule(spoof_chain, {Match(Payload("udp", "sport"), 68), Match(Payload("udp", "dport"), 67),
                         Verdict("return")});
    if (!n.mac.empty()) {
      b.Rule(spoof_chain, {Match(Payload("ether", "saddr"), n.mac, "!="), Verdict("drop")});
      b.Rule(spoof_chain, {Match(Payload("arp", "saddr ether"), n.mac, "!="), Verdict("drop")});
    }
    if (!n.forwarding && !n.addresses.empty()) {
      Json addrs = Json::array();
      for (auto& a : n.addresses) addrs.push_back(a.ToString());
      b.Rule(spoof_chain, {Match(Payload("ip", "saddr"), {{"set", addrs}}, "!="), Verdict("drop")});
      // ARP too: no VM may answer for another's address (probes from 0.0.0.0 pass).
      Json arp_addrs = addrs;
      arp_addrs.push_back("0.0.0.0");
      b.Rule(spoof_chain,
             {Match(Payload("arp", "saddr ip"), {{"set", arp_addrs}}, "!="), Verdict("drop")});
    }
    spoof_elems.push_back({n.tap, Jump(spoof_chain)});

    std::vector<std::string> out_order, in_order;  // outbound: NIC then subnet; inbound: reverse
    if (!n.nic_stage.empty() && stage_keys.count(n.nic_stage)) out_order.push_back(n.nic_stage);
    if (!n.subnet_stage.empty() && stage_keys.count(n.subnet_stage))
      out_order.push_back(n.subnet_stage);
    in_order.assign(out_order.rbegin(), out_order.rend());
    if (out_order.empty()) continue;
    std::string out_chain = "nic_" + n.tap + "_out" + gen, in_chain = "nic_" + n.tap + "_in" + gen;
    b.Add("chain", {{"name", out_chain}});
    b.Add("chain", {{"name", in_chain}});
    for (auto& k : out_order) b.Rule(out_chain, {Jump("nsg_" + k + "_out" + gen)});
    for (auto& k : in_order) b.Rule(in_chain, {Jump("nsg_" + k + "_in" + gen)});
    out_elems.push_back({n.tap, Jump(out_chain)});
    in_elems.push_back({n.tap, Jump(in_chain)});
  }
  if (!out_elems.empty()) {
    b.Add("element", {{"name", "out_by_tap"}, {"elem", out_elems}});
    b.Add("element", {{"name", "in_by_tap"}, {"elem", in_elems}});
  }
  if (!spoof_elems.empty()) b.Add("element", {{"name", "spoof_by_tap"}, {"elem", spoof_elems}});
  return Json{{"nftables", b.cmds}};
}

Json DeleteSecurity(const std::string& table, const ExistingSecurity& existing) {
  Json cmds = Json::array();
  if (existing.table)
    cmds.push_back({{"delete", {{"table", {{"family", kFamily}, {"name", table}}}}}});
  return Json{{"nftables", cmds}};
}

namespace {
uint64_t GenerationOf(const std::string& name) {
  size_t at = name.rfind("_g");
  if (at == std::string::npos || at + 2 >= name.size()) return 0;
  uint64_t g = 0;
  for (size_t i = at + 2; i < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return 0;
    g = g * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return g;
}
}  // namespace

ExistingSecurity ParseExistingSecurity(const Json& listing) {
  ExistingSecurity e;
  const Json* items = listing.contains("nftables") ? &listing["nftables"] : nullptr;
  if (!items || !items->is_array()) return e;
  for (auto& it : *items) {
    if (it.contains("table")) e.table = true;
    if (it.contains("chain")) {
      std::string n = it["chain"].value("name", "");
      if (n.rfind("nsg_", 0) == 0 || n.rfind("nic_", 0) == 0) {
        e.chains.push_back(n);
        e.generation = std::max(e.generation, GenerationOf(n));
      }
    }
    if (it.contains("set")) {
      std::string n = it["set"].value("name", "");
      if (n.rfind("r_", 0) == 0) {
        e.sets.push_back(n);
        e.generation = std::max(e.generation, GenerationOf(n));
      }
    }
  }
  return e;
}

ExistingSecurity AfterApply(const Json& compiled) {
  // The same reading as of a listing: the objects the transaction added.
  Json listing = {{"nftables", Json::array()}};
  for (auto& cmd : compiled.value("nftables", Json::array()))
    if (cmd.contains("add")) listing["nftables"].push_back(cmd["add"]);
  return ParseExistingSecurity(listing);
}

}  // namespace stratus::network
