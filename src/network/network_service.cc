#include "network/network_service.h"

#include <spdlog/spdlog.h>

#include <set>

#include "api/resource_util.h"
#include "core/uuid.h"
#include "network/kernel_names.h"
#include "network/network_internal.h"

namespace stratus::network {

using namespace internal;

namespace internal {

std::string DnsLabel(const std::string& name) {
  std::string out;
  for (char c : ToLower(name)) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  while (!out.empty() && out.front() == '-') out.erase(out.begin());
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 63) out.resize(63);
  return out.empty() ? "vnet" : out;
}

std::string ArmMac(const std::string& mac) {
  std::string out;
  for (char c : mac) out.push_back(c == ':' ? '-' : static_cast<char>(std::toupper(c)));
  return out;
}

Result<std::string> ParseMac(const Json& text, const std::string& field) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("'" + (text.is_string() ? text.get<std::string>() : text.dump()) +
                               "' is not a MAC address a NIC can have (" + why + ").",
                           field, "InvalidMacAddress");
  };
  if (!text.is_string()) return bad("six hex bytes, 52-54-00-AB-CD-EF");
  const std::string& t = text.get<std::string>();
  if (t.size() != 17) return bad("six hex bytes, 52-54-00-AB-CD-EF");
  std::string out;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (i % 3 == 2) {
      if (c != '-' && c != ':') return bad("six hex bytes, 52-54-00-AB-CD-EF");
      out.push_back(':');
    } else {
      if (!std::isxdigit(static_cast<unsigned char>(c))) return bad("six hex bytes, 52-54-00-AB-CD-EF");
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  int first = std::stoi(out.substr(0, 2), nullptr, 16);
  if (first & 1) return bad("a multicast address");
  if (out == "00:00:00:00:00:00") return bad("all zeros");
  if (out == "12:34:56:78:9a:bc") return bad("the gateways' address");
  return out;
}

Result<Ipv4Prefix> SubnetPrefix(const Json& subnet) {
  return ParseIpv4Prefix(subnet["properties"].value("addressPrefix", ""), "addressPrefix");
}

const Json* FindNamed(const Json& body, const char* path, const std::string& name) {
  const Json* list = JsonPath(body, path);
  if (!list || !list->is_array()) return nullptr;
  for (auto& c : *list)
    if (EqualsIgnoreCase(c.value("name", ""), name)) return &c;
  return nullptr;
}

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

Result<std::pair<std::string, Json>> TopLevel(const Json& body, const std::string& region) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      body, {"location", "tags", "properties", "id", "name", "type", "etag", "systemData"}, ""));
  ASSIGN_OR_RETURN(std::string location, api::ValidateLocation(body, region));
  RETURN_IF_ERROR(api::ValidateTags(body));
  Json p = body.value("properties", Json::object());
  if (!p.is_object()) return InvalidArgument("'properties' must be an object.", "properties");
  return std::make_pair(location, p);
}

TagContext TagsOf(const Json& vnet_body) {
  TagContext tags;
  tags.vnet_spaces = SpacesOf(vnet_body);
  for (auto& p : PeeredSpaces(vnet_body, true)) tags.vnet_spaces.push_back(p);
  // Health probes of load balancers come from the VNET's gateways.
  const Json* subnets = JsonPath(vnet_body, "properties.subnets");
  if (subnets && subnets->is_array())
    for (auto& s : *subnets) {
      auto p = SubnetPrefix(s);
      if (p.ok()) tags.load_balancer.push_back({GatewayOf(*p), 32});
    }
  return tags;
}

Result<Json> ChildNamed(const Json& children, const ResourceId& id, const std::string& what,
                        const std::string& parent_what) {
  for (auto& c : children)
    if (EqualsIgnoreCase(c.value("name", ""), id.name())) return c;
  return NotFound(what + " '" + id.name() + "' was not found in " + parent_what + " '" +
                      id.Parent().name() + "'.",
                  id.ToString(), "NotFound");
}

