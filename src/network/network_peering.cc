// NetworkService: VNET peerings (virtualNetworks/{v}/virtualNetworkPeerings/{p}).
//
// A peering is stored inline in its VNET's record (properties.virtualNetworkPeerings), like
// subnets. Its state follows Azure's: Initiated while the remote VNET has no peering back,
// Connected once it has, Disconnected when the remote side was deleted after being Connected
// (re-creating the remote side connects it again). The datapath (a veth between the two
// routers, routes, rules: router_routing.h) exists only for Connected peerings. Every change to
// a VNET refreshes the peerings that point at it (their state and remoteAddressSpace, which is
// always kept in sync: no "sync" action is needed after an address space changes).
#include <set>

#include "api/resource_util.h"
#include "core/uuid.h"
#include "network/kernel_names.h"
#include "network/network_internal.h"
#include "network/network_service.h"

namespace stratus::network {

using namespace internal;

namespace {

constexpr char kPeeringTypeName[] = "Stratus.Network/virtualNetworks/virtualNetworkPeerings";

std::string RemoteKeyOf(const Json& peering) {
  const Json* id = JsonPath(peering, "properties.remoteVirtualNetwork.id");
  if (!id || !id->is_string()) return "";
  auto rid = ResourceId::Parse(id->get<std::string>());
  return rid.ok() ? rid->Key() : "";
}

const Json& PeeringsOf(const Json& vnet_body) {
  static const Json kEmpty = Json::array();
  const Json* p = JsonPath(vnet_body, "properties.virtualNetworkPeerings");
  return p && p->is_array() ? *p : kEmpty;
}

// A space of `a` that overlaps one of `b`, as "x overlaps y", or "".
std::string Overlap(const std::vector<Ipv4Prefix>& a, const std::vector<Ipv4Prefix>& b) {
  for (auto& x : a)
    for (auto& y : b)
      if (x.Overlaps(y)) return x.ToString() + " overlaps " + y.ToString();
  return "";
}

}  // namespace

namespace internal {

std::vector<Ipv4Prefix> SpacesOf(const Json& vnet_body) {
  std::vector<Ipv4Prefix> out;
  const Json* spaces = JsonPath(vnet_body, "properties.addressSpace.addressPrefixes");
  if (spaces && spaces->is_array())
    for (auto& sp : *spaces) {
      auto p = ParseIpv4Prefix(sp.is_string() ? sp.get<std::string>() : "", "");
      if (p.ok()) out.push_back(*p);
    }
  return out;
}

std::vector<Ipv4Prefix> PeeredSpaces(const Json& vnet_body, bool with_access_only) {
  std::vector<Ipv4Prefix> out;
  for (auto& p : PeeringsOf(vnet_body)) {
    const Json& pp = p["properties"];
    if (pp.value("peeringState", "") != "Connected") continue;
    if (with_access_only && !pp.value("allowVirtualNetworkAccess", true)) continue;
    const Json* spaces = JsonPath(pp, "remoteAddressSpace.addressPrefixes");
    if (!spaces || !spaces->is_array()) continue;
    for (auto& sp : *spaces) {
      auto pfx = ParseIpv4Prefix(sp.is_string() ? sp.get<std::string>() : "", "");
      if (pfx.ok()) out.push_back(*pfx);
    }
  }
  return out;
}

}  // namespace internal

Result<std::vector<store::Record>> NetworkService::AllVnets() {
  return ListAll(kVnetType, "/subscriptions/");
}

std::set<std::string> NetworkService::PeersOf(const std::string& vnet_key,
                                              const std::vector<store::Record>& vnets) {
  std::set<std::string> out;
  for (auto& v : vnets)
    for (auto& p : PeeringsOf(v.body)) {
      std::string remote = RemoteKeyOf(p);
      if (v.key == vnet_key && !remote.empty()) out.insert(remote);
      if (remote == vnet_key) out.insert(v.key);
    }
  out.erase(vnet_key);
  return out;
}

Status NetworkService::CheckPeeredSpaces(const std::string& vnet_key,
                                         const std::vector<Ipv4Prefix>& spaces) {
  ASSIGN_OR_RETURN(auto vnets, AllVnets());
  std::set<std::string> peers = PeersOf(vnet_key, vnets);
  for (auto& v : vnets) {
    if (!peers.count(v.key)) continue;
    std::string o = Overlap(spaces, SpacesOf(v.body));
    if (!o.empty())
      return InvalidArgument("The address space of the virtual network would overlap that of "
                             "peered virtual network '" + v.body.value("name", "") + "' (" + o +
                                 ").",
                             "properties.addressSpace.addressPrefixes", "VnetAddressSpacesOverlap");
  }
  return Status::Ok();
}

Status NetworkService::RefreshPeeringsLocked(const std::set<std::string>& vnet_keys) {
  for (auto& key : vnet_keys) {
    auto vnet = ctx_.store->Get(key);
    if (!vnet.ok()) continue;
    store::Record rec = *vnet;
    Json& peerings = rec.body["properties"]["virtualNetworkPeerings"];
    if (!peerings.is_array()) peerings = Json::array();
    for (auto& p : peerings) {
      Json& pp = p["properties"];
      std::string state = pp.value("peeringState", "Initiated");
      auto remote = ctx_.store->Get(RemoteKeyOf(p));
      bool back = false;
      if (remote.ok())
        for (auto& rp : PeeringsOf(remote->body))
          if (RemoteKeyOf(rp) == key) back = true;
      if (back) {
        state = "Connected";
        Json spaces = remote->body["properties"]["addressSpace"];
        pp["remoteAddressSpace"] = spaces;
        pp["remoteVirtualNetworkAddressSpace"] = spaces;
      } else if (state != "Initiated") {
        state = "Disconnected";
      }
      pp["peeringState"] = state;
      pp["peeringSyncLevel"] = state == "Connected" ? "FullyInSync" : "RemoteNotInSync";
    }
    if (rec.body != vnet->body) {
      ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, {}));
    }
  }
  // Then the datapaths, once every record says the new state: a VNET's datapath depends on its
  // peers' records too (the routes of their subnets that lead to its appliances).
  for (auto& key : vnet_keys) RETURN_IF_ERROR(ConvergeLocked(key));
  return Status::Ok();
}

