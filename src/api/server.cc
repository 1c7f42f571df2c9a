#include "api/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "api/resource_util.h"
#include "api/server_internal.h"
#include "core/uuid.h"

namespace stratus::api {

std::vector<std::string> PathSegments(const std::string& path) {
  std::vector<std::string_view> views = SplitPath(path);
  return std::vector<std::string>(views.begin(), views.end());
}

bool SameName(const std::string& a, const char* b) { return EqualsIgnoreCase(a, b); }

Result<int> ParseTop(const ApiRequest& req) {
  std::string t = req.Query("$top");
  if (t.empty()) return 100;
  char* end = nullptr;
  long v = std::strtol(t.c_str(), &end, 10);
  if (*end != '\0' || v < 1 || v > 1000)
    return InvalidArgument("'$top' must be an integer from 1 to 1000.", "$top");
  return static_cast<int>(v);
}

namespace {

// A client-supplied correlation id is echoed back and logged: keep it only if it is short and
// plain.
bool PlainCorrelationId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' &&
        c != ':')
      return false;
  return true;
}

bool IsGuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

constexpr const char* kBearerChallenge = "Bearer realm=\"stratus\"";


Status MethodNotAllowed(const ApiRequest& req) {
  return Status(StatusCode::kMethodNotAllowed, "MethodNotAllowed",
                "The method '" + req.method + "' is not allowed on '" + req.path + "'.");
}

bool IsWrite(const std::string& method) { return method != "GET" && method != "HEAD"; }


}  // namespace

ApiServer::ApiServer(RegionContext ctx, auth::TokenAuthenticator* auth,
                     ActivityLogOptions activity)
    : ctx_(std::move(ctx)), auth_(auth), activity_(activity) {
  ctx_.ops->on_finish = [this](const store::OperationRecord& op, const std::string& caller) {
    store::ActivityEvent ev;
    ev.time_ms = ctx_.clock->NowMs();
    ev.subscription = ToLower(op.subscription);
    ev.body = {{"eventTimestamp", FormatIso8601(ev.time_ms)},
               {"caller", caller},
               {"operationName", op.body.value("operation", "")},
               {"resourceId", op.body.value("resourceId", "")},
               {"status", op.status},
               {"operationId", op.id}};
    if (op.body.contains("error")) ev.body["error"] = op.body["error"];
    AppendActivity(std::move(ev), nullptr);
  };
}

ApiServer::~ApiServer() { Stop(); }

Status ApiServer::AddProvider(std::unique_ptr<ResourceProvider> provider) {
  const std::string ns = provider->Namespace();
  const std::string lns = ToLower(ns);
  std::vector<std::pair<RouteKey, std::string>> types, collections;
  for (auto& t : provider->ResourceTypes()) types.emplace_back(RouteKey{lns, ToLower(t)}, t);
  for (auto& c : provider->SubscriptionCollections())
    collections.emplace_back(RouteKey{lns, ToLower(c)}, c);
  for (auto* table : {&types, &collections})
    for (auto& [key, spelled] : *table)
      if (types_.count(key) || subscription_collections_.count(key))
        return Internal("'" + ns + "/" + spelled + "' is served by another provider already");
  ResourceProvider* p = provider.get();
  for (auto& [key, spelled] : types) types_[key] = TypeRoute{p, spelled};
  for (auto& [key, spelled] : collections) subscription_collections_[key] = TypeRoute{p, spelled};
  namespaces_.emplace(lns, ns);
  providers_.push_back(std::move(provider));
  return Status::Ok();
}

ResourceProvider* ApiServer::FindProvider(const std::string& ns, const std::string& type) const {
  auto it = types_.find(RouteKey{ToLower(ns), ToLower(type)});
  return it == types_.end() ? nullptr : it->second.provider;
}

