#include "network/network_service.h"

#include <spdlog/spdlog.h>

#include <set>

#include "api/resource_util.h"
#include "core/uuid.h"
#include "network/kernel_names.h"

namespace stratus::network {

namespace {

constexpr char kVnetTypeName[] = "Stratus.Network/virtualNetworks";
constexpr char kSubnetTypeName[] = "Stratus.Network/virtualNetworks/subnets";
constexpr char kIpConfigTypeName[] = "Stratus.Network/networkInterfaces/ipConfigurations";

// "web-net_1" -> "web-net-1": the VNET's DNS domain is "<label>.internal".
std::string DnsLabel(const std::string& name) {
  std::string out;
  for (char c : ToLower(name)) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  while (!out.empty() && out.front() == '-') out.erase(out.begin());
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 63) out.resize(63);
  return out.empty() ? "vnet" : out;
}

// "52:54:00:ab:cd:ef" -> "52-54-00-AB-CD-EF" (how ARM shows a MAC).
std::string ArmMac(const std::string& mac) {
  std::string out;
  for (char c : mac) out.push_back(c == ':' ? '-' : static_cast<char>(std::toupper(c)));
  return out;
}

Result<Ipv4Prefix> SubnetPrefix(const Json& subnet) {
  return ParseIpv4Prefix(subnet["properties"].value("addressPrefix", ""), "addressPrefix");
}

const Json* FindSubnet(const Json& vnet_body, const std::string& name) {
  const Json* subnets = JsonPath(vnet_body, "properties.subnets");
  if (!subnets || !subnets->is_array()) return nullptr;
  for (auto& s : *subnets)
    if (EqualsIgnoreCase(s.value("name", ""), name)) return &s;
  return nullptr;
}

// The VNET id and subnet name of a subnet id, checked to be a subnet of `subscription`.
Result<std::pair<ResourceId, std::string>> ParseSubnetId(const std::string& text,
                                                         const std::string& subscription,
                                                         const std::string& field) {
  auto id = ResourceId::Parse(text);
  if (!id.ok() || id->types_and_names().size() != 2 ||
      !EqualsIgnoreCase(id->provider_namespace(), "Stratus.Network") ||
      !EqualsIgnoreCase(id->types_and_names()[0].first, "virtualNetworks") ||
      !EqualsIgnoreCase(id->types_and_names()[1].first, "subnets"))
    return InvalidArgument("'" + text + "' is not a subnet id (.../providers/Stratus.Network/"
                           "virtualNetworks/{vnet}/subnets/{subnet}).",
                           field, "InvalidResourceReference");
  if (!EqualsIgnoreCase(id->subscription(), subscription))
    return InvalidArgument("Subnet '" + text + "' is in another subscription.", field,
                           "InvalidResourceReference");
  return std::make_pair(id->Parent(), id->name());
}

// A top-level resource body: its known members, location (the region's) and tags; returns the
// location and the properties object.
Result<std::pair<std::string, Json>> TopLevel(const Json& body, const std::string& region) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      body, {"location", "tags", "properties", "id", "name", "type", "etag", "systemData"}, ""));
  ASSIGN_OR_RETURN(std::string location, api::ValidateLocation(body, region));
  RETURN_IF_ERROR(api::ValidateTags(body));
  Json p = body.value("properties", Json::object());
  if (!p.is_object()) return InvalidArgument("'properties' must be an object.", "properties");
  return std::make_pair(location, p);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Indexes, scans

Result<uint32_t> NetworkService::NextIndex(const std::string& kind, uint32_t max) {
  std::string key = "network.nextIndex." + kind;
  ASSIGN_OR_RETURN(auto cur, ctx_.store->GetSetting(key));
  uint32_t next = cur ? static_cast<uint32_t>(std::stoul(*cur)) : 1;
  if (next > max)
    return Conflict("This region has used all " + std::to_string(max) + " " + kind +
                        " names; none can be created.",
                    kind, "QuotaExceeded");
  RETURN_IF_ERROR(ctx_.store->PutSetting(key, std::to_string(next + 1)));
  return next;
}

