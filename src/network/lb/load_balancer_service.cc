#include "network/lb/load_balancer_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "api/resource_util.h"
#include "core/uuid.h"
#include "network/kernel_names.h"
#include "network/lb/maglev.h"
#include "network/network_internal.h"

namespace stratus::network {

using namespace internal;

namespace {

// A short name for a rule's nft objects: stable for the rule's id, unique enough in a router.
std::string ObjectKey(char kind, const std::string& id) {
  return fmt::format("{}{:012x}", kind, StableHash(ToLower(id)) & 0xffffffffffffULL);
}

std::string KeyOf(const std::string& id_text) {
  auto id = ResourceId::Parse(id_text);
  return id.ok() ? id->Key() : ToLower(id_text);
}

// The load balancer a sub-resource id belongs to, and the sub-resource's kind and name.
struct ChildRef {
  ResourceId lb;
  std::string kind, name;
};
std::optional<ChildRef> ParseChild(const std::string& text) {
  auto id = ResourceId::Parse(text);
  if (!id.ok()) return std::nullopt;
  const auto& tn = id->types_and_names();
  if (tn.size() != 2 || !EqualsIgnoreCase(tn[0].first, "loadBalancers") ||
      !EqualsIgnoreCase(id->provider_namespace(), "Stratus.Network"))
    return std::nullopt;
  return ChildRef{id->Parent(), tn[1].first, tn[1].second};
}

// `name` as `names` spells it (any case), or "".
std::string Named(const std::vector<std::string>& names, const std::string& name) {
  for (auto& n : names)
    if (EqualsIgnoreCase(n, name)) return n;
  return "";
}

std::vector<std::string> NatNames(const LoadBalancer& lb) {
  std::vector<std::string> out;
  for (auto& n : lb.nat_rules) out.push_back(n.name);
  return out;
}

}  // namespace

Result<std::vector<store::Record>> LoadBalancerService::Nics(const std::string& subscription) {
  return store::ListAll(ctx_.store, ResourceId::Subscription(subscription).Key() + "/", kNicType);
}

Result<std::vector<LoadBalancerService::Loaded>> LoadBalancerService::AllLocked() {
  ASSIGN_OR_RETURN(auto recs, store::ListAll(ctx_.store, "/subscriptions/", kLoadBalancerType));
  std::vector<Loaded> out;
  for (auto& r : recs) {
    auto id = ResourceId::Parse(r.body.value("id", ""));
    if (!id.ok()) continue;
    auto lb = ParseLoadBalancer(r.body, *id);
    if (!lb.ok()) {
      spdlog::warn("load balancer {}: its record does not parse: {}", id->ToString(),
                   lb.status().ToString());
      continue;
    }
    out.push_back({std::move(r), *id, std::move(lb).value()});
  }
  return out;
}

std::vector<LoadBalancerService::Member> LoadBalancerService::MembersOf(
    const Loaded& lb, const std::vector<store::Record>& nics) {
  std::vector<Member> out;
  const std::string lb_key = lb.id.Key();
  for (auto& n : nics) {
    const Json& pips = n.internal.value("publicIps", Json::object());
    for (auto& c : n.body["properties"].value("ipConfigurations", Json::array())) {
      const Json& p = c["properties"];
      Member m;
      for (auto& r : p.value("loadBalancerBackendAddressPools", Json::array())) {
        auto ref = ParseChild(r.value("id", ""));
        if (!ref || ref->lb.Key() != lb_key) continue;
        std::string name = Named(lb.lb.pools, ref->name);
        if (!name.empty()) m.pools.push_back(name);
      }
      for (auto& r : p.value("loadBalancerInboundNatRules", Json::array())) {
        auto ref = ParseChild(r.value("id", ""));
        if (!ref || ref->lb.Key() != lb_key) continue;
        std::string name = Named(NatNames(lb.lb), ref->name);
        if (!name.empty()) m.nat_rules.push_back(name);
      }
      if (m.pools.empty() && m.nat_rules.empty()) continue;
      auto ip = ParseIpv4(p.value("privateIPAddress", ""), "");
      if (!ip.ok()) continue;
      m.nic = &n;
      m.config = c.value("name", "");
      m.ip = *ip;
      m.has_public_ip = pips.contains(m.config);
      out.push_back(std::move(m));
    }
  }
  return out;
}

std::string LoadBalancerService::VnetOf(const Loaded& lb, const std::vector<Member>& members) {
  std::string v = lb.rec.internal.value("vnet", "");
  if (!v.empty()) return v;
  for (auto& m : members) return m.nic->internal.value("vnet", "");
  return "";
}

Result<NetworkService::Written> LoadBalancerService::Put(const ResourceId& id, const Json& body,
                                                         const std::string& caller,
                                                         const store::WriteCondition& cond) {
  RETURN_IF_ERROR(
      api::RejectUnknownKeys(body,
                             {"location", "tags", "sku", "properties", "id", "name", "type", "etag",
                              "systemData", "zones", "extendedLocation"},
                             ""));
  ASSIGN_OR_RETURN(std::string location, api::ValidateLocation(body, ctx_.region));
  RETURN_IF_ERROR(api::ValidateTags(body));
  if (body.contains("extendedLocation") && !body["extendedLocation"].is_null())
    return InvalidArgument("Extended locations are not available.", "extendedLocation",
                           "FeatureNotAvailable");
  ASSIGN_OR_RETURN(LoadBalancer lb, ParseLoadBalancer(body, id));
  for (size_t i = 0; i < lb.rules.size(); ++i)
    if (lb.rules[i].floating_ip)
      return InvalidArgument(
          "Floating IP (direct server return) is not available yet.",
          "properties.loadBalancingRules[" + std::to_string(i) + "].properties.enableFloatingIP",
          "FeatureNotAvailable");
  for (size_t i = 0; i < lb.nat_rules.size(); ++i)
    if (lb.nat_rules[i].floating_ip)
      return InvalidArgument(
          "Floating IP (direct server return) is not available yet.",
          "properties.inboundNatRules[" + std::to_string(i) + "].properties.enableFloatingIP",
          "FeatureNotAvailable");

  auto lock = network_->LockChanges();
  auto existing = ctx_.store->Get(id.Key());
  ASSIGN_OR_RETURN(auto nics, Nics(id.subscription()));
  ASSIGN_OR_RETURN(auto all, AllLocked());
  // What this load balancer was, and who uses it.
  std::optional<Loaded> before;
  for (auto& l : all)
    if (l.rec.key == id.Key()) before = l;
  std::vector<Member> members;
  if (before) members = MembersOf(*before, nics);

  // Frontends.
  std::string vnet_key;
  std::set<std::string> pips_here;
  for (size_t i = 0; i < lb.frontends.size(); ++i) {
    LbFrontend& f = lb.frontends[i];
    const std::string where =
        "properties.frontendIPConfigurations[" + std::to_string(i) + "].properties";
    if (!f.public_ip.empty()) {
      const std::string key = KeyOf(f.public_ip);
      auto pip = ctx_.store->Get(key);
      if (!pip.ok() || pip->type != kPublicIpType)
        return NotFound("Public IP address '" + f.public_ip + "' was not found.",
                        where + ".publicIPAddress.id", "InvalidResourceReference");
      f.public_ip = pip->body.value("id", f.public_ip);
      if (pip->body["sku"].value("name", "") != "Standard")
        return InvalidArgument("A Standard load balancer needs Standard public IPs; '" +
                                   f.public_ip + "' is " + pip->body["sku"].value("name", "") + ".",
                               where + ".publicIPAddress.id", "PublicIPAddressSkuMismatch");
      ASSIGN_OR_RETURN(std::string holder, network_->PublicIpHolderLocked(f.public_ip));
      if (!holder.empty())
        return InvalidArgument("Public IP address '" + f.public_ip +
                                   "' is used by network interface '" + holder + "'.",
                               where + ".publicIPAddress.id", "PublicIPAddressInUse");
      for (auto& other : all) {
        if (other.rec.key == id.Key()) continue;
        for (auto& of : other.lb.frontends)
          if (!of.public_ip.empty() && KeyOf(of.public_ip) == key)
            return InvalidArgument("Public IP address '" + f.public_ip +
                                       "' is a frontend of load balancer '" + other.id.ToString() +
                                       "'.",
                                   where + ".publicIPAddress.id", "PublicIPAddressInUse");
      }
      if (!pips_here.insert(key).second)
        return InvalidArgument("Public IP address '" + f.public_ip + "' is given to two frontends.",
                               where + ".publicIPAddress.id", "PublicIPAddressInUse");
      continue;
    }
    // Internal: the subnet, and an address in it no NIC or other frontend holds.
    ASSIGN_OR_RETURN(auto sub, ParseSubnetId(f.subnet, id.subscription(), where + ".subnet.id"));
    auto vnet = ctx_.store->Get(sub.first.Key());
    const Json* subnet = vnet.ok() ? FindSubnet(vnet->body, sub.second) : nullptr;
    if (!subnet)
      return NotFound("Subnet '" + f.subnet + "' was not found.", where + ".subnet.id",
                      "InvalidResourceReference");
    f.subnet = subnet->value("id", f.subnet);
    if (!vnet_key.empty() && vnet_key != vnet->key)
      return InvalidArgument("The frontends of a load balancer are in one virtual network.",
                             where + ".subnet.id", "NicAndLoadBalancerInDifferentVirtualNetworks");
    vnet_key = vnet->key;
    ASSIGN_OR_RETURN(Ipv4Prefix pfx, SubnetPrefix(*subnet));
    std::vector<Ipv4> taken;
    for (auto& n : nics)
      if (n.internal.value("vnet", "") == vnet->key)
        for (auto& c : n.body["properties"].value("ipConfigurations", Json::array()))
          if (auto ip = ParseIpv4(c["properties"].value("privateIPAddress", ""), ""); ip.ok())
            taken.push_back(*ip);
    for (auto& other : all)
      if (other.rec.key != id.Key())
        for (auto& of : other.lb.frontends)
          if (auto ip = ParseIpv4(of.private_ip, ""); ip.ok()) taken.push_back(*ip);
    for (size_t k = 0; k < i; ++k)
      if (auto ip = ParseIpv4(lb.frontends[k].private_ip, ""); ip.ok()) taken.push_back(*ip);
    if (!f.private_static && f.private_ip.empty() && before)
      if (const LbFrontend* had = before->lb.Frontend(f.name);
          had && EqualsIgnoreCase(had->subnet, f.subnet))
        f.private_ip = had->private_ip;  // a Dynamic frontend keeps its address
    if (!f.private_ip.empty()) {
      Ipv4 ip = *ParseIpv4(f.private_ip, "");
      const std::string field = where + ".privateIPAddress";
      if (!pfx.Contains(ip))
        return InvalidArgument("Address " + f.private_ip + " is not in subnet '" + sub.second +
                                   "' (" + pfx.ToString() + ").",
                               field, "PrivateIPAddressNotInSubnet");
      if (IsReserved(pfx, ip))
        return InvalidArgument(
            "Address " + f.private_ip + " is reserved in subnet '" + sub.second + "'.", field,
            "PrivateIPAddressInReservedRange");
      if (std::find(taken.begin(), taken.end(), ip) != taken.end())
        return InvalidArgument(
            "Address " + f.private_ip + " is already used in subnet '" + sub.second + "'.", field,
            "PrivateIPAddressInUse");
    } else {
      auto ip = NextFree(pfx, taken);
      if (!ip)
        return InvalidArgument("Subnet '" + sub.second + "' has no free address left.",
                               where + ".subnet.id", "SubnetIsFull");
      f.private_ip = ip->ToString();
    }
  }
  // Members stay in one VNET with the frontends.
  for (auto& m : members)
    if (!vnet_key.empty() && m.nic->internal.value("vnet", "") != vnet_key)
      return InvalidArgument("Network interface '" + m.nic->body.value("id", "") +
                                 "' in one of its pools is in another virtual network.",
                             "properties.frontendIPConfigurations",
                             "NicAndLoadBalancerInDifferentVirtualNetworks");
  // Pools and NAT rules left out while NICs use them.
  for (auto& m : members) {
    for (auto& p : m.pools)
      if (Named(lb.pools, p).empty())
        return Conflict("Backend address pool '" + p + "' is used by IP configuration '" +
                            m.config + "' of network interface '" + m.nic->body.value("id", "") +
                            "'.",
                        "properties.backendAddressPools", "InUseBackendAddressPoolCannotBeDeleted");
    for (auto& n : m.nat_rules)
      if (Named(NatNames(lb), n).empty())
        return Conflict("Inbound NAT rule '" + n + "' is used by IP configuration '" + m.config +
                            "' of network interface '" + m.nic->body.value("id", "") + "'.",
                        "properties.inboundNatRules", "InUseInboundNatRuleCannotBeDeleted");
  }

  store::Record rec = api::RecordToWrite(existing, id, location, caller, ctx_.clock->NowMs());
  rec.type = kLoadBalancerType;
  rec.body["type"] = kLoadBalancerTypeName;
  rec.body["location"] = location;
  rec.body["tags"] = body.value("tags", rec.body.value("tags", Json::object()));
  rec.body["sku"] = LoadBalancerSku(lb);
  Json props = LoadBalancerProperties(lb, id);
  props["resourceGuid"] =
      existing.ok() ? existing->body["properties"].value("resourceGuid", "") : NewUuid();
  rec.body["properties"] = props;
  rec.internal["vnet"] = vnet_key;
  if (existing.ok() && existing->body == rec.body && existing->internal == rec.internal)
    return NetworkService::Written{*existing, false};
  ASSIGN_OR_RETURN(store::Record written, ctx_.store->Put(rec, cond));
  // The VNETs it was and is in.
  std::set<std::string> vnets;
  if (before) vnets.insert(VnetOf(*before, members));
  Loaded now{written, id, lb};
  vnets.insert(VnetOf(now, members));
  for (auto& v : vnets) RETURN_IF_ERROR(network_->ConvergeVnetLocked(v));
  return NetworkService::Written{written, !existing.ok()};
}

Status LoadBalancerService::Delete(const ResourceId& id) {
  auto lock = network_->LockChanges();
  ASSIGN_OR_RETURN(auto all, AllLocked());
  std::optional<Loaded> it;
  for (auto& l : all)
    if (l.rec.key == id.Key()) it = l;
  if (!it) return NotFound("Load balancer '" + id.ToString() + "' was not found.", id.ToString());
  ASSIGN_OR_RETURN(auto nics, Nics(id.subscription()));
  auto members = MembersOf(*it, nics);
  if (!members.empty())
    return Conflict("Load balancer '" + id.name() + "' cannot be deleted: IP configuration '" +
                        members[0].config + "' of network interface '" +
                        members[0].nic->body.value("id", "") +
                        "' is in one of its pools or NAT rules.",
                    id.ToString(), "InUseLoadBalancerCannotBeDeleted");
  std::string vnet = VnetOf(*it, members);
  RETURN_IF_ERROR(ctx_.store->Delete(id.Key()));
  return network_->ConvergeVnetLocked(vnet);
}

Result<Json> LoadBalancerService::View(const store::Record& rec) {
  Json view = api::ToArm(rec);
  auto id = ResourceId::Parse(rec.body.value("id", ""));
  if (!id.ok()) return view;
  auto lb = ParseLoadBalancer(rec.body, *id);
  if (!lb.ok()) return view;
  std::vector<store::Record> nics;
  {
    auto lock = network_->LockChanges();
    ASSIGN_OR_RETURN(nics, Nics(id->subscription()));
  }
  Loaded l{rec, *id, *lb};
  auto members = MembersOf(l, nics);
  Json& props = view["properties"];
  for (auto& pool : props["backendAddressPools"]) {
    Json configs = Json::array();
    for (auto& m : members)
      if (std::find(m.pools.begin(), m.pools.end(), pool.value("name", "")) != m.pools.end())
        configs.push_back({{"id", m.nic->body.value("id", "") + "/ipConfigurations/" + m.config}});
    pool["properties"]["backendIPConfigurations"] = configs;
  }
  for (auto& nat : props["inboundNatRules"])
    for (auto& m : members)
      if (std::find(m.nat_rules.begin(), m.nat_rules.end(), nat.value("name", "")) !=
          m.nat_rules.end())
        nat["properties"]["backendIPConfiguration"] = {
            {"id", m.nic->body.value("id", "") + "/ipConfigurations/" + m.config}};
  return view;
}

void LoadBalancerService::HealthChanged(const std::string& netns) {
  std::string vnet;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = vnet_of_netns_.find(netns);
    if (it == vnet_of_netns_.end()) return;
    vnet = it->second;
  }
  auto lock = network_->LockChanges();
  Status st = network_->ConvergeLoadBalancingLocked(vnet);
  if (!st.ok())
    spdlog::warn("load balancers: a health change in {} did not reach the router: {}", netns,
                 st.ToString());
}

