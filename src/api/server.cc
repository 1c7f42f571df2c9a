#include "api/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "api/resource_util.h"
#include "core/uuid.h"

namespace stratus::api {
namespace {

std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool Is(const std::string& a, const char* b) { return EqualsIgnoreCase(a, b); }

Status MethodNotAllowed(const ApiRequest& req) {
  return Status(StatusCode::kMethodNotAllowed, "MethodNotAllowed",
                "The method '" + req.method + "' is not allowed on '" + req.path + "'.");
}

bool IsWrite(const std::string& method) { return method != "GET" && method != "HEAD"; }

std::string ActivityOperationName(const ApiRequest& req) {
  auto segs = Segments(req.path);
  // Type path of the target, e.g. Stratus.Compute/virtualMachines[/start/action].
  std::string type;
  auto id = ResourceId::Parse(req.path);
  std::string verb = req.method == "DELETE" ? "delete" : "write";
  if (id.ok()) {
    type = id->FullType();
    if (type == "subscriptions") type = "Stratus.Resources/subscriptions";
    if (type == "resourceGroups") type = "Stratus.Resources/subscriptions/resourceGroups";
    return type + "/" + verb;
  }
  // POST {id}/{action}
  if (segs.size() >= 9) {
    std::string base;
    for (size_t i = 0; i + 1 < segs.size(); ++i) base += "/" + segs[i];
    auto rid = ResourceId::Parse(base);
    if (rid.ok()) return rid->FullType() + "/" + segs.back() + "/action";
  }
  return req.method + " " + req.path;
}

}  // namespace

ApiServer::ApiServer(RegionContext ctx, auth::TokenAuthenticator* auth)
    : ctx_(std::move(ctx)), auth_(auth) {
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
    Status st = ctx_.store->AppendActivity(ev);
    if (!st.ok()) spdlog::warn("activity log: {}", st.ToString());
  };
}

ApiServer::~ApiServer() { Stop(); }

void ApiServer::AddProvider(std::unique_ptr<ResourceProvider> provider) {
  providers_[ToLower(provider->Namespace())] = std::move(provider);
}

ResourceProvider* ApiServer::FindProvider(const std::string& ns) const {
  auto it = providers_.find(ToLower(ns));
  return it == providers_.end() ? nullptr : it->second.get();
}

Status ApiServer::EnsureSubscription(const std::string& sub, const std::string& display_name) {
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
  if (req.correlation_id.empty()) req.correlation_id = NewUuid();
  ApiResponse resp;
  auto principal = auth_->Authenticate(req.Header("authorization"));
  if (!principal.ok()) {
    resp = ErrorResponse(principal.status());
  } else {
    req.caller = principal->name;
    Result<ApiResponse> r = [&]() -> Result<ApiResponse> {
      try {
        return Route(req);
      } catch (const std::exception& e) {
        // A handler bug must not take the daemon down; report it as a 500.
        return Internal(std::string("unexpected error handling the request: ") + e.what());
      }
    }();
    resp = r.ok() ? std::move(r).value() : ErrorResponse(r.status());
  }
  resp.headers["x-ms-correlation-request-id"] = req.correlation_id;
  // POST retrieve* actions read (console log); they are not writes.
  bool read_action = req.method == "POST" &&
                     ToLower(req.path).find("/retrieve") != std::string::npos;
  if (IsWrite(req.method) && !read_action && principal.ok()) RecordActivity(req, resp);
  return resp;
}

void ApiServer::RecordActivity(const ApiRequest& req, const ApiResponse& resp) {
  auto segs = Segments(req.path);
  if (segs.size() < 2 || !Is(segs[0], "subscriptions")) return;
  store::ActivityEvent ev;
  ev.time_ms = ctx_.clock->NowMs();
  ev.subscription = ToLower(segs[1]);
  std::string status = resp.status >= 400 ? "Failed"
                       : (resp.status == 202 || resp.headers.count("Azure-AsyncOperation"))
                           ? "Accepted"
                           : "Succeeded";
  ev.body = {{"eventTimestamp", FormatIso8601(ev.time_ms)},
             {"caller", req.caller},
             {"operationName", ActivityOperationName(req)},
             {"resourceId", req.path},
             {"httpMethod", req.method},
             {"status", status},
             {"httpStatus", resp.status},
             {"correlationId", req.correlation_id}};
  auto it = resp.headers.find("Azure-AsyncOperation");
  if (it != resp.headers.end()) ev.body["operationId"] = Segments(it->second).back();
  if (resp.status >= 400 && resp.body.contains("error")) ev.body["error"] = resp.body["error"];
  Status st = ctx_.store->AppendActivity(ev);
  if (!st.ok()) spdlog::warn("activity log: {}", st.ToString());
}