Result<std::pair<ResourceProvider*, std::string>> ApiServer::ResolveType(
    const std::string& ns, const std::string& type) const {
  auto n = namespaces_.find(ToLower(ns));
  if (n == namespaces_.end())
    return NotFound("No registered resource provider found for namespace '" + ns + "'.", ns,
                    "NoRegisteredProviderFound");
  auto it = types_.find(RouteKey{n->first, ToLower(type)});
  if (it == types_.end())
    return NotFound("The resource type '" + type + "' is not served by '" + n->second + "'.",
                    type, "InvalidResourceType");
  return std::make_pair(it->second.provider, it->second.type);
}

Status ApiServer::EnsureSubscription(const std::string& sub, const std::string& display_name) {
  if (default_subscription_.empty()) default_subscription_ = sub;
  ResourceId id = ResourceId::Subscription(sub);
  if (ctx_.store->Get(id.Key()).ok()) return Status::Ok();
  store::Record rec;
  rec.key = id.Key();
  rec.type = "subscriptions";
  rec.body = {{"id", id.ToString()},
              {"subscriptionId", sub},
              {"displayName", display_name},
              {"state", "Enabled"}};
  return ctx_.store->Put(rec).status();
}

ApiResponse ApiServer::Handle(ApiRequest req) {
  if (!PlainCorrelationId(req.correlation_id)) req.correlation_id = NewUuid();
  auto principal = auth_->Authenticate(req.Header("authorization"));
  if (!principal.ok()) return Unauthenticated(req, principal.status());
  return Dispatch(req, *principal);
}

ApiResponse ApiServer::Unauthenticated(const ApiRequest& req, const Status& why) {
  RecordFailedLogin(req, req.client_ip, why);
  ApiResponse resp = ErrorResponse(why);
  resp.headers["x-ms-correlation-request-id"] = req.correlation_id;
  // RFC 6750 3: an error code only when credentials were sent.
  resp.headers["WWW-Authenticate"] = req.Header("authorization").empty()
                                         ? std::string(kBearerChallenge)
                                         : std::string(kBearerChallenge) +
                                               ", error=\"invalid_token\"";
  return resp;
}

ApiResponse ApiServer::Dispatch(ApiRequest& req, const auth::Principal& principal) {
  if (!PlainCorrelationId(req.correlation_id)) req.correlation_id = NewUuid();
  req.caller = principal.name;
  Result<ApiResponse> r = [&]() -> Result<ApiResponse> {
    try {
      return Route(req);
    } catch (const std::exception& e) {
      // A handler bug must not take the daemon down. The client learns only that it happened
      // and the correlation id; the detail goes to the daemon's log.
      spdlog::error("request {} {} (correlation id {}) failed with an unexpected error: {}",
                    req.method, req.path.substr(0, 200), req.correlation_id, e.what());
      return Internal("The request failed with an unexpected error; the daemon's log has the "
                      "details under correlation id " + req.correlation_id + ".");
    }
  }();
  ApiResponse resp = r.ok() ? std::move(r).value() : ErrorResponse(r.status());
  resp.headers["x-ms-correlation-request-id"] = req.correlation_id;
  // POST retrieve* actions read (console log); they are not writes.
  bool read_action = req.method == "POST" &&
                     ToLower(req.path).find("/retrieve") != std::string::npos;
  if (IsWrite(req.method) && !read_action) RecordActivity(req, resp);
  return resp;
}

Result<ApiResponse> ApiServer::ListCollection(const ApiRequest& req, const std::string& key_prefix,
                                              const std::string& type,
                                              ResourceProvider* decorator) {
  ASSIGN_OR_RETURN(int top, ParseTop(req));
  std::string after = req.Query("$skiptoken");
  if (!after.empty() && after.compare(0, key_prefix.size(), key_prefix) != 0)
    return InvalidArgument("'$skipToken' does not belong to this collection.", "$skipToken");
  ASSIGN_OR_RETURN(store::Page page, ctx_.store->List(key_prefix, type, after, top));
  Json value = Json::array();
  for (auto& r : page.records) {
    Json item = ToArm(r);
    if (decorator) decorator->DecorateListItem(req, r, item);
    value.push_back(std::move(item));
  }
  Json body = {{"value", value}};
  if (!page.next_key.empty()) {
    body["nextLink"] = req.base_url + req.path + "?$top=" + std::to_string(top) +
                       "&$skipToken=" + httplib::detail::encode_query_param(page.next_key);
  }
  return ApiResponse::Json200(body);
}

