// NetworkService: route tables (routeTables/{t}, routes as sub-resources), their association
// with subnets, the effective routes of a NIC, and the routes a subnet's datapath gets
// (route_tables.h, router_routing.h).
#include <algorithm>
#include <set>

#include "api/resource_util.h"
#include "core/uuid.h"
#include "network/network_internal.h"
#include "network/network_service.h"
#include "network/router_routing.h"

namespace stratus::network {

using namespace internal;

namespace {

constexpr char kRouteTypeName[] = "Stratus.Network/routeTables/routes";

Result<std::vector<Route>> StoredRoutes(const Json& table_body) {
  std::vector<Route> routes;
  const Json* list = JsonPath(table_body, "properties.routes");
  if (!list || !list->is_array()) return routes;
  for (auto& r : *list) {
    Json bare = {{"name", r.value("name", "")}, {"properties", r.value("properties", Json::object())}};
    bare["properties"].erase("provisioningState");
    ASSIGN_OR_RETURN(Route route, ParseRoute(bare, "routes"));
    routes.push_back(route);
  }
  return routes;
}

std::string RouteTableKeyOf(const Json& subnet) {
  const Json* id = JsonPath(subnet, "properties.routeTable.id");
  return id && id->is_string() ? ToLower(id->get<std::string>()) : "";
}

}  // namespace

namespace internal {

Json SubnetsUsing(const std::vector<store::Record>& vnets, const char* member,
                  const std::string& key) {
  Json out = Json::array();
  std::string path = std::string("properties.") + member + ".id";
  for (auto& v : vnets)
    for (auto& s : v.body["properties"].value("subnets", Json::array())) {
      const Json* id = JsonPath(s, path);
      if (id && id->is_string() && ToLower(id->get<std::string>()) == key)
        out.push_back({{"id", s.value("id", "")}});
    }
  return out;
}

}  // namespace internal

Status NetworkService::CheckAppliances(const std::vector<Route>& routes, const Json& subnets,
                                       const std::string& vnet_key, const std::string& vnet_name,
                                       const std::string& table) {
  std::vector<Ipv4Prefix> where;  // the VNET's subnets, then its peers' (hub and spoke)
  for (auto& s : subnets)
    if (auto p = SubnetPrefix(s); p.ok()) where.push_back(*p);
  bool peers_read = false;
  for (auto& r : routes) {
    if (r.next_hop != NextHop::kVirtualAppliance) continue;
    auto holds = [&] {
      for (auto& p : where)
        if (p.Contains(r.next_hop_ip)) return true;
      return false;
    };
    if (!holds() && !peers_read && !vnet_key.empty()) {
      peers_read = true;
      ASSIGN_OR_RETURN(auto vnets, AllVnets());
      std::set<std::string> peers = PeersOf(vnet_key, vnets);
      for (auto& v : vnets)
        if (peers.count(v.key))
          for (auto& s : v.body["properties"].value("subnets", Json::array()))
            if (auto p = SubnetPrefix(s); p.ok()) where.push_back(*p);
    }
    if (!holds())
      return InvalidArgument("Route '" + r.name + "' of route table '" + table +
                                 "' goes to appliance " + r.next_hop_ip.ToString() +
                                 ", which is in no subnet of virtual network '" + vnet_name +
                                 "' or of a virtual network peered with it.",
                             r.name, "NextHopIpAddressNotInVirtualNetwork");
  }
  return Status::Ok();
}

Status NetworkService::CheckRouteTablesOfSubnets(const Json& subnets, const std::string& vnet_key,
                                                 const std::string& vnet_name) {
  for (auto& s : subnets) {
    std::string key = RouteTableKeyOf(s);
    if (key.empty()) continue;
    ASSIGN_OR_RETURN(store::Record rt, ctx_.store->Get(key));
    ASSIGN_OR_RETURN(auto routes, StoredRoutes(rt.body));
    RETURN_IF_ERROR(
        CheckAppliances(routes, subnets, vnet_key, vnet_name, rt.body.value("name", "")));
  }
  return Status::Ok();
}

Result<NetworkService::Written> NetworkService::WriteRouteTableLocked(
    const ResourceId& id, const std::string& location, const Json& tags,
    const std::vector<Route>& routes, const std::string& caller,
    const store::WriteCondition& cond) {
  RETURN_IF_ERROR(ValidateRoutes(routes));
  // Every subnet that uses the table must be able to reach its appliances.
  ASSIGN_OR_RETURN(auto vnets, AllVnets());
  std::vector<std::string> users;
  for (auto& v : vnets) {
    Json subnets = v.body["properties"].value("subnets", Json::array());
    bool uses = false;
    for (auto& s : subnets) uses = uses || RouteTableKeyOf(s) == id.Key();
    if (!uses) continue;
    RETURN_IF_ERROR(CheckAppliances(routes, subnets, v.key, v.body.value("name", ""), id.name()));
    users.push_back(v.key);
  }
  // Their peers too: a peer holding an appliance routes what these subnets send it.
  std::set<std::string> converge(users.begin(), users.end());
  for (auto& key : users)
    for (auto& peer : PeersOf(key, vnets)) converge.insert(peer);
  auto existing = ctx_.store->Get(id.Key());
  store::Record rec;
  if (existing.ok()) {
    rec = *existing;
    api::TouchSystemData(rec.body, caller, ctx_.clock->NowMs());
  } else {
    rec.key = id.Key();
    rec.type = kRouteTableType;
    rec.body = api::NewResourceBody(id, location, tags, caller, ctx_.clock->NowMs());
    rec.body["type"] = kRouteTableTypeName;
    rec.body["properties"] = {{"resourceGuid", NewUuid()}, {"disableBgpRoutePropagation", false}};
  }
  rec.body["tags"] = tags;
  Json list = Json::array();
  for (auto& r : routes)
    list.push_back({{"id", id.Child("routes", r.name).ToString()},
                    {"name", r.name},
                    {"type", kRouteTypeName},
                    {"properties", RouteJson(r)}});
  rec.body["properties"]["routes"] = list;
  rec.body["properties"]["provisioningState"] = "Succeeded";
  if (existing.ok() && existing->body == rec.body) return Written{*existing, false};
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, cond));
  for (auto& key : converge) RETURN_IF_ERROR(ConvergeLocked(key));
  return Written{rec, !existing.ok()};
}

