#include "api/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "api/resource_util.h"
#include "common/api_request.h"
#include "core/fs.h"
#include "core/scoped_temp_dir.h"
#include "store/sqlite_store.h"

namespace stratus::api {
namespace {

using ::testing::HasSubstr;

constexpr const char* kSub = "sub1";  // made in-process: not a GUID, as old regions had
constexpr const char* kSub2 = "00000000-0000-4000-8000-000000000002";
constexpr const char* kRg = "/subscriptions/sub1/resourceGroups/rg1";

// A minimal provider: widgets are plain store records; DeleteForGroup logs the ids it is given.
class FakeProvider final : public ResourceProvider {
 public:
  FakeProvider(RegionContext ctx, std::string ns, std::vector<std::string> types, int order)
      : ResourceProvider(std::move(ctx)), ns_(std::move(ns)), types_(std::move(types)),
        order_(order) {}

  std::string Namespace() const override { return ns_; }
  std::vector<std::string> ResourceTypes() const override { return types_; }

  Result<ApiResponse> Put(const ApiRequest& req, const ResourceId& id) override {
    RETURN_IF_ERROR(RejectUnknownKeys(req.body, {"location", "tags", "properties"}, ""));
    ASSIGN_OR_RETURN(std::string location, ValidateLocation(req.body, ctx_.region));
    RETURN_IF_ERROR(ValidateTags(req.body));
    RETURN_IF_ERROR(RejectUnknownKeys(req.body.value("properties", Json::object()),
                                      {"color", "passphrase"}, "properties"));
    if (id.name() == "explode") throw std::runtime_error("widget handler bug");
    // A careless provider that quotes a secret in its error (the activity log must not keep it).
    if (id.name() == "echo")
      return InvalidArgument("passphrase '" +
                             req.body["properties"].value("passphrase", std::string()) +
                             "' is weak; color " + req.body["properties"].value("color", ""));
    ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({id.Key()}));
    auto existing = ctx_.store->Get(id.Key());
    store::Record rec;
    if (existing.ok()) {
      rec = *existing;
      if (req.body.contains("tags")) rec.body["tags"] = req.body["tags"];
    } else {
      rec.key = id.Key();
      rec.type = TypeKey(id);
      rec.body = NewResourceBody(id, location, req.body.value("tags", Json::object()), req.caller,
                                 ctx_.clock->NowMs());
    }
    rec.body["properties"] = req.body.value("properties", Json::object());
    ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, ConditionFromHeaders(req)));
    return ResourceResponse(rec, existing.ok() ? 200 : 201);
  }

  Result<ApiResponse> Delete(const ApiRequest& req, const ResourceId& id) override {
    Status st = ctx_.store->Delete(id.Key());
    if (st.code() == StatusCode::kNotFound) return ApiResponse::NoContent(204);
    RETURN_IF_ERROR(st);
    return ApiResponse::NoContent(200);
  }

  int DeleteOrder(const std::string& type) const override { return order_; }

  Status DeleteForGroup(const ResourceId& id, OperationContext& ctx) override {
    {
      std::lock_guard<std::mutex> l(*log_mu_);
      log_->push_back(id.ToString());
    }
    if (slow_delete_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(slow_delete_ms_));
    return ctx_.store->Delete(id.Key());
  }

  std::mutex* log_mu_ = nullptr;
  std::vector<std::string>* log_ = nullptr;
  int slow_delete_ms_ = 0;

 private:
  std::string ns_;
  std::vector<std::string> types_;
  int order_;
};

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    auto s = store::SqliteStore::Open(dir_.Path("state.db"), store::SqliteStore::Durability::kNormal);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    ops_ = std::make_unique<OperationManager>(store_.get(), &clock_, 2);
    auto a = auth::TokenAuthenticator::Init(store_.get(), dir_.path());
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auth_ = std::move(a).value();
    token_ = *ReadFile(dir_.Path("admin.token"));
    while (!token_.empty() && token_.back() == '\n') token_.pop_back();
    RegionContext ctx{ServerStore(), ops_.get(), &clock_, "regionA", dir_.path()};
    server_ = std::make_unique<ApiServer>(ctx, auth_.get());
    auto things = std::make_unique<FakeProvider>(ctx, "Test.Things", std::vector<std::string>{"widgets"}, 50);
    // Test.Zeta's gizmos sort after Test.Things' widgets by key but go first by DeleteOrder.
    auto early = std::make_unique<FakeProvider>(ctx, "Test.Zeta", std::vector<std::string>{"gizmos"}, 10);
    things->log_mu_ = early->log_mu_ = &log_mu_;
    things->log_ = early->log_ = &delete_log_;
    // Slow deletes make each group deletion's ordering observable.
    things->slow_delete_ms_ = early->slow_delete_ms_ = 100;
    things_ = things.get();
    ASSERT_TRUE(server_->AddProvider(std::move(things)).ok());
    ASSERT_TRUE(server_->AddProvider(std::move(early)).ok());
    ASSERT_TRUE(server_->EnsureSubscription(kSub, "Test subscription").ok());
  }

  void TearDown() override {
    if (server_) server_->Stop();
    if (ops_) ops_->Shutdown();
  }

  // The store the server and providers see (a test may interpose on it).
  virtual store::Store* ServerStore() { return store_.get(); }

  ApiRequest Req(const std::string& method, const std::string& path, Json body = nullptr,
                 std::map<std::string, std::string> headers = {}) {
    return test::MakeApiRequest(method, path, std::move(body), token_, std::move(headers));
  }

  ApiResponse Call(const std::string& method, const std::string& path, Json body = nullptr,
                   std::map<std::string, std::string> headers = {}) {
    return server_->Handle(Req(method, path, std::move(body), std::move(headers)));
  }

  static std::string Code(const ApiResponse& r) { return test::ArmCode(r); }

  std::string Widget(const std::string& name, const std::string& rg = kRg) {
    return rg + std::string("/providers/Test.Things/widgets/") + name;
  }

  void MakeGroup(const std::string& path = kRg) {
    ApiResponse r = Call("PUT", path, {{"location", "regionA"}});
    ASSERT_TRUE(r.status == 201 || r.status == 200) << r.status << " " << r.body.dump();
  }

  // Operation id from an Azure-AsyncOperation header; waits for the operation to end.
  Json FinishOperation(const ApiResponse& r) {
    auto it = r.headers.find("Azure-AsyncOperation");
    EXPECT_NE(it, r.headers.end());
    if (it == r.headers.end()) return Json();
    ops_->WaitIdle();
    ApiResponse op = Call("GET", it->second);
    EXPECT_EQ(op.status, 200) << op.body.dump();
    return op.body;
  }

  Json Activity() {
    ApiResponse r = Call("GET", "/subscriptions/sub1/providers/Stratus.Insights/activityLogs");
    EXPECT_EQ(r.status, 200);
    return r.body["value"];
  }

  test::ScopedTempDir dir_{"api"};
  FakeClock clock_{1795341600000};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<OperationManager> ops_;
  std::unique_ptr<auth::TokenAuthenticator> auth_;
  std::unique_ptr<ApiServer> server_;
  FakeProvider* things_ = nullptr;
  std::string token_;
  std::mutex log_mu_;
  std::vector<std::string> delete_log_;
};

