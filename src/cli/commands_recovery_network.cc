// stratus recovery network-mapping create|list|show|delete (which network of this region a
// source region's network fails over to), and stratus recovery replication nic-show|nic-set
// (where each NIC of a replicated VM goes, and an item's own choice for one NIC) — site
// recovery's network mapping, docs/site-recovery.md "Network mapping".
#include <memory>

#include "cli/commands.h"
#include "cli/resolve.h"
#include "core/resource_id.h"

namespace stratus::cli {
namespace {

struct MapArgs {
  std::string group, vault, name;
  std::string source_network, source_network_group;
  std::string target_network, test_network, network_group;
  // nic-set
  std::string nic, recovery_subnet, recovery_ip, recovery_public_ip, test_subnet, test_ip;
  bool clear = false;
};

std::string VaultPath(const Context& ctx, const MapArgs& a) {
  return GroupPath(ctx.subscription(), a.group) + "/providers/Stratus.RecoveryServices/vaults/" +
         a.vault;
}

// A VNET given as an id or as a name in resource group `rg`.
std::string VnetId(const Context& ctx, const std::string& rg, const std::string& name_or_id) {
  if (name_or_id.empty() || LooksLikeResourceId(name_or_id)) return name_or_id;
  return GroupPath(ctx.subscription(), rg) + "/providers/Stratus.Network/virtualNetworks/" +
         name_or_id;
}

const TableSpec& MappingTable() {
  static const TableSpec spec = {
      FieldColumn("Name", "name"),
      FieldColumn("SourceNetwork", "properties.primaryNetworkFriendlyName"),
      FieldColumn("TargetNetwork", "properties.recoveryNetworkFriendlyName"),
      FieldColumn("TestNetwork", "properties.testNetworkFriendlyName"),
      FieldColumn("State", "properties.state"),
  };
  return spec;
}

const TableSpec& NicTable() {
  static const TableSpec spec = {
      {"Nic", [](const Json& r) { return NameFromId(FormatCell(JsonPath(r, "nicId"))); }},
      FieldColumn("Primary", "primary"),
      FieldColumn("Mac", "macAddress"),
      FieldColumn("Address", "privateIPAddress"),
      {"Source", [](const Json& r) {
         return NameFromId(FormatCell(JsonPath(r, "sourceNetworkId"))) + "/" +
                FormatCell(JsonPath(r, "sourceSubnetName"));
       }},
      {"Failover", [](const Json& r) {
         const Json* net = JsonPath(r, "networkId");
         if (!net || net->is_null()) return std::string("(left out: no mapping)");
         std::string s = NameFromId(FormatCell(net)) + "/" + FormatCell(JsonPath(r, "subnetName"));
         if (const Json* ip = JsonPath(r, "staticIPAddress"); ip && ip->is_string())
           s += " " + ip->get<std::string>();
         return s;
       }},
      FieldColumn("By", "from"),
      {"TestFailover", [](const Json& r) {
         if (JsonPath(r, "testFailover.isolated")) return std::string("(isolated copy)");
         return NameFromId(FormatCell(JsonPath(r, "testFailover.networkId"))) + "/" +
                FormatCell(JsonPath(r, "testFailover.subnetName"));
       }},
  };
  return spec;
}

CliStatus CreateMapping(Context& ctx, const MapArgs& a) {
  std::string source = a.source_network;
  if (!LooksLikeResourceId(source)) {
    if (a.source_network_group.empty())
      return UsageError("--source-network is the network's id in the source region, or its name "
                        "with --source-network-group",
                        "--source-network");
    source = VnetId(ctx, a.source_network_group, source);
  }
  const std::string rg = a.network_group.empty() ? a.group : a.network_group;
  Json props = {{"primaryNetworkId", source},
                {"recoveryNetworkId", VnetId(ctx, rg, a.target_network)}};
  if (!a.test_network.empty()) props["testNetworkId"] = VnetId(ctx, rg, a.test_network);
  Json body = {{"properties", props}};
  std::string path = VaultPath(ctx, a) + "/replicationNetworkMappings/" + a.name;
  return ctx.WriteAndShow("PUT", path, &body, path, MappingTable());
}

CliStatus ShowNics(Context& ctx, const MapArgs& a) {
  CLI_ASSIGN_OR_RETURN(Json item,
                       ctx.client().Get(VaultPath(ctx, a) + "/replicationProtectedItems/" + a.name));
  Json nics = item["properties"].value("networkInterfaces", Json::array());
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << RenderJson(nics) << "\n";
    return CliStatus::Ok();
  }
  std::vector<Json> rows(nics.begin(), nics.end());
  ctx.out() << RenderTable(NicTable(), rows);
  return CliStatus::Ok();
}

// Sets (or with --clear removes) the item's own choice for one NIC, keeping the rest of the
// item as it is.
CliStatus SetNic(Context& ctx, const MapArgs& a) {
  const std::string path = VaultPath(ctx, a) + "/replicationProtectedItems/" + a.name;
  if (!a.clear && a.target_network.empty() && a.recovery_subnet.empty() && a.recovery_ip.empty() &&
      a.recovery_public_ip.empty() && a.test_network.empty() && a.test_subnet.empty() &&
      a.test_ip.empty())
    return UsageError("say where the NIC goes (--target-network, --recovery-subnet, "
                      "--recovery-ip, --recovery-public-ip, --test-network, --test-subnet, "
                      "--test-ip) or --clear",
                      "--target-network");
  CLI_ASSIGN_OR_RETURN(Json item, ctx.client().Get(path));
  const Json& p = item["properties"];
  Json nics = Json::array();
  for (auto& n : p.value("vmNics", Json::array()))
    if (!EqualsIgnoreCase(n.value("nicId", ""), a.nic)) nics.push_back(n);
  if (!a.clear) {
    const std::string rg = a.network_group.empty() ? a.group : a.network_group;
    Json n = {{"nicId", a.nic}};
    if (!a.target_network.empty()) n["recoveryVMNetworkId"] = VnetId(ctx, rg, a.target_network);
    if (!a.recovery_subnet.empty()) n["recoveryVMSubnetName"] = a.recovery_subnet;
    if (!a.recovery_ip.empty()) n["replicaNicStaticIPAddress"] = a.recovery_ip;
    if (!a.recovery_public_ip.empty())
      n["recoveryPublicIpAddressId"] =
          LooksLikeResourceId(a.recovery_public_ip)
              ? a.recovery_public_ip
              : GroupPath(ctx.subscription(), rg) + "/providers/Stratus.Network/publicIPAddresses/" +
                    a.recovery_public_ip;
    if (!a.test_network.empty()) n["tfoVMNetworkId"] = VnetId(ctx, rg, a.test_network);
    if (!a.test_subnet.empty()) n["tfoVMSubnetName"] = a.test_subnet;
    if (!a.test_ip.empty()) n["tfoIPAddress"] = a.test_ip;
    nics.push_back(n);
  }
  Json body = {{"properties",
                {{"sourceRegion", p.value("sourceRegion", "")},
                 {"sourceVmId", p.value("sourceVmId", "")},
                 {"policy", p.value("policy", Json::object())},
                 {"vmNics", nics}}}};
  if (p.contains("multiVmGroupName")) body["properties"]["multiVmGroupName"] = p["multiVmGroupName"];
  CLI_RETURN_IF_ERROR(ctx.Write("PUT", path, &body));
  return ShowNics(ctx, a);
}

void AddVaultOptions(CLI::App* cmd, MapArgs& a, const char* name_help) {
  cmd->add_option("-g,--resource-group", a.group, "Resource group of the vault")->required();
  cmd->add_option("--vault", a.vault, "Vault (in this region, the target)")->required();
  if (name_help) cmd->add_option("-n,--name", a.name, name_help)->required();
}

}  // namespace