Result<NetworkService::Written> NetworkService::PutRouteTable(const ResourceId& id,
                                                             const Json& body,
                                                             const std::string& caller,
                                                             const store::WriteCondition& cond) {
  ASSIGN_OR_RETURN(auto top, TopLevel(body, ctx_.region));
  auto& [location, p] = top;
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      p, {"routes", "subnets", "disableBgpRoutePropagation", "provisioningState", "resourceGuid"},
      "properties"));
  if (p.contains("disableBgpRoutePropagation") && !p["disableBgpRoutePropagation"].is_boolean())
    return InvalidArgument("'disableBgpRoutePropagation' must be true or false.",
                           "properties.disableBgpRoutePropagation");
  std::lock_guard<std::mutex> l(mu_);
  auto existing = ctx_.store->Get(id.Key());
  std::vector<Route> routes;
  if (p.contains("routes")) {
    if (!p["routes"].is_array())
      return InvalidArgument("'routes' must be an array.", "properties.routes");
    for (size_t i = 0; i < p["routes"].size(); ++i) {
      ASSIGN_OR_RETURN(Route r,
                       ParseRoute(p["routes"][i], "properties.routes[" + std::to_string(i) + "]"));
      routes.push_back(r);
    }
  } else if (existing.ok()) {
    ASSIGN_OR_RETURN(routes, StoredRoutes(existing->body));
  }
  Json tags = body.value("tags", existing.ok() ? existing->body.value("tags", Json::object())
                                               : Json::object());
  return WriteRouteTableLocked(id, location, tags, routes, caller, cond);
}

Result<NetworkService::Written> NetworkService::PutRoute(const ResourceId& id, const Json& body,
                                                        const std::string& caller) {
  RETURN_IF_ERROR(
      api::RejectUnknownKeys(body, {"properties", "name", "id", "type", "etag"}, ""));
  Json r = {{"name", id.name()}, {"properties", body.value("properties", Json::object())}};
  if (r["properties"].is_object()) r["properties"].erase("provisioningState");
  ASSIGN_OR_RETURN(Route route, ParseRoute(r, "properties"));
  std::lock_guard<std::mutex> l(mu_);
  ResourceId tid = id.Parent();
  ASSIGN_OR_RETURN(store::Record table, ctx_.store->Get(tid.Key()));
  ASSIGN_OR_RETURN(auto routes, StoredRoutes(table.body));
  bool found = false;
  for (auto& old : routes)
    if (EqualsIgnoreCase(old.name, route.name)) {
      route.name = old.name;
      old = route;
      found = true;
    }
  if (!found) routes.push_back(route);
  ASSIGN_OR_RETURN(Written w, WriteRouteTableLocked(tid, table.body.value("location", ""),
                                                    table.body.value("tags", Json::object()),
                                                    routes, caller, {}));
  w.created = !found;
  return w;
}

Status NetworkService::DeleteRoute(const ResourceId& id) {
  std::lock_guard<std::mutex> l(mu_);
  ResourceId tid = id.Parent();
  ASSIGN_OR_RETURN(store::Record table, ctx_.store->Get(tid.Key()));
  ASSIGN_OR_RETURN(auto routes, StoredRoutes(table.body));
  auto it = std::find_if(routes.begin(), routes.end(),
                         [&](auto& r) { return EqualsIgnoreCase(r.name, id.name()); });
  if (it == routes.end()) return NotFound("Route '" + id.name() + "' was not found.", id.ToString());
  routes.erase(it);
  return WriteRouteTableLocked(tid, table.body.value("location", ""),
                               table.body.value("tags", Json::object()), routes, "", {})
      .status();
}

