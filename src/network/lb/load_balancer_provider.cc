#include "network/lb/load_balancer_provider.h"

#include "api/resource_util.h"

namespace stratus::network {

using api::ApiRequest;
using api::ApiResponse;

namespace {

const std::vector<std::string>& Kinds() {
  static const std::vector<std::string> k = {
      "frontendIPConfigurations", "backendAddressPools", "probes",
      "loadBalancingRules",       "inboundNatRules",     "outboundRules"};
  return k;
}

// The kind as the API spells it, or "".
std::string KindNamed(const std::string& kind) {
  for (auto& k : Kinds())
    if (EqualsIgnoreCase(k, kind)) return k;
  return "";
}

}  // namespace

std::vector<std::string> LoadBalancerProvider::ChildTypes(const ResourceId& parent) const {
  if (parent.types_and_names().size() != 1) return {};
  auto kinds = Kinds();
  kinds.push_back("backendHealth");
  return kinds;
}

Result<ApiResponse> LoadBalancerProvider::ListInlineChildren(const ApiRequest& req,
                                                             const ResourceId& parent,
                                                             const std::string& child_type) {
  if (EqualsIgnoreCase(child_type, "backendHealth")) {
    ASSIGN_OR_RETURN(Json health, service_->BackendHealth(parent));
    return ApiResponse::Json200(health);
  }
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(parent.Key()));
  ASSIGN_OR_RETURN(Json view, service_->View(rec));
  std::string kind = KindNamed(child_type);
  if (kind.empty()) return NotFound("No API at '" + req.path + "'.", req.path, "NotFound");
  return ApiResponse::Json200({{"value", view["properties"].value(kind, Json::array())}});
}

Result<ApiResponse> LoadBalancerProvider::Put(const ApiRequest& req, const ResourceId& id) {
  if (id.types_and_names().size() != 1)
    return InvalidArgument(
        "The sub-resources of a load balancer change with a PUT of the load "
        "balancer.",
        req.path, "FeatureNotAvailable");
  RETURN_IF_ERROR(api::CheckGroupExists(ctx_.store, id));
  ASSIGN_OR_RETURN(auto w, service_->Put(id, req.body, req.caller, api::ConditionFromHeaders(req)));
  ASSIGN_OR_RETURN(Json view, service_->View(w.record));
  ApiResponse r = ApiResponse::Json200(view, w.created ? 201 : 200);
  r.headers["ETag"] = w.record.etag;
  return r;
}

Result<ApiResponse> LoadBalancerProvider::Get(const ApiRequest& req, const ResourceId& id) {
  const auto& tn = id.types_and_names();
  const ResourceId lb = tn.size() == 1 ? id : id.Parent();
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(lb.Key()));
  ASSIGN_OR_RETURN(Json view, service_->View(rec));
  if (tn.size() == 1) {
    ApiResponse r = ApiResponse::Json200(view);
    r.headers["ETag"] = rec.etag;
    return r;
  }
  std::string kind = KindNamed(tn[1].first);
  if (tn.size() == 2 && !kind.empty())
    for (auto& c : view["properties"].value(kind, Json::array()))
      if (EqualsIgnoreCase(c.value("name", ""), tn[1].second)) return ApiResponse::Json200(c);
  return NotFound("'" + id.ToString() + "' was not found.", id.ToString(), "NotFound");
}

Result<ApiResponse> LoadBalancerProvider::Delete(const ApiRequest& req, const ResourceId& id) {
  if (id.types_and_names().size() != 1)
    return InvalidArgument(
        "The sub-resources of a load balancer change with a PUT of the load "
        "balancer.",
        req.path, "FeatureNotAvailable");
  Status st = service_->Delete(id);
  if (st.code() == StatusCode::kNotFound) return ApiResponse::NoContent(204);
  RETURN_IF_ERROR(st);
  return ApiResponse::NoContent(200);
}

void LoadBalancerProvider::DecorateListItem(const ApiRequest&, const store::Record& rec,
                                            Json& item) {
  if (auto view = service_->View(rec); view.ok()) item = *view;
}

Status LoadBalancerProvider::DeleteForGroup(const ResourceId& id, api::OperationContext&) {
  Status st = service_->Delete(id);
  return st.code() == StatusCode::kNotFound ? Status::Ok() : st;
}

}  // namespace stratus::network