Result<std::vector<store::Record>> NetworkService::NicsOfSubscription(const std::string& sub) {
  std::vector<store::Record> out;
  std::string prefix = ResourceId::Subscription(sub).Key() + "/";
  std::string after;
  while (true) {
    ASSIGN_OR_RETURN(store::Page page, ctx_.store->List(prefix, kNicType, after, 1000));
    for (auto& r : page.records) out.push_back(std::move(r));
    if (page.next_key.empty()) break;
    after = page.next_key;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// VNETs and subnets

Result<Json> NetworkService::ValidateSubnet(const Json& s, const std::string& where,
                                            const ResourceId& vnet) {
  if (!s.is_object()) return InvalidArgument("Each subnet must be an object.", where);
  RETURN_IF_ERROR(
      api::RejectUnknownKeys(s, {"name", "properties", "id", "type", "etag"}, where));
  ASSIGN_OR_RETURN(std::string name, api::GetString(s, "name"));
  RETURN_IF_ERROR(ValidateResourceName(name, "subnet", 80));
  Json p = s.value("properties", Json::object());
  if (!p.is_object()) return InvalidArgument("'properties' must be an object.", where + ".properties");
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      p, {"addressPrefix", "addressPrefixes", "provisioningState", "ipConfigurations",
          "networkSecurityGroup", "routeTable", "privateEndpointNetworkPolicies",
          "privateLinkServiceNetworkPolicies", "purpose"},
      where + ".properties"));
  for (const char* later : {"networkSecurityGroup", "routeTable"})
    if (p.contains(later) && !p[later].is_null())
      return InvalidArgument(std::string("'") + later + "' on subnets is not available in this "
                             "region yet.", where + ".properties." + later, "FeatureNotAvailable");
  std::string prefix = p.value("addressPrefix", "");
  if (prefix.empty() && p.contains("addressPrefixes") && p["addressPrefixes"].is_array()) {
    if (p["addressPrefixes"].size() != 1)
      return InvalidArgument("A subnet has exactly one address prefix here.",
                             where + ".properties.addressPrefixes");
    prefix = p["addressPrefixes"][0].is_string() ? p["addressPrefixes"][0].get<std::string>() : "";
  }
  if (prefix.empty())
    return InvalidArgument("Subnet '" + name + "' needs 'properties.addressPrefix'.",
                           where + ".properties.addressPrefix", "MissingParameter");
  ASSIGN_OR_RETURN(Ipv4Prefix pfx, ParseIpv4Prefix(prefix, where + ".properties.addressPrefix"));
  ResourceId sid = vnet.Child("subnets", name);
  return Json{{"id", sid.ToString()},
              {"name", name},
              {"type", kSubnetTypeName},
              {"properties", {{"addressPrefix", pfx.ToString()}, {"provisioningState", "Succeeded"}}}};
}

Status NetworkService::CheckSubnetsInUse(const store::Record& vnet, const Json& new_subnets) {
  ASSIGN_OR_RETURN(ResourceId vid, ResourceId::Parse(vnet.body.value("id", "")));
  ASSIGN_OR_RETURN(auto nics, NicsOfSubscription(vid.subscription()));
  std::map<std::string, int> used;  // subnet name (lower) -> NICs
  for (auto& n : nics)
    if (n.internal.value("vnet", "") == vnet.key) used[n.internal.value("subnet", "")]++;
  for (auto& old : vnet.body["properties"].value("subnets", Json::array())) {
    std::string name = old.value("name", "");
    int count = used[ToLower(name)];
    if (count == 0) continue;
    const Json* now = nullptr;
    for (auto& s : new_subnets)
      if (EqualsIgnoreCase(s.value("name", ""), name)) now = &s;
    if (!now)
      return Conflict("Subnet '" + name + "' is in use by " + std::to_string(count) +
                          " network interface(s) and cannot be deleted.",
                      old.value("id", ""), "InUseSubnetCannotBeDeleted");
    if ((*now)["properties"].value("addressPrefix", "") !=
        old["properties"].value("addressPrefix", ""))
      return Conflict("Subnet '" + name + "' is in use by " + std::to_string(count) +
                          " network interface(s); its address prefix cannot change.",
                      old.value("id", ""), "InUseSubnetCannotBeUpdated");
  }
  return Status::Ok();
}

Result<NetworkService::Written> NetworkService::WriteVnetLocked(
    const ResourceId& id, const std::string& location, const Json& tags, const Json& spaces,
    const Json& subnets, const Json& dhcp, const std::string& caller,
    const store::WriteCondition& cond) {
  // Layout: every subnet inside a space, no overlaps.
  std::vector<Ipv4Prefix> space_pfx;
  for (size_t i = 0; i < spaces.size(); ++i) {
    ASSIGN_OR_RETURN(Ipv4Prefix p,
                     ParseIpv4Prefix(spaces[i].is_string() ? spaces[i].get<std::string>() : "",
                                     "properties.addressSpace.addressPrefixes[" +
                                         std::to_string(i) + "]"));
    space_pfx.push_back(p);
  }
  std::vector<std::pair<std::string, Ipv4Prefix>> subnet_pfx;
  std::set<std::string> names;
  for (auto& s : subnets) {
    if (!names.insert(ToLower(s.value("name", ""))).second)
      return InvalidArgument("Subnet '" + s.value("name", "") + "' is listed twice.",
                             "properties.subnets", "DuplicateResourceName");
    ASSIGN_OR_RETURN(Ipv4Prefix p, SubnetPrefix(s));
    subnet_pfx.emplace_back(s.value("name", ""), p);
  }
  RETURN_IF_ERROR(ValidateVnetLayout(space_pfx, subnet_pfx));

  auto existing = ctx_.store->Get(id.Key());
  store::Record rec;
  if (existing.ok()) {
    RETURN_IF_ERROR(CheckSubnetsInUse(*existing, subnets));
    rec = *existing;
    api::TouchSystemData(rec.body, caller, ctx_.clock->NowMs());
    rec.body["tags"] = tags;
  } else {
    ASSIGN_OR_RETURN(uint32_t index, NextIndex("vnet", 0xffff));
    rec.key = id.Key();
    rec.type = kVnetType;
    rec.body = api::NewResourceBody(id, location, tags, caller, ctx_.clock->NowMs());
    rec.body["type"] = kVnetTypeName;
    rec.body["properties"] = {{"resourceGuid", NewUuid()}};
    rec.internal = {{"index", index}, {"subnets", Json::object()}};
  }
  // Subnet indexes: kept for subnets that stay, new ones for new subnets.
  Json idx = rec.internal.value("subnets", Json::object());
  Json kept = Json::object();
  for (auto& s : subnets) {
    std::string k = ToLower(s.value("name", ""));
    if (idx.contains(k)) {
      kept[k] = idx[k];
    } else {
      ASSIGN_OR_RETURN(uint32_t i, NextIndex("subnet", 0xffffff));
      kept[k] = i;
    }
  }
  rec.internal["subnets"] = kept;
  Json& p = rec.body["properties"];
  p["addressSpace"] = {{"addressPrefixes", spaces}};
  p["subnets"] = subnets;
  p["dhcpOptions"] = dhcp;
  p["virtualNetworkPeerings"] = Json::array();
  p["enableDdosProtection"] = false;
  p["provisioningState"] = "Succeeded";
  bool same = existing.ok() && existing->body == rec.body && existing->internal == rec.internal;
  if (same) return Written{*existing, false};
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, cond));
  RETURN_IF_ERROR(ConvergeLocked(rec.key));
  return Written{rec, !existing.ok()};
}

