#include "api/http_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <limits>
#include <list>
#include <mutex>
#include <thread>

#include "core/cert_fingerprint.h"
#include "core/json.h"

namespace stratus::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

Status ParseRequestTarget(const std::string& target, std::string* path,
                          std::map<std::string, std::string>* query) {
  if (target.empty() || target[0] != '/')
    return InvalidArgument("The request target must be an absolute path.", "path", "BadRequest");
  size_t q = target.find('?');
  std::string raw_path = target.substr(0, q);
  // A path is taken literally: '+' is a plus sign, only %XX is decoded.
  *path = httplib::detail::decode_url(raw_path, false);
  if (!IsValidUtf8(*path))
    return InvalidArgument("The request path is not valid UTF-8.", "path", "BadRequest");
  if (path->find('\0') != std::string::npos)
    return InvalidArgument("The request path holds a NUL character.", "path", "BadRequest");
  query->clear();
  if (q != std::string::npos) {
    httplib::Params params;
    httplib::detail::parse_query_text(target.substr(q + 1), params);
    for (auto& [k, v] : params) {
      if (!IsValidUtf8(k) || !IsValidUtf8(v))
        return InvalidArgument("The query string is not valid UTF-8.", "query", "BadRequest");
      (*query)[k] = v;
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Admission: connection counts per client and in total, and the idle
// connections that may be evicted to make room.

namespace {

class Admission;

// One admitted connection; its destructor gives the place back (unless it was
// evicted, which gives it back at once).
class Ticket {
 public:
  Ticket(Admission* a, std::string peer) : admission_(a), peer_(std::move(peer)) {}
  ~Ticket();
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  // Between requests the connection may be evicted: `evict` is then called
  // once, from the thread admitting a newcomer, and must only post work to the
  // connection's executor.
  void SetIdle(std::function<void()> evict);
  // Back from idle. False if the connection was evicted meanwhile: it must end now (its place
  // was given to another).
  bool SetBusy();

 private:
  friend class Admission;
  Admission* const admission_;
  const std::string peer_;
  // Guarded by admission_->mu_.
  bool released_ = false;
  bool idle_ = false;
  std::list<Ticket*>::iterator idle_it_;
  std::function<void()> evict_;
};

class Admission {
 public:
  Admission(int max_total, int max_per_client)
      : max_total_(max_total), max_per_client_(max_per_client) {}

  void set_max_total(int n) {
    std::lock_guard<std::mutex> l(mu_);
    max_total_ = n;
  }

  // A ticket, or nullptr when the client already has its share or the server is
  // full and no connection is idle. At the total limit the connection idle the
  // longest is evicted.
  std::unique_ptr<Ticket> Admit(const std::string& peer) {
    std::function<void()> evict;
    std::unique_ptr<Ticket> t;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = per_client_.find(peer);
      int mine = it == per_client_.end() ? 0 : it->second;
      if (mine >= max_per_client_) return nullptr;
      if (total_ >= max_total_) {
        if (idle_.empty()) return nullptr;
        Ticket* victim = idle_.front();
        idle_.pop_front();
        victim->idle_ = false;
        victim->released_ = true;
        evict = std::move(victim->evict_);
        ReleaseLocked(victim->peer_);
      }
      ++per_client_[peer];
      ++total_;
      t = std::make_unique<Ticket>(this, peer);
    }
    if (evict) evict();
    return t;
  }

  int open() const {
    std::lock_guard<std::mutex> l(mu_);
    return total_;
  }

 private:
  friend class Ticket;
  void ReleaseLocked(const std::string& peer) {
    --total_;
    auto it = per_client_.find(peer);
    if (it != per_client_.end() && --it->second <= 0) per_client_.erase(it);
  }

  mutable std::mutex mu_;  // guards everything below and the guarded fields of every Ticket
  int max_total_;
  const int max_per_client_;
  int total_ = 0;
  std::map<std::string, int> per_client_;
  std::list<Ticket*> idle_;  // oldest first
};

Ticket::~Ticket() {
  std::lock_guard<std::mutex> l(admission_->mu_);
  if (released_) return;
  if (idle_) admission_->idle_.erase(idle_it_);
  admission_->ReleaseLocked(peer_);
}

void Ticket::SetIdle(std::function<void()> evict) {
  std::lock_guard<std::mutex> l(admission_->mu_);
  if (idle_ || released_) return;
  evict_ = std::move(evict);
  idle_ = true;
  idle_it_ = admission_->idle_.insert(admission_->idle_.end(), this);
}

bool Ticket::SetBusy() {
  std::lock_guard<std::mutex> l(admission_->mu_);
  if (released_) return false;
  if (!idle_) return true;
  admission_->idle_.erase(idle_it_);
  idle_ = false;
  evict_ = nullptr;
  return true;
}

auto Ec(error_code& ec) { return net::redirect_error(net::use_awaitable, ec); }

bool IsTls(const beast::tcp_stream&) { return false; }
bool IsTls(const beast::ssl_stream<beast::tcp_stream>&) { return true; }

std::string ClientCertSha256(beast::tcp_stream&) { return ""; }
std::string ClientCertSha256(beast::ssl_stream<beast::tcp_stream>& stream) {
  X509* cert = SSL_get_peer_certificate(stream.native_handle());
  std::string hex = CertificateSha256(cert);
  X509_free(cert);
  return hex;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct HttpServer::Impl {
  Impl(HttpServerOptions o, HttpHandler* h)
      : opt(std::move(o)),
        handler(h),
        admission(opt.max_connections, opt.max_connections_per_client),
        ioc(opt.io_threads),
        workers(static_cast<size_t>(opt.worker_threads)),
        acceptor(ioc) {}

  HttpServerOptions opt;
  HttpHandler* handler;
  // Declared before the io_context: sessions still suspended when it is
  // destroyed hold tickets and TLS streams that refer to these.
  Admission admission;
  std::optional<net::ssl::context> tls;
  net::io_context ioc;
  net::thread_pool workers;
  tcp::acceptor acceptor;
  std::vector<std::thread> io;
  std::atomic<bool> stopping{false};
  bool started = false;

  // Runs `f` on a worker thread and resumes the calling coroutine on its own
  // executor.
  template <class F>
  net::awaitable<std::invoke_result_t<F>> OnWorker(F f) {
    using R = std::invoke_result_t<F>;
    co_return co_await net::co_spawn(
        workers.get_executor(),
        [f = std::move(f)]() mutable -> net::awaitable<R> { co_return f(); }, net::use_awaitable);
  }

  net::awaitable<void> AcceptLoop();
  net::awaitable<void> RefuseBusy(tcp::socket sock);
  template <class Stream>
  net::awaitable<void> Serve(Stream& stream, Ticket& ticket, std::string peer);
  // `head_only`: the answer to a HEAD request: the headers of `resp`, its length, no body.
  template <class Stream>
  net::awaitable<bool> Send(Stream& stream, HttpResponse resp, bool keep_alive,
                            bool head_only = false);
  template <class Stream>
  net::awaitable<void> Close(Stream& stream, bool drain);
  // Reads the body that follows `head` (whose parser it takes over) into `body`, at most `limit`
  // bytes, from `buf` and then the stream.
  template <class Stream>
  net::awaitable<error_code> ReadBody(Stream& stream, beast::flat_buffer& buf,
                                      http::request_parser<http::empty_body>& head, size_t limit,
                                      std::string* body);
  net::awaitable<void> Session(tcp::socket sock, std::unique_ptr<Ticket> ticket);
};

net::awaitable<void> HttpServer::Impl::AcceptLoop() {
  for (;;) {
    error_code ec;
    tcp::socket sock = co_await acceptor.async_accept(net::make_strand(ioc), Ec(ec));
    if (stopping) co_return;
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
      // Out of file descriptors (or a transient error): wait a little instead
      // of spinning.
      spdlog::warn("http: accept failed: {}", ec.message());
      net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(50));
      co_await t.async_wait(Ec(ec));
      continue;
    }
    sock.set_option(tcp::no_delay(true),
                    ec);  // small JSON answers: no Nagle delay
    std::string peer = sock.remote_endpoint(ec).address().to_string();
    if (ec) continue;
    auto ticket = admission.Admit(peer);
    auto ex = sock.get_executor();
    if (!ticket) {
      net::co_spawn(ex, RefuseBusy(std::move(sock)), net::detached);
      continue;
    }
    net::co_spawn(ex, Session(std::move(sock), std::move(ticket)), net::detached);
  }
}

net::awaitable<void> HttpServer::Impl::RefuseBusy(tcp::socket sock) {
  // Over capacity: a fixed answer, no worker involved, then close.
  static const std::string kBody =
      R"({"error":{"code":"ServerBusy","message":"The server has too many open connections; )"
      R"(retry later.","details":[]}})";
  std::string msg =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; "
      "charset=utf-8\r\nRetry-After: 1\r\nConnection: "
      "close\r\nContent-Length: " +
      std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
  beast::tcp_stream stream(std::move(sock));
  stream.expires_after(std::chrono::seconds(2));
  error_code ec;
  co_await net::async_write(stream, net::buffer(msg), Ec(ec));
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
}