TEST_F(ApiServerTest, RejectsRequestsWithoutAValidToken) {
  for (const std::string& auth :
       std::vector<std::string>{"", "Bearer wrong", "Basic abc", "Bearer " + token_ + "x"}) {
    ApiResponse r = Call("GET", "/subscriptions/sub1", nullptr, {{"authorization", auth}});
    EXPECT_EQ(r.status, 401) << auth;
    EXPECT_EQ(Code(r), "AuthenticationFailed") << auth;
    EXPECT_TRUE(r.body["error"].contains("message"));
  }
  // Writes of anonymous callers are not executed; every failed authentication is logged, as a
  // failed authenticate action (never with the token).
  ApiResponse w = Call("PUT", kRg, {{"location", "regionA"}}, {{"authorization", ""}});
  EXPECT_EQ(w.status, 401);
  EXPECT_EQ(w.headers["WWW-Authenticate"], "Bearer realm=\"stratus\"");
  EXPECT_EQ(Call("GET", kRg).status, 404);
  Json events = Activity();
  ASSERT_EQ(events.size(), 5u) << events.dump();
  for (auto& e : events) {
    EXPECT_EQ(e["operationName"], "Stratus.Authorization/authenticate/action");
    EXPECT_EQ(e["status"], "Failed");
    EXPECT_EQ(e["httpStatus"], 401);
    EXPECT_EQ(e.dump().find(token_), std::string::npos);
  }
  EXPECT_EQ(events[0]["httpMethod"], "PUT");
  // The scheme is case-insensitive (RFC 7235); a bad token gets error="invalid_token".
  EXPECT_EQ(Call("GET", "/subscriptions/sub1", nullptr, {{"authorization", "bearer " + token_}}).status, 200);
  EXPECT_EQ(Call("GET", "/subscriptions/sub1", nullptr, {{"authorization", "BEARER " + token_}}).status, 200);
  ApiResponse bad = Call("GET", "/subscriptions/sub1", nullptr, {{"authorization", "Bearer nope"}});
  EXPECT_EQ(bad.headers["WWW-Authenticate"], "Bearer realm=\"stratus\", error=\"invalid_token\"");
}

TEST_F(ApiServerTest, CorrelationIdIsEchoedOrGenerated) {
  ApiRequest req = Req("GET", "/subscriptions/sub1");
  req.correlation_id = "corr-123";
  EXPECT_EQ(server_->Handle(req).headers["x-ms-correlation-request-id"], "corr-123");
  ApiResponse r = Call("GET", "/subscriptions/sub1");
  EXPECT_EQ(r.headers["x-ms-correlation-request-id"].size(), 36u);
}

TEST_F(ApiServerTest, SubscriptionPutGet) {
  ApiResponse got = Call("GET", "/subscriptions/sub1");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body["subscriptionId"], "sub1");
  EXPECT_EQ(got.body["displayName"], "Test subscription");
  EXPECT_EQ(got.headers["ETag"], got.body["etag"]);

  ApiResponse created = Call("PUT", "/subscriptions/" + std::string(kSub2), {{"displayName", "Second"}});
  EXPECT_EQ(created.status, 201) << created.body.dump();
  EXPECT_EQ(created.body["displayName"], "Second");
  EXPECT_FALSE(created.headers["ETag"].empty());
  EXPECT_EQ(created.headers["ETag"], created.body["etag"]);

  ApiResponse updated = Call("PUT", "/subscriptions/" + std::string(kSub2), {{"displayName", "Renamed"}});
  EXPECT_EQ(updated.status, 200);
  EXPECT_NE(updated.headers["ETag"], created.headers["ETag"]);
  EXPECT_EQ(Call("GET", "/subscriptions/" + std::string(kSub2)).body["displayName"], "Renamed");

  ApiResponse stale = Call("PUT", "/subscriptions/" + std::string(kSub2), {{"displayName", "X"}},
                           {{"if-match", created.headers["ETag"]}});
  EXPECT_EQ(stale.status, 412);
  EXPECT_EQ(Code(stale), "PreconditionFailed");
  ApiResponse exists = Call("PUT", "/subscriptions/" + std::string(kSub2), {{"displayName", "X"}},
                            {{"if-none-match", "*"}});
  EXPECT_EQ(exists.status, 412);
  EXPECT_EQ(Call("GET", "/subscriptions/" + std::string(kSub2)).body["displayName"], "Renamed");
  ApiResponse match = Call("PUT", "/subscriptions/" + std::string(kSub2), {{"displayName", "Y"}},
                           {{"if-match", updated.headers["ETag"]}});
  EXPECT_EQ(match.status, 200);

  EXPECT_EQ(Call("PUT", "/subscriptions/sub3", {{"bogus", 1}}).status, 400);
  EXPECT_EQ(Call("GET", "/subscriptions/sub3").status, 404);
  EXPECT_EQ(Code(Call("GET", "/subscriptions/sub3")), "SubscriptionNotFound");
  EXPECT_EQ(Call("PATCH", "/subscriptions/" + std::string(kSub2), Json::object()).status, 405);
  // An empty subscription can be deleted; one with groups, or the default one, cannot.
  ASSERT_EQ(Call("PUT", "/subscriptions/" + std::string(kSub2) + "/resourceGroups/g",
                 {{"location", "regionA"}}).status, 201);
  EXPECT_EQ(Code(Call("DELETE", "/subscriptions/" + std::string(kSub2))), "SubscriptionNotEmpty");
  EXPECT_EQ(Call("GET", "/subscriptions/" + std::string(kSub2)).status, 200);
  EXPECT_EQ(Code(Call("DELETE", "/subscriptions/sub1")), "CannotDeleteDefaultSubscription");
  Json gdel = FinishOperation(Call("DELETE", "/subscriptions/" + std::string(kSub2) + "/resourceGroups/g"));
  EXPECT_EQ(gdel["status"], "Succeeded");
  EXPECT_EQ(Call("DELETE", "/subscriptions/" + std::string(kSub2)).status, 200);
  EXPECT_EQ(Call("GET", "/subscriptions/" + std::string(kSub2)).status, 404);
  EXPECT_EQ(Call("DELETE", "/subscriptions/" + std::string(kSub2)).status, 204);
  // New subscriptions get GUID ids.
  ApiResponse not_guid = Call("PUT", "/subscriptions/sub4", Json::object());
  EXPECT_EQ(not_guid.status, 400);
  EXPECT_EQ(Code(not_guid), "InvalidSubscriptionId");
  EXPECT_EQ(Call("GET", "/subscriptions/sub4").status, 404);
  EXPECT_EQ(Code(Call("GET", "/subscriptions/bad_sub")), "InvalidSubscriptionId");
}

