#include "cli/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <sstream>

#include "cli/fake_stratusd.h"

namespace stratus::cli {
namespace {

using testing::FakeStratusd;

constexpr const char* kOpPath = "/subscriptions/s1/providers/Stratus.Resources/operations/op1";

class ClientTest : public ::testing::Test {
 protected:
  ApiClient::Options Options(const std::string& endpoint) {
    ApiClient::Options o;
    o.endpoint = endpoint;
    o.token = "tok";
    o.progress = &progress_;
    o.clock = &clock_;
    o.sleep = [this](int64_t ms) {
      sleeps_.push_back(ms);
      clock_.AdvanceMs(ms);
    };
    return o;
  }

  // Serves the operation at kOpPath: InProgress at 0%, 50%, 50% (unchanged), then `last`.
  void ServeOperation(const Json& last) {
    fake_.server().Get(kOpPath, [this, last](const httplib::Request&, httplib::Response& res) {
      int n = polls_++;
      Json op = {{"id", kOpPath},
                 {"name", "op1"},
                 {"operation", "Stratus.Compute/vm/start"},
                 {"status", "InProgress"},
                 {"percentComplete", n == 0 ? 0 : 50}};
      FakeStratusd::Reply(res, 200, n < 3 ? op : last);
    });
  }

  FakeStratusd fake_;
  FakeClock clock_{1'000'000};
  std::ostringstream progress_;
  std::vector<int64_t> sleeps_;
  std::atomic<int> polls_{0};
};

TEST_F(ClientTest, SendsBearerTokenApiVersionAndJson) {
  fake_.server().Put("/subscriptions/s1/resourceGroups/rg1",
                     [](const httplib::Request& req, httplib::Response& res) {
                       FakeStratusd::Reply(res, 201, Json::parse(req.body));
                     });
  ApiClient client(Options(fake_.endpoint()));
  Json body = {{"location", "regionA"}};
  auto response = client.Send("PUT", "/subscriptions/s1/resourceGroups/rg1", &body);
  ASSERT_TRUE(response.ok()) << response.error().ToString();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, body);
  auto requests = fake_.RequestsTo("PUT", "/subscriptions/s1/resourceGroups/rg1");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].authorization, "Bearer tok");
  EXPECT_EQ(requests[0].query, std::string("api-version=") + kApiVersion);
  EXPECT_EQ(Json::parse(requests[0].body), body);
}

TEST_F(ClientTest, UnauthorizedIsExit3WithTheApiError) {
  fake_.server().Get("/subscriptions/s1/resourceGroups", [](const httplib::Request&,
                                                            httplib::Response& res) {
    FakeStratusd::ReplyError(res, 401, "AuthenticationFailed", "The bearer token is not known.");
  });
  ApiClient client(Options(fake_.endpoint()));
  auto got = client.Get("/subscriptions/s1/resourceGroups");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().exit_code(), ExitCode::kApiClientError);
  EXPECT_EQ(got.error().ToString(), "ERROR: (AuthenticationFailed) The bearer token is not known.");
}

TEST_F(ClientTest, NotFoundAndConflictMapToTheirExitCodes) {
  fake_.server().Get("/nf", [](const httplib::Request&, httplib::Response& res) {
    FakeStratusd::ReplyError(res, 404, "ResourceNotFound", "no vm");
  });
  fake_.server().Delete("/cf", [](const httplib::Request&, httplib::Response& res) {
    FakeStratusd::ReplyError(res, 409, "DiskAttached", "attached to web1");
  });
  ApiClient client(Options(fake_.endpoint()));
  EXPECT_EQ(client.Get("/nf").error().exit_code(), ExitCode::kNotFound);
  EXPECT_EQ(client.Send("DELETE", "/cf").error().exit_code(), ExitCode::kConflict);
}

TEST_F(ClientTest, ConnectionRefusedNamesTheEndpoint) {
  std::string endpoint = "http://127.0.0.1:" + std::to_string(testing::ClosedPort());
  ApiClient client(Options(endpoint));
  auto got = client.Get("/subscriptions");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().exit_code(), ExitCode::kUnavailable);
  EXPECT_NE(got.error().message().find("cannot reach stratusd at " + endpoint + ": is it running?"),
            std::string::npos);
}

TEST_F(ClientTest, ListAllFollowsNextLink) {
  std::string base = fake_.endpoint();
  fake_.server().Get("/items", [base](const httplib::Request& req, httplib::Response& res) {
    if (req.has_param("$skipToken")) {
      FakeStratusd::Reply(res, 200, {{"value", {{{"name", "c"}}}}});
    } else {
      FakeStratusd::Reply(res, 200,
                          {{"value", {{{"name", "a"}}, {{"name", "b"}}}},
                           {"nextLink", base + "/items?$skipToken=2"}});
    }
  });
  ApiClient client(Options(fake_.endpoint()));
  auto items = client.ListAll("/items");
  ASSERT_TRUE(items.ok()) << items.error().ToString();
  ASSERT_EQ(items->size(), 3u);
  EXPECT_EQ((*items)[2]["name"], "c");
  auto requests = fake_.RequestsTo("GET", "/items");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_NE(requests[1].query.find("$skipToken=2"), std::string::npos);
}

