// stratus network vnet|subnet|vnet peering|nic|nsg|nsg rule|route-table|route-table route|public-ip ... (Stratus.Network), shaped like `az network`.
#include <functional>
#include <memory>

#include "cli/commands.h"
#include "cli/resolve.h"

namespace stratus::cli {
namespace {

struct NetArgs {
  std::string group, name, location;
  std::string parent;  // of a child resource (AddChildBasics)
  std::string vnet, subnet, nsg, private_ip;
  std::vector<std::string> address_prefixes;
  std::string subnet_name, subnet_prefix;
  bool ip_forwarding = false;
  bool nsg_given = false;
  // public IPs
  std::string public_ip, allocation_method, sku;
  bool public_ip_given = false;
  // peerings
  std::string remote_vnet;
  // route tables
  std::string route_table, address_prefix, next_hop_type, next_hop_ip;
  bool route_table_given = false;
  bool allow_vnet_access = true, allow_forwarded = false;
  // rules
  int priority = 0;
  std::string direction = "Inbound", access = "Allow", protocol = "*", description;
  std::vector<std::string> src = {"*"}, src_ports = {"*"}, dst = {"*"}, dst_ports = {"*"};
  bool yes = false;
};

std::string NetPath(const Context& ctx, const std::string& rg, const std::string& type,
                    const std::string& name = "") {
  std::string p = GroupPath(ctx.subscription(), rg) + "/providers/Stratus.Network/" + type;
  return name.empty() ? p : p + "/" + name;
}

// A public IP given by name (in -g) or by id.
std::string PublicIpId(const Context& ctx, const NetArgs& a) {
  if (a.public_ip.empty() || LooksLikeResourceId(a.public_ip)) return a.public_ip;
  return NetPath(ctx, a.group, "publicIPAddresses", a.public_ip);
}

// An NSG given by name (in -g) or by id.
std::string NsgId(const Context& ctx, const NetArgs& a) {
  if (a.nsg.empty() || LooksLikeResourceId(a.nsg)) return a.nsg;
  return NetPath(ctx, a.group, "networkSecurityGroups", a.nsg);
}

std::string Joined(const Json& list) {
  std::string out;
  if (!list.is_array()) return out;
  for (auto& v : list) out += (out.empty() ? "" : ",") + (v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

// Columns: a list joined with commas, the size of a list, the name in an id.
Column JoinedColumn(std::string header, std::string path) {
  return {std::move(header), [path](const Json& r) {
            const Json* p = JsonPath(r, path);
            return p ? Joined(*p) : "";
          }};
}
Column CountColumn(std::string header, std::string path) {
  return {std::move(header), [path](const Json& r) {
            const Json* p = JsonPath(r, path);
            return p && p->is_array() ? std::to_string(p->size()) : "0";
          }};
}
Column IdNameColumn(std::string header, std::string path) {
  return {std::move(header), [path](const Json& r) {
            const Json* p = JsonPath(r, path);
            return p && p->is_string() ? NameFromId(p->get<std::string>()) : "";
          }};
}

const TableSpec& VnetTable() {
  static const TableSpec k = {
      FieldColumn("Name", "name"),
      {"ResourceGroup", [](const Json& r) { return ResourceGroupFromId(r.value("id", "")); }},
      FieldColumn("Location", "location"),
      JoinedColumn("AddressPrefixes", "properties.addressSpace.addressPrefixes"),
      CountColumn("Subnets", "properties.subnets"),
      FieldColumn("ProvisioningState", "properties.provisioningState")};
  return k;
}

const TableSpec& SubnetTable() {
  static const TableSpec k = {
      FieldColumn("Name", "name"), FieldColumn("AddressPrefix", "properties.addressPrefix"),
      IdNameColumn("Nsg", "properties.networkSecurityGroup.id"),
      IdNameColumn("RouteTable", "properties.routeTable.id"),
      CountColumn("IpConfigurations", "properties.ipConfigurations")};
  return k;
}

const TableSpec& NicTable() {
  static const TableSpec k = {
      FieldColumn("Name", "name"),
      {"ResourceGroup", [](const Json& r) { return ResourceGroupFromId(r.value("id", "")); }},
      {"PrivateIp",
       [](const Json& r) {
         const Json* c = JsonPath(r, "properties.ipConfigurations");
         if (!c || !c->is_array() || c->empty()) return std::string();
         const Json* ip = JsonPath((*c)[0], "properties.privateIPAddress");
         return ip && ip->is_string() ? ip->get<std::string>() : std::string();
       }},
      {"PublicIp",
       [](const Json& r) {
         const Json* c = JsonPath(r, "properties.ipConfigurations");
         if (!c || !c->is_array() || c->empty()) return std::string();
         const Json* id = JsonPath((*c)[0], "properties.publicIPAddress.id");
         if (!id || !id->is_string()) return std::string();
         std::string s = id->get<std::string>();
         return s.substr(s.rfind('/') + 1);
       }},
      FieldColumn("MacAddress", "properties.macAddress"),
      IdNameColumn("Vm", "properties.virtualMachine.id"),
      IdNameColumn("Nsg", "properties.networkSecurityGroup.id")};
  return k;
}

const TableSpec& NsgTable() {
  static const TableSpec k = {
      FieldColumn("Name", "name"),
      {"ResourceGroup", [](const Json& r) { return ResourceGroupFromId(r.value("id", "")); }},
      CountColumn("Rules", "properties.securityRules"),
      CountColumn("Subnets", "properties.subnets"),
      CountColumn("Nics", "properties.networkInterfaces")};
  return k;
}

// One of a rule's prefix or port lists: the singular member, else the plural one.
std::string Either(const Json& r, const std::string& one, const std::string& many) {
  const Json* a = JsonPath(r, "properties." + one);
  if (a && a->is_string()) return a->get<std::string>();
  const Json* b = JsonPath(r, "properties." + many);
  return b ? Joined(*b) : "";
}

const TableSpec& RuleTable() {
  static const TableSpec k = {
      FieldColumn("Name", "name"),
      FieldColumn("Priority", "properties.priority"),
      FieldColumn("Direction", "properties.direction"),
      FieldColumn("Access", "properties.access"),
      FieldColumn("Protocol", "properties.protocol"),
      {"Source", [](const Json& r) { return Either(r, "sourceAddressPrefix", "sourceAddressPrefixes"); }},
      {"SourcePorts", [](const Json& r) { return Either(r, "sourcePortRange", "sourcePortRanges"); }},
      {"Destination",
       [](const Json& r) { return Either(r, "destinationAddressPrefix", "destinationAddressPrefixes"); }},
      {"DestinationPorts",
       [](const Json& r) { return Either(r, "destinationPortRange", "destinationPortRanges"); }}};
  return k;
}

const TableSpec& EffectiveRuleTable() {
  static const TableSpec k = {
      FieldColumn("Nsg", "nsg"), FieldColumn("Association", "association"),
      FieldColumn("Name", "name"), FieldColumn("Priority", "priority"),
      FieldColumn("Direction", "direction"), FieldColumn("Access", "access"),
      FieldColumn("Protocol", "protocol"),
      {"Source", [](const Json& r) { return Joined(r.value("expandedSourceAddressPrefix", Json::array())); }},
      {"DestinationPorts",
       [](const Json& r) {
         return r.contains("destinationPortRange") && r["destinationPortRange"].is_string()
                    ? r["destinationPortRange"].get<std::string>()
                    : Joined(r.value("destinationPortRanges", Json::array()));
       }},
      FieldColumn("Packets", "packets")};
  return k;
}

const TableSpec& RuleCounterTable() {
  static const TableSpec k = {FieldColumn("Name", "name"), FieldColumn("Direction", "direction"),
                              FieldColumn("Priority", "priority"), FieldColumn("Access", "access"),
                              FieldColumn("Packets", "packets"), FieldColumn("Bytes", "bytes")};
  return k;
}

using Fn = std::function<CliStatus(Context&, const NetArgs&)>;

std::shared_ptr<NetArgs> Leaf(CLI::App* noun, Action* selected, const std::string& name,
                              const std::string& description, const char* name_help, Fn fn,
                              CLI::App** out) {
  auto args = std::make_shared<NetArgs>();
  CLI::App* cmd = noun->add_subcommand(name, description);
  cmd->add_option("-g,--resource-group", args->group, "Resource group")->required();
  if (name_help) cmd->add_option("-n,--name", args->name, name_help)->required();
  SetAction(cmd, selected, [args, fn](Context& ctx) { return fn(ctx, *args); });
  *out = cmd;
  return args;
}

CliStatus Delete(Context& ctx, const std::string& path) {
  CLI_RETURN_IF_ERROR(ctx.Write("DELETE", path, nullptr));
  return CliStatus::Ok();
}

void AddBasics(CLI::App* noun, Action* selected, const char* type, const char* what,
               const TableSpec& (*table)()) {
  CLI::App* cmd = nullptr;
  auto l = std::make_shared<NetArgs>();
  cmd = noun->add_subcommand("list", std::string("List the ") + what + "s of a resource group");
  cmd->add_option("-g,--resource-group", l->group, "Resource group")->required();
  SetAction(cmd, selected, [l, type, table](Context& ctx) {
    return ctx.List(NetPath(ctx, l->group, type), table());
  });
  auto s = std::make_shared<NetArgs>();
  cmd = noun->add_subcommand("show", std::string("Show a ") + what);
  cmd->add_option("-g,--resource-group", s->group, "Resource group")->required();
  cmd->add_option("-n,--name", s->name, "Name")->required();
  SetAction(cmd, selected, [s, type, table](Context& ctx) {
    return ctx.Show(NetPath(ctx, s->group, type, s->name), table());
  });
  auto d = std::make_shared<NetArgs>();
  cmd = noun->add_subcommand("delete", std::string("Delete a ") + what);
  cmd->add_option("-g,--resource-group", d->group, "Resource group")->required();
  cmd->add_option("-n,--name", d->name, "Name")->required();
  cmd->add_flag("-y,--yes", d->yes, "Accepted for az compatibility; nothing is asked");
  SetAction(cmd, selected,
            [d, type](Context& ctx) { return Delete(ctx, NetPath(ctx, d->group, type, d->name)); });
}

// list, show and delete of the `child_type` resources of a `parent_type` named by
// `parent_flag` (e.g. the subnets of the VNET given by --vnet-name).
void AddChildBasics(CLI::App* noun, Action* selected, const char* parent_flag,
                    const char* parent_type, const char* child_type, const char* what,
                    const TableSpec& (*table)()) {
  auto path = [parent_type, child_type](const Context& ctx, const NetArgs& a) {
    std::string p = NetPath(ctx, a.group, parent_type, a.parent) + "/" + child_type;
    return a.name.empty() ? p : p + "/" + a.name;
  };
  CLI::App* cmd = nullptr;
  auto l = Leaf(noun, selected, "list", std::string("List the ") + what + "s", nullptr,
                [path, table](Context& c, const NetArgs& a) { return c.List(path(c, a), table()); },
                &cmd);
  cmd->add_option(parent_flag, l->parent, "Parent resource")->required();
  auto s = Leaf(noun, selected, "show", std::string("Show a ") + what, "Name",
                [path, table](Context& c, const NetArgs& a) { return c.Show(path(c, a), table()); },
                &cmd);
  cmd->add_option(parent_flag, s->parent, "Parent resource")->required();
  auto d = Leaf(noun, selected, "delete", std::string("Delete a ") + what, "Name",
                [path](Context& c, const NetArgs& a) { return Delete(c, path(c, a)); }, &cmd);
  cmd->add_option(parent_flag, d->parent, "Parent resource")->required();
}

// ---- vnet
CliStatus VnetCreate(Context& ctx, const NetArgs& a) {
  Json tags = Json::object();
  Json subnets = Json::array();
  if (!a.subnet_name.empty()) {
    if (a.subnet_prefix.empty())
      return UsageError("--subnet-prefix is required with --subnet-name.", "--subnet-prefix");
    subnets.push_back({{"name", a.subnet_name}, {"properties", {{"addressPrefix", a.subnet_prefix}}}});
  }
  Json body = {{"location", LocationOr(ctx, a.location)},
               {"tags", tags},
               {"properties",
                {{"addressSpace", {{"addressPrefixes", a.address_prefixes}}}, {"subnets", subnets}}}};
  std::string path = NetPath(ctx, a.group, "virtualNetworks", a.name);
  return ctx.WriteAndShow("PUT", path, &body, path, VnetTable());
}

// ---- subnet
std::string SubnetPath(const Context& ctx, const NetArgs& a) {
  return NetPath(ctx, a.group, "virtualNetworks", a.vnet) + "/subnets/" + a.name;
}
CliStatus SubnetWrite(Context& ctx, const NetArgs& a, bool update) {
  Json props = Json::object();
  if (update) {
    CLI_ASSIGN_OR_RETURN(Json cur, ctx.client().Get(SubnetPath(ctx, a)));
    props = cur.value("properties", Json::object());
    props.erase("ipConfigurations");
    props.erase("provisioningState");
  }
  if (!a.subnet_prefix.empty()) props["addressPrefix"] = a.subnet_prefix;
  if (!update && a.subnet_prefix.empty())
    return UsageError("--address-prefix is required.", "--address-prefix");
  if (a.nsg_given) {
    if (a.nsg.empty()) {
      props.erase("networkSecurityGroup");
    } else {
      props["networkSecurityGroup"] = {{"id", NsgId(ctx, a)}};
    }
  }
  if (a.route_table_given) {
    if (a.route_table.empty()) {
      props.erase("routeTable");
    } else {
      props["routeTable"] = {{"id", LooksLikeResourceId(a.route_table)
                                        ? a.route_table
                                        : NetPath(ctx, a.group, "routeTables", a.route_table)}};
    }
  }
  Json body = {{"properties", props}};
  std::string path = SubnetPath(ctx, a);
  return ctx.WriteAndShow("PUT", path, &body, path, SubnetTable());
}

void RegisterSubnet(CLI::App* parent, Action* selected) {
  CLI::App* subnet = AddNoun(*parent, "subnet", "Manage the subnets of a virtual network");
  CLI::App* cmd = nullptr;
  auto create = Leaf(subnet, selected, "create", "Create a subnet", "Subnet name",
                     [](Context& c, const NetArgs& a) { return SubnetWrite(c, a, false); }, &cmd);
  cmd->add_option("--vnet-name", create->vnet, "Virtual network")->required();
  cmd->add_option("--address-prefix,--address-prefixes", create->subnet_prefix, "CIDR, e.g. 10.1.1.0/24");
  cmd->add_option("--nsg,--network-security-group", create->nsg, "NSG (name in -g, or id)")
      ->each([create](const std::string&) { create->nsg_given = true; });
  cmd->add_option("--route-table", create->route_table, "Route table (name in -g, id, or \"\" for none)")
      ->each([create](const std::string&) { create->route_table_given = true; });
  auto update = Leaf(subnet, selected, "update", "Change a subnet (its NSG, its route table)", "Subnet name",
                     [](Context& c, const NetArgs& a) { return SubnetWrite(c, a, true); }, &cmd);
  cmd->add_option("--vnet-name", update->vnet, "Virtual network")->required();
  cmd->add_option("--nsg,--network-security-group", update->nsg, "NSG (name, id, or \"\" for none)")
      ->each([update](const std::string&) { update->nsg_given = true; });
  cmd->add_option("--route-table", update->route_table, "Route table (name in -g, id, or \"\" for none)")
      ->each([update](const std::string&) { update->route_table_given = true; });
  AddChildBasics(subnet, selected, "--vnet-name", "virtualNetworks", "subnets", "subnet",
                 SubnetTable);
}

// ---- peering
const TableSpec& PeeringTable() {
  static const TableSpec k = {
      FieldColumn("Name", "name"), FieldColumn("PeeringState", "properties.peeringState"),
      IdNameColumn("RemoteVirtualNetwork", "properties.remoteVirtualNetwork.id"),
      JoinedColumn("RemoteAddressSpace", "properties.remoteAddressSpace.addressPrefixes"),
      FieldColumn("AllowVnetAccess", "properties.allowVirtualNetworkAccess"),
      FieldColumn("AllowForwardedTraffic", "properties.allowForwardedTraffic")};
  return k;
}

std::string PeeringPath(const Context& ctx, const NetArgs& a) {
  return NetPath(ctx, a.group, "virtualNetworks", a.vnet) + "/virtualNetworkPeerings/" + a.name;
}

void RegisterPeering(CLI::App* vnet, Action* selected) {
  CLI::App* peering = AddNoun(*vnet, "peering", "Manage the peerings of a virtual network");
  CLI::App* cmd = nullptr;
  auto create = Leaf(
      peering, selected, "create", "Peer a virtual network with another (create both sides)",
      "Peering name",
      [](Context& c, const NetArgs& a) {
        std::string remote = LooksLikeResourceId(a.remote_vnet)
                                 ? a.remote_vnet
                                 : NetPath(c, a.group, "virtualNetworks", a.remote_vnet);
        Json body = {{"properties",
                      {{"remoteVirtualNetwork", {{"id", remote}}},
                       {"allowVirtualNetworkAccess", a.allow_vnet_access},
                       {"allowForwardedTraffic", a.allow_forwarded}}}};
        std::string path = PeeringPath(c, a);
        return c.WriteAndShow("PUT", path, &body, path, PeeringTable());
      },
      &cmd);
  cmd->add_option("--vnet-name", create->vnet, "Virtual network")->required();
  cmd->add_option("--remote-vnet", create->remote_vnet, "The other VNET (name in -g, or id)")
      ->required();
  cmd->add_option("--allow-vnet-access", create->allow_vnet_access,
                  "Whether the remote VNET's addresses may enter (default true)");
  cmd->add_flag("--allow-forwarded-traffic", create->allow_forwarded,
                "Let in traffic the remote VNET forwards (from outside its address space)");
  AddChildBasics(peering, selected, "--vnet-name", "virtualNetworks", "virtualNetworkPeerings",
                 "peering", PeeringTable);
}

// ---- nic
CliStatus NicWrite(Context& ctx, const NetArgs& a, bool update) {
  std::string path = NetPath(ctx, a.group, "networkInterfaces", a.name);
  Json body;
  if (update) {
    CLI_ASSIGN_OR_RETURN(body, ctx.client().Get(path));
  } else {
    Json ipc = {{"subnet",
                 {{"id", NetPath(ctx, a.group, "virtualNetworks", a.vnet) + "/subnets/" + a.subnet}}}};
    if (!a.private_ip.empty()) {
      ipc["privateIPAddress"] = a.private_ip;
      ipc["privateIPAllocationMethod"] = "Static";
    }
    body = {{"location", LocationOr(ctx, a.location)},
            {"properties", {{"ipConfigurations", {{{"name", "ipconfig1"}, {"properties", ipc}}}}}}};
    if (a.ip_forwarding) body["properties"]["enableIPForwarding"] = true;
  }
  if (a.nsg_given) {
    if (a.nsg.empty()) {
      body["properties"].erase("networkSecurityGroup");
    } else {
      body["properties"]["networkSecurityGroup"] = {{"id", NsgId(ctx, a)}};
    }
  }
  if (a.public_ip_given) {
    // On the primary IP configuration (az: --ip-config-name defaults to it).
    Json& configs = body["properties"]["ipConfigurations"];
    for (auto& c : configs) {
      if (configs.size() > 1 && !c["properties"].value("primary", false)) continue;
      if (a.public_ip.empty()) {
        c["properties"].erase("publicIPAddress");
      } else {
        c["properties"]["publicIPAddress"] = {{"id", PublicIpId(ctx, a)}};
      }
      break;
    }
  }
  return ctx.WriteAndShow("PUT", path, &body, path, NicTable());
}

// POST .../<type>/{name}/<action>: as JSON, or `rows` of the answer as a table.
CliStatus ShowView(Context& ctx, const NetArgs& a, const char* type, const char* action,
                   const TableSpec& table,
                   const std::function<std::vector<Json>(const Json&)>& rows) {
  std::string path = NetPath(ctx, a.group, type, a.name) + "/" + action;
  CLI_ASSIGN_OR_RETURN(ApiResponse r, ctx.client().Send("POST", path, nullptr));
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << RenderJson(r.body) << "\n";
    return CliStatus::Ok();
  }
  PrintMany(ctx.out(), ctx.format(), table, rows(r.body));
  return CliStatus::Ok();
}

CliStatus ShowEffectiveNsg(Context& ctx, const NetArgs& a) {
  return ShowView(ctx, a, "networkInterfaces", "effectiveNetworkSecurityGroups",
                  EffectiveRuleTable(),
                     [](const Json& body) {
                       std::vector<Json> rows;
                       for (auto& g : body.value("value", Json::array())) {
                         std::string nsg = NameFromId(g["networkSecurityGroup"].value("id", ""));
                         std::string assoc =
                             g["association"].contains("subnet") ? "subnet" : "nic";
                         for (auto& rule : g.value("effectiveSecurityRules", Json::array())) {
                           Json row = rule;
                           row["nsg"] = nsg;
                           row["association"] = assoc;
                           rows.push_back(row);
                         }
                       }
                       return rows;
                     });
}

// ---- nsg rule
std::string RulePath(const Context& ctx, const NetArgs& a) {
  return NetPath(ctx, a.group, "networkSecurityGroups", a.nsg) + "/securityRules/" + a.name;
}
CliStatus RuleCreate(Context& ctx, const NetArgs& a) {
  auto one_or_many = [](Json& p, const char* one, const char* many, const std::vector<std::string>& v) {
    if (v.size() == 1) {
      p[one] = v[0];
    } else {
      p[many] = v;
    }
  };
  Json p = {{"priority", a.priority}, {"direction", a.direction}, {"access", a.access},
            {"protocol", a.protocol}};
  one_or_many(p, "sourceAddressPrefix", "sourceAddressPrefixes", a.src);
  one_or_many(p, "sourcePortRange", "sourcePortRanges", a.src_ports);
  one_or_many(p, "destinationAddressPrefix", "destinationAddressPrefixes", a.dst);
  one_or_many(p, "destinationPortRange", "destinationPortRanges", a.dst_ports);
  if (!a.description.empty()) p["description"] = a.description;
  Json body = {{"properties", p}};
  std::string path = RulePath(ctx, a);
  return ctx.WriteAndShow("PUT", path, &body, path, RuleTable());
}

void RegisterRule(CLI::App* nsg, Action* selected) {
  CLI::App* rule = AddNoun(*nsg, "rule", "Manage the rules of a network security group");
  CLI::App* cmd = nullptr;
  auto c = Leaf(rule, selected, "create", "Create or replace a rule", "Rule name", RuleCreate, &cmd);
  cmd->add_option("--nsg-name", c->nsg, "Network security group")->required();
  cmd->add_option("--priority", c->priority, "100-4096, unique per direction")->required();
  cmd->add_option("--direction", c->direction, "Inbound or Outbound");
  cmd->add_option("--access", c->access, "Allow or Deny");
  cmd->add_option("--protocol", c->protocol, "Tcp, Udp, Icmp or *");
  cmd->add_option("--source-address-prefixes", c->src, "Prefixes, addresses or tags");
  cmd->add_option("--source-port-ranges", c->src_ports, "Ports: *, N, N-M");
  cmd->add_option("--destination-address-prefixes", c->dst, "Prefixes, addresses or tags");
  cmd->add_option("--destination-port-ranges", c->dst_ports, "Ports: *, N, N-M");
  cmd->add_option("--description", c->description, "Description");
  AddChildBasics(rule, selected, "--nsg-name", "networkSecurityGroups", "securityRules", "rule",
                 RuleTable);
}

// list/show/delete of a top-level type.

// ---- route tables
const TableSpec& RouteTableTable() {
  static const TableSpec k = {
      FieldColumn("Name", "name"),
      {"ResourceGroup", [](const Json& r) { return ResourceGroupFromId(r.value("id", "")); }},
      CountColumn("Routes", "properties.routes"), CountColumn("Subnets", "properties.subnets"),
      FieldColumn("ProvisioningState", "properties.provisioningState")};
  return k;
}

const TableSpec& RouteTable() {
  static const TableSpec k = {FieldColumn("Name", "name"),
                              FieldColumn("AddressPrefix", "properties.addressPrefix"),
                              FieldColumn("NextHopType", "properties.nextHopType"),
                              FieldColumn("NextHopIpAddress", "properties.nextHopIpAddress")};
  return k;
}

const TableSpec& EffectiveRouteTableSpec() {
  static const TableSpec k = {FieldColumn("Source", "source"), FieldColumn("State", "state"),
                              JoinedColumn("AddressPrefix", "addressPrefix"),
                              FieldColumn("NextHopType", "nextHopType"),
                              JoinedColumn("NextHopIP", "nextHopIpAddress")};
  return k;
}

// ---- public IPs
const TableSpec& PublicIpTable() {
  static const TableSpec k = {
      FieldColumn("Name", "name"),
      {"ResourceGroup", [](const Json& r) { return ResourceGroupFromId(r.value("id", "")); }},
      FieldColumn("IpAddress", "properties.ipAddress"),
      FieldColumn("AllocationMethod", "properties.publicIPAllocationMethod"),
      FieldColumn("Sku", "sku.name"),
      {"UsedBy",
       [](const Json& r) {
         const Json* id = JsonPath(r, "properties.ipConfiguration.id");
         if (!id || !id->is_string()) return std::string();
         // .../networkInterfaces/<nic>/ipConfigurations/<config>
         std::string s = id->get<std::string>();
         size_t at = s.find("/networkInterfaces/");
         return at == std::string::npos ? s : s.substr(at + 19);
       }},
      FieldColumn("ProvisioningState", "properties.provisioningState")};
  return k;
}

void RegisterPublicIp(CLI::App* network, Action* selected) {
  CLI::App* pip = AddNoun(*network, "public-ip", "Manage public IP addresses");
  CLI::App* cmd = nullptr;
  auto c = Leaf(pip, selected, "create", "Create a public IP address from the region's pool",
                "Public IP name",
                [](Context& ctx, const NetArgs& a) {
                  Json props = Json::object();
                  if (!a.allocation_method.empty())
                    props["publicIPAllocationMethod"] = a.allocation_method;
                  Json body = {{"location", LocationOr(ctx, a.location)}, {"properties", props}};
                  if (!a.sku.empty()) body["sku"] = {{"name", a.sku}};
                  std::string path = NetPath(ctx, a.group, "publicIPAddresses", a.name);
                  return ctx.WriteAndShow("PUT", path, &body, path, PublicIpTable());
                },
                &cmd);
  cmd->add_option("--allocation-method", c->allocation_method,
                  "Static (reserved now; default for Standard) or Dynamic (Basic only)");
  cmd->add_option("--sku", c->sku, "Standard (default) or Basic");
  cmd->add_option("-l,--location", c->location, "Location (default: the region's)");
  AddBasics(pip, selected, "publicIPAddresses", "public IP address", PublicIpTable);
}

void RegisterRouteTable(CLI::App* network, Action* selected) {
  CLI::App* rt = AddNoun(*network, "route-table", "Manage route tables (user-defined routes)");
  CLI::App* cmd = nullptr;
  auto c = Leaf(rt, selected, "create", "Create a route table (no routes yet)", "Route table name",
                [](Context& ctx, const NetArgs& a) {
                  Json body = {{"location", LocationOr(ctx, a.location)},
                               {"properties", Json::object()}};
                  std::string path = NetPath(ctx, a.group, "routeTables", a.name);
                  return ctx.WriteAndShow("PUT", path, &body, path, RouteTableTable());
                },
                &cmd);
  cmd->add_option("-l,--location", c->location, "Location (default: the region's)");
  AddBasics(rt, selected, "routeTables", "route table", RouteTableTable);
  CLI::App* route = AddNoun(*rt, "route", "Manage the routes of a route table");
  auto rc = Leaf(route, selected, "create", "Create or replace a route", "Route name",
                 [](Context& ctx, const NetArgs& a) {
                   Json props = {{"addressPrefix", a.address_prefix},
                                 {"nextHopType", a.next_hop_type}};
                   if (!a.next_hop_ip.empty()) props["nextHopIpAddress"] = a.next_hop_ip;
                   Json body = {{"properties", props}};
                   std::string path = NetPath(ctx, a.group, "routeTables", a.route_table) +
                                      "/routes/" + a.name;
                   return ctx.WriteAndShow("PUT", path, &body, path, RouteTable());
                 },
                 &cmd);
  cmd->add_option("--route-table-name", rc->route_table, "Route table")->required();
  cmd->add_option("--address-prefix", rc->address_prefix, "Destination CIDR")->required();
  cmd->add_option("--next-hop-type", rc->next_hop_type,
                  "VirtualAppliance, VnetLocal, Internet or None")
      ->required();
  cmd->add_option("--next-hop-ip-address", rc->next_hop_ip, "The appliance (VirtualAppliance)");
  AddChildBasics(route, selected, "--route-table-name", "routeTables", "routes", "route",
                 RouteTable);
}

CliStatus ShowEffectiveRoutes(Context& ctx, const NetArgs& a) {
  return ShowView(ctx, a, "networkInterfaces", "effectiveRouteTable", EffectiveRouteTableSpec(),
                  [](const Json& body) {
    std::vector<Json> rows;
    for (auto& e : body.value("value", Json::array())) rows.push_back(e);
    return rows;
  });
}

}  // namespace

void RegisterNetworkCommands(CLI::App& root, Action* selected) {
  CLI::App* network = AddNoun(root, "network", "Manage virtual networks, NICs and security groups");
  CLI::App* cmd = nullptr;

  CLI::App* vnet = AddNoun(*network, "vnet", "Manage virtual networks");
  auto vc = Leaf(vnet, selected, "create", "Create or replace a virtual network", "VNET name",
                 VnetCreate, &cmd);
  cmd->add_option("--address-prefixes,--address-prefix", vc->address_prefixes, "Address space(s)")
      ->required();
  cmd->add_option("--subnet-name", vc->subnet_name, "A first subnet");
  cmd->add_option("--subnet-prefix,--subnet-prefixes", vc->subnet_prefix, "Its prefix");
  cmd->add_option("-l,--location", vc->location, "Location (default: the region's)");
  AddBasics(vnet, selected, "virtualNetworks", "virtual network", VnetTable);
  RegisterSubnet(vnet, selected);     // az: network vnet subnet ...
  RegisterSubnet(network, selected);  // and network subnet ...
  RegisterPeering(vnet, selected);    // az: network vnet peering ...

  CLI::App* nic = AddNoun(*network, "nic", "Manage network interfaces");
  auto nc = Leaf(nic, selected, "create", "Create a network interface", "NIC name",
                 [](Context& c, const NetArgs& a) { return NicWrite(c, a, false); }, &cmd);
  cmd->add_option("--vnet-name", nc->vnet, "Virtual network")->required();
  cmd->add_option("--subnet", nc->subnet, "Subnet")->required();
  cmd->add_option("--private-ip-address", nc->private_ip, "Static address (default: Dynamic)");
  cmd->add_option("--network-security-group,--nsg", nc->nsg, "NSG (name in -g, or id)")
      ->each([nc](const std::string&) { nc->nsg_given = true; });
  cmd->add_flag("--ip-forwarding", nc->ip_forwarding, "Forward traffic not addressed to it");
  cmd->add_option("--public-ip-address", nc->public_ip, "Public IP (name in -g, or id)")
      ->each([nc](const std::string&) { nc->public_ip_given = true; });
  cmd->add_option("-l,--location", nc->location, "Location (default: the region's)");
  auto nu = Leaf(nic, selected, "update", "Change a network interface (its NSG, its public IP)",
                 "NIC name",
                 [](Context& c, const NetArgs& a) { return NicWrite(c, a, true); }, &cmd);
  cmd->add_option("--network-security-group,--nsg", nu->nsg, "NSG (name, id, or \"\" for none)")
      ->each([nu](const std::string&) { nu->nsg_given = true; });
  cmd->add_option("--public-ip-address", nu->public_ip,
                  "Public IP of the primary IP configuration (name, id, or \"\" for none)")
      ->each([nu](const std::string&) { nu->public_ip_given = true; });
  Leaf(nic, selected, "show-effective-nsg", "The rules that apply to a NIC, in evaluation order",
       "NIC name", ShowEffectiveNsg, &cmd);
  Leaf(nic, selected, "show-effective-route-table", "The routes a NIC's traffic follows",
       "NIC name", ShowEffectiveRoutes, &cmd);
  AddBasics(nic, selected, "networkInterfaces", "network interface", NicTable);

  CLI::App* nsg = AddNoun(*network, "nsg", "Manage network security groups");
  Leaf(nsg, selected, "create", "Create a network security group (no rules yet)", "NSG name",
       [](Context& ctx, const NetArgs& a) {
         Json body = {{"location", LocationOr(ctx, a.location)}, {"properties", Json::object()}};
         std::string path = NetPath(ctx, a.group, "networkSecurityGroups", a.name);
         return ctx.WriteAndShow("PUT", path, &body, path, NsgTable());
       },
       &cmd);
  Leaf(nsg, selected, "show-rule-counters",
       "Packets and bytes each rule matched (inbound, then outbound; defaults last)", "NSG name",
       [](Context& ctx, const NetArgs& a) {
         return ShowView(ctx, a, "networkSecurityGroups", "ruleCounters", RuleCounterTable(),
                         [](const Json& body) {
                           std::vector<Json> rows;
                           for (auto& r : body.value("value", Json::array())) rows.push_back(r);
                           return rows;
                         });
       },
       &cmd);
  AddBasics(nsg, selected, "networkSecurityGroups", "network security group", NsgTable);
  RegisterRule(nsg, selected);
  RegisterRouteTable(network, selected);
  RegisterPublicIp(network, selected);
}

}  // namespace stratus::cli