TEST_F(ApiServerTest, SubscriptionsAreListed) {
  ASSERT_EQ(Call("PUT", "/subscriptions/" + std::string(kSub2), Json::object()).status, 201);
  ApiResponse r = Call("GET", "/subscriptions");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.body["value"].size(), 2u);
  EXPECT_EQ(r.body["value"][0]["subscriptionId"], kSub2);  // keys sort "0..." before "s..."
  EXPECT_EQ(r.body["value"][1]["subscriptionId"], "sub1");
  EXPECT_EQ(Call("POST", "/subscriptions", Json::object()).status, 405);
}

TEST_F(ApiServerTest, ResourcesBelowAnUnknownSubscriptionAreNotFound) {
  ApiResponse r = Call("PUT", "/subscriptions/nosuch/resourceGroups/rg1", {{"location", "regionA"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Code(r), "SubscriptionNotFound");
}

TEST_F(ApiServerTest, ResourceGroupLifecycle) {
  ApiResponse created = Call("PUT", kRg, {{"location", "REGIONA"}, {"tags", {{"env", "test"}}}});
  ASSERT_EQ(created.status, 201) << created.body.dump();
  EXPECT_EQ(created.body["id"], kRg);
  EXPECT_EQ(created.body["name"], "rg1");
  EXPECT_EQ(created.body["type"], "Stratus.Resources/resourceGroups");
  EXPECT_EQ(created.body["location"], "regionA");  // normalised
  EXPECT_EQ(created.body["tags"]["env"], "test");
  EXPECT_EQ(created.body["properties"]["provisioningState"], "Succeeded");
  EXPECT_EQ(created.body["systemData"]["createdBy"], "admin");
  EXPECT_EQ(created.body["systemData"]["createdAt"], "2026-11-22T10:00:00.000Z");
  std::string etag1 = created.headers["ETag"];
  EXPECT_FALSE(etag1.empty());
  EXPECT_EQ(etag1, created.body["etag"]);

  ApiResponse got = Call("GET", "/subscriptions/SUB1/resourcegroups/RG1");  // case-insensitive
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.headers["ETag"], etag1);

  clock_.AdvanceMs(1000);
  ApiResponse again = Call("PUT", kRg, {{"location", "regionA"}, {"tags", {{"env", "prod"}}}});
  EXPECT_EQ(again.status, 200);
  std::string etag2 = again.headers["ETag"];
  EXPECT_NE(etag2, etag1);
  EXPECT_EQ(again.body["tags"]["env"], "prod");
  EXPECT_EQ(again.body["systemData"]["createdAt"], "2026-11-22T10:00:00.000Z");
  EXPECT_EQ(again.body["systemData"]["lastModifiedAt"], "2026-11-22T10:00:01.000Z");

  ApiResponse stale = Call("PUT", kRg, {{"location", "regionA"}}, {{"if-match", etag1}});
  EXPECT_EQ(stale.status, 412);
  EXPECT_EQ(Code(stale), "PreconditionFailed");
  ApiResponse none_match = Call("PUT", kRg, {{"location", "regionA"}}, {{"if-none-match", "*"}});
  EXPECT_EQ(none_match.status, 412);

  ApiResponse patched = Call("PATCH", kRg, {{"tags", {{"team", "a"}}}}, {{"if-match", etag2}});
  ASSERT_EQ(patched.status, 200) << patched.body.dump();
  EXPECT_EQ(patched.body["tags"], (Json{{"team", "a"}}));
  EXPECT_NE(patched.headers["ETag"], etag2);
  ApiResponse stale_patch = Call("PATCH", kRg, {{"tags", Json::object()}}, {{"if-match", etag2}});
  EXPECT_EQ(stale_patch.status, 412);
  EXPECT_EQ(Call("PATCH", kRg, {{"location", "regionA"}}).status, 400);
  EXPECT_EQ(Call("GET", kRg).body["tags"], (Json{{"team", "a"}}));

  ApiResponse stale_delete = Call("DELETE", kRg, nullptr, {{"if-match", etag1}});
  EXPECT_EQ(stale_delete.status, 412);
  EXPECT_EQ(Call("GET", kRg).status, 200);

  ASSERT_EQ(Call("PUT", Widget("w1"), Json::object()).status, 201);
  ApiResponse deleted = Call("DELETE", kRg);
  EXPECT_EQ(deleted.status, 202);
  EXPECT_FALSE(deleted.headers["Location"].empty());
  EXPECT_EQ(deleted.headers["Retry-After"], "1");
  Json op = FinishOperation(deleted);
  EXPECT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(op["operation"], "Stratus.Resources/subscriptions/resourceGroups/delete");
  EXPECT_EQ(Call("GET", kRg).status, 404);
  EXPECT_EQ(Call("GET", Widget("w1")).status, 404);
  EXPECT_EQ(Call("DELETE", kRg).status, 204);
}

TEST_F(ApiServerTest, MissingGroupIsResourceGroupNotFound) {
  ApiResponse get = Call("GET", kRg);
  EXPECT_EQ(get.status, 404);
  EXPECT_EQ(Code(get), "ResourceGroupNotFound");
  ApiResponse patch = Call("PATCH", kRg, {{"tags", Json::object()}});
  EXPECT_EQ(patch.status, 404);
  EXPECT_EQ(Code(patch), "ResourceGroupNotFound");
  ApiResponse put = Call("PUT", Widget("w1"), {{"location", "regionA"}});
  EXPECT_EQ(put.status, 404);
  EXPECT_EQ(Code(put), "ResourceGroupNotFound");
  ApiResponse list = Call("GET", std::string(kRg) + "/resources");
  EXPECT_EQ(Code(list), "ResourceGroupNotFound");
}

TEST_F(ApiServerTest, InvalidGroupNameIs400) {
  for (const std::string& name : std::vector<std::string>{"bad!name", "ends.", std::string(91, 'g')}) {
    ApiResponse r = Call("PUT", "/subscriptions/sub1/resourceGroups/" + name, {{"location", "regionA"}});
    EXPECT_EQ(r.status, 400) << name;
    EXPECT_EQ(Code(r), "InvalidResourceGroupName") << name;
  }
}

TEST_F(ApiServerTest, UnknownNamespaceAndTypeAre404) {
  MakeGroup();
  ApiResponse ns = Call("PUT", std::string(kRg) + "/providers/Test.Nothing/widgets/w1",
                        {{"location", "regionA"}});
  EXPECT_EQ(ns.status, 404);
  EXPECT_EQ(Code(ns), "NoRegisteredProviderFound");
  ApiResponse type = Call("PUT", std::string(kRg) + "/providers/Test.Things/sprockets/s1",
                          {{"location", "regionA"}});
  EXPECT_EQ(type.status, 404);
  EXPECT_EQ(Code(type), "InvalidResourceType");
  EXPECT_THAT(type.body["error"]["message"].get<std::string>(), HasSubstr("sprockets"));
  ApiResponse sub_ns = Call("GET", "/subscriptions/sub1/providers/Test.Nothing/things");
  EXPECT_EQ(Code(sub_ns), "NoRegisteredProviderFound");
  EXPECT_EQ(Call("GET", "/nothing").status, 404);
  EXPECT_EQ(Call("GET", "/subscriptions/sub1/whatever").status, 404);
  EXPECT_EQ(Call("GET", std::string(kRg) + "/providers/Test.Things/widgets/w1/a/b").status, 404);
}

TEST_F(ApiServerTest, OneNamespaceIsServedByAProviderPerType) {
  // A second provider of Test.Things owns gears; widgets stay with the first.
  RegionContext ctx{ServerStore(), ops_.get(), &clock_, "regionA", dir_.path()};
  auto gears = std::make_unique<FakeProvider>(ctx, "Test.Things", std::vector<std::string>{"gears"}, 5);
  gears->log_mu_ = &log_mu_;
  gears->log_ = &delete_log_;
  ResourceProvider* gears_raw = gears.get();
  ASSERT_TRUE(server_->AddProvider(std::move(gears)).ok());
  // A type that is served already is refused, and the table keeps its owner.
  auto twice = std::make_unique<FakeProvider>(ctx, "TEST.THINGS", std::vector<std::string>{"Gears"}, 5);
  EXPECT_FALSE(server_->AddProvider(std::move(twice)).ok());
  EXPECT_EQ(server_->FindProvider("test.things", "GEARS"), gears_raw);
  EXPECT_EQ(server_->FindProvider("Test.Things", "widgets"), things_);
  EXPECT_EQ(server_->FindProvider("Test.Things", "sprockets"), nullptr);

  MakeGroup();
  std::string gear = std::string(kRg) + "/providers/Test.Things/gears/g1";
  ASSERT_EQ(Call("PUT", gear, Json::object()).status, 201);
  ASSERT_EQ(Call("PUT", Widget("w1"), Json::object()).status, 201);
  EXPECT_EQ(Call("GET", std::string(kRg) + "/providers/Test.Things/gears").body["value"].size(), 1u);
  EXPECT_EQ(Code(Call("GET", "/subscriptions/sub1/providers/Test.Things/gadgets")), "ResourceNotFound");
  // Deleting the group reaches each resource through its own provider (gears go first).
  Json op = FinishOperation(Call("DELETE", kRg));
  EXPECT_EQ(op["status"], "Succeeded") << op.dump();
  std::lock_guard<std::mutex> l(log_mu_);
  ASSERT_EQ(delete_log_.size(), 2u);
  EXPECT_EQ(delete_log_[0], gear);
  EXPECT_EQ(delete_log_[1], Widget("w1"));
}

TEST_F(ApiServerTest, WidgetCrudThroughTheProvider) {
  MakeGroup();
  // Namespace and type match case-insensitively.
  ApiResponse created = Call("PUT", std::string(kRg) + "/providers/test.things/WIDGETS/w1",
                             {{"location", "regionA"}, {"properties", {{"color", "red"}}}});
  ASSERT_EQ(created.status, 201) << created.body.dump();
  ApiResponse got = Call("GET", Widget("w1"));
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body["properties"]["color"], "red");
  EXPECT_EQ(got.headers["ETag"], created.headers["ETag"]);

  // Default PATCH: tags only, If-Match honoured.
  ApiResponse patched = Call("PATCH", Widget("w1"), {{"tags", {{"a", "b"}}}});
  ASSERT_EQ(patched.status, 200) << patched.body.dump();
  EXPECT_EQ(patched.body["tags"]["a"], "b");
  EXPECT_EQ(Call("PATCH", Widget("w1"), {{"tags", Json::object()}},
                 {{"if-match", created.headers["ETag"]}}).status,
            412);
  ApiResponse bad_patch = Call("PATCH", Widget("w1"), {{"properties", Json::object()}});
  EXPECT_EQ(bad_patch.status, 400);
  EXPECT_EQ(bad_patch.body["error"]["target"], "properties");

  // Default POST action and sub-resource: 404.
  EXPECT_EQ(Code(Call("POST", Widget("w1") + "/polish", Json::object())), "ActionNotFound");
  EXPECT_EQ(Call("POST", Widget("nope") + "/polish", Json::object()).status, 404);
  EXPECT_EQ(Call("GET", Widget("w1") + "/details").status, 404);

  EXPECT_EQ(Call("DELETE", Widget("w1")).status, 200);
  EXPECT_EQ(Call("GET", Widget("w1")).status, 404);
  EXPECT_EQ(Call("DELETE", Widget("w1")).status, 204);
  EXPECT_EQ(Call("PATCH", Widget("w1"), {{"tags", Json::object()}}).status, 404);
}

