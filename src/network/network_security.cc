// NetworkService: network security groups — their records, their rules as sub-resources, the
// effective rules of a NIC, and the region's security datapath (nsg_compiler.h).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "api/resource_util.h"
#include "core/crash_point.h"
#include "core/uuid.h"
#include "network/kernel_names.h"
#include "network/network_internal.h"
#include "network/network_service.h"

namespace stratus::network {

using namespace internal;

namespace {

constexpr char kRuleTypeName[] = "Stratus.Network/networkSecurityGroups/securityRules";
constexpr char kDefaultRuleTypeName[] =
    "Stratus.Network/networkSecurityGroups/defaultSecurityRules";

Result<std::vector<SecurityRule>> StoredRules(const Json& nsg_body) {
  std::vector<SecurityRule> rules;
  const Json* list = JsonPath(nsg_body, "properties.securityRules");
  if (!list || !list->is_array()) return rules;
  for (auto& r : *list) {
    Json bare = {{"name", r.value("name", "")}, {"properties", r.value("properties", Json::object())}};
    bare["properties"].erase("provisioningState");
    ASSIGN_OR_RETURN(SecurityRule rule, ParseSecurityRule(bare, "securityRules"));
    rules.push_back(rule);
  }
  return rules;
}

Json RuleResource(const ResourceId& nsg, const SecurityRule& r, bool is_default) {
  Json j = SecurityRuleJson(r);
  j["id"] = nsg.Child(is_default ? "defaultSecurityRules" : "securityRules", r.name).ToString();
  j["type"] = is_default ? kDefaultRuleTypeName : kRuleTypeName;
  return j;
}

// The datapath stage of NSG `nsg` as the NICs of VNET `vnet` see it (nsg_compiler.h).
std::string StageKey(const store::Record& nsg, const store::Record& vnet) {
  return "n" + std::to_string(nsg.internal.value("index", 0u)) + "v" +
         std::to_string(vnet.internal.value("index", 0u));
}

Json Expanded(const std::vector<Ipv4Range>& ranges) {
  Json out = Json::array();
  for (auto& r : ranges) {
    // As prefixes where the range is one, else first-last.
    uint64_t size = uint64_t{r.last} - r.first + 1;
    int len = 32;
    while (len > 0 && (uint64_t{1} << (32 - len)) < size) --len;
    if ((uint64_t{1} << (32 - len)) == size && (r.first & ~(len == 0 ? 0u : ~0u << (32 - len))) == 0)
      out.push_back(Ipv4{r.first}.ToString() + "/" + std::to_string(len));
    else
      out.push_back(Ipv4{r.first}.ToString() + "-" + Ipv4{r.last}.ToString());
  }
  return out;
}

}  // namespace

Result<std::vector<store::Record>> NetworkService::ListAll(const char* type,
                                                           const std::string& prefix) {
  return store::ListAll(ctx_.store, prefix, type);
}

Result<NetworkService::Written> NetworkService::WriteNsgLocked(
    const ResourceId& id, const std::string& location, const Json& tags,
    const std::vector<SecurityRule>& rules, const std::string& caller,
    const store::WriteCondition& cond) {
  RETURN_IF_ERROR(ValidateSecurityRules(rules));
  auto existing = ctx_.store->Get(id.Key());
  store::Record rec;
  if (existing.ok()) {
    rec = *existing;
    api::TouchSystemData(rec.body, caller, ctx_.clock->NowMs());
  } else {
    ASSIGN_OR_RETURN(uint32_t index, NextIndex("nsg", 0xffffff));
    rec.key = id.Key();
    rec.type = kNsgType;
    rec.body = api::NewResourceBody(id, location, tags, caller, ctx_.clock->NowMs());
    rec.body["type"] = kNsgTypeName;
    rec.body["properties"] = {{"resourceGuid", NewUuid()}};
    rec.internal = {{"index", index}};
  }
  rec.body["tags"] = tags;
  Json list = Json::array();
  for (auto& r : rules) list.push_back(RuleResource(id, r, false));
  rec.body["properties"]["securityRules"] = list;
  rec.body["properties"]["provisioningState"] = "Succeeded";
  if (existing.ok() && existing->body == rec.body) return Written{*existing, false};
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, cond));
  CrashPoint("network.nsg-written");  // the rules ahead of the host: Start converges them
  RETURN_IF_ERROR(ConvergeSecurityLocked());
  return Written{rec, !existing.ok()};
}

