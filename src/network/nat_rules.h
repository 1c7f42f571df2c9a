// The nftables tables of the way out (network_engine.h: UplinkDatapath, EdgeDatapath), as
// libnftables JSON documents that replace the table whole in one transaction (existing flows
// keep their NAT: conntrack holds it, not the table). Both are `ip` family tables named
// "stratus" inside a namespace (a VNET router or the edge), where conntrack works (unlike the
// bridge family the security groups use). Pure functions, thread-safe.
//
// Router of a VNET:
//   prerouting  (dstnat)  iif up: daddr -> private address, from the public IPs' map (1:1)
//   postrouting (srcnat)  oif up: saddr -> public address from the map; else -> the router's
//                         transit address (the edge masquerades it)
//   forward               oif up from a private subnet (UplinkDatapath::private_subnets):
//                         dropped unless the source has a public IP;
//                         iif up: only DNATed flows and replies (established, related)
//   input                 iif up: only replies
// Edge:
//   forward               iif <uplink>: replies, and new flows only to the public pool
//   postrouting (srcnat)  oif <uplink>, saddr 169.254.0.0/16 (a router's transit) -> the
//                         uplink's address
#pragma once

#include "core/json.h"
#include "network/network_engine.h"

namespace stratus::network {

inline constexpr char kNatTable[] = "stratus";

Json RouterNatDocument(const UplinkDatapath& uplink, Ipv4 transit);
Json EdgeDocument(const EdgeDatapath& edge);
// Removes the table whether or not it exists (made if absent, then deleted, in one transaction):
// a router whose region lost its uplink.
Json RemoveNatDocument();

}  // namespace stratus::network