Result<Json> LoadBalancerService::BackendHealth(const ResourceId& id) {
  auto lock = network_->LockChanges();
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  ASSIGN_OR_RETURN(LoadBalancer lb, ParseLoadBalancer(rec.body, id));
  ASSIGN_OR_RETURN(auto nics, Nics(id.subscription()));
  Loaded l{rec, id, lb};
  auto members = MembersOf(l, nics);
  std::string netns;
  if (std::string vnet_key = VnetOf(l, members); !vnet_key.empty()) {
    auto vnet = ctx_.store->Get(vnet_key);
    if (vnet.ok()) {
      auto ns = VnetNamespace(network_->region_id(), vnet->internal.value("index", 0u));
      if (ns.ok()) netns = *ns;
    }
  }
  auto iso = [](int64_t ms) -> Json { return ms == 0 ? Json(nullptr) : Json(FormatIso8601(ms)); };
  Json value = Json::array();
  for (auto& r : lb.rules) {
    const LbProbe* probe = r.probe.empty() ? nullptr : lb.Probe(r.probe);
    Json backends = Json::array();
    for (auto& m : members) {
      if (std::find(m.pools.begin(), m.pools.end(), r.pool) == m.pools.end()) continue;
      Json b = {{"ipConfiguration",
                 {{"id", m.nic->body.value("id", "") + "/ipConfigurations/" + m.config}}},
                {"ipAddress", m.ip.ToString()}};
      if (!probe) {
        b["health"] = "Up";
        b["inRotation"] = true;
        b["since"] = nullptr;
      } else {
        ProbeTarget t{netns, LbChildId(id, "probes", probe->name), m.ip, *probe};
        auto s = prober_.State(t.Key());
        ProbeState st = s ? *s : ProbeState{};
        b["health"] = ProbeHealthName(st.health);
        b["inRotation"] = st.health == ProbeHealth::kUp;
        b["since"] = iso(st.changed_ms);
        b["lastProbe"] = iso(st.last_probe_ms);
        if (!st.last_error.empty()) b["lastError"] = st.last_error;
      }
      backends.push_back(b);
    }
    value.push_back(
        {{"loadBalancingRule", {{"id", LbChildId(id, "loadBalancingRules", r.name)}}},
         {"probe", probe ? Json{{"id", LbChildId(id, "probes", probe->name)}} : Json(nullptr)},
         {"backends", backends}});
  }
  return Json{{"value", value}};
}

