// ApiServer: the region's ARM front door.
//
// Authenticates every request (bearer token) before its body is read, parses JSON within
// JsonLimits::Request(), checks the body's shape against what the provider declares, routes ARM
// paths to the built-in handlers (subscriptions, resource groups, operations, activity log) or
// to the provider of the namespace, maps Status to ARM error bodies, and records every write and
// every failed authentication in the activity log (bounded, secrets redacted). The HTTP
// transport is HttpServer (http_server.h); ApiServer is its handler. Handlers never block on
// engine work: that runs as operations.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/http_server.h"
#include "api/provider.h"
#include "auth/token_authenticator.h"

namespace stratus::api {

struct ActivityLogOptions {
  int64_t retention_days = 90;      // events older than this are pruned (hourly)
  size_t max_string_bytes = 1024;   // every string of an event is cut to this
  int max_failed_logins_per_minute = 60;  // more are counted, not written one by one
};

class ApiServer : public HttpHandler {
 public:
  static constexpr size_t kMaxBodyBytes = 1 << 20;

  ApiServer(RegionContext ctx, auth::TokenAuthenticator* auth, ActivityLogOptions activity = {});
  ~ApiServer() override;

  // Registers `provider` for each (Namespace(), type) of its ResourceTypes() and for each of its
  // SubscriptionCollections(): several providers may serve one namespace (backup and site
  // recovery under Stratus.RecoveryServices, say), each owning its types. Internal, and
  // nothing registered, when one of those (namespace, type) pairs is served already. Call
  // before Listen (the routing table is not guarded).
  Status AddProvider(std::unique_ptr<ResourceProvider> provider);
  // The provider of top-level type `type` of namespace `ns` (both case-insensitive), or nullptr.
  ResourceProvider* FindProvider(const std::string& ns, const std::string& type) const;

  // Handles one request in-process (the HTTP handler below and tests): authenticates it, then
  // routes it. `req.body` is already parsed.
  ApiResponse Handle(ApiRequest req);

  // Serves HTTP with these options (their body limit is kMaxBodyBytes unless set lower).
  // Returns the bound port. URLs the API returns (Location, Azure-AsyncOperation, nextLink)
  // start with `public_url`, or "http(s)://host:port" of the listener when it is empty: never
  // with what a client sent in its Host header.
  Result<int> Listen(HttpServerOptions options, const std::string& public_url = "");
  Result<int> Listen(const std::string& host, int port, int threads = 16);
  void Stop();
  // The base of the URLs the API returns (set by Listen).
  std::string public_url() const {
    std::lock_guard<std::mutex> l(url_mu_);
    return public_url_;
  }

  // Creates the subscription if missing (first start). The first one ensured is the region's
  // default subscription: it cannot be deleted, and failed authentications that name no
  // subscription are logged there.
  Status EnsureSubscription(const std::string& sub, const std::string& display_name);

  // Removes activity events older than the retention (also done hourly while serving).
  Status PruneActivityLog();

  // HttpHandler.
  HeadDecision OnHead(const HttpRequest& head) override;
  HttpResponse Handle(HttpRequest req) override;
  HttpResponse Refused(const HttpRequest& head, int status, const std::string& code,
                       const std::string& message) override;

 private:
  ApiRequest FromHttp(const HttpRequest& h) const;
  // The provider of namespace `ns` and the type as it spells it; 404 when either is unknown.
  Result<std::pair<ResourceProvider*, std::string>> ResolveType(const std::string& ns,
                                                                const std::string& type) const;
  // True (and the parts set) for PUT {top-level resource}/upload/{part} on an existing resource;
  // false for any other request; an error for an upload to something that does not exist.
  Result<bool> MatchUpload(const ApiRequest& req, ResourceProvider** provider,
                           std::optional<ResourceId>* id, std::string* part);
  HttpResponse ToHttp(const ApiResponse& resp) const;
  ApiResponse Dispatch(ApiRequest& req, const auth::Principal& principal);
  // 401 with WWW-Authenticate; the failed authentication is logged.
  ApiResponse Unauthenticated(const ApiRequest& req, const Status& why);
  void RecordFailedLogin(const ApiRequest& req, const std::string& peer, const Status& why);
  void AppendActivity(store::ActivityEvent ev, const ApiRequest* req);
  Result<ApiResponse> ListActivity(const ApiRequest& req, const std::string& sub);
  Result<ApiResponse> Route(ApiRequest& req);
  Result<ApiResponse> HandleSubscription(const ApiRequest& req, const ResourceId& id);
  Result<ApiResponse> HandleGroup(const ApiRequest& req, const ResourceId& id);
  // `decorator` (may be null) adds computed fields to each item.
  Result<ApiResponse> ListCollection(const ApiRequest& req, const std::string& key_prefix,
                                     const std::string& type,
                                     ResourceProvider* decorator = nullptr);
  Status DeleteGroupContents(const ResourceId& group, OperationContext& ctx);
  void RecordActivity(const ApiRequest& req, const ApiResponse& resp);

  RegionContext ctx_;
  auth::TokenAuthenticator* auth_;
  ActivityLogOptions activity_;
  // The routing table, written only by AddProvider (before serving).
  struct TypeRoute {
    ResourceProvider* provider = nullptr;
    std::string type;  // as the provider spells it
  };
  using RouteKey = std::pair<std::string, std::string>;  // lowercase (namespace, type)
  std::vector<std::unique_ptr<ResourceProvider>> providers_;  // in registration order
  std::map<RouteKey, TypeRoute> types_;                       // top-level resource types
  std::map<RouteKey, TypeRoute> subscription_collections_;    // first segment below providers/{ns}
  std::map<std::string, std::string> namespaces_;         // lowercase -> as spelled
  std::unique_ptr<HttpServer> http_;
  mutable std::mutex url_mu_;  // guards public_url_ (requests may arrive while Listen sets it)
  std::string public_url_;
  std::string default_subscription_;  // set by the first EnsureSubscription

  std::mutex activity_mu_;  // guards the fields below
  int64_t last_prune_ms_ = 0;
  int64_t failed_login_window_ms_ = 0;
  int failed_logins_in_window_ = 0;
  int failed_logins_suppressed_ = 0;
};

}  // namespace stratus::api
