// Helpers ApiServer's files share (server.cc, server_activity.cc). Not an API.
#pragma once

#include <string>
#include <vector>

namespace stratus::api {

// The non-empty segments of a URL path: "/a//b/" -> {"a", "b"}.
std::vector<std::string> PathSegments(const std::string& path);
// ARM names compare without case.
bool SameName(const std::string& a, const char* b);

}  // namespace stratus::api
