// HttpClient: the daemon's outgoing HTTP calls (vault alert webhooks now, peer regions next).
//
// One blocking request per call, with bounded connect and read times, so a caller that runs in
// an operation never hangs on a peer that does not answer. URLs are absolute "http://host[:port]
// [/path]" or "https://..." (verified against `ca_file` when set, else the system's CAs).
// Thread-safe: every call uses its own connection.
#pragma once

#include <map>
#include <string>

#include "core/json.h"
#include "core/status.h"

namespace stratus {

struct HttpClientOptions {
  int connect_timeout_s = 2;
  int read_timeout_s = 5;
  std::string ca_file;  // PEM bundle trusted for https:// ("" = the system's)
};

struct HttpReply {
  int status = 0;
  std::string body;
};

// The parts of an absolute http(s) URL. InvalidArgument naming `url` for anything else.
struct HttpUrl {
  std::string scheme_host_port;  // "http://host:port"
  std::string path = "/";        // with the query, as given
};
Result<HttpUrl> ParseHttpUrl(const std::string& url);

// POSTs `body` as application/json. The reply is returned whatever its status; Unavailable when
// no reply came (refused, timed out, TLS failure), naming the URL and why.
Result<HttpReply> HttpPostJson(const std::string& url, const Json& body,
                               const HttpClientOptions& options = {});

}  // namespace stratus