void RegisterRecoveryNetworkCommands(CLI::App& recovery, CLI::App& replication, Action* selected) {
  CLI::App* mapping = AddNoun(recovery, "network-mapping",
                              "Which network of this region a source region's network fails over to");
  auto mc = std::make_shared<MapArgs>();
  CLI::App* create = mapping->add_subcommand("create", "Create or replace a network mapping");
  AddVaultOptions(create, *mc, "Mapping name");
  create->add_option("--source-network", mc->source_network,
                     "The network in the source region (its id, or its name with "
                     "--source-network-group)")
      ->required();
  create->add_option("--source-network-group", mc->source_network_group,
                     "Resource group of --source-network in the source region");
  create->add_option("--target-network", mc->target_network,
                     "The network of this region its NICs fail over to (name or id)")
      ->required();
  create->add_option("--test-network", mc->test_network,
                     "The network of this region test failovers use (default: an isolated copy "
                     "of the source network, made per drill)");
  create->add_option("--network-group", mc->network_group,
                     "Resource group of the target and test networks (default: -g)");
  SetAction(create, selected, [mc](Context& ctx) { return CreateMapping(ctx, *mc); });

  auto ml = std::make_shared<MapArgs>();
  CLI::App* list = mapping->add_subcommand("list", "List a vault's network mappings");
  AddVaultOptions(list, *ml, nullptr);
  SetAction(list, selected, [ml](Context& ctx) {
    return ctx.List(VaultPath(ctx, *ml) + "/replicationNetworkMappings", MappingTable());
  });
  auto ms = std::make_shared<MapArgs>();
  CLI::App* show = mapping->add_subcommand("show", "Show a network mapping");
  AddVaultOptions(show, *ms, "Mapping name");
  SetAction(show, selected, [ms](Context& ctx) {
    return ctx.Show(VaultPath(ctx, *ms) + "/replicationNetworkMappings/" + ms->name, MappingTable());
  });
  auto md = std::make_shared<MapArgs>();
  CLI::App* del = mapping->add_subcommand("delete", "Delete a network mapping");
  AddVaultOptions(del, *md, "Mapping name");
  SetAction(del, selected, [md](Context& ctx) -> CliStatus {
    CLI_RETURN_IF_ERROR(ctx.Write(
        "DELETE", VaultPath(ctx, *md) + "/replicationNetworkMappings/" + md->name, nullptr));
    return CliStatus::Ok();
  });

  auto ns = std::make_shared<MapArgs>();
  CLI::App* nic_show = replication.add_subcommand(
      "nic-show", "Where each NIC of a replicated VM goes on a failover and on a test failover");
  AddVaultOptions(nic_show, *ns, "Replicated item name");
  SetAction(nic_show, selected, [ns](Context& ctx) { return ShowNics(ctx, *ns); });

  auto nset = std::make_shared<MapArgs>();
  CLI::App* nic_set = replication.add_subcommand(
      "nic-set", "The item's own choice for one NIC (over the network mapping)");
  AddVaultOptions(nic_set, *nset, "Replicated item name");
  nic_set->add_option("--nic", nset->nic, "The NIC's id in the source region")->required();
  nic_set->add_option("--target-network", nset->target_network, "Network it fails over to");
  nic_set->add_option("--recovery-subnet", nset->recovery_subnet, "Subnet it fails over to");
  nic_set->add_option("--recovery-ip", nset->recovery_ip, "Static address it gets there");
  nic_set->add_option("--recovery-public-ip", nset->recovery_public_ip,
                      "Public IP of this region it gets (name or id)");
  nic_set->add_option("--test-network", nset->test_network, "Network a test failover uses");
  nic_set->add_option("--test-subnet", nset->test_subnet, "Subnet a test failover uses");
  nic_set->add_option("--test-ip", nset->test_ip, "Static address in a test failover");
  nic_set->add_option("--network-group", nset->network_group,
                      "Resource group of the networks and public IP (default: -g)");
  nic_set->add_flag("--clear", nset->clear, "Remove the item's choice for the NIC");
  SetAction(nic_set, selected, [nset](Context& ctx) { return SetNic(ctx, *nset); });
}

}  // namespace stratus::cli
