// Helpers of the tests that drive an ApiServer in-process: a request as the HTTP front would
// hand it over, the ARM error code of a response.
#pragma once

#include <httplib.h>

#include <map>
#include <string>

#include "api/http_types.h"
#include "core/resource_id.h"

namespace stratus::test {

// `path` may carry a query ("...?a=b"); its names are lowercased as the server does. The
// request authenticates with `token` unless `headers` carry an authorization of their own.
inline api::ApiRequest MakeApiRequest(const std::string& method, const std::string& path, Json body,
                                      const std::string& token,
                                      std::map<std::string, std::string> headers = {}) {
  api::ApiRequest r;
  r.method = method;
  auto q = path.find('?');
  r.path = path.substr(0, q);
  if (q != std::string::npos) {
    httplib::Params params;
    httplib::detail::parse_query_text(path.substr(q + 1), params);
    for (auto& [k, v] : params) r.query[ToLower(k)] = v;
  }
  r.body = std::move(body);
  r.headers = std::move(headers);
  if (!r.headers.count("authorization")) r.headers["authorization"] = "Bearer " + token;
  return r;
}

// The "error.code" of an ARM error response, "" for any other.
inline std::string ArmCode(const api::ApiResponse& r) {
  return r.body.is_object() && r.body.contains("error") ? r.body["error"].value("code", "") : "";
}

}  // namespace stratus::test