Result<NetworkService::Written> NetworkService::PutVnet(const ResourceId& id, const Json& body,
                                                       const std::string& caller,
                                                       const store::WriteCondition& cond) {
  ASSIGN_OR_RETURN(auto top, TopLevel(body, ctx_.region));
  auto& [location, p] = top;
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      p, {"addressSpace", "subnets", "dhcpOptions", "provisioningState", "resourceGuid",
          "virtualNetworkPeerings", "enableDdosProtection", "enableVmProtection"},
      "properties"));
  if (p.value("enableDdosProtection", false))
    return InvalidArgument("DDoS protection plans are not available.",
                           "properties.enableDdosProtection", "FeatureNotAvailable");
  Json as = p.value("addressSpace", Json::object());
  if (!as.is_object() || !as.contains("addressPrefixes") || !as["addressPrefixes"].is_array() ||
      as["addressPrefixes"].empty())
    return InvalidArgument("'properties.addressSpace.addressPrefixes' needs at least one prefix.",
                           "properties.addressSpace.addressPrefixes", "MissingParameter");
  RETURN_IF_ERROR(api::RejectUnknownKeys(as, {"addressPrefixes"}, "properties.addressSpace"));
  Json dhcp = p.value("dhcpOptions", Json::object());
  if (!dhcp.is_object()) return InvalidArgument("'dhcpOptions' must be an object.", "properties.dhcpOptions");
  RETURN_IF_ERROR(api::RejectUnknownKeys(dhcp, {"dnsServers"}, "properties.dhcpOptions"));
  Json dns = dhcp.value("dnsServers", Json::array());
  if (!dns.is_array())
    return InvalidArgument("'dnsServers' must be an array.", "properties.dhcpOptions.dnsServers");
  for (size_t i = 0; i < dns.size(); ++i)
    RETURN_IF_ERROR(ParseIpv4(dns[i].is_string() ? dns[i].get<std::string>() : "",
                              "properties.dhcpOptions.dnsServers[" + std::to_string(i) + "]")
                        .status());
  if (p.contains("virtualNetworkPeerings") && !p["virtualNetworkPeerings"].empty())
    return InvalidArgument("Peerings are not available in this region yet.",
                           "properties.virtualNetworkPeerings", "FeatureNotAvailable");
  std::lock_guard<std::mutex> l(mu_);
  auto existing = ctx_.store->Get(id.Key());
  Json subnets = Json::array();
  if (p.contains("subnets")) {
    if (!p["subnets"].is_array())
      return InvalidArgument("'subnets' must be an array.", "properties.subnets");
    for (size_t i = 0; i < p["subnets"].size(); ++i) {
      ASSIGN_OR_RETURN(Json s, ValidateSubnet(p["subnets"][i],
                                              "properties.subnets[" + std::to_string(i) + "]", id));
      subnets.push_back(s);
    }
  } else if (existing.ok()) {
    subnets = existing->body["properties"].value("subnets", Json::array());
  }
  Json tags = body.value("tags", existing.ok() ? existing->body.value("tags", Json::object())
                                               : Json::object());
  return WriteVnetLocked(id, location, tags, as["addressPrefixes"], subnets,
                         {{"dnsServers", dns}}, caller, cond);
}