Result<ApiResponse> ApiServer::Route(ApiRequest& req) {
  auto segs = PathSegments(req.path);
  if (segs.empty() || !SameName(segs[0], "subscriptions"))
    return NotFound("No API at '" + req.path + "'.", req.path, "NotFound");
  if (segs.size() == 1) {
    if (req.method != "GET") return MethodNotAllowed(req);
    return ListCollection(req, "/subscriptions/", "subscriptions");
  }
  RETURN_IF_ERROR(ValidateSubscriptionId(segs[1]));
  const std::string& sub = segs[1];
  if (segs.size() == 2) return HandleSubscription(req, ResourceId::Subscription(sub));
  // Subscription existence is checked for everything below it.
  if (!ctx_.store->Get(ResourceId::Subscription(sub).Key()).ok())
    return NotFound("Subscription '" + sub + "' was not found.", "subscriptionId",
                    "SubscriptionNotFound");

  // /subscriptions/{sub}/providers/{ns}/...
  if (SameName(segs[2], "providers")) {
    if (segs.size() >= 5) {
      auto it = subscription_collections_.find(RouteKey{ToLower(segs[3]), ToLower(segs[4])});
      if (it != subscription_collections_.end()) {
        std::vector<std::string> rest(segs.begin() + 4, segs.end());
        if (req.method == "GET") return it->second.provider->SubscriptionGet(req, sub, rest);
        return it->second.provider->SubscriptionWrite(req, sub, rest);
      }
    }
    if (req.method != "GET") return MethodNotAllowed(req);
    if (segs.size() == 5 && SameName(segs[3], "Stratus.Resources") && SameName(segs[4], "operations"))
      return MethodNotAllowed(req);
    if (segs.size() == 6 && SameName(segs[3], "Stratus.Resources") && SameName(segs[4], "operations")) {
      ASSIGN_OR_RETURN(store::OperationRecord op, ctx_.ops->Get(segs[5]));
      if (!EqualsIgnoreCase(op.subscription, sub))
        return NotFound("Operation '" + segs[5] + "' was not found.", segs[5],
                        "OperationNotFound");
      return ApiResponse::Json200(op.body);
    }
    if (segs.size() == 5 && SameName(segs[3], "Stratus.Insights") && SameName(segs[4], "activityLogs"))
      return ListActivity(req, sub);
    if (segs.size() >= 4 && namespaces_.count(ToLower(segs[3])))
      return NotFound("No such path under provider " + namespaces_.at(ToLower(segs[3])) + ".",
                      req.path);
    return NotFound("No registered provider found for '" + req.path + "'.", req.path,
                    "NoRegisteredProviderFound");
  }

  if (!SameName(segs[2], "resourceGroups"))
    return NotFound("No API at '" + req.path + "'.", req.path, "NotFound");
  if (segs.size() == 3) {
    if (req.method != "GET") return MethodNotAllowed(req);
    return ListCollection(req, ResourceId::Subscription(sub).Key() + "/resourcegroups/",
                          "resourcegroups");
  }
  RETURN_IF_ERROR(ValidateResourceGroupName(segs[3]));
  ResourceId group = ResourceId::Group(sub, segs[3]);
  if (segs.size() == 4) return HandleGroup(req, group);
  if (segs.size() == 5 && SameName(segs[4], "resources")) {
    if (req.method != "GET") return MethodNotAllowed(req);
    RETURN_IF_ERROR(CheckGroupExists(ctx_.store, group));
    return ListCollection(req, group.Key() + "/providers/", "");
  }
  if (!SameName(segs[4], "providers") || segs.size() < 7)
    return NotFound("No API at '" + req.path + "'.", req.path, "NotFound");
  // Ids are stored with the namespace and types as the provider spells them, whatever casing
  // the request used (ARM does the same).
  ASSIGN_OR_RETURN(auto resolved, ResolveType(segs[5], segs[6]));
  auto [p, type] = resolved;
  segs[5] = p->Namespace();
  segs[6] = type;
  RETURN_IF_ERROR(CheckGroupExists(ctx_.store, group));
  if (segs.size() == 7) {
    if (req.method != "GET") return MethodNotAllowed(req);
    return ListCollection(req, group.Key() + "/providers/" + ToLower(segs[5]) + "/" +
                                   ToLower(segs[6]) + "/",
                          ToLower(segs[5] + "/" + segs[6]), p);
  }
  RETURN_IF_ERROR(ValidateResourceName(segs[7], segs[6], 80));
  ResourceId id = ResourceId::Resource(sub, segs[3], segs[5], segs[6], segs[7]);
  // Nested resources: {type}/{name} pairs below the top-level resource, each level a child type
  // its parent declares, and each parent must exist.
  size_t pos = 8;
  bool inline_child = false;  // kept inside its parent's record: no record of its own
  while (segs.size() >= pos + 1) {
    std::string child_type;
    for (auto& t : p->ChildTypes(id))
      if (SameName(t, segs[pos].c_str())) child_type = t;
    if (child_type.empty()) break;
    segs[pos] = child_type;
    if (!ctx_.store->Get(id.Key()).ok())
      return NotFound("The parent resource '" + id.ToString() + "' was not found.", id.ToString(),
                      "ParentResourceNotFound");
    if (segs.size() == pos + 1) {
      if (req.method != "GET") return MethodNotAllowed(req);
      if (p->ChildrenInline(id, segs[pos])) return p->ListInlineChildren(req, id, segs[pos]);
      ResourceId probe = id.Child(segs[pos], "x");
      return ListCollection(req, id.Key() + "/" + ToLower(segs[pos]) + "/", TypeKey(probe), p);
    }
    RETURN_IF_ERROR(ValidateResourceName(segs[pos + 1], segs[pos], 80));
    inline_child = p->ChildrenInline(id, segs[pos]);
    id = id.Child(segs[pos], segs[pos + 1]);
    pos += 2;
  }
  if (segs.size() == pos) {
    // Preconditions for every provider, before it runs (no-op writes included).
    if ((req.method == "PUT" || req.method == "PATCH" || req.method == "DELETE") &&
        !inline_child &&
        (!req.Header("if-match").empty() || !req.Header("if-none-match").empty())) {
      auto current = ctx_.store->Get(id.Key());
      RETURN_IF_ERROR(CheckPreconditions(req, current.ok() ? &*current : nullptr));
    }
    if (req.method == "PUT" || req.method == "PATCH") {
      RETURN_IF_ERROR(RequireObjectBody(req));
      if (const Shape* shape = p->BodyShape(id, req.method, ""))
        RETURN_IF_ERROR(CheckShape(req.body, *shape));
    }
    if (req.method == "PUT") return p->Put(req, id);
    if (req.method == "GET") return p->Get(req, id);
    if (req.method == "PATCH") return p->Patch(req, id);
    if (req.method == "DELETE") return p->Delete(req, id);
    return MethodNotAllowed(req);
  }
  if (segs.size() == pos + 1) {
    if (req.method == "POST") {
      if (!ctx_.store->Get(id.Key()).ok())
        return NotFound("The resource '" + id.ToString() + "' was not found.", id.ToString());
      if (!req.body.is_null()) {
        if (const Shape* shape = p->BodyShape(id, "POST", segs[pos]))
          RETURN_IF_ERROR(CheckShape(req.body, *shape));
      }
      return p->Post(req, id, segs[pos]);
    }
    if (req.method == "GET") return p->GetSub(req, id, segs[pos]);
    return MethodNotAllowed(req);
  }
  return NotFound("No API at '" + req.path + "'.", req.path, "NotFound");
}

