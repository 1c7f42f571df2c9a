// The peer link's two ends on loopback: PeerClient (this region's identity, the peer's
// certificate pinned) against HttpServer with require_client_cert (which hands the handler the
// client certificate's fingerprint). A wrong pin and a client without a certificate fail in the
// handshake; nothing reaches the handler.
#include "recovery/site/peer_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include "api/http_server.h"
#include "core/scoped_temp_dir.h"

namespace stratus::recovery::site {
namespace {

class EchoHandler final : public api::HttpHandler {
 public:
  api::HeadDecision OnHead(const api::HttpRequest&) override { return {}; }
  api::HttpResponse Handle(api::HttpRequest req) override {
    ++calls;
    api::HttpResponse r;
    r.status = 200;
    r.content_type = "text/plain";
    r.body = req.method + " " + req.path + " " + req.client_cert_sha256 + " " + req.body;
    return r;
  }
  api::HttpResponse Refused(const api::HttpRequest&, int status, const std::string& code,
                            const std::string&) override {
    api::HttpResponse r;
    r.status = status;
    r.body = code;
    return r;
  }
  std::atomic<int> calls{0};
};

class PeerLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = LoadOrCreateIdentity(dir_.Path("a"), "regionA", {"127.0.0.1"});
    auto b = LoadOrCreateIdentity(dir_.Path("b"), "regionB", {"127.0.0.1"});
    auto c = LoadOrCreateIdentity(dir_.Path("c"), "stranger", {"127.0.0.1"});
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    a_ = *a;
    b_ = *b;
    c_ = *c;
    api::HttpServerOptions o;
    o.tls_cert_file = a_.cert_file;
    o.tls_key_file = a_.key_file;
    o.require_client_cert = true;
    o.worker_threads = 2;
    server_ = std::make_unique<api::HttpServer>(o, &handler_);
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = *port;
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  test::ScopedTempDir dir_{"peerlink"};
  RegionIdentity a_, b_, c_;
  EchoHandler handler_;
  std::unique_ptr<api::HttpServer> server_;
  int port_ = 0;
};

TEST_F(PeerLinkTest, EachSideKnowsTheOtherByItsCertificate) {
  PeerClient b_to_a(b_, {"127.0.0.1", port_, a_.fingerprint}, std::chrono::seconds(5));
  auto r = b_to_a.Call("POST", "/peer/v1/echo", "{\"x\":1}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /peer/v1/echo " + b_.fingerprint + " {\"x\":1}")
      << "the server saw the client's certificate";
  EXPECT_EQ(r->headers["content-type"], "text/plain");
}

TEST_F(PeerLinkTest, AServerThatIsNotThePinnedOneIsRefusedInTheHandshake) {
  PeerClient wrong(b_, {"127.0.0.1", port_, c_.fingerprint}, std::chrono::seconds(5));
  auto r = wrong.Call("GET", "/peer/v1/echo");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("not the paired one"), std::string::npos)
      << r.status().ToString();
  PeerClient nothing_pinned(b_, {"127.0.0.1", port_, ""}, std::chrono::seconds(5));
  EXPECT_FALSE(nothing_pinned.Call("GET", "/peer/v1/echo").ok());
  EXPECT_EQ(handler_.calls.load(), 0);
}

TEST_F(PeerLinkTest, AClientWithoutACertificateIsClosedInTheHandshake) {
  namespace net = boost::asio;
  net::io_context ioc;
  net::ssl::context tls(net::ssl::context::tls_client);
  tls.set_verify_mode(net::ssl::verify_none);
  boost::beast::ssl_stream<boost::beast::tcp_stream> s(ioc, tls);
  boost::system::error_code ec;
  boost::beast::get_lowest_layer(s).connect(
      net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)), ec);
  ASSERT_FALSE(ec) << ec.message();
  s.handshake(net::ssl::stream_base::client, ec);
  if (!ec) {
    // TLS 1.3 ends the client's handshake before the server checked; the server's alert
    // comes with the first read.
    std::string req = "GET /peer/v1/echo HTTP/1.1\r\nHost: x\r\n\r\n";
    net::write(s, net::buffer(req), ec);
    char buf[64];
    s.read_some(net::buffer(buf), ec);
  }
  EXPECT_TRUE(ec) << "a client without a certificate got an answer";
  EXPECT_EQ(handler_.calls.load(), 0);
}

TEST_F(PeerLinkTest, APeerThatIsGoneIsUnavailableInBoundedTime) {
  server_->Stop();
  PeerClient b_to_a(b_, {"127.0.0.1", port_, a_.fingerprint}, std::chrono::seconds(2));
  auto r = b_to_a.Call("GET", "/peer/v1/echo");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace stratus::recovery::site