Result<NetworkService::Written> NetworkService::PutPeering(const ResourceId& id, const Json& body,
                                                          const std::string& caller) {
  RETURN_IF_ERROR(
      api::RejectUnknownKeys(body, {"properties", "name", "id", "type", "etag"}, ""));
  Json p = body.value("properties", Json::object());
  if (!p.is_object()) return InvalidArgument("'properties' must be an object.", "properties");
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      p, {"remoteVirtualNetwork", "allowVirtualNetworkAccess", "allowForwardedTraffic",
          "allowGatewayTransit", "useRemoteGateways", "peeringState", "peeringSyncLevel",
          "remoteAddressSpace", "remoteVirtualNetworkAddressSpace", "localAddressSpace",
          "localVirtualNetworkAddressSpace", "provisioningState", "resourceGuid",
          "doNotVerifyRemoteGateways"},
      "properties"));
  RETURN_IF_ERROR(ValidateResourceName(id.name(), "virtual network peering", 80));
  for (const char* flag : {"allowVirtualNetworkAccess", "allowForwardedTraffic",
                           "allowGatewayTransit", "useRemoteGateways"})
    if (p.contains(flag) && !p[flag].is_boolean())
      return InvalidArgument(std::string("'") + flag + "' must be true or false.",
                             std::string("properties.") + flag);
  for (const char* flag : {"allowGatewayTransit", "useRemoteGateways"})
    if (p.value(flag, false))
      return InvalidArgument(std::string("'") + flag + "' needs a virtual network gateway; "
                             "this region has none.",
                             std::string("properties.") + flag, "FeatureNotAvailable");
  if (!p.contains("remoteVirtualNetwork") || p["remoteVirtualNetwork"].is_null())
    return InvalidArgument("A peering needs 'properties.remoteVirtualNetwork.id'.",
                           "properties.remoteVirtualNetwork", "MissingParameter");
  ResourceId vid = id.Parent();
  ASSIGN_OR_RETURN(std::string remote_key,
                   ReferenceOf(p, "remoteVirtualNetwork", kVnetType, vid.subscription(),
                               "properties.remoteVirtualNetwork.id"));
  std::string remote_text = p["remoteVirtualNetwork"].value("id", "");
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(vid.Key()));
  if (remote_key == vnet.key)
    return InvalidArgument("A virtual network cannot be peered with itself.",
                           "properties.remoteVirtualNetwork.id", "CannotPeerVirtualNetworkToItself");
  auto remote = ctx_.store->Get(remote_key);
  if (!remote.ok())
    return NotFound("Remote virtual network '" + remote_text + "' was not found.",
                    "properties.remoteVirtualNetwork.id", "InvalidResourceReference");
  Json* existing = nullptr;
  Json peerings = PeeringsOf(vnet.body);
  for (auto& e : peerings) {
    bool same_name = EqualsIgnoreCase(e.value("name", ""), id.name());
    if (same_name) existing = &e;
    if (!same_name && RemoteKeyOf(e) == remote_key)
      return InvalidArgument("Virtual network '" + vid.name() + "' already has peering '" +
                                 e.value("name", "") + "' to '" + remote_text + "'.",
                             "properties.remoteVirtualNetwork.id",
                             "VirtualNetworkPeeringAlreadyExists");
  }
  if (existing && RemoteKeyOf(*existing) != remote_key)
    return InvalidArgument("The remote virtual network of a peering cannot be changed; delete "
                           "the peering and create a new one.",
                           "properties.remoteVirtualNetwork.id", "CannotChangeRemoteVirtualNetwork");
  // Routing needs every space reachable from a router to be unambiguous: the remote's spaces
  // may overlap neither this VNET's nor those of its other peers.
  std::vector<Ipv4Prefix> remote_spaces = SpacesOf(remote->body);
  std::string o = Overlap(remote_spaces, SpacesOf(vnet.body));
  if (!o.empty())
    return InvalidArgument("Virtual networks '" + vid.name() + "' and '" +
                               remote->body.value("name", "") +
                               "' cannot be peered: their address spaces overlap (" + o + ").",
                           "properties.remoteVirtualNetwork.id", "VnetAddressSpacesOverlap");
  ASSIGN_OR_RETURN(auto vnets, AllVnets());
  std::set<std::string> peers = PeersOf(vnet.key, vnets);
  for (auto& v : vnets) {
    if (v.key == remote_key || !peers.count(v.key)) continue;
    o = Overlap(remote_spaces, SpacesOf(v.body));
    if (!o.empty())
      return InvalidArgument("Virtual network '" + remote->body.value("name", "") +
                                 "' overlaps '" + v.body.value("name", "") + "', which '" +
                                 vid.name() + "' is already peered with (" + o + ").",
                             "properties.remoteVirtualNetwork.id", "VnetAddressSpacesOverlap");
  }

  Json entry = {
      {"id", vid.Child("virtualNetworkPeerings", existing ? existing->value("name", "") : id.name())
                 .ToString()},
      {"name", existing ? existing->value("name", "") : id.name()},
      {"type", kPeeringTypeName},
      {"properties",
       {{"remoteVirtualNetwork", {{"id", remote->body.value("id", "")}}},
        {"allowVirtualNetworkAccess", p.value("allowVirtualNetworkAccess", true)},
        {"allowForwardedTraffic", p.value("allowForwardedTraffic", false)},
        {"allowGatewayTransit", false},
        {"useRemoteGateways", false},
        {"peeringState", existing ? (*existing)["properties"].value("peeringState", "Initiated")
                                  : "Initiated"},
        {"peeringSyncLevel", "RemoteNotInSync"},
        {"remoteAddressSpace", remote->body["properties"]["addressSpace"]},
        {"remoteVirtualNetworkAddressSpace", remote->body["properties"]["addressSpace"]},
        {"provisioningState", "Succeeded"},
        {"resourceGuid", existing ? (*existing)["properties"].value("resourceGuid", NewUuid())
                                  : NewUuid()}}}};
  if (existing) {
    *existing = entry;
  } else {
    peerings.push_back(entry);
  }
  store::Record rec = vnet;
  rec.body["properties"]["virtualNetworkPeerings"] = peerings;
  api::TouchSystemData(rec.body, caller, ctx_.clock->NowMs());
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, {}));
  RETURN_IF_ERROR(RefreshPeeringsLocked({vnet.key, remote_key}));
  RETURN_IF_ERROR(ConvergeSecurityLocked());
  ASSIGN_OR_RETURN(rec, ctx_.store->Get(vnet.key));
  return Written{rec, existing == nullptr};
}

