#include "network/ipv4.h"

#include <algorithm>
#include <charconv>

namespace stratus::network {
namespace {

uint32_t Mask(int length) { return length == 0 ? 0 : ~uint32_t{0} << (32 - length); }

// One decimal component without sign or leading zeros, at most `max`.
bool ParseComponent(std::string_view s, uint32_t max, uint32_t* out) {
  if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return false;
  *out = v;
  return true;
}

bool ParseQuad(std::string_view s, uint32_t* out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    size_t dot = i < 3 ? s.find('.') : s.size();
    if (dot == std::string_view::npos) return false;
    uint32_t octet = 0;
    if (!ParseComponent(s.substr(0, dot), 255, &octet)) return false;
    v = (v << 8) | octet;
    s = i < 3 ? s.substr(dot + 1) : std::string_view();
  }
  *out = v;
  return true;
}

}  // namespace

std::string Ipv4::ToString() const {
  return std::to_string(value >> 24) + "." + std::to_string((value >> 16) & 255) + "." +
         std::to_string((value >> 8) & 255) + "." + std::to_string(value & 255);
}

Ipv4 Ipv4Prefix::Last() const { return Ipv4{network.value | ~Mask(length)}; }

bool Ipv4Prefix::Contains(Ipv4 ip) const { return (ip.value & Mask(length)) == network.value; }

bool Ipv4Prefix::Contains(const Ipv4Prefix& other) const {
  return other.length >= length && Contains(other.network);
}

bool Ipv4Prefix::Overlaps(const Ipv4Prefix& other) const {
  return Contains(other) || other.Contains(*this);
}

std::string Ipv4Prefix::ToString() const {
  return network.ToString() + "/" + std::to_string(length);
}

Result<Ipv4> ParseIpv4(const std::string& text, const std::string& field) {
  uint32_t v = 0;
  if (!ParseQuad(text, &v))
    return InvalidArgument("'" + text.substr(0, 64) + "' is not an IPv4 address.", field,
                           "InvalidIPAddressFormat");
  return Ipv4{v};
}

Result<Ipv4Prefix> ParseIpv4Prefix(const std::string& text, const std::string& field) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("'" + text.substr(0, 64) + "' is not a valid IPv4 prefix: " + why + ".",
                           field, "InvalidAddressPrefixFormat");
  };
  size_t slash = text.find('/');
  if (slash == std::string::npos) return bad("expected a.b.c.d/n");
  uint32_t addr = 0, length = 0;
  if (!ParseQuad(std::string_view(text).substr(0, slash), &addr)) return bad("bad address");
  if (!ParseComponent(std::string_view(text).substr(slash + 1), 32, &length))
    return bad("the length must be 0 to 32");
  Ipv4Prefix p{Ipv4{addr}, static_cast<int>(length)};
  if ((addr & ~Mask(p.length)) != 0)
    return bad("host bits are set (did you mean " +
               Ipv4Prefix{Ipv4{addr & Mask(p.length)}, p.length}.ToString() + "?)");
  return p;
}

Status ValidateVnetLayout(const std::vector<Ipv4Prefix>& spaces,
                          const std::vector<std::pair<std::string, Ipv4Prefix>>& subnets) {
  // Ranges a virtual network cannot use (as in Azure): loopback, link-local (the routers'
  // peering links use it), multicast and above, the broadcast address.
  static const Ipv4Prefix kReserved[] = {{Ipv4{0x7f000000}, 8},
                                         {Ipv4{0xa9fe0000}, 16},
                                         {Ipv4{0xe0000000}, 3},
                                         {Ipv4{0x00000000}, 8}};
  for (auto& sp : spaces)
    for (auto& r : kReserved)
      if (sp.Overlaps(r))
        return InvalidArgument("Address space " + sp.ToString() + " overlaps " + r.ToString() +
                                   ", which a virtual network cannot use.",
                               "properties.addressSpace.addressPrefixes",
                               "NetcfgInvalidAddressPrefix");
  for (size_t i = 0; i < spaces.size(); ++i)
    for (size_t j = i + 1; j < spaces.size(); ++j)
      if (spaces[i].Overlaps(spaces[j]))
        return InvalidArgument("Address spaces " + spaces[i].ToString() + " and " +
                                   spaces[j].ToString() + " of the virtual network overlap.",
                               "properties.addressSpace.addressPrefixes",
                               "NetcfgVnetAddressSpacesOverlap");
  for (size_t i = 0; i < subnets.size(); ++i) {
    const std::string& name = subnets[i].first;
    const Ipv4Prefix& p = subnets[i].second;  // not a structured binding: lambdas capture it
    if (p.length > 29)
      return InvalidArgument(
          "Subnet '" + name + "' (" + p.ToString() + ") is smaller than /29, the smallest subnet.",
          name, "NetcfgInvalidSubnet");
    bool inside = std::any_of(spaces.begin(), spaces.end(),
                              [&](const Ipv4Prefix& s) { return s.Contains(p); });
    if (!inside)
      return InvalidArgument("Subnet '" + name + "' (" + p.ToString() +
                                 ") is not inside an address space of the virtual network.",
                             name, "NetcfgSubnetRangeOutsideVnet");
    for (size_t j = 0; j < i; ++j)
      if (subnets[j].second.Overlaps(p))
        return InvalidArgument("Subnet '" + name + "' (" + p.ToString() + ") overlaps subnet '" +
                                   subnets[j].first + "' (" + subnets[j].second.ToString() + ").",
                               name, "NetcfgSubnetRangesOverlap");
  }
  return Status::Ok();
}

bool IsReserved(const Ipv4Prefix& subnet, Ipv4 ip) {
  uint32_t off = ip.value - subnet.network.value;
  return off <= 3 || ip == subnet.Last();
}

Ipv4 GatewayOf(const Ipv4Prefix& subnet) { return Ipv4{subnet.network.value + 1}; }

uint32_t UsableCount(const Ipv4Prefix& subnet) {
  return subnet.length > 29 ? 0 : subnet.Size() - 5;
}

std::optional<Ipv4> NextFree(const Ipv4Prefix& subnet, const std::vector<Ipv4>& taken) {
  if (UsableCount(subnet) == 0) return std::nullopt;
  std::vector<uint32_t> used;
  used.reserve(taken.size());
  for (Ipv4 t : taken)
    if (subnet.Contains(t)) used.push_back(t.value);
  std::sort(used.begin(), used.end());
  uint32_t candidate = subnet.network.value + 4;
  const uint32_t last = subnet.Last().value - 1;
  for (uint32_t u : used) {
    if (u < candidate) continue;
    if (u > candidate) break;
    ++candidate;
  }
  if (candidate > last) return std::nullopt;
  return Ipv4{candidate};
}

}  // namespace stratus::network
