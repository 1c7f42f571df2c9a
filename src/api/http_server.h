// HttpServer: the region's HTTP/1.1 listener, built to face untrusted clients.
//
// Engine: Boost.Beast (HTTP/1.1 parsing and serialisation) over Boost.Asio,
// with OpenSSL for TLS. Why not cpp-httplib any more: it gives every connection
// a thread for the whole time the connection is open, so twenty clients sending
// one header byte every two seconds held all of its threads, and it read
// chunked bodies without a limit (docs/dependencies.md).
//
// Model. `io_threads` threads run every socket asynchronously; no socket
// operation ever blocks a thread, so a slow or idle client costs a file
// descriptor and a little memory, never a thread. A request reaches the handler
// only when it is complete, on one of `worker_threads` worker threads (which
// may block: the state store fsyncs). At most one request per connection is in
// flight (no pipelining), so the work queued for the workers is bounded by the
// connections.
//
// What the server enforces before the handler sees anything:
//  - admission: at most `max_connections` open connections and
//  `max_connections_per_client` per
//    client address; a newcomer over the total first evicts the connection idle
//    the longest (keep-alive, between requests), else gets 503 "ServerBusy" and
//    is closed. Accept backlog `listen_backlog`.
//  - time: the request head (request line and headers) must arrive within
//  `header_timeout` of
//    its first byte (a total, not per byte: trickling clients are cut off); a
//    keep-alive connection may wait `idle_timeout` for its next request; a
//    buffered body must arrive within `body_timeout`; a streamed body must make
//    progress every `body_timeout`; a response must be written within
//    `write_timeout`. A connection that misses a deadline is closed.
//  - size: head at most `max_header_bytes` (431), body at most `max_body_bytes`
//  or the limit the
//    handler sets for the route (413), for fixed-length and chunked bodies
//    alike; a declared Content-Length over the limit is refused before any of
//    the body is read.
//  - framing (RFC 9112 6.3): one Content-Length; never both Content-Length and
//    Transfer-Encoding; Transfer-Encoding only "chunked"; no repeated Host or
//    Authorization; a target that is an absolute path whose percent-decoding is
//    valid UTF-8 without NUL. Else 400 and the connection is closed (a request
//    that could be read two ways is never answered as one of them).
// The handler decides on the head (HttpHandler::OnHead) before the server waits for a body, so
// an unauthenticated client never makes it read more than came with the head (at most the
// 80 KiB read buffer). A request that arrived whole (no body, or a small body in the same read as
// its head) is decided and handled in one trip to a worker.
//
// Thread-safety: Start/Stop from one thread; the handler is called concurrently
// from workers.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace stratus::api {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 = any free port
  int io_threads = 2;
  int worker_threads = 16;
  int listen_backlog = 1024;
  int max_connections = 1024;  // lowered to what RLIMIT_NOFILE allows
  int max_connections_per_client = 256;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds write_timeout{30000};
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1 << 20;
  // PEM files; both empty = plain HTTP. TLS 1.2 or newer.
  std::string tls_cert_file;
  std::string tls_key_file;
  // With TLS: every client must present a certificate in the handshake (a connection without
  // one is closed). Any certificate is accepted there, self-signed too: the handler decides by
  // its fingerprint (HttpRequest::client_cert_sha256), as a link that pins its peers does.
  bool require_client_cert = false;
};

// Receives a streamed request body (see HttpHandler::OnHead). Called on worker
// threads, one call at a time, in order.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // Takes the next `n` bytes. A failure stops the read; the connection is
  // closed after the response, and Handle() sees the failure through the sink.
  virtual Status Write(const char* data, size_t n) = 0;
};

struct HttpRequest {
  std::string method;                          // as sent ("GET", "PUT", ...)
  std::string target;                          // raw request-target
  std::string path;                            // percent-decoded path (valid UTF-8, no NUL)
  std::map<std::string, std::string> query;    // decoded; names as sent, last one wins
  std::map<std::string, std::string> headers;  // lowercased names; repeats joined with ", "
  std::string body;                            // buffered body ("" when streamed to a sink)
  std::string peer;                            // client IP address
  bool tls = false;
  // SHA-256 of the client certificate's DER (lowercase hex); "" without one.
  std::string client_cert_sha256;
  std::shared_ptr<BodySink> sink;  // set when the body was streamed (OnHead chose one)
  uint64_t body_bytes = 0;         // bytes of body received
  std::shared_ptr<void> context;   // what OnHead put in HeadDecision::context

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type;  // "" = no Content-Type
  std::string body;
  bool close = false;  // close the connection after this response
};

// What OnHead decides for a request whose head has been read.
struct HeadDecision {
  std::optional<HttpResponse> answer;  // answer now; the body is not read; connection closed
  size_t body_limit = 0;               // 0 = HttpServerOptions::max_body_bytes
  std::shared_ptr<BodySink> sink;      // stream the body here instead of buffering it
  std::shared_ptr<void> context;       // handed to Handle() in HttpRequest::context
};

// The application behind the server. Every call comes on a worker thread,
// concurrently.
class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // The head has been read and passed the checks above. `head.body` is empty, or already holds
  // a small body that arrived with the head (OnHead must decide without looking at it).
  virtual HeadDecision OnHead(const HttpRequest& head) = 0;
  // The complete request.
  virtual HttpResponse Handle(HttpRequest req) = 0;
  // The server refuses a request itself: `status` 400, 413, 431 or 503, `code`
  // an ARM error code, `message` says why (never quoting the request). `head`
  // holds what could be read (its method is empty when the head could not be
  // parsed). Returns the response to send (an ARM error body); the connection
  // is closed after it.
  virtual HttpResponse Refused(const HttpRequest& head, int status, const std::string& code,
                               const std::string& message) = 0;
};

class HttpServer {
 public:
  // `handler` must outlive the server.
  HttpServer(HttpServerOptions options, HttpHandler* handler);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the threads. Returns the bound port. Unavailable
  // when the address cannot be bound; InvalidArgument for an unreadable
  // certificate or key.
  Result<int> Start();
  // Stops accepting, closes every connection, abandons queued work and joins
  // all threads. Requests being handled finish first. Idempotent.
  void Stop();

  // Open connections now (for tests and metrics).
  int open_connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Splits and decodes a request-target ("/a%20b?x=1&y"). InvalidArgument when it
// is not an origin-form target or its decoded path is not valid UTF-8 or holds
// a NUL.
Status ParseRequestTarget(const std::string& target, std::string* path,
                          std::map<std::string, std::string>* query);

}  // namespace stratus::api
