#include "recovery/site/peer_server.h"

#include <spdlog/spdlog.h>

namespace stratus::recovery::site {

namespace {

api::HttpResponse JsonResponse(int status, const Json& body) {
  api::HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = body.dump();
  return r;
}

api::HttpResponse ErrorAnswer(const Status& s) {
  return JsonResponse(s.http_status(),
                      {{"error", {{"code", s.arm_code()}, {"message", s.message()}}}});
}

StatusCode CodeForHttp(int status) {
  switch (status) {
    case 400: return StatusCode::kInvalidArgument;
    case 401: return StatusCode::kUnauthorized;
    case 403: return StatusCode::kForbidden;
    case 404: return StatusCode::kNotFound;
    case 405: return StatusCode::kMethodNotAllowed;
    case 409: return StatusCode::kConflict;
    case 412: return StatusCode::kPreconditionFailed;
    case 413: return StatusCode::kPayloadTooLarge;
    case 500: return StatusCode::kInternal;
    default: return StatusCode::kUnavailable;
  }
}

}  // namespace

Status PeerError(const std::string& who, int http_status, const std::string& body) {
  auto j = ParseJson(body);
  const Json* code = j.ok() ? JsonPath(*j, "error.code") : nullptr;
  const Json* message = j.ok() ? JsonPath(*j, "error.message") : nullptr;
  if (!code || !code->is_string() || !message || !message->is_string())
    return Unavailable(who + " answered HTTP " + std::to_string(http_status) +
                       " without an error body");
  return Status(CodeForHttp(http_status), code->get<std::string>(),
                who + ": " + message->get<std::string>());
}

PeerServer::PeerServer(RegionIdentity self, PeerLookup paired_region)
    : self_(std::move(self)), paired_region_(std::move(paired_region)) {}

PeerServer::~PeerServer() { Stop(); }

void PeerServer::Route(const std::string& method, const std::string& path, Handler handler,
                       bool paired_only) {
  Entry e;
  e.handler = std::move(handler);
  e.paired_only = paired_only;
  routes_[{method, path}] = std::move(e);
}

void PeerServer::RouteRaw(const std::string& method, const std::string& path, RawHandler handler,
                          size_t body_limit) {
  Entry e;
  e.raw = std::move(handler);
  e.body_limit = body_limit;
  routes_[{method, path}] = std::move(e);
}

Result<int> PeerServer::Start(const std::string& host, int port) {
  api::HttpServerOptions o;
  o.host = host;
  o.port = port;
  o.io_threads = 1;
  o.worker_threads = 4;
  o.max_connections = 64;
  o.max_connections_per_client = 32;
  o.max_body_bytes = 1 << 20;
  o.tls_cert_file = self_.cert_file;
  o.tls_key_file = self_.key_file;
  o.require_client_cert = true;
  server_ = std::make_unique<api::HttpServer>(o, this);
  auto bound = server_->Start();
  if (!bound.ok()) server_.reset();
  return bound;
}

void PeerServer::Stop() {
  if (server_) server_->Stop();
  server_.reset();
}

api::HeadDecision PeerServer::OnHead(const api::HttpRequest& head) {
  api::HeadDecision d;
  // Without a certificate nothing gets past the handshake; without a route or a pairing, the
  // body is not read.
  auto it = routes_.find({head.method, head.path});
  if (it == routes_.end()) {
    d.answer = ErrorAnswer(NotFound("No peer API at '" + head.path + "'.", head.path));
  } else if (it->second.paired_only && !paired_region_(head.client_cert_sha256)) {
    d.answer = ErrorAnswer(Status(StatusCode::kForbidden, "PeerNotPaired",
                                  "This region is not paired with the region of certificate " +
                                      head.client_cert_sha256.substr(0, 16) + "..."));
  } else {
    d.body_limit = it->second.body_limit;
  }
  return d;
}

api::HttpResponse PeerServer::Handle(api::HttpRequest req) {
  auto it = routes_.find({req.method, req.path});
  if (it == routes_.end())
    return ErrorAnswer(NotFound("No peer API at '" + req.path + "'.", req.path));
  PeerCaller caller{req.client_cert_sha256, ""};
  if (it->second.paired_only) {
    auto region = paired_region_(req.client_cert_sha256);
    if (!region)
      return ErrorAnswer(Status(StatusCode::kForbidden, "PeerNotPaired",
                                "This region is not paired with the caller's region."));
    caller.region = *region;
  }
  // A handler's failure is an error answer; a handler bug never takes the daemon down.
  auto answer = [&](const std::function<Result<Json>()>& run) {
    try {
      auto r = run();
      if (!r.ok()) return ErrorAnswer(r.status());
      return JsonResponse(200, *r);
    } catch (const std::exception& e) {
      spdlog::error("peer request {} {} failed: {}", req.method, req.path, e.what());
      return ErrorAnswer(Internal("The peer request failed with an unexpected error."));
    }
  };
  if (it->second.raw) return answer([&] { return it->second.raw(caller, req); });
  Json body = nullptr;
  if (!req.body.empty()) {
    auto parsed = ParseJson(req.body);
    if (!parsed.ok() || !parsed->is_object())
      return ErrorAnswer(InvalidArgument("The body is not a JSON object.", "", "InvalidRequestContent"));
    body = std::move(parsed).value();
  }
  return answer([&] { return it->second.handler(caller, body); });
}

api::HttpResponse PeerServer::Refused(const api::HttpRequest&, int status, const std::string& code,
                                      const std::string& message) {
  return JsonResponse(status, {{"error", {{"code", code}, {"message", message}}}});
}

}  // namespace stratus::recovery::site