TEST_F(ApiServerTest, PutNeedsAnObjectBodyAndAValidName) {
  MakeGroup();
  ApiResponse no_body = Call("PUT", Widget("w1"));
  EXPECT_EQ(no_body.status, 400);
  EXPECT_EQ(Code(no_body), "InvalidRequestContent");
  EXPECT_EQ(Code(Call("PUT", Widget("w1"), Json::array())), "InvalidRequestContent");
  ApiResponse bad_name = Call("PUT", Widget("-w"), {{"location", "regionA"}});
  EXPECT_EQ(bad_name.status, 400);
  EXPECT_EQ(Code(bad_name), "InvalidResourceName");
}

TEST_F(ApiServerTest, LocationMismatchIs400) {
  ApiResponse group = Call("PUT", kRg, {{"location", "regionB"}});
  EXPECT_EQ(group.status, 400);
  EXPECT_EQ(Code(group), "LocationNotAvailableForResourceType");
  EXPECT_THAT(group.body["error"]["message"].get<std::string>(), HasSubstr("regionB"));
  EXPECT_EQ(Call("PUT", kRg, {{"location", 5}}).status, 400);
  MakeGroup();
  ApiResponse widget = Call("PUT", Widget("w1"), {{"location", "elsewhere"}});
  EXPECT_EQ(widget.status, 400);
  EXPECT_EQ(Code(widget), "LocationNotAvailableForResourceType");
  // Absent location means this region.
  ApiResponse dflt = Call("PUT", Widget("w2"), Json::object());
  EXPECT_EQ(dflt.status, 201);
  EXPECT_EQ(dflt.body["location"], "regionA");
}

