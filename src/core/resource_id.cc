#include "core/resource_id.h"

#include <algorithm>
#include <cctype>

namespace stratus {
namespace {

Status BadId(std::string_view path, std::string why) {
  return InvalidArgument("The resource id '" + std::string(path) + "' is invalid: " + why, "id",
                         "InvalidResourceId");
}

}  // namespace

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

Result<ResourceId> ResourceId::Parse(std::string_view path) {
  auto parts = SplitPath(path);
  if (parts.size() < 2 || !EqualsIgnoreCase(parts[0], "subscriptions"))
    return BadId(path, "it must start with /subscriptions/{subscriptionId}");
  ResourceId id;
  id.subscription_ = std::string(parts[1]);
  RETURN_IF_ERROR(ValidateSubscriptionId(id.subscription_));
  if (parts.size() == 2) return id;
  if (parts.size() < 4 || !EqualsIgnoreCase(parts[2], "resourceGroups"))
    return BadId(path, "expected /resourceGroups/{name} after the subscription");
  id.resource_group_ = std::string(parts[3]);
  RETURN_IF_ERROR(ValidateResourceGroupName(id.resource_group_));
  if (parts.size() == 4) return id;
  if (parts.size() < 8 || !EqualsIgnoreCase(parts[4], "providers"))
    return BadId(path, "expected /providers/{namespace}/{type}/{name} after the resource group");
  id.namespace_ = std::string(parts[5]);
  if ((parts.size() - 6) % 2 != 0) return BadId(path, "types and names must come in pairs");
  for (size_t i = 6; i < parts.size(); i += 2) {
    RETURN_IF_ERROR(ValidateResourceName(parts[i + 1], std::string(parts[i]), 80));
    id.types_names_.emplace_back(std::string(parts[i]), std::string(parts[i + 1]));
  }
  return id;
}

ResourceId ResourceId::Subscription(std::string sub) {
  ResourceId id;
  id.subscription_ = std::move(sub);
  return id;
}

ResourceId ResourceId::Group(std::string sub, std::string rg) {
  ResourceId id;
  id.subscription_ = std::move(sub);
  id.resource_group_ = std::move(rg);
  return id;
}

ResourceId ResourceId::Resource(std::string sub, std::string rg, std::string ns, std::string type,
                                std::string name) {
  ResourceId id = Group(std::move(sub), std::move(rg));
  id.namespace_ = std::move(ns);
  id.types_names_.emplace_back(std::move(type), std::move(name));
  return id;
}

ResourceId ResourceId::Child(std::string type, std::string name) const {
  ResourceId id = *this;
  id.types_names_.emplace_back(std::move(type), std::move(name));
  return id;
}

ResourceId ResourceId::Parent() const {
  ResourceId id = *this;
  if (!id.types_names_.empty()) {
    id.types_names_.pop_back();
    if (id.types_names_.empty()) id.namespace_.clear();
  } else if (!id.resource_group_.empty()) {
    id.resource_group_.clear();
  }
  return id;
}

std::string ResourceId::FullType() const {
  if (IsSubscription()) return "subscriptions";
  if (IsGroup()) return "resourceGroups";
  std::string t = namespace_;
  for (auto& [type, name] : types_names_) t += "/" + type;
  return t;
}

const std::string& ResourceId::name() const {
  if (!types_names_.empty()) return types_names_.back().second;
  if (!resource_group_.empty()) return resource_group_;
  return subscription_;
}

std::string ResourceId::ToString() const {
  std::string s = "/subscriptions/" + subscription_;
  if (resource_group_.empty()) return s;
  s += "/resourceGroups/" + resource_group_;
  if (namespace_.empty()) return s;
  s += "/providers/" + namespace_;
  for (auto& [type, name] : types_names_) s += "/" + type + "/" + name;
  return s;
}

std::string ResourceId::Key() const { return ToLower(ToString()); }

Status ValidateSubscriptionId(std::string_view sub) {
  if (sub.empty() || sub.size() > 64)
    return InvalidArgument("Subscription id '" + std::string(sub) + "' must be 1-64 characters.",
                           "subscriptionId", "InvalidSubscriptionId");
  for (char c : sub)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
      return InvalidArgument("Subscription id '" + std::string(sub) +
                                 "' may contain only letters, digits and '-'.",
                             "subscriptionId", "InvalidSubscriptionId");
  return Status::Ok();
}

Status ValidateResourceGroupName(std::string_view name) {
  // ARM: 1-90 chars, alphanumerics, underscores, parentheses, hyphens, periods; not ending in '.'.
  bool ok = !name.empty() && name.size() <= 90 && name.back() != '.';
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '(' || c == ')' ||
          c == '-' || c == '.'))
      ok = false;
  }
  if (!ok)
    return InvalidArgument("Resource group name '" + std::string(name) +
                               "' is invalid: use 1-90 letters, digits, '_', '-', '.', '(' or "
                               "')', not ending in '.'.",
                           "resourceGroupName", "InvalidResourceGroupName");
  return Status::Ok();
}

Status ValidateResourceName(std::string_view name, std::string_view what, size_t max_len) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("The " + std::string(what) + " name '" + std::string(name) +
                               "' is invalid: " + why,
                           "name", "InvalidResourceName");
  };
  if (name.empty() || name.size() > max_len)
    return bad("it must be 1-" + std::to_string(max_len) + " characters long.");
  if (!std::isalnum(static_cast<unsigned char>(name.front())))
    return bad("it must start with a letter or digit.");
  if (name.back() == '.' || name.back() == '-') return bad("it must not end with '.' or '-'.");
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return bad("only letters, digits, '-', '_' and '.' are allowed.");
  return Status::Ok();
}

}  // namespace stratus