Result<std::string> ReferenceOf(const Json& parent, const std::string& member,
                                const std::string& type_key, const std::string& subscription,
                                const std::string& field) {
  if (!parent.contains(member) || parent[member].is_null()) return std::string();
  if (!parent[member].is_object() || !parent[member].contains("id") ||
      !parent[member]["id"].is_string())
    return InvalidArgument("'" + member + "' must be {\"id\": ...}.", field);
  std::string text = parent[member]["id"].get<std::string>();
  auto id = ResourceId::Parse(text);
  if (!id.ok() || api::TypeKey(*id) != type_key || id->types_and_names().size() != 1)
    return InvalidArgument("'" + text + "' is not a " + type_key + " id.", field,
                           "InvalidResourceReference");
  if (!EqualsIgnoreCase(id->subscription(), subscription))
    return InvalidArgument("'" + text + "' is in another subscription.", field,
                           "InvalidResourceReference");
  return id->Key();
}

}  // namespace internal

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
  return ListAll(kNicType, ResourceId::Subscription(sub).Key() + "/");
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
          "privateLinkServiceNetworkPolicies", "purpose", "defaultOutboundAccess"},
      where + ".properties"));
  if (p.contains("defaultOutboundAccess") && !p["defaultOutboundAccess"].is_boolean())
    return InvalidArgument("'defaultOutboundAccess' must be true or false.",
                           where + ".properties.defaultOutboundAccess");
  ASSIGN_OR_RETURN(std::string rt_key,
                   ReferenceOf(p, "routeTable", kRouteTableType, vnet.subscription(),
                               where + ".properties.routeTable.id"));
  std::string rt_id;
  if (!rt_key.empty()) {
    auto rt = ctx_.store->Get(rt_key);
    if (!rt.ok())
      return NotFound("Route table '" + p["routeTable"].value("id", "") + "' was not found.",
                      where + ".properties.routeTable.id", "InvalidResourceReference");
    rt_id = rt->body.value("id", "");
  }
  ASSIGN_OR_RETURN(std::string nsg_key,
                   ReferenceOf(p, "networkSecurityGroup", kNsgType, vnet.subscription(),
                               where + ".properties.networkSecurityGroup.id"));
  std::string nsg_id;
  if (!nsg_key.empty()) {
    auto nsg = ctx_.store->Get(nsg_key);
    if (!nsg.ok())
      return NotFound("Network security group '" + p["networkSecurityGroup"].value("id", "") +
                          "' was not found.",
                      where + ".properties.networkSecurityGroup.id", "InvalidResourceReference");
    nsg_id = nsg->body.value("id", "");
  }
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
  Json out = {{"id", sid.ToString()},
              {"name", name},
              {"type", kSubnetTypeName},
              {"properties", {{"addressPrefix", pfx.ToString()}, {"provisioningState", "Succeeded"}}}};
  if (!nsg_id.empty()) out["properties"]["networkSecurityGroup"] = {{"id", nsg_id}};
  if (!rt_id.empty()) out["properties"]["routeTable"] = {{"id", rt_id}};
  // Azure's "private subnet": false = its NICs without a public IP do not reach the internet.
  if (p.contains("defaultOutboundAccess"))
    out["properties"]["defaultOutboundAccess"] = p["defaultOutboundAccess"];
  return out;
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
  RETURN_IF_ERROR(CheckRouteTablesOfSubnets(subnets, id.Key(), id.name()));

  auto existing = ctx_.store->Get(id.Key());
  store::Record rec;
  if (existing.ok()) {
    RETURN_IF_ERROR(CheckSubnetsInUse(*existing, subnets));
    if (existing->body["properties"]["addressSpace"].value("addressPrefixes", Json::array()) !=
        spaces)
      RETURN_IF_ERROR(CheckPeeredSpaces(existing->key, space_pfx));
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
  if (!p.contains("virtualNetworkPeerings")) p["virtualNetworkPeerings"] = Json::array();
  p["enableDdosProtection"] = false;
  p["provisioningState"] = "Succeeded";
  bool same = existing.ok() && existing->body == rec.body && existing->internal == rec.internal;
  if (same) return Written{*existing, false};
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, cond));
  RETURN_IF_ERROR(ConvergeLocked(rec.key));
  if (existing.ok()) {
    // Peers route this VNET's spaces and see them in their VirtualNetwork tag; this VNET again
    // too, once they recorded its new spaces (its tables for their subnets' routes to its
    // appliances are made from their records).
    ASSIGN_OR_RETURN(auto vnets, AllVnets());
    std::set<std::string> refresh = PeersOf(rec.key, vnets);
    if (!refresh.empty()) refresh.insert(rec.key);
    RETURN_IF_ERROR(RefreshPeeringsLocked(refresh));
  }
  RETURN_IF_ERROR(ConvergeSecurityLocked());
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
  std::lock_guard<std::mutex> l(mu_);
  auto existing = ctx_.store->Get(id.Key());
  // Peerings change through their own resource; a VNET body may repeat the ones it has (as a
  // client does that read the VNET, changed something else and writes it back).
  if (p.contains("virtualNetworkPeerings")) {
    const Json& listed = p["virtualNetworkPeerings"];
    if (!listed.is_array())
      return InvalidArgument("'virtualNetworkPeerings' must be an array.",
                             "properties.virtualNetworkPeerings");
    for (auto& e : listed) {
      bool known = existing.ok() && e.is_object() &&
                   FindPeering(existing->body, e.value("name", "")) != nullptr;
      if (!known)
        return InvalidArgument("Peerings are created and deleted as "
                               ".../virtualNetworks/{vnet}/virtualNetworkPeerings/{name}.",
                               "properties.virtualNetworkPeerings", "InvalidRequestFormat");
    }
  }
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