Result<ApiResponse> ApiServer::HandleSubscription(const ApiRequest& req, const ResourceId& id) {
  if (req.method == "GET") {
    auto rec = ctx_.store->Get(id.Key());
    if (!rec.ok())
      return NotFound("Subscription '" + id.subscription() + "' was not found.", "subscriptionId",
                      "SubscriptionNotFound");
    return ResourceResponse(*rec);
  }
  if (req.method == "PUT") {
    RETURN_IF_ERROR(RequireObjectBody(req));
    RETURN_IF_ERROR(RejectUnknownKeys(req.body, {"displayName"}, ""));
    ASSIGN_OR_RETURN(std::string name, GetString(req.body, "displayName", id.subscription()));
    auto current = ctx_.store->Get(id.Key());
    bool existed = current.ok();
    RETURN_IF_ERROR(CheckPreconditions(req, existed ? &*current : nullptr));
    if (!existed && !IsGuid(id.subscription()))
      return InvalidArgument("The subscription id '" + id.subscription() +
                                 "' is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).",
                             "subscriptionId", "InvalidSubscriptionId");
    if (existed && current->body.value("displayName", "") == name)
      return ResourceResponse(*current);  // nothing changes: same etag
    store::Record rec;
    rec.key = id.Key();
    rec.type = "subscriptions";
    rec.body = {{"id", id.ToString()},
                {"subscriptionId", id.subscription()},
                {"displayName", name},
                {"state", "Enabled"}};
    ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, ConditionFromHeaders(req)));
    return ResourceResponse(rec, existed ? 200 : 201);
  }
  if (req.method == "DELETE") {
    auto current = ctx_.store->Get(id.Key());
    if (!current.ok()) return ApiResponse::NoContent(204);
    std::string if_match = req.Header("if-match");
    if (!if_match.empty() && if_match != "*" && if_match != current->etag)
      return PreconditionFailed("The ETag " + if_match + " does not match the current ETag " +
                                current->etag + ".");
    if (EqualsIgnoreCase(id.subscription(), default_subscription_))
      return Conflict("Subscription '" + id.subscription() +
                          "' is the region's default subscription and cannot be deleted.",
                      "subscriptionId", "CannotDeleteDefaultSubscription");
    ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
    ASSIGN_OR_RETURN(store::Page groups,
                     ctx_.store->List(id.Key() + "/resourcegroups/", "resourcegroups", "", 1));
    if (!groups.records.empty())
      return Conflict("Subscription '" + id.subscription() +
                          "' still has resource groups; delete them first.",
                      "subscriptionId", "SubscriptionNotEmpty");
    RETURN_IF_ERROR(ctx_.store->Delete(id.Key()));
    return ApiResponse::NoContent(200);
  }
  return MethodNotAllowed(req);
}

