#include "network/security_rules.h"

#include <algorithm>
#include <map>
#include <set>

#include "api/resource_util.h"

namespace stratus::network {

namespace {

const char* const kProtocols[] = {"Tcp", "Udp", "Icmp", "Esp", "Ah", "*"};

// ARM accepts either the singular member or the plural list; returns the texts.
Result<std::vector<std::string>> OneOrList(const Json& p, const std::string& one,
                                           const std::string& many, const std::string& where,
                                           bool required, const char* dflt) {
  std::vector<std::string> out;
  if (p.contains(one) && !p[one].is_null()) {
    if (!p[one].is_string()) return InvalidArgument("'" + one + "' must be a string.", where + "." + one);
    out.push_back(p[one].get<std::string>());
  }
  if (p.contains(many) && !p[many].is_null()) {
    if (!p[many].is_array()) return InvalidArgument("'" + many + "' must be an array.", where + "." + many);
    for (auto& v : p[many]) {
      if (!v.is_string()) return InvalidArgument("'" + many + "' must hold strings.", where + "." + many);
      out.push_back(v.get<std::string>());
    }
  }
  if (out.size() > 1 && p.contains(one) && !p[one].is_null() && p.contains(many) &&
      !p[many].empty())
    return InvalidArgument("Give '" + one + "' or '" + many + "', not both.", where + "." + many,
                           "SecurityRuleParameterContainsUnsupportedValue");
  if (out.empty()) {
    if (required)
      return InvalidArgument("'" + one + "' (or '" + many + "') is required.", where + "." + one,
                             "MissingParameter");
    out.push_back(dflt);
  }
  return out;
}

bool IsTag(const std::string& s, const char* tag) { return EqualsIgnoreCase(s, tag); }

Status CheckPrefix(const std::string& s, const std::string& field) {
  if (s == "*" || IsTag(s, "VirtualNetwork") || IsTag(s, "Internet") ||
      IsTag(s, "AzureLoadBalancer") || IsTag(s, "LoadBalancer"))
    return Status::Ok();
  auto r = s.find('/') == std::string::npos ? ParseIpv4(s, field).status()
                                            : ParseIpv4Prefix(s, field).status();
  if (!r.ok())
    return InvalidArgument("'" + s + "' is not an address prefix, an address, '*' or a tag "
                           "(VirtualNetwork, Internet, AzureLoadBalancer).",
                           field, "SecurityRuleInvalidAddressPrefix");
  return Status::Ok();
}

Ipv4Range RangeOf(const Ipv4Prefix& p) { return {p.network.value, p.Last().value}; }

std::vector<Ipv4Range> Merge(std::vector<Ipv4Range> v) {
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<Ipv4Range> out;
  for (auto& r : v) {
    if (!out.empty() && (out.back().last == 0xffffffff || r.first <= out.back().last + 1)) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

std::vector<Ipv4Range> Complement(const std::vector<Ipv4Range>& merged) {
  std::vector<Ipv4Range> out;
  uint64_t next = 0;
  for (auto& r : merged) {
    if (r.first > next) out.push_back({static_cast<uint32_t>(next), r.first - 1});
    next = uint64_t{r.last} + 1;
  }
  if (next <= 0xffffffff) out.push_back({static_cast<uint32_t>(next), 0xffffffff});
  return out;
}

SecurityRule Default(const char* name, int prio, Direction d, Access a, const char* src,
                     const char* dst, const char* desc) {
  SecurityRule r;
  r.name = name;
  r.priority = prio;
  r.direction = d;
  r.access = a;
  r.sources = {src};
  r.destinations = {dst};
  r.source_ports = {PortRange{}};
  r.destination_ports = {PortRange{}};
  r.description = desc;
  r.is_default = true;
  return r;
}

}  // namespace

Result<SecurityRule> ParseSecurityRule(const Json& rule, const std::string& where) {
  if (!rule.is_object()) return InvalidArgument("A security rule must be an object.", where);
  RETURN_IF_ERROR(api::RejectUnknownKeys(rule, {"name", "properties", "id", "type", "etag"}, where));
  SecurityRule r;
  ASSIGN_OR_RETURN(r.name, api::GetString(rule, "name"));
  RETURN_IF_ERROR(ValidateResourceName(r.name, "securityRule", 80));
  std::string w = where + ".properties";
  Json p = rule.value("properties", Json::object());
  if (!p.is_object()) return InvalidArgument("'properties' must be an object.", w);
  RETURN_IF_ERROR(api::RejectUnknownKeys(
      p, {"priority", "direction", "access", "protocol", "sourceAddressPrefix",
          "sourceAddressPrefixes", "destinationAddressPrefix", "destinationAddressPrefixes",
          "sourcePortRange", "sourcePortRanges", "destinationPortRange", "destinationPortRanges",
          "description", "provisioningState", "sourceApplicationSecurityGroups",
          "destinationApplicationSecurityGroups"},
      w));
  for (const char* asg : {"sourceApplicationSecurityGroups", "destinationApplicationSecurityGroups"})
    if (p.contains(asg) && !p[asg].is_null() && !p[asg].empty())
      return InvalidArgument("Application security groups are not available.", w + "." + asg,
                             "FeatureNotAvailable");
  if (!p.contains("priority") || !p["priority"].is_number_integer())
    return InvalidArgument("Rule '" + r.name + "' needs an integer 'priority' (100-4096).",
                           w + ".priority", "SecurityRuleInvalidPriority");
  r.priority = p["priority"].get<int>();
  if (r.priority < 100 || r.priority > 4096)
    return InvalidArgument("Rule '" + r.name + "' has priority " + std::to_string(r.priority) +
                               "; use 100-4096.",
                           w + ".priority", "SecurityRuleInvalidPriority");
  ASSIGN_OR_RETURN(std::string dir, api::GetString(p, "direction"));
  if (EqualsIgnoreCase(dir, "Inbound")) {
    r.direction = Direction::kInbound;
  } else if (EqualsIgnoreCase(dir, "Outbound")) {
    r.direction = Direction::kOutbound;
  } else {
    return InvalidArgument("direction must be Inbound or Outbound, not '" + dir + "'.",
                           w + ".direction", "SecurityRuleParameterContainsUnsupportedValue");
  }
  ASSIGN_OR_RETURN(std::string access, api::GetString(p, "access"));
  if (EqualsIgnoreCase(access, "Allow")) {
    r.access = Access::kAllow;
  } else if (EqualsIgnoreCase(access, "Deny")) {
    r.access = Access::kDeny;
  } else {
    return InvalidArgument("access must be Allow or Deny, not '" + access + "'.", w + ".access",
                           "SecurityRuleParameterContainsUnsupportedValue");
  }
  ASSIGN_OR_RETURN(std::string proto, api::GetString(p, "protocol"));
  r.protocol.clear();
  for (const char* known : kProtocols)
    if (EqualsIgnoreCase(proto, known)) r.protocol = known;
  if (r.protocol.empty())
    return InvalidArgument("protocol must be Tcp, Udp, Icmp, Esp, Ah or *, not '" + proto + "'.",
                           w + ".protocol", "SecurityRuleParameterContainsUnsupportedValue");
  ASSIGN_OR_RETURN(r.sources, OneOrList(p, "sourceAddressPrefix", "sourceAddressPrefixes", w,
                                        true, "*"));
  ASSIGN_OR_RETURN(r.destinations, OneOrList(p, "destinationAddressPrefix",
                                             "destinationAddressPrefixes", w, true, "*"));
  for (auto& s : r.sources) RETURN_IF_ERROR(CheckPrefix(s, w + ".sourceAddressPrefix"));
  for (auto& s : r.destinations) RETURN_IF_ERROR(CheckPrefix(s, w + ".destinationAddressPrefix"));
  ASSIGN_OR_RETURN(auto sp, OneOrList(p, "sourcePortRange", "sourcePortRanges", w, false, "*"));
  ASSIGN_OR_RETURN(auto dp, OneOrList(p, "destinationPortRange", "destinationPortRanges", w,
                                      false, "*"));
  ASSIGN_OR_RETURN(r.source_ports, ParsePortRanges(sp, w + ".sourcePortRange"));
  ASSIGN_OR_RETURN(r.destination_ports, ParsePortRanges(dp, w + ".destinationPortRange"));
  bool all_ports = r.source_ports == std::vector<PortRange>{PortRange{}} &&
                   r.destination_ports == std::vector<PortRange>{PortRange{}};
  if (!all_ports && r.protocol != "Tcp" && r.protocol != "Udp" && r.protocol != "*")
    return InvalidArgument("Rule '" + r.name + "': ports apply to Tcp and Udp only.",
                           w + ".destinationPortRange", "SecurityRuleInvalidPortRange");
  if (p.contains("description")) {
    ASSIGN_OR_RETURN(r.description, api::GetString(p, "description"));
    if (r.description.size() > 140)
      return InvalidArgument("description is longer than 140 characters.", w + ".description");
  }
  return r;
}

Status ValidateSecurityRules(const std::vector<SecurityRule>& rules) {
  std::map<std::pair<int, int>, std::string> by_priority;
  std::set<std::string> names;
  for (auto& r : rules) {
    if (!names.insert(ToLower(r.name)).second)
      return InvalidArgument("Security rule '" + r.name + "' is listed twice.",
                             "properties.securityRules", "DuplicateResourceName");
    auto key = std::make_pair(static_cast<int>(r.direction), r.priority);
    auto [it, fresh] = by_priority.emplace(key, r.name);
    if (!fresh)
      return InvalidArgument("Security rule '" + r.name + "' conflicts with rule '" + it->second +
                                 "': rules cannot have the same priority (" +
                                 std::to_string(r.priority) + ") and direction.",
                             "properties.securityRules", "SecurityRuleConflict");
  }
  if (rules.size() > 10000)
    return InvalidArgument("A network security group holds at most 10000 rules.",
                           "properties.securityRules", "SecurityRulesLimitExceeded");
  return Status::Ok();
}

Json SecurityRuleJson(const SecurityRule& r) {
  Json p = {{"priority", r.priority},
            {"direction", r.direction == Direction::kInbound ? "Inbound" : "Outbound"},
            {"access", r.access == Access::kAllow ? "Allow" : "Deny"},
            {"protocol", r.protocol},
            {"provisioningState", "Succeeded"}};
  auto put = [&](const char* one, const char* many, const std::vector<std::string>& v) {
    if (v.size() == 1) {
      p[one] = v[0];
      p[many] = Json::array();
    } else {
      p[many] = v;
    }
  };
  put("sourceAddressPrefix", "sourceAddressPrefixes", r.sources);
  put("destinationAddressPrefix", "destinationAddressPrefixes", r.destinations);
  std::vector<std::string> sp, dp;
  for (auto& x : r.source_ports) sp.push_back(ToString(x));
  for (auto& x : r.destination_ports) dp.push_back(ToString(x));
  put("sourcePortRange", "sourcePortRanges", sp);
  put("destinationPortRange", "destinationPortRanges", dp);
  if (!r.description.empty()) p["description"] = r.description;
  return Json{{"name", r.name}, {"properties", p}};
}

const std::vector<SecurityRule>& DefaultSecurityRules() {
  static const std::vector<SecurityRule> kDefaults = {
      Default("AllowVnetInBound", 65000, Direction::kInbound, Access::kAllow, "VirtualNetwork",
              "VirtualNetwork", "Allow inbound traffic from all VMs in VNET"),
      Default("AllowAzureLoadBalancerInBound", 65001, Direction::kInbound, Access::kAllow,
              "AzureLoadBalancer", "*", "Allow inbound traffic from load balancer probes"),
      Default("DenyAllInBound", 65500, Direction::kInbound, Access::kDeny, "*", "*",
              "Deny all inbound traffic"),
      Default("AllowVnetOutBound", 65000, Direction::kOutbound, Access::kAllow, "VirtualNetwork",
              "VirtualNetwork", "Allow outbound traffic from all VMs to all VMs in VNET"),
      Default("AllowInternetOutBound", 65001, Direction::kOutbound, Access::kAllow, "*",
              "Internet", "Allow outbound traffic from all VMs to Internet"),
      Default("DenyAllOutBound", 65500, Direction::kOutbound, Access::kDeny, "*", "*",
              "Deny all outbound traffic"),
  };
  return kDefaults;
}

std::vector<SecurityRule> RulesInOrder(const std::vector<SecurityRule>& user, Direction d) {
  std::vector<SecurityRule> out;
  for (auto& r : user)
    if (r.direction == d) out.push_back(r);
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.priority < b.priority; });
  for (auto& r : DefaultSecurityRules())
    if (r.direction == d) out.push_back(r);
  return out;
}

std::vector<Ipv4Range> ExpandAddresses(const std::vector<std::string>& prefixes,
                                       const TagContext& tags) {
  std::vector<Ipv4Range> vnet;
  for (auto& p : tags.vnet_spaces) vnet.push_back(RangeOf(p));
  vnet = Merge(vnet);
  std::vector<Ipv4Range> out;
  for (auto& s : prefixes) {
    if (s == "*") {
      out.push_back({0, 0xffffffff});
    } else if (IsTag(s, "VirtualNetwork")) {
      out.insert(out.end(), vnet.begin(), vnet.end());
    } else if (IsTag(s, "Internet")) {
      auto c = Complement(vnet);
      out.insert(out.end(), c.begin(), c.end());
    } else if (IsTag(s, "AzureLoadBalancer") || IsTag(s, "LoadBalancer")) {
      for (auto& p : tags.load_balancer) out.push_back(RangeOf(p));
    } else if (s.find('/') == std::string::npos) {
      auto ip = ParseIpv4(s, "");
      if (ip.ok()) out.push_back({ip->value, ip->value});
    } else {
      auto p = ParseIpv4Prefix(s, "");
      if (p.ok()) out.push_back(RangeOf(*p));
    }
  }
  return Merge(out);
}

}  // namespace stratus::network