Result<ApiResponse> ApiServer::ListCollection(const ApiRequest& req, const std::string& key_prefix,
                                              const std::string& type,
                                              ResourceProvider* decorator) {
  int top = 100;
  std::string top_s = req.Query("$top");
  if (!top_s.empty()) {
    char* end = nullptr;
    long v = std::strtol(top_s.c_str(), &end, 10);
    if (*end != '\0' || v < 1 || v > 1000)
      return InvalidArgument("'$top' must be an integer from 1 to 1000, not '" + top_s + "'.",
                             "$top");
    top = static_cast<int>(v);
  }
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

Result<ApiResponse> ApiServer::Route(const ApiRequest& req) {
  auto segs = Segments(req.path);
  if (segs.empty() || !Is(segs[0], "subscriptions"))
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
  if (Is(segs[2], "providers")) {
    if (req.method != "GET") return MethodNotAllowed(req);
    if (segs.size() == 5 && Is(segs[3], "Stratus.Resources") && Is(segs[4], "operations"))
      return MethodNotAllowed(req);
    if (segs.size() == 6 && Is(segs[3], "Stratus.Resources") && Is(segs[4], "operations")) {
      ASSIGN_OR_RETURN(store::OperationRecord op, ctx_.ops->Get(segs[5]));
      if (!EqualsIgnoreCase(op.subscription, sub))
        return NotFound("Operation '" + segs[5] + "' was not found.", segs[5],
                        "OperationNotFound");
      return ApiResponse::Json200(op.body);
    }
    if (segs.size() == 5 && Is(segs[3], "Stratus.Insights") && Is(segs[4], "activityLogs")) {
      int top = 100;
      std::string t = req.Query("$top");
      if (!t.empty()) top = std::clamp(std::atoi(t.c_str()), 1, 1000);
      ASSIGN_OR_RETURN(auto events, ctx_.store->ListActivity(ToLower(sub), top));
      Json value = Json::array();
      for (auto& e : events) value.push_back(e.body);
      return ApiResponse::Json200({{"value", value}});
    }
    if (segs.size() >= 4) {
      ResourceProvider* p = FindProvider(segs[3]);
      if (p) return p->SubscriptionGet(req, sub, std::vector<std::string>(segs.begin() + 4, segs.end()));
    }
    return NotFound("No registered provider found for '" + req.path + "'.", req.path,
                    "NoRegisteredProviderFound");
  }

  if (!Is(segs[2], "resourceGroups"))
    return NotFound("No API at '" + req.path + "'.", req.path, "NotFound");
  if (segs.size() == 3) {
    if (req.method != "GET") return MethodNotAllowed(req);
    return ListCollection(req, ResourceId::Subscription(sub).Key() + "/resourcegroups/",
                          "resourcegroups");
  }
  RETURN_IF_ERROR(ValidateResourceGroupName(segs[3]));
  ResourceId group = ResourceId::Group(sub, segs[3]);
  if (segs.size() == 4) return HandleGroup(req, group);
  if (segs.size() == 5 && Is(segs[4], "resources")) {
    if (req.method != "GET") return MethodNotAllowed(req);
    RETURN_IF_ERROR(CheckGroupExists(ctx_.store, group));
    return ListCollection(req, group.Key() + "/providers/", "");
  }
  if (!Is(segs[4], "providers") || segs.size() < 7)
    return NotFound("No API at '" + req.path + "'.", req.path, "NotFound");
  ResourceProvider* p = FindProvider(segs[5]);
  if (!p)
    return NotFound("No registered resource provider found for namespace '" + segs[5] + "'.",
                    segs[5], "NoRegisteredProviderFound");
  bool known_type = false;
  for (auto& t : p->ResourceTypes()) known_type = known_type || Is(t, segs[6].c_str());
  if (!known_type)
    return NotFound("The resource type '" + segs[6] + "' is not served by '" + p->Namespace() +
                        "'.",
                    segs[6], "InvalidResourceType");
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
  while (segs.size() >= pos + 1) {
    bool child_type = false;
    for (auto& t : p->ChildTypes(id)) child_type = child_type || Is(t, segs[pos].c_str());
    if (!child_type) break;
    if (!ctx_.store->Get(id.Key()).ok())
      return NotFound("The parent resource '" + id.ToString() + "' was not found.", id.ToString(),
                      "ParentResourceNotFound");
    if (segs.size() == pos + 1) {
      if (req.method != "GET") return MethodNotAllowed(req);
      ResourceId probe = id.Child(segs[pos], "x");
      return ListCollection(req, id.Key() + "/" + ToLower(segs[pos]) + "/", TypeKey(probe), p);
    }
    RETURN_IF_ERROR(ValidateResourceName(segs[pos + 1], segs[pos], 80));
    id = id.Child(segs[pos], segs[pos + 1]);
    pos += 2;
  }
  if (segs.size() == pos) {
    if (req.method == "PUT") {
      RETURN_IF_ERROR(RequireObjectBody(req));
      return p->Put(req, id);
    }
    if (req.method == "GET") return p->Get(req, id);
    if (req.method == "PATCH") return p->Patch(req, id);
    if (req.method == "DELETE") return p->Delete(req, id);
    return MethodNotAllowed(req);
  }
  if (segs.size() == pos + 1) {
    if (req.method == "POST") {
      if (!ctx_.store->Get(id.Key()).ok())
        return NotFound("The resource '" + id.ToString() + "' was not found.", id.ToString());
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
    bool existed = ctx_.store->Get(id.Key()).ok();
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
    store::Record rec;
    if (existing.ok()) {
      rec = *existing;
      if (req.body.contains("tags")) rec.body["tags"] = req.body["tags"];
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
      ResourceProvider* p = FindProvider(id->provider_namespace());
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
    Status st = FindProvider(id.provider_namespace())->DeleteForGroup(id, ctx);
    if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
    ++done;
  }
  return Status::Ok();
}

Result<int> ApiServer::Listen(const std::string& host, int port, int threads) {
  http_ = std::make_unique<httplib::Server>();
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(kMaxBodyBytes);
  // Small JSON responses: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per request.
  http_->set_tcp_nodelay(true);
  auto handler = [this](const httplib::Request& hreq, httplib::Response& hres) {
    ApiRequest req;
    req.method = hreq.method;
    req.path = hreq.path;
    for (auto& [k, v] : hreq.params) req.query[ToLower(k)] = v;
    for (auto& [k, v] : hreq.headers) req.headers[ToLower(k)] = v;
    req.correlation_id = req.Header("x-ms-correlation-request-id");
    std::string host_hdr = hreq.get_header_value("Host");
    req.base_url = "http://" + (host_hdr.empty() ? std::string("127.0.0.1") : host_hdr);
    ApiResponse resp;
    bool parsed = true;
    if (!hreq.body.empty()) {
      auto body = ParseJson(hreq.body);
      if (!body.ok()) {
        resp = ErrorResponse(body.status());
        parsed = false;
        // Still authenticate first: an anonymous caller learns nothing from the parse error.
        auto principal = auth_->Authenticate(req.Header("authorization"));
        if (!principal.ok()) {
          resp = ErrorResponse(principal.status());
        } else {
          // A rejected write is still a write attempt: it goes to the activity log.
          if (req.correlation_id.empty()) req.correlation_id = NewUuid();
          req.caller = principal->name;
          resp.headers["x-ms-correlation-request-id"] = req.correlation_id;
          if (IsWrite(req.method)) RecordActivity(req, resp);
        }
      } else {
        req.body = std::move(body).value();
      }
    }
    if (parsed) resp = Handle(std::move(req));
    hres.status = resp.status;
    for (auto& [k, v] : resp.headers) hres.set_header(k, v);
    if (!resp.body.is_null()) {
      hres.set_content(resp.body.dump(), "application/json; charset=utf-8");
    } else if (!resp.text.empty()) {
      hres.set_content(resp.text, "text/plain; charset=utf-8");
    }
  };
  http_->Get(".*", handler);
  http_->Put(".*", handler);
  http_->Post(".*", handler);
  http_->Patch(".*", handler);
  http_->Delete(".*", handler);
  http_->set_keep_alive_max_count(10000);
  http_->set_error_handler([this](const httplib::Request& hreq, httplib::Response& res) {
    if (!res.body.empty()) return;
    Status st = res.status == 413
                    ? Status(StatusCode::kPayloadTooLarge, "RequestEntityTooLarge",
                             "The request body is larger than " +
                                 std::to_string(kMaxBodyBytes) + " bytes.")
                    : Status(StatusCode::kInvalidArgument, "BadRequest",
                             "The request could not be read (HTTP " +
                                 std::to_string(res.status) + ").");
    res.set_content(ErrorBody(st).dump(), "application/json; charset=utf-8");
    // An authenticated write refused before it reached a handler (body too large) is logged.
    if (res.status == 413 && IsWrite(hreq.method)) {
      auto principal = auth_->Authenticate(hreq.get_header_value("Authorization"));
      if (principal.ok()) {
        ApiRequest req;
        req.method = hreq.method;
        req.path = hreq.path;
        req.caller = principal->name;
        req.correlation_id = hreq.get_header_value("x-ms-correlation-request-id");
        if (req.correlation_id.empty()) req.correlation_id = NewUuid();
        ApiResponse resp = ErrorResponse(st);
        RecordActivity(req, resp);
      }
    }
  });
  int bound = port;
  if (port == 0) {
    bound = http_->bind_to_any_port(host);
  } else if (!http_->bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound <= 0)
    return Unavailable("cannot listen on " + host + ":" + std::to_string(port) +
                       " (address in use?)");
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  return bound;
}

void ApiServer::Stop() {
  if (http_) http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
}

}  // namespace stratus::api