Result<NetworkService::Written> NetworkService::PutSubnet(const ResourceId& id, const Json& body,
                                                         const std::string& caller) {
  ResourceId vid = id.Parent();
  Json s = body;
  s["name"] = id.name();
  ASSIGN_OR_RETURN(Json subnet, ValidateSubnet(s, "", vid));
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(vid.Key()));
  Json subnets = Json::array();
  bool found = false;
  for (auto& old : vnet.body["properties"].value("subnets", Json::array())) {
    if (EqualsIgnoreCase(old.value("name", ""), id.name())) {
      subnet["name"] = old.value("name", "");  // the name keeps the case it was created with
      subnet["id"] = old.value("id", "");
      subnets.push_back(subnet);
      found = true;
    } else {
      subnets.push_back(old);
    }
  }
  if (!found) subnets.push_back(subnet);
  const Json& p = vnet.body["properties"];
  ASSIGN_OR_RETURN(Written w,
                   WriteVnetLocked(vid, vnet.body.value("location", ""),
                                   vnet.body.value("tags", Json::object()),
                                   p["addressSpace"]["addressPrefixes"], subnets,
                                   p.value("dhcpOptions", Json::object()), caller, {}));
  w.created = !found;
  return w;
}

Status NetworkService::DeleteVnet(const ResourceId& id) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(id.Key()));
  RETURN_IF_ERROR(CheckSubnetsInUse(vnet, Json::array()));
  ASSIGN_OR_RETURN(std::string ns, VnetNamespace(rid_, vnet.internal.value("index", 0u)));
  RETURN_IF_ERROR(ctx_.store->Delete(vnet.key));
  // The record goes first: if removing the datapath fails, Start() sweeps what is left.
  Status st = engine_->RemoveVnet(ns);
  if (!st.ok()) spdlog::warn("removing the datapath of VNET {} failed: {}", id.ToString(), st.ToString());
  return Status::Ok();
}

Status NetworkService::DeleteSubnet(const ResourceId& id) {
  std::lock_guard<std::mutex> l(mu_);
  ResourceId vid = id.Parent();
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(vid.Key()));
  if (!FindSubnet(vnet.body, id.name()))
    return NotFound("Subnet '" + id.name() + "' was not found.", id.ToString());
  Json subnets = Json::array();
  for (auto& s : vnet.body["properties"].value("subnets", Json::array()))
    if (!EqualsIgnoreCase(s.value("name", ""), id.name())) subnets.push_back(s);
  const Json& p = vnet.body["properties"];
  return WriteVnetLocked(vid, vnet.body.value("location", ""),
                         vnet.body.value("tags", Json::object()),
                         p["addressSpace"]["addressPrefixes"], subnets,
                         p.value("dhcpOptions", Json::object()), "", {})
      .status();
}

Json NetworkService::VnetView(const store::Record& vnet) {
  Json body = api::ToArm(vnet);
  auto vid = ResourceId::Parse(vnet.body.value("id", ""));
  if (!vid.ok()) return body;
  auto nics = NicsOfSubscription(vid->subscription());
  std::map<std::string, Json> configs;  // subnet (lower) -> [{id}]
  if (nics.ok())
    for (auto& n : *nics) {
      if (n.internal.value("vnet", "") != vnet.key) continue;
      for (auto& c : n.body["properties"].value("ipConfigurations", Json::array()))
        configs[n.internal.value("subnet", "")].push_back({{"id", c.value("id", "")}});
    }
  for (auto& s : body["properties"]["subnets"]) {
    s["etag"] = body.value("etag", "");
    auto it = configs.find(ToLower(s.value("name", "")));
    if (it != configs.end()) s["properties"]["ipConfigurations"] = it->second;
  }
  return body;
}

Result<Json> NetworkService::SubnetView(const ResourceId& id) {
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(id.Parent().Key()));
  Json view = VnetView(vnet);
  for (auto& s : view["properties"]["subnets"])
    if (EqualsIgnoreCase(s.value("name", ""), id.name())) return s;
  return NotFound("Subnet '" + id.name() + "' was not found in virtual network '" +
                      id.Parent().name() + "'.",
                  id.ToString(), "NotFound");
}

Result<Json> NetworkService::SubnetList(const ResourceId& vnet_id) {
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(vnet_id.Key()));
  return Json{{"value", VnetView(vnet)["properties"]["subnets"]}};
}

// ---------------------------------------------------------------------------------------------
// NICs

