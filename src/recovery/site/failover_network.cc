#include "recovery/site/failover_network.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <set>

#include "api/resource_util.h"
#include "compute/vm_service.h"
#include "compute/vm_sizes.h"
#include "network/ipv4.h"
#include "network/nic_layout.h"
#include "recovery/service/records.h"
#include "recovery/service/restore_network.h"

namespace stratus::recovery::site {

using api::ApiRequest;
using api::ApiResponse;

namespace {

constexpr char kVnetFullType[] = "Stratus.Network/virtualNetworks";

bool IsVnet(const ResourceId& id) { return EqualsIgnoreCase(id.FullType(), kVnetFullType); }

// The member `key` of `o` as a string ("" when absent or not a string).
std::string Text(const Json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The isolated copy of source VNET `name` a test failover makes.
std::string TestNetworkName(const std::string& name) { return name.substr(0, 59) + "-test"; }

// Its name when `<name>-test` is the copy of another source VNET (one of the same name in
// another resource group): a short hash of the source's id added.
std::string TestNetworkName(const std::string& name, const std::string& source_id) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (char c : ToLower(source_id)) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", h);
  return name.substr(0, 50) + "-test-" + std::string(hex, 8);
}

// Tag `key` of a resource body ("" when the body has no tags object: tags may be null).
std::string TagOf(const Json& body, const char* key) {
  auto it = body.find("tags");
  if (it == body.end() || !it->is_object()) return "";
  return Text(*it, key);
}

// The override of NIC `nic_id` in an item's vmNics, or an empty object.
Json OverrideOf(const Json& vm_nics, const std::string& nic_id) {
  if (vm_nics.is_array())
    for (auto& o : vm_nics)
      if (o.is_object() && EqualsIgnoreCase(Text(o, "nicId"), nic_id)) return o;
  return Json::object();
}

}  // namespace

// ---------------------------------------------------------------- network mappings

const api::Shape& FailoverNetwork::MappingShape() {
  using api::Shape;
  static const Shape s = Shape::Resource(Shape::Object({{"primaryNetworkId", Shape::String()},
                                                        {"recoveryNetworkId", Shape::String()},
                                                        {"testNetworkId", Shape::String()}}));
  return s;
}

Result<ApiResponse> FailoverNetwork::PutMapping(const ApiRequest& req, const ResourceId& id) {
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      req.body, {"properties", "name", "id", "type", "location", "etag", "systemData"}, ""));
  Json props = req.body.value("properties", Json::object());
  // What a GET shows besides the input is taken and dropped (a GET-modify-PUT works).
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      props,
      {"primaryNetworkId", "recoveryNetworkId", "testNetworkId", "primaryNetworkFriendlyName",
       "recoveryNetworkFriendlyName", "testNetworkFriendlyName", "primaryRegion", "state",
       "provisioningState"},
      "properties"));
  const std::string primary = Text(props, "primaryNetworkId");
  if (primary.empty())
    return InvalidArgument("'properties.primaryNetworkId' is required: the virtual network of the "
                           "source region whose NICs the mapping places.",
                           "properties.primaryNetworkId", "MissingParameter");
  auto pid = ResourceId::Parse(primary);
  // (The source region's subscription is its own: only the id's shape is checked.)
  if (!pid.ok() || !IsVnet(*pid))
    return InvalidArgument("'properties.primaryNetworkId' must be the id of a virtual network of "
                           "the source region.",
                           "properties.primaryNetworkId", "InvalidResourceId");
  auto here = [&](const char* member, bool required) -> Result<std::string> {
    const std::string field = std::string("properties.") + member;
    std::string text = Text(props, member);
    if (text.empty()) {
      if (required)
        return InvalidArgument("'" + field + "' is required: a virtual network of region '" +
                                   ctx_.region + "'.",
                               field, "MissingParameter");
      return std::string();
    }
    auto tid = ResourceId::Parse(text);
    if (!tid.ok() || !IsVnet(*tid) || !EqualsIgnoreCase(tid->subscription(), id.subscription()))
      return InvalidArgument("'" + field + "' must be the id of a virtual network of this region "
                             "and subscription.",
                             field, "InvalidResourceId");
    auto rec = ctx_.store->Get(tid->Key());
    if (!rec.ok())
      return NotFound("Virtual network '" + text + "' was not found in region '" + ctx_.region +
                          "'.",
                      field, "InvalidResourceReference");
    return rec->body.value("id", text);
  };
  ASSIGN_OR_RETURN(std::string recovery, here("recoveryNetworkId", true));
  ASSIGN_OR_RETURN(std::string test, here("testNetworkId", false));
  if (!test.empty() && EqualsIgnoreCase(test, recovery))
    return InvalidArgument("A test failover runs beside the real VMs' network, isolated from it: "
                           "give another test network (or none: each test failover then makes "
                           "an isolated copy of the source network).",
                           "properties.testNetworkId", "InvalidTestNetwork");
  ASSIGN_OR_RETURN(auto all, service::ListAll(ctx_.store,
                                              id.Parent().Key() + "/replicationnetworkmappings/",
                                              kReplNetMappingType));
  for (auto& r : all)
    if (r.key != id.Key() &&
        EqualsIgnoreCase(r.body["properties"].value("primaryNetworkId", ""), primary))
      return Conflict("Network '" + primary + "' is mapped already, by '" + r.body.value("id", "") +
                          "'.",
                      "properties.primaryNetworkId", "NetworkMappingExists");
  auto existing = ctx_.store->Get(id.Key());
  store::Record rec =
      api::RecordToWrite(existing, id, ctx_.region, req.caller, ctx_.clock->NowMs());
  Json p = {{"primaryNetworkId", primary},
            {"primaryNetworkFriendlyName", pid->name()},
            {"recoveryNetworkId", recovery},
            {"recoveryNetworkFriendlyName", ResourceId::Parse(recovery)->name()},
            {"state", "Paired"},
            {"provisioningState", "Succeeded"}};
  if (!test.empty()) {
    p["testNetworkId"] = test;
    p["testNetworkFriendlyName"] = ResourceId::Parse(test)->name();
  }
  rec.body["properties"] = p;
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, api::ConditionFromHeaders(req)));
  return api::ResourceResponse(rec, existing.ok() ? 200 : 201);
}

