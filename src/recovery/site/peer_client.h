// PeerClient: one region's calls to a paired region over the peer link — HTTPS with mutual TLS,
// this region proving itself with its RegionIdentity, the peer's certificate pinned by its
// SHA-256 fingerprint (no CA, no host name check: the fingerprint is the whole trust, exchanged
// at pairing). The peer's listener (HttpServer with require_client_cert) checks ours the same
// way.
//
// Each Call opens its own connection (TLS 1.2+), sends one request and reads one response, with
// bounded connect, handshake and I/O times, so a caller in an operation never hangs on a peer
// that is gone. Errors: Unavailable naming the peer and the step (refused, timed out, a
// certificate that is not the pinned one); the response is returned whatever its status.
// Thread-safety: Call may run on several threads at once (each call has its own io_context).
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "core/status.h"
#include "recovery/site/region_identity.h"

namespace stratus::recovery::site {

struct PeerEndpoint {
  std::string host;         // an IP address or a name
  int port = 0;
  std::string fingerprint;  // the peer certificate's SHA-256 (lowercase hex)
};

struct PeerReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercased names
  std::string body;
};

class PeerClient {
 public:
  PeerClient(RegionIdentity self, PeerEndpoint peer,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // `method` `target` ("/peer/v1/...") with `body` (sent as application/json unless
  // `content_type` says otherwise; no body for an empty one).
  Result<PeerReply> Call(const std::string& method, const std::string& target,
                         const std::string& body = "",
                         const std::string& content_type = "application/json") const;

  const PeerEndpoint& peer() const { return peer_; }

 private:
  RegionIdentity self_;
  PeerEndpoint peer_;
  std::chrono::milliseconds timeout_;
};

}  // namespace stratus::recovery::site
