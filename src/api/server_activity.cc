// ApiServer's activity log: every write and failed sign-in as an event, secrets redacted,
// strings capped, pruned after the retention period, listed a page at a time
// (Stratus.Insights/activityLogs).
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "api/resource_util.h"
#include "api/server.h"
#include "api/server_internal.h"

namespace stratus::api {
namespace {

// Request properties whose values are secrets. Their values never reach the activity log: any
// occurrence of one in an event (an error message quoting it, say) is replaced. docs/api.md
// lists them.
const char* const kSecretProperties[] = {
    "passphrase",   "customData",   "password", "adminPassword",   "secret",
    "clientSecret", "key",          "keyValue", "privateKey",      "token",
    "accessToken",  "refreshToken", "sasToken", "connectionString", "pairingToken"};

bool IsSecretName(const std::string& name) {
  for (const char* s : kSecretProperties)
    if (EqualsIgnoreCase(name, s)) return true;
  return false;
}

void CollectSecrets(const Json& v, std::vector<std::string>* out, bool secret = false) {
  if (v.is_object()) {
    for (auto& [k, child] : v.items()) CollectSecrets(child, out, secret || IsSecretName(k));
  } else if (v.is_array()) {
    for (auto& child : v) CollectSecrets(child, out, secret);
  } else if (secret && v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.size() >= 4) out->push_back(s);  // shorter values would redact ordinary words
  }
}

// Replaces every secret in every string of `v`, then cuts every string to `max` bytes (on a
// UTF-8 character boundary).
void Sanitize(Json& v, const std::vector<std::string>& secrets, size_t max) {
  if (v.is_object() || v.is_array()) {
    for (auto& child : v) Sanitize(child, secrets, max);
    return;
  }
  if (!v.is_string()) return;
  std::string& s = v.get_ref<std::string&>();
  for (auto& secret : secrets) {
    for (size_t at = s.find(secret); at != std::string::npos; at = s.find(secret, at + 10))
      s.replace(at, secret.size(), "[REDACTED]");
  }
  if (s.size() > max) {
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s = s.substr(0, cut) + "...(" + std::to_string(s.size() - cut) + " more bytes)";
  }
}

std::string ActivityOperationName(const ApiRequest& req) {
  auto segs = PathSegments(req.path);
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
  // PUT {id}/upload/{part}
  if (segs.size() == 10 && SameName(segs[8], "upload")) {
    std::string base;
    for (size_t i = 0; i < 8; ++i) base += "/" + segs[i];
    auto rid = ResourceId::Parse(base);
    if (rid.ok()) return rid->FullType() + "/upload/action";
  }
  // Subscription-level provider paths: /subscriptions/{sub}/providers/{ns}/{type}[/{name}[/{action}]]
  // (a provider action when {type} is one: generatePairingToken).
  if (segs.size() >= 5 && SameName(segs[2], "providers")) {
    std::string base = segs[3] + "/" + segs[4];
    if (segs.size() == 5) return base + "/action";
    if (segs.size() == 6) return base + "/" + verb;
    return base + "/" + segs.back() + "/action";
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

void ApiServer::AppendActivity(store::ActivityEvent ev, const ApiRequest* req) {
  std::vector<std::string> secrets;
  if (req) CollectSecrets(req->body, &secrets);
  Sanitize(ev.body, secrets, activity_.max_string_bytes);
  Status st = ctx_.store->AppendActivity(ev);
  if (!st.ok()) spdlog::warn("activity log: {}", st.ToString());
  bool prune = false;
  {
    std::lock_guard<std::mutex> l(activity_mu_);
    if (ev.time_ms - last_prune_ms_ >= 3600 * 1000) {
      last_prune_ms_ = ev.time_ms;
      prune = true;
    }
  }
  if (prune) PruneActivityLog();
}

Status ApiServer::PruneActivityLog() {
  int64_t cutoff = ctx_.clock->NowMs() - activity_.retention_days * 86400 * 1000;
  auto n = ctx_.store->PruneActivity(cutoff);
  if (!n.ok()) {
    spdlog::warn("activity log: prune failed: {}", n.status().ToString());
    return n.status();
  }
  if (*n > 0)
    spdlog::info("activity log: pruned {} events older than {} days", *n, activity_.retention_days);
  return Status::Ok();
}

void ApiServer::RecordFailedLogin(const ApiRequest& req, const std::string& peer,
                                  const Status& why) {
  int64_t now = ctx_.clock->NowMs();
  int suppressed = 0;
  {
    std::lock_guard<std::mutex> l(activity_mu_);
    if (now - failed_login_window_ms_ >= 60000) {
      failed_login_window_ms_ = now;
      failed_logins_in_window_ = 0;
    }
    if (++failed_logins_in_window_ > activity_.max_failed_logins_per_minute) {
      ++failed_logins_suppressed_;
      return;
    }
    suppressed = failed_logins_suppressed_;
    failed_logins_suppressed_ = 0;
  }
  spdlog::warn("authentication failed from {} ({} {}): {}", peer.empty() ? "in-process" : peer,
               req.method, req.path.substr(0, 200), why.message());
  // The subscription named in the path when it exists, else the region's default one.
  auto segs = PathSegments(req.path);
  std::string sub = default_subscription_;
  if (segs.size() >= 2 && SameName(segs[0], "subscriptions") &&
      ValidateSubscriptionId(segs[1]).ok() &&
      ctx_.store->Get(ResourceId::Subscription(segs[1]).Key()).ok())
    sub = segs[1];
  if (sub.empty()) return;
  store::ActivityEvent ev;
  ev.time_ms = now;
  ev.subscription = ToLower(sub);
  ev.body = {{"eventTimestamp", FormatIso8601(now)},
             {"caller", ""},
             {"operationName", "Stratus.Authorization/authenticate/action"},
             {"resourceId", req.path},
             {"httpMethod", req.method},
             {"status", "Failed"},
             {"httpStatus", 401},
             {"correlationId", req.correlation_id},
             {"error", ErrorBody(why)["error"]}};
  if (!peer.empty()) ev.body["clientIpAddress"] = peer;
  if (suppressed > 0) ev.body["suppressedEvents"] = suppressed;
  AppendActivity(std::move(ev), nullptr);
}

void ApiServer::RecordActivity(const ApiRequest& req, const ApiResponse& resp) {
  auto segs = PathSegments(req.path);
  if (segs.size() < 2 || !SameName(segs[0], "subscriptions")) return;
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
  if (!req.client_ip.empty()) ev.body["clientIpAddress"] = req.client_ip;
  auto it = resp.headers.find("Azure-AsyncOperation");
  if (it != resp.headers.end()) ev.body["operationId"] = PathSegments(it->second).back();
  if (resp.status >= 400 && resp.body.is_object() && resp.body.contains("error"))
    ev.body["error"] = resp.body["error"];
  AppendActivity(std::move(ev), &req);
}

Result<ApiResponse> ApiServer::ListActivity(const ApiRequest& req, const std::string& sub) {
  ASSIGN_OR_RETURN(int top, ParseTop(req));
  int64_t before = 0;
  std::string token = req.Query("$skiptoken");
  if (!token.empty()) {
    char* end = nullptr;
    long long v = std::strtoll(token.c_str(), &end, 10);
    if (*end != '\0' || v < 1)
      return InvalidArgument("'$skipToken' is not a token this API returned.", "$skipToken");
    before = v;
  }
  ASSIGN_OR_RETURN(auto events, ctx_.store->ListActivity(ToLower(sub), top + 1, before));
  Json value = Json::array();
  bool more = static_cast<int>(events.size()) > top;
  if (more) events.pop_back();
  for (auto& e : events) value.push_back(e.body);
  Json body = {{"value", value}};
  if (more)
    body["nextLink"] = req.base_url + "/subscriptions/" + sub +
                       "/providers/Stratus.Insights/activityLogs?$top=" + std::to_string(top) +
                       "&$skipToken=" + std::to_string(events.back().seq);
  return ApiResponse::Json200(body);
}

}  // namespace stratus::api