Result<ApiResponse> FailoverNetwork::DeleteMapping(const ApiRequest&, const ResourceId& id) {
  auto rec = ctx_.store->Get(id.Key());
  if (!rec.ok()) return ApiResponse::NoContent(204);
  RETURN_IF_ERROR(ctx_.store->Delete(id.Key()));
  return ApiResponse::NoContent(200);
}

Json FailoverNetwork::Mappings(const std::string& vault_key) const {
  Json out = Json::array();
  auto all = service::ListAll(ctx_.store, vault_key + "/replicationnetworkmappings/",
                              kReplNetMappingType);
  if (all.ok())
    for (auto& r : *all) out.push_back(r.body);
  return out;
}

// ---------------------------------------------------------------- per-item NIC settings

Result<Json> FailoverNetwork::ParseVmNics(const Json& vm_nics, const std::string& sub) const {
  if (vm_nics.is_null()) return Json::array();
  if (!vm_nics.is_array())
    return InvalidArgument("'properties.vmNics' must be a list.", "properties.vmNics");
  Json out = Json::array();
  std::set<std::string> seen;
  for (size_t i = 0; i < vm_nics.size(); ++i) {
    const std::string where = "properties.vmNics[" + std::to_string(i) + "]";
    const Json& n = vm_nics[i];
    if (!n.is_object()) return InvalidArgument("Each of vmNics must be an object.", where);
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        n,
        {"nicId", "recoveryVMNetworkId", "recoveryVMSubnetName", "replicaNicStaticIPAddress",
         "recoveryPublicIpAddressId", "recoveryNetworkSecurityGroupId", "tfoVMNetworkId",
         "tfoVMSubnetName", "tfoIPAddress"},
        where));
    for (auto& [k, v] : n.items())
      if (!v.is_string())
        return InvalidArgument("'" + k + "' must be a string.", where + "." + k);
    auto nic = ResourceId::Parse(Text(n, "nicId"));
    if (!nic.ok() || !EqualsIgnoreCase(nic->FullType(), "Stratus.Network/networkInterfaces"))
      return InvalidArgument("'nicId' must be the id of one of the VM's network interfaces in the "
                             "source region.",
                             where + ".nicId", "InvalidResourceId");
    if (!seen.insert(nic->Key()).second)
      return InvalidArgument("Network interface '" + nic->ToString() + "' is listed twice.",
                             where + ".nicId");
    Json kept = {{"nicId", Text(n, "nicId")}};
    // A reference to a resource of this region: it must exist (as stored, its case).
    auto ref = [&](const char* member, const char* full_type, const char* what) -> Status {
      std::string text = Text(n, member);
      if (text.empty()) return Status::Ok();
      const std::string field = where + "." + member;
      auto rid = ResourceId::Parse(text);
      if (!rid.ok() || !EqualsIgnoreCase(rid->FullType(), full_type) ||
          !EqualsIgnoreCase(rid->subscription(), sub))
        return InvalidArgument("'" + std::string(member) + "' must be the id of a " + what +
                                   " of this region and subscription.",
                               field, "InvalidResourceId");
      auto rec = ctx_.store->Get(rid->Key());
      if (!rec.ok())
        return NotFound(std::string(what) + " '" + text + "' was not found in region '" +
                            ctx_.region + "'.",
                        field, "InvalidResourceReference");
      kept[member] = rec->body.value("id", text);
      return Status::Ok();
    };
    RETURN_IF_ERROR(ref("recoveryVMNetworkId", kVnetFullType, "virtual network"));
    RETURN_IF_ERROR(ref("tfoVMNetworkId", kVnetFullType, "virtual network"));
    RETURN_IF_ERROR(
        ref("recoveryPublicIpAddressId", "Stratus.Network/publicIPAddresses", "public IP address"));
    RETURN_IF_ERROR(ref("recoveryNetworkSecurityGroupId", "Stratus.Network/networkSecurityGroups",
                        "network security group"));
    for (const char* member : {"recoveryVMSubnetName", "tfoVMSubnetName"}) {
      std::string text = Text(n, member);
      if (text.empty()) continue;
      RETURN_IF_ERROR(ValidateResourceName(text, "subnet", 80));
      kept[member] = text;
    }
    // The subnet named in a network named: it must be one of its subnets.
    for (auto [net, subnet] : {std::pair{"recoveryVMNetworkId", "recoveryVMSubnetName"},
                               std::pair{"tfoVMNetworkId", "tfoVMSubnetName"}}) {
      if (!kept.contains(net) || !kept.contains(subnet)) continue;
      auto vid = ResourceId::Parse(kept[net].get<std::string>());
      auto list = networks_ ? networks_->SubnetList(*vid) : Result<Json>(Json::object());
      bool found = false;
      if (list.ok())
        for (auto& s : list->value("value", Json::array()))
          found = found || EqualsIgnoreCase(s.value("name", ""), kept[subnet].get<std::string>());
      if (!found)
        return NotFound("Virtual network '" + vid->name() + "' has no subnet '" +
                            kept[subnet].get<std::string>() + "'.",
                        where + "." + subnet, "InvalidResourceReference");
    }
    if (kept.contains("tfoVMNetworkId") && kept.contains("recoveryVMNetworkId") &&
        EqualsIgnoreCase(kept["tfoVMNetworkId"].get<std::string>(),
                         kept["recoveryVMNetworkId"].get<std::string>()))
      return InvalidArgument("A drill runs isolated from the recovery network: give the NIC "
                             "another test network (or none: an isolated copy is made).",
                             where + ".tfoVMNetworkId", "InvalidTestNetwork");
    for (const char* member : {"replicaNicStaticIPAddress", "tfoIPAddress"}) {
      std::string text = Text(n, member);
      if (text.empty()) continue;
      ASSIGN_OR_RETURN(network::Ipv4 ip, network::ParseIpv4(text, where + "." + member));
      kept[member] = ip.ToString();
    }
    out.push_back(kept);
  }
  return out;
}