Result<NetworkService::Written> NetworkService::PutNic(const ResourceId& id, const Json& body,
                                                      const std::string& caller,
                                                      const store::WriteCondition& cond) {
  ASSIGN_OR_RETURN(auto top, TopLevel(body, ctx_.region));
  auto& [location, p] = top;
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      p, {"ipConfigurations", "enableIPForwarding", "enableAcceleratedNetworking",
          "networkSecurityGroup", "dnsSettings", "macAddress", "virtualMachine", "primary",
          "provisioningState", "resourceGuid", "nicType"},
      "properties"));
  if (p.contains("networkSecurityGroup") && !p["networkSecurityGroup"].is_null())
    return InvalidArgument("Network security groups are not available in this region yet.",
                           "properties.networkSecurityGroup", "FeatureNotAvailable");
  if (p.value("enableAcceleratedNetworking", false))
    return InvalidArgument("Accelerated networking is not available.",
                           "properties.enableAcceleratedNetworking", "FeatureNotAvailable");
  if (p.contains("enableIPForwarding") && !p["enableIPForwarding"].is_boolean())
    return InvalidArgument("'enableIPForwarding' must be true or false.",
                           "properties.enableIPForwarding");
  Json configs = p.value("ipConfigurations", Json::array());
  if (!configs.is_array() || configs.empty())
    return InvalidArgument("A network interface needs at least one IP configuration.",
                           "properties.ipConfigurations", "MissingParameter");
  if (configs.size() > 32)
    return InvalidArgument("A network interface has at most 32 IP configurations.",
                           "properties.ipConfigurations");

  std::lock_guard<std::mutex> l(mu_);
  auto existing = ctx_.store->Get(id.Key());
  const Json* old_configs = existing.ok() ? &existing->body["properties"]["ipConfigurations"] : nullptr;

  // Parse every configuration; they share one subnet.
  struct Config {
    std::string name;
    bool primary = false;
    bool is_static = false;
    std::optional<Ipv4> ip;
  };
  std::vector<Config> parsed;
  std::string subnet_text;
  std::optional<std::pair<ResourceId, std::string>> subnet;
  int primaries = 0;
  std::set<std::string> names;
  for (size_t i = 0; i < configs.size(); ++i) {
    std::string where = "properties.ipConfigurations[" + std::to_string(i) + "]";
    const Json& c = configs[i];
    if (!c.is_object()) return InvalidArgument("Each IP configuration must be an object.", where);
    RETURN_IF_ERROR(api::RejectUnknownKeys(c, {"name", "properties", "id", "type", "etag"}, where));
    Config cfg;
    ASSIGN_OR_RETURN(cfg.name, api::GetString(c, "name", i == 0 ? "ipconfig1" : ""));
    RETURN_IF_ERROR(ValidateResourceName(cfg.name, "ipConfiguration", 80));
    if (!names.insert(ToLower(cfg.name)).second)
      return InvalidArgument("IP configuration '" + cfg.name + "' is listed twice.", where,
                             "DuplicateResourceName");
    Json cp = c.value("properties", Json::object());
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        cp, {"subnet", "privateIPAddress", "privateIPAllocationMethod", "privateIPAddressVersion",
             "primary", "publicIPAddress", "provisioningState"},
        where + ".properties"));
    if (cp.contains("publicIPAddress") && !cp["publicIPAddress"].is_null())
      return InvalidArgument("Public IP addresses are not available in this region yet.",
                             where + ".properties.publicIPAddress", "FeatureNotAvailable");
    if (cp.value("privateIPAddressVersion", "IPv4") != "IPv4")
      return InvalidArgument("Only IPv4 is available.", where + ".properties.privateIPAddressVersion",
                             "FeatureNotAvailable");
    if (!cp.contains("subnet") || !cp["subnet"].is_object() || !cp["subnet"].contains("id"))
      return InvalidArgument("IP configuration '" + cfg.name + "' needs 'subnet.id'.",
                             where + ".properties.subnet.id", "MissingParameter");
    ASSIGN_OR_RETURN(std::string sid, api::GetString(cp["subnet"], "id"));
    ASSIGN_OR_RETURN(auto sub, ParseSubnetId(sid, id.subscription(), where + ".properties.subnet.id"));
    if (subnet && (subnet->first.Key() != sub.first.Key() ||
                   !EqualsIgnoreCase(subnet->second, sub.second)))
      return InvalidArgument("All IP configurations of a network interface use one subnet.",
                             where + ".properties.subnet.id",
                             "IPConfigurationsOnSameNicCannotUseDifferentSubnets");
    subnet = sub;
    subnet_text = sid;
    ASSIGN_OR_RETURN(std::string method, api::GetString(cp, "privateIPAllocationMethod", ""));
    std::string address = cp.value("privateIPAddress", "");
    if (!method.empty() && !EqualsIgnoreCase(method, "Dynamic") && !EqualsIgnoreCase(method, "Static"))
      return InvalidArgument("privateIPAllocationMethod must be Dynamic or Static.",
                             where + ".properties.privateIPAllocationMethod");
    cfg.is_static = EqualsIgnoreCase(method, "Static") || (method.empty() && !address.empty());
    if (cfg.is_static) {
      if (address.empty())
        return InvalidArgument("A Static IP configuration needs 'privateIPAddress'.",
                               where + ".properties.privateIPAddress", "MissingParameter");
      ASSIGN_OR_RETURN(Ipv4 ip, ParseIpv4(address, where + ".properties.privateIPAddress"));
      cfg.ip = ip;
    } else if (old_configs) {
      // A Dynamic address is the NIC's for life: keep the one it has.
      for (auto& oc : *old_configs)
        if (EqualsIgnoreCase(oc.value("name", ""), cfg.name)) {
          auto ip = ParseIpv4(oc["properties"].value("privateIPAddress", ""), "");
          if (ip.ok()) cfg.ip = *ip;
        }
    }
    if (cp.contains("primary") && !cp["primary"].is_boolean())
      return InvalidArgument("'primary' must be true or false.", where + ".properties.primary");
    cfg.primary = cp.value("primary", configs.size() == 1);
    primaries += cfg.primary ? 1 : 0;
    parsed.push_back(cfg);
  }
  if (primaries != 1)
    return InvalidArgument("Exactly one IP configuration must be primary (" +
                               std::to_string(primaries) + " are).",
                           "properties.ipConfigurations", "PrimaryIpConfigurationRequired");

  // The subnet, and the addresses other NICs hold in it.
  auto vnet = ctx_.store->Get(subnet->first.Key());
  const Json* subnet_json = vnet.ok() ? FindSubnet(vnet->body, subnet->second) : nullptr;
  if (!subnet_json)
    return NotFound("Subnet '" + subnet_text + "' was not found.",
                    "properties.ipConfigurations[0].properties.subnet.id",
                    "InvalidResourceReference");
  if (existing.ok() && !existing->body["properties"].value("virtualMachine", Json::object()).empty() &&
      (existing->internal.value("vnet", "") != vnet->key ||
       existing->internal.value("subnet", "") != ToLower(subnet->second)))
    return Conflict("Network interface '" + id.name() + "' is attached to a VM; detach it before "
                    "moving it to another subnet.",
                    "properties.ipConfigurations", "NicAttachedToVm");
  ASSIGN_OR_RETURN(Ipv4Prefix pfx, SubnetPrefix(*subnet_json));
  ASSIGN_OR_RETURN(auto nics, NicsOfSubscription(id.subscription()));
  std::vector<Ipv4> taken;
  std::set<std::string> macs;
  for (auto& n : nics) {
    macs.insert(n.internal.value("mac", ""));
    if (n.key == id.Key() || n.internal.value("vnet", "") != vnet->key) continue;
    for (auto& c : n.body["properties"].value("ipConfigurations", Json::array())) {
      auto ip = ParseIpv4(c["properties"].value("privateIPAddress", ""), "");
      if (ip.ok()) taken.push_back(*ip);
    }
  }
  for (size_t i = 0; i < parsed.size(); ++i) {
    auto& c = parsed[i];
    std::string where = "properties.ipConfigurations[" + std::to_string(i) + "].properties.privateIPAddress";
    if (c.ip && !pfx.Contains(*c.ip)) {
      if (c.is_static)
        return InvalidArgument("Address " + c.ip->ToString() + " is not in subnet '" +
                                   subnet->second + "' (" + pfx.ToString() + ").",
                               where, "PrivateIPAddressNotInSubnet");
      c.ip.reset();  // the subnet's prefix changed since: allocate again
    }
    if (c.ip && IsReserved(pfx, *c.ip))
      return InvalidArgument("Address " + c.ip->ToString() + " is reserved in subnet '" +
                                 subnet->second + "' (network, gateway, two platform addresses, "
                                 "broadcast).",
                             where, "PrivateIPAddressInReservedRange");
    if (c.ip && std::find(taken.begin(), taken.end(), *c.ip) != taken.end())
      return InvalidArgument("Address " + c.ip->ToString() + " is already used in subnet '" +
                                 subnet->second + "'.",
                             where, "PrivateIPAddressInUse");
    if (c.ip) taken.push_back(*c.ip);
  }
  for (auto& c : parsed) {
    if (c.ip) continue;
    auto ip = NextFree(pfx, taken);
    if (!ip)
      return InvalidArgument("Subnet '" + subnet->second + "' (" + pfx.ToString() +
                                 ") has no free address left.",
                             "properties.ipConfigurations", "SubnetIsFull");
    c.ip = *ip;
    taken.push_back(*ip);
  }

  store::Record rec;
  if (existing.ok()) {
    rec = *existing;
    api::TouchSystemData(rec.body, caller, ctx_.clock->NowMs());
  } else {
    ASSIGN_OR_RETURN(uint32_t index, NextIndex("nic", 0xffffff));
    std::string mac;
    do {
      mac = "52:54:00:" + RandomHex(1) + ":" + RandomHex(1) + ":" + RandomHex(1);
    } while (macs.count(mac));
    rec.key = id.Key();
    rec.type = kNicType;
    rec.body = api::NewResourceBody(id, location, Json::object(), caller, ctx_.clock->NowMs());
    rec.body["type"] = "Stratus.Network/networkInterfaces";
    rec.body["properties"] = {{"resourceGuid", NewUuid()}, {"macAddress", ArmMac(mac)}};
    rec.internal = {{"index", index}, {"mac", mac}};
    ASSIGN_OR_RETURN(rec.internal["tap"], NicTap(rid_, index));
  }
  rec.body["tags"] = body.value("tags", rec.body.value("tags", Json::object()));
  Json out_configs = Json::array();
  for (auto& c : parsed)
    out_configs.push_back(
        {{"id", id.Child("ipConfigurations", c.name).ToString()},
         {"name", c.name},
         {"type", kIpConfigTypeName},
         {"properties",
          {{"privateIPAddress", c.ip->ToString()},
           {"privateIPAllocationMethod", c.is_static ? "Static" : "Dynamic"},
           {"privateIPAddressVersion", "IPv4"},
           {"subnet", {{"id", subnet_json->value("id", "")}}},
           {"primary", c.primary},
           {"provisioningState", "Succeeded"}}}});
  Json& props = rec.body["properties"];
  props["ipConfigurations"] = out_configs;
  props["enableIPForwarding"] = p.value("enableIPForwarding", props.value("enableIPForwarding", false));
  props["enableAcceleratedNetworking"] = false;
  props["dnsSettings"] = {{"dnsServers", Json::array()},
                          {"appliedDnsServers", Json::array()},
                          {"internalDomainNameSuffix",
                           DnsLabel(vnet->body.value("name", "")) + ".internal"}};
  props["provisioningState"] = "Succeeded";
  if (!props.contains("virtualMachine")) props["virtualMachine"] = nullptr;
  rec.internal["vnet"] = vnet->key;
  rec.internal["subnet"] = ToLower(subnet->second);
  if (existing.ok() && existing->body == rec.body && existing->internal == rec.internal)
    return Written{*existing, false};
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, cond));
  RETURN_IF_ERROR(ConvergeLocked(vnet->key));
  if (existing.ok() && existing->internal.value("vnet", "") != vnet->key)
    RETURN_IF_ERROR(ConvergeLocked(existing->internal.value("vnet", "")));
  return Written{rec, !existing.ok()};
}

