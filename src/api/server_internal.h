// Helpers ApiServer's files share (server.cc, server_activity.cc). Not an API.
#pragma once

#include <string>
#include <vector>

#include "api/http_types.h"
#include "core/status.h"

namespace stratus::api {

// The non-empty segments of a URL path: "/a//b/" -> {"a", "b"}.
std::vector<std::string> PathSegments(const std::string& path);
// ARM names compare without case.
bool SameName(const std::string& a, const char* b);
// `$top` of a list: 100 when absent; InvalidArgument unless an integer from 1 to 1000.
Result<int> ParseTop(const ApiRequest& req);

}  // namespace stratus::api
