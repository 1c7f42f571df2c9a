#include "recovery/site/peer_client.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>

#include "core/cert_fingerprint.h"

namespace stratus::recovery::site {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

PeerClient::PeerClient(RegionIdentity self, PeerEndpoint peer, std::chrono::milliseconds timeout)
    : self_(std::move(self)), peer_(std::move(peer)), timeout_(timeout) {}

Result<PeerReply> PeerClient::Call(const std::string& method, const std::string& target,
                                   const std::string& body,
                                   const std::string& content_type) const {
  const std::string who = "peer region at " + peer_.host + ":" + std::to_string(peer_.port);
  net::io_context ioc;
  net::ssl::context tls(net::ssl::context::tls_client);
  error_code ec;
  tls.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                      net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                      net::ssl::context::no_tlsv1_1,
                  ec);
  tls.use_certificate_chain_file(self_.cert_file, ec);
  if (!ec) tls.use_private_key_file(self_.key_file, net::ssl::context::pem, ec);
  if (ec) return Internal("peer link: cannot load this region's identity: " + ec.message());
  // The whole trust: the peer's certificate is the pinned one (checked on the leaf; a
  // self-signed peer certificate fails the chain check, which is not the point).
  std::string pinned = peer_.fingerprint, seen;
  tls.set_verify_mode(net::ssl::verify_peer);
  tls.set_verify_callback([&](bool, net::ssl::verify_context& ctx) {
    X509_STORE_CTX* store = ctx.native_handle();
    if (X509_STORE_CTX_get_error_depth(store) != 0) return true;
    seen = CertificateSha256(X509_STORE_CTX_get_current_cert(store));
    return !pinned.empty() && seen == pinned;
  });

  beast::ssl_stream<beast::tcp_stream> stream(ioc, tls);
  Result<PeerReply> result = Unavailable(who + ": no answer");
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        auto use = net::redirect_error(net::use_awaitable, ec);
        tcp::resolver resolver(ioc);
        auto found = co_await resolver.async_resolve(peer_.host, std::to_string(peer_.port), use);
        if (ec) {
          result = Unavailable(who + ": cannot resolve: " + ec.message());
          co_return;
        }
        auto& lowest = beast::get_lowest_layer(stream);
        lowest.expires_after(timeout_);
        co_await lowest.async_connect(found, use);
        if (ec) {
          result = Unavailable(who + ": cannot connect: " + ec.message());
          co_return;
        }
        lowest.expires_after(timeout_);
        co_await stream.async_handshake(net::ssl::stream_base::client, use);
        if (ec) {
          result = Unavailable(who + ": TLS handshake failed" +
                               (!seen.empty() && seen != pinned
                                    ? " (its certificate " + seen.substr(0, 16) +
                                          "... is not the paired one)"
                                    : ": " + ec.message()));
          co_return;
        }
        http::request<http::string_body> req{http::string_to_verb(method), target, 11};
        req.set(http::field::host, peer_.host);
        req.set(http::field::user_agent, "stratus-peer/1");
        if (!body.empty()) {
          req.set(http::field::content_type, content_type);
          req.body() = body;
        }
        req.prepare_payload();
        lowest.expires_after(timeout_);
        co_await http::async_write(stream, req, use);
        if (ec) {
          result = Unavailable(who + ": sending failed: " + ec.message());
          co_return;
        }
        beast::flat_buffer buf;
        http::response_parser<http::string_body> parser;
        parser.body_limit(64u << 20);
        lowest.expires_after(timeout_);
        co_await http::async_read(stream, buf, parser, use);
        if (ec) {
          result = Unavailable(who + ": no complete answer: " + ec.message());
          co_return;
        }
        PeerReply reply;
        auto& res = parser.get();
        reply.status = static_cast<int>(res.result_int());
        for (auto& f : res) {
          std::string name(f.name_string());
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          reply.headers[name] = std::string(f.value());
        }
        reply.body = std::move(res.body());
        result = std::move(reply);
        lowest.expires_after(std::chrono::seconds(1));
        co_await stream.async_shutdown(use);  // best effort
      },
      net::detached);
  ioc.run();
  return result;
}

}  // namespace stratus::recovery::site
