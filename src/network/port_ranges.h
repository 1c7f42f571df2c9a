// Port specifications of security rules and load-balancer rules: "*", "80", "8000-8080", and
// lists of those (ARM's `destinationPortRange` and `destinationPortRanges`).
//
// Parsed into sorted, merged, non-overlapping ranges of 0..65535 ("*" is 0-65535). Errors are
// InvalidArgument "SecurityRuleInvalidPortRange" naming the text and the field. Pure values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace stratus::network {

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 65535;
  bool operator==(const PortRange&) const = default;
};

// One specification: "*", "N" or "N-M" with 0 <= N <= M <= 65535, no spaces or signs.
Result<PortRange> ParsePortRange(const std::string& text, const std::string& field);
// Several (a rule's list, or the single one as a list of one): sorted and merged. An empty list
// is InvalidArgument.
Result<std::vector<PortRange>> ParsePortRanges(const std::vector<std::string>& texts,
                                               const std::string& field);
// The list as ARM prints it back: "*", "80", "8000-8080".
std::string ToString(const PortRange& r);

}  // namespace stratus::network