Result<std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>>>
LoadBalancerService::CheckNicReferences(const ResourceId& nic, const std::string& vnet_key,
                                        const std::vector<NicLbReferences>& refs) {
  ASSIGN_OR_RETURN(auto all, AllLocked());
  ASSIGN_OR_RETURN(auto nics, Nics(nic.subscription()));
  std::vector<store::Record> others;
  for (auto& n : nics)
    if (n.key != nic.Key()) others.push_back(n);
  std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>> out;
  std::set<std::string> nats_here;
  auto find = [&](const std::string& text, const std::string& field) -> Result<const Loaded*> {
    auto ref = ParseChild(text);
    if (ref)
      for (auto& l : all)
        if (l.rec.key == ref->lb.Key()) return &l;
    return NotFound("'" + text + "' is not a pool or NAT rule of an existing load balancer.", field,
                    "InvalidResourceReference");
  };
  for (auto& r : refs) {
    auto& [pools, nats] = out[r.config];
    for (auto [kind, list, into] : {std::tuple{"backendAddressPools", &r.pools, &pools},
                                    {"inboundNatRules", &r.nat_rules, &nats}}) {
      const std::string field =
          r.field + "." +
          (std::string(kind) == "backendAddressPools" ? "loadBalancerBackendAddressPools"
                                                      : "loadBalancerInboundNatRules");
      for (auto& text : *list) {
        ASSIGN_OR_RETURN(const Loaded* l, find(text, field));
        auto ref = ParseChild(text);
        if (!EqualsIgnoreCase(ref->kind, kind))
          return InvalidArgument("'" + text + "' is not one of " + kind + ".", field,
                                 "InvalidResourceReference");
        const bool pool = std::string(kind) == "backendAddressPools";
        std::string name = Named(pool ? l->lb.pools : NatNames(l->lb), ref->name);
        if (name.empty())
          return NotFound(
              "Load balancer '" + l->id.name() + "' has no " + kind + " named '" + ref->name + "'.",
              field, "InvalidResourceReference");
        std::string lb_vnet = VnetOf(*l, MembersOf(*l, others));
        if (!lb_vnet.empty() && lb_vnet != vnet_key)
          return InvalidArgument("Load balancer '" + l->id.name() +
                                     "' has its frontend or backends in another virtual network.",
                                 field, "NicAndLoadBalancerInDifferentVirtualNetworks");
        std::string canonical = LbChildId(l->id, kind, name);
        if (!pool) {
          for (auto& m : MembersOf(*l, others))
            if (std::find(m.nat_rules.begin(), m.nat_rules.end(), name) != m.nat_rules.end())
              return Conflict("Inbound NAT rule '" + name + "' is used by IP configuration '" +
                                  m.config + "' of network interface '" +
                                  m.nic->body.value("id", "") + "'.",
                              field, "InboundNatRuleInUse");
          if (!nats_here.insert(ToLower(canonical)).second)
            return Conflict("Inbound NAT rule '" + name + "' is given to two IP configurations.",
                            field, "InboundNatRuleInUse");
        }
        into->push_back(canonical);
      }
    }
  }
  return out;
}

