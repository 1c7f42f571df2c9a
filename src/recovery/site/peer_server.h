// PeerServer: a region's listener for its paired regions (site recovery's peer link): HTTPS with
// mutual TLS (api::HttpServer with require_client_cert), this region's RegionIdentity as the
// server certificate, routes under /peer/v1/.
//
// Who calls is known by the SHA-256 fingerprint of the client certificate, never by address: a
// route marked paired-only answers only a certificate that a pairing record pins (403
// "PeerNotPaired" to any other); the pairing route itself takes any certificate and decides by
// the token's secret. Answers are JSON; errors are {"error":{"code","message"}} with the HTTP
// status of the Status, as the API's are.
//
// Thread-safety: Route() before Start(); handlers run concurrently on the server's workers.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "api/http_server.h"
#include "core/json.h"
#include "core/status.h"
#include "recovery/site/region_identity.h"

namespace stratus::recovery::site {

struct PeerCaller {
  std::string fingerprint;  // the client certificate's SHA-256
  std::string region;       // the paired region it belongs to; "" on an unpaired-route call
};

class PeerServer final : public api::HttpHandler {
 public:
  // `paired_region(fingerprint)`: the paired region that certificate belongs to, if any.
  using PeerLookup = std::function<std::optional<std::string>(const std::string& fingerprint)>;
  using Handler = std::function<Result<Json>(const PeerCaller&, const Json& body)>;
  // For a binary body (application/octet-stream): the whole request, query included.
  using RawHandler = std::function<Result<Json>(const PeerCaller&, const api::HttpRequest&)>;

  PeerServer(RegionIdentity self, PeerLookup paired_region);
  ~PeerServer() override;

  // `method` `path` (exact, e.g. "POST" "/peer/v1/pairing"). `paired_only`: only a paired
  // region's certificate may call it.
  void Route(const std::string& method, const std::string& path, Handler handler,
             bool paired_only = true);
  // A paired-only route whose body is bytes, up to `body_limit` of them.
  void RouteRaw(const std::string& method, const std::string& path, RawHandler handler,
                size_t body_limit);

  // Listens on `host`:`port` (0 = any free port); returns the bound port.
  Result<int> Start(const std::string& host, int port);
  void Stop();

  // api::HttpHandler
  api::HeadDecision OnHead(const api::HttpRequest& head) override;
  api::HttpResponse Handle(api::HttpRequest req) override;
  api::HttpResponse Refused(const api::HttpRequest& head, int status, const std::string& code,
                            const std::string& message) override;

 private:
  struct Entry {
    Handler handler;
    RawHandler raw;
    bool paired_only = true;
    size_t body_limit = 0;  // 0 = the server's (1 MiB)
  };
  RegionIdentity self_;
  PeerLookup paired_region_;
  std::map<std::pair<std::string, std::string>, Entry> routes_;
  std::unique_ptr<api::HttpServer> server_;
};

// The Status a peer's error answer stands for (its HTTP status and ARM code, its message
// prefixed with `who`); Unavailable for an answer that is not one.
Status PeerError(const std::string& who, int http_status, const std::string& body);

}  // namespace stratus::recovery::site
