// HttpServer on loopback with a scripted handler: deadlines, limits, framing, admission,
// streamed bodies and TLS, as a client on the wire sees them.
#include "api/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/raw_connection.h"
#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "core/subprocess.h"

namespace stratus::api {
namespace {

using test::RawConnection;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class CollectingSink final : public BodySink {
 public:
  explicit CollectingSink(size_t fail_after = SIZE_MAX) : fail_after_(fail_after) {}
  Status Write(const char* data, size_t n) override {
    std::lock_guard<std::mutex> l(mu);
    if (bytes.size() + n > fail_after_) return Internal("sink full");
    bytes.append(data, n);
    return Status::Ok();
  }
  std::mutex mu;
  std::string bytes;

 private:
  size_t fail_after_;
};

// Answers 200 with "METHOD PATH BODY-SIZE"; paths under /deny are refused on their head; paths
// under /upload stream into a sink limited to 4 MiB; /slow sleeps 300 ms.
class TestHandler final : public HttpHandler {
 public:
  HeadDecision OnHead(const HttpRequest& head) override {
    ++heads;
    HeadDecision d;
    if (head.path.rfind("/deny", 0) == 0) {
      HttpResponse r;
      r.status = 401;
      r.body = "denied";
      d.answer = r;
    } else if (head.path.rfind("/upload", 0) == 0) {
      sink = std::make_shared<CollectingSink>(head.path == "/upload/fail" ? 1000 : SIZE_MAX);
      d.sink = sink;
      d.body_limit = 4 << 20;
    }
    return d;
  }
  HttpResponse Handle(HttpRequest req) override {
    ++handled;
    if (req.path == "/slow") std::this_thread::sleep_for(20ms);
    HttpResponse r;
    r.content_type = "text/plain";
    r.body = req.method + " " + req.path + " " + std::to_string(req.body_bytes);
    for (auto& [k, v] : req.query) r.body += " " + k + "=" + v;
    return r;
  }
  HttpResponse Refused(const HttpRequest&, int status, const std::string& code,
                       const std::string& message) override {
    ++refused;
    HttpResponse r;
    r.status = status;
    r.content_type = "application/json";
    r.body = "{\"code\":\"" + code + "\",\"message\":\"" + message + "\"}";
    return r;
  }
  std::atomic<int> heads{0}, handled{0}, refused{0};
  std::shared_ptr<CollectingSink> sink;
};

class HttpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::signal(SIGPIPE, SIG_IGN);
  }  // clients may write to a closed socket

  void Start(HttpServerOptions o = {}) {
    o.host = "127.0.0.1";
    o.port = 0;
    if (o.header_timeout == HttpServerOptions{}.header_timeout) o.header_timeout = 1500ms;
    server_ = std::make_unique<HttpServer>(o, &handler_);
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = *port;
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  httplib::Client Client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(3, 0);
    c.set_read_timeout(3, 0);
    return c;
  }
  static int StatusOf(const std::string& r) {
    return r.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(r.c_str() + 9) : 0;
  }