Status NetworkService::DeleteRouteTable(const ResourceId& id) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(store::Record table, ctx_.store->Get(id.Key()));
  ASSIGN_OR_RETURN(auto vnets, AllVnets());
  Json users = SubnetsUsing(vnets, "routeTable", table.key);
  if (!users.empty())
    return Conflict("Route table '" + id.name() + "' is used by " + std::to_string(users.size()) +
                        " subnet(s); remove it from them first.",
                    id.ToString(), "InUseRouteTableCannotBeDeleted");
  return ctx_.store->Delete(table.key);
}

Json NetworkService::RouteTableView(const store::Record& table) {
  Json body = api::ToArm(table);
  auto vnets = AllVnets();
  body["properties"]["subnets"] = vnets.ok() ? SubnetsUsing(*vnets, "routeTable", table.key)
                                             : Json::array();
  for (auto& r : body["properties"]["routes"]) r["etag"] = body.value("etag", "");
  return body;
}

Result<Json> NetworkService::RouteView(const ResourceId& id) {
  ASSIGN_OR_RETURN(store::Record table, ctx_.store->Get(id.Parent().Key()));
  return ChildNamed(RouteTableView(table)["properties"]["routes"], id, "Route", "route table");
}

Result<Json> NetworkService::RouteList(const ResourceId& table_id) {
  ASSIGN_OR_RETURN(store::Record table, ctx_.store->Get(table_id.Key()));
  return Json{{"value", RouteTableView(table)["properties"]["routes"]}};
}

Result<std::vector<EffectiveRoute>> NetworkService::SubnetRoutes(const store::Record& vnet,
                                                                 const Json& subnet) {
  std::vector<Route> user;
  std::string key = RouteTableKeyOf(subnet);
  if (!key.empty()) {
    auto table = ctx_.store->Get(key);
    if (table.ok()) {
      ASSIGN_OR_RETURN(user, StoredRoutes(table->body));
    }
  }
  return EffectiveRoutes(SystemRoutes(SpacesOf(vnet.body), PeeredSpaces(vnet.body, false)), user);
}

Result<std::vector<SteeredSubnet>> NetworkService::SteeredSubnetsOf(const store::Record& remote,
                                                                     const store::Record& vnet) {
  std::vector<Ipv4Prefix> here;
  for (auto& s : vnet.body["properties"].value("subnets", Json::array()))
    if (auto p = SubnetPrefix(s); p.ok()) here.push_back(*p);
  std::vector<SteeredSubnet> out;
  const Json& idx = remote.internal["subnets"];
  for (auto& s : remote.body["properties"].value("subnets", Json::array())) {
    if (RouteTableKeyOf(s).empty()) continue;
    ASSIGN_OR_RETURN(auto routes, SubnetRoutes(remote, s));
    SteeredSubnet st;
    bool any = false;
    for (auto& e : routes) {
      if (!e.active) continue;
      SteeredSubnet::Hop hop{e.route.prefix, std::nullopt};
      if (e.route.next_hop == NextHop::kVirtualAppliance)
        for (auto& p : here)
          if (p.Contains(e.route.next_hop_ip)) hop.appliance = e.route.next_hop_ip;
      any = any || hop.appliance.has_value();
      st.routes.push_back(hop);
    }
    if (!any) continue;
    ASSIGN_OR_RETURN(st.source, SubnetPrefix(s));
    st.table = PeerSteeringTable(idx.value(ToLower(s.value("name", "")), 0u));
    out.push_back(std::move(st));
  }
  return out;
}

Status NetworkService::SubnetRoutesDatapath(const store::Record& vnet, const Json& subnet,
                                            uint32_t subnet_index, SubnetDatapath& sd) {
  if (RouteTableKeyOf(subnet).empty()) return Status::Ok();
  sd.route_table = SubnetRouteTable(subnet_index);
  ASSIGN_OR_RETURN(sd.routes, SubnetRoutes(vnet, subnet));
  return Status::Ok();
}

Result<Json> NetworkService::EffectiveRouteTable(const ResourceId& nic_id) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(store::Record nic, ctx_.store->Get(nic_id.Key()));
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(nic.internal.value("vnet", "")));
  const Json* subnet = FindSubnet(vnet.body, nic.internal.value("subnet", ""));
  if (!subnet) return NotFound("The NIC's subnet was not found.", nic_id.ToString());
  ASSIGN_OR_RETURN(auto routes, SubnetRoutes(vnet, *subnet));
  return Json{{"value", EffectiveRoutesJson(routes)}};
}

}  // namespace stratus::network