Result<ApiResponse> ApiServer::HandleGroup(const ApiRequest& req, const ResourceId& id) {
  if (req.method == "GET") {
    auto rec = ctx_.store->Get(id.Key());
    if (!rec.ok())
      return NotFound("Resource group '" + id.resource_group() + "' could not be found.",
                      "resourceGroupName", "ResourceGroupNotFound");
    return ResourceResponse(*rec);
  }
  if (req.method == "PUT") {
    RETURN_IF_ERROR(RequireObjectBody(req));
    RETURN_IF_ERROR(RejectUnknownKeys(req.body, {"location", "tags", "properties", "name", "id",
                                                 "type"},
                                      ""));
    ASSIGN_OR_RETURN(std::string location, ValidateLocation(req.body, ctx_.region));
    RETURN_IF_ERROR(ValidateTags(req.body));
    ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
    auto existing = ctx_.store->Get(id.Key());
    RETURN_IF_ERROR(CheckPreconditions(req, existing.ok() ? &*existing : nullptr));
    store::Record rec;
    if (existing.ok()) {
      // A PUT that changes nothing keeps the etag and writes nothing.
      if (!req.body.contains("tags") || req.body["tags"] == existing->body.value("tags", Json::object()))
        return ResourceResponse(*existing);
      rec = *existing;
      rec.body["tags"] = req.body["tags"];
      TouchSystemData(rec.body, req.caller, ctx_.clock->NowMs());
    } else {
      rec.key = id.Key();
      rec.type = "resourcegroups";
      rec.body = NewResourceBody(id, location, req.body.value("tags", Json::object()), req.caller,
                                 ctx_.clock->NowMs());
      rec.body["type"] = "Stratus.Resources/resourceGroups";
      rec.body["properties"]["provisioningState"] = "Succeeded";
    }
    ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, ConditionFromHeaders(req)));
    return ResourceResponse(rec, existing.ok() ? 200 : 201);
  }
  if (req.method == "PATCH") {
    RETURN_IF_ERROR(RequireObjectBody(req));
    RETURN_IF_ERROR(RejectUnknownKeys(req.body, {"tags"}, ""));
    RETURN_IF_ERROR(ValidateTags(req.body));
    ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
    auto existing = ctx_.store->Get(id.Key());
    if (!existing.ok())
      return NotFound("Resource group '" + id.resource_group() + "' could not be found.",
                      "resourceGroupName", "ResourceGroupNotFound");
    store::Record rec = *existing;
    if (req.body.contains("tags")) rec.body["tags"] = req.body["tags"];
    TouchSystemData(rec.body, req.caller, ctx_.clock->NowMs());
    ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, ConditionFromHeaders(req)));
    return ResourceResponse(rec);
  }
  if (req.method == "DELETE") {
    auto existing = ctx_.store->Get(id.Key());
    if (!existing.ok()) return ApiResponse::NoContent(204);
    std::string if_match = req.Header("if-match");
    if (!if_match.empty() && if_match != "*" && if_match != existing->etag)
      return PreconditionFailed("The ETag '" + if_match + "' does not match the current ETag '" +
                                existing->etag + "'.");
    // Lock, mark Deleting, then hand the lock to the operation: the operation cannot finish
    // (and delete the record) before the "Deleting" write, which would re-create the group.
    ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
    existing->body["properties"]["provisioningState"] = "Deleting";
    RETURN_IF_ERROR(ctx_.store->Put(*existing).status());
    ASSIGN_OR_RETURN(
        std::string op,
        ctx_.ops->StartLocked(
            std::move(lock), id, "Stratus.Resources/subscriptions/resourceGroups/delete",
            Json::object(),
            [this, id](OperationContext& octx) -> Status {
              RETURN_IF_ERROR(DeleteGroupContents(id, octx));
              Status st = ctx_.store->Delete(id.Key());
              if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
              return Status::Ok();
            },
            req.caller));
    return AcceptedResponse(req, id.subscription(), op);
  }
  return MethodNotAllowed(req);
}

