// The dnsmasq configuration of one VNET (DHCP and names), rendered from its VnetDatapath.
//
// One dnsmasq per VNET runs in the VNET's router namespace, bound to the router ends of the
// gateway veths (bind-interfaces), so it answers only its own subnets. Three files:
//   dnsmasq.conf  the subnets: one static dhcp-range each (addresses only for known MACs),
//                 tagged with the subnet's veth, with router, DNS server, search domain and MTU;
//                 the VNET's domain answered locally; upstream resolvers or none (no-resolv).
//                 A change needs a restart of dnsmasq.
//   dhcp-hosts    one line per NIC: MAC, IP, hostname, infinite lease (dhcp-hostsfile).
//   hosts         the VM names: "<ip> <host> <host>.<domain>" (addn-hosts).
// dhcp-hosts and hosts are re-read on SIGHUP, so NICs coming and going need no restart.
// Pure functions; the output is deterministic (same input, same bytes).
#pragma once

#include <string>

#include "network/network_engine.h"

namespace stratus::network {

struct DnsmasqFiles {
  std::string conf;
  std::string dhcp_hosts;
  std::string hosts;
};

// `dir` is where the files and the pid file live (paths inside dnsmasq.conf).
DnsmasqFiles RenderDnsmasq(const VnetDatapath& vnet, const std::string& dir);

}  // namespace stratus::network
