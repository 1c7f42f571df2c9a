// Helpers shared by the files of NetworkService (network_service.cc: VNETs, subnets and the
// datapath; network_nics.cc: NICs and NicBindings; network_security.cc: security groups).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/resource_id.h"
#include "core/status.h"
#include "store/store.h"
#include "network/ipv4.h"
#include "network/security_rules.h"

namespace stratus::network::internal {

inline constexpr char kVnetTypeName[] = "Stratus.Network/virtualNetworks";
inline constexpr char kSubnetTypeName[] = "Stratus.Network/virtualNetworks/subnets";
inline constexpr char kIpConfigTypeName[] = "Stratus.Network/networkInterfaces/ipConfigurations";
inline constexpr char kNsgTypeName[] = "Stratus.Network/networkSecurityGroups";
inline constexpr char kRouteTableTypeName[] = "Stratus.Network/routeTables";

// "web-net_1" -> "web-net-1": the VNET's DNS domain is "<label>.internal".
std::string DnsLabel(const std::string& name);
// "52:54:00:ab:cd:ef" -> "52-54-00-AB-CD-EF" (how ARM shows a MAC).
std::string ArmMac(const std::string& mac);
// "52-54-00-AB-CD-EF" or "52:54:00:ab:cd:ef" -> "52:54:00:ab:cd:ef"; InvalidArgument naming
// `field` for anything else, a multicast or zero MAC, or the gateways' 12:34:56:78:9a:bc.
Result<std::string> ParseMac(const Json& text, const std::string& field);
// A stored subnet's prefix.
Result<Ipv4Prefix> SubnetPrefix(const Json& subnet);
// The member named `name` (any case) of the array at `path` of `body`, or nullptr.
const Json* FindNamed(const Json& body, const char* path, const std::string& name);
// The subnet / peering `name` of a VNET body, or nullptr.
inline const Json* FindSubnet(const Json& vnet_body, const std::string& name) {
  return FindNamed(vnet_body, "properties.subnets", name);
}
inline const Json* FindPeering(const Json& vnet_body, const std::string& name) {
  return FindNamed(vnet_body, "properties.virtualNetworkPeerings", name);
}
// The VNET id and subnet name of a subnet id, checked to be a subnet of `subscription`.
Result<std::pair<ResourceId, std::string>> ParseSubnetId(const std::string& text,
                                                         const std::string& subscription,
                                                         const std::string& field);
// A top-level resource body: its known members, location (the region's) and tags; returns the
// location and the properties object.
Result<std::pair<std::string, Json>> TopLevel(const Json& body, const std::string& region);
// A VNET body's address spaces.
std::vector<Ipv4Prefix> SpacesOf(const Json& vnet_body);
// The address spaces of a VNET's Connected peerings (network_peering.cc): all of them (routes),
// or those that allow access (the VirtualNetwork tag).
std::vector<Ipv4Prefix> PeeredSpaces(const Json& vnet_body, bool with_access_only);
// What the security tags mean for the NICs of a VNET (its body): its spaces and its peers'
// (VirtualNetwork), its gateways (AzureLoadBalancer).
TagContext TagsOf(const Json& vnet_body);
// {"id"} of every subnet of `vnets` whose properties.<member>.id is `key` (lower case):
// the subnets using an NSG ("networkSecurityGroup") or a route table ("routeTable").
Json SubnetsUsing(const std::vector<store::Record>& vnets, const char* member,
                  const std::string& key);
// The member of `children` (a VNET's subnets, an NSG's rules) named like `id`, or NotFound
// naming it as a `what` of its `parent_what`.
Result<Json> ChildNamed(const Json& children, const ResourceId& id, const std::string& what,
                        const std::string& parent_what);
// The id of a `{"id": ...}` reference that must name a resource of `type_key`
// ("stratus.network/networksecuritygroups") in `subscription`; "" for an absent or null one.
Result<std::string> ReferenceOf(const Json& parent, const std::string& member,
                                const std::string& type_key, const std::string& subscription,
                                const std::string& field);

}  // namespace stratus::network::internal
