// ApiServer: the region's HTTP/JSON front door.
//
// Authenticates every request (bearer token), limits body size, parses JSON, routes ARM paths
// to the built-in handlers (subscriptions, resource groups, operations, activity log) or to the
// provider of the namespace, maps Status to ARM error bodies, and records every write in the
// activity log. Runs cpp-httplib's thread pool; handlers never block on engine work.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/provider.h"
#include "auth/token_authenticator.h"

namespace httplib {
class Server;
}

namespace stratus::api {

class ApiServer {
 public:
  static constexpr size_t kMaxBodyBytes = 1 << 20;

  ApiServer(RegionContext ctx, auth::TokenAuthenticator* auth);
  ~ApiServer();

  void AddProvider(std::unique_ptr<ResourceProvider> provider);
  ResourceProvider* FindProvider(const std::string& ns) const;

  // Handles one request in-process (used by the HTTP layer and by tests).
  ApiResponse Handle(ApiRequest req);

  // Binds host:port (port 0 = any) and serves on a background thread. Returns the bound port.
  Result<int> Listen(const std::string& host, int port, int threads = 16);
  void Stop();

  // Creates the subscription if missing (first start).
  Status EnsureSubscription(const std::string& sub, const std::string& display_name);

 private:
  Result<ApiResponse> Route(const ApiRequest& req);
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
  std::map<std::string, std::unique_ptr<ResourceProvider>> providers_;  // key: lowercase ns
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
};

}  // namespace stratus::api