net::awaitable<void> HttpServer::Impl::Session(tcp::socket sock, std::unique_ptr<Ticket> ticket) {
  error_code ec;
  std::string peer = sock.remote_endpoint(ec).address().to_string();
  try {
    if (!tls) {
      beast::tcp_stream stream(std::move(sock));
      co_await Serve(stream, *ticket, peer);
    } else {
      beast::ssl_stream<beast::tcp_stream> stream(std::move(sock), *tls);
      beast::get_lowest_layer(stream).expires_after(opt.header_timeout);
      co_await stream.async_handshake(net::ssl::stream_base::server, Ec(ec));
      if (!ec) co_await Serve(stream, *ticket, peer);
    }
  } catch (const std::exception& e) {
    // Asio reports errors through `ec`; anything thrown here is a bug in this
    // file.
    spdlog::error("http: connection from {} ended by an unexpected error: {}", peer, e.what());
  }
}

template <class Stream>
net::awaitable<bool> HttpServer::Impl::Send(Stream& stream, HttpResponse resp, bool keep_alive,
                                            bool head_only) {
  http::response<http::string_body> res;
  res.version(11);
  res.result(static_cast<unsigned>(resp.status));
  for (auto& [k, v] : resp.headers) res.set(k, v);
  if (!resp.content_type.empty()) res.set(http::field::content_type, resp.content_type);
  res.keep_alive(keep_alive && !resp.close);
  if (head_only) {
    res.content_length(resp.body.size());  // what a GET would send; no body follows
  } else {
    res.body() = std::move(resp.body);
    res.prepare_payload();
  }
  beast::get_lowest_layer(stream).expires_after(opt.write_timeout);
  error_code ec;
  co_await http::async_write(stream, res, Ec(ec));
  co_return !ec;
}

