// Route tables (user-defined routes) and the routes every subnet has: the ARM shape parsed and
// validated, and the effective routes of a subnet (what its NICs' traffic follows).
//
// A route (ARM's routes[].properties): addressPrefix (CIDR), nextHopType VirtualAppliance
// (with nextHopIpAddress), VnetLocal, Internet or None. System routes ("Default" source, as in
// Azure): each address space of the VNET -> VnetLocal, each peered VNET's space -> VNetPeering,
// 0.0.0.0/0 -> Internet, and 10/8, 172.16/12, 192.168/16, 100.64/10 -> None. A user route
// replaces the system route with the same prefix (which is then listed as Invalid); among the
// rest the longest prefix wins. Errors are InvalidArgument naming the route and field:
// "InvalidRouteNextHopType", "InvalidRouteNextHopIpAddress" (missing for VirtualAppliance,
// present for another type), "DuplicateRouteAddressPrefix", "InvalidAddressPrefixFormat",
// "FeatureNotAvailable" (VirtualNetworkGateway: no gateways here).
// Pure values and functions, thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "network/ipv4.h"

namespace stratus::network {

enum class NextHop { kVnetLocal, kVnetPeering, kInternet, kVirtualAppliance, kNone };

std::string NextHopName(NextHop h);  // ARM's nextHopType

struct Route {
  std::string name;
  Ipv4Prefix prefix;
  NextHop next_hop = NextHop::kNone;
  Ipv4 next_hop_ip;  // VirtualAppliance only
};

// Parses one route from its ARM form ({name, properties: {...}}); `where` names it in errors.
Result<Route> ParseRoute(const Json& route, const std::string& where);
// The routes of one table together: no prefix or name twice.
Status ValidateRoutes(const std::vector<Route>& routes);
// The ARM properties of a route (as a GET returns them).
Json RouteJson(const Route& route);

struct EffectiveRoute {
  bool user = false;    // source User (else Default)
  bool active = true;   // false: replaced by a user route of the same prefix
  Route route;
};

// The system routes of a subnet of a VNET with `spaces`, peered (Connected, access allowed)
// with VNETs whose spaces are `peered`.
std::vector<Route> SystemRoutes(const std::vector<Ipv4Prefix>& spaces,
                                const std::vector<Ipv4Prefix>& peered);
// System and user routes merged, user routes first, each flagged Active or Invalid.
std::vector<EffectiveRoute> EffectiveRoutes(const std::vector<Route>& system,
                                            const std::vector<Route>& user);
// ARM's effectiveRouteTable entries ({source, state, addressPrefix[], nextHopType,
// nextHopIpAddress[]}).
Json EffectiveRoutesJson(const std::vector<EffectiveRoute>& routes);

}  // namespace stratus::network
