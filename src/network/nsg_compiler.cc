#include "network/nsg_compiler.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

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

Json Elem(const RuleBox& x, bool ported) {
  std::vector<Json> parts = {Range(Ip(x.src_first), Ip(x.src_last)),
                             Range(Ip(x.dst_first), Ip(x.dst_last)),
                             Range(x.proto_first, x.proto_last)};
  if (ported) {
    parts.push_back(Range(x.sport_first, x.sport_last));
    parts.push_back(Range(x.dport_first, x.dport_last));
  }
  return Concat(std::move(parts));
}

Json SetDefinition(const std::string& name, bool ported) {
  return {{"name", name},
          {"type", ported ? FiveType() : ThreeType()},
          {"flags", {"interval"}},
          {"stmt", {{{"counter", nullptr}}}}};
}

Json Elements(const RuleSet& set, const std::vector<RuleBox>& boxes) {
  Json elems = Json::array();
  for (auto& x : boxes) elems.push_back(Elem(x, set.ported));
  return elems;
}

std::vector<RuleBox> Boxes(const RuleSet& set) {
  std::vector<RuleBox> out;
  out.reserve(set.owners.size());
  for (auto& [box, owner] : set.owners) out.push_back(box);
  return out;
}

bool Overlap(const RuleBox& a, const RuleBox& b) {
  return a.src_first <= b.src_last && b.src_first <= a.src_last && a.dst_first <= b.dst_last &&
         b.dst_first <= a.dst_last && a.proto_first <= b.proto_last &&
         b.proto_first <= a.proto_last && a.sport_first <= b.sport_last &&
         b.sport_first <= a.sport_last && a.dport_first <= b.dport_last &&
         b.dport_first <= a.dport_last;
}

// The elements of one kind of one run, in layers whose elements never overlap: the kernel's
// interval sets refuse an element with a corner inside another one (nested and crossing rules
// are common: a rule for a /16 after one for a /24 of it, an "allow all" before the default
// allows), and a layer without overlaps takes its elements in any order. An element goes to the
// first layer it does not overlap, in evaluation order, so a packet several rules match is
// found first in the layer of the earliest of them that was placed lower. Most runs have one
// layer. Overlap queries: wide source ranges are few and checked one by one; narrow ones are
// indexed by their first address.
class Layers {
 public:
  // Adds `x` for rule `owner` unless an earlier rule of the run made the same element.
  void Add(const RuleBox& x, int owner) {
    if (!seen_.insert(x).second) return;
    size_t l = 0;
    while (l < layers_.size() && Conflicts(layers_[l], x)) ++l;
    if (l == layers_.size()) layers_.emplace_back();
    Layer& layer = layers_[l];
    layer.owners.emplace(x, owner);
    uint32_t span = x.src_last - x.src_first;
    if (span >= kWide) {
      layer.wide.push_back(x);
    } else {
      layer.narrow.emplace(x.src_first, x);
      layer.narrow_span = std::max(layer.narrow_span, span);
    }
  }
  size_t size() const { return layers_.size(); }
  std::map<RuleBox, int> Take(size_t l) { return std::move(layers_[l].owners); }

 private:
  static constexpr uint32_t kWide = 1u << 16;
  struct Layer {
    std::map<RuleBox, int> owners;
    std::vector<RuleBox> wide;
    std::multimap<uint32_t, RuleBox> narrow;  // by src_first
    uint32_t narrow_span = 0;                 // the widest narrow source range, minus one
  };
  static bool Conflicts(const Layer& l, const RuleBox& x) {
    for (auto& w : l.wide)
      if (Overlap(w, x)) return true;
    uint32_t from = x.src_first > l.narrow_span ? x.src_first - l.narrow_span : 0;
    for (auto it = l.narrow.lower_bound(from); it != l.narrow.end() && it->first <= x.src_last;
         ++it)
      if (Overlap(it->second, x)) return true;
    return false;
  }
  std::vector<Layer> layers_;
  std::set<RuleBox> seen_;
};

