#include "network/network_provider.h"

#include "api/resource_util.h"

namespace stratus::network {

using api::ApiRequest;
using api::ApiResponse;

namespace {

enum class Kind {
  kVnet, kSubnet, kPeering, kNic, kNsg, kRule, kRouteTable, kRoute, kPublicIp, kOther
};

Kind KindOf(const ResourceId& id) {
  const auto& tn = id.types_and_names();
  if (tn.size() == 1 && EqualsIgnoreCase(tn[0].first, "virtualNetworks")) return Kind::kVnet;
  bool in_vnet = tn.size() == 2 && EqualsIgnoreCase(tn[0].first, "virtualNetworks");
  if (in_vnet && EqualsIgnoreCase(tn[1].first, "subnets")) return Kind::kSubnet;
  if (in_vnet && EqualsIgnoreCase(tn[1].first, "virtualNetworkPeerings")) return Kind::kPeering;
  if (tn.size() == 1 && EqualsIgnoreCase(tn[0].first, "networkInterfaces")) return Kind::kNic;
  if (tn.size() == 1 && EqualsIgnoreCase(tn[0].first, "networkSecurityGroups")) return Kind::kNsg;
  if (tn.size() == 2 && EqualsIgnoreCase(tn[1].first, "securityRules")) return Kind::kRule;
  if (tn.size() == 1 && EqualsIgnoreCase(tn[0].first, "routeTables")) return Kind::kRouteTable;
  if (tn.size() == 1 && EqualsIgnoreCase(tn[0].first, "publicIPAddresses")) return Kind::kPublicIp;
  if (tn.size() == 2 && EqualsIgnoreCase(tn[0].first, "routeTables") &&
      EqualsIgnoreCase(tn[1].first, "routes"))
    return Kind::kRoute;
  return Kind::kOther;
}

ApiResponse Written(const Json& body, const std::string& etag, bool created) {
  ApiResponse r = ApiResponse::Json200(body, created ? 201 : 200);
  if (!etag.empty()) r.headers["ETag"] = etag;
  return r;
}

}  // namespace

std::vector<std::string> NetworkProvider::ChildTypes(const ResourceId& parent) const {
  if (KindOf(parent) == Kind::kVnet) return {"subnets", "virtualNetworkPeerings"};
  if (KindOf(parent) == Kind::kNsg) return {"securityRules"};
  if (KindOf(parent) == Kind::kRouteTable) return {"routes"};
  return {};
}

bool NetworkProvider::ChildrenInline(const ResourceId& parent, const std::string& child) const {
  return KindOf(parent) == Kind::kVnet || KindOf(parent) == Kind::kRouteTable ||
         (KindOf(parent) == Kind::kNsg && EqualsIgnoreCase(child, "securityRules"));
}

Result<ApiResponse> NetworkProvider::ListInlineChildren(const ApiRequest& req,
                                                        const ResourceId& parent,
                                                        const std::string& child) {
  if (KindOf(parent) == Kind::kNsg) {
    ASSIGN_OR_RETURN(Json rules, service_->SecurityRuleList(parent));
    return ApiResponse::Json200(rules);
  }
  if (KindOf(parent) == Kind::kRouteTable) {
    ASSIGN_OR_RETURN(Json routes, service_->RouteList(parent));
    return ApiResponse::Json200(routes);
  }
  if (EqualsIgnoreCase(child, "virtualNetworkPeerings")) {
    ASSIGN_OR_RETURN(Json list, service_->PeeringList(parent));
    return ApiResponse::Json200(list);
  }
  ASSIGN_OR_RETURN(Json list, service_->SubnetList(parent));
  return ApiResponse::Json200(list);
}

const api::Shape* NetworkProvider::BodyShape(const ResourceId& id, const std::string& method,
                                             const std::string& action) const {
  using api::Shape;
  static const Shape kRef = Shape::Object({{"id", Shape::String()}});
  static const Shape kSubnetProps = Shape::Object(
      {{"addressPrefix", Shape::String()}, {"addressPrefixes", Shape::ArrayOf(Shape::String())},
       {"networkSecurityGroup", kRef}, {"routeTable", kRef}, {"provisioningState", Shape::Any()},
       {"ipConfigurations", Shape::Any()}, {"purpose", Shape::Any()},
       {"privateEndpointNetworkPolicies", Shape::Any()},
       {"privateLinkServiceNetworkPolicies", Shape::Any()}});
  static const Shape kSubnet = Shape::Object({{"name", Shape::String()},
                                              {"properties", kSubnetProps},
                                              {"id", Shape::Any()},
                                              {"type", Shape::Any()},
                                              {"etag", Shape::Any()}});
  static const Shape kVnet = Shape::Resource(Shape::Object(
      {{"addressSpace", Shape::Object({{"addressPrefixes", Shape::ArrayOf(Shape::String())}})},
       {"subnets", Shape::ArrayOf(kSubnet)},
       {"dhcpOptions", Shape::Object({{"dnsServers", Shape::ArrayOf(Shape::String())}})},
       {"enableDdosProtection", Shape::Boolean()},
       {"virtualNetworkPeerings", Shape::Any()},
       {"provisioningState", Shape::Any()},
       {"resourceGuid", Shape::Any()}}));
  static const Shape kSubnetBody = Shape::Object({{"properties", kSubnetProps},
                                                  {"name", Shape::Any()},
                                                  {"id", Shape::Any()},
                                                  {"type", Shape::Any()},
                                                  {"etag", Shape::Any()}});
  static const Shape kPeering = Shape::Object(
      {{"properties",
        Shape::Object({{"remoteVirtualNetwork", kRef},
                       {"allowVirtualNetworkAccess", Shape::Boolean()},
                       {"allowForwardedTraffic", Shape::Boolean()},
                       {"allowGatewayTransit", Shape::Boolean()},
                       {"useRemoteGateways", Shape::Boolean()},
                       {"peeringState", Shape::Any()},
                       {"peeringSyncLevel", Shape::Any()},
                       {"remoteAddressSpace", Shape::Any()},
                       {"remoteVirtualNetworkAddressSpace", Shape::Any()},
                       {"localAddressSpace", Shape::Any()},
                       {"localVirtualNetworkAddressSpace", Shape::Any()},
                       {"provisioningState", Shape::Any()},
                       {"resourceGuid", Shape::Any()},
                       {"doNotVerifyRemoteGateways", Shape::Any()}})},
       {"name", Shape::Any()},
       {"id", Shape::Any()},
       {"type", Shape::Any()},
       {"etag", Shape::Any()}});
  static const Shape kIpConfig = Shape::Object(
      {{"name", Shape::String()},
       {"properties", Shape::Object({{"subnet", kRef},
                                     {"privateIPAddress", Shape::String()},
                                     {"privateIPAllocationMethod", Shape::String()},
                                     {"privateIPAddressVersion", Shape::String()},
                                     {"primary", Shape::Boolean()},
                                     {"publicIPAddress", kRef},
                                     {"loadBalancerBackendAddressPools", Shape::ArrayOf(kRef)},
                                     {"loadBalancerInboundNatRules", Shape::ArrayOf(kRef)},
                                     {"provisioningState", Shape::Any()}})},
       {"id", Shape::Any()},
       {"type", Shape::Any()},
       {"etag", Shape::Any()}});
  static const Shape kNic = Shape::Resource(Shape::Object(
      {{"ipConfigurations", Shape::ArrayOf(kIpConfig)},
       {"enableIPForwarding", Shape::Boolean()},
       {"enableAcceleratedNetworking", Shape::Boolean()},
       {"networkSecurityGroup", kRef},
       {"dnsSettings", Shape::Any()},
       {"macAddress", Shape::Any()},
       {"virtualMachine", Shape::Any()},
       {"primary", Shape::Any()},
       {"provisioningState", Shape::Any()},
       {"resourceGuid", Shape::Any()},
       {"nicType", Shape::Any()}}));
  static const Shape kRuleProps = Shape::Object(
      {{"priority", Shape::Integer()}, {"direction", Shape::String()}, {"access", Shape::String()},
       {"protocol", Shape::String()}, {"sourceAddressPrefix", Shape::String()},
       {"sourceAddressPrefixes", Shape::ArrayOf(Shape::String())},
       {"destinationAddressPrefix", Shape::String()},
       {"destinationAddressPrefixes", Shape::ArrayOf(Shape::String())},
       {"sourcePortRange", Shape::String()}, {"sourcePortRanges", Shape::ArrayOf(Shape::String())},
       {"destinationPortRange", Shape::String()},
       {"destinationPortRanges", Shape::ArrayOf(Shape::String())},
       {"description", Shape::String()}, {"provisioningState", Shape::Any()},
       {"sourceApplicationSecurityGroups", Shape::Any()},
       {"destinationApplicationSecurityGroups", Shape::Any()}});
  static const Shape kRule = Shape::Object({{"name", Shape::String()},
                                            {"properties", kRuleProps},
                                            {"id", Shape::Any()},
                                            {"type", Shape::Any()},
                                            {"etag", Shape::Any()}});
  static const Shape kNsg = Shape::Resource(Shape::Object(
      {{"securityRules", Shape::ArrayOf(kRule)}, {"defaultSecurityRules", Shape::Any()},
       {"subnets", Shape::Any()}, {"networkInterfaces", Shape::Any()},
       {"provisioningState", Shape::Any()}, {"resourceGuid", Shape::Any()},
       {"flushConnection", Shape::Any()}}));
  static const Shape kRouteProps = Shape::Object(
      {{"addressPrefix", Shape::String()}, {"nextHopType", Shape::String()},
       {"nextHopIpAddress", Shape::String()}, {"provisioningState", Shape::Any()},
       {"hasBgpOverride", Shape::Any()}});
  static const Shape kRoute = Shape::Object({{"name", Shape::String()},
                                             {"properties", kRouteProps},
                                             {"id", Shape::Any()},
                                             {"type", Shape::Any()},
                                             {"etag", Shape::Any()}});
  static const Shape kRouteTable = Shape::Resource(Shape::Object(
      {{"routes", Shape::ArrayOf(kRoute)}, {"subnets", Shape::Any()},
       {"disableBgpRoutePropagation", Shape::Boolean()}, {"provisioningState", Shape::Any()},
       {"resourceGuid", Shape::Any()}}));
  static const Shape kPublicIp = Shape::Object(
      {{"location", Shape::String()},
       {"tags", Shape::MapOf(Shape::String())},
       {"sku", Shape::Object({{"name", Shape::String()}, {"tier", Shape::String()}})},
       {"zones", Shape::ArrayOf(Shape::String())},
       {"properties",
        Shape::Object({{"publicIPAllocationMethod", Shape::String()},
                       {"publicIPAddressVersion", Shape::String()},
                       {"idleTimeoutInMinutes", Shape::Integer()},
                       {"ipAddress", Shape::String()},
                       {"ipConfiguration", Shape::Any()},
                       {"dnsSettings", Shape::Any()},
                       {"ipTags", Shape::Any()},
                       {"provisioningState", Shape::Any()},
                       {"resourceGuid", Shape::Any()}})},
       {"id", Shape::String()},
       {"name", Shape::String()},
       {"type", Shape::String()},
       {"etag", Shape::String()},
       {"systemData", Shape::Any()}});
  if (method == "PUT") {
    switch (KindOf(id)) {
      case Kind::kVnet: return &kVnet;
      case Kind::kSubnet: return &kSubnetBody;
      case Kind::kPeering: return &kPeering;
      case Kind::kNic: return &kNic;
      case Kind::kNsg: return &kNsg;
      case Kind::kRule: return &kRule;
      case Kind::kRouteTable: return &kRouteTable;
      case Kind::kRoute: return &kRoute;
      case Kind::kPublicIp: return &kPublicIp;
      default: break;
    }
  }
  return ResourceProvider::BodyShape(id, method, action);
}

Result<ApiResponse> NetworkProvider::Put(const ApiRequest& req, const ResourceId& id) {
  switch (KindOf(id)) {
    case Kind::kVnet: {
      RETURN_IF_ERROR(api::CheckGroupExists(ctx_.store, id));
      ASSIGN_OR_RETURN(auto w, service_->PutVnet(id, req.body, req.caller,
                                                 api::ConditionFromHeaders(req)));
      return Written(service_->VnetView(w.record), w.record.etag, w.created);
    }
    case Kind::kSubnet: {
      RETURN_IF_ERROR(api::RejectUnknownKeys(req.body, {"properties", "name", "id", "type", "etag"}, ""));
      ASSIGN_OR_RETURN(auto w, service_->PutSubnet(id, req.body, req.caller));
      ASSIGN_OR_RETURN(Json view, service_->SubnetView(id));
      return Written(view, w.record.etag, w.created);
    }
    case Kind::kPeering: {
      ASSIGN_OR_RETURN(auto w, service_->PutPeering(id, req.body, req.caller));
      ASSIGN_OR_RETURN(Json view, service_->PeeringView(id));
      return Written(view, w.record.etag, w.created);
    }
    case Kind::kNic: {
      RETURN_IF_ERROR(api::CheckGroupExists(ctx_.store, id));
      ASSIGN_OR_RETURN(auto w, service_->PutNic(id, req.body, req.caller,
                                                api::ConditionFromHeaders(req)));
      return Written(api::ToArm(w.record), w.record.etag, w.created);
    }
    case Kind::kNsg: {
      RETURN_IF_ERROR(api::CheckGroupExists(ctx_.store, id));
      ASSIGN_OR_RETURN(auto w, service_->PutNsg(id, req.body, req.caller,
                                                api::ConditionFromHeaders(req)));
      return Written(service_->NsgView(w.record), w.record.etag, w.created);
    }
    case Kind::kRule: {
      RETURN_IF_ERROR(api::RejectUnknownKeys(req.body, {"properties", "name", "id", "type", "etag"}, ""));
      ASSIGN_OR_RETURN(auto w, service_->PutSecurityRule(id, req.body, req.caller));
      ASSIGN_OR_RETURN(Json view, service_->SecurityRuleView(id));
      return Written(view, w.record.etag, w.created);
    }
    case Kind::kRouteTable: {
      RETURN_IF_ERROR(api::CheckGroupExists(ctx_.store, id));
      ASSIGN_OR_RETURN(auto w, service_->PutRouteTable(id, req.body, req.caller,
                                                       api::ConditionFromHeaders(req)));
      return Written(service_->RouteTableView(w.record), w.record.etag, w.created);
    }
    case Kind::kRoute: {
      ASSIGN_OR_RETURN(auto w, service_->PutRoute(id, req.body, req.caller));
      ASSIGN_OR_RETURN(Json view, service_->RouteView(id));
      return Written(view, w.record.etag, w.created);
    }
    case Kind::kPublicIp: {
      RETURN_IF_ERROR(api::CheckGroupExists(ctx_.store, id));
      ASSIGN_OR_RETURN(auto w, service_->PutPublicIp(id, req.body, req.caller,
                                                     api::ConditionFromHeaders(req)));
      return Written(service_->PublicIpView(w.record), w.record.etag, w.created);
    }
    default:
      return NotFound("No API at '" + req.path + "'.", req.path, "NotFound");
  }
}

Result<ApiResponse> NetworkProvider::Get(const ApiRequest& req, const ResourceId& id) {
  switch (KindOf(id)) {
    case Kind::kVnet: {
      ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
      return Written(service_->VnetView(rec), rec.etag, false);
    }
    case Kind::kSubnet: {
      ASSIGN_OR_RETURN(Json view, service_->SubnetView(id));
      return ApiResponse::Json200(view);
    }
    case Kind::kPeering: {
      ASSIGN_OR_RETURN(Json view, service_->PeeringView(id));
      return ApiResponse::Json200(view);
    }
    case Kind::kNsg: {
      ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
      return Written(service_->NsgView(rec), rec.etag, false);
    }
    case Kind::kRule: {
      ASSIGN_OR_RETURN(Json view, service_->SecurityRuleView(id));
      return ApiResponse::Json200(view);
    }
    case Kind::kRouteTable: {
      ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
      return Written(service_->RouteTableView(rec), rec.etag, false);
    }
    case Kind::kRoute: {
      ASSIGN_OR_RETURN(Json view, service_->RouteView(id));
      return ApiResponse::Json200(view);
    }
    case Kind::kPublicIp: {
      ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
      return Written(service_->PublicIpView(rec), rec.etag, false);
    }
    default:
      return ResourceProvider::Get(req, id);
  }
}

Result<ApiResponse> NetworkProvider::Delete(const ApiRequest& req, const ResourceId& id) {
  Status st;
  switch (KindOf(id)) {
    case Kind::kVnet: st = service_->DeleteVnet(id); break;
    case Kind::kSubnet: st = service_->DeleteSubnet(id); break;
    case Kind::kPeering: st = service_->DeletePeering(id); break;
    case Kind::kNic: st = service_->DeleteNic(id); break;
    case Kind::kNsg: st = service_->DeleteNsg(id); break;
    case Kind::kRule: st = service_->DeleteSecurityRule(id); break;
    case Kind::kRouteTable: st = service_->DeleteRouteTable(id); break;
    case Kind::kRoute: st = service_->DeleteRoute(id); break;
    case Kind::kPublicIp: st = service_->DeletePublicIp(id); break;
    default: return NotFound("No API at '" + req.path + "'.", req.path, "NotFound");
  }
  if (st.code() == StatusCode::kNotFound) return ApiResponse::NoContent(204);
  RETURN_IF_ERROR(st);
  return ApiResponse::NoContent(200);
}

Result<ApiResponse> NetworkProvider::Post(const ApiRequest& req, const ResourceId& id,
                                          const std::string& action) {
  if (KindOf(id) == Kind::kNic && EqualsIgnoreCase(action, "effectiveNetworkSecurityGroups")) {
    ASSIGN_OR_RETURN(Json view, service_->EffectiveSecurityRules(id));
    return ApiResponse::Json200(view);
  }
  if (KindOf(id) == Kind::kNsg && EqualsIgnoreCase(action, "ruleCounters")) {
    ASSIGN_OR_RETURN(Json view, service_->SecurityRuleCounters(id));
    return ApiResponse::Json200(view);
  }
  if (KindOf(id) == Kind::kNic && EqualsIgnoreCase(action, "effectiveRouteTable")) {
    ASSIGN_OR_RETURN(Json view, service_->EffectiveRouteTable(id));
    return ApiResponse::Json200(view);
  }
  return ResourceProvider::Post(req, id, action);
}

void NetworkProvider::DecorateListItem(const ApiRequest&, const store::Record& rec, Json& item) {
  if (rec.type == kVnetType) item = service_->VnetView(rec);
  if (rec.type == kNsgType) item = service_->NsgView(rec);
  if (rec.type == kRouteTableType) item = service_->RouteTableView(rec);
  if (rec.type == kPublicIpType) item = service_->PublicIpView(rec);
}

int NetworkProvider::DeleteOrder(const std::string& type) const {
  // After the VMs (10) that hold NICs; NICs before the VNETs whose subnets they use; NSGs and
  // route tables last (subnets and NICs use them).
  if (EqualsIgnoreCase(type, "Stratus.Network/networkInterfaces")) return 20;
  if (EqualsIgnoreCase(type, "Stratus.Network/publicIPAddresses")) return 30;  // after NICs
  if (EqualsIgnoreCase(type, "Stratus.Network/networkSecurityGroups") ||
      EqualsIgnoreCase(type, "Stratus.Network/routeTables"))
    return 95;
  return 90;
}

Status NetworkProvider::DeleteForGroup(const ResourceId& id, api::OperationContext&) {
  Kind k = KindOf(id);
  Status st = k == Kind::kNic   ? service_->DeleteNic(id, /*force=*/true)
              : k == Kind::kNsg ? service_->DeleteNsg(id)
              : k == Kind::kRouteTable ? service_->DeleteRouteTable(id)
              : k == Kind::kPublicIp   ? service_->DeletePublicIp(id)
                                : service_->DeleteVnet(id, /*force=*/true);
  return st.code() == StatusCode::kNotFound ? Status::Ok() : st;
}

}  // namespace stratus::network
