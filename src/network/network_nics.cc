#include "network/network_service.h"

#include <algorithm>
#include <set>

#include "api/resource_util.h"
#include "core/crash_point.h"
#include "core/uuid.h"
#include "network/kernel_names.h"
#include "network/network_internal.h"

namespace stratus::network {

using namespace internal;

// ---------------------------------------------------------------------------------------------
// NICs

Result<NetworkService::Written> NetworkService::WriteNic(const ResourceId& id, const Json& body,
                                                        const std::string& caller,
                                                        const store::WriteCondition& cond,
                                                        bool validate_only) {
  ASSIGN_OR_RETURN(auto top, TopLevel(body, ctx_.region));
  auto& [location, p] = top;
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      p, {"ipConfigurations", "enableIPForwarding", "enableAcceleratedNetworking",
          "networkSecurityGroup", "dnsSettings", "macAddress", "virtualMachine", "primary",
          "provisioningState", "resourceGuid", "nicType"},
      "properties"));
  ASSIGN_OR_RETURN(std::string nsg_key,
                   ReferenceOf(p, "networkSecurityGroup", kNsgType, id.subscription(),
                               "properties.networkSecurityGroup.id"));
  Json nsg_ref = nullptr;
  if (!nsg_key.empty()) {
    auto nsg = ctx_.store->Get(nsg_key);
    if (!nsg.ok())
      return NotFound("Network security group '" + p["networkSecurityGroup"].value("id", "") +
                          "' was not found.",
                      "properties.networkSecurityGroup.id", "InvalidResourceReference");
    nsg_ref = {{"id", nsg->body.value("id", "")}};
  }
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
    std::optional<Ipv4> wish;  // Dynamic with an address given: that one if it is free
    std::string public_ip;  // key of its public IP, "" for none
    NicLbReferences lb;     // its load balancers' pools and NAT rules
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
        cp,
        {"subnet", "privateIPAddress", "privateIPAllocationMethod", "privateIPAddressVersion",
         "primary", "publicIPAddress", "provisioningState", "loadBalancerBackendAddressPools",
         "loadBalancerInboundNatRules"},
        where + ".properties"));
    cfg.lb.config = cfg.name;
    cfg.lb.field = where + ".properties";
    for (auto [member, out] : {std::pair{"loadBalancerBackendAddressPools", &cfg.lb.pools},
                               {"loadBalancerInboundNatRules", &cfg.lb.nat_rules}}) {
      if (!cp.contains(member) || cp[member].is_null()) continue;
      const std::string f = where + ".properties." + member;
      if (!cp[member].is_array())
        return InvalidArgument("'" + f + "' must be a list of {\"id\": ...}.", f);
      for (auto& r : cp[member]) {
        if (!r.is_object() || !r.value("id", Json(nullptr)).is_string())
          return InvalidArgument("'" + f + "' must be a list of {\"id\": ...}.", f);
        out->push_back(r["id"].get<std::string>());
      }
    }
    if ((!cfg.lb.pools.empty() || !cfg.lb.nat_rules.empty()) && !lb_)
      return InvalidArgument("This region has no load balancers.", cfg.lb.field,
                             "FeatureNotAvailable");
    ASSIGN_OR_RETURN(cfg.public_ip,
                     ReferenceOf(cp, "publicIPAddress", kPublicIpType, id.subscription(),
                                 where + ".properties.publicIPAddress.id"));
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
    if (!cfg.is_static && !cfg.ip && !address.empty()) {
      auto ip = ParseIpv4(address, "");
      if (ip.ok()) cfg.wish = *ip;
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
  // A MAC asked for (a failed-over VM keeps its own): only when the NIC is made; unique in its
  // VNET (its layer-2 domains), unicast, not the gateways'.
  std::string wanted_mac;
  if (p.contains("macAddress") && !p["macAddress"].is_null()) {
    ASSIGN_OR_RETURN(wanted_mac, ParseMac(p["macAddress"], "properties.macAddress"));
    if (existing.ok() && wanted_mac != existing->internal.value("mac", ""))
      return InvalidArgument("A network interface keeps its MAC address for life; '" +
                                 p["macAddress"].dump() + "' is not " +
                                 existing->body["properties"].value("macAddress", "") + ".",
                             "properties.macAddress", "PropertyChangeNotAllowed");
  }
  ASSIGN_OR_RETURN(Ipv4Prefix pfx, SubnetPrefix(*subnet_json));
  ASSIGN_OR_RETURN(auto nics, NicsOfSubscription(id.subscription()));
  // The MAC that must be free in the VNET: one asked for at creation, or the NIC's own when it
  // moves to another VNET (it may have been asked for).
  std::string check_mac = wanted_mac;
  if (existing.ok())
    check_mac = existing->internal.value("vnet", "") != vnet->key
                    ? existing->internal.value("mac", "")
                    : "";
  std::vector<Ipv4> taken;
  std::set<std::string> macs;
  for (auto& n : nics) {
    macs.insert(n.internal.value("mac", ""));
    if (!check_mac.empty() && n.key != id.Key() &&
        n.internal.value("vnet", "") == vnet->key && n.internal.value("mac", "") == check_mac)
      return Conflict("MAC address " + ArmMac(check_mac) + " is used by network interface '" +
                          n.body.value("id", "") + "' in the same virtual network.",
                      "properties.macAddress", "MacAddressInUse");
    if (n.key == id.Key() || n.internal.value("vnet", "") != vnet->key) continue;
    for (auto& c : n.body["properties"].value("ipConfigurations", Json::array())) {
      auto ip = ParseIpv4(c["properties"].value("privateIPAddress", ""), "");
      if (ip.ok()) taken.push_back(*ip);
    }
  }
  // Internal load balancers' frontends hold addresses of the VNET too.
  std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>> lb_refs;
  if (lb_) {
    ASSIGN_OR_RETURN(auto fronts, lb_->FrontendAddresses(vnet->key));
    taken.insert(taken.end(), fronts.begin(), fronts.end());
    std::vector<NicLbReferences> refs;
    for (auto& c : parsed)
      if (!c.lb.pools.empty() || !c.lb.nat_rules.empty()) refs.push_back(c.lb);
    if (!refs.empty()) {
      ASSIGN_OR_RETURN(lb_refs, lb_->CheckNicReferences(id, vnet->key, refs));
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
    if (c.wish && pfx.Contains(*c.wish) && !IsReserved(pfx, *c.wish) &&
        std::find(taken.begin(), taken.end(), *c.wish) == taken.end()) {
      c.ip = c.wish;
      taken.push_back(*c.wish);
      continue;
    }
    auto ip = NextFree(pfx, taken);
    if (!ip)
      return InvalidArgument("Subnet '" + subnet->second + "' (" + pfx.ToString() +
                                 ") has no free address left.",
                             "properties.ipConfigurations", "SubnetIsFull");
    c.ip = *ip;
    taken.push_back(*ip);
  }

  // Public IPs: checked, and Dynamic ones given their address, before the NIC is written (a
  // crash in between leaves an address that Start gives back).
  Json public_ips = Json::object();
  for (auto& c : parsed)
    if (!c.public_ip.empty()) public_ips[c.name] = c.public_ip;
  Json public_before =
      existing.ok() ? existing->internal.value("publicIps", Json::object()) : Json::object();
  std::vector<store::Record> pip_writes;
  if (public_ips != public_before) {
    ASSIGN_OR_RETURN(pip_writes, AssociatePublicIpsLocked(id, public_ips, public_before,
                                                          "properties.ipConfigurations"));
  }
  if (validate_only) return Written{existing.ok() ? *existing : store::Record{}, !existing.ok()};

  store::Record rec;
  if (existing.ok()) {
    rec = *existing;
    api::TouchSystemData(rec.body, caller, ctx_.clock->NowMs());
  } else {
    ASSIGN_OR_RETURN(uint32_t index, NextIndex("nic", 0xffffff));
    std::string mac = wanted_mac;
    while (mac.empty() || (wanted_mac.empty() && macs.count(mac)))
      mac = "52:54:00:" + RandomHex(1) + ":" + RandomHex(1) + ":" + RandomHex(1);
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
  for (auto& c : parsed) {
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
    if (!c.public_ip.empty()) {
      auto pip = ctx_.store->Get(c.public_ip);
      if (pip.ok())
        out_configs.back()["properties"]["publicIPAddress"] = {{"id", pip->body.value("id", "")}};
    }
    if (auto it = lb_refs.find(c.name); it != lb_refs.end()) {
      Json& cp = out_configs.back()["properties"];
      for (auto [member, ids] : {std::pair{"loadBalancerBackendAddressPools", &it->second.first},
                                 {"loadBalancerInboundNatRules", &it->second.second}}) {
        if (ids->empty()) continue;
        cp[member] = Json::array();
        for (auto& ref : *ids) cp[member].push_back({{"id", ref}});
      }
    }
  }
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
  rec.internal["nsg"] = nsg_key;
  rec.internal["publicIps"] = public_ips;
  if (nsg_ref.is_null()) {
    props.erase("networkSecurityGroup");
  } else {
    props["networkSecurityGroup"] = nsg_ref;
  }
  if (existing.ok() && existing->body == rec.body && existing->internal == rec.internal)
    return Written{*existing, false};
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, cond));
  CrashPoint("network.nic-written");  // the record ahead of the host: Start converges it
  // The public IPs after the NIC: a failed write takes and frees nothing; a crash in between
  // leaves a NIC whose public IP has no address yet, which Start gives it.
  for (auto& pip : pip_writes) RETURN_IF_ERROR(ctx_.store->Put(pip).status());
  // The VNET it left first (a public IP's route moves from that VNET's link to the new one).
  if (existing.ok() && existing->internal.value("vnet", "") != vnet->key)
    RETURN_IF_ERROR(ConvergeLocked(existing->internal.value("vnet", "")));
  RETURN_IF_ERROR(ConvergeLocked(vnet->key));
  RETURN_IF_ERROR(ConvergeSecurityLocked());
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
  ASSIGN_OR_RETURN(auto pip_writes,
                   AssociatePublicIpsLocked(id, Json::object(),
                                            rec->internal.value("publicIps", Json::object()), ""));
  for (auto& pip : pip_writes) RETURN_IF_ERROR(ctx_.store->Put(pip).status());
  RETURN_IF_ERROR(ConvergeLocked(rec->internal.value("vnet", "")));
  return ConvergeSecurityLocked();
}