// One stage chain: runs of same-access rules, each a lookup in one set per kind and layer.
void ModelStage(SecurityModel& m, const NsgStage& stage, Direction dir, const std::string& gen) {
  const char* d = dir == Direction::kInbound ? "in" : "out";
  std::string chain = "nsg_" + stage.key + "_" + d + gen;
  std::vector<Json>& chain_rules = m.chains[chain];
  std::vector<SecurityRule> rules = RulesInOrder(stage.rules, dir);
  StageRules names{stage.key, dir, {}};
  size_t i = 0;
  while (i < rules.size()) {
    Access access = rules[i].access;
    // A run's sets are named after its first rule's priority (unique per direction): a rule
    // inserted or changed elsewhere leaves the names, elements and counters of the other runs.
    const int first_priority = rules[i].priority;
    Layers kinds[2];  // ported, plain
    for (; i < rules.size() && rules[i].access == access; ++i) {
      const SecurityRule& r = rules[i];
      int index = static_cast<int>(names.rules.size());
      names.rules.push_back(std::string(r.is_default ? "defaultSecurityRules/" : "securityRules/") +
                            r.name);
      auto src = ExpandAddresses(r.sources, stage.tags);
      auto dst = ExpandAddresses(r.destinations, stage.tags);
      bool with_ports = !AllPorts(r);
      Layers& set = kinds[with_ports ? 0 : 1];
      for (auto& s : src)
        for (auto& t : dst)
          for (auto& [p0, p1] : Protocols(r, with_ports)) {
            RuleBox x;
            x.src_first = s.first;
            x.src_last = s.last;
            x.dst_first = t.first;
            x.dst_last = t.last;
            x.proto_first = static_cast<uint16_t>(p0);
            x.proto_last = static_cast<uint16_t>(p1);
            if (!with_ports) {
              set.Add(x, index);  // the earlier rule keeps a shared element
              continue;
            }
            for (auto& sp : r.source_ports)
              for (auto& dp : r.destination_ports) {
                x.sport_first = sp.first;
                x.sport_last = sp.last;
                x.dport_first = dp.first;
                x.dport_last = dp.last;
                set.Add(x, index);
              }
          }
    }
    const char* verdict = access == Access::kAllow ? "return" : "drop";
    std::string base = "r_" + stage.key + "_" + d + "_" + std::to_string(first_priority) + gen;
    for (int k = 0; k < 2; ++k)
      for (size_t l = 0; l < kinds[k].size(); ++l) {
        std::string set = base + (k == 0 ? "p" : "a") + (l ? std::to_string(l) : "");
        chain_rules.push_back(
            Json::array({Match(Concat(k == 0 ? FiveTuple() : ThreeTuple()), "@" + set),
                         Verdict(verdict)}));
        m.sets[set] = RuleSet{stage.key, dir, k == 0, kinds[k].Take(l)};
      }
  }
  m.rules.push_back(std::move(names));
}

// The rules of chain "vnet": platform traffic, the source checks, replies, then the NICs'
// chains, then the record of what passed.
std::vector<Json> VnetChain(const SecurityDatapath& d) {
  std::vector<Json> r;
  auto rule = [&](std::vector<Json> expr) { r.push_back(Json(std::move(expr))); };
  rule({Match(Meta("protocol"), {{"set", {"ip", "arp"}}}, "!="), Verdict("drop")});
  rule({{{"vmap", {{"key", Meta("iifname")}, {"data", "@spoof_by_tap"}}}}});
  rule({Match(Meta("protocol"), "arp"), Verdict("accept")});
  rule({Match(Payload("udp", "sport"), 68), Match(Payload("udp", "dport"), 67),
        Verdict("accept")});
  rule({Match(Payload("udp", "sport"), 67), Match(Payload("udp", "dport"), 68),
        Verdict("accept")});
  if (!d.gateways.empty()) {
    Json gws = Json::array();
    for (auto& g : d.gateways) gws.push_back(g.ToString());
    Json set = {{"set", gws}};
    rule({Match(Payload("ip", "daddr"), set), Match(Payload("th", "dport"), 53),
          Match(Meta("l4proto"), {{"set", {"tcp", "udp"}}}), Verdict("accept")});
    rule({Match(Payload("ip", "saddr"), set), Match(Payload("th", "sport"), 53),
          Match(Meta("l4proto"), {{"set", {"tcp", "udp"}}}), Verdict("accept")});
  }
  rule({Match(Concat(FiveTuple()), "@flows"), Verdict("accept")});
  Json ping_key = Concat({Payload("ip", "saddr"), Payload("ip", "daddr")});
  rule({Match(Payload("icmp", "type"), "echo-reply"), Match(ping_key, "@pings"),
        Verdict("accept")});
  rule({{{"vmap", {{"key", Meta("iifname")}, {"data", "@out_by_tap"}}}}});
  rule({{{"vmap", {{"key", Meta("oifname")}, {"data", "@in_by_tap"}}}}});
  Json reverse = Concat({Payload("ip", "daddr"), Payload("ip", "saddr"), Meta("l4proto"),
                         Payload("th", "dport"), Payload("th", "sport")});
  rule({Match(Meta("l4proto"), {{"set", {"tcp", "udp"}}}),
        {{"set", {{"op", "update"}, {"elem", reverse}, {"set", "@flows"}}}}});
  Json ping_reverse = Concat({Payload("ip", "daddr"), Payload("ip", "saddr")});
  rule({Match(Payload("icmp", "type"), "echo-request"),
        {{"set", {{"op", "update"}, {"elem", ping_reverse}, {"set", "@pings"}}}}});
  return r;
}