Result<NetworkService::Written> NetworkService::PutNsg(const ResourceId& id, const Json& body,
                                                      const std::string& caller,
                                                      const store::WriteCondition& cond) {
  ASSIGN_OR_RETURN(auto top, TopLevel(body, ctx_.region));
  auto& [location, p] = top;
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      p, {"securityRules", "defaultSecurityRules", "subnets", "networkInterfaces",
          "provisioningState", "resourceGuid", "flushConnection"},
      "properties"));
  std::lock_guard<std::mutex> l(mu_);
  auto existing = ctx_.store->Get(id.Key());
  std::vector<SecurityRule> rules;
  if (p.contains("securityRules")) {
    if (!p["securityRules"].is_array())
      return InvalidArgument("'securityRules' must be an array.", "properties.securityRules");
    for (size_t i = 0; i < p["securityRules"].size(); ++i) {
      ASSIGN_OR_RETURN(SecurityRule r,
                       ParseSecurityRule(p["securityRules"][i],
                                         "properties.securityRules[" + std::to_string(i) + "]"));
      rules.push_back(r);
    }
  } else if (existing.ok()) {
    ASSIGN_OR_RETURN(rules, StoredRules(existing->body));
  }
  Json tags = body.value("tags", existing.ok() ? existing->body.value("tags", Json::object())
                                               : Json::object());
  return WriteNsgLocked(id, location, tags, rules, caller, cond);
}

Result<NetworkService::Written> NetworkService::PutSecurityRule(const ResourceId& id,
                                                               const Json& body,
                                                               const std::string& caller) {
  Json r = body;
  r["name"] = id.name();
  r.erase("id");
  r.erase("type");
  r.erase("etag");
  if (r.contains("properties") && r["properties"].is_object()) r["properties"].erase("provisioningState");
  ASSIGN_OR_RETURN(SecurityRule rule, ParseSecurityRule(r, "properties"));
  std::lock_guard<std::mutex> l(mu_);
  ResourceId nid = id.Parent();
  ASSIGN_OR_RETURN(store::Record nsg, ctx_.store->Get(nid.Key()));
  ASSIGN_OR_RETURN(auto rules, StoredRules(nsg.body));
  bool found = false;
  for (auto& old : rules)
    if (EqualsIgnoreCase(old.name, rule.name)) {
      rule.name = old.name;
      old = rule;
      found = true;
    }
  if (!found) rules.push_back(rule);
  ASSIGN_OR_RETURN(Written w, WriteNsgLocked(nid, nsg.body.value("location", ""),
                                             nsg.body.value("tags", Json::object()), rules,
                                             caller, {}));
  w.created = !found;
  return w;
}

Status NetworkService::DeleteSecurityRule(const ResourceId& id) {
  std::lock_guard<std::mutex> l(mu_);
  ResourceId nid = id.Parent();
  ASSIGN_OR_RETURN(store::Record nsg, ctx_.store->Get(nid.Key()));
  ASSIGN_OR_RETURN(auto rules, StoredRules(nsg.body));
  auto it = std::find_if(rules.begin(), rules.end(),
                         [&](auto& r) { return EqualsIgnoreCase(r.name, id.name()); });
  if (it == rules.end()) return NotFound("Security rule '" + id.name() + "' was not found.", id.ToString());
  rules.erase(it);
  return WriteNsgLocked(nid, nsg.body.value("location", ""),
                        nsg.body.value("tags", Json::object()), rules, "", {})
      .status();
}

Status NetworkService::DeleteNsg(const ResourceId& id) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(store::Record nsg, ctx_.store->Get(id.Key()));
  Json view = NsgView(nsg);
  size_t users = view["properties"]["subnets"].size() + view["properties"]["networkInterfaces"].size();
  if (users > 0)
    return Conflict("Network security group '" + id.name() + "' is used by " +
                        std::to_string(users) + " subnet(s) or network interface(s); remove it "
                        "from them first.",
                    id.ToString(), "InUseNetworkSecurityGroupCannotBeDeleted");
  RETURN_IF_ERROR(ctx_.store->Delete(nsg.key));
  return ConvergeSecurityLocked();
}

Json NetworkService::NsgView(const store::Record& nsg) {
  Json body = api::ToArm(nsg);
  auto id = ResourceId::Parse(nsg.body.value("id", ""));
  if (!id.ok()) return body;
  Json defaults = Json::array();
  for (auto& r : DefaultSecurityRules()) defaults.push_back(RuleResource(*id, r, true));
  body["properties"]["defaultSecurityRules"] = defaults;
  Json nics = Json::array();
  std::string prefix = ResourceId::Subscription(id->subscription()).Key() + "/";
  auto vnets = ListAll(kVnetType, prefix);
  Json subnets = vnets.ok() ? SubnetsUsing(*vnets, "networkSecurityGroup", nsg.key) : Json::array();
  auto all_nics = ListAll(kNicType, prefix);
  if (all_nics.ok())
    for (auto& n : *all_nics)
      if (n.internal.value("nsg", "") == nsg.key) nics.push_back({{"id", n.body.value("id", "")}});
  body["properties"]["subnets"] = subnets;
  body["properties"]["networkInterfaces"] = nics;
  for (auto& r : body["properties"]["securityRules"]) r["etag"] = body.value("etag", "");
  return body;
}

