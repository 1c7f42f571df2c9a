// IPv4 addresses and prefixes, and the address rules of virtual networks.
//
// Strict parsing (what ARM accepts and no more): dotted quads without leading zeros
// ("10.0.0.1", not "010.0.0.1" or "10.1"), prefixes "a.b.c.d/n" with n in 0..32 whose host bits
// are zero ("10.0.0.0/24", not "10.0.0.5/24"). Errors are InvalidArgument with the ARM code
// "InvalidAddressPrefixFormat" / "InvalidIPAddressFormat" naming the input and its field.
//
// A subnet reserves 5 addresses, as Azure does: the network address, .1 (the gateway), .2 and .3
// (platform: DNS/DHCP), and the broadcast address. The smallest subnet is /29 (3 usable).
// Pure values, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace stratus::network {

struct Ipv4 {
  uint32_t value = 0;  // host byte order
  std::string ToString() const;
  auto operator<=>(const Ipv4&) const = default;
};

struct Ipv4Prefix {
  Ipv4 network;
  int length = 0;  // 0..32

  uint32_t Size() const { return length == 0 ? 0 : (uint32_t{1} << (32 - length)); }  // 0 = 2^32
  Ipv4 First() const { return network; }
  Ipv4 Last() const;  // the broadcast address for length < 31
  bool Contains(Ipv4 ip) const;
  bool Contains(const Ipv4Prefix& other) const;
  bool Overlaps(const Ipv4Prefix& other) const;
  std::string ToString() const;
  auto operator<=>(const Ipv4Prefix&) const = default;
};

// `field` names the property in errors ("properties.addressPrefix").
Result<Ipv4> ParseIpv4(const std::string& text, const std::string& field);
Result<Ipv4Prefix> ParseIpv4Prefix(const std::string& text, const std::string& field);

// Subnets of a VNET: every prefix /29 or larger, inside one of `spaces`, overlapping no other
// subnet; the spaces overlap no other space. Errors are InvalidArgument naming the offending
// prefix (and the subnet): "NetcfgInvalidSubnet" (a prefix longer than /29),
// "NetcfgSubnetRangeOutsideVnet", "NetcfgSubnetRangesOverlap",
// "NetcfgVnetAddressSpacesOverlap", "NetcfgInvalidAddressPrefix" (a space in 0/8, 127/8,
// 169.254/16 or 224/3).
Status ValidateVnetLayout(const std::vector<Ipv4Prefix>& spaces,
                          const std::vector<std::pair<std::string, Ipv4Prefix>>& subnets);

// The reserved addresses of a subnet: network, gateway (.1), two platform (.2, .3), broadcast.
bool IsReserved(const Ipv4Prefix& subnet, Ipv4 ip);
Ipv4 GatewayOf(const Ipv4Prefix& subnet);
// Usable addresses of a subnet (size - 5).
uint32_t UsableCount(const Ipv4Prefix& subnet);

// The lowest usable address of `subnet` not in `taken` (sorted or not); nullopt when full.
std::optional<Ipv4> NextFree(const Ipv4Prefix& subnet, const std::vector<Ipv4>& taken);

}  // namespace stratus::network