TEST_F(ApiServerTest, UnknownPropertyIs400NamingIt) {
  ApiResponse group = Call("PUT", kRg, {{"location", "regionA"}, {"colour", "red"}});
  EXPECT_EQ(group.status, 400);
  EXPECT_EQ(Code(group), "InvalidParameter");
  EXPECT_EQ(group.body["error"]["target"], "colour");
  EXPECT_THAT(group.body["error"]["message"].get<std::string>(), HasSubstr("'colour'"));
  MakeGroup();
  ApiResponse nested = Call("PUT", Widget("w1"), {{"properties", {{"shade", 1}}}});
  EXPECT_EQ(nested.status, 400);
  EXPECT_EQ(nested.body["error"]["target"], "properties.shade");
  EXPECT_EQ(Call("GET", Widget("w1")).status, 404);  // nothing was created
}

TEST_F(ApiServerTest, TagsAreValidated) {
  MakeGroup();
  auto put = [&](Json tags) { return Call("PUT", Widget("w1"), {{"tags", std::move(tags)}}); };
  EXPECT_EQ(put(Json::array()).status, 400);
  EXPECT_EQ(put("a=b").status, 400);
  ApiResponse number = put({{"k", 1}});
  EXPECT_EQ(number.status, 400);
  EXPECT_EQ(number.body["error"]["target"], "tags.k");
  EXPECT_EQ(put({{std::string(513, 'k'), "v"}}).status, 400);
  EXPECT_EQ(put({{"k", std::string(257, 'v')}}).status, 400);
  Json many = Json::object();
  for (int i = 0; i < 51; ++i) many["t" + std::to_string(i)] = "v";
  EXPECT_EQ(put(many).status, 400);
  EXPECT_EQ(Call("GET", Widget("w1")).status, 404);

  Json fifty = Json::object();
  for (int i = 0; i < 50; ++i) fifty["t" + std::to_string(i)] = "v";
  fifty["t0"] = std::string(256, 'v');
  ApiResponse ok = put(fifty);
  EXPECT_EQ(ok.status, 201) << ok.body.dump();
  EXPECT_EQ(put({{std::string(512, 'k'), ""}}).status, 200);
  EXPECT_EQ(Call("PATCH", kRg, {{"tags", {{"k", true}}}}).status, 400);
}

TEST_F(ApiServerTest, HandlerExceptionBecomesA500) {
  MakeGroup();
  ApiResponse r = Call("PUT", Widget("explode"), Json::object());
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(Code(r), "InternalServerError");
  // The exception's text stays in the daemon's log; the client gets the correlation id.
  std::string msg = r.body["error"]["message"];
  EXPECT_EQ(msg.find("widget handler bug"), std::string::npos) << msg;
  EXPECT_THAT(msg, HasSubstr(r.headers["x-ms-correlation-request-id"]));
  EXPECT_EQ(Call("GET", kRg).status, 200);  // still serving
}

// Follows nextLink until the end; returns the names seen.
std::vector<std::string> ListAll(ApiServerTest* t,
                                 const std::function<ApiResponse(const std::string&)>& get,
                                 std::string url, int* pages) {
  std::vector<std::string> names;
  *pages = 0;
  for (;;) {
    ApiResponse r = get(url);
    EXPECT_EQ(r.status, 200) << r.body.dump();
    if (r.status != 200) break;
    ++*pages;
    for (auto& v : r.body["value"]) names.push_back(v["name"]);
    if (!r.body.contains("nextLink")) break;
    url = r.body["nextLink"];
    if (*pages > 50) break;
  }
  return names;
}

TEST_F(ApiServerTest, ListPagingRoundTripsNextLink) {
  std::set<std::string> expected;
  for (int i = 0; i < 7; ++i) {
    std::string name = "rg-" + std::to_string(i);
    MakeGroup("/subscriptions/sub1/resourceGroups/" + name);
    expected.insert(name);
  }
  ApiResponse first = Call("GET", "/subscriptions/sub1/resourceGroups?$top=3");
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.body["value"].size(), 3u);
  ASSERT_TRUE(first.body.contains("nextLink"));
  std::string next = first.body["nextLink"];
  EXPECT_THAT(next, HasSubstr("$skipToken="));
  EXPECT_THAT(next, HasSubstr("$top=3"));
  EXPECT_EQ(next.rfind("/subscriptions/sub1/resourceGroups?", 0), 0u) << next;

  int pages = 0;
  auto names = ListAll(this, [&](const std::string& u) { return Call("GET", u); },
                       "/subscriptions/sub1/resourceGroups?$top=3", &pages);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names.size(), 7u);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), expected);

  ApiResponse all = Call("GET", "/subscriptions/sub1/resourceGroups");
  EXPECT_EQ(all.body["value"].size(), 7u);
  EXPECT_FALSE(all.body.contains("nextLink"));
  EXPECT_EQ(Call("POST", "/subscriptions/sub1/resourceGroups", Json::object()).status, 405);
}

TEST_F(ApiServerTest, ListOfProviderResourcesPagesAndFiltersByType) {
  MakeGroup();
  MakeGroup("/subscriptions/sub1/resourceGroups/other");
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Call("PUT", Widget("w" + std::to_string(i)), Json::object()).status, 201);
  ASSERT_EQ(Call("PUT", Widget("elsewhere", "/subscriptions/sub1/resourceGroups/other"),
                 Json::object()).status, 201);
  ASSERT_EQ(Call("PUT", std::string(kRg) + "/providers/Test.Zeta/gizmos/g1", Json::object()).status,
            201);
  int pages = 0;
  auto names = ListAll(this, [&](const std::string& u) { return Call("GET", u); },
                       Widget("").substr(0, Widget("").size() - 1) + "?$top=2", &pages);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names, (std::vector<std::string>{"w0", "w1", "w2", "w3", "w4"}));
  // /resources lists every provider's resources of the group.
  ApiResponse all = Call("GET", std::string(kRg) + "/resources");
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(all.body["value"].size(), 6u);
  EXPECT_EQ(Call("POST", std::string(kRg) + "/providers/Test.Things/widgets", Json::object()).status,
            405);
}