Status ApiServer::DeleteGroupContents(const ResourceId& group, OperationContext& ctx) {
  // Collect every top-level resource of the group, then delete in provider order.
  std::vector<std::pair<int, ResourceId>> todo;
  std::string after;
  for (;;) {
    ASSIGN_OR_RETURN(store::Page page, ctx_.store->List(group.Key() + "/providers/", "", after, 500));
    for (auto& r : page.records) {
      auto id = ResourceId::Parse(r.body.value("id", ""));
      if (!id.ok() || id->types_and_names().size() != 1) continue;
      ResourceProvider* p = FindProvider(id->provider_namespace(), id->types_and_names()[0].first);
      if (!p) continue;
      todo.emplace_back(p->DeleteOrder(id->FullType()), *id);
    }
    if (page.next_key.empty()) break;
    after = page.next_key;
  }
  std::stable_sort(todo.begin(), todo.end(),
                   [](auto& a, auto& b) { return a.first < b.first; });
  size_t done = 0;
  for (auto& [order, id] : todo) {
    ctx.SetProgress(static_cast<int>(done * 100 / (todo.size() + 1)), "deleting " + id.ToString());
    Status st = FindProvider(id.provider_namespace(), id.types_and_names()[0].first)
                    ->DeleteForGroup(id, ctx);
    if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
    ++done;
  }
  return Status::Ok();
}

