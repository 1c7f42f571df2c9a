#include "network/route_tables.h"

#include <set>

#include "core/resource_id.h"

namespace stratus::network {

std::string NextHopName(NextHop h) {
  switch (h) {
    case NextHop::kVnetLocal: return "VnetLocal";
    case NextHop::kVnetPeering: return "VNetPeering";
    case NextHop::kInternet: return "Internet";
    case NextHop::kVirtualAppliance: return "VirtualAppliance";
    case NextHop::kNone: return "None";
  }
  return "None";
}

Result<Route> ParseRoute(const Json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument("Each route must be an object.", where);
  Route r;
  r.name = j.value("name", "");
  RETURN_IF_ERROR(ValidateResourceName(r.name, "route", 80));
  const Json p = j.value("properties", Json::object());
  if (!p.is_object()) return InvalidArgument("'properties' must be an object.", where + ".properties");
  if (!p.contains("addressPrefix") || !p["addressPrefix"].is_string())
    return InvalidArgument("Route '" + r.name + "' needs 'addressPrefix'.",
                           where + ".properties.addressPrefix", "MissingParameter");
  ASSIGN_OR_RETURN(r.prefix, ParseIpv4Prefix(p["addressPrefix"].get<std::string>(),
                                             where + ".properties.addressPrefix"));
  std::string type = p.value("nextHopType", "");
  if (EqualsIgnoreCase(type, "VirtualAppliance")) {
    r.next_hop = NextHop::kVirtualAppliance;
  } else if (EqualsIgnoreCase(type, "VnetLocal")) {
    r.next_hop = NextHop::kVnetLocal;
  } else if (EqualsIgnoreCase(type, "Internet")) {
    r.next_hop = NextHop::kInternet;
  } else if (EqualsIgnoreCase(type, "None")) {
    r.next_hop = NextHop::kNone;
  } else if (EqualsIgnoreCase(type, "VirtualNetworkGateway")) {
    return InvalidArgument("Route '" + r.name + "': this region has no virtual network gateways.",
                           where + ".properties.nextHopType", "FeatureNotAvailable");
  } else {
    return InvalidArgument("Route '" + r.name + "': nextHopType '" + type +
                               "' is not one of VirtualAppliance, VnetLocal, Internet, None.",
                           where + ".properties.nextHopType", "InvalidRouteNextHopType");
  }
  bool has_ip = p.contains("nextHopIpAddress") && !p["nextHopIpAddress"].is_null() &&
                !(p["nextHopIpAddress"].is_string() && p["nextHopIpAddress"].get<std::string>().empty());
  if (r.next_hop == NextHop::kVirtualAppliance) {
    if (!has_ip || !p["nextHopIpAddress"].is_string())
      return InvalidArgument("Route '" + r.name + "' goes to a VirtualAppliance and needs its "
                             "'nextHopIpAddress'.",
                             where + ".properties.nextHopIpAddress", "InvalidRouteNextHopIpAddress");
    ASSIGN_OR_RETURN(r.next_hop_ip, ParseIpv4(p["nextHopIpAddress"].get<std::string>(),
                                              where + ".properties.nextHopIpAddress"));
  } else if (has_ip) {
    return InvalidArgument("Route '" + r.name + "': 'nextHopIpAddress' is only for nextHopType "
                           "VirtualAppliance.",
                           where + ".properties.nextHopIpAddress", "InvalidRouteNextHopIpAddress");
  }
  return r;
}

Status ValidateRoutes(const std::vector<Route>& routes) {
  std::set<std::string> names;
  std::set<Ipv4Prefix> prefixes;
  for (auto& r : routes) {
    if (!names.insert(ToLower(r.name)).second)
      return InvalidArgument("Route '" + r.name + "' is listed twice.", r.name,
                             "DuplicateResourceName");
    if (!prefixes.insert(r.prefix).second)
      return InvalidArgument("Two routes of the table have address prefix " + r.prefix.ToString() +
                                 " (route '" + r.name + "').",
                             r.name, "DuplicateRouteAddressPrefix");
  }
  return Status::Ok();
}

Json RouteJson(const Route& r) {
  Json p = {{"addressPrefix", r.prefix.ToString()},
            {"nextHopType", NextHopName(r.next_hop)},
            {"provisioningState", "Succeeded"}};
  if (r.next_hop == NextHop::kVirtualAppliance) p["nextHopIpAddress"] = r.next_hop_ip.ToString();
  return p;
}

std::vector<Route> SystemRoutes(const std::vector<Ipv4Prefix>& spaces,
                                const std::vector<Ipv4Prefix>& peered) {
  std::vector<Route> out;
  for (auto& s : spaces) out.push_back({"", s, NextHop::kVnetLocal, {}});
  for (auto& s : peered) out.push_back({"", s, NextHop::kVnetPeering, {}});
  out.push_back({"", {Ipv4{0}, 0}, NextHop::kInternet, {}});
  for (auto [net, len] : {std::pair{0x0a000000u, 8}, {0xac100000u, 12}, {0xc0a80000u, 16},
                          {0x64400000u, 10}})
    out.push_back({"", {Ipv4{net}, len}, NextHop::kNone, {}});
  return out;
}

std::vector<EffectiveRoute> EffectiveRoutes(const std::vector<Route>& system,
                                            const std::vector<Route>& user) {
  std::vector<EffectiveRoute> out;
  std::set<Ipv4Prefix> user_prefixes;
  for (auto& u : user) {
    out.push_back({true, true, u});
    user_prefixes.insert(u.prefix);
  }
  for (auto& s : system) out.push_back({false, !user_prefixes.count(s.prefix), s});
  return out;
}

Json EffectiveRoutesJson(const std::vector<EffectiveRoute>& routes) {
  Json out = Json::array();
  for (auto& e : routes) {
    Json ips = Json::array();
    if (e.route.next_hop == NextHop::kVirtualAppliance) ips.push_back(e.route.next_hop_ip.ToString());
    Json j = {{"source", e.user ? "User" : "Default"},
              {"state", e.active ? "Active" : "Invalid"},
              {"addressPrefix", {e.route.prefix.ToString()}},
              {"nextHopType", NextHopName(e.route.next_hop)},
              {"nextHopIpAddress", ips},
              {"disableBgpRoutePropagation", false}};
    if (e.user) j["name"] = e.route.name;
    out.push_back(j);
  }
  return out;
}

}  // namespace stratus::network