// ---------------------------------------------------------------- what each NIC becomes

Json FailoverNetwork::Resolve(const store::Record& item, const Json& cfg, bool test,
                              const std::string& rg) const {
  Json out = Json::array();
  auto layouts = network::NicLayoutsFromJson(cfg.value("networkInterfaces", Json::array()));
  auto item_id = ResourceId::Parse(item.body.value("id", ""));
  if (!layouts.ok() || !item_id.ok()) return out;
  const std::string vault_key = item_id->Parent().Key();
  const Json overrides = item.body["properties"].value("vmNics", Json::array());
  const Json mappings = Mappings(vault_key);
  for (auto& n : *layouts) {
    Json r = {{"nicId", n.id}, {"primary", n.primary}, {"macAddress", n.mac}};
    const network::IpConfigLayout* pc = nullptr;
    for (auto& c : n.ip_configs)
      if (!pc || c.primary) pc = &c;
    if (!pc) {
      r["networkId"] = nullptr;
      r["from"] = "None";
      r["reason"] = "Network interface " + n.name + " was recorded without IP configurations.";
      out.push_back(r);
      continue;
    }
    auto sid = ResourceId::Parse(pc->subnet_id);
    const std::string source_vnet = sid.ok() ? sid->Parent().ToString() : "";
    const std::string source_subnet = sid.ok() ? sid->name() : "";
    r["sourceNetworkId"] = source_vnet;
    r["sourceSubnetName"] = source_subnet;
    r["privateIPAddress"] = pc->private_ip;
    const Json o = OverrideOf(overrides, n.id);
    Json m = nullptr;  // the mapping of the NIC's source VNET
    for (auto& mapping : mappings)
      if (EqualsIgnoreCase(mapping["properties"].value("primaryNetworkId", ""), source_vnet))
        m = mapping;
    std::string net, subnet, ip, from;
    if (test) {
      subnet = Text(o, "tfoVMSubnetName");
      ip = Text(o, "tfoIPAddress");
      if (!Text(o, "tfoVMNetworkId").empty()) {
        net = Text(o, "tfoVMNetworkId");
        from = "Item";
      } else if (m.is_object() && !Text(m["properties"], "testNetworkId").empty()) {
        net = Text(m["properties"], "testNetworkId");
        from = "NetworkMapping";
      } else {
        // An isolated copy of the source network, in the test's resource group.
        r["isolated"] = true;
        from = "TestNetwork";
        if (!rg.empty() && sid.ok())
          net = ResourceId::Resource(item_id->subscription(), rg, "Stratus.Network",
                                     "virtualNetworks", TestNetworkName(sid->Parent().name()))
                    .ToString();
        subnet = source_subnet;
      }
    } else {
      subnet = Text(o, "recoveryVMSubnetName");
      ip = Text(o, "replicaNicStaticIPAddress");
      if (!Text(o, "recoveryPublicIpAddressId").empty())
        r["publicIPAddressId"] = Text(o, "recoveryPublicIpAddressId");
      if (!Text(o, "recoveryNetworkSecurityGroupId").empty())
        r["networkSecurityGroupId"] = Text(o, "recoveryNetworkSecurityGroupId");
      if (!Text(o, "recoveryVMNetworkId").empty()) {
        net = Text(o, "recoveryVMNetworkId");
        from = "Item";
      } else if (m.is_object()) {
        net = Text(m["properties"], "recoveryNetworkId");
        from = "NetworkMapping";
      }
    }
    r["from"] = from.empty() ? "None" : from;
    if (net.empty()) {
      r["networkId"] = nullptr;
      if (from.empty())
        r["reason"] = "Network interface " + n.name + " is in network '" + source_vnet +
                      "', which has no network mapping in this vault (and the item names no "
                      "recovery network for it).";
      out.push_back(r);
      continue;
    }
    r["networkId"] = net;
    // The subnet: as named; else the one of the same name; else the one that holds the recorded
    // address; else the first.
    auto vid = ResourceId::Parse(net);
    auto list = (networks_ && vid.ok() && !r.value("isolated", false))
                    ? networks_->SubnetList(*vid)
                    : Result<Json>(Json::object());
    if (subnet.empty() && list.ok()) {
      auto addr = network::ParseIpv4(pc->private_ip, "");
      std::string holding, first;
      for (auto& s : list->value("value", Json::array())) {
        std::string name = s.value("name", "");
        if (first.empty()) first = name;
        if (EqualsIgnoreCase(name, source_subnet)) subnet = name;
        auto pfx = network::ParseIpv4Prefix(s["properties"].value("addressPrefix", ""), "");
        if (holding.empty() && addr.ok() && pfx.ok() && pfx->Contains(*addr)) holding = name;
      }
      if (subnet.empty()) subnet = holding.empty() ? first : holding;
    }
    if (subnet.empty()) subnet = source_subnet;
    r["subnetName"] = subnet;
    if (!ip.empty()) r["staticIPAddress"] = ip;
    out.push_back(r);
  }
  return out;
}