ApiRequest ApiServer::FromHttp(const HttpRequest& h) const {
  ApiRequest req;
  req.method = h.method == "HEAD" ? "GET" : h.method;
  req.path = h.path;
  for (auto& [k, v] : h.query) req.query[ToLower(k)] = v;
  req.headers = h.headers;
  req.correlation_id = req.Header("x-ms-correlation-request-id");
  if (!PlainCorrelationId(req.correlation_id)) req.correlation_id = NewUuid();
  req.base_url = public_url();
  req.client_ip = h.peer;
  return req;
}

HttpResponse ApiServer::ToHttp(const ApiResponse& resp) const {
  HttpResponse out;
  out.status = resp.status;
  for (auto& [k, v] : resp.headers) out.headers.emplace_back(k, v);
  if (!resp.body.is_null()) {
    out.body = DumpJson(resp.body);
    out.content_type = "application/json; charset=utf-8";
  } else if (!resp.text.empty()) {
    out.body = resp.text;
    out.content_type = "text/plain; charset=utf-8";
  }
  return out;
}

namespace {

// What OnHead learned of a request, handed to Handle() through HttpRequest::context.
struct RequestContext {
  auth::Principal principal;
  ResourceProvider* upload_provider = nullptr;  // set for PUT {id}/upload/{part}
  std::optional<ResourceId> upload_id;
  std::string upload_part;
};

}  // namespace

Result<bool> ApiServer::MatchUpload(const ApiRequest& req, ResourceProvider** provider,
                                    std::optional<ResourceId>* id, std::string* part) {
  auto segs = PathSegments(req.path);
  if (req.method != "PUT" || segs.size() != 10 || !SameName(segs[0], "subscriptions") ||
      !SameName(segs[2], "resourceGroups") || !SameName(segs[4], "providers") || !SameName(segs[8], "upload"))
    return false;
  RETURN_IF_ERROR(ValidateSubscriptionId(segs[1]));
  RETURN_IF_ERROR(ValidateResourceGroupName(segs[3]));
  ASSIGN_OR_RETURN(auto resolved, ResolveType(segs[5], segs[6]));
  auto [p, type] = resolved;
  RETURN_IF_ERROR(ValidateResourceName(segs[7], type, 80));
  ResourceId rid = ResourceId::Resource(segs[1], segs[3], p->Namespace(), type, segs[7]);
  RETURN_IF_ERROR(CheckGroupExists(ctx_.store, rid));
  if (!ctx_.store->Get(rid.Key()).ok())
    return NotFound("The resource '" + rid.ToString() + "' was not found.", rid.ToString());
  *provider = p;
  *id = rid;
  *part = segs[9];
  return true;
}

HeadDecision ApiServer::OnHead(const HttpRequest& head) {
  HeadDecision d;
  ApiRequest req = FromHttp(head);
  auto principal = auth_->Authenticate(req.Header("authorization"));
  if (!principal.ok()) {
    d.answer = ToHttp(Unauthenticated(req, principal.status()));
    return d;
  }
  auto rc = std::make_shared<RequestContext>();
  rc->principal = *principal;
  auto upload = MatchUpload(req, &rc->upload_provider, &rc->upload_id, &rc->upload_part);
  Status refused = upload.status();
  if (upload.ok() && *upload) {
    req.caller = principal->name;
    auto u = rc->upload_provider->BeginUpload(req, *rc->upload_id, rc->upload_part);
    if (u.ok()) {
      d.sink = u->sink;
      d.body_limit = u->max_bytes;
    } else {
      refused = u.status();
    }
  }
  if (!refused.ok()) {
    // Refused before the body: answered at once, and logged as the failed write it is.
    req.caller = principal->name;
    ApiResponse resp = ErrorResponse(refused);
    resp.headers["x-ms-correlation-request-id"] = req.correlation_id;
    RecordActivity(req, resp);
    d.answer = ToHttp(resp);
    return d;
  }
  d.context = rc;
  return d;
}

