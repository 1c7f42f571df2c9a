#include "core/http_client.h"

#include <httplib.h>

namespace stratus {

Result<HttpUrl> ParseHttpUrl(const std::string& url) {
  size_t scheme_end = url.find("://");
  std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    return InvalidArgument("'" + url + "' is not an http:// or https:// URL.", url);
  size_t host_begin = scheme_end + 3;
  size_t slash = url.find('/', host_begin);
  HttpUrl out;
  out.scheme_host_port = url.substr(0, slash);
  if (out.scheme_host_port.size() == host_begin)
    return InvalidArgument("'" + url + "' names no host.", url);
  if (slash != std::string::npos) out.path = url.substr(slash);
  return out;
}

Result<HttpReply> HttpPostJson(const std::string& url, const Json& body,
                               const HttpClientOptions& options) {
  ASSIGN_OR_RETURN(HttpUrl u, ParseHttpUrl(url));
  httplib::Client cli(u.scheme_host_port);
  cli.set_connection_timeout(options.connect_timeout_s, 0);
  cli.set_read_timeout(options.read_timeout_s, 0);
  cli.set_write_timeout(options.read_timeout_s, 0);
  if (!options.ca_file.empty()) cli.set_ca_cert_path(options.ca_file.c_str());
  auto r = cli.Post(u.path, DumpJson(body), "application/json");
  if (!r) return Unavailable("POST " + url + " got no reply: " + httplib::to_string(r.error()));
  return HttpReply{r->status, r->body};
}

}  // namespace stratus