Status NetworkService::DeleteNicLocked(const ResourceId& id, bool force) {
  auto rec = ctx_.store->Get(id.Key());
  if (!rec.ok()) return rec.status();
  const Json& vm = rec->body["properties"].value("virtualMachine", Json(nullptr));
  if (!force && vm.is_object() && !vm.value("id", "").empty())
    return Conflict("Network interface '" + id.name() + "' is used by VM '" + vm.value("id", "") +
                        "'; remove it from the VM first.",
                    id.ToString(), "NicInUse");
  RETURN_IF_ERROR(ctx_.store->Delete(rec->key));
  return ConvergeLocked(rec->internal.value("vnet", ""));
}

Status NetworkService::DeleteNic(const ResourceId& id, bool force) {
  std::lock_guard<std::mutex> l(mu_);
  return DeleteNicLocked(id, force);
}

// ---------------------------------------------------------------------------------------------
// The datapath

Result<VnetDatapath> NetworkService::Desired(const store::Record& vnet) {
  VnetDatapath d;
  d.name = vnet.body.value("name", "");
  ASSIGN_OR_RETURN(d.netns, VnetNamespace(rid_, vnet.internal.value("index", 0u)));
  d.dns_domain = DnsLabel(d.name) + ".internal";
  const Json& idx = vnet.internal["subnets"];
  for (auto& s : vnet.body["properties"].value("subnets", Json::array())) {
    SubnetDatapath sd;
    sd.name = s.value("name", "");
    uint32_t i = idx.value(ToLower(sd.name), 0u);
    ASSIGN_OR_RETURN(sd.bridge, SubnetBridge(rid_, i));
    ASSIGN_OR_RETURN(sd.veth_on_bridge, GatewayVethOnBridge(rid_, i));
    ASSIGN_OR_RETURN(sd.veth_in_router, GatewayVethInRouter(i));
    ASSIGN_OR_RETURN(sd.prefix, SubnetPrefix(s));
    sd.gateway = GatewayOf(sd.prefix);
    d.subnets.push_back(sd);
  }
  ASSIGN_OR_RETURN(ResourceId vid, ResourceId::Parse(vnet.body.value("id", "")));
  ASSIGN_OR_RETURN(auto nics, NicsOfSubscription(vid.subscription()));
  for (auto& n : nics) {
    if (n.internal.value("vnet", "") != vnet.key) continue;
    for (auto& c : n.body["properties"].value("ipConfigurations", Json::array())) {
      if (!c["properties"].value("primary", false)) continue;
      auto ip = ParseIpv4(c["properties"].value("privateIPAddress", ""), "");
      if (!ip.ok()) continue;
      d.hosts.push_back({n.internal.value("mac", ""), *ip,
                         n.internal.value("primaryForVm", false) ? n.internal.value("hostname", "")
                                                                 : ""});
    }
  }
  return d;
}