TEST_F(ClientTest, WaitForOperationPollsUntilSucceeded) {
  ServeOperation({{"name", "op1"},
                  {"operation", "Stratus.Compute/vm/start"},
                  {"status", "Succeeded"},
                  {"percentComplete", 100}});
  ApiClient client(Options(fake_.endpoint()));
  // The header's value may be an absolute URL on the endpoint.
  auto op = client.WaitForOperation(fake_.endpoint() + kOpPath);
  ASSERT_TRUE(op.ok()) << op.error().ToString();
  EXPECT_EQ((*op)["status"], "Succeeded");
  EXPECT_EQ(polls_.load(), 4);
  EXPECT_EQ(sleeps_, (std::vector<int64_t>{250, 250, 250}));
  // Not a TTY: one plain line per change (the repeated 50% is not printed again).
  EXPECT_EQ(progress_.str(),
            " - Running ..  Stratus.Compute/vm/start 0% 0s\n"
            " - Running ..  Stratus.Compute/vm/start 50% 0s\n"
            " - Running ..  Stratus.Compute/vm/start 100% 0s\n");
}

TEST_F(ClientTest, WaitForOperationFailedIsExit7WithItsError) {
  ServeOperation({{"name", "op1"},
                  {"status", "Failed"},
                  {"error", {{"code", "DiskTooLarge"}, {"message", "host lacks space"}}}});
  ApiClient client(Options(fake_.endpoint()));
  auto op = client.WaitForOperation(kOpPath);
  ASSERT_FALSE(op.ok());
  EXPECT_EQ(op.error().exit_code(), ExitCode::kOperationFailed);
  EXPECT_EQ(op.error().ToString(), "ERROR: (DiskTooLarge) host lacks space");
}

TEST_F(ClientTest, WaitForOperationEndReturnsAFailedOperationsBody) {
  ServeOperation({{"name", "op1"},
                  {"status", "Failed"},
                  {"error", {{"code", "VaultCorrupt"}, {"message", "1 problem"}}},
                  {"properties", {{"problems", {{{"kind", "ChunkMissing"}}}}}}});
  ApiClient client(Options(fake_.endpoint()));
  auto op = client.WaitForOperationEnd(kOpPath);
  ASSERT_TRUE(op.ok()) << op.error().ToString();
  EXPECT_EQ((*op)["status"], "Failed");
  EXPECT_EQ((*op)["properties"]["problems"][0]["kind"], "ChunkMissing");
}

TEST_F(ClientTest, WaitForOperationKeepsPollingAQueuedOperation) {
  fake_.server().Get(kOpPath, [this](const httplib::Request&, httplib::Response& res) {
    FakeStratusd::Reply(res, 200,
                        {{"name", "op1"}, {"status", polls_++ == 0 ? "Queued" : "Succeeded"}});
  });
  ApiClient client(Options(fake_.endpoint()));
  auto op = client.WaitForOperation(kOpPath);
  ASSERT_TRUE(op.ok()) << op.error().ToString();
  EXPECT_EQ(polls_.load(), 2);
}

TEST_F(ClientTest, VerboseLogRedactsPassphrases) {
  fake_.server().Post("/unlock", [](const httplib::Request&, httplib::Response& res) {
    FakeStratusd::Reply(res, 200, Json::object());
  });
  std::ostringstream log;
  ApiClient::Options options = Options(fake_.endpoint());
  options.log = &log;
  ApiClient client(std::move(options));
  Json body = {{"properties", {{"encryption", {{"passphrase", "hunter2"}}}}}};
  ASSERT_TRUE(client.Send("POST", "/unlock", &body).ok());
  EXPECT_EQ(log.str().find("hunter2"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find(R"("passphrase":"<redacted>")"), std::string::npos) << log.str();
  // The request itself carries the passphrase.
  EXPECT_NE(fake_.RequestsTo("POST", "/unlock")[0].body.find("hunter2"), std::string::npos);
}

TEST_F(ClientTest, WaitForOperationPollErrorStops) {
  fake_.server().Get(kOpPath, [](const httplib::Request&, httplib::Response& res) {
    FakeStratusd::ReplyError(res, 401, "AuthenticationFailed", "token revoked");
  });
  ApiClient client(Options(fake_.endpoint()));
  auto op = client.WaitForOperation(kOpPath);
  ASSERT_FALSE(op.ok());
  EXPECT_EQ(op.error().exit_code(), ExitCode::kApiClientError);
  EXPECT_EQ(op.error().code(), "AuthenticationFailed");
}

TEST(ProgressReporterTest, TtyRewritesOneLineInPlace) {
  std::ostringstream out;
  ProgressReporter progress(&out, /*tty=*/true);
  Json op = {{"operation", "create"}, {"status", "InProgress"}, {"percentComplete", 10}};
  progress.Update(op, 500);
  progress.Update(op, 1500);
  progress.Finish();
  EXPECT_EQ(out.str(),
            "\r - Running ..  create 10% 0s\x1b[K"
            "\r - Running ..  create 10% 1s\x1b[K"
            "\r\x1b[K");
}

TEST(UrlTest, QueryAndPathHelpers) {
  EXPECT_EQ(WithQuery("/a", {{"$top", "5"}, {"x", "a b/c"}}), "/a?$top=5&x=a%20b%2Fc");
  EXPECT_EQ(WithQuery("/a?p=1", {{"q", "2"}}), "/a?p=1&q=2");
  EXPECT_EQ(PathOfUrl("http://127.0.0.1:8780/subscriptions/s?x=1"), "/subscriptions/s?x=1");
  EXPECT_EQ(PathOfUrl("/already/a/path"), "/already/a/path");
  EXPECT_EQ(PathOfUrl("https://host"), "/");
}

}  // namespace
}  // namespace stratus::cli