Status NetworkService::DeleteNic(const ResourceId& id, bool force) {
  std::lock_guard<std::mutex> l(mu_);
  return DeleteNicLocked(id, force);
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

Result<std::vector<NicLayout>> NetworkService::Layouts(const std::vector<std::string>& nic_ids,
                                                       std::vector<std::string>* missing) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<NicLayout> out;
  for (size_t i = 0; i < nic_ids.size(); ++i) {
    const std::string& text = nic_ids[i];
    auto id = ResourceId::Parse(text);
    auto rec = id.ok() ? ctx_.store->Get(id->Key()) : Result<store::Record>(id.status());
    if (!rec.ok()) {
      if (missing) {
        missing->push_back(text);
        continue;
      }
      return NotFound("Network interface '" + text + "' was not found.", text,
                      "InvalidResourceReference");
    }
    const Json& p = rec->body["properties"];
    NicLayout n;
    n.id = rec->body.value("id", text);
    n.name = rec->body.value("name", id->name());
    n.primary = i == 0;
    n.mac = p.value("macAddress", "");
    n.ip_forwarding = p.value("enableIPForwarding", false);
    if (p.contains("networkSecurityGroup") && p["networkSecurityGroup"].is_object())
      n.nsg_id = p["networkSecurityGroup"].value("id", "");
    const Json pips = rec->internal.value("publicIps", Json::object());
    for (auto& c : p.value("ipConfigurations", Json::array())) {
      const Json& cp = c["properties"];
      IpConfigLayout lc;
      lc.name = c.value("name", "");
      lc.primary = cp.value("primary", false);
      lc.subnet_id = cp["subnet"].value("id", "");
      lc.private_ip = cp.value("privateIPAddress", "");
      lc.private_ip_method = cp.value("privateIPAllocationMethod", "Dynamic");
      if (pips.is_object() && pips.contains(lc.name)) {
        auto pip = ctx_.store->Get(pips[lc.name].get<std::string>());
        if (pip.ok()) {
          lc.public_ip_id = pip->body.value("id", "");
          lc.public_ip_address = pip->internal.value("address", "");
          lc.public_ip_method = pip->body["properties"].value("publicIPAllocationMethod", "");
          lc.public_ip_sku = pip->body["sku"].value("name", "");
        }
      }
      n.ip_configs.push_back(std::move(lc));
    }
    out.push_back(std::move(n));
  }
  return out;
}

Json NetworkService::VnetLayouts(const std::vector<std::string>& subnet_ids) {
  std::lock_guard<std::mutex> l(mu_);
  Json out = Json::array();
  std::set<std::string> seen;
  for (auto& sid : subnet_ids) {
    auto id = ResourceId::Parse(sid);
    if (!id.ok() || id->types_and_names().size() < 2) continue;
    ResourceId vnet_id = id->Parent();
    if (!seen.insert(vnet_id.Key()).second) continue;
    auto vnet = ctx_.store->Get(vnet_id.Key());
    if (!vnet.ok()) continue;
    const Json& p = vnet->body["properties"];
    Json subnets = Json::array();
    for (auto& s : p.value("subnets", Json::array()))
      subnets.push_back({{"name", s.value("name", "")},
                         {"addressPrefix", s["properties"].value("addressPrefix", "")}});
    out.push_back({{"id", vnet->body.value("id", "")},
                   {"name", vnet->body.value("name", "")},
                   {"addressPrefixes", p["addressSpace"].value("addressPrefixes", Json::array())},
                   {"dnsServers", p["dhcpOptions"].value("dnsServers", Json::array())},
                   {"subnets", subnets}});
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