template <class Stream>
net::awaitable<error_code> HttpServer::Impl::ReadBody(Stream& stream, beast::flat_buffer& buf,
                                                      http::request_parser<http::empty_body>& head,
                                                      size_t limit, std::string* body) {
  http::request_parser<http::string_body> parser(std::move(head));
  parser.body_limit(limit);
  error_code ec;
  co_await http::async_read(stream, buf, parser, Ec(ec));
  if (!ec) *body = std::move(parser.get().body());
  co_return ec;
}

template <class Stream>
net::awaitable<void> HttpServer::Impl::Close(Stream& stream, bool drain) {
  error_code ec;
  auto& lowest = beast::get_lowest_layer(stream);
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    lowest.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (drain) {
      // Lingering close: read (and drop) what the client is still sending for a
      // moment, so that closing with unread data does not reset the connection
      // before it reads our answer.
      char sink[16 * 1024];
      size_t dropped = 0;
      lowest.expires_after(std::chrono::seconds(2));
      while (dropped < (1u << 20)) {
        size_t n = co_await lowest.async_read_some(net::buffer(sink), Ec(ec));
        if (ec) break;
        dropped += n;
      }
    }
  } else {
    lowest.expires_after(std::chrono::seconds(2));
    co_await stream.async_shutdown(Ec(ec));
  }
  lowest.close();
}

