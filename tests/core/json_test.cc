#include "core/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stratus {
namespace {

using ::testing::HasSubstr;

TEST(ParseJsonTest, ParsesValidDocuments) {
  auto j = ParseJson(R"({"a": 1, "b": [true, null, "x"]})");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["a"], 1);
  EXPECT_EQ((*j)["b"][2], "x");
  auto scalar = ParseJson("42");
  ASSERT_TRUE(scalar.ok());
  EXPECT_EQ(*scalar, 42);
}

TEST(ParseJsonTest, ErrorIsInvalidRequestContentNamingTheByteOffset) {
  // The stray '}' is the 10th byte.
  auto j = ParseJson(R"({"a": 1, })");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(j.status().http_status(), 400);
  EXPECT_EQ(j.status().arm_code(), "InvalidRequestContent");
  EXPECT_EQ(j.status().target(), "body");
  EXPECT_THAT(j.status().message(), HasSubstr("at byte 10"));
}

TEST(ParseJsonTest, OffsetFollowsTheError) {
  auto early = ParseJson("x");
  ASSERT_FALSE(early.ok());
  EXPECT_THAT(early.status().message(), HasSubstr("at byte 1:"));
  std::string text = std::string(100, ' ') + "{\"k\": tru}";
  auto late = ParseJson(text);
  ASSERT_FALSE(late.ok());
  EXPECT_THAT(late.status().message(), HasSubstr("at byte 110"));
}

TEST(ParseJsonTest, EmptyAndTruncatedInputFail) {
  EXPECT_FALSE(ParseJson("").ok());
  EXPECT_FALSE(ParseJson("{\"a\":").ok());
  EXPECT_FALSE(ParseJson("[1, 2").ok());
}

TEST(JsonPathTest, FindsNestedValues) {
  Json doc = {{"properties", {{"hardwareProfile", {{"vmSize", "Standard_S1"}}}, {"n", 3}}},
              {"top", "t"}};
  const Json* v = JsonPath(doc, "properties.hardwareProfile.vmSize");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, "Standard_S1");
  ASSERT_NE(JsonPath(doc, "top"), nullptr);
  EXPECT_EQ(*JsonPath(doc, "top"), "t");
  const Json* obj = JsonPath(doc, "properties.hardwareProfile");
  ASSERT_NE(obj, nullptr);
  EXPECT_TRUE(obj->is_object());
  EXPECT_EQ(*JsonPath(doc, "properties.n"), 3);
}

TEST(JsonPathTest, MissingOrNonObjectStepsGiveNull) {
  Json doc = {{"a", {{"b", 1}}}, {"s", "str"}, {"arr", {1, 2}}};
  EXPECT_EQ(JsonPath(doc, "x"), nullptr);
  EXPECT_EQ(JsonPath(doc, "a.c"), nullptr);
  EXPECT_EQ(JsonPath(doc, "a.b.c"), nullptr);  // 1 is not an object
  EXPECT_EQ(JsonPath(doc, "s.len"), nullptr);
  EXPECT_EQ(JsonPath(doc, "arr.0"), nullptr);
  EXPECT_EQ(JsonPath(Json(), "a"), nullptr);
  EXPECT_EQ(JsonPath(Json::array(), "a"), nullptr);
}

}  // namespace
}  // namespace stratus
