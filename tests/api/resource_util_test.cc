#include "api/resource_util.h"

#include <gtest/gtest.h>

namespace stratus::api {
namespace {

TEST(ErrorBodyTest, IsArmShaped) {
  Json b = ErrorBody(InvalidArgument("bad size", "properties.size", "InvalidDiskSize"));
  EXPECT_EQ(b["error"]["code"], "InvalidDiskSize");
  EXPECT_EQ(b["error"]["message"], "bad size");
  EXPECT_EQ(b["error"]["target"], "properties.size");
  EXPECT_TRUE(b["error"]["details"].is_array());
  Json no_target = ErrorBody(Internal("boom"));
  EXPECT_FALSE(no_target["error"].contains("target"));
  // A status without an ARM code falls back to its code's default.
  Json dflt = ErrorBody(Status(StatusCode::kForbidden, "", "no"));
  EXPECT_EQ(dflt["error"]["code"], "AuthorizationFailed");
  ApiResponse r = ErrorResponse(PreconditionFailed("etag"));
  EXPECT_EQ(r.status, 412);
  EXPECT_EQ(r.body["error"]["code"], "PreconditionFailed");
}

TEST(ResourceResponseTest, AddsTheEtag) {
  store::Record rec;
  rec.body = {{"name", "x"}};
  rec.etag = "\"abc\"";
  ApiResponse r = ResourceResponse(rec, 201);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body["etag"], "\"abc\"");
  EXPECT_EQ(r.body["name"], "x");
  EXPECT_EQ(r.headers["ETag"], "\"abc\"");
  EXPECT_FALSE(rec.body.contains("etag"));  // the stored body is not touched
}

TEST(AcceptedResponseTest, PointsAtTheOperation) {
  ApiRequest req;
  req.base_url = "http://127.0.0.1:8780";
  ApiResponse r = AcceptedResponse(req, "sub1", "op-1");
  EXPECT_EQ(r.status, 202);
  EXPECT_TRUE(r.body.is_null());
  std::string url = "http://127.0.0.1:8780/subscriptions/sub1/providers/Stratus.Resources/operations/op-1";
  EXPECT_EQ(r.headers["Azure-AsyncOperation"], url);
  EXPECT_EQ(r.headers["Location"], url);
  EXPECT_EQ(r.headers["Retry-After"], "1");
  EXPECT_EQ(AcceptedResponse(req, "sub1", "op-1", Json{{"a", 1}}, 201).status, 201);
  EXPECT_EQ(OperationPath("s", "o"), "/subscriptions/s/providers/Stratus.Resources/operations/o");
}

TEST(ValidateLocationTest, DefaultsAndNormalises) {
  EXPECT_EQ(*ValidateLocation(Json::object(), "regionA"), "regionA");
  EXPECT_EQ(*ValidateLocation({{"location", nullptr}}, "regionA"), "regionA");
  EXPECT_EQ(*ValidateLocation({{"location", "REGIONa"}}, "regionA"), "regionA");
  auto other = ValidateLocation({{"location", "regionB"}}, "regionA");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().arm_code(), "LocationNotAvailableForResourceType");
  EXPECT_EQ(other.status().target(), "location");
  EXPECT_FALSE(ValidateLocation({{"location", 3}}, "regionA").ok());
}

TEST(ValidateTagsTest, Limits) {
  EXPECT_TRUE(ValidateTags(Json::object()).ok());
  EXPECT_TRUE(ValidateTags({{"tags", nullptr}}).ok());
  EXPECT_TRUE(ValidateTags({{"tags", {{"a", ""}}}}).ok());
  EXPECT_FALSE(ValidateTags({{"tags", Json::array()}}).ok());
  EXPECT_FALSE(ValidateTags({{"tags", {{"a", 1}}}}).ok());
  EXPECT_FALSE(ValidateTags({{"tags", {{"", "v"}}}}).ok());
  EXPECT_TRUE(ValidateTags({{"tags", {{std::string(512, 'k'), std::string(256, 'v')}}}}).ok());
  EXPECT_FALSE(ValidateTags({{"tags", {{std::string(513, 'k'), "v"}}}}).ok());
  EXPECT_FALSE(ValidateTags({{"tags", {{"k", std::string(257, 'v')}}}}).ok());
  Json fifty = Json::object();
  for (int i = 0; i < 50; ++i) fifty[std::to_string(i)] = "v";
  EXPECT_TRUE(ValidateTags({{"tags", fifty}}).ok());
  fifty["50"] = "v";
  EXPECT_FALSE(ValidateTags({{"tags", fifty}}).ok());
}