Status NetworkService::DeletePeering(const ResourceId& id) {
  std::lock_guard<std::mutex> l(mu_);
  ResourceId vid = id.Parent();
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(vid.Key()));
  Json kept = Json::array();
  std::string remote_key;
  for (auto& e : PeeringsOf(vnet.body)) {
    if (EqualsIgnoreCase(e.value("name", ""), id.name()))
      remote_key = RemoteKeyOf(e);
    else
      kept.push_back(e);
  }
  if (kept.size() == PeeringsOf(vnet.body).size())
    return NotFound("Peering '" + id.name() + "' was not found.", id.ToString());
  store::Record rec = vnet;
  rec.body["properties"]["virtualNetworkPeerings"] = kept;
  RETURN_IF_ERROR(ctx_.store->Put(rec, {}).status());
  RETURN_IF_ERROR(RefreshPeeringsLocked({vnet.key, remote_key}));
  return ConvergeSecurityLocked();
}

Result<Json> NetworkService::PeeringView(const ResourceId& id) {
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(id.Parent().Key()));
  ASSIGN_OR_RETURN(Json view, ChildNamed(PeeringsOf(vnet.body), id, "Peering", "virtual network"));
  view["etag"] = vnet.etag;
  return view;
}

Result<Json> NetworkService::PeeringList(const ResourceId& vnet_id) {
  ASSIGN_OR_RETURN(store::Record vnet, ctx_.store->Get(vnet_id.Key()));
  Json list = PeeringsOf(vnet.body);
  for (auto& p : list) p["etag"] = vnet.etag;
  return Json{{"value", list}};
}

