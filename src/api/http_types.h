// Transport-neutral request/response seen by providers (the HTTP server fills them in).
#pragma once

#include <map>
#include <string>

#include "core/json.h"
#include "core/status.h"

namespace stratus::api {

struct ApiRequest {
  std::string method;                          // "GET", "PUT", ...
  std::string path;                            // URL path, decoded
  std::map<std::string, std::string> query;    // keys lowercased ("$top", "api-version")
  std::map<std::string, std::string> headers;  // keys lowercased
  Json body;                                   // null when no body
  std::string caller;                          // authenticated principal name
  std::string correlation_id;                  // x-ms-correlation-request-id or generated
  std::string base_url;                        // "http(s)://host:port" of the API (configured)
  std::string client_ip;                       // peer address ("" in-process)

  std::string Query(const std::string& key, const std::string& dflt = "") const {
    auto it = query.find(key);
    return it == query.end() ? dflt : it->second;
  }
  std::string Header(const std::string& key) const {
    auto it = headers.find(key);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct ApiResponse {
  int status = 200;
  Json body;                                   // serialised as JSON unless null
  std::string text;                            // used when body is null (text/plain)
  std::map<std::string, std::string> headers;

  static ApiResponse Json200(Json body, int status = 200) {
    ApiResponse r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
  static ApiResponse NoContent(int status = 204) {
    ApiResponse r;
    r.status = status;
    return r;
  }
};

// ARM error body for a Status.
Json ErrorBody(const Status& st);
ApiResponse ErrorResponse(const Status& st);

}  // namespace stratus::api
