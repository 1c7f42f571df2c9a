// The routes and policy rules of a VNET's router namespace (beyond the subnets' connected
// routes, which the kernel makes from the gateway addresses), as `ip -batch` lines that turn
// what is there into what should be. Pure functions, thread-safe.
//
// Peerings (network_engine.h): in the main table, each peer's spaces via the peer router's
// transit address over the peering veth (onlink). What enters from a peer is routed by rules
// (preferences 900-2999, which this file owns; other rules are left alone):
//   pref 1000  iif <peer veth> [from <peer space>]  lookup 100   (table 100: only this VNET's
//                                                                  subnets, then blackhole)
//   pref 1001  iif <peer veth>                       blackhole   (sources not in the peer's
//                                                                  spaces; all when access off)
// so a packet from a peer reaches this VNET's subnets and nothing else — never another peer
// (peering is not transitive) — and forwarded traffic (a source outside the peer's spaces) only
// when the peering allows it.
//
// Appliances in a peer (hub and spoke): a VirtualAppliance route whose address is not in this
// VNET goes to the peer whose space holds it (via its transit address over the peering veth);
// the peer routes what the subnet sends by the subnet's own routes (SteeredSubnet):
//   pref 900   iif <peer veth> from <subnet>  lookup <PeerSteeringTable>   (appliance routes,
//                                                                  `throw` for the others)
// and forwards to the appliance on its subnet; when no appliance route matches, the lookup
// throws and the rules above decide.
//
// Route tables: a subnet with one gets its own kernel table (SubnetRouteTable of its index) and
//   pref 2000  iif gw<subnet>  lookup <its table>
// whose routes are its effective routes (route_tables.h) compiled so that the kernel's longest
// match picks what Azure's would: VnetLocal -> the VNET's subnets inside the prefix (each one
// unless a longer user route covers it) and blackhole for the rest of it; VNetPeering -> the
// peer's link; VirtualAppliance -> the appliance's address on its subnet (onlink); None ->
// blackhole; Internet -> the edge (kEdgeAddress over the uplink veth) when the region has an
// uplink, else unreachable.
//
// Uplink (UplinkDatapath): in the main table `default via 169.254.0.0 dev up onlink` and
// blackholes for 10/8, 172.16/12, 192.168/16 and 100.64/10 (a peering routing exactly one of
// those prefixes keeps it). Every route this file makes carries `proto static`.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "network/network_engine.h"

namespace stratus::network {

inline constexpr int kFromPeersTable = 100;
// The kernel routing table of the subnet with index `subnet` (kernel_names.h) when it has a
// route table.
inline uint32_t SubnetRouteTable(uint32_t subnet) { return 0x01000000u + subnet; }
// The kernel routing table, in a peer's router, of what the subnet with index `subnet` sends to
// the peer's appliances.
inline uint32_t PeerSteeringTable(uint32_t subnet) { return 0x02000000u + subnet; }

struct RouterRoute {
  std::string table = "main";
  std::string type = "unicast";  // or "blackhole", "unreachable", "throw"
  std::string dst;               // "10.2.0.0/16", "default" (never "0.0.0.0/0")
  std::string via;               // gateway, "" for none
  std::string dev;               // "" for blackhole
  std::string Key() const;
  auto operator<=>(const RouterRoute&) const = default;
};

struct RouterRule {
  int pref = 0;
  std::string iif;
  std::string from;    // "10.2.0.0/16", "" for all
  std::string action;  // "lookup 100", "blackhole"
  std::string Key() const;
  auto operator<=>(const RouterRule&) const = default;
};

struct RouterRouting {
  std::vector<RouterRoute> routes;
  std::vector<RouterRule> rules;
};

// What the router of `vnet` needs, for the peerings whose veth is in `present_veths` (the
// others wait for their peer's namespace).
RouterRouting DesiredRouting(const VnetDatapath& vnet, const std::set<std::string>& present_veths);
// What is there, from `ip -json route show table all proto static` and `ip -json rule show`.
Result<RouterRouting> ParseRouting(const Json& routes, const Json& rules);
// `ip -batch` lines from `have` to `want`: stale rules and routes deleted, then missing routes
// and rules added (routes before the rules that lead to them). Empty when they are the same.
std::vector<std::string> RoutingChanges(const RouterRouting& have, const RouterRouting& want);

}  // namespace stratus::network