// ---------------------------------------------------------------- making the NICs

Result<ResourceId> FailoverNetwork::EnsureTestNetwork(const Json& cfg,
                                                      const std::string& source_vnet,
                                                      const ResourceId& vm,
                                                      const std::string& creator, bool* made) {
  *made = false;
  Json layout;
  for (auto& v : cfg.value("virtualNetworks", Json::array()))
    if (v.is_object() && EqualsIgnoreCase(Text(v, "id"), source_vnet)) layout = v;
  if (!layout.is_object())
    return NotFound("the layout of network '" + source_vnet + "' was not recorded: name a test "
                    "network (the mapping's testNetworkId or the item's tfoVMNetworkId)",
                    source_vnet, "TestNetworkUnknown");
  // `<vnet>-test`, unless that is the copy of another source VNET of the same name.
  for (const std::string& name : {TestNetworkName(Text(layout, "name")),
                                  TestNetworkName(Text(layout, "name"), source_vnet)}) {
    ResourceId tid = ResourceId::Resource(vm.subscription(), vm.resource_group(),
                                          "Stratus.Network", "virtualNetworks", name);
    if (auto existing = ctx_.store->Get(tid.Key()); existing.ok()) {
      if (EqualsIgnoreCase(TagOf(existing->body, kTestNetworkTag), source_vnet))
        return tid;  // made by an earlier item of this drill (or one not cleaned up yet)
      continue;
    }
    Json subnets = Json::array();
    for (auto& sn : layout.value("subnets", Json::array()))
      subnets.push_back({{"name", Text(sn, "name")},
                         {"properties",
                          {{"addressPrefix", Text(sn, "addressPrefix")},
                           {"defaultOutboundAccess", false}}}});
    Json body = {{"location", ctx_.region},
                 {"tags", {{kTestNetworkTag, source_vnet}, {"stratus-test-failover", "true"}}},
                 {"properties",
                  {{"addressSpace",
                    {{"addressPrefixes", layout.value("addressPrefixes", Json::array())}}},
                   {"dhcpOptions", {{"dnsServers", layout.value("dnsServers", Json::array())}}},
                   {"subnets", subnets}}}};
    store::WriteCondition create_only;
    create_only.must_not_exist = true;
    auto put = networks_->PutVnet(tid, body, creator, create_only);
    if (!put.ok())
      return Status(put.status().code(), put.status().arm_code(),
                    "the isolated test network '" + tid.name() + "' cannot be made: " +
                        put.status().message(),
                    put.status().target());
    *made = true;
    spdlog::info("test failover: made isolated network {} (a copy of {})", tid.ToString(),
                 source_vnet);
    return tid;
  }
  return Conflict("virtual networks named like the isolated copy of '" + source_vnet +
                      "' exist and are not copies of it",
                  source_vnet, "TestNetworkNameTaken");
}

