#include "network/router_routing.h"

#include <algorithm>
#include <map>

#include "network/kernel_names.h"

namespace stratus::network {

namespace {

constexpr const char* kPrivateRanges[] = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                          "100.64.0.0/10"};

std::string AddRoute(const RouterRoute& r) {
  std::string s = "route add ";
  if (r.type != "unicast") s += r.type + " ";
  s += r.dst;
  if (!r.via.empty()) s += " via " + r.via;
  if (!r.dev.empty()) s += " dev " + r.dev + (r.via.empty() ? " scope link" : " onlink");
  return s + " table " + r.table + " proto static";
}

std::string DelRoute(const RouterRoute& r) {
  std::string s = "route del ";
  if (r.type != "unicast") s += r.type + " ";
  s += r.dst;
  if (!r.via.empty()) s += " via " + r.via;
  if (!r.dev.empty()) s += " dev " + r.dev;
  return s + " table " + r.table + " proto static";
}

std::string RuleSpec(const RouterRule& r) {
  std::string s = "pref " + std::to_string(r.pref) + " iif " + r.iif;
  if (!r.from.empty()) s += " from " + r.from;
  return s + " " + r.action;
}

std::string Dst(const Ipv4Prefix& p) { return p.length == 0 ? "default" : p.ToString(); }

// The routes of subnet `s`'s own table (see the header).
void SubnetTable(const VnetDatapath& vnet, const SubnetDatapath& s,
                 const std::set<std::string>& present, std::vector<RouterRoute>& out) {
  const std::string table = std::to_string(s.route_table);
  std::vector<const EffectiveRoute*> active;
  for (auto& e : s.routes)
    if (e.active) active.push_back(&e);
  for (const EffectiveRoute* e : active) {
    const Route& r = e->route;
    switch (r.next_hop) {
      case NextHop::kVnetLocal: {
        bool whole = false;
        for (auto& sub : vnet.subnets) {
          if (!r.prefix.Contains(sub.prefix)) continue;
          bool shadowed = false;
          for (const EffectiveRoute* o : active)
            shadowed = shadowed || (o != e && o->route.prefix.length > r.prefix.length &&
                                    o->route.prefix.length <= sub.prefix.length &&
                                    o->route.prefix.Contains(sub.prefix));
          if (shadowed) continue;
          out.push_back({table, "unicast", Dst(sub.prefix), "", sub.veth_in_router});
          whole = whole || sub.prefix == r.prefix;
        }
        if (!whole) out.push_back({table, "blackhole", Dst(r.prefix), "", ""});
        break;
      }
      case NextHop::kVnetPeering: {
        const PeeringDatapath* via = nullptr;
        for (auto& p : vnet.peerings)
          for (auto& sp : p.remote_spaces)
            if (sp.Contains(r.prefix) && present.count(p.veth)) via = &p;
        if (via)
          out.push_back({table, "unicast", Dst(r.prefix), via->remote_transit.ToString(), via->veth});
        else
          out.push_back({table, "blackhole", Dst(r.prefix), "", ""});
        break;
      }
      case NextHop::kVirtualAppliance: {
        const SubnetDatapath* on = nullptr;
        for (auto& sub : vnet.subnets)
          if (sub.prefix.Contains(r.next_hop_ip)) on = &sub;
        // Not here: the peer whose space holds it routes it on (SteeredSubnet).
        const PeeringDatapath* peer = nullptr;
        for (auto& p : vnet.peerings)
          for (auto& sp : p.remote_spaces)
            if (!on && sp.Contains(r.next_hop_ip) && present.count(p.veth))
              peer = &p;
        if (on)
          out.push_back({table, "unicast", Dst(r.prefix), r.next_hop_ip.ToString(), on->veth_in_router});
        else if (peer)
          out.push_back({table, "unicast", Dst(r.prefix), peer->remote_transit.ToString(), peer->veth});
        else
          out.push_back({table, "blackhole", Dst(r.prefix), "", ""});
        break;
      }
      case NextHop::kInternet:
        if (present.count(vnet.uplink.veth))
          out.push_back({table, "unicast", Dst(r.prefix), Ipv4{kEdgeAddress}.ToString(),
                         vnet.uplink.veth});
        else
          out.push_back({table, "unreachable", Dst(r.prefix), "", ""});
        break;
      case NextHop::kNone:
        out.push_back({table, "blackhole", Dst(r.prefix), "", ""});
        break;
    }
  }
}

}  // namespace

std::string RouterRoute::Key() const { return table + "|" + type + "|" + dst + "|" + via + "|" + dev; }

std::string RouterRule::Key() const { return RuleSpec(*this); }

