#include "core/resource_id.h"

#include <gtest/gtest.h>

#include <string>

namespace stratus {
namespace {

constexpr const char* kVm =
    "/subscriptions/Sub-1/resourceGroups/My_RG/providers/Stratus.Compute/virtualMachines/vm1";

TEST(ResourceIdTest, ParsesSubscription) {
  auto id = ResourceId::Parse("/subscriptions/abc-123");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_TRUE(id->IsSubscription());
  EXPECT_FALSE(id->IsGroup());
  EXPECT_FALSE(id->IsResource());
  EXPECT_EQ(id->subscription(), "abc-123");
  EXPECT_EQ(id->name(), "abc-123");
  EXPECT_EQ(id->FullType(), "subscriptions");
  EXPECT_EQ(id->ToString(), "/subscriptions/abc-123");
}

TEST(ResourceIdTest, ParsesGroupCaseInsensitivelyAndKeepsCase) {
  auto id = ResourceId::Parse("/SUBSCRIPTIONS/s1/RESOURCEGROUPS/Rg.One(2)");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_TRUE(id->IsGroup());
  EXPECT_EQ(id->resource_group(), "Rg.One(2)");
  EXPECT_EQ(id->name(), "Rg.One(2)");
  EXPECT_EQ(id->FullType(), "resourceGroups");
  EXPECT_EQ(id->ToString(), "/subscriptions/s1/resourceGroups/Rg.One(2)");
  EXPECT_EQ(id->Key(), "/subscriptions/s1/resourcegroups/rg.one(2)");
}

TEST(ResourceIdTest, ParsesProviderResource) {
  auto id = ResourceId::Parse(kVm);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_TRUE(id->IsResource());
  EXPECT_FALSE(id->IsGroup());
  EXPECT_EQ(id->subscription(), "Sub-1");
  EXPECT_EQ(id->resource_group(), "My_RG");
  EXPECT_EQ(id->provider_namespace(), "Stratus.Compute");
  EXPECT_EQ(id->FullType(), "Stratus.Compute/virtualMachines");
  EXPECT_EQ(id->name(), "vm1");
  ASSERT_EQ(id->types_and_names().size(), 1u);
  EXPECT_EQ(id->types_and_names()[0].first, "virtualMachines");
  EXPECT_EQ(id->ToString(), kVm);
  EXPECT_EQ(id->Key(), ToLower(kVm));
}

TEST(ResourceIdTest, ToleratesRepeatedAndTrailingSlashes) {
  auto id = ResourceId::Parse("//subscriptions//s1/resourceGroups/rg/");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->ToString(), "/subscriptions/s1/resourceGroups/rg");
}

TEST(ResourceIdTest, ParsesNestedChildren) {
  auto id = ResourceId::Parse(std::string(kVm) + "/extensions/ext1");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->FullType(), "Stratus.Compute/virtualMachines/extensions");
  EXPECT_EQ(id->name(), "ext1");
  EXPECT_EQ(id->types_and_names().size(), 2u);
}

TEST(ResourceIdTest, FormatRoundTripsThroughParse) {
  ResourceId id = ResourceId::Resource("s1", "RG", "Stratus.Storage", "disks", "Data-1");
  EXPECT_EQ(id.ToString(), "/subscriptions/s1/resourceGroups/RG/providers/Stratus.Storage/disks/Data-1");
  auto back = ResourceId::Parse(id.ToString());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, id);
  EXPECT_EQ(back->ToString(), id.ToString());
}