template <class Stream>
net::awaitable<void> HttpServer::Impl::Serve(Stream& stream, Ticket& ticket, std::string peer) {
  auto& lowest = beast::get_lowest_layer(stream);
  // Bounded: Beast limits neither chunk extensions nor trailers, and they pass through here.
  beast::flat_buffer buf(opt.max_header_bytes + 64 * 1024);
  bool first = true;
  // Eviction posts to this connection's strand, where it checks that the
  // session still runs.
  auto alive = std::make_shared<bool>(true);
  for (;;) {
    error_code ec;
    // 1. Wait for the first byte of the next request (idle: the connection may
    // be evicted).
    if (buf.size() == 0) {
      if (!first) {
        auto ex = lowest.get_executor();
        std::weak_ptr<bool> weak = alive;
        ticket.SetIdle([ex, weak, &lowest] {
          net::post(ex, [weak, &lowest] {
            if (weak.lock()) lowest.close();
          });
        });
      }
      lowest.expires_after(first ? opt.header_timeout : opt.idle_timeout);
      size_t n = co_await stream.async_read_some(buf.prepare(4096), Ec(ec));
      bool admitted = ticket.SetBusy();
      if (ec || !admitted) co_return;  // closed, timed out or evicted: nobody to answer
      buf.commit(n);
    }
    first = false;

    // 2. The head, within header_timeout of its first byte.
    HttpRequest req;
    req.peer = peer;
    req.tls = IsTls(stream);
    req.client_cert_sha256 = ClientCertSha256(stream);
    auto refuse = [&](int status, const char* code, std::string msg) -> net::awaitable<void> {
      HttpResponse r = co_await OnWorker([&] { return handler->Refused(req, status, code, msg); });
      r.close = true;
      if (co_await Send(stream, std::move(r), false)) co_await Close(stream, true);
    };
    http::request_parser<http::empty_body> head_parser;
    head_parser.header_limit(static_cast<std::uint32_t>(opt.max_header_bytes));
    // Checked below, against the route's limit. (Not boost::none: Beast 1.74
    // compares `length > none` as true and refuses every body.)
    head_parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    lowest.expires_after(opt.header_timeout);
    co_await http::async_read_header(stream, buf, head_parser, Ec(ec));
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::eof ||
        ec == net::error::connection_reset)
      co_return;
    if (ec == http::error::header_limit) {
      co_await refuse(
          431, "RequestHeaderFieldsTooLarge",
          "The request head is larger than " + std::to_string(opt.max_header_bytes) + " bytes.");
      co_return;
    }
    if (ec) {
      co_await refuse(400, "BadRequest", "The request could not be read: " + ec.message() + ".");
      co_return;
    }
    auto& h = head_parser.get();
    req.method = std::string(h.method_string());
    req.target = std::string(h.target());
    int content_lengths = 0, transfer_encodings = 0, hosts = 0, authorizations = 0;
    for (auto& f : h) {
      std::string name = std::string(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = std::string(f.value());
      if (name == "content-length") ++content_lengths;
      if (name == "transfer-encoding") ++transfer_encodings;
      if (name == "host") ++hosts;
      if (name == "authorization") ++authorizations;
      auto [it, fresh] = req.headers.emplace(name, value);
      if (!fresh) it->second += ", " + value;
    }
    std::string framing_error;
    if (content_lengths > 1)
      framing_error = "more than one Content-Length header";
    else if (transfer_encodings > 0 && content_lengths > 0)
      framing_error = "both Content-Length and Transfer-Encoding";
    else if (transfer_encodings > 0 && !beast::iequals(req.Header("transfer-encoding"), "chunked"))
      framing_error = "a Transfer-Encoding other than 'chunked'";
    else if (hosts > 1)
      framing_error = "more than one Host header";
    else if (authorizations > 1)
      framing_error = "more than one Authorization header";
    else if (h.version() != 11 && h.version() != 10)
      framing_error = "an unsupported HTTP version";
    if (!framing_error.empty()) {
      co_await refuse(400, "BadRequest", "The request has " + framing_error + ".");
      co_return;
    }
    Status target = ParseRequestTarget(req.target, &req.path, &req.query);
    if (!target.ok()) {
      req.path = req.target.substr(0, req.target.find('?'));  // still encoded: for the log only
      co_await refuse(400, "BadRequest", target.message());
      co_return;
    }
    bool keep_alive = h.keep_alive();

    // 3a. The whole request is already in memory (no body, or a small fixed-length body that
    // came with the head): one trip to a worker for OnHead and Handle together.
    auto declared = head_parser.content_length();
    if (head_parser.is_done() ||
        (!head_parser.chunked() && declared && *declared <= opt.max_body_bytes &&
         *declared <= buf.size())) {
      if (!head_parser.is_done()) {
        ec = co_await ReadBody(stream, buf, head_parser, opt.max_body_bytes, &req.body);
        if (ec) {  // it is all in the buffer: only a malformed body fails here
          co_await refuse(400, "BadRequest",
                          "The request body could not be read: " + ec.message() + ".");
          co_return;
        }
      }
      req.body_bytes = req.body.size();
      bool close_after = !keep_alive;
      std::string method = req.method;
      HttpResponse resp = co_await OnWorker([&] {
        HeadDecision d = handler->OnHead(req);
        if (d.answer) {
          d.answer->close = true;
          return std::move(*d.answer);
        }
        size_t limit = d.body_limit ? d.body_limit : opt.max_body_bytes;
        if (req.body.size() > limit)
          return handler->Refused(req, 413, "RequestEntityTooLarge",
                                  "The request body is larger than " + std::to_string(limit) +
                                      " bytes.");
        req.context = std::move(d.context);
        if (d.sink) {
          req.sink = d.sink;
          Status wrote = d.sink->Write(req.body.data(), req.body.size());
          req.body.clear();
          if (!wrote.ok()) close_after = true;
        }
        return handler->Handle(std::move(req));
      });
      if (resp.close) close_after = true;
      if (!co_await Send(stream, std::move(resp), !close_after, method == "HEAD")) co_return;
      if (close_after) {
        co_await Close(stream, false);
        co_return;
      }
      continue;
    }

    // 3b. The handler decides before the body is read (authentication, route limits).
    HeadDecision decision = co_await OnWorker([&] { return handler->OnHead(req); });
    if (decision.answer) {
      decision.answer->close = true;
      if (co_await Send(stream, std::move(*decision.answer), false))
        co_await Close(stream, !head_parser.is_done());
      co_return;
    }
    req.context = std::move(decision.context);
    size_t limit = decision.body_limit ? decision.body_limit : opt.max_body_bytes;
    auto too_large = [&]() -> net::awaitable<void> {
      co_await refuse(413, "RequestEntityTooLarge",
                      "The request body is larger than " + std::to_string(limit) + " bytes.");
    };
    if (head_parser.content_length() && *head_parser.content_length() > limit) {
      co_await too_large();
      co_return;
    }
    if (h.version() == 11 && beast::iequals(req.Header("expect"), "100-continue") &&
        !head_parser.is_done()) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      lowest.expires_after(opt.write_timeout);
      co_await http::async_write(stream, cont, Ec(ec));
      if (ec) co_return;
    }

    // 4. The body.
    bool close_after = !keep_alive;
    bool body_unread = false;  // the rest of a body is still coming: drain before closing
    if (!decision.sink) {
      lowest.expires_after(opt.body_timeout);
      ec = co_await ReadBody(stream, buf, head_parser, limit, &req.body);
      if (ec == http::error::body_limit) {
        co_await too_large();
        co_return;
      }
      if (ec == http::error::buffer_overflow) {
        co_await refuse(400, "BadRequest", "The request has a chunk extension or trailer that is too long.");
        co_return;
      }
      if (ec == beast::error::timeout || ec == http::error::end_of_stream ||
          ec == net::error::eof || ec == net::error::connection_reset ||
          ec == net::error::operation_aborted)
        co_return;
      if (ec) {
        co_await refuse(400, "BadRequest",
                        "The request body could not be read: " + ec.message() + ".");
        co_return;
      }
      req.body_bytes = req.body.size();
    } else {
      http::request_parser<http::buffer_body> body_parser(std::move(head_parser));
      body_parser.body_limit(limit);
      std::vector<char> chunk(64 * 1024);
      req.sink = decision.sink;
      while (!body_parser.is_done()) {
        body_parser.get().body().data = chunk.data();
        body_parser.get().body().size = chunk.size();
        lowest.expires_after(opt.body_timeout);
        co_await http::async_read(stream, buf, body_parser, Ec(ec));
        if (ec == http::error::need_buffer) ec = {};
        if (ec == http::error::body_limit) {
          co_await too_large();
          co_return;
        }
        if (ec)
          co_return;  // the handler's sink is dropped with the request: nothing
                      // was kept
        size_t got = chunk.size() - body_parser.get().body().size;
        if (got == 0) continue;
        req.body_bytes += got;
        Status wrote = co_await OnWorker([&] { return decision.sink->Write(chunk.data(), got); });
        if (!wrote.ok()) {
          close_after = true;  // the rest of the body is not read
          body_unread = !body_parser.is_done();
          break;
        }
      }
    }

    // 5. Handle and answer.
    std::string method = req.method;
    HttpResponse resp = co_await OnWorker([&] { return handler->Handle(std::move(req)); });
    if (resp.close) close_after = true;
    if (!co_await Send(stream, std::move(resp), !close_after, method == "HEAD")) co_return;
    if (close_after) {
      co_await Close(stream, body_unread);
      co_return;
    }
  }
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler* handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() { Stop(); }

