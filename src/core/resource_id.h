// ResourceId: a parsed ARM resource identifier.
//
//   /subscriptions/{sub}
//   /subscriptions/{sub}/resourceGroups/{rg}
//   /subscriptions/{sub}/resourceGroups/{rg}/providers/{Namespace}/{type}/{name}[/{type}/{name}...]
//
// Segment names keep the caller's case; comparisons and store keys are case-insensitive
// (Key() lowercases), as in ARM.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace stratus {

class ResourceId {
 public:
  ResourceId() = default;

  static Result<ResourceId> Parse(std::string_view path);
  static ResourceId Subscription(std::string sub);
  static ResourceId Group(std::string sub, std::string rg);
  static ResourceId Resource(std::string sub, std::string rg, std::string provider_namespace,
                             std::string type, std::string name);

  // A child: this id + /{type}/{name}. Only valid on a provider resource.
  ResourceId Child(std::string type, std::string name) const;
  // The id one level up (resource -> parent resource or group; group -> subscription).
  ResourceId Parent() const;

  const std::string& subscription() const { return subscription_; }
  const std::string& resource_group() const { return resource_group_; }
  const std::string& provider_namespace() const { return namespace_; }
  // Full type, e.g. "Stratus.Compute/virtualMachines" or "Stratus.Storage/disks/x/y" joined.
  std::string FullType() const;
  // The innermost name ("" for subscription/group scopes, where name() is sub/group name).
  const std::string& name() const;
  bool IsSubscription() const { return resource_group_.empty(); }
  bool IsGroup() const { return !resource_group_.empty() && namespace_.empty(); }
  bool IsResource() const { return !namespace_.empty(); }
  const std::vector<std::pair<std::string, std::string>>& types_and_names() const {
    return types_names_;
  }

  std::string ToString() const;
  // Lowercased canonical form used as the store key.
  std::string Key() const;

  bool operator==(const ResourceId& o) const { return Key() == o.Key(); }

 private:
  std::string subscription_;
  std::string resource_group_;
  std::string namespace_;
  std::vector<std::pair<std::string, std::string>> types_names_;
};

std::string ToLower(std::string_view s);
// The non-empty segments of a URL path: "/a//b/" -> {"a", "b"} (views into `path`).
std::vector<std::string_view> SplitPath(std::string_view path);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Name rules (ARM-like). Each returns InvalidArgument with ARM code "InvalidResourceName"
// naming the offending input.
Status ValidateSubscriptionId(std::string_view sub);
Status ValidateResourceGroupName(std::string_view name);
// General resource name: 1..max_len chars, [A-Za-z0-9._-], must start with alnum and not end
// with '.' or '-'.
Status ValidateResourceName(std::string_view name, std::string_view what, size_t max_len = 64);

}  // namespace stratus
