// Per-rule hit counters of network security groups: the element counters of the region's rule
// sets (nsg_compiler.h), read back from the kernel and summed by the rule each element is
// counted on. Pure functions over listings; the engine does the reading.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "network/nsg_compiler.h"

namespace stratus::network {

// What one rule of one stage matched since its elements were made.
struct RuleCounter {
  std::string stage;
  Direction direction = Direction::kInbound;
  std::string rule;  // "securityRules/<name>" or "defaultSecurityRules/<name>"
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

// The element of a set listing (`nft -j list set`, numeric output) as a RuleBox: components as
// a value, {"range": [a, b]} or {"prefix": {...}}. InvalidArgument for any other shape.
Result<RuleBox> ParseRuleElement(const Json& val, bool ported);
// Sums the element counters of `listings` (set name -> `nft -j list set` output of that set) by
// the rules of `model` that own them: one RuleCounter per rule of every stage and direction of
// the model, in evaluation order (a rule whose sets were not listed, or that matched nothing,
// counts 0). Elements the model does not know are skipped.
std::vector<RuleCounter> CountRuleHits(const SecurityModel& model,
                                       const std::map<std::string, Json>& listings);

}  // namespace stratus::network