HttpResponse ApiServer::Handle(HttpRequest h) {
  ApiRequest req = FromHttp(h);
  auth::Principal principal;
  if (h.context) {
    auto* rc = static_cast<RequestContext*>(h.context.get());
    principal = rc->principal;
    if (rc->upload_provider && h.sink) {
      req.caller = principal.name;
      Result<ApiResponse> r = rc->upload_provider->FinishUpload(req, *rc->upload_id,
                                                                rc->upload_part, *h.sink,
                                                                h.body_bytes);
      ApiResponse resp = r.ok() ? std::move(r).value() : ErrorResponse(r.status());
      resp.headers["x-ms-correlation-request-id"] = req.correlation_id;
      RecordActivity(req, resp);
      return ToHttp(resp);
    }
  } else {
    auto p = auth_->Authenticate(req.Header("authorization"));
    if (!p.ok()) return ToHttp(Handle(std::move(req)));  // answers 401 and logs it
    principal = *p;
  }
  if (!h.body.empty()) {
    auto body = ParseJson(h.body, JsonLimits::Request());
    if (!body.ok()) {
      // A rejected write is still a write attempt: it goes to the activity log.
      req.caller = principal.name;
      ApiResponse resp = ErrorResponse(body.status());
      resp.headers["x-ms-correlation-request-id"] = req.correlation_id;
      if (IsWrite(req.method)) RecordActivity(req, resp);
      return ToHttp(resp);
    }
    req.body = std::move(body).value();
  }
  return ToHttp(Dispatch(req, principal));
}

HttpResponse ApiServer::Refused(const HttpRequest& head, int status, const std::string& code,
                                const std::string& message) {
  ApiResponse resp;
  resp.status = status;
  resp.body = {{"error", {{"code", code}, {"message", message}, {"details", Json::array()}}}};
  ApiRequest req = FromHttp(head);
  resp.headers["x-ms-correlation-request-id"] = req.correlation_id;
  // An authenticated write refused before it reached a handler (body too large) is logged.
  if (!head.method.empty() && IsWrite(req.method) && !req.path.empty()) {
    auto principal = auth_->Authenticate(req.Header("authorization"));
    if (principal.ok()) {
      req.caller = principal->name;
      RecordActivity(req, resp);
    }
  }
  HttpResponse out = ToHttp(resp);
  out.close = true;
  return out;
}

Result<int> ApiServer::Listen(HttpServerOptions options, const std::string& public_url) {
  if (http_) return Internal("the API server is already listening");
  if (options.max_body_bytes == 0 || options.max_body_bytes > kMaxBodyBytes)
    options.max_body_bytes = kMaxBodyBytes;
  bool tls = !options.tls_cert_file.empty();
  std::string host = options.host;
  auto http = std::make_unique<HttpServer>(options, this);
  ASSIGN_OR_RETURN(int port, http->Start());
  std::lock_guard<std::mutex> l(url_mu_);
  if (!public_url.empty()) {
    public_url_ = public_url;
    while (!public_url_.empty() && public_url_.back() == '/') public_url_.pop_back();
  } else {
    if (host == "0.0.0.0" || host == "::") {
      spdlog::warn("listening on all addresses: API URLs will name 127.0.0.1; set --public-url "
                   "to the address clients use");
      host = "127.0.0.1";
    }
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    public_url_ = std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port);
  }
  http_ = std::move(http);
  return port;
}

Result<int> ApiServer::Listen(const std::string& host, int port, int threads) {
  HttpServerOptions o;
  o.host = host;
  o.port = port;
  o.worker_threads = threads;
  return Listen(o);
}

void ApiServer::Stop() {
  if (http_) http_->Stop();
}

}  // namespace stratus::api
