#include "api/resource_util.h"

#include "core/clock.h"

namespace stratus::api {

Json ToArm(const store::Record& rec) {
  Json out = rec.body;
  out["etag"] = rec.etag;
  return out;
}

ApiResponse ResourceResponse(const store::Record& rec, int status) {
  ApiResponse r = ApiResponse::Json200(ToArm(rec), status);
  r.headers["ETag"] = rec.etag;
  return r;
}

std::string OperationPath(const std::string& subscription, const std::string& op_id) {
  return "/subscriptions/" + subscription + "/providers/Stratus.Resources/operations/" + op_id;
}

ApiResponse AcceptedResponse(const ApiRequest& req, const std::string& subscription,
                             const std::string& op_id, Json body, int status) {
  ApiResponse r;
  r.status = status;
  r.body = std::move(body);
  std::string url = req.base_url + OperationPath(subscription, op_id);
  r.headers["Azure-AsyncOperation"] = url;
  r.headers["Location"] = url;
  r.headers["Retry-After"] = "1";
  return r;
}

Result<std::string> ValidateLocation(const Json& body, const std::string& region) {
  auto it = body.find("location");
  if (it == body.end() || it->is_null()) return region;
  if (!it->is_string())
    return InvalidArgument("'location' must be a string.", "location");
  if (!EqualsIgnoreCase(it->get<std::string>(), region))
    return InvalidArgument("Location '" + it->get<std::string>() + "' is not served here: this "
                               "is region '" + region + "'.",
                           "location", "LocationNotAvailableForResourceType");
  return region;
}

Status ValidateTags(const Json& body) {
  auto it = body.find("tags");
  if (it == body.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) return InvalidArgument("'tags' must be an object of strings.", "tags");
  if (it->size() > 50) return InvalidArgument("At most 50 tags are allowed.", "tags");
  for (auto& [k, v] : it->items()) {
    if (k.empty() || k.size() > 512)
      return InvalidArgument("Tag name '" + k + "' must be 1-512 characters.", "tags");
    if (!v.is_string() || v.get<std::string>().size() > 256)
      return InvalidArgument("Tag '" + k + "' must have a string value of at most 256 characters.",
                             "tags." + k);
  }
  return Status::Ok();
}

Status RejectUnknownKeys(const Json& obj, const std::vector<std::string>& allowed,
                         const std::string& where) {
  if (!obj.is_object()) return Status::Ok();
  for (auto& [k, v] : obj.items()) {
    bool ok = false;
    for (auto& a : allowed) ok = ok || EqualsIgnoreCase(a, k);
    if (!ok) {
      std::string target = where.empty() ? k : where + "." + k;
      return InvalidArgument("Unknown property '" + target + "'.", target);
    }
  }
  return Status::Ok();
}

Status RequireObjectBody(const ApiRequest& req) {
  if (!req.body.is_object())
    return InvalidArgument("The request body must be a JSON object.", "body",
                           "InvalidRequestContent");
  return Status::Ok();
}

store::WriteCondition ConditionFromHeaders(const ApiRequest& req) {
  store::WriteCondition c;
  std::string im = req.Header("if-match");
  if (!im.empty()) c.if_match = im;
  if (req.Header("if-none-match") == "*") c.must_not_exist = true;
  return c;
}

Status CheckPreconditions(const ApiRequest& req, const store::Record* current) {
  std::string if_match = req.Header("if-match");
  if (!if_match.empty()) {
    if (!current)
      return PreconditionFailed("The resource does not exist, so it cannot match If-Match " +
                                if_match + ".");
    if (if_match != "*" && if_match != current->etag)
      return PreconditionFailed("The ETag " + if_match + " does not match the current ETag " +
                                current->etag + ".");
  }
  if (req.Header("if-none-match") == "*" && current)
    return PreconditionFailed("The resource already exists (If-None-Match: *).");
  return Status::Ok();
}

Status CheckGroupExists(store::Store* store, const ResourceId& id) {
  auto sub = store->Get(ResourceId::Subscription(id.subscription()).Key());
  if (!sub.ok())
    return NotFound("Subscription '" + id.subscription() + "' was not found.", "subscriptionId",
                    "SubscriptionNotFound");
  auto rg = store->Get(ResourceId::Group(id.subscription(), id.resource_group()).Key());
  if (!rg.ok())
    return NotFound("Resource group '" + id.resource_group() + "' could not be found.",
                    "resourceGroupName", "ResourceGroupNotFound");
  return Status::Ok();
}

Json NewResourceBody(const ResourceId& id, const std::string& location, const Json& tags,
                     const std::string& caller, int64_t now_ms) {
  std::string ts = FormatIso8601(now_ms);
  return Json{{"id", id.ToString()},
              {"name", id.name()},
              {"type", id.FullType()},
              {"location", location},
              {"tags", tags.is_object() ? tags : Json::object()},
              {"properties", Json::object()},
              {"systemData",
               {{"createdBy", caller},
                {"createdAt", ts},
                {"lastModifiedBy", caller},
                {"lastModifiedAt", ts}}}};
}

void TouchSystemData(Json& body, const std::string& caller, int64_t now_ms) {
  body["systemData"]["lastModifiedBy"] = caller;
  body["systemData"]["lastModifiedAt"] = FormatIso8601(now_ms);
}

std::string TypeKey(const ResourceId& id) { return ToLower(id.FullType()); }

store::Record RecordToWrite(const Result<store::Record>& existing, const ResourceId& id,
                            const std::string& region, const std::string& caller, int64_t now_ms) {
  store::Record rec;
  if (existing.ok()) {
    rec = *existing;
    TouchSystemData(rec.body, caller, now_ms);
    return rec;
  }
  rec.key = id.Key();
  rec.type = TypeKey(id);
  rec.body = NewResourceBody(id, region, Json::object(), caller, now_ms);
  rec.body.erase("tags");
  return rec;
}

Result<int64_t> GetInt(const Json& obj, const std::string& name, int64_t lo, int64_t hi,
                       std::optional<int64_t> dflt) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    if (dflt) return *dflt;
    return InvalidArgument("'" + name + "' is required.", name, "MissingParameter");
  }
  if (!it->is_number_integer())
    return InvalidArgument("'" + name + "' must be an integer.", name);
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi)
    return InvalidArgument("'" + name + "' is " + std::to_string(v) + "; it must be between " +
                               std::to_string(lo) + " and " + std::to_string(hi) + ".",
                           name);
  return v;
}

Result<std::string> GetString(const Json& obj, const std::string& name,
                              std::optional<std::string> dflt) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    if (dflt) return *dflt;
    return InvalidArgument("'" + name + "' is required.", name, "MissingParameter");
  }
  if (!it->is_string()) return InvalidArgument("'" + name + "' must be a string.", name);
  return it->get<std::string>();
}

}  // namespace stratus::api