Result<Json> FailoverNetwork::Make(const store::Record& item, const Json& cfg, const ResourceId& vm,
                                   const std::string& vm_size, bool test,
                                   const std::string& creator) {
  Json resolved = Resolve(item, cfg, test, vm.resource_group());
  Json notes = Json::array();
  Json test_networks = Json::array();  // the isolated networks the NICs use
  Json made_networks = Json::array();  // those of them this call made
  // Test failovers make their isolated networks and NICs one at a time (a plan's group fails
  // its items over side by side): a network one item finds is not removed by another's failure
  // meanwhile, and two items never make the same one twice.
  std::unique_lock<std::mutex> serial(test_mu_, std::defer_lock);
  if (test) serial.lock();
  if (!networks_) {
    if (!resolved.empty())
      notes.push_back("This region has no networking: the VM comes up without the " +
                      std::to_string(resolved.size()) + " network interface(s) it had.");
    return Json{{"nics", Json::array()}, {"publicIps", Json::array()}, {"notes", notes},
                {"testNetworks", test_networks}, {"resolved", resolved}};
  }
  auto layouts = network::NicLayoutsFromJson(cfg.value("networkInterfaces", Json::array()));
  if (!layouts.ok()) {
    notes.push_back("The VM's recorded network interfaces cannot be read (" +
                    layouts.status().message() + "): it comes up without any.");
    layouts = std::vector<network::NicLayout>{};
  }
  Json configs = Json::array();
  bool have_primary = false;
  for (size_t i = 0; i < layouts->size() && i < resolved.size(); ++i) {
    Json& r = resolved[i];
    const network::NicLayout& n = (*layouts)[i];
    if (r["networkId"].is_null()) {
      notes.push_back(Text(r, "reason") + " The VM comes up without it.");
      continue;
    }
    if (r.value("isolated", false)) {
      bool made = false;
      auto tn = EnsureTestNetwork(cfg, Text(r, "sourceNetworkId"), vm, creator, &made);
      if (made) made_networks.push_back(tn->ToString());
      if (!tn.ok()) {
        notes.push_back("Network interface " + n.name + " is left out: " + tn.status().message() +
                        ".");
        r["networkId"] = nullptr;
        continue;
      }
      if (std::find(test_networks.begin(), test_networks.end(), tn->ToString()) ==
          test_networks.end())
        test_networks.push_back(tn->ToString());
      r["networkId"] = tn->ToString();
    }
    const std::string subnet_id = Text(r, "networkId") + "/subnets/" + Text(r, "subnetName");
    ResourceId nic_id = ResourceId::Resource(vm.subscription(), vm.resource_group(),
                                             "Stratus.Network", "networkInterfaces",
                                             vm.name() + "-nic" + std::to_string(i));
    Json ipcs = Json::array();
    for (auto& c : n.ip_configs) {
      Json cp = {{"subnet", {{"id", subnet_id}}}, {"primary", c.primary}};
      if (c.primary && r.contains("staticIPAddress")) {
        cp["privateIPAllocationMethod"] = "Static";  // asked for: an error if it cannot be had
        cp["privateIPAddress"] = r["staticIPAddress"];
      } else if (!c.private_ip.empty()) {
        // The recorded address: Dynamic ones as a wish (that one if free, else the next free).
        cp["privateIPAllocationMethod"] =
            EqualsIgnoreCase(c.private_ip_method, "Static") ? "Static" : "Dynamic";
        cp["privateIPAddress"] = c.private_ip;
      }
      if (c.primary && r.contains("publicIPAddressId"))
        cp["publicIPAddress"] = {{"id", r["publicIPAddressId"]}};
      ipcs.push_back({{"name", c.name}, {"properties", cp}});
    }
    Json props = {{"primary", n.primary},
                  {"enableIPForwarding", n.ip_forwarding},
                  {"deleteOption", "Delete"},
                  {"ipConfigurations", ipcs}};
    if (r.contains("networkSecurityGroupId")) {
      props["networkSecurityGroup"] = {{"id", r["networkSecurityGroupId"]}};
    } else if (!n.nsg_id.empty() && !test) {
      notes.push_back("Network interface " + nic_id.name() + " (was " + n.name + ") had security "
                      "group '" + n.nsg_id + "' in the source region; it has none here (the "
                      "target subnet's applies): give the item's recoveryNetworkSecurityGroupId "
                      "for one.");
    }
    if (!n.mac.empty()) props["macAddress"] = n.mac;
    // What the target cannot give again: a recorded Static address taken (or outside the
    // subnet) becomes the next free one, a MAC used in the target network a new one.
    Json probe = {{"location", ctx_.region}, {"properties", props}};
    probe["properties"].erase("primary");
    probe["properties"].erase("deleteOption");
    for (int attempt = 0; attempt < 3; ++attempt) {
      Status st = networks_->CheckNic(nic_id, probe);
      const std::string& code = st.arm_code();
      if (code == "MacAddressInUse") {
        notes.push_back("Network interface " + nic_id.name() + " (was " + n.name + "): MAC " +
                        n.mac + " is used in '" + Text(r, "networkId") + "'; it gets a new one.");
        props.erase("macAddress");
        probe["properties"].erase("macAddress");
      } else if ((code == "PrivateIPAddressInUse" || code == "PrivateIPAddressNotInSubnet" ||
                  code == "PrivateIPAddressInReservedRange") &&
                 !(r.contains("staticIPAddress"))) {
        for (auto* list : {&props["ipConfigurations"], &probe["properties"]["ipConfigurations"]})
          for (auto& c : *list)
            if (c["properties"].value("privateIPAllocationMethod", "") == "Static") {
              c["properties"]["privateIPAllocationMethod"] = "Dynamic";
            }
      } else {
        break;  // fine, or an error the plan's check names
      }
    }
    if (n.primary) have_primary = true;
    configs.push_back({{"name", nic_id.name()}, {"properties", props}});
  }
  if (!have_primary && !configs.empty()) {
    configs[0]["properties"]["primary"] = true;
    notes.push_back("The VM's primary network interface is left out: " +
                    configs[0].value("name", "") + " is its primary one here.");
  }
  service::RestoreNetwork rn(ctx_, networks_);
  auto plan = [&]() -> Result<Json> {
    ASSIGN_OR_RETURN(compute::VmSize size, compute::FindVmSize(vm_size));
    return rn.Plan({{"networkProfile", {{"networkInterfaceConfigurations", configs}}}},
                   Json::array(), vm, size);
  }();
  Status made = plan.ok() ? rn.Make(*plan, creator) : plan.status();
  if (!made.ok()) {
    if (plan.ok()) rn.RemoveMade(*plan, creator);
    RemoveTestNetworksLocked(made_networks);
    return made;
  }
  for (auto& note : plan->value("notes", Json::array())) notes.push_back(note);
  (*plan)["notes"] = notes;
  (*plan)["testNetworks"] = test_networks;
  (*plan)["madeTestNetworks"] = made_networks;
  (*plan)["resolved"] = resolved;
  return plan;
}

