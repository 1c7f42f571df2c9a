// The nftables form of a region's network security groups: one bridge-family table
// (`stratus_<rid>`, root namespace) that sees every frame a NIC's tap sends or receives on its
// subnet bridge, to a neighbour or to the gateway, so NIC and subnet rules hold both ways and
// between VMs of one subnet too. Rendered as libnftables JSON, applied as one transaction.
//
//   chain forward (hook forward)   frames from or to a tap of the region  -> goto vnet
//   chain vnet
//     frames other than IPv4 and ARP are dropped (VNETs are IPv4);
//     iifname vmap @spoof_by_tap -> the sending NIC's source check: its MAC (Ethernet and ARP
//       sender), and one of its addresses (IP and ARP sender) unless it forwards; DHCP
//       requests and ARP probes from 0.0.0.0 pass; then ARP passes;
//     DHCP, and DNS to the subnet gateways, pass (platform traffic, as in Azure);
//     replies of allowed flows pass: @flows (tcp/udp) and @pings (ICMP echo) hold the reverse
//       of every original packet that passed, with a timeout (stateful without conntrack, which
//       the bridge family of this kernel lacks); @pings is keyed by the address pair only;
//     iifname vmap @out_by_tap   -> the sending NIC's outbound chain
//     oifname vmap @in_by_tap    -> the receiving NIC's inbound chain
//     the packet passed: record its reverse in @flows / @pings.
//   chain nic_<tap>_out: jump the NIC's NSG stage, then the subnet's (outbound: NIC then subnet)
//   chain nic_<tap>_in:  jump the subnet's NSG stage, then the NIC's (inbound: subnet then NIC)
//   chain nsg_<stage>_in|out: the NSG's rules for one VNET (tags depend on it) in priority order,
//     each run of consecutive rules with the same access one lookup per set kind in a
//     concatenated interval set: `ip saddr . ip daddr . meta l4proto . th sport . th dport`
//     (rules with ports) and `ip saddr . ip daddr . meta l4proto` (rules without); Allow ->
//     return (to the next stage), Deny -> drop. The default rules end every stage.
//
// So a packet costs a few hash/interval lookups whatever the number of rules, and a change
// replaces chains, sets and map entries in one transaction (no window without rules; @flows is
// kept, so replies of established flows keep passing). Original-direction packets are checked
// against the rules every time, not only the first: a new Deny cuts an established flow at its
// next packet, a new Allow opens new flows at once.
//
// Pure functions; deterministic output.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "network/security_rules.h"

namespace stratus::network {

// One NSG as the NICs of one VNET see it (the tags' meaning depends on the VNET).
struct NsgStage {
  std::string key;  // [a-z0-9]{1,12}: names its chains and sets, unique in the region
  std::vector<SecurityRule> rules;  // the user's rules (defaults are added)
  TagContext tags;
};

// A NIC of the region. Every NIC's frames must carry its MAC and (unless it forwards, as a
// virtual appliance does) one of its addresses as source: no VM can pose as another, which the
// NSGs' source matching relies on. NICs without NSGs pass everything else.
struct NicSecurity {
  std::string tap;
  std::string subnet_stage;  // NsgStage key of its subnet's NSG, "" none
  std::string nic_stage;     // NsgStage key of its own NSG, "" none
  std::string mac;           // "52:54:00:..", "" = not checked
  std::vector<Ipv4> addresses;  // its private addresses; empty = not checked
  bool forwarding = false;      // enableIPForwarding: any source address
};

struct SecurityDatapath {
  std::string table;       // "stratus_<rid>"
  std::string tap_prefix;  // "st<rid>": the region's taps
  std::vector<NsgStage> stages;
  std::vector<NicSecurity> nics;
  std::vector<Ipv4> gateways;  // DNS servers of the subnets (platform traffic)
};

// What exists in the table now (from `list table`), to replace it in the same transaction.
struct ExistingSecurity {
  bool table = false;
  // Chains and sets carry a generation suffix ("_g7"): a transaction cannot delete an object
  // and make another of the same name, so each version gets names of its own.
  uint64_t generation = 0;
  std::vector<std::string> chains;  // nsg_* and nic_* chains
  std::vector<std::string> sets;    // rule sets (r_*)
};

// The libnftables JSON transaction that makes the table exactly `d`, given what exists.
Json CompileSecurity(const SecurityDatapath& d, const ExistingSecurity& existing);
// The transaction that deletes the table (nothing when it does not exist).
Json DeleteSecurity(const std::string& table, const ExistingSecurity& existing);
// Reads ExistingSecurity out of `nft -j list table bridge <table>` output.
ExistingSecurity ParseExistingSecurity(const Json& listing);
// What exists once `compiled` (CompileSecurity's output) has been applied: lets the engine keep
// track without listing the table again (a listing reads every element of the state sets).
ExistingSecurity AfterApply(const Json& compiled);

}  // namespace stratus::network