TEST_F(ApiServerTest, BadPagingParametersAre400) {
  MakeGroup();
  for (const char* top : {"0", "1001", "abc", "5x", "-1"}) {
    ApiResponse r = Call("GET", std::string("/subscriptions/sub1/resourceGroups?$top=") + top);
    EXPECT_EQ(r.status, 400) << top;
    EXPECT_EQ(r.body["error"]["target"], "$top") << top;
  }
  EXPECT_EQ(Call("GET", "/subscriptions/sub1/resourceGroups?$top=1000").status, 200);
  // A skip token of another collection is refused.
  ApiResponse r = Call("GET", "/subscriptions/sub1/resourceGroups?$skipToken=/subscriptions/sub2/x");
  EXPECT_EQ(r.status, 400);
}

TEST_F(ApiServerTest, ActivityLogRecordsWritesIncludingFailures) {
  MakeGroup();
  ASSERT_EQ(Call("PUT", Widget("w1"), Json::object()).status, 201);
  ApiResponse bad = Call("PUT", Widget("w2"), {{"location", "regionB"}});
  ASSERT_EQ(bad.status, 400);
  Call("GET", Widget("w1"));  // reads are not logged
  ApiRequest del = Req("DELETE", Widget("w1"));
  del.correlation_id = "corr-del";
  ASSERT_EQ(server_->Handle(del).status, 200);

  Json events = Activity();
  ASSERT_EQ(events.size(), 4u) << events.dump(2);
  // Newest first.
  EXPECT_EQ(events[0]["operationName"], "Test.Things/widgets/delete");
  EXPECT_EQ(events[0]["httpMethod"], "DELETE");
  EXPECT_EQ(events[0]["status"], "Succeeded");
  EXPECT_EQ(events[0]["httpStatus"], 200);
  EXPECT_EQ(events[0]["correlationId"], "corr-del");

  EXPECT_EQ(events[1]["operationName"], "Test.Things/widgets/write");
  EXPECT_EQ(events[1]["status"], "Failed");
  EXPECT_EQ(events[1]["httpStatus"], 400);
  EXPECT_EQ(events[1]["caller"], "admin");
  EXPECT_EQ(events[1]["resourceId"], Widget("w2"));
  EXPECT_EQ(events[1]["error"]["code"], "LocationNotAvailableForResourceType");

  EXPECT_EQ(events[2]["status"], "Succeeded");
  EXPECT_EQ(events[2]["httpStatus"], 201);
  EXPECT_EQ(events[3]["operationName"], "Stratus.Resources/subscriptions/resourceGroups/write");
  EXPECT_EQ(events[3]["eventTimestamp"], "2026-11-22T10:00:00.000Z");
  for (auto& e : events) EXPECT_EQ(e["caller"], "admin");

  ApiResponse limited = Call("GET", "/subscriptions/sub1/providers/Stratus.Insights/activityLogs?$top=1");
  ASSERT_EQ(limited.body["value"].size(), 1u);
  EXPECT_EQ(limited.body["value"][0]["operationName"], "Test.Things/widgets/delete");
}

TEST_F(ApiServerTest, ActivityLogRecordsFailedWritesToUnknownThings) {
  ApiResponse r = Call("PUT", "/subscriptions/sub1/resourceGroups/bad!name", Json::object());
  ASSERT_EQ(r.status, 400);
  Json events = Activity();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["status"], "Failed");
  EXPECT_EQ(events[0]["httpStatus"], 400);
  EXPECT_EQ(events[0]["error"]["code"], "InvalidResourceGroupName");
}

TEST_F(ApiServerTest, DeletingAGroupDeletesItsResourcesInDeleteOrder) {
  MakeGroup();
  MakeGroup("/subscriptions/sub1/resourceGroups/keep");
  ASSERT_EQ(Call("PUT", Widget("w1"), Json::object()).status, 201);
  ASSERT_EQ(Call("PUT", Widget("w2"), Json::object()).status, 201);
  std::string gizmo = std::string(kRg) + "/providers/Test.Zeta/gizmos/g1";
  ASSERT_EQ(Call("PUT", gizmo, Json::object()).status, 201);
  std::string kept = Widget("k1", "/subscriptions/sub1/resourceGroups/keep");
  ASSERT_EQ(Call("PUT", kept, Json::object()).status, 201);

  ApiResponse r = Call("DELETE", kRg);
  ASSERT_EQ(r.status, 202) << r.body.dump();
  Json op = FinishOperation(r);
  EXPECT_EQ(op["status"], "Succeeded") << op.dump();
  EXPECT_EQ(op["percentComplete"], 100);
  {
    std::lock_guard<std::mutex> l(log_mu_);
    // Test.Zeta (order 10) before Test.Things (order 50), against key order; only this group's.
    ASSERT_EQ(delete_log_.size(), 3u);
    EXPECT_EQ(delete_log_[0], gizmo);
    EXPECT_EQ(delete_log_[1], Widget("w1"));
    EXPECT_EQ(delete_log_[2], Widget("w2"));
  }
  EXPECT_EQ(Call("GET", kRg).status, 404);
  EXPECT_EQ(Call("GET", Widget("w1")).status, 404);
  EXPECT_EQ(Call("GET", kept).status, 200);
  EXPECT_EQ(Call("GET", "/subscriptions/sub1/resourceGroups/keep").status, 200);

  // The operation's end is in the activity log next to the accepted request.
  Json events = Activity();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0]["operationName"], "Stratus.Resources/subscriptions/resourceGroups/delete");
  EXPECT_EQ(events[0]["status"], "Succeeded");
  EXPECT_EQ(events[1]["status"], "Accepted");
  EXPECT_EQ(events[1]["httpStatus"], 202);
  EXPECT_EQ(events[1]["operationId"], events[0]["operationId"]);
}

TEST_F(ApiServerTest, GroupDeleteConflictsWithAWriteInProgress) {
  MakeGroup();
  auto lock = ops_->TryLock({ResourceId::Group("sub1", "rg1").Key()});
  ASSERT_TRUE(lock.ok());
  ApiResponse r = Call("DELETE", kRg);
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "OperationNotAllowed");
  EXPECT_EQ(Call("PUT", kRg, {{"location", "regionA"}}).status, 409);
}