void AddMapElements(Builder& b, const char* map, const std::map<std::string, std::string>& m,
                    const std::map<std::string, std::string>* except = nullptr) {
  Json elems = Json::array();
  for (auto& [tap, chain] : m)
    if (!except || !except->count(tap)) elems.push_back({tap, Jump(chain)});
  if (!elems.empty()) b.Add("element", {{"name", map}, {"elem", elems}});
}

}  // namespace

SecurityModel ModelSecurity(const SecurityDatapath& d, uint64_t generation) {
  SecurityModel m;
  m.generation = generation;
  m.table = d.table;
  m.tap_prefix = d.tap_prefix;
  const std::string gen = "_g" + std::to_string(generation);
  m.chains["vnet"] = VnetChain(d);
  // The NSGs, then the NICs that use them.
  std::set<std::string> stage_keys;
  for (auto& s : d.stages) {
    if (!stage_keys.insert(s.key).second) continue;
    ModelStage(m, s, Direction::kInbound, gen);
    ModelStage(m, s, Direction::kOutbound, gen);
  }
  for (auto& n : d.nics) {
    // The source check of every NIC.
    std::string spoof_chain = "nic_" + n.tap + "_src" + gen;
    std::vector<Json>& spoof = m.chains[spoof_chain];
    spoof.push_back(Json::array({Match(Payload("udp", "sport"), 68),
                                 Match(Payload("udp", "dport"), 67), Verdict("return")}));
    if (!n.mac.empty()) {
      spoof.push_back(Json::array({Match(Payload("ether", "saddr"), n.mac, "!="), Verdict("drop")}));
      spoof.push_back(
          Json::array({Match(Payload("arp", "saddr ether"), n.mac, "!="), Verdict("drop")}));
    }
    if (!n.forwarding && !n.addresses.empty()) {
      Json addrs = Json::array();
      for (auto& a : n.addresses) addrs.push_back(a.ToString());
      spoof.push_back(
          Json::array({Match(Payload("ip", "saddr"), {{"set", addrs}}, "!="), Verdict("drop")}));
      // ARP too: no VM may answer for another's address (probes from 0.0.0.0 pass).
      Json arp_addrs = addrs;
      arp_addrs.push_back("0.0.0.0");
      spoof.push_back(Json::array(
          {Match(Payload("arp", "saddr ip"), {{"set", arp_addrs}}, "!="), Verdict("drop")}));
    }
    m.spoof_by_tap[n.tap] = spoof_chain;

    std::vector<std::string> out_order, in_order;  // outbound: NIC then subnet; inbound: reverse
    if (!n.nic_stage.empty() && stage_keys.count(n.nic_stage)) out_order.push_back(n.nic_stage);
    if (!n.subnet_stage.empty() && stage_keys.count(n.subnet_stage))
      out_order.push_back(n.subnet_stage);
    in_order.assign(out_order.rbegin(), out_order.rend());
    if (out_order.empty()) continue;
    std::string out_chain = "nic_" + n.tap + "_out" + gen, in_chain = "nic_" + n.tap + "_in" + gen;
    for (auto& k : out_order)
      m.chains[out_chain].push_back(Json::array({Jump("nsg_" + k + "_out" + gen)}));
    for (auto& k : in_order)
      m.chains[in_chain].push_back(Json::array({Jump("nsg_" + k + "_in" + gen)}));
    m.out_by_tap[n.tap] = out_chain;
    m.in_by_tap[n.tap] = in_chain;
  }
  return m;
}

Json CompileSecurity(const SecurityDatapath& d, const ExistingSecurity& existing) {
  return CompileSecurity(ModelSecurity(d, existing.generation + 1), existing);
}

Json CompileSecurity(const SecurityModel& m, const ExistingSecurity& existing) {
  Builder b{m.table};
  b.cmds.push_back({{"add", {{"table", {{"family", kFamily}, {"name", m.table}}}}}});
  // Drop what the last version made; the same transaction makes the new one.
  for (const char* map : {"out_by_tap", "in_by_tap", "spoof_by_tap"}) {
    b.Add("map", {{"name", map}, {"type", "ifname"}, {"map", "verdict"}});
    b.Verb("flush", "map", map);
  }
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
  std::string taps = m.tap_prefix + "*";
  b.Rule("forward", {Match(Meta("iifname"), taps), {{"goto", {{"target", "vnet"}}}}});
  b.Rule("forward", {Match(Meta("oifname"), taps), {{"goto", {{"target", "vnet"}}}}});
  for (auto& [name, set] : m.sets) {
    b.Add("set", SetDefinition(name, set.ported));
    b.Add("element", {{"name", name}, {"elem", Elements(set, Boxes(set))}});
  }
  for (auto& [name, rules] : m.chains)
    if (name != "vnet") b.Add("chain", {{"name", name}});
  for (auto& [name, rules] : m.chains)
    for (auto& r : rules) b.Add("rule", {{"chain", name}, {"expr", r}});
  AddMapElements(b, "out_by_tap", m.out_by_tap);
  AddMapElements(b, "in_by_tap", m.in_by_tap);
  AddMapElements(b, "spoof_by_tap", m.spoof_by_tap);
  return Json{{"nftables", b.cmds}};
}