Status NetworkService::ConvergeLocked(const std::string& vnet_key) {
  if (vnet_key.empty()) return Status::Ok();
  auto vnet = ctx_.store->Get(vnet_key);
  if (!vnet.ok()) return Status::Ok();  // deleted: RemoveVnet or Start's sweep took it down
  ASSIGN_OR_RETURN(VnetDatapath d, Desired(*vnet));
  Status st = engine_->ApplyVnet(d);
  if (!st.ok())
    return Internal("The virtual network '" + d.name + "' was saved but its datapath could not "
                    "be updated (" + st.message() + "); stratusd retries at its next start.");
  return Status::Ok();
}

Status NetworkService::Start() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> keep;
  std::string after;
  while (true) {
    ASSIGN_OR_RETURN(store::Page page, ctx_.store->List("/subscriptions/", kVnetType, after, 500));
    for (auto& v : page.records) {
      auto d = Desired(v);
      if (!d.ok()) {
        spdlog::error("VNET {}: {}", v.key, d.status().ToString());
        continue;
      }
      keep.push_back(d->netns);
      Status st = engine_->ApplyVnet(*d);
      if (!st.ok()) spdlog::error("VNET {}: datapath not converged: {}", v.key, st.ToString());
    }
    if (page.next_key.empty()) break;
    after = page.next_key;
  }
  return engine_->Sweep(keep);
}

