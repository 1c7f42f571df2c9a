#include "core/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stratus {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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
  EXPECT_THAT(early.status().message(), HasSubstr("at byte 1 (line 1, column 1)"));
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

TEST(ParseJsonTest, PositionCountsLinesAndColumns) {
  auto j = ParseJson("{\n  \"a\": 1,\n  x}");
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(j.status().message(), HasSubstr("line 3, column 3"));
}

TEST(ParseJsonTest, ErrorsNeverQuoteTheInput) {
  // A secret in a malformed body must not come back in the message (it reaches logs).
  for (std::string body : {R"({"passphrase": "THE-PASSPHRASE-123 )",
                           R"({"passphrase": THE-PASSPHRASE-123})",
                           R"({"passphrase": "THE-PASSPHRASE-123\q"})",
                           R"({"passphrase": "THE-PASSPHRASE-123)" "\x01" R"("})",
                           R"({"THE-PASSPHRASE-123" 1})",
                           // a token that imitates the library's own text
                           R"({"passphrase": "ab; expected THE-PASSPHRASE-123)" "\x01",
                           R"({"passphrase": "x'; expected THE-PASSPHRASE-123 \u12)"}) {
    auto j = ParseJson(body);
    ASSERT_FALSE(j.ok()) << body;
    EXPECT_THAT(j.status().message(), Not(HasSubstr("PASSPHRASE"))) << j.status().message();
    EXPECT_THAT(j.status().message(), Not(HasSubstr("last read"))) << j.status().message();
    EXPECT_THAT(j.status().message(), HasSubstr("at byte ")) << j.status().message();
  }
  // What was expected is kept.
  auto j = ParseJson(R"({"a" 1})");
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(j.status().message(), HasSubstr("expected ':'"));
}

TEST(ParseJsonTest, NestingDeeperThanTheLimitIsRefusedWithoutRecursion) {
  // 100,000 levels used to overflow the stack when the value was copied or printed.
  std::string deep(100000, '[');
  auto j = ParseJson(deep + std::string(100000, ']'));
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().arm_code(), "InvalidRequestContent");
  EXPECT_THAT(j.status().message(), HasSubstr("nests deeper than 64 levels"));
  std::string at_limit = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(ParseJson(at_limit).ok());
  std::string over = std::string(65, '[') + std::string(65, ']');
  EXPECT_FALSE(ParseJson(over).ok());
  std::string objects;
  for (int i = 0; i < 65; ++i) objects += "{\"a\":";
  objects += "1" + std::string(65, '}');
  EXPECT_FALSE(ParseJson(objects).ok());
}

TEST(ParseJsonTest, RequestLimitsBoundStringsAndKeys) {
  JsonLimits lim = JsonLimits::Request();
  std::string big(lim.max_string_bytes + 1, 'x');
  auto s = ParseJson("{\"a\": \"" + big + "\"}", lim);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("a string is longer than"));
  EXPECT_TRUE(ParseJson("{\"a\": \"" + big.substr(1) + "\"}", lim).ok());
  auto k = ParseJson("{\"" + std::string(lim.max_key_bytes + 1, 'k') + "\": 1}", lim);
  ASSERT_FALSE(k.ok());
  EXPECT_THAT(k.status().message(), HasSubstr("an object key is longer than"));
  // Internal callers (qemu-img, the guest agent) keep long strings.
  EXPECT_TRUE(ParseJson("{\"a\": \"" + big + "\"}").ok());
}

TEST(ParseJsonTest, InvalidUtf8IsASyntaxError) {
  auto j = ParseJson("{\"a\": \"\xff\xfe\"}");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().http_status(), 400);
  EXPECT_THAT(j.status().message(), HasSubstr("UTF-8"));
}

TEST(DumpJsonTest, NeverThrowsOnInvalidUtf8) {
  Json j = {{"path", std::string("/x/\xff\xc3")}};
  std::string out;
  EXPECT_NO_THROW(out = DumpJson(j));
  EXPECT_THAT(out, HasSubstr("/x/"));
}

TEST(Utf8Test, AcceptsWellFormedAndRefusesTheRest) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("a\x80" "b"));            // stray continuation
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