  TestHandler handler_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(HttpServerTest, ServesKeepAliveRequestsWithDecodedPathAndQuery) {
  Start();
  auto c = Client();
  c.set_keep_alive(true);
  for (int i = 0; i < 3; ++i) {
    auto r = c.Get("/a%20b/c?x=1&%24top=5");
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "GET /a b/c 0 $top=5 x=1");
  }
  auto put = c.Put("/p", std::string(1000, 'x'), "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->body, "PUT /p 1000");
  EXPECT_EQ(server_->open_connections(), 1);
}

TEST_F(HttpServerTest, InvalidTargetsAre400) {
  Start();
  for (std::string target : {"/bad%FF", "/nul%00x", "relative", "/q?x=%C3%28"}) {
    RawConnection c(port_);
    ASSERT_TRUE(c.Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string r = c.ReadResponse(3s);
    EXPECT_EQ(StatusOf(r), 400) << target << " " << r;
    EXPECT_TRUE(c.PeerCloses(3s));
  }
  EXPECT_EQ(handler_.handled, 0);
}

TEST_F(HttpServerTest, AmbiguousFramingIs400AndNeverHandled) {
  Start();
  for (std::string head :
       {"Content-Length: 2\r\nContent-Length: 2\r\n",
        "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", "Transfer-Encoding: gzip\r\n",
        "Content-Length: 1, 2\r\n", "Authorization: a\r\nAuthorization: b\r\n", "Host: y\r\n"}) {
    RawConnection c(port_);
    ASSERT_TRUE(c.Send("PUT /x HTTP/1.1\r\nHost: x\r\n" + head + "\r\n{}"));
    std::string r = c.ReadResponse(3s);
    EXPECT_EQ(StatusOf(r), 400) << head << r;
  }
  EXPECT_EQ(handler_.handled, 0);
}

TEST_F(HttpServerTest, BodiesOverTheLimitAre413WhateverTheirFraming) {
  HttpServerOptions o;
  o.max_body_bytes = 64 * 1024;
  Start(o);
  // Declared too large: refused on the head, before the body is sent.
  RawConnection declared(port_);
  ASSERT_TRUE(declared.Send("PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"));
  std::string r = declared.ReadResponse(3s);
  EXPECT_EQ(StatusOf(r), 413) << r;
  EXPECT_THAT(r, HasSubstr("RequestEntityTooLarge"));
  // Chunked: cut when the chunks pass the limit.
  RawConnection chunked(port_);
  ASSERT_TRUE(chunked.Send("PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  std::string chunk = "4000\r\n" + std::string(0x4000, 'c') + "\r\n";
  std::string resp;
  for (int i = 0; i < 1000 && resp.empty(); ++i) {
    resp = chunked.ReadResponse(0ms);
    if (resp.empty() && !chunked.Send(chunk, 2s)) break;
  }
  if (resp.empty()) resp = chunked.ReadResponse(3s);
  EXPECT_EQ(StatusOf(resp), 413) << resp;
  // Exactly at the limit is fine.
  auto c = Client();
  auto ok = c.Put("/x", std::string(64 * 1024, 'x'), "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(handler_.handled, 1);
}

TEST_F(HttpServerTest, AHeadAnswerMeansTheBodyIsNeverRead) {
  Start();
  RawConnection c(port_);
  ASSERT_TRUE(c.Send("PUT /deny HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  std::string r = c.ReadResponse(3s);
  EXPECT_EQ(StatusOf(r), 401) << r;
  EXPECT_THAT(r, HasSubstr("Connection: close"));
  // Whatever the client still sends, the server stops reading soon.
  std::string chunk = "10000\r\n" + std::string(0x10000, 'c') + "\r\n";
  size_t sent = 0;
  while (sent < (256u << 20) && c.Send(chunk, 2s)) sent += 0x10000;
  EXPECT_LT(sent, 64u << 20);
  EXPECT_EQ(handler_.handled, 0);
}

TEST_F(HttpServerTest, TricklingHeadsAreCutOffWithoutStarvingOthers) {
  HttpServerOptions o;
  o.worker_threads = 2;
  o.header_timeout = 1500ms;
  Start(o);
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 40; ++i) {
    slow.push_back(std::make_unique<RawConnection>(port_));
    ASSERT_TRUE(slow.back()->Send("GET /"));
  }
  // Two workers, forty trickling connections: every complete request is still served.
  for (int i = 0; i < 10; ++i) {
    for (auto& s : slow) s->Send("a", 200ms);
    auto r = Client().Get("/ok");
    ASSERT_TRUE(r) << "request " << i << ": " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200);
  }
  int closed = 0;
  for (auto& s : slow) closed += s->PeerCloses(4s) ? 1 : 0;
  EXPECT_EQ(closed, 40);
  // Their places are given back (a session ends just after its socket closes).
  for (int i = 0; i < 100 && server_->open_connections() > 0; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(server_->open_connections(), 0);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionsAreClosed) {
  HttpServerOptions o;
  o.idle_timeout = 500ms;
  Start(o);
  RawConnection c(port_);
  ASSERT_TRUE(c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(StatusOf(c.ReadResponse(3s)), 200);
  EXPECT_TRUE(c.PeerCloses(3s));
}

TEST_F(HttpServerTest, AdmissionCapsEachClientAndEvictsTheLongestIdle) {
  HttpServerOptions o;
  o.max_connections = 20;
  o.max_connections_per_client = 5;
  Start(o);
  std::vector<std::unique_ptr<RawConnection>> mine;
  for (int i = 0; i < 5; ++i) {
    mine.push_back(std::make_unique<RawConnection>(port_));
    ASSERT_TRUE(mine.back()->Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(StatusOf(mine.back()->ReadResponse(3s)), 200);  // now idle, kept alive
  }
  // A sixth from the same address gets 503 at once.
  RawConnection sixth(port_);
  std::string busy = sixth.ReadResponse(3s);
  EXPECT_EQ(StatusOf(busy), 503) << busy;
  EXPECT_THAT(busy, HasSubstr("ServerBusy"));
  EXPECT_THAT(busy, HasSubstr("Retry-After"));
  server_->Stop();
  // At the total limit, a newcomer evicts the connection idle the longest.
  HttpServerOptions t;
  t.max_connections = 16;  // the lowest the server takes
  t.max_connections_per_client = 100;
  Start(t);
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 16; ++i) {
    idle.push_back(std::make_unique<RawConnection>(port_));
    ASSERT_TRUE(idle.back()->Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(StatusOf(idle.back()->ReadResponse(3s)), 200);
  }
  RawConnection newcomer(port_);
  ASSERT_TRUE(newcomer.Send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(StatusOf(newcomer.ReadResponse(3s)), 200);
  EXPECT_TRUE(idle.front()->PeerCloses(3s)) << "the oldest idle connection was not evicted";
}

TEST_F(HttpServerTest, ManyParallelConnectionsAreAllServed) {
  HttpServerOptions o;
  o.worker_threads = 4;
  Start(o);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 200; ++i)
    threads.emplace_back([&] {
      httplib::Client c("127.0.0.1", port_);
      c.set_read_timeout(10, 0);
      auto r = c.Get("/slow");
      if (r && r->status == 200) ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
}

TEST_F(HttpServerTest, StreamedBodiesReachTheSinkWithTheRouteLimit) {
  Start();  // default body limit 1 MiB; the route allows 4 MiB
  auto c = Client();
  std::string big(3 << 20, 'u');
  for (size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
  auto r = c.Put("/upload/x", big, "application/octet-stream");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "PUT /upload/x " + std::to_string(big.size()));
  ASSERT_TRUE(handler_.sink);
  EXPECT_EQ(handler_.sink->bytes, big);
  // Over the route's limit: 413 on the head.
  RawConnection over(port_);
  ASSERT_TRUE(over.Send("PUT /upload/y HTTP/1.1\r\nHost: x\r\nContent-Length: 5242880\r\n\r\n"));
  EXPECT_EQ(StatusOf(over.ReadResponse(3s)), 413);
  // A sink that fails: the handler still answers (it sees the failure), then the server closes.
  auto failed = Client().Put("/upload/fail", std::string(100000, 'w'), "application/octet-stream");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 200);
  EXPECT_EQ(failed->get_header_value("Connection"), "close");
}

TEST_F(HttpServerTest, ExpectContinueIsHonoured) {
  Start();
  RawConnection c(port_);
  ASSERT_TRUE(
      c.Send("PUT /upload/e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
             "Expect: 100-continue\r\n\r\n"));
  std::string cont = c.ReadResponse(3s);
  EXPECT_EQ(StatusOf(cont), 100) << cont;
  ASSERT_TRUE(c.Send("hello"));
  std::string r = c.ReadResponse(3s);
  EXPECT_EQ(StatusOf(r), 200) << r;
  EXPECT_EQ(handler_.sink->bytes, "hello");
}

TEST_F(HttpServerTest, ServesTlsWithACertificateAndKey) {
  test::ScopedTempDir dir("http-tls");
  std::string cert = dir.Path("cert.pem"), key = dir.Path("key.pem");
  auto made = RunProcess({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                          key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"});
  if (!made.ok() || made->exit_code != 0) GTEST_SKIP() << "openssl cannot make a certificate";
  HttpServerOptions o;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  Start(o);
  httplib::SSLClient c("127.0.0.1", port_);
  c.set_ca_cert_path(cert.c_str());
  c.enable_server_certificate_verification(true);
  c.set_read_timeout(5, 0);
  auto r = c.Get("/secure");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /secure 0");
  // Plain HTTP on the TLS port gets nothing served.
  auto plain = Client().Get("/secure");
  EXPECT_TRUE(!plain || plain->status != 200);
  // A missing key is refused at start.
  HttpServerOptions bad;
  bad.tls_cert_file = cert;
  bad.tls_key_file = dir.Path("missing.pem");
  HttpServer broken(bad, &handler_);
  auto st = broken.Start();
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.status().http_status(), 400);
}

TEST(RequestTargetTest, DecodesPathAndQuery) {
  std::string path;
  std::map<std::string, std::string> q;
  ASSERT_TRUE(ParseRequestTarget("/a%2Fb+c?x=1+2&y=%26&z", &path, &q).ok());
  EXPECT_EQ(path, "/a/b+c");  // '+' is literal in a path
  EXPECT_EQ(q["x"], "1 2");
  EXPECT_EQ(q["y"], "&");
  EXPECT_TRUE(q.count("z"));
  EXPECT_FALSE(ParseRequestTarget("http://evil/x", &path, &q).ok());
  EXPECT_FALSE(ParseRequestTarget("/\xc3", &path, &q).ok());
}

}  // namespace
}  // namespace stratus::api