TEST(RejectUnknownKeysTest, NamesTheKeyWithItsPath) {
  EXPECT_TRUE(RejectUnknownKeys({{"Location", 1}}, {"location"}, "").ok());  // case-insensitive
  Status top = RejectUnknownKeys({{"location", 1}, {"colour", 2}}, {"location"}, "");
  EXPECT_EQ(top.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(top.target(), "colour");
  EXPECT_NE(top.message().find("'colour'"), std::string::npos);
  Status nested = RejectUnknownKeys({{"x", 1}}, {}, "properties.osProfile");
  EXPECT_EQ(nested.target(), "properties.osProfile.x");
  EXPECT_TRUE(RejectUnknownKeys(Json::array(), {}, "").ok());
}

TEST(RequireObjectBodyTest, OnlyObjects) {
  ApiRequest req;
  EXPECT_EQ(RequireObjectBody(req).arm_code(), "InvalidRequestContent");
  req.body = Json::array();
  EXPECT_FALSE(RequireObjectBody(req).ok());
  req.body = Json::object();
  EXPECT_TRUE(RequireObjectBody(req).ok());
}

TEST(ConditionFromHeadersTest, MapsIfMatchAndIfNoneMatch) {
  ApiRequest req;
  store::WriteCondition none = ConditionFromHeaders(req);
  EXPECT_FALSE(none.if_match.has_value());
  EXPECT_FALSE(none.must_not_exist);
  req.headers["if-match"] = "\"e1\"";
  req.headers["if-none-match"] = "*";
  store::WriteCondition c = ConditionFromHeaders(req);
  EXPECT_EQ(c.if_match, "\"e1\"");
  EXPECT_TRUE(c.must_not_exist);
  req.headers["if-none-match"] = "\"e1\"";
  EXPECT_FALSE(ConditionFromHeaders(req).must_not_exist);
}

TEST(NewResourceBodyTest, Skeleton) {
  ResourceId id = ResourceId::Resource("s1", "rg", "Stratus.Storage", "disks", "d1");
  Json b = NewResourceBody(id, "regionA", Json(), "alice", 1795341600000);
  EXPECT_EQ(b["id"], id.ToString());
  EXPECT_EQ(b["name"], "d1");
  EXPECT_EQ(b["type"], "Stratus.Storage/disks");
  EXPECT_EQ(b["location"], "regionA");
  EXPECT_EQ(b["tags"], Json::object());
  EXPECT_EQ(b["properties"], Json::object());
  EXPECT_EQ(b["systemData"]["createdBy"], "alice");
  EXPECT_EQ(b["systemData"]["createdAt"], "2026-11-22T10:00:00.000Z");
  TouchSystemData(b, "bob", 1795341601000);
  EXPECT_EQ(b["systemData"]["createdBy"], "alice");
  EXPECT_EQ(b["systemData"]["lastModifiedBy"], "bob");
  EXPECT_EQ(b["systemData"]["lastModifiedAt"], "2026-11-22T10:00:01.000Z");
  EXPECT_EQ(TypeKey(id), "stratus.storage/disks");
}

TEST(GetIntTest, RangeDefaultAndType) {
  Json o = {{"n", 5}, {"s", "5"}, {"f", 1.5}};
  EXPECT_EQ(*GetInt(o, "n", 1, 10), 5);
  EXPECT_EQ(*GetInt(o, "missing", 1, 10, 7), 7);
  auto missing = GetInt(o, "missing", 1, 10);
  EXPECT_EQ(missing.status().arm_code(), "MissingParameter");
  EXPECT_EQ(missing.status().target(), "missing");
  EXPECT_FALSE(GetInt(o, "s", 1, 10).ok());
  EXPECT_FALSE(GetInt(o, "f", 1, 10).ok());
  auto range = GetInt(o, "n", 6, 10);
  ASSERT_FALSE(range.ok());
  EXPECT_NE(range.status().message().find("between 6 and 10"), std::string::npos);
  EXPECT_TRUE(GetInt(o, "n", 5, 5).ok());
}

TEST(GetStringTest, DefaultAndType) {
  Json o = {{"s", "x"}, {"n", 1}, {"z", nullptr}};
  EXPECT_EQ(*GetString(o, "s"), "x");
  EXPECT_EQ(*GetString(o, "z", std::string("d")), "d");
  EXPECT_EQ(GetString(o, "missing").status().arm_code(), "MissingParameter");
  EXPECT_FALSE(GetString(o, "n").ok());
}

}  // namespace
}  // namespace stratus::api