TEST(ResourceIdTest, KeyIsLowercaseAndEqualityIgnoresCase) {
  ResourceId a = ResourceId::Resource("S1", "Rg", "Stratus.Compute", "virtualMachines", "VM");
  ResourceId b = ResourceId::Resource("s1", "rG", "stratus.compute", "VIRTUALMACHINES", "vm");
  EXPECT_EQ(a.Key(), "/subscriptions/s1/resourcegroups/rg/providers/stratus.compute/virtualmachines/vm");
  EXPECT_EQ(a.Key(), b.Key());
  EXPECT_TRUE(a == b);
  EXPECT_NE(a.ToString(), b.ToString());  // the caller's case is kept
  ResourceId c = ResourceId::Resource("s1", "rg", "Stratus.Compute", "virtualMachines", "vm2");
  EXPECT_FALSE(a == c);
}

TEST(ResourceIdTest, ParentWalksUpOneLevel) {
  ResourceId vm = ResourceId::Resource("s1", "rg", "Stratus.Compute", "virtualMachines", "vm1");
  ResourceId ext = vm.Child("extensions", "e1");
  EXPECT_EQ(ext.ToString(),
            "/subscriptions/s1/resourceGroups/rg/providers/Stratus.Compute/virtualMachines/vm1/"
            "extensions/e1");
  EXPECT_EQ(ext.Parent(), vm);
  EXPECT_EQ(ext.Parent().ToString(), vm.ToString());

  ResourceId group = vm.Parent();
  EXPECT_TRUE(group.IsGroup());
  EXPECT_EQ(group.ToString(), "/subscriptions/s1/resourceGroups/rg");
  EXPECT_TRUE(group.provider_namespace().empty());

  ResourceId sub = group.Parent();
  EXPECT_TRUE(sub.IsSubscription());
  EXPECT_EQ(sub.ToString(), "/subscriptions/s1");
  EXPECT_EQ(sub.Parent().ToString(), "/subscriptions/s1");  // the top stays put
}

TEST(ResourceIdTest, ChildDoesNotModifyTheParent) {
  ResourceId vm = ResourceId::Resource("s1", "rg", "Stratus.Compute", "virtualMachines", "vm1");
  ResourceId child = vm.Child("extensions", "e1");
  EXPECT_EQ(vm.types_and_names().size(), 1u);
  EXPECT_EQ(child.types_and_names().size(), 2u);
  EXPECT_EQ(child.types_and_names()[1], (std::pair<std::string, std::string>("extensions", "e1")));
}

TEST(ResourceIdTest, GroupAndSubscriptionFactories) {
  EXPECT_EQ(ResourceId::Subscription("s1").ToString(), "/subscriptions/s1");
  EXPECT_EQ(ResourceId::Group("s1", "rg").ToString(), "/subscriptions/s1/resourceGroups/rg");
  EXPECT_TRUE(ResourceId::Group("s1", "rg").IsGroup());
}

void ExpectInvalid(const std::string& path, const std::string& arm_code) {
  auto id = ResourceId::Parse(path);
  ASSERT_FALSE(id.ok()) << path;
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument) << path;
  EXPECT_EQ(id.status().http_status(), 400) << path;
  EXPECT_EQ(id.status().arm_code(), arm_code) << path;
}

TEST(ResourceIdTest, RejectsMalformedIdsWithInvalidResourceId) {
  ExpectInvalid("", "InvalidResourceId");
  ExpectInvalid("/", "InvalidResourceId");
  ExpectInvalid("/subscriptions", "InvalidResourceId");
  ExpectInvalid("/tenants/t1", "InvalidResourceId");
  ExpectInvalid("/subscriptions/s1/groups/rg", "InvalidResourceId");
  ExpectInvalid("/subscriptions/s1/resourceGroups", "InvalidResourceId");
  ExpectInvalid("/subscriptions/s1/resourceGroups/rg/Stratus.Compute/virtualMachines/vm1",
                "InvalidResourceId");
  ExpectInvalid("/subscriptions/s1/resourceGroups/rg/providers/Stratus.Compute",
                "InvalidResourceId");
  ExpectInvalid("/subscriptions/s1/resourceGroups/rg/providers/Stratus.Compute/virtualMachines",
                "InvalidResourceId");
  ExpectInvalid(std::string(kVm) + "/extensions", "InvalidResourceId");
}