// ---------------------------------------------------------------------------------------------
// NicBindings

Result<std::vector<NicPlug>> NetworkService::Resolve(const std::vector<std::string>& nic_ids,
                                                     const std::string& vm_id) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<NicPlug> out;
  for (auto& text : nic_ids) {
    auto id = ResourceId::Parse(text);
    if (!id.ok() || api::TypeKey(*id) != kNicType)
      return InvalidArgument("'" + text + "' is not a network interface id.", "networkInterfaces",
                             "InvalidResourceReference");
    auto vm = ResourceId::Parse(vm_id);
    if (vm.ok() && !EqualsIgnoreCase(vm->subscription(), id->subscription()))
      return InvalidArgument("Network interface '" + text + "' is in another subscription.",
                             "networkInterfaces", "InvalidResourceReference");
    auto rec = ctx_.store->Get(id->Key());
    if (!rec.ok())
      return NotFound("Network interface '" + text + "' was not found.", text,
                      "InvalidResourceReference");
    const Json& p = rec->body["properties"];
    if (p.value("provisioningState", "") != "Succeeded")
      return Conflict("Network interface '" + id->name() + "' is not ready.", text, "NicNotReady");
    const Json& owner = p.value("virtualMachine", Json(nullptr));
    if (owner.is_object() && !EqualsIgnoreCase(owner.value("id", ""), vm_id))
      return Conflict("Network interface '" + id->name() + "' is used by VM '" +
                          owner.value("id", "") + "'.",
                      text, "NicInUse");
    auto vnet = ctx_.store->Get(rec->internal.value("vnet", ""));
    if (!vnet.ok()) return NotFound("The virtual network of NIC '" + id->name() + "' is gone.", text);
    const Json* subnet = FindSubnet(vnet->body, rec->internal.value("subnet", ""));
    if (!subnet) return NotFound("The subnet of NIC '" + id->name() + "' is gone.", text);
    ASSIGN_OR_RETURN(Ipv4Prefix pfx, SubnetPrefix(*subnet));
    uint32_t si = vnet->internal["subnets"].value(rec->internal.value("subnet", ""), 0u);
    NicPlug plug;
    plug.nic_id = rec->body.value("id", text);
    plug.mac = rec->internal.value("mac", "");
    ASSIGN_OR_RETURN(plug.bridge, SubnetBridge(rid_, si));
    plug.tap = rec->internal.value("tap", "");
    for (auto& c : p.value("ipConfigurations", Json::array())) {
      std::string a = c["properties"].value("privateIPAddress", "") + "/" + std::to_string(pfx.length);
      if (c["properties"].value("primary", false)) {
        plug.addresses.insert(plug.addresses.begin(), a);
      } else {
        plug.addresses.push_back(a);
      }
    }
    plug.gateway = GatewayOf(pfx).ToString();
    for (auto& s : vnet->body["properties"]["dhcpOptions"].value("dnsServers", Json::array()))
      plug.dns.push_back(s.get<std::string>());
    if (plug.dns.empty()) plug.dns.push_back(plug.gateway);
    plug.search = DnsLabel(vnet->body.value("name", "")) + ".internal";
    out.push_back(plug);
  }
  return out;
}

Status NetworkService::Bind(const std::string& nic_id, const std::string& vm_id, bool primary,
                            const std::string& hostname) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(ResourceId id, ResourceId::Parse(nic_id));
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  Json& p = rec.body["properties"];
  const Json owner = p.value("virtualMachine", Json(nullptr));
  if (owner.is_object() && !EqualsIgnoreCase(owner.value("id", ""), vm_id))
    return Conflict("Network interface '" + id.name() + "' is used by VM '" +
                        owner.value("id", "") + "'.",
                    nic_id, "NicInUse");
  Json want_vm = {{"id", vm_id}};
  if (owner == want_vm && p.value("primary", !primary) == primary &&
      rec.internal.value("hostname", "") == hostname)
    return Status::Ok();
  p["virtualMachine"] = want_vm;
  p["primary"] = primary;
  rec.internal["hostname"] = hostname;
  rec.internal["primaryForVm"] = primary;
  RETURN_IF_ERROR(ctx_.store->Put(rec).status());
  return ConvergeLocked(rec.internal.value("vnet", ""));
}

Status NetworkService::Unbind(const std::string& nic_id, const std::string& vm_id,
                              bool delete_nic) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(ResourceId id, ResourceId::Parse(nic_id));
  auto rec = ctx_.store->Get(id.Key());
  if (!rec.ok()) return Status::Ok();
  Json& p = rec->body["properties"];
  const Json owner = p.value("virtualMachine", Json(nullptr));
  if (!owner.is_object() || !EqualsIgnoreCase(owner.value("id", ""), vm_id)) return Status::Ok();
  if (delete_nic) return DeleteNicLocked(id, /*force=*/true);
  p["virtualMachine"] = nullptr;
  p.erase("primary");
  rec->internal.erase("hostname");
  rec->internal.erase("primaryForVm");
  RETURN_IF_ERROR(ctx_.store->Put(*rec).status());
  return ConvergeLocked(rec->internal.value("vnet", ""));
}

}  // namespace stratus::network