Result<Json> NetworkService::SecurityRuleView(const ResourceId& id) {
  ASSIGN_OR_RETURN(store::Record nsg, ctx_.store->Get(id.Parent().Key()));
  return ChildNamed(NsgView(nsg)["properties"]["securityRules"], id, "Security rule",
                    "network security group");
}

Result<Json> NetworkService::SecurityRuleList(const ResourceId& nsg_id) {
  ASSIGN_OR_RETURN(store::Record nsg, ctx_.store->Get(nsg_id.Key()));
  return Json{{"value", NsgView(nsg)["properties"]["securityRules"]}};
}

// ---------------------------------------------------------------------------------------------
// The datapath and the effective view

Result<SecurityDatapath> NetworkService::DesiredSecurity() {
  SecurityDatapath d;
  ASSIGN_OR_RETURN(d.table, NftTable(rid_));
  d.tap_prefix = "st" + rid_;
  ASSIGN_OR_RETURN(auto vnets, ListAll(kVnetType, "/subscriptions/"));
  ASSIGN_OR_RETURN(auto nsgs, ListAll(kNsgType, "/subscriptions/"));
  std::map<std::string, const store::Record*> vnet_by_key, nsg_by_key;
  for (auto& v : vnets) vnet_by_key[v.key] = &v;
  for (auto& n : nsgs) nsg_by_key[n.key] = &n;
  for (auto& v : vnets)
    for (auto& s : v.body["properties"].value("subnets", Json::array())) {
      auto p = SubnetPrefix(s);
      if (p.ok()) d.gateways.push_back(GatewayOf(*p));
    }
  std::map<std::string, bool> stages;  // key -> made
  auto stage_for = [&](const std::string& nsg_key, const store::Record& vnet) -> std::string {
    auto it = nsg_by_key.find(nsg_key);
    if (nsg_key.empty() || it == nsg_by_key.end()) return "";
    std::string key = StageKey(*it->second, vnet);
    if (stages.count(key)) return key;
    stages[key] = true;
    NsgStage st;
    st.key = key;
    auto rules = StoredRules(it->second->body);
    if (rules.ok()) st.rules = *rules;
    st.tags = TagsOf(vnet.body);
    d.stages.push_back(st);
    return key;
  };
  ASSIGN_OR_RETURN(auto nics, ListAll(kNicType, "/subscriptions/"));
  for (auto& n : nics) {
    auto v = vnet_by_key.find(n.internal.value("vnet", ""));
    if (v == vnet_by_key.end()) continue;
    const Json* subnet = FindSubnet(v->second->body, n.internal.value("subnet", ""));
    std::string subnet_nsg;
    if (subnet && JsonPath(*subnet, "properties.networkSecurityGroup.id"))
      subnet_nsg = ToLower((*subnet)["properties"]["networkSecurityGroup"].value("id", ""));
    NicSecurity ns;
    ns.tap = n.internal.value("tap", "");
    ns.subnet_stage = stage_for(subnet_nsg, *v->second);
    ns.nic_stage = stage_for(n.internal.value("nsg", ""), *v->second);
    ns.mac = n.internal.value("mac", "");
    ns.forwarding = n.body["properties"].value("enableIPForwarding", false);
    for (auto& c : n.body["properties"].value("ipConfigurations", Json::array())) {
      auto ip = ParseIpv4(c["properties"].value("privateIPAddress", ""), "");
      if (ip.ok()) ns.addresses.push_back(*ip);
    }
    d.nics.push_back(ns);
  }
  return d;
}

Status NetworkService::ConvergeSecurityLocked() {
  ASSIGN_OR_RETURN(SecurityDatapath d, DesiredSecurity());
  Status st = engine_->ApplySecurity(d);
  if (!st.ok())
    return Internal("The security rules were saved but could not be applied (" + st.message() +
                    "); stratusd retries at its next start.");
  return Status::Ok();
}