Status NetworkService::PeeringsDatapath(const store::Record& vnet, VnetDatapath& d) {
  uint32_t index = vnet.internal.value("index", 0u);
  ASSIGN_OR_RETURN(d.transit, TransitAddress(index));
  for (auto& p : PeeringsOf(vnet.body)) {
    const Json& pp = p["properties"];
    if (pp.value("peeringState", "") != "Connected") continue;
    auto remote = ctx_.store->Get(RemoteKeyOf(p));
    if (!remote.ok()) continue;
    uint32_t remote_index = remote->internal.value("index", 0u);
    PeeringDatapath pd;
    pd.name = p.value("name", "");
    ASSIGN_OR_RETURN(pd.veth, PeeringVeth(remote_index));
    ASSIGN_OR_RETURN(pd.remote_netns, VnetNamespace(rid_, remote_index));
    ASSIGN_OR_RETURN(pd.remote_veth, PeeringVeth(index));
    ASSIGN_OR_RETURN(pd.remote_transit, TransitAddress(remote_index));
    pd.remote_spaces = SpacesOf(remote->body);
    pd.allow_access = pp.value("allowVirtualNetworkAccess", true);
    pd.allow_forwarded = pp.value("allowForwardedTraffic", false);
    ASSIGN_OR_RETURN(pd.steered, SteeredSubnetsOf(*remote, vnet));
    d.peerings.push_back(pd);
  }
  return Status::Ok();
}

}  // namespace stratus::network
