#include "api/provider.h"

#include "api/resource_util.h"

namespace stratus::api {

Result<ApiResponse> ResourceProvider::Get(const ApiRequest& req, const ResourceId& id) {
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  return ResourceResponse(rec);
}

const Shape* ResourceProvider::BodyShape(const ResourceId&, const std::string& method,
                                         const std::string&) const {
  static const Shape kTagsOnly = Shape::Object({{"tags", Shape::MapOf(Shape::String())}});
  return method == "PATCH" ? &kTagsOnly : nullptr;
}

Result<ApiResponse> ResourceProvider::Patch(const ApiRequest& req, const ResourceId& id) {
  RETURN_IF_ERROR(RequireObjectBody(req));
  RETURN_IF_ERROR(RejectUnknownKeys(req.body, {"tags"}, ""));
  RETURN_IF_ERROR(ValidateTags(req.body));
  ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
  ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
  // A PATCH that changes nothing keeps the etag and writes nothing.
  if (!req.body.contains("tags") || req.body["tags"] == rec.body.value("tags", Json::object()))
    return ResourceResponse(rec);
  rec.body["tags"] = req.body["tags"];
  TouchSystemData(rec.body, req.caller, ctx_.clock->NowMs());
  store::WriteCondition cond = ConditionFromHeaders(req);
  cond.must_exist = true;
  ASSIGN_OR_RETURN(rec, ctx_.store->Put(std::move(rec), cond));
  return ResourceResponse(rec);
}

Result<ApiResponse> ResourceProvider::Post(const ApiRequest& req, const ResourceId& id,
                                           const std::string& action) {
  return NotFound("Action '" + action + "' is not supported on " + id.FullType() + ".", action,
                  "ActionNotFound");
}

Result<ResourceProvider::Upload> ResourceProvider::BeginUpload(const ApiRequest&,
                                                               const ResourceId& id,
                                                               const std::string& part) {
  return NotFound("'" + id.FullType() + "' takes no uploads.", part, "NotFound");
}

Result<ApiResponse> ResourceProvider::FinishUpload(const ApiRequest&, const ResourceId& id,
                                                   const std::string& part, BodySink&, uint64_t) {
  return NotFound("'" + id.FullType() + "' takes no uploads.", part, "NotFound");
}

Result<ApiResponse> ResourceProvider::GetSub(const ApiRequest& req, const ResourceId& id,
                                             const std::string& sub) {
  return NotFound("'" + sub + "' is not a sub-resource of " + id.FullType() + ".", sub);
}

Result<ApiResponse> ResourceProvider::SubscriptionGet(const ApiRequest& req,
                                                      const std::string& sub,
                                                      const std::vector<std::string>& rest) {
  return NotFound("No such path under provider " + Namespace() + ".", req.path);
}

Result<ApiResponse> ResourceProvider::SubscriptionWrite(const ApiRequest& req,
                                                        const std::string& sub,
                                                        const std::vector<std::string>& rest) {
  return Status(StatusCode::kMethodNotAllowed, "MethodNotAllowed",
                "The method '" + req.method + "' is not allowed on '" + req.path + "'.");
}

Result<ApiResponse> ResourceProvider::ListInlineChildren(const ApiRequest& req,
                                                         const ResourceId& parent,
                                                         const std::string& child_type) {
  return NotFound("No API at '" + req.path + "'.", req.path, "NotFound");
}

}  // namespace stratus::api
