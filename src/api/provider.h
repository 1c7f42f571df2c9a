// ResourceProvider: the resource types of one namespace that one module serves (Stratus.Compute's
// virtual machines and images, Stratus.RecoveryServices' vaults, ...).
//
// The ApiServer authenticates, parses, routes by (namespace, top-level type) and logs; a provider
// validates and carries out requests for its resource types and their children. One namespace
// may be served by several providers, each with its own types. Providers must reject bad input before changing anything,
// and run engine work as operations (OperationManager) so the API threads never block on it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/http_server.h"
#include "api/http_types.h"
#include "api/json_shape.h"
#include "api/operations.h"
#include "core/clock.h"
#include "core/resource_id.h"
#include "store/store.h"

namespace stratus::api {

// What every provider of one region shares. Owned by the daemon; outlives providers.
struct RegionContext {
  store::Store* store = nullptr;
  OperationManager* ops = nullptr;
  Clock* clock = nullptr;
  std::string region;    // location name, e.g. "regionA"
  std::string data_dir;  // root of this region's files
};

class ResourceProvider {
 public:
  virtual ~ResourceProvider() = default;

  virtual std::string Namespace() const = 0;  // "Stratus.Compute"
  // Top-level resource types served (as spelled in the API), e.g. {"virtualMachines"}.
  virtual std::vector<std::string> ResourceTypes() const = 0;

  virtual Result<ApiResponse> Put(const ApiRequest& req, const ResourceId& id) = 0;
  virtual Result<ApiResponse> Delete(const ApiRequest& req, const ResourceId& id) = 0;
  // Default: the stored resource.
  virtual Result<ApiResponse> Get(const ApiRequest& req, const ResourceId& id);
  // Default: tags only.
  virtual Result<ApiResponse> Patch(const ApiRequest& req, const ResourceId& id);
  // POST {id}/{action}. Default: 404.
  virtual Result<ApiResponse> Post(const ApiRequest& req, const ResourceId& id,
                                   const std::string& action);
  // GET {id}/{sub}, e.g. instanceView. Default: 404.
  virtual Result<ApiResponse> GetSub(const ApiRequest& req, const ResourceId& id,
                                     const std::string& sub);
  // Collections a provider serves directly below /subscriptions/{sub}/providers/{Namespace}/
  // (e.g. {"locations", "platformImages"}): GETs whose first segment there is one of these go to
  // SubscriptionGet. Default: none.
  virtual std::vector<std::string> SubscriptionCollections() const { return {}; }
  // GET /subscriptions/{sub}/providers/{Namespace}/{rest...}, rest[0] one of
  // SubscriptionCollections(). Default: 404.
  virtual Result<ApiResponse> SubscriptionGet(const ApiRequest& req, const std::string& sub,
                                              const std::vector<std::string>& rest);
  // PUT, PATCH, POST or DELETE there (subscription-level resources and provider actions, e.g.
  // Stratus.RecoveryServices/regionPairings). The provider checks the body's shape itself.
  // Default: 405.
  virtual Result<ApiResponse> SubscriptionWrite(const ApiRequest& req, const std::string& sub,
                                                const std::vector<std::string>& rest);

  // The shape of the body this provider reads for `method` ("PUT", "PATCH", "POST") on `id`
  // (`action` for a POST, else ""): ApiServer checks the body against it before calling the
  // provider (json_shape.h). A provider declares every member it reads. nullptr: the request's
  // body is not read. Default: PATCH reads tags only (the default Patch); nothing else.
  virtual const Shape* BodyShape(const ResourceId& id, const std::string& method,
                                 const std::string& action) const;

  // Streamed uploads: `PUT {id}/upload/{part}` with the raw bytes as the body (an image's disk,
  // say), for top-level resources. BeginUpload runs once the request head is read and
  // authenticated, before any of the body: it validates the request and returns where the
  // bytes go and how many may come (the HTTP server enforces that limit). FinishUpload runs
  // after the body: `received` bytes were offered to `sink` (a Write failure is the sink's to
  // report). Default: 404 for both.
  struct Upload {
    std::shared_ptr<BodySink> sink;
    uint64_t max_bytes = 0;
  };
  virtual Result<Upload> BeginUpload(const ApiRequest& req, const ResourceId& id,
                                     const std::string& part);
  virtual Result<ApiResponse> FinishUpload(const ApiRequest& req, const ResourceId& id,
                                           const std::string& part, BodySink& sink,
                                           uint64_t received);

  // Child collections of a resource, e.g. {"backupPolicies", "protectedItems"} for a vault: GET
  // {id}/{child} lists them and {id}/{child}/{name} addresses one (nested ids, any depth).
  // Default: none.
  virtual std::vector<std::string> ChildTypes(const ResourceId& parent) const { return {}; }
  // Child collections the provider keeps inside the parent's record (a VNET's subnets) rather
  // than as records of their own: GET {parent}/{child} is answered by ListInlineChildren, and
  // writes to them skip the server's record-based If-Match check. Default: none.
  virtual bool ChildrenInline(const ResourceId& parent, const std::string& child_type) const {
    return false;
  }
  virtual Result<ApiResponse> ListInlineChildren(const ApiRequest& req, const ResourceId& parent,
                                                 const std::string& child_type);

  // Adds computed fields to an item of a LIST response (e.g. instanceView with
  // $expand=instanceView). Default: nothing.
  virtual void DecorateListItem(const ApiRequest& req, const store::Record& rec, Json& item) {}

  // Deletes one resource of this provider as part of deleting its resource group, inside the
  // group's operation (blocking is fine). Resources with lower DeleteOrder go first.
  virtual int DeleteOrder(const std::string& type) const { return 50; }
  virtual Status DeleteForGroup(const ResourceId& id, OperationContext& ctx) = 0;

  // Called once at start-up after the store is open: reconcile engine state (e.g. VMs that
  // libvirt reports) with the store, and register operation recovery handlers.
  virtual Status Start() { return Status::Ok(); }

 protected:
  explicit ResourceProvider(RegionContext ctx) : ctx_(std::move(ctx)) {}
  RegionContext ctx_;
};

}  // namespace stratus::api