RouterRouting DesiredRouting(const VnetDatapath& vnet, const std::set<std::string>& present) {
  RouterRouting out;
  bool any = false;
  const std::string peers = std::to_string(kFromPeersTable);
  for (auto& p : vnet.peerings) {
    if (!present.count(p.veth)) continue;
    any = true;
    for (auto& sp : p.remote_spaces)
      out.routes.push_back({"main", "unicast", Dst(sp), p.remote_transit.ToString(), p.veth});
    if (p.allow_access && p.allow_forwarded) {
      out.rules.push_back({1000, p.veth, "", "lookup " + peers});
    } else {
      if (p.allow_access)
        for (auto& sp : p.remote_spaces)
          out.rules.push_back({1000, p.veth, sp.ToString(), "lookup " + peers});
      out.rules.push_back({1001, p.veth, "", "blackhole"});
    }
  }
  // What peers' subnets send to this VNET's appliances.
  for (auto& p : vnet.peerings) {
    if (!present.count(p.veth) || !p.allow_access) continue;
    for (auto& st : p.steered) {
      const std::string table = std::to_string(st.table);
      for (auto& hop : st.routes) {
        if (!hop.appliance) {
          out.routes.push_back({table, "throw", Dst(hop.prefix), "", ""});
          continue;
        }
        const SubnetDatapath* on = nullptr;
        for (auto& sub : vnet.subnets)
          if (sub.prefix.Contains(*hop.appliance)) on = &sub;
        if (on)
          out.routes.push_back(
              {table, "unicast", Dst(hop.prefix), hop.appliance->ToString(), on->veth_in_router});
        else
          out.routes.push_back({table, "blackhole", Dst(hop.prefix), "", ""});
      }
      out.rules.push_back({900, p.veth, st.source.ToString(), "lookup " + table});
    }
  }
  if (any) {
    for (auto& s : vnet.subnets)
      out.routes.push_back({peers, "unicast", Dst(s.prefix), "", s.veth_in_router});
    out.routes.push_back({peers, "blackhole", "default", "", ""});
  }
  // The way out: a default route to the edge, and the private ranges that must never leave
  // (Azure's None system routes) blackholed unless a peering routes that very prefix.
  if (!vnet.uplink.edge_netns.empty() && present.count(vnet.uplink.veth)) {
    out.routes.push_back({"main", "unicast", "default", Ipv4{kEdgeAddress}.ToString(),
                          vnet.uplink.veth});
    for (const char* p : kPrivateRanges) {
      bool routed = false;
      for (auto& r : out.routes) routed = routed || (r.table == "main" && r.dst == p);
      // A subnet of exactly that range has the kernel's connected route for it.
      for (auto& sub : vnet.subnets) routed = routed || Dst(sub.prefix) == p;
      if (!routed) out.routes.push_back({"main", "blackhole", p, "", ""});
    }
  }
  for (auto& s : vnet.subnets) {
    if (s.route_table == 0) continue;
    SubnetTable(vnet, s, present, out.routes);
    out.rules.push_back({2000, s.veth_in_router, "", "lookup " + std::to_string(s.route_table)});
  }
  return out;
}

Result<RouterRouting> ParseRouting(const Json& routes, const Json& rules) {
  if (!routes.is_array() || !rules.is_array())
    return Internal("network: 'ip -json' printed no array of routes or rules");
  RouterRouting out;
  for (auto& j : routes) {
    RouterRoute r;
    r.table = j.value("table", "main");
    r.type = j.value("type", "unicast");
    r.dst = j.value("dst", "");
    r.via = j.value("gateway", "");
    r.dev = j.value("dev", "");
    if (r.dst.empty()) continue;
    if (r.dst != "default" && r.dst.find('/') == std::string::npos) r.dst += "/32";
    out.routes.push_back(r);
  }
  for (auto& j : rules) {
    int pref = j.value("priority", 0);
    if (pref < 900 || pref > 2999) continue;
    RouterRule r;
    r.pref = pref;
    r.iif = j.value("iif", "");
    std::string src = j.value("src", "all");
    if (src != "all")
      r.from = src + "/" + std::to_string(j.value("srclen", 32));
    if (j.contains("table"))
      r.action = "lookup " + j["table"].get<std::string>();
    else
      r.action = j.value("action", "unknown");
    out.rules.push_back(r);
  }
  return out;
}

std::vector<std::string> RoutingChanges(const RouterRouting& have, const RouterRouting& want) {
  std::map<std::string, const RouterRoute*> have_routes, want_routes;
  std::map<std::string, const RouterRule*> have_rules, want_rules;
  for (auto& r : have.routes) have_routes[r.Key()] = &r;
  for (auto& r : want.routes) want_routes[r.Key()] = &r;
  for (auto& r : have.rules) have_rules[r.Key()] = &r;
  for (auto& r : want.rules) want_rules[r.Key()] = &r;
  std::vector<std::string> out;
  for (auto& [k, r] : have_rules)
    if (!want_rules.count(k)) out.push_back("rule del " + RuleSpec(*r));
  for (auto& [k, r] : have_routes)
    if (!want_routes.count(k)) out.push_back(DelRoute(*r));
  for (auto& [k, r] : want_routes)
    if (!have_routes.count(k)) out.push_back(AddRoute(*r));
  for (auto& [k, r] : want_rules)
    if (!have_rules.count(k)) out.push_back("rule add " + RuleSpec(*r));
  return out;
}

}  // namespace stratus::network
