#include "network/port_ranges.h"

#include <algorithm>
#include <charconv>

namespace stratus::network {
namespace {

bool ParsePort(std::string_view s, uint16_t* out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

}  // namespace

Result<PortRange> ParsePortRange(const std::string& text, const std::string& field) {
  if (text == "*") return PortRange{};
  auto bad = [&] {
    return InvalidArgument("'" + text.substr(0, 32) +
                               "' is not a port range: expected '*', a port or 'first-last' "
                               "from 0 to 65535.",
                           field, "SecurityRuleInvalidPortRange");
  };
  std::string_view s(text);
  size_t dash = s.find('-');
  PortRange r;
  if (dash == std::string_view::npos) {
    if (!ParsePort(s, &r.first)) return bad();
    r.last = r.first;
    return r;
  }
  if (!ParsePort(s.substr(0, dash), &r.first) || !ParsePort(s.substr(dash + 1), &r.last) ||
      r.first > r.last)
    return bad();
  return r;
}

Result<std::vector<PortRange>> ParsePortRanges(const std::vector<std::string>& texts,
                                               const std::string& field) {
  if (texts.empty())
    return InvalidArgument("At least one port range is needed.", field,
                           "SecurityRuleInvalidPortRange");
  std::vector<PortRange> out;
  for (const auto& t : texts) {
    ASSIGN_OR_RETURN(PortRange r, ParsePortRange(t, field));
    out.push_back(r);
  }
  std::sort(out.begin(), out.end(),
            [](const PortRange& a, const PortRange& b) { return a.first < b.first; });
  std::vector<PortRange> merged;
  for (const auto& r : out) {
    if (!merged.empty() && uint32_t{r.first} <= uint32_t{merged.back().last} + 1) {
      merged.back().last = std::max(merged.back().last, r.last);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

std::string ToString(const PortRange& r) {
  if (r.first == 0 && r.last == 65535) return "*";
  if (r.first == r.last) return std::to_string(r.first);
  return std::to_string(r.first) + "-" + std::to_string(r.last);
}

}  // namespace stratus::network