TEST_F(ApiServerTest, OperationsAreReadableOnlyInTheirSubscription) {
  ASSERT_EQ(Call("PUT", "/subscriptions/" + std::string(kSub2), Json::object()).status, 201);
  MakeGroup();
  ApiResponse del = Call("DELETE", kRg);
  ASSERT_EQ(del.status, 202);
  Json op = FinishOperation(del);
  std::string id = op["name"];
  EXPECT_EQ(Call("GET", "/subscriptions/sub1/providers/Stratus.Resources/operations/" + id).status,
            200);
  ApiResponse other = Call("GET", "/subscriptions/" + std::string(kSub2) + "/providers/Stratus.Resources/operations/" + id);
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(Code(other), "OperationNotFound");
  EXPECT_EQ(Code(Call("GET", "/subscriptions/sub1/providers/Stratus.Resources/operations/nope")),
            "OperationNotFound");
  EXPECT_EQ(Call("GET", "/subscriptions/sub1/providers/Stratus.Resources/operations").status, 405);
  EXPECT_EQ(Call("POST", "/subscriptions/sub1/providers/Stratus.Resources/operations/" + id,
                 Json::object()).status,
            405);
}

// Store that holds back the write marking a group "Deleting" until the group's delete operation
// has removed the record: the interleaving a busy host produces when the operation's worker wins
// the race against the request thread.
class DeletingLastStore final : public store::Store {
 public:
  explicit DeletingLastStore(store::Store* inner) : inner_(inner) {}
  Result<store::Record> Get(const std::string& key) override { return inner_->Get(key); }
  Result<store::Record> Put(store::Record rec, const store::WriteCondition& cond) override {
    if (rec.type == "resourcegroups" &&
        rec.body["properties"].value("provisioningState", "") == "Deleting") {
      for (int i = 0; i < 400 && inner_->Get(rec.key).ok(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return inner_->Put(std::move(rec), cond);
  }
  Status Delete(const std::string& key, std::optional<std::string> if_match) override {
    return inner_->Delete(key, std::move(if_match));
  }
  Result<store::Page> List(const std::string& p, const std::string& t, const std::string& a,
                           int l) override {
    return inner_->List(p, t, a, l);
  }
  Status PutOperation(const store::OperationRecord& op) override { return inner_->PutOperation(op); }
  Result<store::OperationRecord> GetOperation(const std::string& id) override {
    return inner_->GetOperation(id);
  }
  Result<std::vector<store::OperationRecord>> ListOperationsWithStatus(const std::string& s) override {
    return inner_->ListOperationsWithStatus(s);
  }
  Status AppendActivity(const store::ActivityEvent& ev) override { return inner_->AppendActivity(ev); }
  Result<std::vector<store::ActivityEvent>> ListActivity(const std::string& s, int l,
                                                         int64_t before) override {
    return inner_->ListActivity(s, l, before);
  }
  Result<int64_t> PruneActivity(int64_t older_than_ms) override {
    return inner_->PruneActivity(older_than_ms);
  }
  Result<std::optional<std::string>> GetSetting(const std::string& n) override {
    return inner_->GetSetting(n);
  }
  Status PutSetting(const std::string& n, const std::string& v) override {
    return inner_->PutSetting(n, v);
  }

 private:
  store::Store* inner_;
};

class ApiServerRaceTest : public ApiServerTest {
 protected:
  store::Store* ServerStore() override {
    racy_ = std::make_unique<DeletingLastStore>(store_.get());
    return racy_.get();
  }
  std::unique_ptr<DeletingLastStore> racy_;
};

// Regression (ApiServer::HandleGroup, DELETE): the operation used to be started before
// the group record is re-written with provisioningState "Deleting"; when the operation finishes
// first, that write re-created the deleted group, which then stayed "Deleting" for ever. Fixed by
// taking the lock, writing "Deleting", then StartLocked.
TEST_F(ApiServerRaceTest, GroupDeleteDoesNotResurrectTheGroup) {
  MakeGroup();
  ApiResponse deleted = Call("DELETE", kRg);
  ASSERT_EQ(deleted.status, 202);
  Json op = FinishOperation(deleted);
  EXPECT_EQ(op["status"], "Succeeded");
  ApiResponse get = Call("GET", kRg);
  EXPECT_EQ(get.status, 404) << get.body.dump();
}

// Real HTTP: what the HTTP layer adds on top of Handle().
class ApiServerHttpTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiServerTest::SetUp();
    auto port = server_->Listen("127.0.0.1", 0, 4);
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = *port;
    ASSERT_GT(port_, 0);
  }

  httplib::Client Client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(5, 0);
    c.set_read_timeout(5, 0);
    c.set_write_timeout(5, 0);
    return c;
  }

  httplib::Headers Auth() { return {{"Authorization", "Bearer " + token_}}; }

  int port_ = 0;
};

TEST_F(ApiServerHttpTest, ServesAuthenticatedRequests) {
  auto c = Client();
  auto r = c.Get("/subscriptions/sub1", Auth());
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("application/json"));
  EXPECT_FALSE(r->get_header_value("ETag").empty());
  auto body = Json::parse(r->body);
  EXPECT_EQ(body["subscriptionId"], "sub1");
  auto put = c.Put(kRg, Auth(), R"({"location":"regionA"})", "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 201);
  // nextLink carries the address the client used.
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(c.Put(Widget("w" + std::to_string(i)), Auth(), "{}", "application/json")->status, 201);
  auto page = c.Get((Widget("").substr(0, Widget("").size() - 1) + "?$top=2").c_str(), Auth());
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200) << page->body;
  std::string next = Json::parse(page->body)["nextLink"];
  std::string base = "http://127.0.0.1:" + std::to_string(port_);
  ASSERT_EQ(next.rfind(base, 0), 0u) << next;
  auto second = c.Get(next.substr(base.size()).c_str(), Auth());
  ASSERT_TRUE(second);
  ASSERT_EQ(second->status, 200) << second->body;
  auto v = Json::parse(second->body)["value"];
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0]["name"], "w2");
}