void FailoverNetwork::Finish(Json& plan) {
  plan["madeNics"] = Json::array();
  if (!networks_) return;
  std::vector<std::string> ids;
  for (auto& n : plan.value("nics", Json::array())) ids.push_back(n.value("id", ""));
  auto layouts = networks_->Layouts(ids);
  if (!layouts.ok()) return;
  for (auto& n : *layouts) {
    Json configs = Json::array();
    for (auto& c : n.ip_configs)
      configs.push_back({{"name", c.name}, {"subnetId", c.subnet_id},
                         {"privateIPAddress", c.private_ip}});
    plan["madeNics"].push_back({{"id", n.id}, {"macAddress", n.mac}, {"ipConfigurations", configs}});
  }
  // The made NICs are those of the resolved ones with a network, in order.
  size_t k = 0;
  for (auto& r : plan.value("resolved", Json::array())) {
    if (r["networkId"].is_null()) continue;
    if (k >= layouts->size()) break;
    const network::NicLayout& made = (*layouts)[k++];
    std::string want_ip = r.contains("staticIPAddress") ? Text(r, "staticIPAddress")
                                                        : Text(r, "privateIPAddress");
    std::string have_ip;
    for (auto& c : made.ip_configs)
      if (c.primary) have_ip = c.private_ip;
    if (!want_ip.empty() && have_ip != want_ip)
      plan["notes"].push_back("Network interface " + made.name + ": " + want_ip +
                              " cannot be had in '" + Text(r, "networkId") + "/subnets/" +
                              Text(r, "subnetName") + "'; it has " + have_ip + ".");
  }
}

