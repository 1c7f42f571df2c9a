// Security rules of network security groups: the ARM shape parsed and validated, the default
// rules every NSG has, and the expansion of address prefixes and service tags into intervals.
//
// A rule (ARM's securityRules[].properties): priority 100..4096 (unique per direction within an
// NSG), direction Inbound|Outbound, access Allow|Deny, protocol Tcp|Udp|Icmp|* (also Esp, Ah),
// source/destination as one prefix or a list (CIDR, an address, "*", or the tags VirtualNetwork,
// Internet, AzureLoadBalancer / LoadBalancer), port ranges as one or a list ("*", N, N-M). Errors
// are InvalidArgument naming the rule and the field, with ARM's codes:
// "SecurityRuleInvalidPriority", "SecurityRuleConflict" (a priority used twice in one
// direction), "SecurityRuleInvalidPortRange", "SecurityRuleInvalidAddressPrefix",
// "SecurityRuleParameterContainsUnsupportedValue" (direction, access, protocol).
// Pure values and functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "network/ipv4.h"
#include "network/port_ranges.h"

namespace stratus::network {

enum class Direction { kInbound, kOutbound };
enum class Access { kAllow, kDeny };

struct SecurityRule {
  std::string name;
  int priority = 0;
  Direction direction = Direction::kInbound;
  Access access = Access::kAllow;
  std::string protocol = "*";               // "Tcp", "Udp", "Icmp", "Esp", "Ah", "*"
  std::vector<std::string> sources;         // as written: prefixes, addresses, tags, "*"
  std::vector<std::string> destinations;
  std::vector<PortRange> source_ports;      // sorted, merged
  std::vector<PortRange> destination_ports;
  std::string description;
  bool is_default = false;                  // one of the six default rules
};

// Parses one rule from its ARM form ({name, properties: {...}}); `where` names it in errors.
Result<SecurityRule> ParseSecurityRule(const Json& rule, const std::string& where);
// Checks the rules of one NSG together: no priority used twice in one direction, no name twice.
Status ValidateSecurityRules(const std::vector<SecurityRule>& rules);
// The ARM form of a rule (properties as a GET returns them, without id/etag).
Json SecurityRuleJson(const SecurityRule& rule);

// The default rules of every NSG (AllowVnetInBound 65000, AllowAzureLoadBalancerInBound 65001,
// DenyAllInBound 65500, AllowVnetOutBound 65000, AllowInternetOutBound 65001, DenyAllOutBound
// 65500).
const std::vector<SecurityRule>& DefaultSecurityRules();

// The rules of an NSG in evaluation order for one direction: the user's by priority, then the
// default ones.
std::vector<SecurityRule> RulesInOrder(const std::vector<SecurityRule>& user, Direction d);

// An inclusive interval of IPv4 addresses.
struct Ipv4Range {
  uint32_t first = 0;
  uint32_t last = 0xffffffff;
  bool operator==(const Ipv4Range&) const = default;
};

// What the tags mean for one NIC: VirtualNetwork is `vnet_spaces` (its VNET's address space, and
// the spaces of peered VNETs once peering exists); Internet is everything else;
// AzureLoadBalancer / LoadBalancer is `load_balancer` (where health probes come from).
struct TagContext {
  std::vector<Ipv4Prefix> vnet_spaces;
  std::vector<Ipv4Prefix> load_balancer;
};

// The addresses a rule's sources (or destinations) cover, sorted and merged. Prefixes were
// checked by ParseSecurityRule; an unparsable one yields an empty list.
std::vector<Ipv4Range> ExpandAddresses(const std::vector<std::string>& prefixes,
                                       const TagContext& tags);

}  // namespace stratus::network