Result<std::vector<Ipv4>> LoadBalancerService::FrontendAddresses(const std::string& vnet_key) {
  ASSIGN_OR_RETURN(auto all, AllLocked());
  std::vector<Ipv4> out;
  for (auto& l : all)
    if (l.rec.internal.value("vnet", "") == vnet_key)
      for (auto& f : l.lb.frontends)
        if (auto ip = ParseIpv4(f.private_ip, ""); ip.ok()) out.push_back(*ip);
  return out;
}

Result<std::string> LoadBalancerService::PublicIpUser(const std::string& pip_key) {
  ASSIGN_OR_RETURN(auto all, AllLocked());
  for (auto& l : all)
    for (auto& f : l.lb.frontends)
      if (!f.public_ip.empty() && KeyOf(f.public_ip) == pip_key) return l.id.ToString();
  return std::string();
}

Result<VnetLoadBalancing> LoadBalancerService::DatapathOf(const store::Record& vnet,
                                                          const std::vector<store::Record>& nics,
                                                          bool has_uplink) {
  ASSIGN_OR_RETURN(auto all, AllLocked());
  VnetLoadBalancing out;
  ASSIGN_OR_RETURN(std::string netns,
                   VnetNamespace(network_->region_id(), vnet.internal.value("index", 0u)));
  bool first = false;  // the first time this process converges this router
  {
    std::lock_guard<std::mutex> l(mu_);
    first = vnet_of_netns_.emplace(netns, vnet.key).second;
  }
  std::vector<ProbeTarget> targets;
  std::set<std::string> target_keys;
  // Probed backends: (rule index in out.lb.rules, target key, address), filled in once the
  // prober knows the targets.
  std::vector<std::tuple<size_t, std::string, Ipv4>> probed;
  std::set<uint32_t> snatted;  // sources given an outbound address already
  for (auto& l : all) {
    auto members = MembersOf(l, nics);
    if (VnetOf(l, members) != vnet.key) continue;
    // The frontends' addresses: a public IP's, or the internal one chosen.
    std::map<std::string, Ipv4> address;
    for (auto& f : l.lb.frontends) {
      if (!f.public_ip.empty()) {
        auto pip = ctx_.store->Get(KeyOf(f.public_ip));
        if (!pip.ok()) continue;
        auto ip = ParseIpv4(pip->internal.value("address", ""), "");
        if (!ip.ok()) continue;
        address[f.name] = *ip;
        out.routed.push_back(*ip);
      } else {
        auto ip = ParseIpv4(f.private_ip, "");
        if (!ip.ok()) continue;
        address[f.name] = *ip;
        auto sub = ResourceId::Parse(f.subnet);
        if (sub.ok()) out.subnet_frontends[ToLower(sub->name())].push_back(*ip);
      }
      out.lb.frontends.push_back(address[f.name]);
    }
    auto pool_members = [&](const std::string& pool) {
      std::vector<const Member*> in;
      for (auto& m : members)
        if (std::find(m.pools.begin(), m.pools.end(), pool) != m.pools.end()) in.push_back(&m);
      return in;
    };
    for (auto& r : l.lb.rules) {
      if (!address.count(r.frontend)) continue;
      LbRuleDatapath d;
      d.key = ObjectKey('r', LbChildId(l.id, "loadBalancingRules", r.name));
      d.frontend = address[r.frontend];
      d.protocol = ToLower(r.protocol);
      d.frontend_port = r.frontend_port;
      d.backend_port = r.backend_port;
      d.distribution = r.distribution;
      const LbProbe* probe = r.probe.empty() ? nullptr : l.lb.Probe(r.probe);
      for (auto* m : pool_members(r.pool)) {
        if (!probe) {
          d.backends.push_back(m->ip);
          continue;
        }
        ProbeTarget t{netns, LbChildId(l.id, "probes", probe->name), m->ip, *probe};
        probed.emplace_back(out.lb.rules.size(), t.Key(), m->ip);
        if (target_keys.insert(t.Key()).second) targets.push_back(std::move(t));
      }
      out.lb.rules.push_back(std::move(d));
    }
    for (auto& n : l.lb.nat_rules) {
      if (!address.count(n.frontend)) continue;
      for (auto& m : members)
        if (std::find(m.nat_rules.begin(), m.nat_rules.end(), n.name) != m.nat_rules.end()) {
          LbNatDatapath d;
          d.key = ObjectKey('n', LbChildId(l.id, "inboundNatRules", n.name));
          d.frontend = address[n.frontend];
          d.protocol = ToLower(n.protocol);
          d.frontend_port = n.frontend_port;
          d.backend = m.ip;
          d.backend_port = n.backend_port;
          out.lb.nats.push_back(std::move(d));
        }
    }
    // Outbound: an outbound rule's pool leaves with its first frontend; a rule's pool with the
    // rule's frontend unless the rule disables it. Members with a public IP of their own keep
    // it (as in Azure).
    if (!l.lb.Internal() && has_uplink) {
      auto snat = [&](const std::string& pool, const std::string& frontend) {
        if (!address.count(frontend)) return;
        LbSnatDatapath s;
        s.to = address[frontend];
        for (auto* m : pool_members(pool))
          if (!m->has_public_ip && snatted.insert(m->ip.value).second) s.sources.push_back(m->ip);
        if (!s.sources.empty()) out.lb.snats.push_back(std::move(s));
      };
      for (auto& o : l.lb.outbound_rules) snat(o.pool, o.frontends.front());
      for (auto& r : l.lb.rules)
        if (!r.disable_outbound_snat) snat(r.pool, r.frontend);
    }
  }
  // After a restart the backends the router balanced over stay until their probes say
  // otherwise (they start Up, not Unknown): a restart rebuilds nothing that is right.
  prober_.SetTargets(netns, targets, /*assume_up=*/first);
  for (auto& [rule, key, ip] : probed)
    if (prober_.Up(key)) out.lb.rules[rule].backends.push_back(ip);
  if (out.lb.empty()) return out;
  const Json& idx = vnet.internal["subnets"];
  for (auto& s : vnet.body["properties"].value("subnets", Json::array())) {
    auto link = GatewayVethInRouter(idx.value(ToLower(s.value("name", "")), 0u));
    if (link.ok()) out.lb.subnet_links.push_back(*link);
  }
  if (has_uplink) out.lb.uplink = kUplinkVethInRouter;
  return out;
}

}  // namespace stratus::network