Result<int> HttpServer::Start() {
  if (!impl_) return Internal("the HTTP server was stopped; make a new one");
  Impl& s = *impl_;
  if (s.started) return Internal("the HTTP server is already started");
  // Every connection is a descriptor: raise the soft limit to the hard one, and
  // keep the connection limit well inside it (disks, sockets and the store need
  // descriptors too).
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &rl);
      ::getrlimit(RLIMIT_NOFILE, &rl);
    }
    long usable = static_cast<long>(rl.rlim_cur) - 256;
    if (usable < s.opt.max_connections) {
      spdlog::warn("http: RLIMIT_NOFILE {} allows only {} connections (asked for {})", rl.rlim_cur,
                   std::max(16L, usable), s.opt.max_connections);
      s.opt.max_connections = static_cast<int>(std::max(16L, usable));
      s.admission.set_max_total(s.opt.max_connections);
    }
  }
  if (!s.opt.tls_cert_file.empty() || !s.opt.tls_key_file.empty()) {
    if (s.opt.tls_cert_file.empty() || s.opt.tls_key_file.empty())
      return InvalidArgument("TLS needs both a certificate and a key file.", "--tls-cert");
    s.tls.emplace(net::ssl::context::tls_server);
    error_code ec;
    s.tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                           net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                           net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use,
                       ec);
    s.tls->use_certificate_chain_file(s.opt.tls_cert_file, ec);
    if (ec)
      return InvalidArgument(
          "Cannot load the TLS certificate '" + s.opt.tls_cert_file + "': " + ec.message() + ".",
          "--tls-cert");
    s.tls->use_private_key_file(s.opt.tls_key_file, net::ssl::context::pem, ec);
    if (ec)
      return InvalidArgument(
          "Cannot load the TLS key '" + s.opt.tls_key_file + "': " + ec.message() + ".",
          "--tls-key");
    if (s.opt.require_client_cert) {
      s.tls->set_verify_mode(net::ssl::verify_peer | net::ssl::verify_fail_if_no_peer_cert);
      // Any certificate passes the handshake (peers are self-signed); the handler pins.
      s.tls->set_verify_callback([](bool, net::ssl::verify_context&) { return true; });
    }
  } else if (s.opt.require_client_cert) {
    return InvalidArgument("Client certificates need TLS (a certificate and a key).", "--tls-cert");
  }
  error_code ec;
  auto addr = net::ip::make_address(s.opt.host, ec);
  if (ec) return InvalidArgument("'" + s.opt.host + "' is not an IP address.", "--listen");
  tcp::endpoint ep(addr, static_cast<unsigned short>(s.opt.port));
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(s.opt.listen_backlog, ec);
  if (ec)
    return Unavailable("cannot listen on " + s.opt.host + ":" + std::to_string(s.opt.port) + ": " +
                       ec.message());
  int port = s.acceptor.local_endpoint().port();
  net::co_spawn(s.ioc, s.AcceptLoop(), net::detached);
  for (int i = 0; i < s.opt.io_threads; ++i) s.io.emplace_back([&s] { s.ioc.run(); });
  s.started = true;
  return port;
}

void HttpServer::Stop() {
  if (!impl_ || !impl_->started) return;
  Impl& s = *impl_;
  s.started = false;
  s.stopping = true;
  s.ioc.stop();
  for (auto& t : s.io) t.join();
  s.io.clear();
  s.workers.stop();
  s.workers.join();  // requests being handled finish; queued ones are dropped
  error_code ec;
  s.acceptor.close(ec);  // no I/O thread runs any more: nothing else touches it
  // Destroying the io_context destroys every suspended session, closing its socket now rather
  // than when the server object goes.
  impl_.reset();
}

int HttpServer::open_connections() const { return impl_ ? impl_->admission.open() : 0; }

}  // namespace stratus::api
