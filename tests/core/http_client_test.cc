#include "core/http_client.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <thread>

namespace stratus {
namespace {

TEST(HttpClientTest, PostsJsonAndReturnsTheReplyWhateverItsStatus) {
  httplib::Server srv;
  std::string got_body, got_type, got_path;
  srv.Post("/hooks/a", [&](const httplib::Request& req, httplib::Response& res) {
    got_body = req.body;
    got_type = req.get_header_value("Content-Type");
    got_path = req.path + "?" + req.get_param_value("k");
    res.status = 418;
    res.set_content("teapot", "text/plain");
  });
  int port = srv.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { srv.listen_after_bind(); });
  while (!srv.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto r = HttpPostJson("http://127.0.0.1:" + std::to_string(port) + "/hooks/a?k=v",
                        Json{{"jobId", "j1"}});
  srv.stop();
  t.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 418);
  EXPECT_EQ(r->body, "teapot");
  EXPECT_EQ(Json::parse(got_body), (Json{{"jobId", "j1"}}));
  EXPECT_EQ(got_type, "application/json");
  EXPECT_EQ(got_path, "/hooks/a?v");
}

TEST(HttpClientTest, NoListenerIsUnavailableNamingTheUrl) {
  // A port nothing listens on: bind one and close it.
  int port;
  {
    httplib::Server srv;
    port = srv.bind_to_any_port("127.0.0.1");
  }
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  auto r = HttpPostJson(url, Json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(url), std::string::npos) << r.status().message();
}

TEST(HttpClientTest, UrlsAreParsedStrictly) {
  auto u = ParseHttpUrl("http://h:81");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme_host_port, "http://h:81");
  EXPECT_EQ(u->path, "/");
  u = ParseHttpUrl("https://h/a/b?c=d");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme_host_port, "https://h");
  EXPECT_EQ(u->path, "/a/b?c=d");
  for (const char* bad : {"", "h:81/x", "ftp://h/x", "http://", "http:///x"})
    EXPECT_EQ(ParseHttpUrl(bad).status().code(), StatusCode::kInvalidArgument) << bad;
}

}  // namespace
}  // namespace stratus