Status NetworkService::DeleteVnet(const ResourceId& id, bool force) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(id.Key()));
  RETURN_IF_ERROR(CheckSubnetsInUse(vnet, Json::array()));
  const Json* peerings = JsonPath(vnet.body, "properties.virtualNetworkPeerings");
  if (!force && peerings && peerings->is_array() && !peerings->empty())
    return Conflict("Virtual network '" + id.name() + "' has " +
                        std::to_string(peerings->size()) +
                        " peering(s); delete them before the virtual network.",
                    id.ToString(), "InUseVirtualNetworkCannotBeDeleted");
  ASSIGN_OR_RETURN(auto vnets, AllVnets());
  std::set<std::string> peers = PeersOf(vnet.key, vnets);
  ASSIGN_OR_RETURN(std::string ns, VnetNamespace(rid_, vnet.internal.value("index", 0u)));
  RETURN_IF_ERROR(ctx_.store->Delete(vnet.key));
  // The record goes first: if removing the datapath fails, Start() sweeps what is left.
  Status st = engine_->RemoveVnet(ns);
  if (!st.ok()) spdlog::warn("removing the datapath of VNET {} failed: {}", id.ToString(), st.ToString());
  st = RefreshPeeringsLocked(peers);  // they become Disconnected
  if (!st.ok()) spdlog::warn("peers of deleted VNET {}: {}", id.ToString(), st.ToString());
  st = ConvergeSecurityLocked();
  if (!st.ok()) spdlog::warn("security rules after deleting VNET {}: {}", id.ToString(), st.ToString());
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
  return ChildNamed(VnetView(vnet)["properties"]["subnets"], id, "Subnet", "virtual network");
}

Result<Json> NetworkService::SubnetList(const ResourceId& vnet_id) {
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(vnet_id.Key()));
  return Json{{"value", VnetView(vnet)["properties"]["subnets"]}};
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
    RETURN_IF_ERROR(SubnetRoutesDatapath(vnet, s, i, sd));
    d.subnets.push_back(sd);
  }
  RETURN_IF_ERROR(PeeringsDatapath(vnet, d));
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
  if (edge_ && !edge_->netns.empty()) {
    uint32_t index = vnet.internal.value("index", 0u);
    ASSIGN_OR_RETURN(d.transit, TransitAddress(index));
    d.uplink.edge_netns = edge_->netns;
    d.uplink.veth = kUplinkVethInRouter;
    ASSIGN_OR_RETURN(d.uplink.edge_veth, UplinkVethInEdge(index));
    ASSIGN_OR_RETURN(d.uplink.nats, NatsOf(vnet, nics));
    for (auto& s : d.subnets)
      for (auto& sj : vnet.body["properties"].value("subnets", Json::array()))
        if (sj.value("name", "") == s.name &&
            !sj["properties"].value("defaultOutboundAccess", true))
          d.uplink.private_subnets.push_back(s.prefix);
  }
  if (lb_) {
    ASSIGN_OR_RETURN(VnetLoadBalancing lbs,
                     lb_->DatapathOf(vnet, nics, edge_ && !edge_->netns.empty()));
    d.lb = std::move(lbs.lb);
    for (auto& s : d.subnets) {
      auto it = lbs.subnet_frontends.find(ToLower(s.name));
      if (it != lbs.subnet_frontends.end()) s.frontends = it->second;
    }
    if (!d.uplink.edge_netns.empty()) d.uplink.routed = std::move(lbs.routed);
  }
  return d;
}

Status NetworkService::ConvergeLoadBalancingLocked(const std::string& vnet_key) {
  auto vnet = ctx_.store->Get(vnet_key);
  if (!vnet.ok()) return Status::Ok();  // deleted meanwhile
  ASSIGN_OR_RETURN(VnetDatapath d, Desired(*vnet));
  return engine_->ApplyLoadBalancing(d.netns, d.lb);
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
  // The edge before the VNETs (their uplink links end in it).
  if (edge_ && !edge_->netns.empty()) {
    RETURN_IF_ERROR(engine_->ApplyEdge(*edge_));
    RETURN_IF_ERROR(ReconcilePublicIpsLocked());
  } else {
    RETURN_IF_ERROR(engine_->RemoveEdge());
  }
  std::vector<std::string> keep;
  ASSIGN_OR_RETURN(auto vnets, AllVnets());
  // Twice for VNETs with peerings: a peering link is made once both namespaces exist, so after
  // a reboot the first of two peers is applied before its peer's namespace is there.
  for (int pass = 0; pass < 2; ++pass)
    for (auto& v : vnets) {
      auto d = Desired(v);
      if (!d.ok()) {
        spdlog::error("VNET {}: {}", v.key, d.status().ToString());
        continue;
      }
      if (pass == 1 && d->peerings.empty()) continue;
      if (pass == 0) keep.push_back(d->netns);
      Status st = engine_->ApplyVnet(*d);
      if (!st.ok()) spdlog::error("VNET {}: datapath not converged: {}", v.key, st.ToString());
    }
  RETURN_IF_ERROR(engine_->Sweep(keep));
  return ConvergeSecurityLocked();
}

}  // namespace stratus::network