std::optional<Json> DiffSecurity(const SecurityModel& from, const SecurityModel& to) {
  if (from.table != to.table || from.tap_prefix != to.tap_prefix ||
      from.generation != to.generation)
    return std::nullopt;
  using TapMap = std::map<std::string, std::string>;
  const std::pair<const char*, std::pair<const TapMap*, const TapMap*>> maps[] = {
      {"out_by_tap", {&from.out_by_tap, &to.out_by_tap}},
      {"in_by_tap", {&from.in_by_tap, &to.in_by_tap}},
      {"spoof_by_tap", {&from.spoof_by_tap, &to.spoof_by_tap}}};
  for (auto& [map, m] : maps)
    for (auto& [tap, chain] : *m.second) {
      auto it = m.first->find(tap);
      if (it != m.first->end() && it->second != chain) return std::nullopt;
    }
  Builder b{to.table};
  // 1. Map entries of taps that are gone (they may jump to chains deleted below).
  for (auto& [map, m] : maps) {
    Json elems = Json::array();
    for (auto& [tap, chain] : *m.first)
      if (!m.second->count(tap)) elems.push_back(tap);
    if (!elems.empty())
      b.cmds.push_back({{"delete", {{"element", b.Obj({{"name", map}, {"elem", elems}})}}}});
  }
  // 2. Chains that change or go are emptied (their rules may name sets and chains that go),
  // 3. then the chains and sets that go are deleted.
  std::vector<std::string> refill;
  for (auto& [name, rules] : from.chains) {
    auto it = to.chains.find(name);
    if (it == to.chains.end() || it->second != rules) b.Verb("flush", "chain", name);
    if (it != to.chains.end() && it->second != rules) refill.push_back(name);
  }
  for (auto& [name, rules] : from.chains)
    if (!to.chains.count(name)) b.Verb("delete", "chain", name);
  for (auto& [name, set] : from.sets)
    if (!to.sets.count(name)) b.Verb("delete", "set", name);
  // 4. Elements of sets that stay: the ones gone, then the new ones (never both for one
  // element: an interval set refuses to delete and add the same element in one transaction).
  for (auto& [name, set] : to.sets) {
    auto it = from.sets.find(name);
    if (it == from.sets.end()) continue;
    if (it->second.ported != set.ported) return std::nullopt;
    std::vector<RuleBox> gone, added;
    for (auto& [box, owner] : it->second.owners)
      if (!set.owners.count(box)) gone.push_back(box);
    for (auto& [box, owner] : set.owners)
      if (!it->second.owners.count(box)) added.push_back(box);
    if (!gone.empty())
      b.cmds.push_back(
          {{"delete", {{"element", b.Obj({{"name", name}, {"elem", Elements(set, gone)}})}}}});
    if (!added.empty()) b.Add("element", {{"name", name}, {"elem", Elements(set, added)}});
  }
  // 5. New sets and chains, then the rules of new and changed chains, then new map entries.
  for (auto& [name, set] : to.sets) {
    if (from.sets.count(name)) continue;
    b.Add("set", SetDefinition(name, set.ported));
    b.Add("element", {{"name", name}, {"elem", Elements(set, Boxes(set))}});
  }
  for (auto& [name, rules] : to.chains)
    if (!from.chains.count(name)) {
      b.Add("chain", {{"name", name}});
      refill.push_back(name);
    }
  for (auto& name : refill)
    for (auto& r : to.chains.at(name)) b.Add("rule", {{"chain", name}, {"expr", r}});
  for (auto& [map, m] : maps) AddMapElements(b, map, *m.second, m.first);
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

ExistingSecurity ExistingOf(const SecurityModel& model) {
  ExistingSecurity e;
  e.table = true;
  e.generation = model.generation;
  for (auto& [name, rules] : model.chains)
    if (name.rfind("nsg_", 0) == 0 || name.rfind("nic_", 0) == 0) e.chains.push_back(name);
  for (auto& [name, set] : model.sets) e.sets.push_back(name);
  return e;
}

}  // namespace stratus::network