Result<Json> NetworkService::EffectiveSecurityRules(const ResourceId& nic_id) {
  Json value = Json::array();
  std::vector<std::string> stages;  // of each entry of `value`
  {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(store::Record nic, ctx_.store->Get(nic_id.Key()));
    ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(nic.internal.value("vnet", "")));
    const Json* subnet = FindSubnet(vnet.body, nic.internal.value("subnet", ""));
    TagContext tags = TagsOf(vnet.body);
    auto add = [&](const std::string& nsg_key, Json association) -> Status {
      if (nsg_key.empty()) return Status::Ok();
      auto nsg = ctx_.store->Get(nsg_key);
      if (!nsg.ok()) return Status::Ok();
      ASSIGN_OR_RETURN(auto rules, StoredRules(nsg->body));
      Json eff = Json::array();
      for (Direction dir : {Direction::kInbound, Direction::kOutbound})
        for (auto& r : RulesInOrder(rules, dir)) {
          Json j = SecurityRuleJson(r)["properties"];
          j.erase("provisioningState");
          j.erase("description");
          j["name"] = std::string(r.is_default ? "defaultSecurityRules/" : "securityRules/") + r.name;
          j["expandedSourceAddressPrefix"] = Expanded(ExpandAddresses(r.sources, tags));
          j["expandedDestinationAddressPrefix"] = Expanded(ExpandAddresses(r.destinations, tags));
          eff.push_back(j);
        }
      value.push_back({{"networkSecurityGroup", {{"id", nsg->body.value("id", "")}}},
                       {"association", association},
                       {"effectiveSecurityRules", eff}});
      stages.push_back(StageKey(*nsg, vnet));
      return Status::Ok();
    };
    // Inbound traffic meets the subnet's NSG first, then the NIC's; outbound the reverse.
    if (subnet && JsonPath(*subnet, "properties.networkSecurityGroup.id"))
      RETURN_IF_ERROR(add(ToLower((*subnet)["properties"]["networkSecurityGroup"].value("id", "")),
                          {{"subnet", {{"id", subnet->value("id", "")}}}}));
    RETURN_IF_ERROR(add(nic.internal.value("nsg", ""),
                        {{"networkInterface", {{"id", nic.body.value("id", "")}}}}));
  }
  // Each rule's hits (of every NIC of this VNET the NSG applies to), read outside the lock. The
  // view does not fail for want of them.
  std::vector<RuleCounter> counters;
  if (auto read = engine_->SecurityCounters(stages); read.ok()) {
    counters = std::move(read).value();
  } else {
    spdlog::warn("effective rules of {}: no counters: {}", nic_id.ToString(),
                 read.status().ToString());
  }
  for (size_t i = 0; i < value.size(); ++i)
    for (auto& r : value[i]["effectiveSecurityRules"]) {
      Direction dir = r.value("direction", "") == "Inbound" ? Direction::kInbound
                                                            : Direction::kOutbound;
      for (auto& c : counters)
        if (c.stage == stages[i] && c.direction == dir && c.rule == r.value("name", "")) {
          r["packets"] = c.packets;
          r["bytes"] = c.bytes;
        }
    }
  return Json{{"value", value}};
}

Result<Json> NetworkService::SecurityRuleCounters(const ResourceId& nsg_id) {
  std::vector<SecurityRule> rules;
  std::map<std::string, std::string> vnet_of_stage;  // stage key -> VNET id
  {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(store::Record nsg, ctx_.store->Get(nsg_id.Key()));
    ASSIGN_OR_RETURN(rules, StoredRules(nsg.body));
    ASSIGN_OR_RETURN(auto vnets, ListAll(kVnetType, "/subscriptions/"));
    for (auto& v : vnets) vnet_of_stage[StageKey(nsg, v)] = v.body.value("id", "");
  }
  std::vector<std::string> stages;
  for (auto& [stage, vnet] : vnet_of_stage) stages.push_back(stage);
  ASSIGN_OR_RETURN(auto counters, engine_->SecurityCounters(stages));
  Json value = Json::array();
  for (Direction dir : {Direction::kInbound, Direction::kOutbound})
    for (auto& r : RulesInOrder(rules, dir)) {
      std::string name =
          std::string(r.is_default ? "defaultSecurityRules/" : "securityRules/") + r.name;
      uint64_t packets = 0, bytes = 0;
      Json per_vnet = Json::array();
      for (auto& c : counters) {
        if (c.direction != dir || c.rule != name) continue;
        packets += c.packets;
        bytes += c.bytes;
        per_vnet.push_back(
            {{"id", vnet_of_stage[c.stage]}, {"packets", c.packets}, {"bytes", c.bytes}});
      }
      value.push_back({{"name", name},
                       {"direction", dir == Direction::kInbound ? "Inbound" : "Outbound"},
                       {"priority", r.priority},
                       {"access", r.access == Access::kAllow ? "Allow" : "Deny"},
                       {"packets", packets},
                       {"bytes", bytes},
                       {"virtualNetworks", per_vnet}});
    }
  return Json{{"value", value}};
}

}  // namespace stratus::network