TEST_F(ApiServerHttpTest, MalformedJsonIs400NamingTheBytePosition) {
  auto c = Client();
  auto r = c.Put(kRg, Auth(), R"({"location": "regionA",, })", "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 400);
  auto body = Json::parse(r->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << r->body;
  EXPECT_EQ(body["error"]["code"], "InvalidRequestContent");
  EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr("byte 24"));
  EXPECT_EQ(c.Get(kRg, Auth())->status, 404);  // nothing was created
}

TEST_F(ApiServerHttpTest, OversizedBodyIs413WithAnArmError) {
  auto c = Client();
  std::string big = "{\"tags\":{\"k\":\"" + std::string(2 << 20, 'x') + "\"}}";
  auto r = c.Put(kRg, Auth(), big, "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 413);
  auto body = Json::parse(r->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << r->body.substr(0, 200);
  EXPECT_EQ(body["error"]["code"], "RequestEntityTooLarge");
  EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr("1048576"));
  // The server still serves.
  EXPECT_EQ(Client().Get("/subscriptions/sub1", Auth())->status, 200);
}

TEST_F(ApiServerHttpTest, MissingTokenIs401WithAnArmBody) {
  auto c = Client();
  auto r = c.Get("/subscriptions/sub1");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 401);
  auto body = Json::parse(r->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << r->body;
  EXPECT_EQ(body["error"]["code"], "AuthenticationFailed");
  EXPECT_TRUE(body["error"]["message"].is_string());
  EXPECT_TRUE(body["error"]["details"].is_array());
  // An anonymous caller with a malformed body learns only that it is not authenticated.
  auto bad = c.Put(kRg, "{not json", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  EXPECT_EQ(Json::parse(bad->body)["error"]["code"], "AuthenticationFailed");
}


TEST_F(ApiServerTest, ActivityEntriesAreRedactedAndBounded) {
  MakeGroup();
  ApiResponse r = Call("PUT", Widget("echo"),
                       {{"properties", {{"passphrase", "hunter2-secret"}, {"color", std::string(5000, 'c')}}}});
  ASSERT_EQ(r.status, 400);
  // The caller sees its own request quoted back; the log does not keep the secret.
  EXPECT_THAT(r.body.dump(), HasSubstr("hunter2-secret"));
  Json events = Activity();
  ASSERT_FALSE(events.empty());
  std::string logged = events[0].dump();
  EXPECT_EQ(logged.find("hunter2-secret"), std::string::npos) << logged.substr(0, 300);
  EXPECT_THAT(logged, HasSubstr("[REDACTED]"));
  EXPECT_LT(logged.size(), 2500u);  // the 5000-character value is cut
  EXPECT_THAT(logged, HasSubstr("more bytes)"));
}

TEST_F(ApiServerTest, ActivityLogPagesNewestFirstAndIsPrunedAfterItsRetention) {
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(Call("PUT", "/subscriptions/sub1/resourceGroups/g" + std::to_string(i),
                   {{"location", "regionA"}}).status, 201);
  ApiResponse page = Call("GET", "/subscriptions/sub1/providers/Stratus.Insights/activityLogs?$top=2");
  ASSERT_EQ(page.status, 200);
  ASSERT_EQ(page.body["value"].size(), 2u);
  EXPECT_THAT(page.body["value"][0]["resourceId"].get<std::string>(), HasSubstr("/g4"));
  std::string next = page.body.value("nextLink", "");
  ASSERT_FALSE(next.empty());
  std::vector<std::string> seen;
  while (!next.empty()) {
    ApiResponse more = Call("GET", next);
    ASSERT_EQ(more.status, 200) << more.body.dump();
    for (auto& e : more.body["value"]) seen.push_back(e["resourceId"]);
    next = more.body.value("nextLink", "");
  }
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_THAT(seen[2], HasSubstr("/g0"));
  for (std::string bad : {"abc", "0", "1001", "-1"})
    EXPECT_EQ(Call("GET", "/subscriptions/sub1/providers/Stratus.Insights/activityLogs?$top=" + bad).status, 400) << bad;
  EXPECT_EQ(Call("GET", "/subscriptions/sub1/providers/Stratus.Insights/activityLogs?$skipToken=x").status, 400);
  // 91 days later the old events are gone (retention 90 days); a new one stays.
  clock_.AdvanceMs(91LL * 86400 * 1000);
  ASSERT_TRUE(server_->PruneActivityLog().ok());
  EXPECT_TRUE(Activity().empty());
  ASSERT_EQ(Call("PUT", "/subscriptions/sub1/resourceGroups/late", {{"location", "regionA"}}).status, 201);
  EXPECT_EQ(Activity().size(), 1u);
}

TEST_F(ApiServerTest, IdsKeepTheProvidersSpellingOfTypes) {
  MakeGroup();
  ApiResponse r = Call("PUT", "/subscriptions/sub1/resourceGroups/rg1/providers/TEST.things/WIDGETS/w1",
                       {{"properties", {{"color", "red"}}}});
  ASSERT_EQ(r.status, 201) << r.body.dump();
  EXPECT_EQ(r.body["id"], "/subscriptions/sub1/resourceGroups/rg1/providers/Test.Things/widgets/w1");
  EXPECT_EQ(r.body["type"], "Test.Things/widgets");
}

TEST_F(ApiServerTest, IfMatchNeedsTheResourceForEveryProvider) {
  MakeGroup();
  ApiResponse absent = Call("PUT", Widget("w1"), Json::object(), {{"if-match", "*"}});
  EXPECT_EQ(absent.status, 412);
  EXPECT_EQ(Code(absent), "PreconditionFailed");
  EXPECT_EQ(Call("GET", Widget("w1")).status, 404);
  ApiResponse made = Call("PUT", Widget("w1"), Json::object());
  ASSERT_EQ(made.status, 201);
  EXPECT_EQ(Call("PUT", Widget("w1"), Json::object(), {{"if-match", "\"stale\""}}).status, 412);
  EXPECT_EQ(Call("DELETE", Widget("w1"), nullptr, {{"if-match", "\"stale\""}}).status, 412);
  EXPECT_EQ(Call("PUT", Widget("w1"), Json::object(), {{"if-none-match", "*"}}).status, 412);
  EXPECT_EQ(Call("PUT", Widget("w1"), Json::object(), {{"if-match", made.headers["ETag"]}}).status, 200);
}

TEST_F(ApiServerTest, ABodyOfTheWrongShapeNeverReachesTheProvider) {
  MakeGroup();
  ApiResponse tags = Call("PATCH", Widget("w1"), {{"tags", "x"}});
  // The default PATCH shape: tags is an object of strings.
  EXPECT_EQ(tags.status, 400);
  EXPECT_EQ(Code(tags), "InvalidRequestContent");
  EXPECT_EQ(tags.body["error"]["target"], "tags");
}

}  // namespace
}  // namespace stratus::api
