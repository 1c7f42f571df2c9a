#include "api/json_shape.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stratus::api {
namespace {

using ::testing::HasSubstr;

const Shape& VmLike() {
  static const Shape s = Shape::Resource(Shape::Object(
      {{"storageProfile",
        Shape::Object({{"osDisk", Shape::Object({{"diskSizeGB", Shape::Integer()}})},
                       {"dataDisks", Shape::ArrayOf(Shape::Object({{"lun", Shape::Integer()}}))}})},
       {"quiesce", Shape::Boolean()},
       {"ratio", Shape::Number()},
       {"anything", Shape::Any()}}));
  return s;
}

TEST(JsonShapeTest, AcceptsWhatIsDeclaredAndIgnoresTheRest) {
  Json body = {{"location", "r"},
               {"tags", {{"a", "b"}}},
               {"properties",
                {{"storageProfile",
                  {{"osDisk", {{"diskSizeGB", 4}}}, {"dataDisks", {{{"lun", 0}}, {{"lun", 1}}}}}},
                 {"quiesce", true},
                 {"ratio", 0.5},
                 {"anything", {1, "two"}},
                 {"undeclared", "left to the provider"}}}};
  EXPECT_TRUE(CheckShape(body, VmLike()).ok());
}

TEST(JsonShapeTest, AWrongTypeNamesItsPath) {
  struct Case {
    Json body;
    std::string target;
    std::string says;
  } cases[] = {
      {{{"properties", "x"}}, "properties", "'properties' must be an object, not a string"},
      {{{"properties", {{"storageProfile", {{"osDisk", "x"}}}}}},
       "properties.storageProfile.osDisk",
       "must be an object"},
      {{{"properties", {{"storageProfile", {{"dataDisks", {{"lun", 0}}}}}}}},
       "properties.storageProfile.dataDisks",
       "must be an array, not an object"},
      {{{"properties", {{"storageProfile", {{"dataDisks", {{{"lun", "0"}}}}}}}}},
       "properties.storageProfile.dataDisks[0].lun",
       "must be an integer, not a string"},
      {{{"properties", {{"storageProfile", {{"osDisk", {{"diskSizeGB", 1.5}}}}}}}},
       "properties.storageProfile.osDisk.diskSizeGB",
       "not a number with a fraction"},
      {{{"properties", {{"quiesce", 1}}}}, "properties.quiesce", "must be true or false"},
      {{{"properties", {{"ratio", "1"}}}}, "properties.ratio", "must be a number"},
      {{{"tags", {{"k", 1}}}}, "tags.k", "must be a string"},
      {{{"tags", {"k"}}}, "tags", "must be an object"},
      {{{"sku", "Premium_LRS"}}, "sku", "must be an object"},
  };
  for (auto& c : cases) {
    Json body = c.body;
    Status st = CheckShape(body, VmLike());
    ASSERT_FALSE(st.ok()) << c.body.dump();
    EXPECT_EQ(st.http_status(), 400);
    EXPECT_EQ(st.arm_code(), "InvalidRequestContent");
    EXPECT_EQ(st.target(), c.target) << c.body.dump();
    EXPECT_THAT(st.message(), HasSubstr(c.says)) << st.message();
  }
  Json not_object = Json::array();
  Status st = CheckShape(not_object, VmLike());
  EXPECT_EQ(st.target(), "body");
  EXPECT_THAT(st.message(), HasSubstr("The request body must be an object, not an array"));
}

TEST(JsonShapeTest, MembersMatchIgnoringCaseAsTheProvidersDo) {
  Json body = {{"Properties", {{"StorageProfile", {{"OSDisk", "x"}}}}}};
  Status st = CheckShape(body, VmLike());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.target(), "Properties.StorageProfile.OSDisk");
}

TEST(JsonShapeTest, NullMeansNotSetAndIsRemoved) {
  Json body = {
      {"location", nullptr},
      {"tags", nullptr},
      {"properties", {{"storageProfile", {{"osDisk", nullptr}}}, {"undeclared", nullptr}}}};
  ASSERT_TRUE(CheckShape(body, VmLike()).ok());
  EXPECT_FALSE(body.contains("location"));
  EXPECT_FALSE(body.contains("tags"));
  EXPECT_FALSE(body["properties"]["storageProfile"].contains("osDisk"));
  // Only declared members are touched.
  EXPECT_TRUE(body["properties"].contains("undeclared"));
  // A null where an array element or a map value belongs is a wrong type, not "not set".
  Json in_array = {{"properties", {{"storageProfile", {{"dataDisks", {nullptr}}}}}}};
  EXPECT_FALSE(CheckShape(in_array, VmLike()).ok());
  Json in_map = {{"tags", {{"k", nullptr}}}};
  EXPECT_FALSE(CheckShape(in_map, VmLike()).ok());
}

}  // namespace
}  // namespace stratus::api