TEST(ResourceIdTest, MalformedIdMessageNamesTheInput) {
  auto id = ResourceId::Parse("/tenants/t1");
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("/tenants/t1"), std::string::npos);
}

TEST(ResourceIdTest, RejectsBadSegmentsWithTheirArmCodes) {
  ExpectInvalid("/subscriptions/s_1", "InvalidSubscriptionId");
  ExpectInvalid("/subscriptions/" + std::string(65, 'a'), "InvalidSubscriptionId");
  ExpectInvalid("/subscriptions/s1/resourceGroups/bad!name", "InvalidResourceGroupName");
  ExpectInvalid("/subscriptions/s1/resourceGroups/ends.", "InvalidResourceGroupName");
  ExpectInvalid("/subscriptions/s1/resourceGroups/rg/providers/Stratus.Compute/virtualMachines/-vm",
                "InvalidResourceName");
  ExpectInvalid("/subscriptions/s1/resourceGroups/rg/providers/Stratus.Compute/virtualMachines/v@m",
                "InvalidResourceName");
  ExpectInvalid("/subscriptions/s1/resourceGroups/rg/providers/Stratus.Compute/virtualMachines/" +
                    std::string(81, 'a'),
                "InvalidResourceName");
}

TEST(ResourceIdTest, NameValidationLimits) {
  EXPECT_TRUE(ValidateSubscriptionId(std::string(64, 'a')).ok());
  EXPECT_FALSE(ValidateSubscriptionId("").ok());

  EXPECT_TRUE(ValidateResourceGroupName(std::string(90, 'g')).ok());
  EXPECT_FALSE(ValidateResourceGroupName(std::string(91, 'g')).ok());
  EXPECT_FALSE(ValidateResourceGroupName("").ok());
  EXPECT_TRUE(ValidateResourceGroupName("a_b-c.d(e)").ok());
  Status rg = ValidateResourceGroupName("a b");
  EXPECT_EQ(rg.arm_code(), "InvalidResourceGroupName");
  EXPECT_EQ(rg.target(), "resourceGroupName");
  EXPECT_NE(rg.message().find("'a b'"), std::string::npos);

  EXPECT_TRUE(ValidateResourceName("a", "disk").ok());
  EXPECT_TRUE(ValidateResourceName("vm_1.data-2", "disk").ok());
  EXPECT_TRUE(ValidateResourceName(std::string(64, 'x'), "disk").ok());
  EXPECT_FALSE(ValidateResourceName(std::string(65, 'x'), "disk").ok());
  EXPECT_TRUE(ValidateResourceName(std::string(80, 'x'), "disk", 80).ok());
  EXPECT_FALSE(ValidateResourceName("", "disk").ok());
  EXPECT_FALSE(ValidateResourceName("_a", "disk").ok());
  EXPECT_FALSE(ValidateResourceName("a.", "disk").ok());
  EXPECT_FALSE(ValidateResourceName("a-", "disk").ok());
  EXPECT_FALSE(ValidateResourceName("a/b", "disk").ok());
  Status bad = ValidateResourceName("x y", "snapshot");
  EXPECT_EQ(bad.arm_code(), "InvalidResourceName");
  EXPECT_EQ(bad.target(), "name");
  EXPECT_NE(bad.message().find("snapshot"), std::string::npos);
  EXPECT_NE(bad.message().find("'x y'"), std::string::npos);
}

TEST(ResourceIdTest, CaseHelpers) {
  EXPECT_EQ(ToLower("AbC-1_Z"), "abc-1_z");
  EXPECT_TRUE(EqualsIgnoreCase("Standard_S1", "standard_s1"));
  EXPECT_FALSE(EqualsIgnoreCase("abc", "abcd"));
  EXPECT_FALSE(EqualsIgnoreCase("abc", "abd"));
}

}  // namespace
}  // namespace stratus