Result<Json> FailoverNetwork::AttachPublicIp(const ResourceId& vm, const std::string& name,
                                             const std::string& sku, const std::string& creator) {
  if (!networks_)
    return InvalidArgument("This region has no networking.", "", "FeatureNotAvailable");
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(vm.Key()));
  std::vector<std::string> nics = compute::VmService::NicIds(rec.body["properties"]);
  if (nics.empty())
    return Conflict("VM '" + vm.ToString() + "' has no network interface to put a public IP on.",
                    vm.ToString(), "VmHasNoNetworkInterface");
  ASSIGN_OR_RETURN(ResourceId nic, ResourceId::Parse(nics[0]));
  ResourceId pip = ResourceId::Resource(vm.subscription(), vm.resource_group(), "Stratus.Network",
                                        "publicIPAddresses", name);
  auto holder = networks_->PublicIpHolder(pip.ToString());
  if (holder.ok() && !holder->empty() && !EqualsIgnoreCase(*holder, nic.ToString()))
    return Conflict("Public IP address '" + pip.ToString() + "' is used by '" + *holder + "'.",
                    pip.ToString(), "PublicIPAddressInUse");
  if (!holder.ok()) {
    if (holder.status().code() != StatusCode::kNotFound) return holder.status();
    store::WriteCondition create_only;
    create_only.must_not_exist = true;
    Json body = {{"location", ctx_.region},
                 {"sku", {{"name", sku}}},
                 {"properties", {{"publicIPAllocationMethod", "Static"}}}};
    RETURN_IF_ERROR(networks_->PutPublicIp(pip, body, creator, create_only).status());
  }
  ASSIGN_OR_RETURN(store::Record n, ctx_.store->Get(nic.Key()));
  Json props = n.body["properties"];
  for (auto& c : props["ipConfigurations"])
    if (c["properties"].value("primary", false))
      c["properties"]["publicIPAddress"] = {{"id", pip.ToString()}};
  Json body = {{"location", n.body.value("location", ctx_.region)},
               {"tags", n.body.value("tags", Json::object())},
               {"properties", props}};
  RETURN_IF_ERROR(networks_->PutNic(nic, body, creator, {}).status());
  ASSIGN_OR_RETURN(auto layouts, networks_->Layouts({nic.ToString()}));
  std::string address;
  for (auto& c : layouts.front().ip_configs)
    if (c.primary) address = c.public_ip_address;
  return Json{{"publicIpAddressId", pip.ToString()}, {"ipAddress", address},
              {"nicId", nic.ToString()}};
}

void FailoverNetwork::RemoveTestNetworks(const Json& ids) {
  std::lock_guard<std::mutex> l(test_mu_);
  RemoveTestNetworksLocked(ids);
}

void FailoverNetwork::RemoveTestNetworksLocked(const Json& ids) {
  if (!networks_ || !ids.is_array()) return;
  for (auto& t : ids) {
    if (!t.is_string()) continue;
    auto id = ResourceId::Parse(t.get<std::string>());
    if (!id.ok()) continue;
    auto rec = ctx_.store->Get(id->Key());
    if (!rec.ok() || TagOf(rec->body, kTestNetworkTag).empty()) continue;
    Status st = networks_->DeleteVnet(*id);
    if (st.code() == StatusCode::kConflict) {
      spdlog::info("test failover cleanup: {} is still used ({})", id->ToString(), st.message());
    } else if (!st.ok() && st.code() != StatusCode::kNotFound) {
      spdlog::warn("test failover cleanup: could not delete {}: {}", id->ToString(),
                   st.ToString());
    }
  }
}

}  // namespace stratus::recovery::site
